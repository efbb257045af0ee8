"""Call arrival at the adapter to offer at the console, in process and over Mosquitto.

Rings Poisson calls into a simulator trunk at 50 and 500 calls per second; the engine
service routes each to one of ``--agents`` bot consoles, which accept at once, hang up
once connected and wrap up at once, so agents stay free and the figure is the bus and
engine path, not queueing. Timed per call: from ``SimTrunk.ring`` to the console's
receipt of the ``CallOffered`` (line event -> engine -> router -> offer published ->
broker -> console decoded), on the system's monotonic clock.
The first 10% of each run is left out (warm-up). Callers are unknown numbers (no
customer lookup), so the store does not count.

Baselines in the same run: the same path on the in-process bus, and the broker's raw
round trip (aiomqtt, QoS 1, a payload the size of an offer, published by one client and
received by another through the same Mosquitto, one at a time).

Over MQTT the engine runs in this process and the bot consoles in a child process (as
they would on other machines), spread over ``--connections`` broker connections; by
default each connection is written over the engine's own packet reader and writer
(:class:`LeanConnection`, ``--bots lean``: every message decoded, the commands a
console sends, no bus or task per bot), so that the consoles' CPU (the "bots us/call"
column) leaves the machine to the engine; ``--bots bus`` runs :class:`BotConsole` on an
``MqttBus`` per connection, as before;
Mosquitto runs beside them (started here on 127.0.0.1 at a free port, stopped at the
end). In process, engine and bots share this process and the in-memory bus.

Both processes run on the event loop ``cti serve`` runs on (uvloop when installed;
``--loop asyncio`` for asyncio's) and, as ``cti serve`` does, freeze what start-up
built out of the garbage collector's scans once running (a full collection of it
stalled the loop for tens of milliseconds). Each row also gives this process's CPU per call while
the calls ran (over MQTT: the engine's alone; in process: engine and bots). Saturation:
if the broker's p99 at 500 calls/s is within :data:`SATURATION_P99_MS`, the rates of
:data:`SATURATION_RATES` are run in turn until one is not; the highest that was is the
saturation figure (``< 500`` when 500 is not).

    .venv/bin/python benchmarks/bench_bus.py [--seconds S] [--agents N] [--connections N]
        [--loop uvloop|asyncio] [--bots lean|bus] [--trace RATE]

``--trace RATE`` runs that rate alone over the broker and prints the time of each hop
from ring to offer (:class:`HopTrace`: the line task, the caller identified, the router,
the effects task, the offer published, its bytes sent, the console's decoding).

Prints a table and one JSON line with ``inprocess_p99_ms``, ``mqtt_p99_ms`` (at 500
calls/s) and ``broker_rtt_p99_ms``, the p50s and the 50 calls/s figures beside them,
``mqtt_cpu_us_per_call`` (and the bots' process's, ``mqtt_bots_cpu_us_per_call``),
the messages the engine sent to and received from the broker per call
(``mqtt_sent_per_call``, ``mqtt_received_per_call``), the bots' commands the engine had
not answered when the calls were over (``*_unanswered``; an accept or hang-up is
answered by the event it causes) and ``mqtt_saturation_calls_s``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import itertools
import json
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol, cast

from cti import topics
from cti.app.commands.serve import loop_factory as serve_loop_factory
from cti.bus.memory import Bus, InMemoryBus
from cti.bus.mqtt import MqttBus
from cti.bus.packets import Demux, publish_packet, read_variable_int, topic_head, variable_int
from cti.config import Config, load_config
from cti.engine.service import EngineService
from cti.models import AgentConfig, Customer, Interaction
from cti.protocol import (
    ANSWERS,
    AcceptOffer,
    AnyCommand,
    CallConnected,
    CallEnded,
    CallOffered,
    CommandResult,
    CompleteWrapUp,
    HangUp,
    Login,
    SetReady,
    answer,
    decode,
    encode,
)
from telephony_adapters.sim import SimTrunk

RATES = (50, 500)
#: What answers a command: its result, or the event an accept or hang-up causes.
ANSWERING = (CommandResult, *ANSWERS)
WARM_UP = 0.1
#: Rates tried over the broker after 500 calls/s, while p99 stays within the goal.
SATURATION_RATES = (1000, 1500, 2000, 3000)
SATURATION_P99_MS = 5.0


class NoCustomers:
    async def find_by_number(self, e164: str) -> list[Customer]:
        return []

    async def recent_interactions(
        self, customer_id: int, limit: int = 5
    ) -> tuple[Interaction, ...]:
        return ()


class BotConsole:
    """An agent's console that accepts, hangs up and wraps up at once, and notes when
    (``time.monotonic``) each offer arrived. :attr:`ready` is set once the engine has
    answered its ``SetReady``; :attr:`unanswered` holds the commands the engine has not
    answered yet (by a ``CommandResult``, or, an accept or hang-up, by the event that
    names it: :func:`cti.protocol.answer`)."""

    def __init__(self, bus: Bus, agent: str, offered: dict[str, float]) -> None:
        self.bus, self.agent, self.offered = bus, agent, offered
        self.ready = asyncio.Event()
        self.unanswered: set[str] = set()

    async def run(self) -> None:
        agent = self.agent
        async with self.bus.subscribe(topics.agent_events(agent)) as events:
            set_ready = SetReady(agent_id=agent)
            await self._send(Login(agent_id=agent))
            await self._send(set_ready)
            async for _topic, message in events:
                if (result := answer(message)) is not None:
                    self.unanswered.discard(result.command_id)
                if isinstance(message, CommandResult):
                    if message.command_id == set_ready.command_id:
                        self.ready.set()
                elif isinstance(message, CallOffered):
                    call_id = message.pop.call_id
                    self.offered.setdefault(call_id, time.monotonic())
                    await self._send(AcceptOffer(agent_id=agent, call_id=call_id))
                elif isinstance(message, CallConnected):
                    await self._send(HangUp(agent_id=agent, call_id=message.call_id))
                elif isinstance(message, CallEnded):
                    await self._send(
                        CompleteWrapUp(agent_id=agent, call_id=message.call_id, disposition="ok")
                    )

    async def _send(self, command: AnyCommand) -> None:
        self.unanswered.add(command.command_id)
        await self.bus.publish(topics.agent_commands(self.agent), command)


async def all_ready(bots: list[BotConsole]) -> None:
    """Wait until the engine has every bot Ready (a minute at most: then it fails)."""
    try:
        async with asyncio.timeout(60):
            for bot in bots:
                await bot.ready.wait()
    except TimeoutError:
        waiting = [bot.agent for bot in bots if not bot.ready.is_set()]
        sys.exit(f"the engine did not answer SetReady within a minute for {waiting}")


def agent_ids(agents: int) -> list[str]:
    return [f"b{n:03d}" for n in range(agents)]


def center(agents: int) -> tuple[Config, list[AgentConfig]]:
    config = load_config(None, {"engine": {"status_interval_s": 1.0, "dispositions": ["ok"]}})
    return config, [AgentConfig(id=a, queues={"general": 0.0}) for a in agent_ids(agents)]


class Consoles(Protocol):
    """Where the bot consoles run; :meth:`offered` gives the arrival time of each offer,
    and :attr:`unanswered` then the bots' commands the engine has not answered."""

    unanswered: int

    async def start(self) -> None: ...

    async def offered(self) -> dict[str, float]: ...

    async def stop(self) -> None: ...


