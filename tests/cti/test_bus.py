"""The in-memory bus: topics, wildcards, retained snapshots, bad payloads dropped."""

from __future__ import annotations

import asyncio

import pytest

from cti import topics
from cti.bus.memory import InMemoryBus
from cti.models import AgentState
from cti.protocol import AgentStateChanged, SetReady


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        ("cti/v1/agents/+/commands", "cti/v1/agents/1001/commands", True),
        ("cti/v1/agents/+/commands", "cti/v1/agents/1001/events", False),
        ("cti/v1/agents/#", "cti/v1/agents/1001/events", True),
        ("cti/v1/#", "cti/v1", True),
        ("cti/v1/queues/+/status", "cti/v1/queues/general/status/x", False),
        ("cti/v1/queues/+", "cti/v1/queues", False),
    ],
)
def test_topic_matching(pattern: str, topic: str, expected: bool) -> None:
    assert topics.matches(pattern, topic) is expected


async def test_subscriber_gets_matching_messages_in_order_and_retained_first() -> None:
    bus = InMemoryBus()
    state = AgentStateChanged(agent_id="1001", state=AgentState.READY, since_wall=1.0)
    await bus.publish(topics.agent_state("1001"), state, retain=True)
    async with bus.subscribe("cti/v1/agents/1001/+") as sub:
        first = SetReady(agent_id="1001")
        await bus.publish(topics.agent_commands("1001"), first)
        await bus.publish(topics.agent_commands("1002"), SetReady(agent_id="1002"))
        second = SetReady(agent_id="1001")
        await bus.publish(topics.agent_commands("1001"), second)
        it = aiter(sub)
        got = [await anext(it) for _ in range(3)]
    assert [m for _, m in got] == [state, first, second]
    assert got[0][0] == topics.agent_state("1001")


async def test_bad_payload_is_dropped_and_the_bus_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    bus = InMemoryBus()
    async with bus.subscribe("cti/v1/#") as sub:
        bus.publish_payload("cti/v1/agents/1/commands", b'{"type": "nope"}')
        bus.publish_payload("elsewhere/x", b'{"type": "set_ready", "agent_id": "1"}')
        good = SetReady(agent_id="1")
        await bus.publish(topics.agent_commands("1"), good)
        _topic, message = await asyncio.wait_for(anext(aiter(sub)), 1)
    assert message == good
    assert bus.dropped == 2
    assert "cti/v1/agents/1/commands" in caplog.text


async def test_unsubscribed_listener_gets_nothing_more() -> None:
    bus = InMemoryBus()
    async with bus.subscribe("cti/v1/#") as sub:
        pass
    await bus.publish(topics.agent_commands("1"), SetReady(agent_id="1"))
    assert sub.queue.empty()
