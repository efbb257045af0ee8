"""The modem session core: link up and down, start-up, probes, backoff, on injected time."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cti.errors import TelephonyError
from cti.protocol import CallArrived, CallerHungUp
from telephony_adapters.modem.call import ModemResult, Send
from telephony_adapters.modem.session import (
    LinkState,
    ModemSession,
    Notice,
    Restart,
    SessionOutput,
)

pytestmark = pytest.mark.modem


def sends(out: list[SessionOutput]) -> list[str]:
    return [o.command for o in out if isinstance(o, Send)]


def ready_session(*, probe_interval: float = 60.0, reply_timeout: float = 3.0) -> ModemSession:
    s = ModemSession(
        "m1",
        call_ids=iter(f"m1-{n}" for n in range(1, 100)),
        probe_interval=probe_interval,
        reply_timeout=reply_timeout,
    )
    assert sends(s.connected(0.0)) == ["ATZ"]
    s.received(b"OK\r\n", 0.1)
    assert sends(s.tick(1.1)) == ["ATE0V1Q0S0=0"]
    assert sends(s.received(b"OK\r\n", 1.2)) == ["AT+VCID=1"]
    out = s.received(b"OK\r\n", 1.3)
    assert s.state is LinkState.READY
    assert Notice("info", "line m1: ready, caller ID on with AT+VCID=1") in out
    return s


def test_start_up_to_ready_then_calls() -> None:
    s = ready_session()
    out = s.received(b"RING\r\nNMBR = 13812345678\r\nRING\r\n", 5.0)
    assert out == [
        CallArrived(call_id="m1-1", ani="13812345678", line="m1"),
    ]
    assert sends(s.answer("m1-1", 5.5)) == ["ATA"]
    assert s.received(b"VCON\r\n", 5.6) == [
        ModemResult("m1-1", "answer", "connected", "VCON", True)
    ]
    assert sends(s.hang_up("m1-1", 9.0)) == ["ATH"]


def test_rings_during_start_up_make_no_call() -> None:
    s = ModemSession("m1")
    s.connected(0.0)
    assert s.received(b"RING\r\nNMBR = 1\r\nRING\r\n", 0.05) == []
    assert s.call.call_id is None


def test_requests_refused_until_ready() -> None:
    s = ModemSession("m1")
    with pytest.raises(TelephonyError, match="down"):
        s.dial("5551234", 0.0)
    s.connected(0.0)
    with pytest.raises(TelephonyError, match="starting"):
        s.answer("m1-1", 0.1)


def test_device_lost_mid_call_ends_it_never_loses_it() -> None:
    s = ready_session()
    s.received(b"RING\r\nRING\r\n", 5.0)
    s.answer("m1-1", 5.5)
    s.received(b"VCON\r\n", 5.6)
    out = s.disconnected(30.0, "read failed: [Errno 5] Input/output error")
    assert out[-1] == CallerHungUp(call_id="m1-1", line="m1")
    assert isinstance(out[0], Notice)
    assert "Input/output error" in out[0].text
    assert s.state is LinkState.DOWN
    assert s.disconnected(31.0, "again") == []  # once only
    with pytest.raises(TelephonyError):
        s.hang_up("m1-1", 32.0)
    # a call that had rung once only is announced, then ended
    s = ready_session()
    s.received(b"RING\r\n", 5.0)
    out = s.disconnected(6.0, "gone")
    assert [type(o) for o in out] == [Notice, CallArrived, CallerHungUp]


def test_idle_probe_rearms_caller_id_and_restarts_a_silent_modem() -> None:
    s = ready_session(probe_interval=60.0, reply_timeout=3.0)
    assert s.next_deadline() == pytest.approx(61.3)
    assert s.tick(61.2) == []
    assert sends(s.tick(61.3)) == ["AT+VCID=1"]  # caller ID armed again after a reset
    assert s.received(b"OK\r\n", 62.0) == []
    assert s.next_deadline() == pytest.approx(122.0)
    assert sends(s.tick(122.0)) == ["AT+VCID=1"]
    assert sends(s.tick(125.0)) == ["AT+VCID=1"]
    assert sends(s.tick(128.0)) == ["AT+VCID=1"]
    out = s.tick(131.0)
    assert len(out) == 1
    assert isinstance(out[0], Restart)
    assert "stopped answering" in out[0].reason
    assert s.failures == 1


def test_no_probe_while_a_call_is_on() -> None:
    s = ready_session(probe_interval=10.0)
    s.received(b"RING\r\nRING\r\n", 5.0)
    s.answer("m1-1", 5.5)
    s.received(b"VCON\r\n", 5.6)
    assert s.next_deadline() is None
    assert s.tick(500.0) == []


def test_garbage_does_not_count_as_the_modem_answering() -> None:
    s = ready_session(probe_interval=10.0, reply_timeout=1.0)
    s.tick(11.3)  # probe sent
    s.received(b"\x01\x02\xff\r\n", 11.5)
    assert s.garbage == 1
    assert sends(s.tick(12.3)) == ["AT+VCID=1"]  # still waiting for a real reply


def test_failed_start_up_restarts_with_growing_backoff() -> None:
    s = ModemSession("m1", reply_timeout=1.0, tries=2, backoff_min=0.5, backoff_max=4.0)
    assert s.reconnect_delay() == 0.5
    s.connected(0.0)
    s.tick(1.0)
    out = s.tick(2.0)
    assert isinstance(out[-1], Restart)
    assert "ATZ got no reply after 2 tries" in out[-1].reason
    s.disconnected(2.0, out[-1].reason)
    assert s.failures == 2  # the start-up failed, then the link closed unready
    delays = [s.reconnect_delay()]
    for _ in range(4):
        s.open_failed("[Errno 2] No such file or directory")
        delays.append(s.reconnect_delay())
    assert delays == [1.0, 2.0, 4.0, 4.0, 4.0]
    ready = ModemSession("m1", backoff_min=0.5)
    ready.failures = 5
    ready.connected(0.0)
    ready.received(b"OK\r\n", 0.1)
    ready.tick(1.1)
    ready.received(b"OK\r\nOK\r\n", 1.2)
    assert ready.state is LinkState.READY
    assert ready.reconnect_delay() == 0.5


def test_an_open_failure_is_an_error_once_per_reason() -> None:
    s = ModemSession("m1")
    levels = [
        [n.level for n in s.open_failed(reason) if isinstance(n, Notice)]
        for reason in ("gone", "gone", "gone", "busy", "gone")
    ]
    assert levels == [["error"], ["debug"], ["debug"], ["error"], ["error"]]
    s.connected(0.0)  # it opened: the next failure is news again
    assert [n.level for n in s.open_failed("busy") if isinstance(n, Notice)] == ["error"]


def test_no_caller_id_is_a_warning_not_a_failure() -> None:
    s = ModemSession("m1", caller_id_commands=("AT+VCID=1",))
    s.connected(0.0)
    s.received(b"OK\r\n", 0.1)
    s.tick(1.1)
    s.received(b"OK\r\n", 1.2)
    out = s.received(b"ERROR\r\n", 1.3)
    assert s.state is LinkState.READY
    (notice,) = [o for o in out if isinstance(o, Notice)]
    assert notice.level == "warning"
    assert "WITHOUT caller ID" in notice.text


def test_reconnect_resets_the_partial_line() -> None:
    s = ready_session()
    s.received(b"RI", 5.0)
    s.disconnected(5.1, "gone")
    s.connected(6.0)
    s.received(b"OK\r\n", 6.1)  # not "RIOK"
    assert s.startup.state.value == "settling"


@settings(max_examples=200, deadline=None)
@given(
    chunks=st.lists(st.binary(max_size=300), max_size=12),
    drops=st.lists(st.integers(0, 11), max_size=3),
)
def test_random_bytes_and_drops_never_crash_nor_invent_calls(
    chunks: list[bytes], drops: list[int]
) -> None:
    s = ready_session()
    out: list[SessionOutput] = []
    rings = 0
    for i, chunk in enumerate(chunks):
        now = 10.0 + i
        rings += chunk.upper().count(b"RING") + chunk.count(b"2")
        out += s.received(chunk, now)
        out += s.tick(now + 0.5)
        if i in drops:
            out += s.disconnected(now + 0.6, "gone")
            out += s.connected(now + 0.7)
    out += s.disconnected(1000.0, "end")
    arrived = [o.call_id for o in out if isinstance(o, CallArrived)]
    hung = [o.call_id for o in out if isinstance(o, CallerHungUp)]
    assert len(arrived) <= rings
    assert hung == arrived  # every call announced ends exactly once
    assert not any(isinstance(o, ModemResult) for o in out)