class LocalConsoles:
    """The bots in this process, on the given bus."""

    def __init__(self, bus: Bus, agents: int) -> None:
        self.times: dict[str, float] = {}
        self.bots = [BotConsole(bus, a, self.times) for a in agent_ids(agents)]
        self.unanswered = 0
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.tasks = [asyncio.create_task(bot.run(), name=bot.agent) for bot in self.bots]
        await all_ready(self.bots)

    async def offered(self) -> dict[str, float]:
        self.unanswered = sum(len(bot.unanswered) for bot in self.bots)
        return self.times

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class ChildConsoles:
    """The bots in a child process (``--consoles-only``), over the broker."""

    def __init__(self, url: str, agents: int, connections: int, loop: str, bots: str) -> None:
        self.args = [
            sys.executable,
            __file__,
            "--consoles-only",
            url,
            "--agents",
            str(agents),
            "--connections",
            str(connections),
            "--loop",
            loop,
            "--bots",
            bots,
        ]
        self.process: asyncio.subprocess.Process | None = None
        self.cpu_s: float | None = None
        """The process's CPU time from ready to the report."""
        self.unanswered = 0

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 24,  # the report is one long JSON line
        )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), 60)
        if line.strip() != b"ready":
            sys.exit(f"the consoles' process did not start: {line!r}")

    async def offered(self) -> dict[str, float]:
        assert self.process is not None
        assert self.process.stdin
        assert self.process.stdout
        self.process.stdin.write(b"report\n")
        await self.process.stdin.drain()
        line = await asyncio.wait_for(self.process.stdout.readline(), 60)
        report = json.loads(line)
        self.cpu_s, self.unanswered = report["cpu_s"], report["unanswered"]
        times: dict[str, float] = report["offered"]
        return times

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            await asyncio.wait_for(self.process.wait(), 30)


