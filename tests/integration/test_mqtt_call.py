"""Calls across processes over a real Mosquitto: the product as deployed.

* A simulated call reaches a console in another process over the broker, is answered,
  hung up and wrapped up; the call record says so.
* ``cti serve`` in its own process with simulated callers; a console answers a call.
* The broker restarts in the middle of a call (with and without its persistence file):
  both sides reconnect, the console gets its state back and its hang-up and wrap-up
  through, and the call record is written once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from agent_console.connection import ConsoleLink
from cti import topics
from cti.bus.mqtt import MqttBus
from cti.models import AgentState
from cti.protocol import (
    AcceptOffer,
    AgentStateChanged,
    CallOffered,
    CommandResult,
    CompleteWrapUp,
    HangUp,
    Login,
    Message,
    SetReady,
    answer,
)
from cti.store.database import Store
from tests.integration.conftest import WAIT_S, Engine, Mosquitto, center, mqtt_bus

pytestmark = [pytest.mark.mosquitto, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]


async def _lines(stream: asyncio.StreamReader) -> AsyncIterator[dict[str, Any]]:
    while True:
        raw = await asyncio.wait_for(stream.readline(), WAIT_S)
        if not raw:
            return
        yield json.loads(raw)


async def test_simulated_call_reaches_a_console_in_another_process(
    mosquitto: Mosquitto, engine: Engine
) -> None:
    peer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.console_peer",
        "--broker",
        mosquitto.url("1001"),
        "--agent",
        "1001",
        "--disposition",
        "sale",
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    assert peer.stdout is not None
    seen: list[str] = []
    call_id = None
    try:
        async for line in _lines(peer.stdout):
            seen.append(line["event"])
            if line["event"] == "state" and line["state"] == "ready" and call_id is None:
                call_id = engine.trunk.ring("13800138000", caller_name="王芳")
            if line["event"] == "offered":
                assert line["call_id"] == call_id
                assert line["ani"] == "13800138000"
            if line["event"] == "done":
                break
        assert await asyncio.wait_for(peer.wait(), WAIT_S) == 0
    finally:
        if peer.returncode is None:
            peer.kill()
            await peer.wait()
    assert call_id is not None, f"the console never went ready: {seen}"
    for step in ("offered", "connected", "ended", "done"):
        assert step in seen, f"{step} missing from {seen}"
    await engine.service.flush()
    (record,) = [r for r in await engine.store.calls.records() if r.call_id == call_id]
    assert (record.agent_id, record.outcome, record.disposition) == ("1001", "answered", "sale")


class Console:
    """An agent's console in the test's process: the resyncing link on its own bus."""

    def __init__(self, bus: MqttBus, agent: str) -> None:
        self.bus = bus
        self.agent = agent
        self.link = ConsoleLink(bus, agent, retry_s=0.5)
        self.state: AgentStateChanged | None = None
        self.offers: list[CallOffered] = []
        self.results: dict[str, CommandResult] = {}
        self.changed = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.tasks.append(asyncio.create_task(self.link.run()))
        for pattern in (topics.agent_events(self.agent), topics.agent_state(self.agent)):
            sub = self.link.subscribe(pattern)
            await sub.__aenter__()
            self.tasks.append(asyncio.create_task(self._pump(sub)))

    async def _pump(self, sub: Any) -> None:
        async for _topic, message in sub:
            self._apply(message)

    def _apply(self, message: Message) -> None:
        if isinstance(message, AgentStateChanged):
            self.state = message
        elif isinstance(message, CallOffered):
            self.offers.append(message)
        if (result := answer(message)) is not None:  # a result, or an event answering one
            self.results[result.command_id] = result
        self.changed.set()

    async def until(self, what: str, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT_S):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

    async def in_state(self, state: AgentState) -> None:
        await self.until(state.value, lambda: self.state is not None and self.state.state is state)

    async def send(self, command: Any) -> str:
        await self.link.publish(topics.agent_commands(self.agent), command)
        return str(command.command_id)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def _offline(*buses: MqttBus) -> None:
    changed = asyncio.Event()
    stops = [bus.add_listener(lambda _s: changed.set()) for bus in buses]
    try:
        async with asyncio.timeout(WAIT_S):
            while any(bus.status.online for bus in buses):
                changed.clear()
                await changed.wait()
    finally:
        for stop in stops:
            stop()


@pytest.mark.parametrize("persistence", [True, False], ids=["persistent", "amnesiac"])
async def test_broker_restart_in_the_middle_of_a_call(
    mosquitto: Mosquitto, engine: Engine, persistence: bool
) -> None:
    mosquitto.configure(persistence=persistence)
    mosquitto.restart()  # now with that configuration
    async with mqtt_bus(mosquitto, "1001", presence="1001") as bus:
        console = Console(bus, "1001")
        await console.start()
        try:
            async with asyncio.timeout(WAIT_S):
                await bus.wait_online()
            await console.send(Login(agent_id="1001"))
            await console.in_state(AgentState.NOT_READY)
            await console.send(SetReady(agent_id="1001"))
            await console.in_state(AgentState.READY)
            call_id = engine.trunk.ring("13800138000")
            await console.until("offer", lambda: bool(console.offers))
            assert console.offers[-1].pop.call_id == call_id
            await console.send(AcceptOffer(agent_id="1001", call_id=call_id))
            await console.in_state(AgentState.TALKING)

            mosquitto.stop()
            await _offline(bus, engine.bus)
            # The agent hangs up while the broker is away: kept, sent when it is back.
            hang_up = await console.send(HangUp(agent_id="1001", call_id=call_id))
            assert bus.status.queued >= 1
            assert console.link.status.unanswered == 1
            mosquitto.start()

            await console.in_state(AgentState.WRAP_UP)
            await console.until("hang-up answered", lambda: hang_up in console.results)
            assert console.results[hang_up].ok, console.results[hang_up].error
            assert console.link.resyncs >= 1
            done = await console.send(
                CompleteWrapUp(agent_id="1001", call_id=call_id, disposition="resolved")
            )
            await console.until("wrap-up answered", lambda: done in console.results)
            assert console.results[done].ok, console.results[done].error
            await console.in_state(AgentState.READY)
        finally:
            await console.stop()
    await engine.service.flush()
    records = [r for r in await engine.store.calls.records() if r.call_id == call_id]
    assert len(records) == 1, records
    assert (records[0].outcome, records[0].disposition) == ("answered", "resolved")
    assert [r.call_id for r in engine.records].count(call_id) == 1
    assert engine.trunk.state(call_id) is None  # the line was hung up


async def test_cti_serve_in_its_own_process(mosquitto: Mosquitto, tmp_path: Path) -> None:
    config_path, _ = center(tmp_path)
    db = tmp_path / "serve.db"
    env = {**os.environ, "CTI_BROKER_RECONNECT_MIN_S": "0.05"}
    serve = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cti.app.cli",
        "serve",
        "--config",
        str(config_path),
        "--db",
        str(db),
        "--broker",
        mosquitto.url("cti-engine"),
        "--simulate",
        "3600",
        "--seed",
        "3",
        cwd=REPO,
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with mqtt_bus(mosquitto, "1001", presence="1001") as bus:
            console = Console(bus, "1001")
            await console.start()
            try:
                async with asyncio.timeout(WAIT_S):
                    await bus.wait_online()
                # The engine may still be starting: the link asks again until it answers.
                await console.send(Login(agent_id="1001"))
                await console.in_state(AgentState.NOT_READY)
                await console.send(SetReady(agent_id="1001"))
                await console.until("offer", lambda: bool(console.offers))
                call_id = console.offers[0].pop.call_id
                await console.send(AcceptOffer(agent_id="1001", call_id=call_id))
                await console.in_state(AgentState.TALKING)
                await console.send(HangUp(agent_id="1001", call_id=call_id))
                await console.in_state(AgentState.WRAP_UP)
                done = await console.send(
                    CompleteWrapUp(agent_id="1001", call_id=call_id, disposition="resolved")
                )
                await console.until("wrap-up answered", lambda: done in console.results)
                assert console.results[done].ok
            finally:
                await console.stop()
        serve.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(serve.wait(), WAIT_S) == 0
    finally:
        if serve.returncode is None:
            serve.kill()
            await serve.wait()
        assert serve.stderr is not None
        log = (await serve.stderr.read()).decode(errors="replace")
    assert "engine on mqtt://cti-engine@127.0.0.1" in log, log
    store = await Store.open(db)
    try:
        records = [r for r in await store.calls.records() if r.call_id == call_id]
    finally:
        await store.close()
    assert len(records) == 1, log
    assert records[0].agent_id == "1001", log
