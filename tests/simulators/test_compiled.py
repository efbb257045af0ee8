"""``cti simulate --compiled``: the router and event loop built by mypyc give the same days."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cti.app.cli import main
from simulators.compiled import compiled_env, compiled_tree
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
    first = compiled_tree(quiet=True)
    assert (first / ".built").exists()
    assert any(first.glob("queue_engine/router*.so"))
    assert compiled_tree(quiet=True) == first
    assert compiled_env(first)["PYTHONPATH"].split(":")[0] == str(first)