class LeanConnection(asyncio.Protocol):
    """Bot consoles on one broker connection, written over the engine's own hot-packet
    writer and reader (:mod:`cti.bus.packets`), with no bus, task or queue per bot: the
    bench's consoles cost the machine less than ``MqttBus`` consoles (~0.67 ms a call),
    and the figure is the engine's. Each bot still behaves as a console: every message
    on its events topic is decoded and checked (:func:`cti.protocol.decode`); it logs
    in, goes Ready, accepts each offer, hangs up once connected and wraps up once the
    call ended, each command at QoS 1 with its own ``command_id``, and takes each answer
    (a ``CommandResult``, or the event that names an accept or hang-up)."""

    def __init__(self, agents: list[str], offered: dict[str, float], name: str) -> None:
        self.agents, self.offered, self.name = agents, offered, name
        self.waiting_ready = {a: "" for a in agents}
        """Agent -> its SetReady's command id, until the engine has answered it."""
        self.unanswered: set[str] = set()
        """The commands sent that the engine has not answered yet."""
        self.ready = asyncio.Event()
        self.subscribed = asyncio.Event()
        self.transport: asyncio.Transport | None = None
        self.demux = Demux(self._received, self._acked, self._write)
        self.bots = {
            topics.agent_events(a): (a, topic_head(topics.agent_commands(a))) for a in agents
        }
        """Events topic -> its agent and the agent's commands topic as a PUBLISH carries it."""
        self.mid = 0
        self.out = bytearray()
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's and uvloop's TCP transports set TCP_NODELAY themselves.
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not asyncio's class
        client = self.name.encode()
        body = b"\x00\x04MQTT\x05\x02\x00\x00\x00" + len(client).to_bytes(2, "big") + client
        self._write(bytes((0x10, len(body))) + body)  # CONNECT, MQTT v5, clean start, no keepalive
        filters = b"".join(topic_head(topics.agent_events(a)) + b"\x01" for a in self.agents)
        body = b"\x00\x01\x00" + filters  # SUBSCRIBE, packet id 1, at QoS 1
        self._write(b"\x82" + variable_int(len(body)) + body)

    def data_received(self, data: bytes) -> None:
        rest = self.demux.feed(data)  # PUBLISH and PUBACK; the rest: CONNACK, SUBACK
        while rest:
            kind, (length, at) = rest[0] >> 4, read_variable_int(rest, 1, len(rest))
            if kind == 9:  # SUBACK
                self.subscribed.set()
            rest = rest[at + length :]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.is_set():
            sys.exit(f"a bot connection closed: {exc}")

    def start(self) -> None:
        """Log every bot in and make it Ready."""
        for agent, commands in self.bots.values():
            self._publish(commands, Login(agent_id=agent))
            set_ready = SetReady(agent_id=agent)
            self.waiting_ready[agent] = set_ready.command_id
            self._publish(commands, set_ready)

    def _received(self, topic: str, payload: bytes, _idents: tuple[int, ...]) -> None:
        message = decode(payload, where=topic)
        if isinstance(message, ANSWERING):  # cti.protocol.answer, without a result made
            self.unanswered.discard(message.command_id)
        agent, commands = self.bots[topic]  # its subscriptions: one events topic a bot
        if isinstance(message, CallOffered):
            call_id = message.pop.call_id
            self.offered.setdefault(call_id, time.monotonic())
            self._publish(commands, AcceptOffer(agent_id=agent, call_id=call_id))
        elif isinstance(message, CallConnected):
            self._publish(commands, HangUp(agent_id=agent, call_id=message.call_id))
        elif isinstance(message, CallEnded):
            done = CompleteWrapUp(agent_id=agent, call_id=message.call_id, disposition="ok")
            self._publish(commands, done)
        elif (
            isinstance(message, CommandResult)
            and self.waiting_ready.get(agent) == message.command_id
        ):
            del self.waiting_ready[agent]
            if not self.waiting_ready:
                self.ready.set()

    def _publish(self, head: bytes, command: AnyCommand) -> None:
        self.mid = self.mid % 65535 + 1
        self.unanswered.add(command.command_id)
        self._write(publish_packet(head, encode(command), 1, False, self.mid))

    def _acked(self, mid: int) -> bool:
        return True  # a command's PUBACK: nothing waits for it

    def _write(self, packet: bytes) -> None:
        # What one turn writes (the PUBACKs and commands of a read) goes in one send.
        if not self.out:
            self.loop.call_soon(self._flush)
        self.out += packet

    def _flush(self) -> None:
        assert self.transport is not None
        self.transport.write(bytes(self.out))
        self.out.clear()


