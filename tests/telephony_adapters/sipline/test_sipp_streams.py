"""The SIP line over TCP against SIPp (``-t t1``), both directions (marker ``sipp``):
SIPp calls the line (the caller hangs up; the agent hangs up, our BYE on SIPp's
connection) and the line dials SIPp (``;transport=tcp``).

TLS: Debian's SIPp 3.6.1 is built without OpenSSL (``-t l1`` says "you must compile
SIPp with OpenSSL"), so TLS is tested line to line: one line dials another over
``sips:`` (the callee's certificate verified against the test CA, or pinned; refused
when neither), the callee answers, either side hangs up."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cti.protocol import CallArrived, CallerHungUp
from telephony_adapters.sipline.line import SipLine
from telephony_adapters.sipline.params import SipLineParams
from telephony_adapters.sipline.tls import fingerprint
from telephony_adapters.sipline.transaction import Timers
from tests.telephony_adapters.sipline.certs import TestPki, make_pki
from tests.telephony_adapters.sipline.sipp import Sipp

pytestmark = pytest.mark.sipp

MODES = {"tcp": "t1"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def params(pki: TestPki, **kw: object) -> SipLineParams:
    base = SipLineParams(
        name="sip", bind_host="127.0.0.1", bind_port=0, tls_port=0,
        transports=("udp", "tcp", "tls"), tls_cert_file=str(pki.cert),
        tls_key_file=str(pki.key), tls_ca_file=str(pki.ca), keepalive_s=0,
    )  # fmt: skip
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


@pytest.fixture
async def line(pki: TestPki) -> AsyncIterator[SipLine]:
    sip = SipLine(params(pki), media=False, timers=Timers(t1=0.1))
    await sip.start()
    yield sip
    await sip.stop()


@pytest.fixture
async def sipp(tmp_path: Path) -> AsyncIterator[Sipp]:
    peer = Sipp(tmp_path)
    yield peer
    await peer.stop()


async def start_sipp(
    sipp: Sipp, pki: TestPki, scenario: str, transport: str, target: str | None = None
) -> None:
    await sipp.start(scenario, "-t", MODES[transport], target=target)
    if target is None:  # SIPp is called: TCP refuses until it listens (no retransmission)
        await listening(sipp.port)


def _listens(port: int) -> bool:
    """Whether a TCP socket listens on ``port`` (read from /proc, no connection made)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for row in f.read().splitlines()[1:]:
                local, state = row.split()[1], row.split()[3]
                if state == "0A" and int(local.rpartition(":")[2], 16) == port:
                    return True
    return False


async def listening(port: int) -> None:
    for _ in range(500):  # SIPp starting: no output tells when it listens, so polled
        if _listens(port):
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"SIPp does not listen on TCP port {port} after 10 s")


@pytest.mark.parametrize("transport", ["tcp"])
@pytest.mark.parametrize("scenario", ["caller_hangs_up.xml", "agent_hangs_up.xml"])
async def test_sipp_calls_the_line(
    line: SipLine, sipp: Sipp, pki: TestPki, transport: str, scenario: str
) -> None:
    events = aiter(line.events())
    host, port = line.address(transport)
    await start_sipp(sipp, pki, scenario, transport, target=f"{host}:{port}")
    arrived = await asyncio.wait_for(anext(events), 15)
    assert isinstance(arrived, CallArrived)
    assert arrived.dnis == "800"
    await line.answer(arrived.call_id)
    if scenario == "agent_hangs_up.xml":
        await line.wait_for(lambda: line.ua.call_state(arrived.call_id) == "confirmed")
        await line.hang_up(arrived.call_id)
    else:
        ended = await asyncio.wait_for(anext(events), 15)
        assert ended == CallerHungUp(call_id=arrived.call_id, line="sip")
    run = await sipp.wait()
    assert run.returncode == 0, run.explain()
    await line.wait_for(lambda: not line.ua.calls)
    # Everything went over the one connection SIPp opened (our BYE too: no second one).
    assert line._net is not None
    assert line._net.streams.opened == 1


