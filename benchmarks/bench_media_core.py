"""Instructions per packet of the media relay on a fixed workload (callgrind), beside a
bare forwarder and, with ``--against REV``, the relay of another git revision, in one run.

Wall-clock and CPU-time figures move by tens of percent on a shared machine (see
``bench_media.py``); an instruction count does not. The workload is fixed and runs on
virtual time: ``--calls`` bridged calls (two PCMU legs each, connected, a recording tap
on each feeding a :class:`~telephony_adapters.media.recorder.Recorder` per call, whose
bytes go to a buffer as ``RecordingFiles.write`` does), ``--frames`` 20 ms packets per
leg, the legs' phases spread over the 20 ms. Each datagram is handed to the leg's
protocol (``datagram_received``, as the event loop does after ``recvfrom``); what the
relay sends goes through its real asyncio UDP transports to a socket nobody reads. The
core's tick runs on its 20 ms grid and every recording is ticked each 100 ms, as the SIP
voice does. The baseline is bench_media's bare forwarder (``datagram_received`` ->
the peer's ``transport.sendto``) on the same packets.

Under ``valgrind --tool=callgrind --dump-before=getppid`` the worker calls
``os.getppid()`` around each measured section, so each count is the section's alone (no
interpreter start-up, imports or set-up). The kernel's side of ``sendto`` is not
counted, its user-space path is; the event loop's ``recvfrom`` path is not exercised.
``--against REV`` runs the same worker with the ``telephony_adapters`` package of REV
(``git archive`` into a temporary directory, first on ``PYTHONPATH``). ``--compiled``
adds a row for the media core compiled by mypyc (:mod:`telephony_adapters.media.compiled`:
built into the cache on first use, its tree first on ``PYTHONPATH``; the worker refuses
to run on plain Python there).

    .venv/bin/python benchmarks/bench_media_core.py [--calls 100] [--frames 50] [--against HEAD]
        [--compiled]

About 1-2 min per tree under valgrind; ``--no-valgrind`` times the same sections with
``time.process_time`` instead (seconds, noisy). Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from revisions import ROOT, packages_at, run_worker

HOST = "127.0.0.1"
Addr = tuple[str, int]
FRAME_S = 0.02
SLOTS = 20
RECORDING_TICK_S = 0.1
PCMU = 0
_PAYLOAD = bytes(range(0, 256, 2))[:80] * 2  # 160 varied mu-law codes


def _packets(calls: int, frames: int, t0: float) -> list[tuple[float, int, bytes]]:
    """(time, leg, datagram) in time order: leg ``j`` sends in slot ``j % 20``."""
    import struct

    header = struct.Struct("!BBHII")
    out = []
    for k in range(frames):
        for slot in range(SLOTS):
            at = t0 + k * FRAME_S + slot * FRAME_S / SLOTS
            for leg in range(slot, 2 * calls, SLOTS):
                data = header.pack(0x80, PCMU, k & 0xFFFF, k * 160, 0x10000 + leg) + _PAYLOAD
                out.append((at, leg, data))
    return out


class _Clock:
    """Stands for the loop in ``MediaRelay._received`` (only ``time()`` is asked)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


def _mark() -> float:
    os.getppid()  # callgrind dumps its counts here (--dump-before=getppid)
    return time.process_time()


