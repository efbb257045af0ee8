"""The media core compiled by mypyc (``telephony_adapters.media.compiled``) is the same
core: the same packets in give the same packets, reports and recording bytes out, and
the media core's own tests pass on that build."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

from telephony_adapters.media import g711
from telephony_adapters.media.bridge import (
    DtmfHeard,
    LegSilent,
    MediaCore,
    Out,
    PlayFinished,
    RecordFrame,
    SendPacket,
)
from telephony_adapters.media.compiled import (
    CHILD_MARK,
    PACKAGES,
    compiled_env,
    compiled_tree,
    is_compiled,
)
from telephony_adapters.media.recorder import Encoding, Recorder

ROOT = Path(__file__).resolve().parents[3]
_HEADER = struct.Struct("!BBHII")
LEGS = {"a": 0, "b": 0, "c": 8, "d": 0, "e": 8, "f": 0}
"""Leg -> payload type: a-b relayed (PCMU both), c-d transcoded, d-e-f... a conference."""


class _Tone:
    """A one-shot source: a few frames of a ramp, then over."""

    def __init__(self, frames: int) -> None:
        self.left = frames

    def next_frame(self, now: float) -> bytes | None:
        if self.left == 0:
            return None
        self.left -= 1
        return g711.to_bytes_list([(i * 97 + self.left * 13) % 4000 - 2000 for i in range(150)])


def _packet(rng: random.Random, leg: str, seq: int, kind: int | None = None) -> bytes:
    kind = LEGS[leg] if kind is None else kind
    marker = 0x80 if seq % 50 == 0 else 0
    payload = bytes(rng.getrandbits(8) for _ in range(160 if kind != 101 else 4))
    return _HEADER.pack(0x80, marker | kind, seq & 0xFFFF, seq * 160, 0x100 + ord(leg)) + payload


def _out(out: Out) -> list[Any]:
    """An output as plain data (the same on both builds)."""
    if isinstance(out, SendPacket):
        return ["send", out.leg_id, out.data.hex(), list(out.addr)]
    if isinstance(out, RecordFrame):
        return ["record", out.tap, out.side, round(out.at, 9), out.payload.hex(),
                out.payload_type, out.samples.hex()]  # fmt: skip
    if isinstance(out, DtmfHeard):
        return ["dtmf", out.leg_id, out.key, out.duration_ms]
    if isinstance(out, LegSilent):
        return ["silent", out.leg_id, out.last_heard]
    assert isinstance(out, PlayFinished)
    return ["finished", out.leg_id]


def scenario() -> dict[str, Any]:
    """Two seconds of a relay, a transcoded pair, a conference with a prompt, recording,
    DTMF, mute, loss, reordering, duplicates and garbage, on virtual time: every output
    and figure, with the recordings' bytes."""
    rng = random.Random(19)
    core = MediaCore(rng=random.Random(7))
    for n, (leg, pt) in enumerate(LEGS.items()):
        remote = ("10.0.0.1", 4000 + 2 * n)
        core.add_leg(leg, payload_type=pt, telephone_event=101, remote=remote, now=0.0)
    core.set_timeout("b", 0.5, 0.0)
    core.connect("a", "b")
    core.connect("c", "d")
    core.play("e", _Tone(8))
    # each recording twice: from the frames' codes (as the SIP line records) and samples
    recorders = {"ab": Recorder(0.0), "cd": Recorder(0.0, Encoding.MULAW)}
    recorders |= {f"{tap}-linear": Recorder(0.0, r.encoding) for tap, r in recorders.items()}
    for leg, tap, side in (("a", "ab", "caller"), ("b", "ab", "agent"), ("c", "cd", "caller")):
        core.tap(leg, tap, side)  # type: ignore[arg-type]
    core.tap("d", "cd", "agent")
    log: list[Any] = []
    wav = {tap: bytearray() for tap in recorders}
    sent: list[Any] = []

    def send(leg_id: str, data: bytes, addr: tuple[str, int]) -> None:
        sent.append([leg_id, data.hex(), list(addr)])

    def take(outs: list[Out]) -> None:
        for out in outs:
            log.append(_out(out))
            if isinstance(out, RecordFrame):
                codes, linear = recorders[out.tap], recorders[f"{out.tap}-linear"]
                wav[out.tap] += codes.add_g711(out.side, out.payload, out.payload_type, out.at)
                wav[f"{out.tap}-linear"] += linear.add(out.side, out.samples, out.at)

    for step in range(100):
        now = step * 0.02
        if step == 30:
            core.mix(["d", "e", "f"])  # c now hears nothing; d, e, f a conference
        if step == 60:
            core.mute("f", True)
        for leg in LEGS:
            if leg == "b" and 40 <= step < 80:
                continue  # b goes quiet: reported silent once
            seq = step if rng.random() > 0.05 else step + 1  # a loss, then a duplicate
            at = now + rng.random() * 0.004
            data = _packet(rng, leg, seq)
            if step % 7 == 0 and leg == "a":
                take(core.receive(leg, _packet(rng, leg, seq, 101), at))  # an event
            if step % 2:
                outs: list[Out] = []
                core.receive_into(leg, data, at, outs, send)
                take(outs)
            else:
                take(core.receive(leg, data, at))
        take(core.receive("c", b"\x00garbage", now))
        take(core.receive("x", b"", now))
        take(core.tick(now + 0.01))
    for tap, recorder in recorders.items():
        summary = recorder.close(2.0)
        wav[tap] += summary.tail
        wav[tap][: len(summary.header)] = summary.header
    stats = {}
    for leg in LEGS:
        s = core.stats(leg)
        stats[leg] = [s.received, s.expected, s.lost, s.duplicates, s.late, s.jitter_ms]
    return {
        "outputs": log,
        "sent": sent,
        "dropped": sorted(core.dropped.items()),
        "stats": stats,
        "wav": {tap: hashlib.sha256(data).hexdigest() for tap, data in wav.items()},
        "wav_bytes": {tap: len(data) for tap, data in wav.items()},
    }


