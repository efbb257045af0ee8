"""The SIP line against SIPp, a real SIP peer, on 127.0.0.1 (marker ``sipp``).

SIPp as the caller (answered, then the caller hangs up; the agent hangs up; the caller
cancels while ringing) and as the callee (answered; 486 busy; no answer, then CANCEL;
a digest challenge). Each SIPp run must exit 0: every message it expected came, in
order, and nothing unexpected did.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cti import topics
from cti.bus.memory import InMemoryBus
from cti.config import Config
from cti.protocol import (
    AcceptOffer,
    CallArrived,
    CallConnected,
    CallEnded,
    CallerHungUp,
    CallOffered,
    DtmfReceived,
    HangUp,
    Login,
    SetReady,
)
from telephony_adapters.base import LineEvent
from telephony_adapters.sipline.line import SipLine
from telephony_adapters.sipline.params import SipLineParams
from tests.cti.test_service import Agent, FakeStore
from tests.harness import engine_center
from tests.telephony_adapters.sipline.sipp import Sipp

pytestmark = pytest.mark.sipp


@pytest.fixture
async def line() -> AsyncIterator[SipLine]:
    sip = SipLine(
        SipLineParams(
            name="sip", bind_host="127.0.0.1", bind_port=0, username="cti", password="secret"
        ),
        dial_timeout_s=1.0,
    )
    await sip.start()
    yield sip
    await sip.stop()


@pytest.fixture
async def sipp(tmp_path: Path) -> AsyncIterator[Sipp]:
    peer = Sipp(tmp_path)
    yield peer
    await peer.stop()


async def next_event(line: SipLine, events: AsyncIterator[LineEvent]) -> LineEvent:
    return await asyncio.wait_for(anext(events), 15)


def target(line: SipLine) -> str:
    host, port = line.local_address
    return f"{host}:{port}"


async def test_sipp_calls_the_agent_answers_and_the_caller_hangs_up(
    line: SipLine, sipp: Sipp
) -> None:
    events = aiter(line.events())
    await sipp.start("caller_hangs_up.xml", target=target(line))
    arrived = await next_event(line, events)
    assert isinstance(arrived, CallArrived)
    assert (arrived.ani, arrived.caller_name, arrived.dnis, arrived.line) == (
        "13812345678",
        "Zhang San",
        "800",
        "sip",
    )
    await line.answer(arrived.call_id)
    ended = await next_event(line, events)
    assert ended == CallerHungUp(call_id=arrived.call_id, line="sip")
    run = await sipp.wait()
    assert run.returncode == 0, run.explain()
    assert not line.ua.calls


async def test_sipp_calls_and_the_agent_hangs_up(line: SipLine, sipp: Sipp) -> None:
    events = aiter(line.events())
    await sipp.start("agent_hangs_up.xml", target=target(line))
    arrived = await next_event(line, events)
    assert isinstance(arrived, CallArrived)
    await line.answer(arrived.call_id)
    await line.wait_for(lambda: line.ua.call_state(arrived.call_id) == "confirmed")
    await line.hang_up(arrived.call_id)
    run = await sipp.wait()
    assert run.returncode == 0, run.explain()
    await line.wait_for(lambda: not line.ua.calls)  # the BYE's 200 came back
    assert line._events.empty()  # our own hang-up makes no CallerHungUp


async def test_sipp_cancels_while_ringing(line: SipLine, sipp: Sipp) -> None:
    events = aiter(line.events())
    await sipp.start("caller_cancels.xml", target=target(line))
    arrived = await next_event(line, events)
    assert isinstance(arrived, CallArrived)
    ended = await next_event(line, events)
    assert ended == CallerHungUp(call_id=arrived.call_id, line="sip")
    run = await sipp.wait()
    assert run.returncode == 0, run.explain()
    from cti.errors import TelephonyError

    with pytest.raises(TelephonyError):
        await line.answer(arrived.call_id)


# --- SIPp as the callee: the line dials out ------------------------------------------


async def test_the_line_dials_sipp_which_answers_and_the_agent_hangs_up(
    line: SipLine, sipp: Sipp
) -> None:
    await sipp.start("callee_answers.xml")
    call_id = await line.dial(f"sip:callee@127.0.0.1:{sipp.port}", call_id="cb-1")
    assert call_id == "cb-1"
    await line.wait_for(lambda: call_id in line.outcomes and line.outcomes[call_id].final)
    assert line.outcomes[call_id].outcome == "answered"
    assert line.ua.calls[call_id].plan is not None
    assert line.ua.calls[call_id].plan.codec == "PCMA"  # type: ignore[union-attr]
    await line.hang_up(call_id)
    run = await sipp.wait()
    assert run.returncode == 0, run.explain()
    await line.wait_for(lambda: not line.ua.calls)
    assert line._events.empty()


async def test_the_line_dials_sipp_which_is_busy(line: SipLine, sipp: Sipp) -> None:
    events = aiter(line.events())
    await sipp.start("callee_busy.xml")
    call_id = await line.dial(f"sip:callee@127.0.0.1:{sipp.port}")
    assert await next_event(line, events) == CallerHungUp(call_id=call_id, line="sip")
    outcome = line.outcomes[call_id]
    assert (outcome.outcome, outcome.status, outcome.final) == ("busy", 486, True)
    run = await sipp.wait()
    assert run.returncode == 0, run.explain()


async def test_the_line_dials_sipp_which_rings_unanswered_until_the_line_cancels(
    line: SipLine, sipp: Sipp
) -> None:
    events = aiter(line.events())
    await sipp.start("callee_no_answer.xml")
    call_id = await line.dial(f"sip:callee@127.0.0.1:{sipp.port}")  # dial_timeout_s=1
    assert await next_event(line, events) == CallerHungUp(call_id=call_id, line="sip")
    outcome = line.outcomes[call_id]
    assert (outcome.outcome, outcome.status) == ("no_answer", 487)
    run = await sipp.wait()
    assert run.returncode == 0, run.explain()


async def test_the_line_answers_a_digest_challenge_from_sipp(line: SipLine, sipp: Sipp) -> None:
    await sipp.start("callee_digest.xml")
    call_id = await line.dial(f"sip:callee@127.0.0.1:{sipp.port}")
    await line.wait_for(lambda: call_id in line.outcomes and line.outcomes[call_id].final)
    assert line.outcomes[call_id].outcome == "answered"
    await line.hang_up(call_id)
    run = await sipp.wait()
    assert run.returncode == 0, run.explain()


async def test_sipp_dtmf_then_hold_resume_and_blind_transfer(line: SipLine, sipp: Sipp) -> None:
    events = aiter(line.events())
    await sipp.start("caller_dtmf_hold_transfer.xml", target=target(line))
    arrived = await next_event(line, events)
    assert isinstance(arrived, CallArrived)
    call_id = arrived.call_id
    await line.answer(call_id)
    keys = [await next_event(line, events), await next_event(line, events)]
    assert keys == [DtmfReceived(call_id=call_id, key=k, line="sip") for k in "42"]
    assert [k for c, k in line.dtmf if c == call_id] == ["4", "2"]
    call = line.ua.calls[call_id]
    await line.hold(call_id)
    await line.wait_for(lambda: call.reinvite_txn is None)
    assert call.plan is not None
    assert call.plan.direction == "sendonly"
    await line.resume(call_id)
    await line.wait_for(lambda: call.reinvite_txn is None)
    assert call.plan is not None
    assert call.plan.direction == "sendrecv"
    await line.transfer(call_id, "sip:1002@127.0.0.1")
    await line.wait_for(lambda: any(t.final for t in line.transfers.get(call_id, [])))
    assert [t.status for t in line.transfers[call_id]] == [202, 100, 200]
    run = await sipp.wait()
    assert run.returncode == 0, run.explain()
    await line.wait_for(lambda: not line.ua.calls)
    assert line._events.empty()  # a completed transfer ends the leg like our hang-up


async def test_dtmf_from_sipp_reaches_the_agent_through_the_engine(sipp: Sipp) -> None:
    """The whole way: SIPp's keys (RTP) -> the line -> the engine -> the agent's topic."""
    line = SipLine(SipLineParams(name="sip", bind_host="127.0.0.1", bind_port=0))
    bus = InMemoryBus()
    agent = Agent(bus, "1001")
    async with (
        bus.subscribe(topics.agent_events("1001")) as inbox,
        engine_center(
            FakeStore(customers=[]), config=Config(), agents={"1001": ["general"]},
            lines=[line], bus=bus,
        ),
    ):  # fmt: skip

        async def deliver() -> None:
            async for _topic, message in inbox:
                agent.inbox.put_nowait(message)

        delivery = asyncio.create_task(deliver())
        try:
            await agent.send(Login(agent_id="1001"))
            await agent.send(SetReady(agent_id="1001"))
            await sipp.start("caller_dtmf_agent_hangs_up.xml", target=target(line))
            offer = await agent.expect(CallOffered)
            call_id = offer.pop.call_id
            assert offer.pop.ani == "13812345678"
            await agent.send(AcceptOffer(agent_id="1001", call_id=call_id))
            await agent.expect(CallConnected)
            keys = [await agent.expect(DtmfReceived) for _ in range(4)]
            assert keys == [DtmfReceived(call_id=call_id, key=k, line="sip") for k in "1*9#"]
            await agent.send(HangUp(agent_id="1001", call_id=call_id))
            assert (await agent.expect(CallEnded)).by == "agent"
            run = await sipp.wait()
            assert run.returncode == 0, run.explain()
            await line.wait_for(lambda: not line.ua.calls)
        finally:
            delivery.cancel()
            await asyncio.gather(delivery, return_exceptions=True)
    assert line._net is None  # the engine stopped its line on the way out


async def test_registration_with_digest_refresh_and_withdrawal_at_sipp(sipp: Sipp) -> None:
    await sipp.start("registrar.xml")
    settings = SipLineParams(
        name="sip",
        bind_host="127.0.0.1",
        bind_port=0,
        registrar=f"127.0.0.1:{sipp.port}",
        username="cti",
        password="secret",
        register_expires_s=60,
        keepalive_s=0,  # SIPp would take an OPTIONS (a new Call-ID) for a new call
    )
    line = SipLine(settings)
    await line.start()
    try:
        await line.wait_for(lambda: line.ua.registered)
        first = line.ua.registration_expires_at
        assert first is not None
        await line.wait_for(  # refreshed before the 2 s granted ran out, now for 60 s
            lambda: (line.ua.registration_expires_at or 0) > first + 30
        )
    finally:
        await line.stop()  # withdraws the registration (Expires: 0)
    run = await sipp.wait()
    assert run.returncode == 0, run.explain()
