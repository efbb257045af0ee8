"""A transfer to a number through the engine, with SIPp as the caller's trunk (marker
``sipp``): the desk's ``TransferCall(number=...)`` makes the line REFER the caller to
the number in E.164. SIPp accepts (202, NOTIFY 100 then 200): the line ends its leg and
the agent is in wrap-up. SIPp declines (603): the desk hears why, the caller stays with
the agent, who hangs up. Each SIPp run must exit 0."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from cti import topics
from cti.bus.memory import InMemoryBus
from cti.config import Config
from cti.models import AgentState
from cti.protocol import (
    AcceptOffer,
    CallArrived,
    CallConnected,
    CallControl,
    CallEnded,
    CallerHungUp,
    CallOffered,
    HangUp,
    Login,
    SetReady,
    TransferCall,
)
from telephony_adapters.base import LineEvent
from telephony_adapters.sipline.line import SipLine
from telephony_adapters.sipline.params import SipLineParams
from tests.cti.test_service import Agent, FakeStore
from tests.harness import engine_center, until
from tests.telephony_adapters.sipline.sipp import Sipp
from tests.telephony_adapters.sipline.test_sipp import target

pytestmark = pytest.mark.sipp

NUMBER = "139 0000 0001"


@asynccontextmanager
async def answered(
    scenario: str, tmp_path: Path
) -> AsyncIterator[tuple[Agent, str, SipLine, Sipp]]:
    """The engine on a SIP line, agent 1001 talking with SIPp (playing ``scenario``)."""
    line = SipLine(SipLineParams(name="sip", bind_host="127.0.0.1", bind_port=0))
    bus = InMemoryBus()
    agent = Agent(bus, "1001")
    sipp = Sipp(tmp_path)
    async with (
        bus.subscribe(topics.agent_events("1001")) as inbox,
        engine_center(FakeStore(customers=[]), config=Config(), agents={"1001": ["general"]},
                      lines=[line], bus=bus) as c,
    ):  # fmt: skip

        async def deliver() -> None:
            async for _topic, message in inbox:
                agent.inbox.put_nowait(message)

        delivery = asyncio.create_task(deliver())
        try:
            await agent.send(Login(agent_id="1001"))
            await agent.send(SetReady(agent_id="1001"))
            await sipp.start(scenario, target=target(line))
            call_id = (await agent.expect(CallOffered)).pop.call_id
            await agent.send(AcceptOffer(agent_id="1001", call_id=call_id))
            await agent.expect(CallConnected)
            await line.wait_for(lambda: line.ua.call_state(call_id) == "confirmed")  # ACKed
            yield agent, call_id, line, sipp
            run = await sipp.wait()
            assert run.returncode == 0, run.explain()
            await line.wait_for(lambda: not line.ua.calls)
            await until(lambda: c.service.router.agent("1001").state is AgentState.WRAP_UP)
        finally:
            delivery.cancel()
            await asyncio.gather(delivery, return_exceptions=True)
            await sipp.stop()


async def test_a_trunk_that_takes_the_refer_ends_the_call_for_the_agent(tmp_path: Path) -> None:
    async with answered("caller_refer_accepted.xml", tmp_path) as (agent, call_id, line, _):
        out = TransferCall(agent_id="1001", call_id=call_id, number=NUMBER)
        assert (await agent.do(out)).ok
        assert (await agent.expect(CallEnded)).by == "agent"
        assert [t.status for t in line.transfers[call_id]] == [202, 100, 200]


async def test_a_trunk_that_declines_the_refer_leaves_the_caller_with_the_agent(
    tmp_path: Path,
) -> None:
    async with answered("caller_refer_refused.xml", tmp_path) as (agent, call_id, line, _):
        out = TransferCall(agent_id="1001", call_id=call_id, number=NUMBER)
        assert (await agent.do(out)).ok
        while not (told := await agent.expect(CallControl)).note:
            pass
        assert "603 Decline" in told.note
        assert "still with you" in told.note
        assert line.ua.live(call_id)
        assert (await agent.do(HangUp(agent_id="1001", call_id=call_id))).ok


# --- a trunk that declines the REFER: a second trunk leg bridged (.transfer_out) -------


@asynccontextmanager
async def voiced_line(tmp_path: Path) -> AsyncIterator[SipLine]:
    """A line that carries the voice (agent 1001 has a phone; it is never rung here)."""
    line = SipLine(SipLineParams(
        name="sip", bind_host="127.0.0.1", bind_port=0, phones={"1001": "sip:1001@127.0.0.1:9"},
        recordings_dir=str(tmp_path / "rec"),
    ), dial_timeout_s=5.0)  # fmt: skip
    await line.start()
    try:
        yield line
    finally:
        await line.stop()


def number(far: Sipp) -> str:
    """The number as a URI at ``far`` (no registrar or proxy: a bare number would go to
    the trunk the call came from, the caller's SIPp)."""
    return f"sip:+8613900000001@127.0.0.1:{far.port}"


def drained(line: SipLine) -> list[LineEvent]:
    return [line._events.get_nowait() for _ in range(line._events.qsize())]


async def caller_answered(line: SipLine, caller: Sipp) -> str:
    events = aiter(line.events())
    await caller.start("caller_refer_refused.xml", target=target(line))
    while not isinstance(arrived := await anext(events), CallArrived):
        pass  # the phone's reachability
    await line.answer(arrived.call_id)
    await line.wait_for(lambda: line.ua.call_state(arrived.call_id) == "confirmed")
    return arrived.call_id


async def test_a_declined_refer_bridges_the_caller_to_a_second_leg_until_it_hangs_up(
    tmp_path: Path,
) -> None:
    caller, far = Sipp(tmp_path / "caller"), Sipp(tmp_path / "far")
    (tmp_path / "caller").mkdir()
    (tmp_path / "far").mkdir()
    try:
        async with voiced_line(tmp_path) as line:
            await far.start("callee_answers_hangs_up.xml")
            call_id = await caller_answered(line, caller)
            await line.transfer(call_id, number(far))
            result = await line.transfer_outcome(call_id)
            assert result.transferred, result.detail
            assert "603 Decline" in result.detail
            await line.hang_up(call_id)  # the engine's, after "transferred": no BYE
            # The far number hangs up: the line hangs up the caller (SIPp's BYE is
            # answered), and the engine hears one CallerHungUp, for the caller's call.
            for sipp in (far, caller):
                run = await sipp.wait()
                assert run.returncode == 0, run.explain()
            await line.wait_for(lambda: not line.ua.calls)
            ended = [e for e in drained(line) if isinstance(e, CallerHungUp)]
            assert ended == [CallerHungUp(call_id=call_id, line="sip")]
            assert list(line.outcomes) == [f"{call_id}^out"]  # the second leg, answered
    finally:
        await caller.stop()
        await far.stop()


async def test_a_busy_second_leg_leaves_the_caller_on_the_line(tmp_path: Path) -> None:
    caller, far = Sipp(tmp_path / "caller"), Sipp(tmp_path / "far")
    (tmp_path / "caller").mkdir()
    (tmp_path / "far").mkdir()
    try:
        async with voiced_line(tmp_path) as line:
            await far.start("callee_busy.xml")
            call_id = await caller_answered(line, caller)
            await line.transfer(call_id, number(far))
            result = await line.transfer_outcome(call_id)
            assert not result.transferred
            assert "603 Decline" in result.detail
            assert "486" in result.detail
            assert line.ua.live(call_id)
            await line.hang_up(call_id)  # the agent hangs up: SIPp gets its BYE
            for sipp in (far, caller):
                run = await sipp.wait()
                assert run.returncode == 0, run.explain()
            # The second leg's end is not the engine's.
            assert not [e for e in drained(line) if isinstance(e, CallerHungUp)]
    finally:
        await caller.stop()
        await far.stop()