#: Runs :func:`scenario` in a child whose ``sys.path`` starts with the compiled tree,
#: refusing to go on if the media core there is plain Python.
_CHILD = """
import json, sys
from telephony_adapters.media.compiled import is_compiled
if not is_compiled():
    sys.exit("the media core is not the compiled one")
from tests.telephony_adapters.media.test_compiled_media import scenario
print(json.dumps(scenario()))
"""


def _child_env(tree: Path) -> dict[str, str]:
    env = compiled_env(tree)
    env["PYTHONPATH"] += f":{ROOT}"  # the tests package, after the build
    return env


def test_the_compiled_core_sends_and_records_exactly_what_the_interpreted_one_does(
    tmp_path: Path,
) -> None:
    assert not is_compiled()
    interpreted = json.loads(json.dumps(scenario()))
    kinds = {entry[0] for entry in interpreted["outputs"]}
    assert {"send", "record", "dtmf", "silent", "finished"} <= kinds
    assert interpreted["sent"]
    assert dict(interpreted["dropped"])["not_rtp"] == 100
    for tap in ("ab", "cd"):  # the recording from codes is the one from samples
        assert interpreted["wav"][tap] == interpreted["wav"][f"{tap}-linear"], tap
    tree = compiled_tree(quiet=True)
    done = subprocess.run(
        [sys.executable, "-c", _CHILD],
        cwd=tmp_path,
        env=_child_env(tree),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    compiled = json.loads(done.stdout)
    for key in interpreted:
        assert compiled[key] == interpreted[key], key


#: Run again on the compiled build: the media core's own tests.
ON_BOTH_BUILDS = tuple(
    f"tests/telephony_adapters/media/test_{name}.py"
    for name in ("bridge", "stream", "g711", "recorder", "wiring", "relay")
)
_RUN_ON_COMPILED = """
import sys
import pytest
import cti, telephony_adapters
from importlib import import_module
from telephony_adapters.media.compiled import COMPILED, is_compiled
names = [path.removesuffix(".py").replace("/", ".") for path in COMPILED]
plain = [n for n in names if not (import_module(n).__file__ or "").endswith(".so")]
if plain or not is_compiled():
    sys.exit(f"not compiled: {plain}")
sys.exit(pytest.main(sys.argv[1:]))
"""


def test_the_media_core_tests_pass_on_the_compiled_build(tmp_path: Path) -> None:
    tree = compiled_tree(quiet=True)
    for entry in tree.iterdir():  # the packages and the build's shared library
        if entry.name in PACKAGES or entry.suffix == ".so":
            (tmp_path / entry.name).symlink_to(entry)
    (tmp_path / "tests").symlink_to(ROOT / "tests")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", _RUN_ON_COMPILED, "-q", "-p", "no:cacheprovider", *ON_BOTH_BUILDS],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-30:])
    assert done.returncode == 0, tail


_RUN_COMPILED = """
from telephony_adapters.media.compiled import run_compiled
print("before", flush=True)
run_compiled(["--check"], module="telephony_adapters.media.compiled")
print("not replaced")
"""


def test_run_compiled_replaces_the_process_by_one_on_the_compiled_core(tmp_path: Path) -> None:
    compiled_tree(quiet=True)  # built here, not in the child (no message to read past)
    done = subprocess.run(
        [sys.executable, "-c", _RUN_COMPILED], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["before", "compiled"]


def test_serve_compiled_media_refuses_a_build_that_does_not_load(tmp_path: Path) -> None:
    """The re-run process finds plain Python (here: a mark without a build): it stops
    with the reason, instead of re-running itself for ever or running uncompiled."""
    env = {**os.environ, CHILD_MARK: str(tmp_path / "no-build")}
    done = subprocess.run(
        [sys.executable, "-m", "cti.app.cli", "serve", "--compiled-media"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert f"did not load from {tmp_path / 'no-build'}" in done.stderr
