"""An agent's accept, reject or hang-up is answered by the event it causes, naming it
(``command_id``), with no CommandResult of its own (issue 23: two messages, and two
acknowledgements, a call fewer over a broker); a refusal, a repeat, and a command whose
event is another's (a consultation's hang-up) are still answered by a CommandResult."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from cti import topics
from cti.bus.memory import InMemoryBus
from cti.engine.dispatch import Answers
from cti.models import AgentState
from cti.protocol import (
    AcceptOffer,
    AgentStateChanged,
    CallConnected,
    CallEnded,
    CallOffered,
    CommandResult,
    CompleteWrapUp,
    ConsultCall,
    HangUp,
    Login,
    Message,
    OfferWithdrawn,
    RejectOffer,
    SetReady,
    answer,
)
from queue_engine.actions import ConnectCall, DisconnectCall
from tests.cti.test_service import FakeStore
from tests.harness import Center, center_config, engine_center, until, virtual


class CountingBus(InMemoryBus):
    """The in-memory bus, keeping every message published, in order, with its topic."""

    def __init__(self) -> None:
        super().__init__()
        self.published: list[tuple[str, Message]] = []

    def publish_nowait(self, topic: str, message: Message, *, retain: bool = False) -> None:
        self.published.append((topic, message))
        super().publish_nowait(topic, message, retain=retain)

    def on(self, topic: str) -> list[Message]:
        return [message for t, message in self.published if t == topic]


@asynccontextmanager
async def center(*agents: str) -> AsyncIterator[Center[CountingBus]]:
    config = center_config(
        [{"name": "general", "offer_timeout_s": 600.0, "wrap_up_s": 600.0}],
        engine={"dispositions": ["ok"]},
    )
    async with engine_center(
        FakeStore(), config=config, agents={a: ["general"] for a in agents}, bus=CountingBus()
    ) as c:
        for agent in agents:
            await c.send(Login(agent_id=agent))
            await c.send(SetReady(agent_id=agent))
        await until(
            lambda: all(c.service.router.agent(a).state is AgentState.READY for a in agents)
        )
        yield c


async def answered(c: Center[CountingBus], agent: str, command_id: str) -> CommandResult:
    """The answer the engine gave ``command_id`` on the agent's events topic (waits)."""
    events = topics.agent_events(agent)
    await until(lambda: any(_answers(m, command_id) for m in c.bus.on(events)), what=command_id)
    [result] = [r for m in c.bus.on(events) if (r := _answers(m, command_id)) is not None]
    return result


def _answers(message: Message, command_id: str) -> CommandResult | None:
    result = answer(message)
    return result if result is not None and result.command_id == command_id else None


def test_a_call_is_eight_messages_from_the_engine_where_it_was_ten() -> None:
    async def body() -> None:
        async with center("1001") as c:
            call_id = c.trunk.ring("13812345678")
            await until(lambda: c.service.router.agent("1001").state is AgentState.RESERVED)
            accept = AcceptOffer(agent_id="1001", call_id=call_id)
            hang_up = HangUp(agent_id="1001", call_id=call_id)
            done = CompleteWrapUp(agent_id="1001", call_id=call_id, disposition="ok")
            for command in (accept, hang_up, done):
                await c.send(command)
                await answered(c, "1001", command.command_id)
            await c.service.flush()
            events = c.bus.on(topics.agent_events("1001"))
            assert events[2:] == [
                events[2],  # the offer
                CallConnected(agent_id="1001", call_id=call_id, command_id=accept.command_id),
                CallEnded(
                    agent_id="1001", call_id=call_id, by="agent", command_id=hang_up.command_id
                ),
                CommandResult(command_id=done.command_id, ok=True),
            ]
            assert isinstance(events[2], CallOffered)
            # The call, from its offer: the offer, connected, ended, the wrap-up's result
            # and the agent's four states (Reserved, Talking, Wrap-up, Ready).
            mine = {topics.agent_events("1001"), topics.agent_state("1001")}
            start = next(n for n, (_, m) in enumerate(c.bus.published) if m is events[2])
            call = [m for t, m in c.bus.published[start:] if t in mine]
            assert sum(isinstance(m, AgentStateChanged) for m in call) == 4
            assert len(call) == 8

    virtual(body)


