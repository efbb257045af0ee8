"""``cti simulate``, simulators.report and simulators.estimates: t quantiles, CI math,
what a day counts, the JSON shape, the chart, and the command end to end on a tiny
scenario."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import pytest

from cti.app.cli import main
from cti.errors import SimulationError
from cti.models import CallDetailRecord, CallerKind, Segment
from queue_engine.stats import AgentTime
from simulators.des import DayResult, Sample
from simulators.estimates import Z975, Estimate, estimate, t_quantile_975
from simulators.report import (
    aggregate,
    format_text,
    measure_day,
    replication_seed,
    simulate,
    to_json,
)
from simulators.scenario import Scenario

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
METRICS = ("service_level", "service_level_of_answered", "asa_s", "abandon_rate", "occupancy")

TINY = """
name = "tiny"
start = "09:00"
hours = 1.0
warm_up_minutes = 10
seed = 5
replications = 3

[[queues]]
name = "sales"
sl_target_s = 20.0
short_abandon_s = 5.0

[[queues]]
name = "support"
sl_target_s = 30.0
short_abandon_s = 0.0

[[traffic]]
queue = "sales"
rate_per_hour = 60.0
handle = { kind = "exponential", mean_s = 120.0 }
patience = { kind = "exponential", mean_s = 90.0 }
values = [
  { share = 0.3, low = 90, high = 100, label = "vip" },
  { share = 0.7, low = 0, high = 40 },
]

[[traffic]]
queue = "support"
rate_per_hour = 40.0
handle = { kind = "exponential", mean_s = 150.0 }
patience = { kind = "none" }

