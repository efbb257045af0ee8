"""An agent's state publications when the engine is behind (issue 23): two state changes
of one agent queued before the first was published go out once, with the router's state
then (what both would have sent); other agents' are not merged, and a lone change still
goes out."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cti import topics
from cti.bus.memory import InMemoryBus
from cti.engine.effects import offers_first
from cti.engine.status import ColleagueViews
from cti.models import AgentState
from cti.protocol import AgentStateChanged, ColleagueState, Message
from queue_engine import inputs as ri
from queue_engine.actions import AgentStateSet, OfferCall
from tests.harness import engine_center, until


class StateRecorder(InMemoryBus):
    """The in-memory bus, noting each agent state and colleague state published."""

    def __init__(self) -> None:
        super().__init__()
        self.states: list[tuple[str, Message]] = []
        """(agent id, message), in the order published."""

    def publish_payload(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        super().publish_payload(topic, payload, retain=retain)
        state_topic = topics.matches(topics.ALL_AGENT_STATES, topic)
        if state_topic or topics.matches(topics.ALL_COLLEAGUE_STATES, topic):
            message = self.retained(topic)
            assert message is not None
            self.states.append((topic.split("/")[3], message))

    def of(self, agent_id: str, since: int = 0) -> list[Message]:
        return [m for a, m in self.states[since:] if a == agent_id]


async def test_two_changes_queued_together_publish_the_state_once(tmp_path: Path) -> None:
    bus = StateRecorder()
    agents = {"1001": ["general"], "1002": ["general"]}
    async with engine_center(tmp_path / "cti.db", agents=agents, bus=bus) as center:
        mark = len(bus.states)
        # One turn: both of 1001's changes are queued before either is carried out.
        center.service.route(ri.AgentLogsIn(agent_id="1001"))
        center.service.route(ri.AgentGoesReady(agent_id="1001"))
        center.service.route(ri.AgentLogsIn(agent_id="1002"))  # carried out after them
        await until(lambda: len(bus.of("1002", mark)) == 2, what="1002's state, both topics")
        of_1001 = bus.of("1001", mark)
        assert [type(m) for m in of_1001] == [AgentStateChanged, ColleagueState]
        assert [getattr(m, "state", None) for m in of_1001] == [AgentState.READY] * 2
        # A lone change is published, on both topics.
        mark = len(bus.states)
        center.service.route(ri.AgentGoesReady(agent_id="1002"))
        await until(lambda: len(bus.of("1002", mark)) == 2, what="1002 ready, both topics")
        assert [getattr(m, "state", None) for m in bus.of("1002", mark)] == [AgentState.READY] * 2


def test_an_offer_goes_ahead_of_its_agents_reservation_and_nothing_else_moves() -> None:
    reserved = AgentStateSet(agent_id="1001", state=AgentState.RESERVED)
    offer = OfferCall(call_id="c1", agent_id="1001", queue="general", deadline=15.0)
    other = AgentStateSet(agent_id="1002", state=AgentState.READY)
    assert offers_first([reserved, offer]) == [offer, reserved]
    assert offers_first([other, reserved, offer]) == [other, offer, reserved]
    # Another agent's state before an offer stays where it is.
    assert offers_first([other, offer]) == [other, offer]
    assert offers_first([offer, reserved]) == [offer, reserved]


async def test_an_arriving_call_is_offered_before_the_agents_reserved_state_is_made(
    tmp_path: Path,
) -> None:
    bus = OrderRecorder()
    async with engine_center(tmp_path / "cti.db", agents={"1001": ["general"]}, bus=bus) as center:
        center.service.route(ri.AgentLogsIn(agent_id="1001"))
        center.service.route(ri.AgentGoesReady(agent_id="1001"))
        await center.service.flush()
        mark = len(bus.order)
        center.trunk.ring("13800138000")

        def mine() -> list[tuple[str, str]]:
            return [o for o in bus.order[mark:] if o[0].split("/")[3] == "1001"]

        await until(lambda: len(mine()) >= 3, what="the offer and the states")
        assert mine()[:3] == [
            (topics.agent_events("1001"), "CallOffered"),
            (topics.agent_state("1001"), "AgentStateChanged"),
            (topics.colleague_state("1001"), "ColleagueState"),  # at the colleagues' tick
        ]
        for topic in (topics.agent_state("1001"), topics.colleague_state("1001")):
            state = bus.retained(topic)
            assert isinstance(state, AgentStateChanged | ColleagueState)
            assert state.state is AgentState.RESERVED


async def test_colleague_views_go_out_a_tick_after_a_change_the_last_of_each_agent_once() -> None:
    sent: list[tuple[str, ColleagueState]] = []

    def send(topic: str, message: Message, *, retain: bool = False) -> None:
        assert isinstance(message, ColleagueState)
        assert retain
        sent.append((topic, message))

    views = ColleagueViews(send, tick_s=0.05)

    def state(agent_id: str, now: AgentState, reason: str = "") -> AgentStateChanged:
        return AgentStateChanged(agent_id=agent_id, state=now, reason=reason, since_wall=0.0)

    for now in (AgentState.READY, AgentState.RESERVED, AgentState.TALKING):
        views.changed(state("1001", now))
    views.changed(state("1002", AgentState.NOT_READY, "lunch"))
    assert sent == []  # nothing until the tick
    await until(lambda: len(sent) == 2, what="the tick's views")
    assert [(t, m.state) for t, m in sent] == [
        (topics.colleague_state("1001"), AgentState.TALKING),
        (topics.colleague_state("1002"), AgentState.NOT_READY),
    ]
    # A call over within a tick: back to what colleagues saw, nothing is sent.
    for now in (AgentState.WRAP_UP, AgentState.TALKING):
        views.changed(state("1001", now))
    await asyncio.sleep(0.1)
    assert len(sent) == 2
    # A flush sends what waits at once; a snapshot's view sent is not sent again.
    views.changed(state("1001", AgentState.READY))
    views.send_due()
    assert sent[-1][1] == ColleagueState(agent_id="1001", state=AgentState.READY)
    views.changed(state("1002", AgentState.READY))
    views.sent("1002", views.view(state("1002", AgentState.READY)))
    await asyncio.sleep(0.1)
    assert len(sent) == 3


class OrderRecorder(InMemoryBus):
    """The in-memory bus, noting each message's topic and type in the order published."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[tuple[str, str]] = []

    async def publish(self, topic: str, message: Message, *, retain: bool = False) -> None:
        self.order.append((topic, type(message).__name__))
        await super().publish(topic, message, retain=retain)
