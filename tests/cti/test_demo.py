"""The headless demo: the whole product on virtual time, summarised as JSON."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from cti.app.cli import main
from cti.app.demo import running_demo
from cti.config import load_config


def headless(db: Path, *args: str) -> dict[str, Any]:
    """Run ``cti demo --headless --json`` and return the summary it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["demo", "--headless", "--json", "--db", str(db), *args])
    assert code == 0
    summary: dict[str, Any] = json.loads(out.getvalue())
    return summary


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One loaded 8-hour day (10 bots, 190 calls/h: about 95% occupancy)."""
    db = tmp_path_factory.mktemp("day") / "cti.db"
    return headless(db, "--seconds", "28800", "--rate", "190", "--seed", "11")


def test_summary_has_every_field_and_adds_up(day: dict[str, Any]) -> None:
    for key in (
        "offered",
        "answered",
        "abandoned",
        "service_level",
        "asa_s",
        "max_wait_s",
        "starvation_bound_s",
        "segments",
    ):
        assert key in day
    assert day["offered"] == day["answered"] + day["abandoned"]
    assert 190 * 8 * 0.85 < day["offered"] < 190 * 8 * 1.15
    assert 0.0 < day["service_level"] < 1.0
    assert set(day["segments"]) == {"platinum", "gold", "silver", "bronze", "basic"}
    assert sorted(s["value_rank"] for s in day["segments"].values()) == [1, 2, 3, 4, 5]
    assert sum(s["offered"] for s in day["segments"].values()) == day["offered"]
    kinds = day["caller_kinds"]
    assert kinds["unknown"] > 0
    assert kinds["private"] > 0
    assert kinds["malformed"] > 0


def test_under_load_high_value_callers_wait_less(day: dict[str, Any]) -> None:
    seg = {s["value_rank"]: s for s in day["segments"].values()}
    assert seg[1]["asa_s"] < seg[3]["asa_s"] < seg[5]["asa_s"]
    assert day["abandoned"] > 0  # the day really was under load


def test_nobody_is_passed_over_beyond_the_starvation_bound(day: dict[str, Any]) -> None:
    assert day["starvation_bound_s"] == 100.0  # 100 x value_weight 1 / aging_rate 1
    assert day["passed_over_beyond_bound"] == 0
    # The bound bites: the longest wait of the least valuable is within reach of it.
    assert day["segments"]["basic"]["max_wait_s"] > 0


def test_same_seed_same_day(tmp_path: Path) -> None:
    args = ("--seconds", "3600", "--seed", "5", "--agents", "4", "--rate", "60")
    a = headless(tmp_path / "a.db", *args)
    b = headless(tmp_path / "b.db", *args)
    a.pop("wall_s"), b.pop("wall_s")
    assert a == b
    assert a["agents"] == 4
    assert a["rate_per_hour"] == 60
    assert a["offered"] > 0


def test_bad_config_is_reported_not_raised(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[demo]\nbots = -1\n", encoding="utf-8")
    code = main(["demo", "--headless", "--config", str(bad), "--db", str(tmp_path / "c.db")])
    assert code == 2
    assert "demo.bots" in capsys.readouterr().err


def test_realtime_mode_runs_the_same_engine_on_the_wall_clock(tmp_path: Path) -> None:
    # Two wall-clock seconds at 7,200 calls/h, with quick bots: a few calls, really routed.
    fast = tmp_path / "fast.toml"
    fast.write_text(
        "[demo]\nmean_handle_s = 0.2\nbot_answer_delay_s = 0.05\nbot_wrap_up_s = 0.05\n",
        encoding="utf-8",
    )
    summary = headless(
        tmp_path / "rt.db",
        *("--config", str(fast), "--realtime", "--seconds", "2", "--rate", "7200", "--seed", "3"),
    )
    assert summary["offered"] >= 1
    assert summary["offered"] == summary["answered"] + summary["abandoned"]


async def test_the_demos_person_may_search_customers_and_its_bots_may_not(
    tmp_path: Path,
) -> None:
    # A plain agent reads only their calls' customers (docs/customers.md); the person trying the
    # demo plays the whole center, so `f` (find a customer) must work for them.
    config = load_config(None)
    config = config.model_copy(
        update={"demo": config.demo.model_copy(update={"customers": 10, "bots": 1})}
    )
    assert not config.access.may_search("1001")
    async with running_demo(config, tmp_path / "demo.db", bots=1, human="1001") as center:
        assert center.service.config.access.may_search("1001")
        assert not center.service.config.access.may_search("1002")
