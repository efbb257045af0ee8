"""The modem call state machine and start-up negotiator on an injected clock."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cti.errors import TelephonyError
from cti.protocol import CallArrived, CallerHungUp
from telephony_adapters.modem.call import (
    CALLER_ID_COMMANDS,
    CallState,
    ModemCall,
    ModemOutput,
    ModemResult,
    Send,
    StartupNegotiator,
    StartupState,
)
from telephony_adapters.modem.parser import ModemParser, Result, Ring

from . import transcripts as t


def state_now(state: CallState | StartupState) -> CallState | StartupState:
    """The state as read now: mypy keeps an attribute narrowed by an earlier assert
    across the calls that change it."""
    return state


pytestmark = pytest.mark.modem


class Line:
    """Parser and call machine together, on a clock the test moves."""

    def __init__(self) -> None:
        self.parser = ModemParser()
        self.call = ModemCall("modem1", dnis="800")
        self.out: list[ModemOutput] = []

    def feed(self, data: bytes, now: float) -> list[ModemOutput]:
        got: list[ModemOutput] = []
        for event in self.parser.feed(data, now):
            got += self.call.handle(event)
        got += self.call.tick(now)
        self.out += got
        return got

    def tick(self, now: float) -> list[ModemOutput]:
        got = self.call.tick(now)
        self.out += got
        return got


def arrived(out: list[ModemOutput]) -> list[CallArrived]:
    return [o for o in out if isinstance(o, CallArrived)]


def run_whole(data: bytes) -> list[ModemOutput]:
    line = Line()
    line.feed(data, 10.0)
    line.tick(30.0)
    return line.out


@pytest.mark.parametrize(
    ("name", "ani", "caller_name"),
    [
        ("us_formatted", "5045551234", "A N OTHER"),
        ("uk_before_first_ring", "01632960123", "J SMITH"),
        ("private", "P", ""),
        ("out_of_area", "O", ""),
        ("ddn_nmbr", "15045551234", "ACME   LTD"),
        ("mesg", "5045551234", ""),
        ("name_missing", "5045551234", ""),
        ("no_caller_id", "", ""),
        ("non_ascii_name", "5045551234", "ZOË ÅBERG"),
        ("latin1_name", "5045551234", "José"),
        ("lfcr", "5045551234", "A N OTHER"),
        ("cr_only", "5045551234", "A N OTHER"),
        ("sdmf", "5045551234", ""),
        ("mdmf", "5045551234", "A N OTHER"),
        ("mdmf_absent", "O", ""),
        ("mdmf_wrapped", "5045551234", "A N OTHER"),
        ("nul_padded", "504-555-1234", "A N OTHER"),
        ("spaced_oddly", "5045551234", ""),
    ],
)
def test_transcripts_give_one_call(name: str, ani: str, caller_name: str) -> None:
    out = run_whole(t.ALL[name])
    assert out == [
        CallArrived(
            call_id="modem1-1", ani=ani, dnis="800", line="modem1", caller_name=caller_name
        ),
        CallerHungUp(call_id="modem1-1", line="modem1"),
    ]


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(sorted(set(t.ALL) - {"numeric", "echo_on"})),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=20),
)
def test_calls_same_when_split_anywhere(name: str, cuts: list[int]) -> None:
    data = t.ALL[name]
    line = Line()
    start = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        line.feed(data[start:cut], 10.0)
        start = cut
    line.tick(30.0)
    assert line.out == run_whole(data)


def test_us_timing_announced_on_second_ring_and_stopped_by_timeout() -> None:
    line = Line()
    assert line.feed(b"RING\r\n", 0.0) == []
    assert line.call.state is CallState.RINGING
    assert line.feed(b"\r\nDATE = 0321\r\nTIME = 1405\r\nNMBR = 5045551234\r\n", 1.5) == []
    assert line.feed(b"NAME = A N OTHER\r\n", 1.6) == []
    (first,) = line.feed(b"\r\nRING\r\n", 6.0)
    assert first == CallArrived(
        call_id="modem1-1", ani="5045551234", dnis="800", line="modem1", caller_name="A N OTHER"
    )
    assert line.feed(b"RING\r\n", 12.0) == []
    assert line.call.rings == 3
    assert line.call.next_deadline() == 19.0
    assert line.tick(18.9) == []
    assert line.tick(19.0) == [CallerHungUp(call_id="modem1-1", line="modem1")]
    assert state_now(line.call.state) is CallState.IDLE
    assert line.call.next_deadline() is None
    # the next call gets a new id
    line.feed(b"RING\r\n", 40.0)
    (second,) = line.feed(b"RING\r\n", 46.0)
    assert isinstance(second, CallArrived)
    assert second.call_id == "modem1-2"
    assert second.ani == ""  # the first call's caller ID is not carried over


def test_uk_caller_id_announced_on_first_ring() -> None:
    line = Line()
    assert line.feed(b"NMBR=01632960123\r\n", 0.0) == []
    (call,) = line.feed(b"RING\r\n", 0.5)
    assert isinstance(call, CallArrived)
    assert call.ani == "01632960123"


def test_stale_caller_id_belongs_to_no_call() -> None:
    line = Line()
    line.feed(b"NMBR=01632960123\r\n", 0.0)
    line.tick(20.0)
    line.feed(b"RING\r\n", 21.0)
    (call,) = line.feed(b"RING\r\n", 26.0)
    assert isinstance(call, CallArrived)
    assert call.ani == ""


def test_single_ring_announced_then_hung_up() -> None:
    line = Line()
    line.feed(b"RING\r\n", 0.0)
    assert line.tick(6.9) == []
    out = line.tick(7.0)
    assert [type(o) for o in out] == [CallArrived, CallerHungUp]
    # caller ID and the ring-stop seen in one late tick: both, in order
    line.feed(b"RING\r\nNMBR = 5045551234\r\n", 20.0)
    out = line.tick(40.0)
    assert [type(o) for o in out] == [CallArrived, CallerHungUp]
    assert isinstance(out[0], CallArrived)
    assert out[0].ani == "5045551234"


def test_answer_and_hang_up() -> None:
    line = Line()
    line.feed(b"RING\r\n", 0.0)
    (call,) = line.feed(b"RING\r\n", 6.0)
    assert isinstance(call, CallArrived)
    with pytest.raises(TelephonyError, match="modem1-9"):
        line.call.answer("modem1-9", 6.5)
    assert line.call.answer(call.call_id, 7.0) == [Send("ATA")]
    assert line.feed(b"RING\r\n", 8.0) == []  # a late RING while answering
    assert line.feed(b"VCON\r\n", 8.5) == [
        ModemResult(call.call_id, "answer", "connected", "VCON", True)
    ]
    assert line.tick(100.0) == []  # talking: no ring timeout
    assert line.call.hang_up(call.call_id, 101.0) == [Send("ATH")]
    assert line.feed(b"OK\r\n", 101.1) == []
    assert not any(isinstance(o, CallerHungUp) for o in line.out)
    with pytest.raises(TelephonyError):
        line.call.hang_up(call.call_id, 102.0)


def test_far_end_leaves_while_talking() -> None:
    line = Line()
    line.feed(b"RING\r\nRING\r\n", 0.0)
    call_id = line.call.call_id
    assert call_id is not None
    line.call.answer(call_id, 1.0)
    line.feed(b"VCON\r\n", 1.2)
    assert line.feed(b"NO CARRIER\r\n", 30.0) == [CallerHungUp(call_id=call_id, line="modem1")]


def test_answer_too_late_caller_gone() -> None:
    line = Line()
    line.feed(b"RING\r\nRING\r\n", 0.0)
    call_id = line.call.call_id
    assert call_id is not None
    line.call.answer(call_id, 1.0)
    assert line.feed(b"NO CARRIER\r\n", 2.0) == [
        ModemResult(call_id, "answer", "no_carrier", "NO CARRIER", True),
        CallerHungUp(call_id=call_id, line="modem1"),
    ]
    assert line.call.state is CallState.IDLE


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        (b"VCON", "connected"),
        (b"OK", "dialled"),
        (b"BUSY", "busy"),
        (b"NO ANSWER", "no_answer"),
        (b"NO CARRIER", "no_carrier"),
        (b"NO DIALTONE", "no_dialtone"),
        (b"NO DIAL TONE", "no_dialtone"),
        (b"ERROR", "error"),
        (b"7", "busy"),
    ],
)
def test_dial_outcomes(reply: bytes, outcome: str) -> None:
    line = Line()
    assert line.call.dial("5551234", 0.0, call_id="cb-1") == [Send("ATDT5551234;")]
    assert line.call.call_id == "cb-1"
    assert line.feed(b"RINGING\r\n", 1.0) == [
        ModemResult("cb-1", "dial", "ringing", "RINGING", False)
    ]
    result, *ended = line.feed(reply + b"\r\n", 5.0)
    assert result == ModemResult("cb-1", "dial", outcome, reply.decode(), True)
    talking = outcome in ("connected", "dialled")
    assert line.call.state is (CallState.TALKING if talking else CallState.IDLE)
    # a failed dial ends the call in the engine: the agent is not left on nothing
    assert ended == ([] if talking else [CallerHungUp(call_id="cb-1", line="modem1")])
    assert arrived(line.out) == []


def test_dial_refuses_bad_numbers_and_busy_line() -> None:
    line = Line()
    with pytest.raises(TelephonyError, match="cannot dial"):
        line.call.dial("555\rATH", 0.0)
    with pytest.raises(TelephonyError):
        line.call.dial("", 0.0)
    line.feed(b"RING\r\n", 0.0)
    with pytest.raises(TelephonyError, match="ringing"):
        line.call.dial("5551234", 0.5)


def test_dial_ids_unique_with_incoming() -> None:
    line = Line()
    line.call.dial("5551234", 0.0)
    first = line.call.call_id
    line.feed(b"BUSY\r\n", 1.0)
    line.feed(b"RING\r\nRING\r\n", 2.0)
    assert first == "modem1-1"
    assert line.call.call_id == "modem1-2"


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=2000), cuts=st.lists(st.integers(0, 2000), max_size=10))
def test_random_bytes_never_crash_nor_invent_calls(data: bytes, cuts: list[int]) -> None:
    line = Line()
    rings = 0
    start = 0
    for i, cut in enumerate([*sorted({c % (len(data) + 1) for c in cuts}), len(data)]):
        for event in line.parser.feed(data[start:cut], float(i)):
            rings += isinstance(event, Ring)
            line.out += line.call.handle(event)
        start = cut
    line.tick(1000.0)
    calls = arrived(line.out)
    assert len(calls) <= rings
    hung = [o for o in line.out if isinstance(o, CallerHungUp)]
    assert [h.call_id for h in hung] == [c.call_id for c in calls]  # each ended once
    assert not any(isinstance(o, Send | ModemResult) for o in line.out)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=2000).map(lambda b: bytes(x for x in b if x not in b"Rr2")))
def test_bytes_without_a_ring_never_make_a_call(data: bytes) -> None:
    assert arrived(run_whole(data)) == []


# --- start-up ---------------------------------------------------------------------


def ok(at: float) -> Result:
    return Result("OK", "OK", at)


def error(at: float) -> Result:
    return Result("ERROR", "ERROR", at)


def test_startup_plain() -> None:
    neg = StartupNegotiator()
    assert neg.start(0.0) == [Send("ATZ")]
    assert neg.handle(ok(0.2)) == []
    assert neg.state is StartupState.SETTLING
    assert neg.next_deadline() == pytest.approx(1.2)
    assert neg.tick(1.1) == []
    assert neg.tick(1.2) == [Send("ATE0V1Q0S0=0")]
    assert neg.handle(ok(1.3)) == [Send("AT+VCID=1")]
    assert neg.handle(ok(1.4)) == []
    assert state_now(neg.state) is StartupState.READY
    assert neg.caller_id_command == "AT+VCID=1"
    assert neg.next_deadline() is None


def test_startup_caller_id_fallbacks_in_order() -> None:
    neg = StartupNegotiator()
    neg.start(0.0)
    neg.handle(ok(0.1))
    neg.tick(1.1)
    sent = neg.handle(ok(1.2))
    for command in CALLER_ID_COMMANDS[1:]:
        assert sent == [Send(CALLER_ID_COMMANDS[CALLER_ID_COMMANDS.index(command) - 1])]
        sent = neg.handle(error(2.0))
        assert sent == [Send(command)]
    assert neg.handle(ok(2.1)) == []
    assert neg.caller_id_command == "AT-STE=1;+VCID=1"
    assert neg.state is StartupState.READY


def test_startup_no_caller_id_accepted() -> None:
    neg = StartupNegotiator()
    neg.start(0.0)
    neg.handle(ok(0.1))
    neg.tick(1.1)
    neg.handle(ok(1.2))
    for _ in CALLER_ID_COMMANDS:
        neg.handle(error(1.3))
    assert neg.state is StartupState.READY
    assert neg.caller_id_command is None
    assert "no caller-ID" in neg.reason


def test_startup_retries_silent_modem_then_fails() -> None:
    neg = StartupNegotiator(reply_timeout=2.0, tries=3)
    assert neg.start(0.0) == [Send("ATZ")]
    assert neg.tick(2.0) == [Send("ATZ")]
    assert neg.tick(4.0) == [Send("ATZ")]
    assert neg.tick(6.0) == []
    assert neg.state is StartupState.FAILED
    assert "ATZ" in neg.reason
    # re-sent after a reset
    assert neg.start(10.0) == [Send("ATZ")]
    assert state_now(neg.state) is StartupState.RESETTING


def test_startup_silent_caller_id_command_falls_back() -> None:
    neg = StartupNegotiator(reply_timeout=2.0, tries=2)
    neg.start(0.0)
    neg.handle(ok(0.1))
    neg.tick(1.1)
    neg.handle(ok(1.2))
    assert neg.tick(3.2) == [Send("AT+VCID=1")]
    assert neg.tick(5.2) == [Send("AT#CID=1")]


def test_startup_through_the_parser_with_echo_and_numeric_codes() -> None:
    parser = ModemParser()
    neg = StartupNegotiator()
    sent = neg.start(0.0)
    for data, now in [
        (b"ATZ\r\r\nOK\r\n", 0.1),
        (b"", 1.2),
        (b"ATE0V1Q0S0=0\r\r\nOK\r\n", 1.3),
        (b"4\r", 1.4),
        (b"0\r", 1.5),
    ]:
        for event in parser.feed(data, now):
            sent += neg.handle(event)
        sent += neg.tick(now)
    assert sent == [
        Send("ATZ"),
        Send("ATE0V1Q0S0=0"),
        Send("AT+VCID=1"),
        Send("AT#CID=1"),
    ]
    assert neg.caller_id_command == "AT#CID=1"


def test_startup_ignores_ring_and_garbage() -> None:
    neg = StartupNegotiator()
    neg.start(0.0)
    assert neg.handle(Ring(0.1)) == []
    assert neg.state is StartupState.RESETTING


def test_settled_caller_id_announced_before_the_second_ring() -> None:
    line = Line()
    line.feed(b"RING\r\n", 0.0)
    assert line.call.next_deadline() == 7.0
    assert line.feed(b"DATE = 0321\r\nTIME = 1405\r\nNMBR = 5045551234\r\n", 1.5) == []
    assert line.feed(b"NAME = A N OTHER\r\n", 1.6) == []
    assert line.call.next_deadline() == pytest.approx(2.1)
    assert line.tick(2.0) == []
    (call,) = line.tick(2.1)
    assert call == CallArrived(
        call_id="modem1-1", ani="5045551234", dnis="800", line="modem1", caller_name="A N OTHER"
    )
    assert line.call.next_deadline() == 7.0
    assert line.feed(b"RING\r\n", 6.0) == []  # not announced twice
    assert line.call.rings == 2
    assert line.tick(13.0) == [CallerHungUp(call_id="modem1-1", line="modem1")]


def test_rejected_call_rings_on_without_a_new_call() -> None:
    line = Line()
    line.feed(b"RING\r\nRING\r\n", 0.0)
    assert line.call.call_id == "modem1-1"
    assert line.call.hang_up("modem1-1", 1.0) == [Send("ATH")]
    assert line.call.state is CallState.REJECTED
    with pytest.raises(TelephonyError):
        line.call.answer("modem1-1", 1.5)
    assert line.feed(b"RING\r\n", 6.0) == []
    assert line.feed(b"RING\r\n", 12.0) == []
    assert line.call.next_deadline() == 19.0
    assert line.tick(19.0) == []  # no CallerHungUp for a call we ended
    assert state_now(line.call.state) is CallState.IDLE
    line.feed(b"RING\r\nRING\r\n", 30.0)
    assert [c.call_id for c in arrived(line.out)] == ["modem1-1", "modem1-2"]
    assert not any(isinstance(o, CallerHungUp) for o in line.out)


def test_startup_retries_error_on_reset_and_configuration() -> None:
    neg = StartupNegotiator(tries=2)
    neg.start(0.0)
    assert neg.handle(error(0.1)) == [Send("ATZ")]  # some modems need several tries
    assert neg.handle(ok(0.2)) == []
    assert neg.tick(1.2) == [Send("ATE0V1Q0S0=0")]
    assert neg.handle(error(1.3)) == [Send("ATE0V1Q0S0=0")]
    assert neg.handle(error(1.4)) == []
    assert neg.state is StartupState.FAILED
    assert neg.reason == "ATE0V1Q0S0=0 got ERROR after 2 tries"


# --- request timeouts, far end gone, device lost -------------------------------------


def ringing_call(line: Line) -> str:
    line.feed(b"RING\r\nRING\r\n", 0.0)
    assert line.call.call_id is not None
    return line.call.call_id


def test_answer_timeout_gives_the_call_up() -> None:
    line = Line()
    line.call.answer_timeout = 4.0
    call_id = ringing_call(line)
    line.call.answer(call_id, 1.0)
    assert line.call.next_deadline() == 5.0
    assert line.tick(4.9) == []
    assert line.tick(5.0) == [
        ModemResult(call_id, "answer", "timeout", "", True),
        Send("ATH"),
        CallerHungUp(call_id=call_id, line="modem1"),
    ]
    assert line.call.state is CallState.IDLE
    assert line.feed(b"OK\r\n", 5.1) == []  # the ATH's OK makes nothing


def test_dial_timeout_gives_the_call_up() -> None:
    line = Line()
    line.call.dial_timeout = 30.0
    line.call.dial("5551234", 0.0, call_id="cb-7")
    line.feed(b"RINGING\r\n", 3.0)
    assert line.call.next_deadline() == 30.0
    out = line.tick(30.0)
    assert out[0] == ModemResult("cb-7", "dial", "timeout", "", True)
    assert out[-1] == CallerHungUp(call_id="cb-7", line="modem1")


@pytest.mark.parametrize("gone", [b"NO CARRIER", b"BUSY", b"NO ANSWER", b"3", b"7"])
def test_far_end_gone_while_talking_after_a_dial(gone: bytes) -> None:
    line = Line()
    line.call.dial("5551234", 0.0, call_id="cb-2")
    line.feed(b"VCON\r\n", 2.0)
    assert line.call.next_deadline() is None  # talking: no timer
    assert line.feed(gone + b"\r\n", 50.0) == [CallerHungUp(call_id="cb-2", line="modem1")]


def test_line_lost_ends_every_kind_of_live_call() -> None:
    # talking
    line = Line()
    call_id = ringing_call(line)
    line.call.answer(call_id, 1.0)
    line.feed(b"VCON\r\n", 1.5)
    assert line.call.line_lost(2.0) == [CallerHungUp(call_id=call_id, line="modem1")]
    assert line.call.state is CallState.IDLE
    # ringing but not announced yet: announced, then ended (never lost)
    line = Line()
    line.feed(b"RING\r\n", 0.0)
    out = line.call.line_lost(0.5)
    assert [type(o) for o in out] == [CallArrived, CallerHungUp]
    # dialling
    line = Line()
    line.call.dial("5551234", 0.0, call_id="cb-3")
    assert line.call.line_lost(1.0) == [CallerHungUp(call_id="cb-3", line="modem1")]
    # rejected, or nothing at all: nothing to say
    line = Line()
    call_id = ringing_call(line)
    line.call.hang_up(call_id, 1.0)
    assert line.call.line_lost(2.0) == []
    assert Line().call.line_lost(0.0) == []


def test_startup_runs_the_sites_init_commands_and_notes_failures() -> None:
    neg = StartupNegotiator(init=("ATL1", "AT+VGT=200"), reply_timeout=2.0, tries=2)
    neg.start(0.0)
    neg.handle(ok(0.1))
    neg.tick(1.1)
    assert neg.handle(ok(1.2)) == [Send("AT+VCID=1")]
    assert neg.handle(ok(1.3)) == [Send("ATL1")]
    assert neg.state is StartupState.INIT
    assert neg.handle(error(1.4)) == [Send("AT+VGT=200")]
    assert neg.tick(3.4) == [Send("AT+VGT=200")]  # no reply: sent again
    assert neg.tick(5.4) == []
    assert state_now(neg.state) is StartupState.READY
    assert neg.caller_id_command == "AT+VCID=1"
    assert neg.warnings == [
        "init command ATL1 got ERROR",
        "init command AT+VGT=200 got no reply",
    ]


def test_startup_init_commands_also_without_caller_id() -> None:
    neg = StartupNegotiator(caller_id_commands=("AT+VCID=1",), init=("ATL1",))
    neg.start(0.0)
    neg.handle(ok(0.1))
    neg.tick(1.1)
    neg.handle(ok(1.2))
    assert neg.handle(error(1.3)) == [Send("ATL1")]
    assert neg.handle(ok(1.4)) == []
    assert neg.state is StartupState.READY
    assert neg.caller_id_command is None
