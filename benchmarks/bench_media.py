"""Bridged, recorded calls through the media relay, against a bare asyncio UDP forwarder.

Each call is two legs of :class:`~telephony_adapters.media.relay.MediaRelay` (its
:class:`~telephony_adapters.media.bridge.MediaCore`), connected two-way, both PCMU, with a
recording tap on each (caller left, agent right) feeding a
:class:`~telephony_adapters.media.recorder.Recorder` per call whose WAV bytes go through
:class:`~telephony_adapters.media.recording_files.RecordingFiles` to a temporary directory,
as the SIP voice records (a tap per leg, the leg as the recorder's source, every
recording ticked each 100 ms).

The RTP comes from another process (this script with ``--generator``): for every leg a
20 ms G.711 packet every 20 ms, the legs' phases spread over the 20 ms (phones are not in
step), sent to the leg's relay port on 127.0.0.1 from one of 16 sockets that also take
what the relay sends back. Each payload starts with the leg, a sequence number and the
send time (``time.monotonic``, the generator's own clock at both ends), so the generator
measures each packet's latency and counts what never came back (``lost_packets``: sent
in the measured window, not received within ``--grace`` s after the last send; 10 s
with ``--quick``, whose run ends as soon as everything is back).

For each size three runs, in this order, with the same generator and schedule:

- ``direct``: the generator's legs send to each other (no relay): the floor of the
  generator and the loopback;
- ``baseline``: a bare asyncio forwarder in this process (datagram in on leg A's port,
  ``sendto`` leg B's peer from leg B's port; no parsing, no recording);
- ``relay``: the media relay, recording on.

``added_latency_p99_ms`` is a run's latency p99 minus the direct run's.
``cpu_per_call_ms_per_s`` is this process's CPU time (``time.process_time``: every thread,
the recording writer's too) over the measured window, per call, per second of audio.
``core_share`` is the same CPU time over wall time: 1.0 is one core busy (the relay is
one asyncio thread, plus the recording writer's). ``cpu_us_per_packet``: that CPU time
per packet the relay took in; ``cores_needed``: that cost times the packets offered
(what the relay would need where it got less CPU than that).

The generator runs in a session of its own (its own scheduler autogroup, as on another
host); with ``--pin`` this process runs on the first CPU and the generator on the
second. On a machine shared with other work each session gets its fair share of the
CPUs, whatever its ``nice``: ``cpu_pressure_pct`` (Linux PSI: some task waited for a
CPU, share of the last 10 s) says how busy it was.

The first ``--warmup`` s of each run are not measured. ``generator_kept_up``: the
generator sent its slots at most 20 ms late (p99) in all three runs; when it did not (a
busy machine, or more calls than one Python process can send), the latency and loss
figures are the generator's, not the relays'. The issue's goal (issue 19): 200 calls on
one core with no packet lost and added latency p99 <= 2 ms; ``goal_met`` says whether
the 200-call line meets it (only on lines of 200 calls; null when the generator did
not keep up).

Stalls of this process's event loop in each measured window: ``loop_lag_p99_ms`` and
``loop_lag_max_ms`` (a 1 ms timer's lateness: what a packet arriving then waited too),
``gc_pause_max_ms`` and ``gc_collections`` (per generation). The relay's set-up is
frozen out of the collector (``gc.freeze()``, as ``cti serve`` does; ``--no-gc-freeze``).

``--compiled``: after the runs on the interpreted media core, the same runs again in a
child process whose ``sys.path`` starts with the core compiled by mypyc
(:mod:`telephony_adapters.media.compiled`; built into the cache on first use); each JSON
line says its ``core``. ``--no-interpreted`` leaves the interpreted runs out.

The whole run is made on each event loop of ``--loops`` in turn (default: asyncio, then
uvloop when it is installed, as the engine then runs on it; ``--quick``: the engine's
loop only), the relay and the forwarder alike.

Prints a table and one JSON line per loop and size (``calls``, ``loop``,
``cpu_per_call_ms_per_s``, ``added_latency_p99_ms``, ``lost_packets`` and the same with
``baseline_``). About 3 x 3 x (``--warmup`` + ``--seconds`` + 1) s plus the set-up per
loop (about 2 min each); ``--quick``: 10 calls, about 6 s.

    .venv/bin/python benchmarks/bench_media.py [--sizes 50,200,500] [--seconds 10] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import select
import socket
import struct
import sys
import tempfile
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, cast

from telephony_adapters.media.bridge import Addr, RecordFrame
from telephony_adapters.media.recorder import Recorder
from telephony_adapters.media.recording_files import Recording, RecordingFiles
from telephony_adapters.media.relay import MediaRelay, RelayHooks

HOST = "127.0.0.1"
RX_SOCKETS = 16
"""The generator's sockets; leg ``j`` sends from and is sent to socket ``j % 16``."""
SOCKET_BUFFER = 4 * 1024 * 1024
FRAME_S = 0.02
SLOTS = 20
"""Send slots per 20 ms frame (1 ms apart); leg ``j`` sends in slot ``j % 20``."""
PCMU = 0
MAGIC = b"BMRX"
# The generator packs and reads plain RTP headers itself (no RtpPacket): at 500 calls it
# sends and takes 50,000 packets a second in one Python process.
_PACKET = struct.Struct("!BBHII4sIId")  # RTP header, then magic, leg, sequence, send time
_STAMP = struct.Struct("!4sIId")
_PAD = b"\xff" * (160 - _STAMP.size)  # mu-law silence after the stamp: a 160-byte frame
_PLAIN_RTP = 0x80  # version 2, no padding, extension or CSRC: what the relays send
GOAL_CALLS = 200
GOAL_P99_MS = 2.0
RECORDING_TICK_S = 0.1  # SipVoice writes every open recording this often
PHONE_SILENCE_S = 30.0  # [voice] phone_silence_s's default: every leg has a time-out


