"""``cti simulate --compiled``: the router and event loop built by mypyc give the same days,
and the router's own tests (the property machines among them) pass on that build."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cti.app.cli import main
from simulators.compiled import PACKAGES, compiled_env, compiled_tree, source_root
from tests.simulators.test_report import TINY


def _report(capfd: pytest.CaptureFixture[str]) -> dict[str, object]:
    report = json.loads(capfd.readouterr().out)
    del report["wall_s"]
    return dict(report)


def test_compiled_run_reports_exactly_the_interpreted_days(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(TINY, encoding="utf-8")
    argv = ["simulate", str(scenario), "--json", "--replications", "2", "--seed", "11"]
    assert main(argv) == 0
    interpreted = _report(capfd)
    assert main([*argv, "--compiled"]) == 0
    compiled = _report(capfd)
    assert compiled == interpreted
    assert compiled["calls"]


def test_the_build_is_reused_while_the_sources_do_not_change() -> None:
    compiled_tree(quiet=True)  # built (or not) first: others may edit the shared tree
    first = compiled_tree(quiet=True)  # meanwhile, so the two calls compared are quick
    assert (first / ".built").exists()
    assert any(first.glob("queue_engine/router*.so"))
    assert compiled_tree(quiet=True) == first
    assert compiled_env(first)["PYTHONPATH"].split(":")[0] == str(first)


#: Run again on the compiled build: the router's tests and the reference day's figures.
ON_BOTH_BUILDS = ("tests/queue_engine", "tests/simulators/test_reference.py")

#: Imports the compiled packages first (the test modules then find them in sys.modules,
#: wherever pytest puts the repository on sys.path), refuses to go on if any module
#: of the build is plain Python, and runs pytest.
_RUN_ON_COMPILED = """
import sys
import pytest
import cti, queue_engine, simulators
from simulators.compiled import COMPILED, is_compiled
from importlib import import_module
names = [path.removesuffix(".py").replace("/", ".") for path in COMPILED]
plain = [n for n in names if not (import_module(n).__file__ or "").endswith(".so")]
if plain or not is_compiled():
    sys.exit(f"not compiled: {plain}")
sys.exit(pytest.main(sys.argv[1:]))
"""


def test_the_router_tests_pass_on_the_compiled_build(tmp_path: Path) -> None:
    tree = compiled_tree(quiet=True)
    repo = source_root()
    for entry in tree.iterdir():  # the packages and the build's shared library
        if entry.name in PACKAGES or entry.suffix == ".so":
            (tmp_path / entry.name).symlink_to(entry)
    (tmp_path / "tests").symlink_to(repo / "tests")
    shutil.copy(repo / "pyproject.toml", tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", _RUN_ON_COMPILED, "-q", "-p", "no:cacheprovider", *ON_BOTH_BUILDS],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-30:])
    assert done.returncode == 0, tail