def dial_uri(transport: str, port: int) -> str:
    if transport == "tls":
        return f"sips:callee@127.0.0.1:{port}"
    return f"sip:callee@127.0.0.1:{port};transport=tcp"


@pytest.mark.parametrize("transport", ["tcp"])
async def test_the_line_dials_sipp(line: SipLine, sipp: Sipp, pki: TestPki, transport: str) -> None:
    await start_sipp(sipp, pki, "callee_answers.xml", transport)
    call_id = await line.dial(dial_uri(transport, sipp.port))
    await line.wait_for(lambda: call_id in line.outcomes and line.outcomes[call_id].final)
    assert line.outcomes[call_id].outcome == "answered"
    await line.hang_up(call_id)
    run = await sipp.wait()
    assert run.returncode == 0, run.explain()
    await line.wait_for(lambda: not line.ua.calls)
    assert line._net is not None
    assert line._net.streams.opened == 1  # INVITE, ACK and BYE on the one we opened


async def tls_call(pki: TestPki, caller: SipLine, *, callee_hangs_up: bool) -> None:
    """``caller`` dials a second line over TLS; it answers; one side hangs up."""
    callee = SipLine(params(pki), media=False, timers=Timers(t1=0.1))
    await callee.start()
    try:
        events = aiter(callee.events())
        call_id = await caller.dial(dial_uri("tls", callee.address("tls")[1]))
        arrived = await asyncio.wait_for(anext(events), 15)
        assert isinstance(arrived, CallArrived)
        assert arrived.dnis == "callee"
        await callee.answer(arrived.call_id)
        await caller.wait_for(lambda: caller.outcomes[call_id].final)
        assert caller.outcomes[call_id].outcome == "answered"
        await callee.wait_for(lambda: callee.ua.call_state(arrived.call_id) == "confirmed")
        if callee_hangs_up:
            await callee.hang_up(arrived.call_id)
            await caller.wait_for(lambda: not caller.ua.calls)
        else:
            await caller.hang_up(call_id)
            ended = await asyncio.wait_for(anext(events), 15)
            assert ended == CallerHungUp(call_id=arrived.call_id, line="sip")
        await callee.wait_for(lambda: not callee.ua.calls)
        assert callee._net is not None
        assert caller._net is not None
        assert (callee._net.streams.opened, caller._net.streams.opened) == (1, 1)
    finally:
        await callee.stop()


@pytest.mark.parametrize("callee_hangs_up", [False, True])
async def test_a_line_calls_another_over_tls(
    line: SipLine, pki: TestPki, callee_hangs_up: bool
) -> None:
    await tls_call(pki, line, callee_hangs_up=callee_hangs_up)


async def test_a_pinned_certificate_is_accepted_without_the_ca(pki: TestPki) -> None:
    pin = fingerprint(pki.der.read_bytes())
    caller = SipLine(params(pki, tls_ca_file="", tls_pin_sha256=(pin,)), media=False)
    await caller.start()
    try:
        await tls_call(pki, caller, callee_hangs_up=False)
    finally:
        await caller.stop()


@pytest.mark.parametrize("trust", ["system CAs", "another pin"])
async def test_an_untrusted_certificate_is_refused(pki: TestPki, trust: str) -> None:
    pins = ("ab" * 32,) if trust == "another pin" else ()
    caller = SipLine(params(pki, tls_ca_file="", tls_pin_sha256=pins), media=False,
                     timers=Timers(t1=0.02))  # fmt: skip
    callee = SipLine(params(pki), media=False)
    await caller.start()
    await callee.start()
    try:
        call_id = await caller.dial(dial_uri("tls", callee.address("tls")[1]))
        await caller.wait_for(lambda: call_id in caller.outcomes and caller.outcomes[call_id].final)
        assert (caller.outcomes[call_id].outcome, caller.outcomes[call_id].status) == ("failed", 0)
        assert not callee.ua.calls  # nothing reached it
    finally:
        await caller.stop()
        await callee.stop()