# --- the generator (the child process) ---------------------------------------------------


@dataclass(slots=True)
class _Tally:
    measure_from: float
    measure_to: float
    sent: int = 0
    received: int = 0
    send_errors: int = 0
    filled: int = 0
    """Packets without our stamp in the measured window: silence the relay made up."""
    latencies: array[float] = field(default_factory=lambda: array("d"))
    lateness: array[float] = field(default_factory=lambda: array("d"))
    """How late each slot was sent (the generator's own lag behind its schedule)."""

    def receive(self, sock: socket.socket) -> None:
        """Everything waiting on ``sock``; a packet without our stamp (the relay's silence
        before the talk starts) is ignored."""
        while True:
            try:
                data = sock.recv(2048)
            except BlockingIOError:
                return
            now = time.monotonic()
            if len(data) < _PACKET.size or data[0] != _PLAIN_RTP or data[12:16] != MAGIC:
                self.filled += self.measure_from <= now < self.measure_to
                continue
            sent_at = _STAMP.unpack_from(data, 12)[3]
            if sent_at >= self.measure_from:
                self.received += 1
                self.latencies.append(now - sent_at)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        late = sorted(self.lateness)
        return {
            "sent": self.sent,
            "received": self.received,
            "lost": max(0, self.sent - self.received),
            "send_errors": self.send_errors,
            "filled": self.filled,
            "p50_ms": _ms(_percentile(ordered, 0.50)),
            "p99_ms": _ms(_percentile(ordered, 0.99)),
            "max_ms": _ms(ordered[-1] if ordered else 0.0),
            "late_p99_ms": _ms(_percentile(late, 0.99)),
            "late_max_ms": _ms(late[-1] if late else 0.0),
        }


def _percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _send_slot(
    socks: list[socket.socket], targets: list[Addr], legs: range, seq: int, tally: _Tally
) -> None:
    for leg in legs:
        now = time.monotonic()
        header = (_PLAIN_RTP, PCMU, seq & 0xFFFF, seq * 160, 0x10000 + leg)
        packet = _PACKET.pack(*header, MAGIC, leg, seq, now) + _PAD
        try:
            socks[leg % RX_SOCKETS].sendto(packet, targets[leg])
        except OSError:
            tally.send_errors += 1
            continue
        if now >= tally.measure_from:
            tally.sent += 1


