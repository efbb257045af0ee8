"""Run a script on the engine's compiled build (``cti serve --compiled``) and compare its
output line by line with what the interpreted code printed: the way the tests show the
two builds behave the same."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cti import compiled_build


def assert_same_on_engine_build(
    script: str, interpreted: list[str], cwd: Path, *args: str, what: str = "line"
) -> None:
    """``script`` runs with the build first on the path (the tests package after it)
    and must print exactly ``interpreted``; a difference names the first line that
    differs."""
    tree = compiled_build.compiled_tree(compiled_build.ENGINE, quiet=True)
    env = compiled_build.compiled_env(tree)
    env["PYTHONPATH"] += f"{os.pathsep}{compiled_build.source_root()}"
    done = subprocess.run(
        [sys.executable, "-P", "-c", script, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    compiled = done.stdout.splitlines()
    assert len(compiled) == len(interpreted)
    for i, (mine, theirs) in enumerate(zip(compiled, interpreted, strict=True)):
        assert mine == theirs, f"{what} {i}"
