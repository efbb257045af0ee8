"""The broker's access rules, as `cti broker-config` writes them, on a real Mosquitto.

Agent 1002's credentials cannot read agent 1001's offers. Mosquitto 2.0's ACL file does
not refuse a SUBSCRIBE (its SUBACK grants it); it refuses at delivery, message by
message. So the proof is what arrives: 1002 subscribed to everything it may name
(``#``, ``cti/v1/#``, 1001's own topics) gets 1001's offer and state never, while 1001
gets them, and a message published after them to 1002's own topic is the first thing
1002 sees (one publisher, one broker: had the offer reached 1002, it came first).
Nor can 1002 send commands as 1001, or a supervisor send any command but its own. 1002
reads its colleagues only as ``cti/v1/colleagues/+`` (name and state, never the caller
that 1001's state names for the wallboard).
(A broker that refuses in the SUBACK, MQTT v5 reason 0x87, makes
:class:`~cti.bus.mqtt.MqttBus` raise :class:`~cti.bus.broker.BrokerError`; see
``tests/cti/test_mqtt_bus.py``.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from cti import topics
from cti.bus.mqtt import ConnectionState, MqttBus
from cti.engine.status import colleague_view
from cti.models import AgentState, CallerKind
from cti.protocol import (
    AgentStateChanged,
    CallOffered,
    ColleagueState,
    CommandResult,
    EngineHealth,
    ForceLogout,
    Message,
    ScreenPop,
    SetReady,
    encode,
)
from tests.integration.conftest import Mosquitto

pytestmark = [pytest.mark.mosquitto, pytest.mark.integration]

#: Safety net only: on 127.0.0.1 everything arrives within milliseconds.
WAIT_S = 10.0


def _offer(agent: str, call_id: str) -> CallOffered:
    pop = ScreenPop(
        call_id=call_id, queue="general", ani="13800138000", caller_kind=CallerKind.UNKNOWN
    )
    return CallOffered(agent_id=agent, pop=pop, timeout_s=15, deadline_wall=0.0)


def _bus(mosquitto: Mosquitto, user: str, **kwargs: object) -> MqttBus:
    return MqttBus(mosquitto.url(user), client_id=f"test-{user}", **kwargs)  # type: ignore[arg-type]


async def _next(messages: AsyncIterator[tuple[str, Message]]) -> tuple[str, Message]:
    return await asyncio.wait_for(anext(messages), WAIT_S)


async def test_agent_cannot_read_another_agents_offers(mosquitto: Mosquitto) -> None:
    async with (
        _bus(mosquitto, "cti-engine") as engine,
        _bus(mosquitto, "1001") as a1001,
        _bus(mosquitto, "1002") as a1002,
    ):
        for bus in (engine, a1001, a1002):
            async with asyncio.timeout(WAIT_S):
                await bus.wait_online()
        state_1001 = CommandResult(command_id="state-of-1001", ok=True)
        await engine.publish(topics.agent_state("1001"), state_1001, retain=True)
        async with (
            a1001.subscribe(topics.agent_events("1001")) as mine,
            a1001.subscribe(topics.agent_state("1001")) as my_state,
            a1002.subscribe("#") as everything,
            a1002.subscribe("cti/v1/#") as everything_cti,
            a1002.subscribe("cti/v1/agents/+/events") as all_events,
            a1002.subscribe(topics.agent_events("1001")) as named,
        ):
            assert (await _next(aiter(my_state)))[1] == state_1001  # retained, readable by 1001
            await engine.publish(topics.agent_events("1001"), _offer("1001", "call-1"))
            topic, message = await _next(aiter(mine))
            assert topic == topics.agent_events("1001")
            assert isinstance(message, CallOffered)
            assert message.pop.call_id == "call-1"
            await engine.publish(topics.agent_events("1002"), _offer("1002", "call-2"))
            for sub in (everything, everything_cti, all_events):
                topic, message = await _next(aiter(sub))
                assert topic == topics.agent_events("1002"), f"{sub.pattern} got {topic}"
                assert isinstance(message, CallOffered)
                assert message.pop.call_id == "call-2"
            assert named.queue.empty()
            assert a1002.dropped == 0  # the broker withheld them; the bus dropped nothing


async def test_agent_cannot_command_as_another_and_supervisor_only_its_own(
    mosquitto: Mosquitto,
) -> None:
    async with (
        _bus(mosquitto, "cti-engine") as engine,
        _bus(mosquitto, "1002") as a1002,
        _bus(mosquitto, "sup1") as sup,
    ):
        for bus in (engine, a1002, sup):
            async with asyncio.timeout(WAIT_S):
                await bus.wait_online()
        async with (
            engine.subscribe(topics.ALL_AGENT_COMMANDS) as agent_commands,
            engine.subscribe(topics.ALL_SUPERVISOR_COMMANDS) as supervisor_commands,
        ):
            await a1002.publish(topics.agent_commands("1001"), SetReady(agent_id="1001"))
            await sup.publish(topics.agent_commands("1001"), SetReady(agent_id="1001"))
            await sup.publish(
                topics.supervisor_commands("sup2"),
                ForceLogout(supervisor_id="sup2", agent_id="1001"),
            )
            own = SetReady(agent_id="1002")
            await a1002.publish(topics.agent_commands("1002"), own)
            topic, message = await _next(aiter(agent_commands))
            assert (topic, message) == (topics.agent_commands("1002"), own)
            allowed = ForceLogout(supervisor_id="sup1", agent_id="1001")
            await sup.publish(topics.supervisor_commands("sup1"), allowed)
            topic, message = await _next(aiter(supervisor_commands))
            assert (topic, message) == (topics.supervisor_commands("sup1"), allowed)
        # A supervisor reads every agent's state (with its caller); an agent only its own,
        # and every agent's colleague view (name and state, no caller); none writes one.
        for agent in ("1001", "1002"):
            state = _talking(agent)
            await engine.publish(topics.agent_state(agent), state, retain=True)
            await engine.publish(topics.colleague_state(agent), colleague_view(state), retain=True)
        async with sup.subscribe(topics.ALL_AGENT_STATES) as states:
            seen = {(await _next(aiter(states)))[0] for _ in range(2)}
            assert seen == {topics.agent_state("1001"), topics.agent_state("1002")}
        async with a1002.subscribe(topics.ALL_AGENT_STATES) as states:
            topic, message = await _next(aiter(states))
            assert topic == topics.agent_state("1002")
            assert isinstance(message, AgentStateChanged)
            assert message.caller_name == "Wang Xiu"  # its own caller
            await engine.publish(topics.agent_state("1001"), _talking("1001"))
            latest = _talking("1002")
            await engine.publish(topics.agent_state("1002"), latest)
            # One publisher: had 1001's state reached 1002, it came first.
            assert await _next(aiter(states)) == (topics.agent_state("1002"), latest)
        async with a1002.subscribe(topics.ALL_COLLEAGUE_STATES) as colleagues:
            got = dict([await _next(aiter(colleagues)) for _ in range(2)])
        assert set(got) == {topics.colleague_state("1001"), topics.colleague_state("1002")}
        for agent in ("1001", "1002"):
            message = got[topics.colleague_state(agent)]
            assert message == ColleagueState(
                agent_id=agent, agent_name=f"Agent {agent}", state=AgentState.TALKING
            )
            assert "Wang Xiu" not in encode(message).decode()
            assert "13800138000" not in encode(message).decode()
        for topic in (topics.agent_state("1001"), topics.colleague_state("1001")):
            async with engine.subscribe(topic) as states:
                await _next(aiter(states))  # the retained one
                forged = CommandResult(command_id="forged", ok=True)
                await a1002.publish(topic, forged)
                again = CommandResult(command_id="again", ok=True)
                await engine.publish(topic, again)
                assert await _next(aiter(states)) == (topic, again)


def _talking(agent: str) -> AgentStateChanged:
    """``agent`` on a call with a named caller (what a wallboard shows, not a colleague)."""
    return AgentStateChanged(
        agent_id=agent,
        agent_name=f"Agent {agent}",
        state=AgentState.TALKING,
        since_wall=0.0,
        call_id=f"call-{agent}",
        caller_name="Wang Xiu",
        caller_number="+8613800138000",
    )


async def test_wrong_password_is_refused_and_shown(mosquitto: Mosquitto) -> None:
    url = mosquitto.url("1001").replace(mosquitto.users["1001"].password, "wrong")
    async with MqttBus(url, reconnect_min_s=0.05, reconnect_max_s=0.1) as bus:
        seen = bus.watch()
        async with asyncio.timeout(WAIT_S):
            async for status in seen:
                if status.state is ConnectionState.OFFLINE:
                    break
        await seen.aclose()
        assert not bus.status.online
        assert "authoriz" in bus.status.error.lower() or "password" in bus.status.error.lower()
        assert "wrong" not in bus.status.broker


@pytest.mark.security
async def test_supervisor_reads_the_engine_health_and_an_agent_does_not(
    mosquitto: Mosquitto,
) -> None:
    """The wallboard's engine trouble banner: retained on the health topic, readable by a
    supervisor's credentials (the ACL `cti broker-config` writes), withheld from agents."""
    async with (
        _bus(mosquitto, "cti-engine") as engine,
        _bus(mosquitto, "1002") as a1002,
        _bus(mosquitto, "sup1") as sup,
    ):
        for bus in (engine, a1002, sup):
            async with asyncio.timeout(WAIT_S):
                await bus.wait_online()
        trouble = EngineHealth(ok=False, alerts=("journal not written",), at_wall=1.0)
        await engine.publish(topics.engine_health(), trouble, retain=True)
        async with (
            sup.subscribe(topics.engine_health()) as health,
            a1002.subscribe(topics.engine_health()) as not_theirs,
            a1002.subscribe(topics.agent_state("1002")) as own,
        ):
            assert await _next(aiter(health)) == (topics.engine_health(), trouble)
            mark = CommandResult(command_id="after-the-health", ok=True)
            await engine.publish(topics.agent_state("1002"), mark)
            assert await _next(aiter(own)) == (topics.agent_state("1002"), mark)
            assert not_theirs.queue.empty()  # the broker withheld it (it came before)