def test_a_refused_accept_is_answered_by_its_result_and_a_repeat_alike() -> None:
    async def body() -> None:
        async with center("1001") as c:
            stale = AcceptOffer(agent_id="1001", call_id="no-such-call")
            await c.send(stale)
            refused = await answered(c, "1001", stale.command_id)
            assert not refused.ok
            assert "no-such-call" in refused.error
            call_id = c.trunk.ring("13812345678")
            await until(lambda: c.service.router.agent("1001").state is AgentState.RESERVED)
            early = HangUp(agent_id="1001", call_id=call_id)  # not talking yet: refused
            await c.send(early)
            assert not (await answered(c, "1001", early.command_id)).ok
            accept = AcceptOffer(agent_id="1001", call_id=call_id)
            await c.send(accept)
            await answered(c, "1001", accept.command_id)
            hang_up = HangUp(agent_id="1001", call_id=call_id)
            await c.send(hang_up)
            assert (await answered(c, "1001", hang_up.command_id)).ok
            await c.send(hang_up)  # again, as a console that did not hear the answer
            events = topics.agent_events("1001")
            repeat = CommandResult(command_id=hang_up.command_id, ok=True)
            await until(lambda: repeat in c.bus.on(events), what="the repeat's answer")
            ended = [m for m in c.bus.on(events) if isinstance(m, CallEnded)]
            assert [m.command_id for m in ended] == [hang_up.command_id]  # applied once
            results = [m for m in c.bus.on(events) if isinstance(m, CommandResult)]
            assert [m.command_id for m in results if not m.ok] == [
                stale.command_id,
                early.command_id,
            ]

    virtual(body)


def test_a_reject_is_answered_by_the_withdrawal_and_a_consultations_by_events_or_results() -> None:
    async def body() -> None:
        agents = ("1001", "1002")
        async with center(*agents) as c:
            call_id = c.trunk.ring("13812345678")
            router = c.service.router
            await until(lambda: any(router.agent(a).state is AgentState.RESERVED for a in agents))
            [first] = [a for a in agents if router.agent(a).state is AgentState.RESERVED]
            reject = RejectOffer(agent_id=first, call_id=call_id)
            await c.send(reject)
            withdrawn = await answered(c, first, reject.command_id)
            assert withdrawn.ok
            [gone] = [
                m for m in c.bus.on(topics.agent_events(first)) if isinstance(m, OfferWithdrawn)
            ]
            assert gone.command_id == reject.command_id
            assert not any(isinstance(m, CommandResult) and m.command_id == reject.command_id
                           for m in c.bus.on(topics.agent_events(first)))  # fmt: skip
            other = "1002" if first == "1001" else "1001"
            await until(lambda: c.service.router.agent(other).state is AgentState.RESERVED)
            accept = AcceptOffer(agent_id=other, call_id=call_id)
            await c.send(accept)
            await answered(c, other, accept.command_id)
            await c.send(SetReady(agent_id=first))  # back from the reject's Not Ready
            await until(lambda: c.service.router.agent(first).state is AgentState.READY)
            consult = ConsultCall(agent_id=other, call_id=call_id, to_agent=first)
            await c.send(consult)
            assert (await answered(c, other, consult.command_id)).ok
            await until(lambda: c.service.router.agent(first).state is AgentState.RESERVED)
            join = AcceptOffer(agent_id=first, call_id=call_id)  # the consultation: JoinCall
            await c.send(join)
            await answered(c, first, join.command_id)
            [joined] = [m for m in c.bus.on(topics.agent_events(first))
                        if isinstance(m, CallConnected)]  # fmt: skip
            assert joined.command_id == join.command_id
            leave = HangUp(agent_id=first, call_id=call_id)  # leaves the consultation only
            await c.send(leave)
            left = await answered(c, first, leave.command_id)
            assert left.ok
            # No CallEnded for it (the call goes on with the other agent): its own result.
            assert left in c.bus.on(topics.agent_events(first))
            assert not any(isinstance(m, CallEnded) for m in c.bus.on(topics.agent_events(first)))
            assert c.service.router.call_agent(call_id) == other

    virtual(body)


def test_answers_hold_back_a_result_only_when_its_event_answered() -> None:
    answers = Answers()
    accept = AcceptOffer(agent_id="1001", call_id="c1")
    again = AcceptOffer(agent_id="1001", call_id="c1")  # another id, the same call
    hang_up = HangUp(agent_id="1001", call_id="c1")
    for command in (accept, again, hang_up):
        answers.expect(command)
    connected = answers.connected(ConnectCall("c1", "1001", None, False))
    assert connected.command_id == accept.command_id
    assert answers.connected(ConnectCall("c1", "1001", None, False)).command_id == ""
    assert not answers.due(CommandResult(command_id=accept.command_id, ok=True))
    assert answers.due(CommandResult(command_id=accept.command_id, ok=True))  # a repeat
    assert answers.due(CommandResult(command_id=again.command_id, ok=True))  # its own result
    # No CallEnded came for the hang-up (an effect failed): its result goes, and a later
    # CallEnded of the call answers nothing.
    assert answers.due(CommandResult(command_id=hang_up.command_id, ok=True))
    assert answers.ended(DisconnectCall("c1", "1001", "caller")).command_id == ""
    assert answers.due(CallEnded(agent_id="1001", call_id="c1", by="agent"))
