"""``cti serve`` with a SIP line, killed (SIGKILL) with calls up and callers waiting.

A real Mosquitto, a real SIP peer (SIPp) for each caller, the engine in its own process.
Caller A talks to agent 1001 across the kill; caller B waits in the queue. After the
restart the line takes both up from its saved dialogs: the agent's hang-up reaches A as
an ordinary BYE, B keeps ringing (no final response while the engine was down) and is
offered, answered and hung up; each SIPp run exits 0 (every message it expected, in
order), and both calls have exactly one record.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from cti import topics
from cti.models import AgentState
from cti.protocol import AcceptOffer, CompleteWrapUp, HangUp, Login, QueueCalls, SetReady
from cti.store.database import Store
from tests.integration.conftest import WAIT_S, Mosquitto, mosquitto, mqtt_bus
from tests.integration.test_mqtt_call import Console
from tests.telephony_adapters.sipline.sipp import Sipp, free_udp_port

pytestmark = [pytest.mark.recovery, pytest.mark.sipp, pytest.mark.mosquitto]
__all__ = ["mosquitto"]  # the broker fixture

REPO = Path(__file__).resolve().parents[2]


def sip_center(tmp_path: Path, sip_port: int) -> Path:
    path = tmp_path / "center.toml"
    path.write_text(
        f"""
[engine]
status_interval_s = 0.2

[[queues]]
name = "general"
wrap_up_s = 60.0

[[agents]]
id = "1001"
queues = {{ general = 0 }}

[[agents]]
id = "1002"
queues = {{ general = 0 }}

[[lines]]
kind = "sip"
name = "trunk"
bind_host = "127.0.0.1"
bind_port = {sip_port}
rtp_port_min = 31000
rtp_port_max = 31998
keepalive_s = 0
"""
    )
    return path


class Serve:
    """``cti serve`` in a child process (killed, never left behind)."""

    def __init__(self, config: Path, db: Path, broker: str) -> None:
        self.args = ["serve", "--config", str(config), "--db", str(db), "--broker", broker]
        self.log = db.with_name("serve.log")
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("a") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "cti.app.cli",
                *self.args,
                cwd=REPO,
                env={**os.environ, "CTI_BROKER_RECONNECT_MIN_S": "0.05"},
                stderr=log,
            )

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        assert await self.process.wait() == -signal.SIGKILL

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.process.wait(), WAIT_S)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


async def waiting_calls(bus_messages: asyncio.Queue[QueueCalls], n: int) -> list[str]:
    """The call ids waiting in the queue, once ``n`` are (the engine's retained list)."""
    async with asyncio.timeout(WAIT_S):
        while True:
            calls = [c.call_id for c in (await bus_messages.get()).calls]
            if len(calls) == n:
                return calls


async def test_calls_talking_and_waiting_survive_a_kill_of_cti_serve(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    sip_port = free_udp_port()
    serve = Serve(sip_center(tmp_path, sip_port), tmp_path / "cti.db", mosquitto.url("cti-engine"))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    talker, waiter = Sipp(tmp_path / "a"), Sipp(tmp_path / "b")
    target = f"127.0.0.1:{sip_port}"
    await serve.start()
    try:
        async with mqtt_bus(mosquitto, "1001", presence="1001") as bus:
            console = Console(bus, "1001")
            await console.start()
            waiting: asyncio.Queue[QueueCalls] = asyncio.Queue()

            async def follow_queue() -> None:  # as a supervisor: agents do not see queues
                async with (
                    mqtt_bus(mosquitto, "sup1") as supervisor,
                    supervisor.subscribe(topics.queue_calls("general")) as sub,
                ):
                    async for _topic, message in sub:
                        if isinstance(message, QueueCalls):
                            waiting.put_nowait(message)

            follower = asyncio.create_task(follow_queue())
            try:
                await console.send(Login(agent_id="1001"))
                await console.in_state(AgentState.NOT_READY)
                await console.send(SetReady(agent_id="1001"))
                await console.in_state(AgentState.READY)
                # A rings and is answered: talking when the engine dies.
                await talker.start("agent_hangs_up.xml", target=target, timeout_s=50)
                await console.until("offer", lambda: bool(console.offers))
                call_a = console.offers[0].pop.call_id
                await console.send(AcceptOffer(agent_id="1001", call_id=call_a))
                await console.in_state(AgentState.TALKING)
                # B rings with no one free: it waits in the queue.
                await waiter.start("agent_hangs_up.xml", target=target, timeout_s=50)
                [call_b] = await waiting_calls(waiting, 1)

                await serve.kill()
                console.state = None  # the restarted engine publishes it again
                await serve.start()

                # The agent is still talking to A after the restart; its hang-up is a BYE
                # that SIPp A expects and answers.
                await console.until(
                    "talking on A after the restart",
                    lambda: (
                        console.state is not None
                        and console.state.state is AgentState.TALKING
                        and console.state.call_id == call_a
                    ),
                )
                done = await console.send(HangUp(agent_id="1001", call_id=call_a))
                await console.until("hang-up answered", lambda: done in console.results)
                assert console.results[done].ok, console.results[done].error
                run_a = await talker.wait(WAIT_S)
                assert run_a.returncode == 0, run_a.explain()
                done = await console.send(
                    CompleteWrapUp(agent_id="1001", call_id=call_a, disposition="resolved")
                )
                await console.until("wrap-up answered", lambda: done in console.results)
                assert console.results[done].ok, console.results[done].error
                # B kept its place and rings on: it is offered as soon as 1001 is ready.
                await console.send(SetReady(agent_id="1001"))
                await console.until(
                    "B offered", lambda: any(o.pop.call_id == call_b for o in console.offers)
                )
                await console.send(AcceptOffer(agent_id="1001", call_id=call_b))
                await console.until(
                    "talking on B",
                    lambda: (
                        console.state is not None
                        and console.state.call_id == call_b
                        and console.state.state is AgentState.TALKING
                    ),
                )
                await console.send(HangUp(agent_id="1001", call_id=call_b))
                run_b = await waiter.wait(WAIT_S)
                assert run_b.returncode == 0, run_b.explain()
                done = await console.send(
                    CompleteWrapUp(agent_id="1001", call_id=call_b, disposition="resolved")
                )
                await console.until("wrap-up answered", lambda: done in console.results)
            finally:
                follower.cancel()
                await console.stop()
        await serve.stop()
    finally:
        await serve.stop()
        await talker.stop()
        await waiter.stop()
    log = serve.log.read_text(errors="replace")
    assert "trunk: 2 calls taken up after a restart" in log, log[-3000:]
    store = await Store.open(tmp_path / "cti.db")
    try:
        records = {r.call_id: r for r in await store.calls.records()}
    finally:
        await store.close()
    assert set(records) == {call_a, call_b}, log[-3000:]
    for call_id in (call_a, call_b):
        assert (records[call_id].outcome, records[call_id].agent_id) == ("answered", "1001")