def _same(link: LeanConnection) -> LeanConnection:
    return link


async def lean_consoles(
    url: str, agents: int, connections: int, times: dict[str, float]
) -> list[LeanConnection]:
    """Bots on ``connections`` lean connections (:class:`LeanConnection`), all Ready."""
    host, port = url.removeprefix("mqtt://").rsplit(":", 1)
    loop = asyncio.get_running_loop()
    ids = agent_ids(agents)
    count = max(1, connections)
    links = [LeanConnection(ids[n::count], times, f"bench-console-{n}") for n in range(count)]
    for link in links:
        await loop.create_connection(functools.partial(_same, link), host, int(port))
    async with asyncio.timeout(60):
        for link in links:
            await link.subscribed.wait()
            link.start()
        for link in links:
            await link.ready.wait()
    return links


async def consoles_only(url: str, agents: int, connections: int, bots: str) -> None:
    """The child process: bots over ``connections`` connections (``bots``: "lean",
    :class:`LeanConnection`; "bus", :class:`BotConsole` on an ``MqttBus`` each); "report"
    on stdin prints the offers' arrival times as one JSON line; end of stdin stops."""
    times: dict[str, float] = {}
    if bots == "lean":
        links = await lean_consoles(url, agents, connections, times)
        await _serve_reports(times, lambda: sum(len(link.unanswered) for link in links))
        return
    async with contextlib.AsyncExitStack() as stack:
        buses = [
            await stack.enter_async_context(MqttBus(url, client_id=f"bench-console-{n}"))
            for n in range(max(1, connections))
        ]
        for bus in buses:
            async with asyncio.timeout(10):
                await bus.wait_online()
        consoles = [
            BotConsole(buses[n % len(buses)], a, times) for n, a in enumerate(agent_ids(agents))
        ]
        tasks = [asyncio.create_task(bot.run()) for bot in consoles]
        await all_ready(consoles)
        await _serve_reports(times, lambda: sum(len(bot.unanswered) for bot in consoles))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _serve_reports(times: dict[str, float], unanswered: Callable[[], int]) -> None:
    """Ready: answer "report" on stdin with the offers' times (and the CPU time, and the
    commands not answered) until stdin ends."""
    gc.freeze()  # as the engine's process: a full collection is no stall of the bots
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    cpu_start = time.process_time()
    while line := await reader.readline():
        if line.strip() == b"report":
            cpu_s = time.process_time() - cpu_start
            report = {"offered": times, "cpu_s": cpu_s, "unanswered": unanswered()}
            print(json.dumps(report), flush=True)


