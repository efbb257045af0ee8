"""The engine and the consoles' presence (issue 21): a console that vanishes with its
agent talking is handled within the grace, a console back within it keeps everything;
the engine announces its own presence. In-memory bus, virtual time."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cti import topics
from cti.bus.memory import InMemoryBus
from cti.config import Config
from cti.models import AgentState
from cti.protocol import AcceptOffer, AgentPresence, EnginePresence, Login, Message, SetReady
from queue_engine.router import CallPhase
from tests.harness import Center, center_config, elapse_until, engine_center, virtual

GRACE_S = 10.0


def config(on_agent_logout: str = "requeue") -> Config:
    return center_config(
        [{"name": "general", "on_agent_logout": on_agent_logout}],
        engine={"console_grace_s": GRACE_S},
    )


def state(c: Center, agent_id: str = "1001") -> AgentState:
    return c.service.router.agent(agent_id).state


async def talking(c: Center) -> str:
    await c.send(Login(agent_id="1001"))
    await c.send(SetReady(agent_id="1001"))
    await elapse_until(lambda: state(c) is AgentState.READY, step_s=0.1)
    call_id = c.trunk.ring("+8613800000001")
    await elapse_until(lambda: state(c) is AgentState.RESERVED, step_s=0.1)
    await c.send(AcceptOffer(agent_id="1001", call_id=call_id))
    await elapse_until(lambda: state(c) is AgentState.TALKING, step_s=0.1)
    return call_id


async def presence(c: Center, online: bool, client_id: str = "console-1") -> None:
    message = AgentPresence(agent_id="1001", online=online, client_id=client_id)
    await c.bus.publish(topics.agent_presence("1001"), message, retain=True)


def test_a_vanished_console_is_logged_out_after_the_grace_its_caller_requeued(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        async with engine_center(tmp_path / "cti.db", config=config()) as c:
            call_id = await talking(c)
            await presence(c, online=True)
            await presence(c, online=False)  # the console's last will
            gone_at = asyncio.get_running_loop().time()

            await elapse_until(lambda: state(c) is AgentState.LOGGED_OUT, step_s=0.5)

            waited = asyncio.get_running_loop().time() - gone_at
            assert GRACE_S <= waited <= GRACE_S + 1.0  # virtual seconds: not minutes
            assert c.service.router.call_phase(call_id) is CallPhase.QUEUED
            assert c.trunk.state(call_id) is not None  # the caller is still on the line

    virtual(body)


def test_the_hang_up_rule_ends_the_call(tmp_path: Path) -> None:
    async def body() -> None:
        async with engine_center(tmp_path / "cti.db", config=config("hang_up")) as c:
            call_id = await talking(c)
            await presence(c, online=False)
            await elapse_until(lambda: state(c) is AgentState.LOGGED_OUT, step_s=0.5)
            await elapse_until(lambda: c.trunk.state(call_id) is None, step_s=0.1)
            await c.service.flush()
            [record] = await c.store.calls.records()
            assert (record.call_id, record.note) == (call_id, "agent logged out")

    virtual(body)


def test_a_console_back_within_the_grace_keeps_the_call(tmp_path: Path) -> None:
    async def body() -> None:
        async with engine_center(tmp_path / "cti.db", config=config()) as c:
            await talking(c)
            await presence(c, online=False)
            await asyncio.sleep(GRACE_S / 2)
            await presence(c, online=True)  # reconnected
            await asyncio.sleep(GRACE_S * 3)
            assert state(c) is AgentState.TALKING

    virtual(body)


def test_the_will_of_a_replaced_console_is_not_an_absence(tmp_path: Path) -> None:
    async def body() -> None:
        async with engine_center(tmp_path / "cti.db", config=config()) as c:
            await talking(c)
            await presence(c, online=True, client_id="old")
            await presence(c, online=True, client_id="new")
            await presence(c, online=False, client_id="old")
            await asyncio.sleep(GRACE_S * 3)
            assert state(c) is AgentState.TALKING

    virtual(body)


def test_an_offline_console_of_an_agent_logged_out_changes_nothing(tmp_path: Path) -> None:
    async def body() -> None:
        async with engine_center(tmp_path / "cti.db", config=config()) as c:
            await presence(c, online=False)
            await asyncio.sleep(GRACE_S * 2)
            assert state(c) is AgentState.LOGGED_OUT
            await c.send(Login(agent_id="1001"))  # the agent logs in on a new console
            await elapse_until(lambda: state(c) is AgentState.NOT_READY, step_s=0.1)
            await asyncio.sleep(GRACE_S * 2)
            assert state(c) is AgentState.NOT_READY  # the old absence was used up

    virtual(body)


def test_the_engine_announces_itself_online_then_offline(tmp_path: Path) -> None:
    async def body() -> None:
        bus = InMemoryBus()
        seen: list[Message] = []
        async with engine_center(tmp_path / "cti.db", bus=bus):
            seen.append(bus.retained(topics.engine_presence()))  # type: ignore[arg-type]
        seen.append(bus.retained(topics.engine_presence()))  # type: ignore[arg-type]
        assert [m.online for m in seen if isinstance(m, EnginePresence)] == [True, False]

    virtual(body)
