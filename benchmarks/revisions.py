"""What the benchmarks that compare revisions share: a revision's packages unpacked
for ``PYTHONPATH``, and the instruction totals of a callgrind run's dumps."""

from __future__ import annotations

import subprocess
from pathlib import Path

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
