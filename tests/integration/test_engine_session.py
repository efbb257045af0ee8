"""The engine's MQTT session outlives the engine (issue 17): a command sent while the
engine is down waits at the broker and is applied once when the engine is back, with no
console to send it again. A real Mosquitto; the engine stopped and started in process
(its client stops: a new one with the same client id takes the session up)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiomqtt
import pytest

from cti import topics
from cti.bus.mqtt import MqttBus
from cti.engine.dispatch import CommandDispatcher
from cti.protocol import AnyCommand, CommandResult, Login, SupervisorCommand, decode, encode
from cti.store.database import Store
from telephony_adapters.sim import SimTrunk
from tests.harness import engine_center
from tests.integration.conftest import WAIT_S, Mosquitto, center, mqtt_bus

pytestmark = [
    pytest.mark.recovery,
    pytest.mark.security,
    pytest.mark.mosquitto,
    pytest.mark.integration,
]


@asynccontextmanager
async def _engine(mosquitto: Mosquitto, store: Store, tmp_path: Path) -> AsyncIterator[MqttBus]:
    _, config = center(tmp_path)
    async with (
        mqtt_bus(mosquitto, "cti-engine", persistent=True, answer_refusals=True) as bus,
        engine_center(store, config=config, agents=config.agents, lines=[SimTrunk("sim")], bus=bus),
    ):
        async with asyncio.timeout(WAIT_S):
            await bus.wait_online()
        yield bus


async def test_a_command_sent_while_the_engine_is_down_is_applied_once_when_it_is_back(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await Store.open(tmp_path / "cti.db")
    # Every command an engine carries out, counted from before it starts.
    executed: list[str] = []
    execute = CommandDispatcher.execute

    async def counted(
        self: CommandDispatcher, message: AnyCommand | SupervisorCommand
    ) -> CommandResult:
        executed.append(message.command_id)
        return await execute(self, message)

    monkeypatch.setattr(CommandDispatcher, "execute", counted)
    try:
        async with _engine(mosquitto, store, tmp_path) as first:
            assert first.status.connects == 1
        # The engine is gone. The agent's plain client (one connection: the broker's
        # client id is the user) sends a command at QoS 1; the broker acknowledges it
        # (so it is the broker's to keep) and nobody sends it again.
        command = Login(agent_id="1001", command_id="sent-while-down")
        raw = aiomqtt.Client(
            "127.0.0.1",
            mosquitto.port,
            username="1001",
            password=mosquitto.users["1001"].password,
            identifier="raw-1001",
            protocol=aiomqtt.ProtocolVersion.V5,
        )
        async with raw:
            await raw.subscribe(topics.agent_events("1001"), qos=1)
            await raw.publish(topics.agent_commands("1001"), encode(command), qos=1)
            async with _engine(mosquitto, store, tmp_path) as second:
                messages = aiter(raw.messages)
                first_answer = await asyncio.wait_for(anext(messages), WAIT_S)
                assert first_answer.topic.value == topics.agent_events("1001")
                result = decode(bytes(first_answer.payload))
                assert result == CommandResult(command_id=command.command_id, ok=True)
                # A console's own resend, later, is answered alike and not applied again.
                await raw.publish(topics.agent_commands("1001"), encode(command), qos=1)
                again = await asyncio.wait_for(anext(messages), WAIT_S)
                assert decode(bytes(again.payload)) == result
                assert second.status.connects == 1
        assert executed == [command.command_id]
    finally:
        await store.close()
