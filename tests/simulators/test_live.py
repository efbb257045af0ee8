"""Live mode: a scenario's traffic through the running engine, in real time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cti.app.cli import main

pytestmark = pytest.mark.integration

FAST = """
name = "fast"
hours = 1.0
seed = 3
[[queues]]
name = "general"
wrap_up_s = 0.0
[[traffic]]
queue = "general"
rate_per_hour = 3600.0
handle = { kind = "exponential", mean_s = 1.0 }
patience = { kind = "exponential", mean_s = 4.0 }
values = [{ share = 0.5, low = 90, high = 100, label = "vip" }, { share = 0.5, label = "rest" }]
[[agents]]
name = "a"
count = 2
queues = { general = 0 }
"""


def test_live_run_routes_real_calls_through_the_engine_and_reports_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "fast.toml"
    scenario.write_text(FAST, encoding="utf-8")
    code = main(["simulate", str(scenario), "--live", "--minutes", "0.2", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["replications"] == 1
    assert report["calls"] >= 3  # about 12 expected in 12 s at 3,600/h
    assert report["calls"] == report["answered"] + report["abandoned"]
    assert report["answered"] >= 1
    assert set(report["segments"]) <= {"vip", "rest"}
    assert report["occupancy"]["mean"] is not None
    assert 0 < report["occupancy"]["mean"] <= 1