async def run_rate(
    engine_bus: Bus, consoles: Consoles, rate: float, seconds: float, agents: int, seed: int
) -> dict[str, Any]:
    config, agent_configs = center(agents)
    trunk = SimTrunk("sim")
    service = EngineService(config, engine_bus, NoCustomers(), [trunk], agent_configs)
    rung: dict[str, float] = {}
    finished = Countdown()
    service.record_listeners.append(finished.tick)
    engine = asyncio.create_task(service.run(), name="engine")
    await service.ready.wait()
    await consoles.start()
    gc.freeze()  # as cti serve does once up: start-up's objects out of every collection
    try:
        rng = random.Random(seed)
        loop = asyncio.get_running_loop()
        start = loop.time()
        counts_start = _message_counts(engine_bus)
        cpu_start = time.process_time()
        next_at = start
        n = 0
        while next_at - start < seconds:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            call_id = trunk.ring(f"1390000{n:04d}")
            rung[call_id] = time.monotonic()
            n += 1
            next_at += rng.expovariate(rate)
        achieved = n / max(1e-9, loop.time() - start)
        finished.expect(len(rung))  # every call recorded: all done
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(60):
                await finished.reached.wait()
        cpu = time.process_time() - cpu_start
        counts = _message_counts(engine_bus)
        sent, received = counts[0] - counts_start[0], counts[1] - counts_start[1]
        await service.flush()
        await asyncio.sleep(0.2)  # the last wrap-up's answer on its way to its console
        offered = await consoles.offered()
        consoles_cpu = getattr(consoles, "cpu_s", None)
        if consoles_cpu is not None:
            consoles_cpu /= max(1, len(rung))
    finally:
        await consoles.stop()
        engine.cancel()
        await asyncio.gather(engine, return_exceptions=True)
    order = sorted(rung, key=rung.__getitem__)
    measured = order[int(len(order) * WARM_UP) :]
    latencies = [(offered[c] - rung[c]) * 1000 for c in measured if c in offered]
    return {
        "rate": rate,
        "achieved_rate": round(achieved, 1),
        "calls": len(rung),
        "offered": sum(1 for c in rung if c in offered),
        "p50_ms": _pct(latencies, 50),
        "p99_ms": _pct(latencies, 99),
        "max_ms": round(max(latencies), 3) if latencies else None,
        "cpu_us_per_call": round(cpu / max(1, len(rung)) * 1e6),
        "sent_per_call": round(sent / max(1, len(rung)), 2),
        "received_per_call": round(received / max(1, len(rung)), 2),
        "consoles_cpu_us_per_call": None if consoles_cpu is None else round(consoles_cpu * 1e6),
        "unanswered": consoles.unanswered,
    }


def _message_counts(bus: Bus) -> tuple[int, int]:
    """Messages the engine's bus sent to and received from the broker so far (0, 0 in
    process)."""
    if isinstance(bus, MqttBus):
        return bus.sent, bus.received
    return 0, 0


class Countdown:
    """Counts the calls recorded; :attr:`reached` is set once they are as many as
    :meth:`expect` says (known only when the ringing stops)."""

    def __init__(self) -> None:
        self.seen = 0
        self.target: int | None = None
        self.reached = asyncio.Event()

    def tick(self, _record: object) -> None:
        self.seen += 1
        self._check()

    def expect(self, target: int) -> None:
        self.target = target
        self._check()

    def _check(self) -> None:
        if self.target is not None and self.seen >= self.target:
            self.reached.set()


def _pct(values: list[float], q: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 3)
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 3)


# --- Mosquitto ----------------------------------------------------------------------------


