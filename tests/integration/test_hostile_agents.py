"""One agent cannot take the engine down (issue 17), on a real Mosquitto configured as
`cti broker-config` writes it.

With its own credentials an agent sends commands whose ids hold a NUL, ``+``, ``#`` or
``/`` (``supervisor_id`` of ``force_logout`` once made the engine publish on a topic
Mosquitto disconnects for, for ever), ids of 200 KB, and connects with the engine's
client id. The engine stays on its one connection, refuses each of them to the
sender, and serves the next legitimate command.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiomqtt
import pytest

from cti import topics
from cti.protocol import CommandResult, Login, Message
from tests.integration.conftest import WAIT_S, Engine, Mosquitto, mqtt_bus

pytestmark = [pytest.mark.security, pytest.mark.mosquitto, pytest.mark.integration]

HOSTILE = ["sup1\x00", "+", "#", "sup1/x", "a b", "\u202esup1"]


async def _result(events: AsyncIterator[tuple[str, Message]], command_id: str) -> CommandResult:
    async with asyncio.timeout(WAIT_S):
        async for _topic, message in events:
            if isinstance(message, CommandResult) and message.command_id == command_id:
                return message
    raise AssertionError("the subscription ended")


async def _read_to_the_end(client: aiomqtt.Client) -> None:
    """Read a client's messages until its connection ends (with MqttError)."""
    async with asyncio.timeout(WAIT_S):  # a safety net
        async for _ in client.messages:
            pass


async def test_hostile_ids_do_not_knock_the_engine_off(
    mosquitto: Mosquitto, engine: Engine
) -> None:
    async with mqtt_bus(mosquitto, "1001") as agent:
        async with asyncio.timeout(WAIT_S):
            await agent.wait_online()
        async with agent.subscribe(topics.agent_events("1001")) as sub:
            events = aiter(sub)
            for n, bad in enumerate(HOSTILE):
                for field, fields in (
                    ("supervisor_id", {"type": "force_logout", "agent_id": "1002"}),
                    ("agent_id", {"type": "set_ready"}),
                    ("call_id", {"type": "accept_offer", "agent_id": "1001"}),
                ):
                    command_id = f"bad-{field}-{n}"
                    payload = {**fields, field: bad, "command_id": command_id}
                    agent.publish_payload(
                        topics.agent_commands("1001"), json.dumps(payload).encode()
                    )
                    refused = await _result(events, command_id)
                    assert not refused.ok
                    assert field in refused.error
                # the id itself hostile: nothing to answer, nothing published
                payload = {"type": "set_ready", "agent_id": "1001", "command_id": bad}
                agent.publish_payload(topics.agent_commands("1001"), json.dumps(payload).encode())
            # a well-formed supervisor command on an agent's topic: refused to that agent
            wrong_kind = {"type": "force_logout", "supervisor_id": "sup1", "agent_id": "1002"}
            agent.publish_payload(
                topics.agent_commands("1001"),
                json.dumps({**wrong_kind, "command_id": "kind"}).encode(),
            )
            assert not (await _result(events, "kind")).ok
            login = Login(agent_id="1001")
            await agent.publish(topics.agent_commands("1001"), login)
            assert (await _result(events, login.command_id)).ok
    assert engine.bus.status.online
    assert engine.bus.status.connects == 1
    assert engine.bus.refused == 3 * len(HOSTILE) + len(HOSTILE)
    assert "Disconnecting client" not in mosquitto.log_text().split("cti-engine")[-1]


async def test_300_commands_with_200_kb_ids_are_refused_and_not_kept(
    mosquitto: Mosquitto, engine: Engine
) -> None:
    async with mqtt_bus(mosquitto, "1001") as agent:
        async with asyncio.timeout(WAIT_S):
            await agent.wait_online()
        async with agent.subscribe(topics.agent_events("1001")) as sub:
            for n in range(300):
                big = {
                    "type": "set_ready",
                    "agent_id": "1001",
                    "command_id": f"{n}" + "x" * 200_000,
                }
                agent.publish_payload(topics.agent_commands("1001"), json.dumps(big).encode())
            login = Login(agent_id="1001")
            await agent.publish(topics.agent_commands("1001"), login)  # after them, in order
            assert (await _result(aiter(sub), login.command_id)).ok
    assert engine.bus.refused == 300
    memory = engine.service.dispatch.memory
    assert len(memory) == 1
    assert memory.bytes < 10_000
    assert engine.bus.status.connects == 1


async def test_a_client_with_the_engines_client_id_does_not_take_its_place(
    mosquitto: Mosquitto, engine: Engine
) -> None:
    hostile = aiomqtt.Client(
        "127.0.0.1",
        mosquitto.port,
        username="1001",
        password=mosquitto.users["1001"].password,
        identifier=engine.bus.client_id,
        protocol=aiomqtt.ProtocolVersion.V5,
    )
    async with hostile:
        # The broker named the hostile connection after its user, not the engine's id.
        assert "as 1001 (" in mosquitto.log_text()
        assert mosquitto.log_text().count("Opening ipv4 listen socket") == 1  # no default
        # The engine still answers on its first connection.
        async with mqtt_bus(mosquitto, "1002") as agent:
            async with asyncio.timeout(WAIT_S):
                await agent.wait_online()
            async with agent.subscribe(topics.agent_events("1002")) as sub:
                login = Login(agent_id="1002")
                await agent.publish(topics.agent_commands("1002"), login)
                assert (await _result(aiter(sub), login.command_id)).ok
        assert engine.bus.status.online
        assert engine.bus.status.connects == 1
        # Another connection of user 1001 (the agent's real console) throws the hostile
        # one off: a client id is its user's, and only that user's connections compete.
        async with mqtt_bus(mosquitto, "1001") as console:
            async with asyncio.timeout(WAIT_S):
                await console.wait_online()
            with pytest.raises(aiomqtt.MqttError):
                await _read_to_the_end(hostile)
        assert engine.bus.status.connects == 1
