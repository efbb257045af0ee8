"""The MQTT bus against hostile or broken input (issue 17), over the fake link: a topic
the broker would disconnect us for is never sent, a publish the broker keeps
disconnecting us for is dropped after a few tries instead of blocking the outbox for
ever, a command that does not decode is refused to its sender, a persistent session's
backlog waits for its subscriber, and the engine's client id is unguessable yet stable."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
from pathlib import Path

import pytest

from cti import topics
from cti.bus.broker import default_client_id, installation_client_id
from cti.bus.mqtt import MqttBus
from cti.bus.outbox import MAX_DELIVERY_ATTEMPTS, Outgoing, strike
from cti.bus.roles import make_bus
from cti.config import BrokerSettings
from cti.protocol import MAX_MESSAGE_BYTES, CommandResult, Login, decode, encode
from tests.cti.test_mqtt_bus import FakeBroker, _bus
from tests.harness import until

pytestmark = pytest.mark.security


@pytest.mark.parametrize(
    "topic",
    [
        "cti/v1/supervisors/s\x00/events",
        "cti/v1/supervisors/+/events",
        "cti/v1/agents/#",
        "cti/v1/agents//events",
        "elsewhere/x",
        "cti/v1/agents/\ud800/events",
    ],
    ids=repr,
)
async def test_a_topic_the_broker_would_refuse_is_never_sent(
    topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    broker = FakeBroker()
    async with _bus(broker) as bus:
        async with asyncio.timeout(5):
            await bus.wait_online()
        with caplog.at_level(logging.ERROR, logger="cti.bus.mqtt"):
            await bus.publish(topic, CommandResult(command_id="bad", ok=False))
        await bus.publish(topics.agent_events("1001"), CommandResult(command_id="ok", ok=True))
        await until(lambda: len(broker.published) == 1)
    assert [decode(i.payload).command_id for i in broker.published] == ["ok"]  # type: ignore[union-attr]
    assert bus.status.connects == 1
    assert "refused" in caplog.text
    assert "\x00" not in caplog.text


async def test_a_payload_over_the_limit_is_never_sent(caplog: pytest.LogCaptureFixture) -> None:
    broker = FakeBroker()
    async with _bus(broker) as bus:
        async with asyncio.timeout(5):
            await bus.wait_online()
        bus.publish_payload(topics.agent_events("1001"), b"x" * (MAX_MESSAGE_BYTES + 1))
        await bus.publish(topics.agent_events("1001"), CommandResult(command_id="ok", ok=True))
        await until(lambda: len(broker.published) == 1)
    assert "bytes" in caplog.text


async def test_a_publish_the_broker_disconnects_for_is_dropped_not_retried_for_ever(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = FakeBroker()
    poison = topics.agent_events("1002")
    broker.disconnect_on.add(poison)
    async with _bus(broker) as bus:
        async with asyncio.timeout(5):
            await bus.wait_online()
        await bus.publish(poison, CommandResult(command_id="poison", ok=True))
        await bus.publish(topics.agent_events("1001"), CommandResult(command_id="after", ok=True))
        mine = topics.agent_events("1001")
        await until(lambda: bus.status.connects > MAX_DELIVERY_ATTEMPTS and bus.status.online)
        await bus.publish(mine, CommandResult(command_id="later", ok=True))
        await until(lambda: b'"later"' in broker.published[-1].payload)
        assert bus.status.connects == MAX_DELIVERY_ATTEMPTS + 1  # and it stays connected
    assert [i.topic for i in broker.published].count(poison) == MAX_DELIVERY_ATTEMPTS
    assert "broken connections in a row" in caplog.text


def test_only_the_oldest_unacknowledged_publish_gets_a_strike() -> None:
    a, b = Outgoing("cti/v1/a/x", b"a"), Outgoing("cti/v1/b/x", b"b")
    back, dropped = strike([a, b])
    assert dropped is None
    assert [i.strikes for i in back] == [1, 0]
    for _ in range(MAX_DELIVERY_ATTEMPTS - 2):
        back, dropped = strike(back)
    back, dropped = strike(back)
    assert dropped is not None
    assert dropped.payload == b"a"
    assert back == [b]
    assert strike([]) == ([], None)


async def test_a_command_that_does_not_decode_is_refused_to_the_topics_owner() -> None:
    broker = FakeBroker()
    async with (
        _bus(broker, answer_refusals=True) as engine,
        _bus(broker) as agent,
        _bus(broker) as supervisor,
    ):
        for bus in (engine, agent, supervisor):
            async with asyncio.timeout(5):
                await bus.wait_online()
        async with (
            engine.subscribe(topics.ALL_AGENT_COMMANDS) as commands,
            agent.subscribe(topics.agent_events("1001")) as events,
            supervisor.subscribe("cti/v1/supervisors/+/events") as sup_events,
        ):
            bad = {
                "type": "force_logout",
                "command_id": "c1",
                "supervisor_id": "sup1\x00/#",
                "agent_id": "1002",
            }
            agent.publish_payload(topics.agent_commands("1001"), json.dumps(bad).encode())
            topic, answer = await anext(aiter(events))
            assert topic == topics.agent_events("1001")
            assert isinstance(answer, CommandResult)
            assert answer.command_id == "c1"
            assert not answer.ok
            assert "supervisor_id" in answer.error
            # a good command still reaches the engine after it
            await agent.publish(topics.agent_commands("1001"), Login(agent_id="1001"))
            _, login = await anext(aiter(commands))
            assert isinstance(login, Login)
            assert engine.refused == 1
            assert sup_events.queue.empty()


async def test_a_persistent_sessions_backlog_waits_for_its_subscriber() -> None:
    broker = FakeBroker()
    async with _bus(broker, persistent=True) as engine, _bus(broker) as agent:
        async with asyncio.timeout(5):
            await engine.wait_online()
        async with asyncio.timeout(5):
            await agent.wait_online()
        (link,) = [lk for lk in broker.links if lk is not None][:1]
        # The broker delivers what the session kept, with a former process's identifier.
        command = Login(agent_id="1001", command_id="while-away")
        link.incoming.put_nowait((topics.agent_commands("1001"), encode(command), (7,)))
        await until(lambda: len(engine._early) == 1)
        async with engine.subscribe(topics.ALL_AGENT_COMMANDS) as commands:
            topic, message = await anext(aiter(commands))
    assert topic == topics.agent_commands("1001")
    assert message == command


def test_client_ids_are_unguessable() -> None:
    ids = {default_client_id("engine") for _ in range(20)}
    assert len(ids) == 20
    assert all(i.startswith("cti-engine-") for i in ids)
    settings = BrokerSettings(url="mqtt://h:1")
    engine = make_bus(settings, "engine")
    assert isinstance(engine, MqttBus)
    assert engine.persistent
    assert engine.answer_refusals


def test_the_engines_client_id_is_kept_per_installation(tmp_path: Path) -> None:
    path = tmp_path / "cti.db.mqtt-client-id"
    first = installation_client_id(path)
    assert first.startswith("cti-engine-")
    assert len(first.rsplit("-", 1)[1]) == 32
    assert installation_client_id(path) == first
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert installation_client_id(tmp_path / "other") != first
    path.write_text("cti-engine-x/+#\n")
    assert installation_client_id(path) not in (first, "cti-engine-x/+#")