def _generate(socks: list[socket.socket], plan: dict[str, Any]) -> dict[str, Any]:
    """Send on the 1 ms slot grid from ``start_at`` for warm-up + seconds; take what comes
    back meanwhile, then until all is back or ``grace`` s after the last send. Behind
    schedule, each slot is still sent (the load stays what it says) and the sockets are
    read between slots."""
    targets = [(str(host), int(port)) for host, port in plan["targets"]]
    start_at, warmup, seconds = plan["start_at"], plan["warmup"], plan["seconds"]
    stop_at = start_at + warmup + seconds
    end_at = stop_at + plan["grace"]  # or later: grace after the last send, if behind
    tally = _Tally(measure_from=start_at + warmup, measure_to=stop_at)
    groups = [range(g, len(targets), SLOTS) for g in range(SLOTS)]
    by_fd = {sock.fileno(): sock for sock in socks}
    cpu = time.process_time()
    with select.epoll() as poll:
        for fd in by_fd:
            poll.register(fd, select.EPOLLIN)
        slot = 0
        while True:
            due = start_at + slot * (FRAME_S / SLOTS)
            now = time.monotonic()
            if due < stop_at and now >= due:
                if due >= tally.measure_from:
                    tally.lateness.append(now - due)
                _send_slot(socks, targets, groups[slot % SLOTS], slot // SLOTS, tally)
                slot += 1
                due += FRAME_S / SLOTS
                if due >= stop_at:
                    end_at = max(end_at, time.monotonic() + plan["grace"])
            elif due >= stop_at and (now >= end_at or tally.received >= tally.sent):
                break  # the grace is over, or everything came back
            until = due if due < stop_at else end_at
            for fd, _ in poll.poll(max(0.0, until - time.monotonic())):
                tally.receive(by_fd[fd])
    return tally.summary() | {"cpu_s": round(time.process_time() - cpu, 3)}


def generator_main() -> None:
    """The child: report its sockets, then one run per plan line on stdin."""
    socks = []
    for _ in range(RX_SOCKETS):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
        sock.bind((HOST, 0))
        sock.setblocking(False)
        socks.append(sock)
    print(json.dumps({"addrs": [sock.getsockname() for sock in socks]}), flush=True)
    for line in sys.stdin:
        print(json.dumps(_generate(socks, json.loads(line))), flush=True)


# --- this process: the relays under test -------------------------------------------------


class _Generator:
    """The child process and its sockets' addresses."""

    def __init__(self, proc: asyncio.subprocess.Process, addrs: list[Addr]) -> None:
        self.proc = proc
        self.addrs = addrs

    @classmethod
    async def start(cls, cpu: int | None) -> _Generator:
        command = [sys.executable, __file__, "--generator"]
        if cpu is not None:
            command.append(f"--generator-cpu={cpu}")
        proc = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own scheduler autogroup: it stands for other hosts
        )
        hello = json.loads(await cls._line(proc))
        return cls(proc, [(str(host), int(port)) for host, port in hello["addrs"]])

    def rx(self, leg: int) -> Addr:
        """Where the generator takes leg ``leg``'s packets."""
        return self.addrs[leg % RX_SOCKETS]

    async def run(self, targets: list[Addr], start_at: float, args: argparse.Namespace) -> Any:
        assert self.proc.stdin is not None
        plan = {"targets": targets, "start_at": start_at, "warmup": args.warmup}
        plan |= {"seconds": args.seconds, "grace": args.grace}
        self.proc.stdin.write(json.dumps(plan).encode() + b"\n")
        await self.proc.stdin.drain()
        return json.loads(await self._line(self.proc))

    @staticmethod
    async def _line(proc: asyncio.subprocess.Process) -> bytes:
        assert proc.stdout is not None
        line = await proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the RTP generator exited (status {await proc.wait()})")
        return line

    async def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        await self.proc.wait()


