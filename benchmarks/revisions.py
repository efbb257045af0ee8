"""What the benchmarks that compare revisions share: a revision's packages unpacked
for ``PYTHONPATH``, a worker process run under callgrind (its parts dumped at each
``os.getppid()``) and the instruction totals of its dumps."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def packages_at(rev: str, packages: tuple[str, ...], into: Path) -> Path:
    """``packages`` (top-level directories) of git revision ``rev`` under ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, *packages], check=True, capture_output=True
    ).stdout
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def callgrind_totals(out: Path) -> list[int]:
    """Instructions of each dumped part, in order (``out.1``, ``out.2``, ...)."""
    parts = sorted(out.parent.glob(out.name + ".*"), key=lambda p: int(p.suffix[1:]))
    counts = []
    for part in parts:
        for line in part.read_text().splitlines():
            if line.startswith("totals:"):
                counts.append(int(line.split()[1]))
                break
    return counts


def run_worker(
    command: list[str], env: dict[str, str], *, callgrind: bool, name: str = "the worker"
) -> tuple[dict[str, Any], list[int]]:
    """Run ``command`` (under callgrind when ``callgrind``, a part dumped at each of its
    ``os.getppid()`` calls): the JSON of its last line of output, and the instructions
    of each part (none without callgrind)."""
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp:
        out = Path(tmp) / "cg.out"
        if callgrind:
            command = [
                "valgrind", "--tool=callgrind", "--dump-before=getppid",
                f"--callgrind-out-file={out}", *command,
            ]  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{name} failed:\n{done.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
        return result, callgrind_totals(out) if callgrind else []
