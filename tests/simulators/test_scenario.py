"""Scenario files: the shipped ones load, mistakes are named with file and key, and the
pieces (piecewise Poisson rates, distributions, value mix, duty times) do what they say."""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter
from pathlib import Path

import pytest

from cti.errors import SimulationError
from cti.models import QueueConfig
from queue_engine.priority import starvation_bound_s
from simulators.des import run_day
from simulators.scenario import (
    SCENARIO_DIR,
    AgentGroup,
    Exponential,
    Fixed,
    Lognormal,
    Never,
    Scenario,
    Traffic,
    ValueShare,
    load_scenario,
)

SHIPPED = sorted(SCENARIO_DIR.glob("*.toml"))

BASE = """\
name = "test"
start = "08:00"
hours = 8.0

[[queues]]
name = "general"

[[traffic]]
queue = "general"
rate_per_hour = 100.0

[[agents]]
name = "agent"
count = 2
queues = { general = 0 }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.toml"
    path.write_text(text, "utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(SimulationError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert str(path) in message, "the error names the file"
    return message


# --- the shipped scenarios -------------------------------------------------------------


def test_the_scenarios_we_ship_are_there() -> None:
    names = {p.stem for p in SHIPPED}
    assert {
        "reference_erlang_c",
        "reference_erlang_a",
        "reference_priority",
        "realistic_day",
    } <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_scenario_loads(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.name == path.stem
    for group in scenario.agents:
        assert scenario.on_duty(group)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_the_readme_describes_every_shipped_scenario(path: Path) -> None:
    assert f"`{path.name}`" in (SCENARIO_DIR / "README.md").read_text("utf-8")


def test_the_realistic_day_has_what_it_promises() -> None:
    s = load_scenario(SCENARIO_DIR / "realistic_day.toml")
    assert (s.start, s.hours) == ("08:00", 12.0)
    assert sum(g.count for g in s.agents) == 60
    assert all(len(shift.breaks) == 2 for g in s.agents for shift in g.shifts)
    general = next(t for t in s.traffic if t.queue == "general")
    rates = general.rates_per_hour
    assert general.interval_minutes == 30
    assert len(rates) == 24
    peak = max(rates[2:7])  # 09:00-11:30
    lunch = min(rates[8:11])  # 12:00-13:30
    afternoon = max(rates[12:16])  # 14:00-16:00
    assert lunch < afternoon < peak
    assert {v.label for v in general.values} == {
        "basic",
        "bronze",
        "silver",
        "gold",
        "platinum",
    }
    billing = next(q for q in s.queues if q.name == "billing")
    assert billing.skills == {"billing": 3}
    assert [(r.after_s, r.skills) for r in billing.relax] == [(60.0, {})]


def test_the_priority_case_has_a_starvation_bound_beyond_its_day() -> None:
    s = load_scenario(SCENARIO_DIR / "reference_priority.toml")
    (queue,) = s.queues
    assert starvation_bound_s(queue) > 10 * s.duration_s


# --- errors name the file and the key ----------------------------------------------------


def test_an_unknown_key_is_named(tmp_path: Path) -> None:
    message = error_of(tmp_path, BASE + 'colour = "red"\n')
    assert "colour" in message
    assert "Extra inputs are not permitted" in message
    message = error_of(tmp_path, BASE.replace("rate_per_hour", "rate_per_hour = 1\nrate"))
    assert "traffic.0.rate:" in message


def test_traffic_for_a_queue_that_is_not_defined(tmp_path: Path) -> None:
    message = error_of(tmp_path, BASE.replace('queue = "general"', 'queue = "billing"'))
    assert "traffic[0].queue 'billing' is not one of ['general']" in message


def test_an_agent_group_naming_an_unknown_queue(tmp_path: Path) -> None:
    message = error_of(tmp_path, BASE.replace("{ general = 0 }", "{ general = 0, sales = 5 }"))
    assert "agents[0] (agent) names queue 'sales'" in message


def test_a_shift_ending_before_it_starts(tmp_path: Path) -> None:
    text = BASE + 'shifts = [{ start = "17:00", end = "09:00" }]\n'
    message = error_of(tmp_path, text)
    assert "agents.0.shifts.0:" in message
    assert "shift ends (09:00) before it starts (17:00)" in message


def test_a_break_outside_its_shift(tmp_path: Path) -> None:
    breaks = '[{ start = "18:00", minutes = 15 }]'
    text = BASE + f'shifts = [{{ start = "09:00", end = "17:00", breaks = {breaks} }}]\n'
    message = error_of(tmp_path, text)
    assert "agents.0.shifts.0:" in message
    assert "break at 18:00 is outside the shift 09:00-17:00" in message


def test_both_a_constant_rate_and_rates_per_interval(tmp_path: Path) -> None:
    text = BASE.replace("rate_per_hour = 100.0", "rate_per_hour = 100.0\nrates_per_hour = [50, 60]")
    message = error_of(tmp_path, text)
    assert "traffic.0:" in message
    assert "give either rate_per_hour or rates_per_hour" in message
    neither = BASE.replace("rate_per_hour = 100.0\n", "")
    assert "traffic.0:" in error_of(tmp_path, neither)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (BASE.replace('start = "08:00"', 'start = "25:00"'), "start:"),
        (BASE + 'shifts = [{ start = "09:00", end = "25:00" }]\n', "agents.0.shifts.0.end:"),
        (
            BASE
            + 'shifts = [{ start = "09:00", end = "17:00", '
            + 'breaks = [{ start = "12:75", minutes = 15 }] }]\n',
            "agents.0.shifts.0.breaks.0.start:",
        ),
        (BASE.replace('start = "08:00"', 'start = "8 am"'), "start:"),
    ],
    ids=["scenario start", "shift end", "break start", "not HH:MM"],
)
def test_a_bad_time_of_day_is_named_where_it_is(tmp_path: Path, text: str, key: str) -> None:
    message = error_of(tmp_path, text)
    assert f"  {key}" in message


def test_bad_toml(tmp_path: Path) -> None:
    message = error_of(tmp_path, BASE + "[[agents]\n")
    assert "is not valid TOML" in message


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SimulationError, match="does not exist"):
        load_scenario(tmp_path / "nowhere.toml")


def test_a_good_file_loads(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, BASE))
    assert scenario.traffic[0].rate_at(0.0) == 100.0


# --- piecewise Poisson rates ------------------------------------------------------------


def test_a_constant_rate_never_changes() -> None:
    t = Traffic(queue="q", rate_per_hour=600.0)
    assert t.rate_at(0.0) == t.rate_at(1e6) == 600.0
    assert t.next_change(0.0) == math.inf


def test_rates_per_interval_hold_to_the_end_of_each_interval_and_the_last_holds_on() -> None:
    t = Traffic(queue="q", interval_minutes=30, rates_per_hour=(60.0, 0.0, 120.0))
    assert [t.rate_at(s) for s in (0.0, 1799.9, 1800.0, 3599.0, 3600.0, 1e6)] == [
        60.0,
        60.0,
        0.0,
        0.0,
        120.0,
        120.0,
    ]
    assert t.next_change(0.0) == 1800.0
    assert t.next_change(1799.9) == 1800.0
    assert t.next_change(1800.0) == 3600.0
    assert t.next_change(3600.0) == math.inf  # the last rate holds on
    assert t.next_change(1e6) == math.inf
    hourly = Traffic(queue="q", interval_minutes=60, rates_per_hour=(10.0, 20.0))
    assert hourly.rate_at(3599.0) == 10.0
    assert hourly.next_change(10.0) == 3600.0


def test_the_runner_draws_arrivals_at_each_intervals_rate() -> None:
    # 15-minute intervals: 1200/h, nothing, 400/h, then 2400/h to the end of the hour.
    scenario = Scenario(
        name="rates",
        hours=1.0,
        queues=[QueueConfig(name="q", wrap_up_s=0.0)],
        traffic=[
            Traffic(queue="q", interval_minutes=15, rates_per_hour=(1200.0, 0.0, 400.0, 2400.0))
        ],
        agents=[AgentGroup(count=200, queues={"q": 0.0})],
    )
    counts: Counter[int] = Counter()
    days = 10
    for seed in range(days):
        for cdr in run_day(scenario, seed).records:
            counts[int(cdr.arrived_at // 900)] += 1
    assert counts[1] == 0
    assert set(counts) == {0, 2, 3}
    for interval, rate in [(0, 1200), (2, 400), (3, 2400)]:
        expected = rate / 4 * days
        assert abs(counts[interval] - expected) < 4 * math.sqrt(expected), (interval, counts)


# --- distributions and the value mix ------------------------------------------------------


N = 50_000


def test_exponential_draws_have_the_mean() -> None:
    rng = random.Random(1)
    draws = [Exponential(mean_s=180.0).draw(rng) for _ in range(N)]
    assert statistics.fmean(draws) == pytest.approx(180.0, rel=0.02)
    assert statistics.stdev(draws) == pytest.approx(180.0, rel=0.03)  # sd = mean
    assert Exponential(mean_s=180.0).mean == 180.0


def test_lognormal_draws_have_the_mean_and_sd_asked() -> None:
    rng = random.Random(2)
    dist = Lognormal(mean_s=240.0, sd_s=160.0)
    draws = [dist.draw(rng) for _ in range(N)]
    assert min(draws) > 0
    assert statistics.fmean(draws) == pytest.approx(240.0, rel=0.02)
    assert statistics.stdev(draws) == pytest.approx(160.0, rel=0.05)
    assert statistics.median(draws) < 240.0  # skewed to the right
    assert dist.mean == 240.0


def test_fixed_and_never() -> None:
    rng = random.Random(3)
    assert {Fixed(value_s=30.0).draw(rng) for _ in range(100)} == {30.0}
    assert Fixed(value_s=30.0).mean == 30.0
    assert Never().draw(rng) == math.inf
    assert Never().mean == math.inf


def test_values_follow_the_shares_and_stay_in_their_ranges() -> None:
    t = Traffic(
        queue="q",
        rate_per_hour=1.0,
        values=(
            ValueShare(share=2, low=90, high=100, label="top"),
            ValueShare(share=6, low=0, high=50, label="low"),
            ValueShare(share=2, low=70, high=70, label="fixed"),
        ),
    )
    rng = random.Random(4)
    draws = [t.draw_value(rng) for _ in range(N)]
    labels = Counter(label for _, label in draws)
    assert labels["top"] / N == pytest.approx(0.2, abs=0.01)
    assert labels["low"] / N == pytest.approx(0.6, abs=0.01)
    assert labels["fixed"] / N == pytest.approx(0.2, abs=0.01)
    ranges = {"top": (90, 100), "low": (0, 50), "fixed": (70, 70)}
    for value, label in draws:
        low, high = ranges[label]
        assert low <= value <= high
    low_values = [v for v, label in draws if label == "low"]
    assert statistics.fmean(low_values) == pytest.approx(25.0, abs=0.5)  # uniform


# --- duty times -----------------------------------------------------------------------


def test_on_duty_in_scenario_seconds() -> None:
    s = load_scenario(SCENARIO_DIR / "reference_erlang_c.toml")
    split = AgentGroup.model_validate(
        {
            "name": "split",
            "count": 1,
            "queues": {"general": 0},
            "shifts": [
                {
                    "start": "09:00",
                    "end": "13:00",
                    "breaks": [
                        {"start": "10:30", "minutes": 15},
                        {"start": "12:00", "minutes": 10},
                    ],
                },
                {"start": "17:00", "end": "24:00"},
            ],
        }
    )
    assert s.start == "08:00"
    assert s.on_duty(split) == [
        (3600.0, 18000.0, [(9000.0, 9900.0), (14400.0, 15000.0)]),
        (32400.0, 57600.0, []),
    ]
    # No shifts: on duty from the start to the end of the run (and its drain).
    assert s.on_duty(s.agents[0]) == [(0.0, math.inf, [])]
