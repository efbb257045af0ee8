"""An agent's state publications when the engine is behind (issue 23): two state changes
of one agent queued before the first was published go out once, with the router's state
then (what both would have sent); other agents' are not merged, and a lone change still
goes out."""

from __future__ import annotations

from pathlib import Path

from cti import topics
from cti.bus.memory import InMemoryBus
from cti.engine.effects import offers_first
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
        await until(lambda: len(bus.order) >= mark + 3, what="the offer and the states")
        assert bus.order[mark : mark + 3] == [
            (topics.agent_events("1001"), "CallOffered"),
            (topics.agent_state("1001"), "AgentStateChanged"),
            (topics.colleague_state("1001"), "ColleagueState"),
        ]
        state = bus.retained(topics.agent_state("1001"))
        assert isinstance(state, AgentStateChanged)
        assert state.state is AgentState.RESERVED


class OrderRecorder(InMemoryBus):
    """The in-memory bus, noting each message's topic and type in the order published."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[tuple[str, str]] = []

    async def publish(self, topic: str, message: Message, *, retain: bool = False) -> None:
        self.order.append((topic, type(message).__name__))
        await super().publish(topic, message, retain=retain)