@contextlib.contextmanager
def mosquitto() -> Any:
    program = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(program).exists():
        sys.exit("mosquitto is not installed (deploy/system-deps.sh, or apt-get install mosquitto)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "mosquitto.conf"
        conf.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "max_inflight_messages 100\nmax_queued_messages 100000\nset_tcp_nodelay true\n"
        )
        process = subprocess.Popen([program, "-c", str(conf)], stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or process.poll() is not None:
                        sys.exit("mosquitto did not start")
                    time.sleep(0.02)
            yield f"mqtt://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=10)


async def broker_rtt(url: str, pings: int, payload: bytes) -> dict[str, Any]:
    """Raw aiomqtt round trips through the broker: QoS 1, one client to another."""
    import aiomqtt

    port = int(url.rsplit(":", 1)[1])
    topic = "cti/v1/bench/ping"
    rtts: list[float] = []
    async with (
        aiomqtt.Client("127.0.0.1", port, identifier="bench-ping-rx") as rx,
        aiomqtt.Client("127.0.0.1", port, identifier="bench-ping-tx") as tx,
    ):
        await rx.subscribe(topic, qos=1)
        messages = aiter(rx.messages)
        for _ in range(pings):
            t0 = time.perf_counter()
            await tx.publish(topic, payload, qos=1)
            await anext(messages)
            rtts.append((time.perf_counter() - t0) * 1000)
    rtts = rtts[int(len(rtts) * WARM_UP) :]
    return {"p50_ms": _pct(rtts, 50), "p99_ms": _pct(rtts, 99), "pings": len(rtts)}


def _offer_size() -> bytes:
    from cti.models import CallerKind
    from cti.protocol import ScreenPop

    pop = ScreenPop(
        call_id="sim-1", queue="general", ani="13900000001", caller_kind=CallerKind.UNKNOWN
    )
    return encode(CallOffered(agent_id="b001", pop=pop, timeout_s=15, deadline_wall=time.time()))


async def main(
    seconds: float, agents: int, pings: int, connections: int, loop: str, bots: str
) -> dict[str, Any]:
    results: dict[str, Any] = {
        "agents": agents,
        "seconds_per_rate": seconds,
        "loop": loop,
        "bots": bots,
    }
    load = load_average()
    rows = []
    for rate in RATES:
        bus = InMemoryBus()
        row = await run_rate(bus, LocalConsoles(bus, agents), rate, seconds, agents, seed=rate)
        rows.append(("in-process", row))
    with mosquitto() as url:

        async def over_broker(rate: int) -> dict[str, Any]:
            async with MqttBus(url, client_id="bench-engine", persistent=True) as engine:
                async with asyncio.timeout(10):
                    await engine.wait_online()
                consoles = ChildConsoles(url, agents, connections, loop, bots)
                return await run_rate(engine, consoles, rate, seconds, agents, seed=rate)

        for rate in RATES:
            rows.append(("mosquitto", await over_broker(rate)))
        saturation = await saturation_rate(rows[-1][1], over_broker, rows)
        rtt = await broker_rtt(url, pings, _offer_size())
    print_rows(rows, results)
    results["mqtt_saturation_calls_s"] = saturation
    print(f"over the broker, p99 within {SATURATION_P99_MS} ms up to: {saturation} calls/s")
    size = len(_offer_size())
    print(
        f"broker raw round trip (aiomqtt, QoS 1, {size} B): p50 {rtt['p50_ms']} ms, "
        f"p99 {rtt['p99_ms']} ms over {rtt['pings']} pings"
    )
    results["broker_rtt_p50_ms"] = rtt["p50_ms"]
    results["broker_rtt_p99_ms"] = rtt["p99_ms"]
    results["loadavg_start"], results["loadavg_end"] = load, load_average()
    print(f"event loop: {loop}; load average (1, 5, 15 min) {results['loadavg_start']} "
          f"at the start, {results['loadavg_end']} at the end")  # fmt: skip
    print(json.dumps(results))
    return results


# --- the path hop by hop (--trace) ------------------------------------------------------

HOPS = ("ring", "line task", "identified", "routed", "offer taken", "offer published",
        "sent", "console")  # fmt: skip


class HopTrace:
    """Stamps (``time.monotonic``, one clock for both processes) at each hop of an
    arriving call's way to its offer, by wrapping the engine's steps while it is open:
    the trunk's ring, the line task taking the event, the caller identified, the
    router's actions queued, the effects task taking the offer, the offer published,
    its bytes sent (the broker connection's first write after it), and the console's
    decoding (its offer time)."""

    def __init__(self) -> None:
        self.stamps: dict[str, dict[str, float]] = {}
        self._arriving: str | None = None
        self._offer: str | None = None
        self._undo: list[tuple[object, str, object]] = []

    def __enter__(self) -> HopTrace:
        from cti.bus import batching_socket
        from cti.engine import service

        for owner, name, make in (
            (SimTrunk, "ring", self._ring),
            (EngineService, "handle_line_event", self._line_event),
            (service, "identify", self._identify),
            (EngineService, "route", self._route),
            (EngineService, "_carry_out", self._carry_out),
            (MqttBus, "publish", self._publish),
            (MqttBus, "publish_encoded", self._publish),  # the offer, encoded once
            (batching_socket.BatchingSocket, "_flush", self._flush),
        ):
            original = getattr(owner, name)
            self._undo.append((owner, name, original))
            setattr(owner, name, make(original))
        return self

    def _stamp(self, call_id: str | None, hop: str) -> None:
        if call_id in self.stamps:
            self.stamps[call_id].setdefault(hop, time.monotonic())

    def _ring(self, original: Any) -> Any:
        def traced(trunk: SimTrunk, ani: str, **kw: Any) -> str:
            at = time.monotonic()
            call_id: str = original(trunk, ani, **kw)
            self.stamps[call_id] = {"ring": at}
            return call_id

        return traced

    def _line_event(self, original: Any) -> Any:
        async def traced(engine: EngineService, event: Any) -> None:
            if getattr(event, "type", "") == "call_arrived":
                self._arriving = event.call_id
                self._stamp(event.call_id, "line task")
            await original(engine, event)

        return traced

    def _identify(self, original: Any) -> Any:
        async def traced(*args: Any, **kw: Any) -> Any:
            caller = await original(*args, **kw)
            self._stamp(self._arriving, "identified")
            return caller

        return traced

    def _route(self, original: Any) -> Any:
        def traced(engine: EngineService, event: Any) -> None:
            original(engine, event)
            if type(event).__name__ == "CallArrives":
                self._stamp(event.call_id, "routed")

        return traced

    def _carry_out(self, original: Any) -> Any:
        def traced(engine: EngineService, action: Any) -> Any:  # what's left to await, or None
            if type(action).__name__ == "OfferCall":
                self._stamp(action.call_id, "offer taken")
            return original(engine, action)

        return traced

    def _publish(self, original: Any) -> Any:
        async def traced(bus: MqttBus, topic: str, message: Any, *args: Any, **kw: Any) -> None:
            await original(bus, topic, message, *args, **kw)
            if isinstance(message, CallOffered):
                self._offer = message.pop.call_id
                self._stamp(self._offer, "offer published")

        return traced

    def _flush(self, original: Any) -> Any:
        def traced(sock: Any) -> None:
            if self._offer is not None:
                self._stamp(self._offer, "sent")
                self._offer = None
            original(sock)

        return traced

    def __exit__(self, *exc: object) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)

    def table(self, offered: dict[str, float]) -> list[tuple[str, float, float, float]]:
        """Each hop's p50, p90 and p99 in microseconds, and the engine's and the whole
        path's, over the calls after the warm-up stamped at every hop."""
        order = sorted(self.stamps, key=lambda c: self.stamps[c]["ring"])
        rows = []
        for call_id in order[int(len(order) * WARM_UP) :]:
            stamps = self.stamps[call_id]
            if call_id in offered:
                stamps["console"] = offered[call_id]
            if all(hop in stamps for hop in HOPS):
                rows.append(stamps)
        spans = [*itertools.pairwise(HOPS), ("ring", "sent"), ("ring", "console")]
        out = []
        for start, end in spans:
            times = [(row[end] - row[start]) * 1e6 for row in rows]
            if len(times) > 1:
                q = statistics.quantiles(times, n=100, method="inclusive")
                out.append((f"{start} -> {end}", q[49], q[89], q[98]))
        return out