class _Stalls:
    """How long the event loop of this process stalled in a window: a 1 ms timer's
    lateness (``loop_lag_*``: what any packet waiting then also waited; uvloop's timers
    count whole milliseconds, so up to 1 ms of it is the timer's), and the collector's
    pauses (``gc_*``, from ``gc.callbacks``)."""

    PERIOD_S = 0.001

    def __init__(self, start_at: float, stop_at: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.start_at, self.stop_at = start_at, stop_at
        self.lags = array("d")
        self.pauses = array("d")
        self.collections = [0, 0, 0]
        self._gc_at = 0.0
        self._due = start_at
        self.loop.call_at(start_at, self._tick)
        gc.callbacks.append(self._gc)

    def _tick(self) -> None:
        now = time.monotonic()  # the loop's clock, finer (uvloop's counts whole ms)
        self.lags.append(max(0.0, now - self._due))
        self._due = max(self._due + self.PERIOD_S, now)
        if self._due < self.stop_at:
            self.loop.call_at(self._due, self._tick)
        else:
            gc.callbacks.remove(self._gc)

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._gc_at = now
        elif self.start_at <= time.monotonic() < self.stop_at:
            self.pauses.append(now - self._gc_at)
            self.collections[info["generation"]] += 1

    def figures(self) -> dict[str, Any]:
        lags = sorted(self.lags)
        return {
            "loop_lag_p99_ms": _ms(_percentile(lags, 0.99)),
            "loop_lag_max_ms": _ms(lags[-1] if lags else 0.0),
            "gc_pause_max_ms": _ms(max(self.pauses, default=0.0)),
            "gc_collections": self.collections,
        }


class _CpuWindow:
    """This process's CPU time, the wall time and the packets its relay took in between
    two instants of the loop's clock (the generator's clock too: ``time.monotonic``)."""

    def __init__(self, start_at: float, stop_at: float, packets: Callable[[], int]) -> None:
        loop = asyncio.get_running_loop()
        self.packets = packets
        self.marks: list[tuple[float, float, int]] = []
        self.done: asyncio.Future[None] = loop.create_future()
        loop.call_at(start_at, self._mark)
        loop.call_at(stop_at, self._mark)

    def _mark(self) -> None:
        self.marks.append((time.monotonic(), time.process_time(), self.packets()))
        if len(self.marks) == 2:
            self.done.set_result(None)

    def figures(self) -> dict[str, float]:
        (wall0, cpu0, n0), (wall1, cpu1, n1) = self.marks
        return {
            "core_share": round((cpu1 - cpu0) / (wall1 - wall0), 3),
            "cpu_us_per_packet": round((cpu1 - cpu0) * 1e6 / (n1 - n0), 2) if n1 > n0 else 0.0,
            "relay_packets": n1 - n0,
        }


async def _measured(
    gen: _Generator, targets: list[Addr], args: argparse.Namespace, packets: Callable[[], int]
) -> dict[str, Any]:
    """One generator run, with this process's CPU over its measured window."""
    start_at = time.monotonic() + 0.3
    measured = start_at + args.warmup
    window = _CpuWindow(measured, measured + args.seconds, packets)
    stalls = _Stalls(measured, measured + args.seconds)
    result: dict[str, Any] = await gen.run(targets, start_at, args)
    await window.done  # the generator may be done first (everything back at once)
    return result | window.figures() | stalls.figures()


async def run_direct(gen: _Generator, calls: int, args: argparse.Namespace) -> dict[str, Any]:
    targets = [gen.rx(leg ^ 1) for leg in range(2 * calls)]
    return await _measured(gen, targets, args, lambda: 0)


class _Forward(asyncio.DatagramProtocol):
    """The baseline's leg: what comes in goes out of the peer leg's port to its phone."""

    received = 0  # over every leg

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.peer: _Forward | None = None
        self.phone: Addr = (HOST, 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        _Forward.received += 1
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.sendto(data, peer.phone)


async def run_baseline(gen: _Generator, calls: int, args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    legs: list[_Forward] = []
    try:
        for leg in range(2 * calls):
            _, proto = await loop.create_datagram_endpoint(_Forward, local_addr=(HOST, 0))
            proto.phone = gen.rx(leg)
            legs.append(proto)
        for leg, proto in enumerate(legs):
            proto.peer = legs[leg ^ 1]
        targets = [cast(Addr, p.transport.get_extra_info("sockname")) for p in legs if p.transport]
        return await _measured(gen, targets, args, lambda: _Forward.received)
    finally:
        for proto in legs:
            if proto.transport is not None:
                proto.transport.close()


class _Recordings:
    """What the engine (SipVoice) does with the relay's RecordFrames: a Recorder per call
    fed each leg's frames (a tap per leg, the leg as the recorder's source), its bytes to
    a file, and every recording ticked each 100 ms."""

    def __init__(self, files: RecordingFiles) -> None:
        # here, not at the top: bench_media_core imports this module's forwarder with
        # the media package of older revisions
        from telephony_adapters.media.recording_files import write_due
        from telephony_adapters.media.wiring import tap_parts

        self.write_due = write_due
        self.files = files
        self.calls: dict[str, tuple[Recorder, Recording]] = {}
        self.tap_parts = tap_parts
        self.codes = hasattr(Recorder, "add_g711")

    def open(self, call_id: str, now: float) -> None:
        self.calls[call_id] = (Recorder(now), self.files.open(call_id, date.today()))

    def frame(self, out: RecordFrame) -> None:
        call_id, leg_id = self.tap_parts(out.tap)
        recorder, _ = self.calls[call_id]
        if self.codes:  # the frame's G.711 codes, as the SIP voice records
            recorder.add_g711(out.side, out.payload, out.payload_type, out.at, leg_id, emit=False)
        else:  # a media package from before them (PYTHONPATH)
            recorder.add(out.side, out.samples, out.at, leg_id, emit=False)

    async def tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(RECORDING_TICK_S)
            await self.write_due(self.calls.values(), loop.time())

    async def close(self, now: float) -> tuple[int, int]:
        """Close them all: (bytes written, recordings failed)."""
        for recorder, recording in self.calls.values():
            summary = recorder.close(now)
            recording.write(summary.tail)
            recording.close(summary.header)
        outcomes = [await recording.outcome() for _, recording in self.calls.values()]
        return sum(o.bytes_written for o in outcomes), sum(not o.ok for o in outcomes)


async def run_relay(
    gen: _Generator, calls: int, args: argparse.Namespace, root: Path
) -> dict[str, Any]:
    from telephony_adapters.media.wiring import leg_tap

    loop = asyncio.get_running_loop()
    async with RecordingFiles(root) as files:
        recordings = _Recordings(files)
        hooks = RelayHooks(on_record=recordings.frame)
        async with MediaRelay(HOST, args.ports[0], args.ports[1], hooks=hooks) as relay:
            targets: list[Addr] = []
            leg_ids: list[str] = []
            for call in range(calls):
                a, b, call_id = f"{call}a", f"{call}b", f"call-{call}"
                for leg_id, leg in ((a, 2 * call), (b, 2 * call + 1)):
                    port = await relay.open_leg(
                        leg_id, payload_type=PCMU, telephone_event=101, remote=gen.rx(leg),
                        timeout_s=PHONE_SILENCE_S,
                    )  # fmt: skip
                    targets.append((HOST, port))
                    leg_ids.append(leg_id)
                relay.connect(a, b)
                if args.record:
                    recordings.open(call_id, loop.time())
                    relay.tap(a, leg_tap(call_id, a), "caller")
                    relay.tap(b, leg_tap(call_id, b), "agent")
            core = relay.core
            ticking = loop.create_task(recordings.tick())
            if args.gc_freeze:
                gc.freeze()  # as cti serve does once the engine is up
            try:
                result = await _measured(
                    gen, targets, args, lambda: sum(core.stats(leg).received for leg in leg_ids)
                )
            finally:
                ticking.cancel()
                gc.unfreeze()
            result["dropped"] = sum(relay.core.dropped.values())
        result["recorded_bytes"], result["recording_errors"] = await recordings.close(loop.time())
    return result


# --- the report --------------------------------------------------------------------------


def _line(
    loop: str, calls: int, direct: dict[str, Any], base: dict[str, Any], relay: dict[str, Any]
) -> Any:
    packets_per_s = 2 * calls / FRAME_S  # into the relay: both legs of every call

    def figures(run: dict[str, Any], prefix: str) -> dict[str, Any]:
        return {
            f"{prefix}cpu_per_call_ms_per_s": round(run["core_share"] * 1000 / calls, 4),
            f"{prefix}added_latency_p99_ms": round(run["p99_ms"] - direct["p99_ms"], 3),
            f"{prefix}lost_packets": run["lost"],
            f"{prefix}core_share": run["core_share"],
            f"{prefix}cpu_us_per_packet": run["cpu_us_per_packet"],
            # what the offered packets would take at that cost, had the CPU been there
            f"{prefix}cores_needed": round(run["cpu_us_per_packet"] * packets_per_s / 1e6, 3),
            f"{prefix}p50_ms": run["p50_ms"],
            f"{prefix}p99_ms": run["p99_ms"],
            f"{prefix}max_ms": run["max_ms"],
            f"{prefix}loop_lag_p99_ms": run["loop_lag_p99_ms"],
            f"{prefix}loop_lag_max_ms": run["loop_lag_max_ms"],
            f"{prefix}gc_pause_max_ms": run["gc_pause_max_ms"],
            f"{prefix}gc_collections": run["gc_collections"],
        }

    line: dict[str, Any] = {"calls": calls, "loop": loop}
    line |= figures(relay, "") | figures(base, "baseline_")
    line |= {
        "direct_p99_ms": direct["p99_ms"],
        "packets_sent": relay["sent"],
        "generator_late_p99_ms": max(run["late_p99_ms"] for run in (direct, base, relay)),
        "generator_late_max_ms": max(run["late_max_ms"] for run in (direct, base, relay)),
        "generator_kept_up": all(
            run["late_p99_ms"] <= FRAME_S * 1000 for run in (direct, base, relay)
        ),
        "recorded_bytes": relay["recorded_bytes"],
        "recording_errors": relay["recording_errors"],
        "relay_dropped": relay["dropped"],
        "relay_filled": relay["filled"],
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "cpu_pressure_pct": _cpu_pressure(),
    }
    if calls == GOAL_CALLS:
        line["goal_met"] = (
            line["lost_packets"] == 0
            and line["added_latency_p99_ms"] <= GOAL_P99_MS
            and line["core_share"] <= 1.0
            if line["generator_kept_up"]
            else None
        )
    return line


def _cpu_pressure() -> float | None:
    """Linux PSI: the share of the last 10 s in which some task waited for a CPU."""
    try:
        with open("/proc/pressure/cpu") as psi:
            some = psi.readline().split()
    except OSError:
        return None
    fields = dict(part.split("=", 1) for part in some[1:])
    return float(fields["avg10"]) if "avg10" in fields else None


def _row(name: str, calls: int, run: dict[str, Any], direct: dict[str, Any]) -> str:
    added = run["p99_ms"] - direct["p99_ms"]
    cpu = run["core_share"] * 1000 / calls
    return (
        f"{calls:>6} {name:<9} {run['sent']:>9} {run['lost']:>6} {run['p50_ms']:>8.3f}"
        f" {run['p99_ms']:>8.3f} {added:>9.3f} {run['core_share']:>6.2f} {cpu:>10.4f}"
        f" {run['cpu_us_per_packet']:>7.1f} {run['late_p99_ms']:>8.2f}"
    )


def _pin(pin: bool) -> tuple[int | None, str]:
    """This process on the first CPU and the generator's on the second (if there is one)."""
    cpus = sorted(os.sched_getaffinity(0))
    if not pin:
        return None, "not pinned (--pin: relay and generator on a CPU each)"
    if len(cpus) < 2:
        return None, f"not pinned ({len(cpus)} CPU)"
    os.sched_setaffinity(0, {cpus[0]})
    return cpus[1], f"relay on CPU {cpus[0]}, generator on CPU {cpus[1]}"


async def main(args: argparse.Namespace, loop: str = "asyncio") -> list[dict[str, Any]]:
    gen_cpu, pinning = _pin(args.pin)
    print(
        f"machine: {os.cpu_count()} CPUs, shared with other engineers' work (load average"
        f" {os.getloadavg()[0]:.2f}, CPU pressure {_cpu_pressure()}% at the start); {pinning};"
        f" {args.seconds:g} s measured after {args.warmup:g} s of warm-up per run;"
        f" this process on {loop}'s event loop"
    )
    print(
        f"{'calls':>6} {'run':<9} {'sent':>9} {'lost':>6} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'added p99':>9} {'cores':>6} {'ms/call/s':>10} {'us/pkt':>7} {'gen late':>8}"
    )
    gen = await _Generator.start(gen_cpu)
    lines = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-media-") as tmp:
            for calls in args.sizes:
                direct = await run_direct(gen, calls, args)
                base = await run_baseline(gen, calls, args)
                relay = await run_relay(gen, calls, args, Path(tmp) / str(calls))
                for name, run in (("direct", direct), ("baseline", base), ("relay", relay)):
                    print(_row(name, calls, run, direct), flush=True)
                lines.append(_line(loop, calls, direct, base, relay))
                if not lines[-1]["generator_kept_up"]:
                    print(f"{calls:>6} the generator fell behind: latency and loss are its own")
    finally:
        await gen.close()
    return lines


def run(args: argparse.Namespace) -> None:
    """The sizes on each loop of ``--loops``, in turn, on the interpreted core and (with
    ``--compiled``) then on the compiled one in a child; the JSON lines at the end."""
    lines = []
    cpus = os.sched_getaffinity(0)  # --pin narrows it: the compiled child pins itself
    if args.compiled_child:
        from telephony_adapters.media.compiled import is_compiled

        if not is_compiled():
            sys.exit("the media core is not the compiled one (the build did not load)")
    if args.interpreted or args.compiled_child:
        lines += _on_loops(args, "compiled" if args.compiled_child else "interpreted")
    if args.compiled:
        os.sched_setaffinity(0, cpus)
        lines += _compiled_child()
    for line in lines:
        print(json.dumps(line), flush=True)


def _on_loops(args: argparse.Namespace, core: str) -> list[dict[str, Any]]:
    lines = []
    for loop in args.loops:
        factory = None
        if loop == "uvloop":
            import uvloop

            factory = uvloop.new_event_loop
        print(f"media core: {core}")
        with asyncio.Runner(loop_factory=factory) as runner:
            lines += [{"core": core} | line for line in runner.run(main(args, loop))]
    return lines


def _compiled_child() -> list[dict[str, Any]]:
    """This run again in a child with the compiled media core first on its path: its
    table passed through, its JSON lines returned."""
    import subprocess

    from telephony_adapters.media.compiled import compiled_env, compiled_tree

    argv = [a for a in sys.argv[1:] if a not in ("--compiled", "--no-interpreted")]
    child = subprocess.Popen(
        [sys.executable, __file__, *argv, "--compiled-child"],
        env=compiled_env(compiled_tree()),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    lines = []
    for text in child.stdout:
        if text.startswith("{"):
            lines.append(json.loads(text))
        else:
            print(text, end="", flush=True)
    if child.wait() != 0:
        raise SystemExit(f"the compiled run failed (status {child.returncode})")
    return lines


def _loops(text: str) -> list[str]:
    loops = [part.strip() for part in text.split(",") if part.strip()]
    for loop in loops:
        if loop not in ("asyncio", "uvloop"):
            raise argparse.ArgumentTypeError(f"{loop!r}: the loops are asyncio and uvloop")
    return loops


def _default_loops() -> list[str]:
    """asyncio, then uvloop when it is installed (the engine runs on it then)."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return ["asyncio"]
    return ["asyncio", "uvloop"]


def _sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _ports(text: str) -> tuple[int, int]:
    low, high = (int(part) for part in text.split("-"))
    return low, high


def _free_range(size: int) -> tuple[int, int]:
    """A range starting near a port the kernel just gave out (a full run may hold the
    default range; the relay skips taken ports)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, 0))
        port = int(probe.getsockname()[1])
    start = min(port - port % 2, 65534 - size)
    return start, start + size


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", type=_sizes, default=[50, 200, 500], help="calls per run")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds not measured")
    parser.add_argument(
        "--grace", type=float, default=0.5, help="seconds a packet may take to count as received"
    )
    parser.add_argument(
        "--ports", type=_ports, default=(24000, 27999), help="the relay's RTP port range"
    )
    parser.add_argument(
        "--no-record", dest="record", action="store_false", help="the relay without recording"
    )
    parser.add_argument("--pin", action="store_true", help="relay on CPU 0, generator on CPU 1")
    parser.add_argument(
        "--no-gc-freeze", dest="gc_freeze", action="store_false",
        help="no gc.freeze() after the relay's set-up (cti serve freezes once it is up)",
    )  # fmt: skip
    parser.add_argument(
        "--loops", type=_loops, default=None,
        help="event loops of this process, in turn (default: asyncio, and uvloop if installed)",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="10 calls, 1 s: a smoke test")
    parser.add_argument(
        "--compiled", action="store_true",
        help="then the same runs with the media core compiled by mypyc (in a child process)",
    )  # fmt: skip
    parser.add_argument(
        "--no-interpreted", dest="interpreted", action="store_false",
        help="with --compiled: the compiled core only",
    )  # fmt: skip
    parser.add_argument("--compiled-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--generator", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--generator-cpu", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.loops is None:
        args.loops = _default_loops()[-1:] if args.quick else _default_loops()
    if args.quick:
        args.sizes, args.seconds, args.warmup, args.grace = [10], 1.0, 0.2, 10.0
        args.ports = _free_range(400)
    return args


if __name__ == "__main__":
    options = parse()
    if options.generator:
        if options.generator_cpu is not None:
            os.sched_setaffinity(0, {options.generator_cpu})
        with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
            generator_main()
    else:
        run(options)
