"""The agent's own dial (``DialNumber``) in the engine (virtual time, in-memory bus,
simulator trunk with the far end's answer set per number): the agent is told how it goes
(dialling, ringing, then answered, no answer, busy or failed), gets the dialled
customer's outbound card with the queue's outbound script, and goes back to the state
it dialled from: at once when nobody answered, after the wrap-up otherwise."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from cti import topics
from cti.errors import TelephonyError
from cti.models import AgentState, CallDetailRecord, CallerKind, Customer, PhoneNumber
from cti.protocol import (
    CallConnected,
    CallEnded,
    CompleteWrapUp,
    CurrentCall,
    DialNumber,
    DialProgress,
    HangUp,
    HoldCall,
    Login,
    Message,
    SetNotReady,
    SetReady,
)
from telephony_adapters.base import DialEnd, DialOutcome
from telephony_adapters.sim import SimTrunk
from tests.cti.test_voice_room import do
from tests.harness import Center, center_config, engine_center, until, virtual

WANG = Customer(
    id=1, name="王小明", phones=(PhoneNumber(raw="+8613800000001", e164="+8613800000001"),)
)
KNOWN = "+8613800000001"
UNKNOWN = "+8613900000002"
ENDS = ("answered", "no_answer", "busy", "failed")
QUEUES = [
    {"name": "general", "script": "inbound_service_en", "outbound_script": "outbound_survey"},
    {"name": "billing", "script": "inbound_service_en"},
]


def center(tmp_path: Path, trunk: SimTrunk | None = None) -> AbstractAsyncContextManager[Center]:
    """Agent 1001 in both queues, WANG a customer, on ``trunk`` (a simulator trunk)."""
    config = center_config(QUEUES)
    agents = {"1001": ["general", "billing"]}
    return engine_center(tmp_path / "cti.db", config=config, agents=agents,
                         lines=[trunk or SimTrunk()], customers=[WANG])  # fmt: skip


async def as_agent(c: Center, before: str) -> None:
    """1001 logs in, then is Ready or Not Ready (lunch)."""
    assert (await do(c, Login(agent_id="1001"))).ok
    if before == "ready":
        assert (await do(c, SetReady(agent_id="1001"))).ok
    else:
        assert (await do(c, SetNotReady(agent_id="1001", reason="lunch"))).ok


async def dial(c: Center, number: str, queue: str = "") -> list[Message]:
    """Dial ``number`` as 1001: what the agent is told until the dial's end."""
    told: list[Message] = []
    async with c.bus.subscribe(topics.agent_events("1001")) as inbox:
        await c.send(DialNumber(agent_id="1001", number=number, queue=queue))
        async for _topic, message in inbox:
            told.append(message)
            if isinstance(message, DialProgress) and message.state in ENDS:
                return told
    raise AssertionError("the dial never ended")  # pragma: no cover


def progress(told: list[Message]) -> list[str]:
    return [m.state for m in told if isinstance(m, DialProgress)]


def card(told: list[Message]) -> CurrentCall:
    [current] = [m for m in told if isinstance(m, CurrentCall)]
    return current


def state(c: Center) -> tuple[AgentState, str]:
    agent = c.service.router.agent("1001")
    return agent.state, agent.reason


async def records(c: Center) -> list[CallDetailRecord]:
    await c.service.flush()
    return await c.store.calls.records()


BACK = {"not_ready": (AgentState.NOT_READY, "lunch"), "ready": (AgentState.READY, "")}


@pytest.mark.parametrize("before", ["not_ready", "ready"])
def test_an_answered_dial_rings_shows_the_outbound_card_and_goes_back_after_wrap_up(
    tmp_path: Path, before: str
) -> None:
    async def body() -> None:
        async with center(tmp_path) as c:
            await as_agent(c, before)
            told = await dial(c, "138 0000 0001")
            assert progress(told) == ["dialling", "ringing", "answered"]
            assert any(isinstance(m, CallConnected) for m in told)
            pop = card(told).pop
            assert (pop.direction, pop.caller_kind, pop.e164) == (
                "outbound",
                CallerKind.KNOWN,
                KNOWN,
            )
            assert pop.customer is not None
            assert pop.customer.name == "王小明"
            assert pop.dialled_wall > 0
            assert pop.priority_reason == ""
            assert pop.script is not None
            assert pop.script.name == "Satisfaction survey"
            call_id = card(told).call_id
            assert state(c) == (AgentState.TALKING, "")
            assert (await do(c, HangUp(agent_id="1001", call_id=call_id))).ok
            assert state(c)[0] is AgentState.WRAP_UP
            wrap = CompleteWrapUp(agent_id="1001", call_id=call_id, disposition="sale")
            assert (await do(c, wrap)).ok
            assert state(c) == BACK[before]
            [record] = await records(c)
            assert (record.kind, record.outcome, record.disposition) == (
                "manual", "answered", "sale",
            )  # fmt: skip

    virtual(body)