async def trace_rate(
    url: str, rate: float, seconds: float, agents: int, consoles: Consoles
) -> None:
    """One rate over the broker with :class:`HopTrace`: the hop table."""
    times: dict[str, float] = {}
    report = consoles.offered

    async def offered() -> dict[str, float]:
        times.update(await report())
        return times

    consoles.offered = offered  # type: ignore[method-assign]
    with HopTrace() as trace:
        async with MqttBus(url, client_id="bench-engine", persistent=True) as engine:
            async with asyncio.timeout(10):
                await engine.wait_online()
            row = await run_rate(engine, consoles, rate, seconds, agents, seed=int(rate))
    print(f"{rate:g} calls/s over the broker: {row['offered']}/{row['calls']} offered, p50 "
          f"{row['p50_ms']} ms, p99 {row['p99_ms']} ms, engine CPU {row['cpu_us_per_call']} us a "
          "call; hops in us (p50, p90, p99):")  # fmt: skip
    for name, p50, p90, p99 in trace.table(times):
        print(f"  {name:<36} {p50:8.0f} {p90:8.0f} {p99:8.0f}")


async def trace_only(
    rate: float, seconds: float, agents: int, connections: int, loop: str, bots: str
) -> None:
    with mosquitto() as url:
        consoles = ChildConsoles(url, agents, connections, loop, bots)
        await trace_rate(url, rate, seconds, agents, consoles)


async def saturation_rate(
    at_500: dict[str, Any],
    over_broker: Callable[[int], Awaitable[dict[str, Any]]],
    rows: list[tuple[str, dict[str, Any]]],
) -> int | str:
    """The highest rate whose p99 over the broker is within the goal (its rows added)."""
    if not _within(at_500):
        return "< 500"
    best = 500
    for rate in SATURATION_RATES:
        row = await over_broker(rate)
        rows.append(("mosquitto", row))
        if not _within(row):
            break
        best = rate
    return best