async def _forwarder(packets: list[tuple[float, int, bytes]], sink: tuple[str, int]) -> float:
    """CPU seconds of the forwarder on ``packets``."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_media import _Forward

    loop = asyncio.get_running_loop()
    legs: list[_Forward] = []
    for _ in range(max(leg for _, leg, _ in packets) + 1):
        _, proto = await loop.create_datagram_endpoint(_Forward, local_addr=(HOST, 0))
        proto.phone = sink
        legs.append(proto)
    for leg, proto in enumerate(legs):
        proto.peer = legs[leg ^ 1]
    cpu = _mark()
    for _, leg, data in packets:
        legs[leg].datagram_received(data, sink)
    cpu = _mark() - cpu
    for proto in legs:
        if proto.transport is not None:
            proto.transport.close()
    return cpu


class _Recordings:
    """The SIP voice's recording hooks: a Recorder per call fed what each leg says (a
    tap per leg, the leg as the recorder's source, where the tree has them), its bytes
    to a buffer, and every recording ticked each 100 ms. ``emit`` False: frames are
    only taken (``Recorder.add(emit=False)``) and the ticks write them."""

    def __init__(self, emit: bool) -> None:
        from telephony_adapters.media.recorder import Recorder

        self.recorder = Recorder
        self.calls: dict[str, tuple[Any, bytearray]] = {}
        params = inspect.signature(Recorder.add).parameters
        self.per_leg = "source" in params  # the engine's since 0bb613f
        self.frame: Callable[[Any], None] = self._legs if self.per_leg else self._calls
        self.codes = hasattr(Recorder, "add_g711")
        if not emit:
            self.frame = self._taken

    def open(self, call_id: str, now: float) -> None:
        self.calls[call_id] = (self.recorder(now), bytearray())

    def tap(self, call_id: str, leg_id: str) -> str:
        return f"{call_id}|{leg_id}" if self.per_leg else call_id

    def _calls(self, out: Any) -> None:
        recorder, sink = self.calls[out.tap]
        sink += recorder.add(out.side, out.samples, out.at)

    def _legs(self, out: Any) -> None:
        call_id, _, leg_id = out.tap.partition("|")
        recorder, sink = self.calls[call_id]
        sink += recorder.add(out.side, out.samples, out.at, leg_id)

    def _taken(self, out: Any) -> None:
        call_id, _, leg_id = out.tap.partition("|")
        recorder = self.calls[call_id][0]
        if self.codes:  # the frame's G.711 codes, as the SIP voice records since they exist
            recorder.add_g711(out.side, out.payload, out.payload_type, out.at, leg_id, emit=False)
        else:
            recorder.add(out.side, out.samples, out.at, leg_id, emit=False)

    def tick(self, now: float) -> None:
        for recorder, sink in self.calls.values():
            sink += recorder.tick(now)

    def written(self, end: float) -> int:
        """Bytes of every recording, closed at ``end``."""
        for recorder, sink in self.calls.values():
            sink += recorder.close(end).tail
        return sum(len(sink) for _, sink in self.calls.values())


async def _relay(
    packets: list[tuple[float, int, bytes]],
    sink: tuple[str, int],
    calls: int,
    t0: float,
    recording: _Recordings | None,
) -> tuple[float, int, int]:
    """CPU seconds of the relay on ``packets``, packets it sent, bytes recorded."""
    from telephony_adapters.media.relay import MediaRelay, RelayHooks

    hooks = RelayHooks(on_record=recording.frame if recording else None)
    relay = MediaRelay(HOST, 30000, 39999, hooks=hooks)
    clock = _Clock(t0)
    relay._loop = cast(asyncio.AbstractEventLoop, clock)
    protocols = []
    for call in range(calls):
        a, b = f"{call}a", f"{call}b"
        for leg_id in (a, b):
            await relay.open_leg(
                leg_id, payload_type=PCMU, telephone_event=101, remote=sink, timeout_s=30.0
            )
            protocols.append(relay._sockets[leg_id])
        relay.connect(a, b)
        if recording is None:
            continue
        recording.open(f"call-{call}", t0)
        relay.tap(a, recording.tap(f"call-{call}", a), "caller")
        relay.tap(b, recording.tap(f"call-{call}", b), "agent")
    tick = _ticker(relay)
    next_recording = t0 + RECORDING_TICK_S
    cpu = _mark()
    for at, leg, data in packets:
        clock.now = at
        tick(at)
        if recording is not None and at >= next_recording:
            recording.tick(at)
            next_recording += RECORDING_TICK_S
        protocols[leg].datagram_received(data, sink)
    cpu = _mark() - cpu
    sent = sum(relay.core.sent(leg_id) for leg_id in list(relay._ports))
    await relay.close()
    return cpu, sent, recording.written(packets[-1][0] + FRAME_S) if recording else 0


def _ticker(relay: Any) -> Callable[[float], None]:
    """The relay's tick task at ``now``: it sleeps until the core's next deadline, then
    ticks and asks for the next one."""
    core = relay.core
    run = getattr(relay, "_tick", None) or (lambda now: relay._dispatch(core.tick(now)))
    due: list[float | None] = [core.next_deadline()]

    def tick(now: float) -> None:
        deadline = due[0]
        if deadline is not None and deadline <= now:
            run(now)
            due[0] = core.next_deadline()

    return tick


async def _through_loop(packets: list[tuple[float, int, bytes]], sink: tuple[str, int]) -> float:
    """CPU seconds of the forwarder with its datagrams read by the running event loop:
    each 1 ms slot's packets are sent to their legs' ports at once (loopback delivers
    them at ``sendto``), then the loop runs until it has read them (one pass: each of
    those sockets is ready), as the generator of bench_media spreads the legs over the
    20 ms. What the loop costs beyond :func:`_forwarder`, asyncio's or uvloop's."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_media import _Forward

    loop = asyncio.get_running_loop()
    legs: list[_Forward] = []
    for _ in range(max(leg for _, leg, _ in packets) + 1):
        _, proto = await loop.create_datagram_endpoint(_Forward, local_addr=(HOST, 0))
        proto.phone = sink
        legs.append(proto)
    for leg, proto in enumerate(legs):
        proto.peer = legs[leg ^ 1]
    ports = [cast(Addr, p.transport.get_extra_info("sockname")) for p in legs if p.transport]
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    expected = _Forward.received
    cpu = _mark()
    slot_at = None
    for at, leg, data in packets:
        if at != slot_at:  # the slot before is sent: the loop reads it
            while _Forward.received < expected:  # noqa: ASYNC110 - a bare loop pass is measured
                await asyncio.sleep(0)
            slot_at = at
        sender.sendto(data, ports[leg])
        expected += 1
    while _Forward.received < expected:  # noqa: ASYNC110 - a bare loop pass is measured
        await asyncio.sleep(0)
    cpu = _mark() - cpu
    sender.close()
    for proto in legs:
        if proto.transport is not None:
            proto.transport.close()
    return cpu