@pytest.mark.parametrize("end", [DialEnd.NO_ANSWER, DialEnd.BUSY, DialEnd.FAILED])
@pytest.mark.parametrize("before", ["not_ready", "ready"])
def test_a_dial_nobody_answers_is_over_at_once_and_the_agent_is_back(
    tmp_path: Path, before: str, end: DialEnd
) -> None:
    async def body() -> None:
        trunk = SimTrunk()
        trunk.far_end[UNKNOWN] = end
        async with center(tmp_path, trunk) as c:
            await as_agent(c, before)
            told = await dial(c, UNKNOWN)
            assert progress(told) == ["dialling", "ringing", end.value]
            assert told[-1].detail == f"simulated {end.value}"  # type: ignore[union-attr]
            assert not any(isinstance(m, CallConnected | CallEnded) for m in told)
            await until(lambda: state(c) == BACK[before])
            assert c.service.router.agent("1001").call_id is None
            [record] = await records(c)
            assert (record.kind, record.outcome, record.disposition, record.agent_id) == (
                "manual", "unanswered", end.value, "1001",
            )  # fmt: skip
            assert record.wrap_up_s == 0.0
            # The far end's hang-up came too, and changed nothing.
            assert c.service.pops.current.get("1001") is None

    virtual(body)


def test_a_queue_without_an_outbound_script_gives_none_not_the_inbound_one(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        async with center(tmp_path) as c:
            await as_agent(c, "ready")
            told = await dial(c, UNKNOWN, queue="billing")
            pop = card(told).pop
            assert (pop.queue, pop.script, pop.caller_kind) == ("billing", None, CallerKind.UNKNOWN)
            assert pop.direction == "outbound"

    virtual(body)


class NoDialTone(SimTrunk):
    async def dial(self, number: str, *, call_id: str | None = None) -> str:
        raise TelephonyError("NO DIALTONE")


class Ringing(SimTrunk):
    """A far end that rings until the agent gives up."""

    async def dial_outcome(self, call_id: str) -> DialOutcome:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")  # pragma: no cover


def test_a_dial_the_line_cannot_place_fails_and_leaves_the_agent_as_it_was(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        async with center(tmp_path, NoDialTone()) as c:
            await as_agent(c, "not_ready")
            told = await dial(c, KNOWN)
            assert progress(told) == ["dialling", "failed"]
            assert "NO DIALTONE" in told[-1].detail  # type: ignore[union-attr]
            assert state(c) == (AgentState.NOT_READY, "lunch")
            assert await records(c) == []

    virtual(body)


def test_no_hold_while_the_dial_rings_and_hanging_up_cancels_it(tmp_path: Path) -> None:
    async def body() -> None:
        async with center(tmp_path, Ringing()) as c:
            await as_agent(c, "not_ready")
            told: list[Message] = []
            async with c.bus.subscribe(topics.agent_events("1001")) as inbox:
                await c.send(DialNumber(agent_id="1001", number=KNOWN))
                async for _topic, message in inbox:
                    told.append(message)
                    if progress(told)[-1:] == ["ringing"]:
                        break
            call_id = card(told).call_id
            held = await do(c, HoldCall(agent_id="1001", call_id=call_id))
            assert "still ringing" in held.error
            assert (await do(c, HangUp(agent_id="1001", call_id=call_id))).ok
            assert state(c) == (AgentState.NOT_READY, "lunch")
            [record] = await records(c)
            assert (record.outcome, record.disposition) == ("unanswered", "cancelled")
            assert c.trunk.state(call_id) is None  # the line stopped ringing

    virtual(body)
