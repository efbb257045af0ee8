"""An offer is encoded once (issue 23): the bytes that measured its card are the bytes
the bus sends, and they are the offer's own encoding."""

from __future__ import annotations

from pathlib import Path

from cti import topics
from cti.bus.memory import InMemoryBus
from cti.protocol import CallOffered, Message, decode, encode
from queue_engine import inputs as ri
from tests.harness import engine_center, until


class EncodedBus(InMemoryBus):
    """An in-memory bus with MqttBus's ``publish_encoded``: what it was given, kept."""

    def __init__(self) -> None:
        super().__init__()
        self.encoded: list[tuple[str, Message, bytes]] = []

    async def publish_encoded(
        self, topic: str, message: Message, payload: bytes, *, retain: bool = False
    ) -> None:
        self.encoded.append((topic, message, payload))
        self.publish_payload(topic, payload, retain=retain)


async def test_the_offer_goes_as_the_bytes_that_measured_it(tmp_path: Path) -> None:
    bus = EncodedBus()
    async with engine_center(tmp_path / "cti.db", agents={"1001": ["general"]}, bus=bus) as center:
        service = center.service
        service.route(ri.AgentLogsIn(agent_id="1001"))
        service.route(ri.AgentGoesReady(agent_id="1001"))
        call_id = center.trunk.ring("13800138000")
        await until(lambda: bool(bus.encoded), what="the offer")
        topic, message, payload = bus.encoded[0]
        assert topic == topics.agent_events("1001")
        assert isinstance(message, CallOffered)
        assert message.pop.call_id == call_id
        assert message is service.pops.offers["1001"]  # the offer kept is the one sent
        assert payload == encode(message)
        assert decode(payload) == message