def _loops() -> list[tuple[str, Callable[[], asyncio.AbstractEventLoop]]]:
    loops: list[tuple[str, Callable[[], asyncio.AbstractEventLoop]]] = [
        ("asyncio", asyncio.new_event_loop)
    ]
    try:
        import uvloop
    except ImportError:
        return loops
    return [*loops, ("uvloop", uvloop.new_event_loop)]


async def _sections(calls: int, frames: int, record: bool, result: dict[str, Any]) -> None:
    import telephony_adapters

    sink_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink_sock.bind((HOST, 0))  # never read: the kernel drops what overflows
    sink = cast(Addr, sink_sock.getsockname())
    t0 = asyncio.get_running_loop().time()
    packets = _packets(calls, frames, t0)
    result["package"] = str(Path(telephony_adapters.__file__).parent)
    result["forwarder_packets"] = result["relay_packets"] = len(packets)
    result["forwarder_cpu_s"] = await _forwarder(packets, sink)
    cpu, sent, written = await _relay(
        packets, sink, calls, t0, _Recordings(emit=True) if record else None
    )
    result["relay_cpu_s"] = cpu
    result |= {"relay_sent": sent, "recorded_bytes": written}
    recordings = _Recordings(emit=False)
    if (
        record
        and recordings.per_leg
        and "emit" in inspect.signature(recordings.recorder.add).parameters
    ):
        t0 = asyncio.get_running_loop().time()
        packets = _packets(calls, frames, t0)
        cpu, _, written = await _relay(packets, sink, calls, t0, recordings)
        result |= {"relay_ticked_cpu_s": cpu, "relay_ticked_packets": len(packets)}
        result["relay_ticked_recorded_bytes"] = written
        result["sections"].append("relay_ticked")
    sink_sock.close()


def worker(calls: int, frames: int, record: bool) -> dict[str, Any]:
    """The sections in order, each between two marks: the forwarder and the relay on
    asyncio, then the forwarder through each event loop."""
    result: dict[str, Any] = {"sections": ["forwarder", "relay"]}
    asyncio.run(_sections(calls, frames, record, result))
    for name, factory in _loops():
        with (
            asyncio.Runner(loop_factory=factory) as runner,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink,
        ):
            sink.bind((HOST, 0))
            packets = _packets(calls, frames, 0.0)
            section = f"loop_{name}"
            result[f"{section}_cpu_s"] = runner.run(
                _through_loop(packets, cast(Addr, sink.getsockname()))
            )
            result[f"{section}_packets"] = len(packets)
            result["sections"].append(section)
    return result


# --- the parent: one worker per tree, under callgrind ------------------------------------