[[agents]]
name = "a"
count = 3
queues = { sales = 0, support = 0 }
"""


# --- t quantiles ---------------------------------------------------------------------

# t(0.975, df), from scipy.stats.t.ppf (9 decimals).
KNOWN_T = {
    1: 12.706204736,
    2: 4.302652730,
    3: 3.182446305,
    5: 2.570581836,
    10: 2.228138852,
    19: 2.093024054,
    29: 2.045229642,
    30: 2.042272456,
    40: 2.021075390,
    60: 2.000297822,
    120: 1.979930405,
}
# Beyond the table: interpolated in 1/df, within 1e-4 of the exact values.
KNOWN_T_TAIL = {31: 2.039513446, 50: 2.008559112, 100: 1.983971519, 199: 1.971956544,
                1000: 1.962339081}  # fmt: skip


@pytest.mark.parametrize(("df", "q"), sorted(KNOWN_T.items()))
def test_t_quantile_exact_at_table_and_anchor_points(df: int, q: float) -> None:
    assert t_quantile_975(df) == pytest.approx(q, abs=1e-9)


@pytest.mark.parametrize(("df", "q"), sorted(KNOWN_T_TAIL.items()))
def test_t_quantile_interpolated_beyond_the_table(df: int, q: float) -> None:
    assert t_quantile_975(df) == pytest.approx(q, abs=1e-4)


def test_t_quantile_tends_to_the_normal_and_decreases() -> None:
    assert t_quantile_975(10**9) == pytest.approx(Z975, abs=1e-8)
    assert abs(Z975 - 1.96) < 1e-4
    qs = [t_quantile_975(df) for df in range(1, 5000)]
    assert all(a > b for a, b in itertools.pairwise(qs))
    with pytest.raises(ValueError, match="degrees of freedom must be >= 1"):
        t_quantile_975(0)


# --- confidence intervals ------------------------------------------------------------


def test_estimate_is_mean_plus_minus_t_s_over_root_n() -> None:
    e = estimate([1.0, 2.0, 3.0])  # mean 2, s = 1
    half = 4.302652730 / math.sqrt(3)
    assert e.n == 3
    assert e.mean == pytest.approx(2.0)
    assert e.ci95 == pytest.approx((2.0 - half, 2.0 + half))
    assert e.half_width == pytest.approx(half)

    e = estimate([10.0, 12.0, 14.0, 16.0, 18.0])  # mean 14, s = sqrt(10)
    half = 2.776445105 * math.sqrt(10) / math.sqrt(5)
    assert e.ci95 == pytest.approx((14.0 - half, 14.0 + half))


def test_estimate_skips_undefined_values_and_reports_n() -> None:
    e = estimate([1.0, None, 3.0, None])  # over the two where defined: s = sqrt(2)
    assert e.mean == pytest.approx(2.0)
    assert e.n == 2
    assert e.ci95 == pytest.approx((2.0 - 12.706204736, 2.0 + 12.706204736))
    assert estimate([None, None]) == Estimate(None, None, None, 0)
    assert estimate([None]).ci95 is None


def test_one_value_has_a_degenerate_interval() -> None:
    e = estimate([0.7])
    assert (e.mean, e.ci95, e.n) == (0.7, (0.7, 0.7), 1)
    assert estimate([4.0, 4.0, 4.0]).ci95 == (4.0, 4.0)


# --- one day, built by hand ----------------------------------------------------------


def _scenario(**overrides: Any) -> Scenario:
    data: dict[str, Any] = {
        "name": "hand",
        "hours": 1.0,
        "warm_up_minutes": 10,
        "queues": [
            {"name": "q1", "sl_target_s": 20.0, "short_abandon_s": 5.0},
            {"name": "q2", "sl_target_s": 40.0, "short_abandon_s": 0.0},
        ],
        "traffic": [{"queue": "q1", "rate_per_hour": 10.0}],
        "agents": [{"name": "a", "count": 1, "queues": {"q1": 0, "q2": 0}}],
    }
    data.update(overrides)
    return Scenario.model_validate(data)


def _cdr(
    call_id: str, arrived: float, wait: float, outcome: str = "answered", queue: str = "q1"
) -> CallDetailRecord:
    answered = arrived + wait if outcome == "answered" else None
    return CallDetailRecord(
        call_id=call_id,
        queue=queue,
        ani="+8613800000000",
        caller_kind=CallerKind.KNOWN,
        customer_id=None,
        segment=Segment.BASIC,
        value=10.0,
        arrived_at=arrived,
        offered_at=answered,
        answered_at=answered,
        ended_at=arrived + wait + (60.0 if outcome == "answered" else 0.0),
        outcome=outcome,
    )


def _day(
    records: list[CallDetailRecord],
    *,
    labels: dict[str, str] | None = None,
    agent_time: dict[str, AgentTime] | None = None,
    agent_queues: dict[str, list[str]] | None = None,
    samples: list[Sample] | None = None,
) -> DayResult:
    return DayResult(
        records=records,
        labels=labels if labels is not None else {r.call_id: "basic" for r in records},
        agent_time=agent_time or {"a-1": AgentTime(busy_s=50.0, idle_s=50.0)},
        agent_queues=agent_queues or {"a-1": ["q1", "q2"]},
        samples=samples or [],
        events=123,
    )


def test_calls_arriving_in_the_warm_up_are_not_counted() -> None:
    sc = _scenario()  # warm-up: the first 600 s
    day = _day(
        [
            _cdr("w1", 10.0, 500.0),  # warm-up, answered late: would pull SL and ASA down
            _cdr("w2", 599.9, 0.0, "abandoned"),  # warm-up
            _cdr("c1", 600.0, 10.0),  # the warm-up's end is measured
            _cdr("c2", 900.0, 30.0),  # answered beyond 20 s
            _cdr("c3", 1000.0, 2.0, "abandoned"),  # short abandon: out of SL
            _cdr("c4", 1200.0, 45.0, "abandoned"),
        ]
    )
    f = measure_day(sc, day)
    o = f.overall
    assert (o.offered, o.answered, o.abandoned, o.short_abandoned) == (4, 2, 2, 1)
    assert o.service_level == pytest.approx(1 / 3)  # 1 within 20 s of 4 - 1 short
    assert o.service_level_of_answered == pytest.approx(1 / 2)
    assert o.asa_s == pytest.approx(20.0)  # (10 + 30) / 2
    assert o.abandon_rate == pytest.approx(2 / 4)
    assert f.queues["q1"].offered == 4
    assert f.segments["basic"].offered == 4
    # The per-interval figures cover the whole day, warm-up included (by arrival).
    assert [i.calls.offered for i in f.intervals] == [6, 0]
    report = aggregate(sc, [f], seed=1)
    assert report.intervals[0].warm_up
    assert not report.intervals[1].warm_up


def test_each_call_is_judged_by_its_own_queues_thresholds() -> None:
    sc = _scenario()
    day = _day(
        [
            _cdr("a", 700.0, 30.0, queue="q1"),  # beyond q1's 20 s
            _cdr("b", 700.0, 30.0, queue="q2"),  # within q2's 40 s
            _cdr("c", 800.0, 3.0, "abandoned", queue="q1"),  # short for q1 (5 s)
            _cdr("d", 800.0, 3.0, "abandoned", queue="q2"),  # not short for q2 (0 s)
        ]
    )
    f = measure_day(sc, day)
    assert f.queues["q1"].service_level == pytest.approx(0 / 1)
    assert f.queues["q2"].service_level == pytest.approx(1 / 2)
    assert f.overall.short_abandoned == 1
    assert f.overall.service_level == pytest.approx(1 / 3)


def test_occupancy_from_agent_time_overall_and_per_queue() -> None:
    sc = _scenario()
    day = _day(
        [_cdr("c1", 700.0, 0.0)],
        agent_time={
            "x": AgentTime(busy_s=30.0, idle_s=10.0, not_ready_s=500.0),  # Not Ready: not counted
            "y": AgentTime(busy_s=10.0, idle_s=50.0),
        },
        agent_queues={"x": ["q1"], "y": ["q1", "q2"]},
    )
    f = measure_day(sc, day)
    assert f.overall.occupancy == pytest.approx(40 / 100)
    assert f.queues["q1"].occupancy == pytest.approx(40 / 100)
    assert f.queues["q2"].occupancy == pytest.approx(10 / 60)
    assert f.segments["basic"].occupancy is None


def test_segments_by_label_and_intervals_from_samples() -> None:
    sc = _scenario()
    day = _day(
        [_cdr("c1", 700.0, 0.0), _cdr("c2", 2000.0, 50.0), _cdr("c3", 2100.0, 10.0)],
        labels={"c1": "vip", "c2": "basic", "c3": "vip"},
        samples=[Sample(0.0, 2, 3, 1), Sample(60.0, 4, 3, 3), Sample(1800.0, 1, 5, 5)],
    )
    f = measure_day(sc, day)
    assert {k: v.offered for k, v in f.segments.items()} == {"vip": 2, "basic": 1}
    assert f.segments["vip"].service_level == 1.0
    first, second = f.intervals
    assert (first.waiting, first.staffed, first.busy) == (3.0, 3.0, 2.0)
    assert (second.waiting, second.staffed, second.busy) == (1.0, 5.0, 5.0)
    assert (second.start_s, second.end_s) == (1800.0, 3600.0)
    assert second.calls.offered == 2
    assert second.calls.asa_s == pytest.approx(30.0)


def test_undefined_figures_average_over_the_replications_that_have_them() -> None:
    sc = _scenario()
    answered = measure_day(sc, _day([_cdr("c1", 700.0, 12.0)]))
    abandoned = measure_day(sc, _day([_cdr("c1", 700.0, 60.0, "abandoned")]))
    empty = measure_day(sc, _day([]))
    report = aggregate(sc, [answered, abandoned, empty], seed=1)
    o = report.overall
    assert (o.asa_s.mean, o.asa_s.n, o.asa_s.ci95) == (12.0, 1, (12.0, 12.0))
    assert (o.abandon_rate.mean, o.abandon_rate.n) == (0.5, 2)
    assert o.occupancy.n == 3
    assert report.calls == 2
    assert report.queues["q2"].calls == 0
    assert report.queues["q2"].service_level.n == 0
    assert to_json(report)["queues"]["q2"]["asa_s"] == {"mean": None, "ci95": None, "n": 0}


# --- the JSON and the text -----------------------------------------------------------


def _check_group(g: dict[str, Any]) -> None:
    assert isinstance(g["calls"], int)
    for m in METRICS:
        e = g[m]
        assert set(e) == {"mean", "ci95", "n"}, m
        if e["mean"] is None:
            assert e["ci95"] is None
        else:
            lo, hi = e["ci95"]
            assert lo <= e["mean"] <= hi


def _check_shape(out: dict[str, Any], *, queues: set[str]) -> None:
    for key in ("calls", "wall_s", "replications", "scenario", "seed", "events", *METRICS):
        assert key in out, key
    _check_group(out)
    assert set(out["queues"]) == queues
    for g in (*out["queues"].values(), *out["segments"].values()):
        _check_group(g)
    assert out["segments"]


def test_json_shape_on_a_hand_made_report() -> None:
    sc = _scenario()
    days = [
        measure_day(sc, _day([_cdr("c1", 700.0, 5.0), _cdr("c2", 800.0, 25.0)])),
        measure_day(sc, _day([_cdr("c1", 700.0, 5.0)])),
    ]
    out = to_json(aggregate(sc, days, seed=9, wall_s=0.5))
    _check_shape(out, queues={"q1", "q2"})
    assert out["calls"] == 3
    assert out["seed"] == 9
    assert out["replications"] == 2
    assert out["scenario"] == "hand"
    assert out["events"] == 246
    assert out["service_level"]["mean"] == pytest.approx(0.75)  # (1/2 + 1) / 2
    # ASA 15 and 5: mean 10, s = √50, half-width 12.706 · √50 / √2
    assert out["asa_s"]["ci95"] == pytest.approx([10 - 63.531, 10 + 63.531], abs=1e-3)
    assert "intervals" not in out
    json.dumps(out)  # serialisable


def test_simulate_is_deterministic_in_its_seed_and_reports_progress(tmp_path: Path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY, "utf-8")
    from simulators.scenario import load_scenario

    sc = load_scenario(path)
    seen: list[tuple[int, int]] = []
    a = simulate(sc, 2, 5, lambda done, total: seen.append((done, total)))
    b = simulate(sc, 2, 5, None)
    assert seen == [(0, 2), (1, 2), (2, 2)]
    assert a.seeds == (replication_seed(5, 0), replication_seed(5, 1)) == b.seeds
    assert to_json(a) | {"wall_s": 0} == to_json(b) | {"wall_s": 0}
    with pytest.raises(SimulationError):
        simulate(sc, 0, 5, None)


def test_text_says_when_there_is_one_replication() -> None:
    sc = _scenario()
    one = aggregate(sc, [measure_day(sc, _day([_cdr("c1", 700.0, 5.0)]))], seed=1)
    text = format_text(one, intervals=True)
    assert "1 replication: no confidence intervals" in text
    assert "queue q1" in text
    assert "segment basic" in text
    assert "08:00*" in text  # the warm-up interval, flagged
    two = aggregate(sc, [measure_day(sc, _day([_cdr("c1", 700.0, 5.0)]))] * 2, seed=1)
    assert "95% confidence interval" in format_text(two)


# --- the command ---------------------------------------------------------------------


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY, "utf-8")
    return path


def test_cli_json_and_plot(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "day.png"
    rc = main(["simulate", str(tiny), "--json", "--plot", str(png), "--intervals"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    data = json.loads(out)  # one object and nothing else
    _check_shape(data, queues={"sales", "support"})
    assert data["calls"] > 0
    assert data["replications"] == 3
    assert data["seed"] == 5
    assert "vip" in data["segments"]
    assert data["queues"]["support"]["sl_target_s"] == 30.0
    assert [i["start"] for i in data["intervals"]] == ["09:00", "09:30"]
    assert data["intervals"][0]["warm_up"] is True
    assert png.read_bytes().startswith(PNG_SIGNATURE)


def test_cli_text_with_options(tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["simulate", str(tiny), "--replications", "1", "--seed", "3"])
    out, _ = capsys.readouterr()
    assert rc == 0
    assert "tiny: 1 replication of 1 h from 09:00" in out
    assert "seed 3" in out
    assert "no confidence intervals" in out
    assert "queue sales" in out
    assert "segment vip" in out


def test_cli_bad_scenario_exits_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.replace("count = 3", "count = 0"), "utf-8")
    assert main(["simulate", str(bad), "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "agents.0.count" in err
    assert str(bad) in err


def test_cli_bad_replications_and_missing_file(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", str(tiny), "--replications", "0"]) == 2
    assert "--replications" in capsys.readouterr().err
    assert main(["simulate", str(tmp_path / "nope.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err