def _within(row: dict[str, Any]) -> bool:
    p99 = row["p99_ms"]
    return p99 is not None and p99 <= SATURATION_P99_MS and row["offered"] == row["calls"]


def print_rows(rows: list[tuple[str, dict[str, Any]]], results: dict[str, Any]) -> None:
    head = ("bus", "rate/s", "achieved", "calls", "offered", "p50 ms", "p99 ms", "max ms",
            "CPU us/call", "out/call", "in/call", "bots us/call", "unanswered")  # fmt: skip
    print("{:<11} {:>7} {:>9} {:>6} {:>8} {:>9} {:>9} {:>9} {:>12} {:>9} {:>8} {:>13} {:>10}"
          .format(*head))  # fmt: skip
    for name, r in rows:
        cells = (name, r["rate"], r["achieved_rate"], r["calls"], r["offered"])
        times = (r["p50_ms"], r["p99_ms"], r["max_ms"])
        print(
            "{:<11} {:>7} {:>9} {:>6} {:>8}".format(*cells),
            *(f"{t!s:>9}" for t in times),
            f"{r['cpu_us_per_call']:>12}",
            f"{r['sent_per_call']:>9}",
            f"{r['received_per_call']:>8}",
            f"{r['consoles_cpu_us_per_call']!s:>13}",
            f"{r['unanswered']:>10}",
        )
        key = "inprocess" if name == "in-process" else "mqtt"
        suffix = "" if r["rate"] == 500 else f"_at_{r['rate']}"
        results[f"{key}_p50_ms{suffix}"] = r["p50_ms"]
        results[f"{key}_p99_ms{suffix}"] = r["p99_ms"]
        results[f"{key}_achieved_rate{suffix}"] = r["achieved_rate"]
        results[f"{key}_offered{suffix}"] = f"{r['offered']}/{r['calls']}"
        results[f"{key}_cpu_us_per_call{suffix}"] = r["cpu_us_per_call"]
        results[f"{key}_unanswered{suffix}"] = r["unanswered"]
        if key == "mqtt":
            results[f"mqtt_sent_per_call{suffix}"] = r["sent_per_call"]
            results[f"mqtt_received_per_call{suffix}"] = r["received_per_call"]
            results[f"mqtt_bots_cpu_us_per_call{suffix}"] = r["consoles_cpu_us_per_call"]


def load_average() -> str:
    """The machine's load (1, 5 and 15 minutes): shared cores make the figures move."""
    try:
        with open("/proc/loadavg") as file:
            return " ".join(file.read().split()[:3])
    except OSError:
        return "unknown"


def loop_factory(loop: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop the processes run on: ``cti serve``'s (uvloop when installed)."""
    if loop == "asyncio":
        return None
    factory = serve_loop_factory()
    if factory is None:
        sys.exit("uvloop is not installed: --loop asyncio")
    return factory


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="arrivals per rate (default 6)")
    parser.add_argument("--agents", type=int, default=100, help="bot consoles (default 100)")
    parser.add_argument(
        "--connections", type=int, default=20, help="MQTT connections the bots share (default 20)"
    )
    parser.add_argument("--pings", type=int, default=2000, help="broker round trips (default 2000)")
    default_loop = "uvloop" if serve_loop_factory() is not None else "asyncio"
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default=default_loop,
        help=f"the event loop (default {default_loop}, as cti serve)",
    )
    parser.add_argument(
        "--bots",
        choices=("lean", "bus"),
        default="lean",
        help="the consoles over the broker: lean (the engine's packet reader and writer, "
        "default) or bus (an MqttBus per connection, a task per bot)",
    )
    parser.add_argument(
        "--trace",
        type=float,
        metavar="RATE",
        help="only this rate over the broker, with the time of each hop from ring to offer",
    )
    parser.add_argument("--consoles-only", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=loop_factory(args.loop)) as runner:
        if args.consoles_only:
            runner.run(consoles_only(args.consoles_only, args.agents, args.connections, args.bots))
        elif args.trace:
            runner.run(trace_only(args.trace, args.seconds, args.agents, args.connections,
                                  args.loop, args.bots))  # fmt: skip
        else:
            runner.run(
                main(args.seconds, args.agents, args.pings, args.connections, args.loop, args.bots)
            )