def measure(
    name: str, pythonpath: Path | None, args: argparse.Namespace, *, compiled: bool = False
) -> dict[str, Any]:
    env = dict(os.environ, PYTHONHASHSEED="0")  # the same dict and set layouts each run
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), str(ROOT)])
    command = [sys.executable, __file__, "--worker", f"--calls={args.calls}"]
    command.append(f"--frames={args.frames}")
    if compiled:
        command.append("--expect-compiled")
    if not args.record:
        command.append("--no-record")
    result, counts = run_worker(command, env, callgrind=args.valgrind, name=f"{name}: the worker")
    if args.valgrind:
        sections = result["sections"]
        if len(counts) != 2 * len(sections):
            raise RuntimeError(f"{name}: {len(counts)} callgrind parts for {sections}")
        for section, count in zip(sections, counts[1::2], strict=True):
            result[f"{section}_instructions"] = count
    for section in result["sections"]:
        packets = result[f"{section}_packets"]
        if args.valgrind:
            result[f"{section}_instructions_per_packet"] = round(
                result[f"{section}_instructions"] / packets
            )
        result[f"{section}_cpu_us_per_packet"] = round(
            result[f"{section}_cpu_s"] * 1e6 / packets, 2
        )
    return {"tree": name} | result


def main(args: argparse.Namespace) -> None:
    if args.valgrind and shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind), or --no-valgrind")
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-media-tree-") as tmp:
        for rev in args.against:
            runs.append(
                measure(
                    rev,
                    packages_at(rev, ("telephony_adapters",), Path(tmp) / rev.replace("/", "_")),
                    args,
                )
            )
        runs.append(measure("working tree", None, args))
        if args.compiled:
            from telephony_adapters.media.compiled import compiled_tree

            runs.append(measure("compiled", compiled_tree(), args, compiled=True))
    unit = "instructions" if args.valgrind else "cpu_us"
    key = "instructions_per_packet" if args.valgrind else "cpu_us_per_packet"
    recording = "recording on" if args.record else "no recording"
    print(f"{args.calls} calls x {args.frames} frames per leg, {recording}; {unit} per packet")
    print("  relay: as the engine records (Recorder.add ticks each frame; every recording")
    print("  ticked each 100 ms); ticked: add(emit=False), the 100 ms ticks write")
    print(
        f"{'tree':<24} {'relay':>10} {'ticked':>10} {'forwarder':>10} {'sent':>8}"
        "   forwarder through the loop: asyncio, uvloop"
    )
    line: dict[str, Any] = {"calls": args.calls, "frames": args.frames, "record": args.record}
    line["unit"] = key
    for run in runs:
        relay, fwd = run[f"relay_{key}"], run[f"forwarder_{key}"]
        ticked = run.get(f"relay_ticked_{key}")
        loops = [run.get(f"loop_{name}_{key}") for name in ("asyncio", "uvloop")]
        print(
            f"{run['tree']:<24} {relay:>10} {ticked or '-':>10} {fwd:>10} {run['relay_sent']:>8}"
            f"   {loops[0]}, {loops[1]}"
        )
        line[run["tree"]] = {
            "relay": relay, "relay_ticked": ticked, "forwarder": fwd,
            "loop_asyncio": loops[0], "loop_uvloop": loops[1],
            "relay_sent": run["relay_sent"], "recorded_bytes": run["recorded_bytes"],
            "relay_ticked_recorded_bytes": run.get("relay_ticked_recorded_bytes"),
        }  # fmt: skip
    print(json.dumps(line))


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--frames", type=int, default=50, help="20 ms packets per leg")
    parser.add_argument(
        "--against", action="append", default=[], help="a git revision to compare (repeatable)"
    )
    parser.add_argument("--no-valgrind", dest="valgrind", action="store_false")
    parser.add_argument(
        "--no-record", dest="record", action="store_false", help="the relay without recording"
    )
    parser.add_argument(
        "--compiled", action="store_true", help="add the media core compiled by mypyc"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--expect-compiled", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    options = parse()
    if options.worker:
        if options.expect_compiled:
            from telephony_adapters.media.compiled import is_compiled

            if not is_compiled():
                sys.exit("worker: the media core is not the compiled one")
        print(json.dumps(worker(options.calls, options.frames, options.record)))
    else:
        main(options)
