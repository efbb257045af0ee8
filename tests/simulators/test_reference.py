"""The simulator on the production router reproduces the textbook queueing figures
(Erlang C, Erlang A, Cobham's priority waits; docs/statistics.md defines the figures).

Each case runs the shipped scenario stretched to :data:`HOURS` hours (one long day per
replication cuts the share of time lost to the 30-minute warm-up) for a number of
seeded replications, in two processes. Figures are taken with
:class:`queue_engine.stats.Tally` over the calls that arrived after the warm-up and
before the end of arrivals, one estimate per replication; a confidence interval is
the mean of the replications' estimates +/- t * sd / sqrt(n)
(:func:`simulators.estimates.estimate`, as ``cti simulate`` reports it).

How much data each tolerance needs: one 8-hour day of the Erlang C case has SL20 sd
about 0.09 and ASA sd about 19 s, so 40 such days (SL20 standard error 0.014) would
not make a tolerance of 0.015 mean much. The Erlang C case here runs 40 x 39.5 =
1,580 measured hours (about 210 eight-hour days; SL20 standard error about 0.0065, so
the tolerance is about 2.3 standard errors). The Erlang A case is far less noisy (SL20
sd about 0.024 per 8-hour day) and needs fewer; the priority case is checked by
confidence intervals, which need only enough data to be narrow (VIP: about +/- 0.2 s).

Last, a value-weighted day against first come, first served: valuable callers wait
less, the others more, and none beyond the starvation bound.
"""

from __future__ import annotations

import os
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache

import pytest

from cti.models import CallDetailRecord, QueueConfig
from queue_engine.priority import starvation_bound_s
from queue_engine.stats import Tally, passed_over_beyond_bound
from simulators.des import run_day
from simulators.estimates import Estimate, estimate
from simulators.scenario import SCENARIO_DIR, Scenario, ValueShare, load_scenario

pytestmark = pytest.mark.simulation

HOURS = 40.0
"""Length of each replication's day here (the shipped files say 8 hours)."""

# (shipped scenario, replications of HOURS hours)
ERLANG_C = ("reference_erlang_c", 40)
ERLANG_A = ("reference_erlang_a", 8)
PRIORITY = ("reference_priority", 12)


@dataclass(frozen=True)
class Replication:
    """One replication's figures, over the calls that arrived in the measured window."""

    offered: int
    answered: int
    service_level: float
    asa_s: float
    abandon_rate: float
    waited: float
    """Share of the offered calls that waited at all (P(wait > 0))."""
    occupancy: float
    asa_by_label: dict[str, float]
    offered_by_label: dict[str, int]
    answered_by_label: dict[str, int]


@cache
def scenario(name: str) -> Scenario:
    shipped = load_scenario(SCENARIO_DIR / f"{name}.toml")
    return shipped.model_copy(update={"hours": HOURS})


def replicate(name: str, seed: int) -> Replication:
    """Run one day of the case and reduce it to its figures (in a worker process)."""
    s = scenario(name)
    (queue,) = s.queues
    day = run_day(s, seed)
    thresholds = (queue.sl_target_s, queue.short_abandon_s)
    total = Tally(*thresholds)
    by_label: dict[str, Tally] = defaultdict(lambda: Tally(*thresholds))
    waited = 0
    for cdr in day.records:
        if not s.warm_up_s <= cdr.arrived_at < s.duration_s:
            continue
        total.add(cdr)
        by_label[day.labels[cdr.call_id]].add(cdr)
        waited += cdr.wait_s > 0
    busy = sum(t.busy_s for t in day.agent_time.values())
    available = sum(t.busy_s + t.idle_s for t in day.agent_time.values())
    assert total.service_level is not None
    assert total.asa_s is not None
    assert total.abandon_rate is not None
    return Replication(
        offered=total.offered,
        answered=total.answered,
        service_level=total.service_level,
        asa_s=total.asa_s,
        abandon_rate=total.abandon_rate,
        waited=waited / total.offered,
        occupancy=busy / available,
        asa_by_label={k: t.asa_s for k, t in by_label.items() if t.asa_s is not None},
        offered_by_label={k: t.offered for k, t in by_label.items()},
        answered_by_label={k: t.answered for k, t in by_label.items()},
    )


def run_case(case: tuple[str, int]) -> list[Replication]:
    name, replications = case
    seeds = [scenario(name).seed + i for i in range(replications)]
    with ProcessPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        return list(pool.map(replicate, [name] * replications, seeds))


def contains(e: Estimate, x: float) -> bool:
    assert e.low is not None
    assert e.high is not None
    return e.low <= x <= e.high


def show(e: Estimate) -> str:
    assert e.mean is not None
    assert e.half_width is not None
    return f"{e.mean:.4f} +/- {e.half_width:.4f}"


def figure(reps: list[Replication], name: str) -> Estimate:
    return estimate(getattr(r, name) for r in reps)


@pytest.fixture(scope="module")
def erlang_c() -> list[Replication]:
    return run_case(ERLANG_C)


@pytest.fixture(scope="module")
def erlang_a() -> list[Replication]:
    return run_case(ERLANG_A)


@pytest.fixture(scope="module")
def priority() -> list[Replication]:
    return run_case(PRIORITY)


def test_erlang_c(erlang_c: list[Replication]) -> None:
    sl = figure(erlang_c, "service_level")
    asa = figure(erlang_c, "asa_s")
    occupancy = figure(erlang_c, "occupancy")
    waited = figure(erlang_c, "waited")
    report = (
        f"SL20 {show(sl)}, ASA {show(asa)}, occupancy {show(occupancy)}, P(wait>0) {show(waited)}"
    )
    assert all(r.answered == r.offered for r in erlang_c), "no caller abandons in Erlang C"
    assert sl.mean == pytest.approx(0.648550, abs=0.015), report
    assert contains(asa, 29.429), report
    assert occupancy.mean == pytest.approx(0.9091, abs=0.01), report
    assert waited.mean == pytest.approx(0.490488, abs=0.02), report


def test_erlang_a(erlang_a: list[Replication]) -> None:
    sl = figure(erlang_a, "service_level")
    abandon = figure(erlang_a, "abandon_rate")
    asa = figure(erlang_a, "asa_s")
    report = f"SL20 {show(sl)}, abandon rate {show(abandon)}, ASA {show(asa)}"
    assert sl.mean == pytest.approx(0.878186, abs=0.015), report
    assert abandon.mean == pytest.approx(0.039650, abs=0.006), report
    assert contains(asa, 4.368), report


def test_priority_reproduces_cobhams_mean_waits(priority: list[Replication]) -> None:
    vip = estimate(r.asa_by_label["vip"] for r in priority)
    standard = estimate(r.asa_by_label["standard"] for r in priority)
    report = f"VIP {show(vip)}, standard {show(standard)}"
    # Mean wait of all the calls of a class: every call is answered in this case.
    assert all(r.answered_by_label == r.offered_by_label for r in priority)
    vip_share = sum(r.offered_by_label["vip"] for r in priority) / sum(r.offered for r in priority)
    assert vip_share == pytest.approx(0.2, abs=0.005)
    assert contains(vip, 3.270), report
    assert contains(standard, 35.969), report


# --- value-weighted ranking on a loaded day ----------------------------------------------


def value_weighted_days(value_weight: float, seeds: range) -> list[list[CallDetailRecord]]:
    """Days of the Erlang C case (91% load) with callers' values uniform in 0..100,
    ranked with ``value_weight`` rank points per value point and 1 per second waited."""
    shipped = load_scenario(SCENARIO_DIR / "reference_erlang_c.toml")
    (queue,) = shipped.queues
    (traffic,) = shipped.traffic
    s = shipped.model_copy(
        update={
            "queues": (queue.model_copy(update={"value_weight": value_weight, "aging_rate": 1.0}),),
            "traffic": (
                traffic.model_copy(update={"values": (ValueShare(share=1.0, low=0, high=100),)}),
            ),
        }
    )
    return [run_day(s, seed).records for seed in seeds]


def test_value_weighting_favours_valuable_callers_within_the_starvation_bound() -> None:
    seeds = range(1, 3)
    weighted = value_weighted_days(1.0, seeds)  # starvation bound 100 * 1 / 1 = 100 s
    fifo = value_weighted_days(0.0, seeds)
    bound = starvation_bound_s(QueueConfig(name="general", value_weight=1.0, aging_rate=1.0))
    assert bound == 100.0

    def asa(days: list[list[CallDetailRecord]], low: float, high: float) -> float:
        t = Tally()
        for cdr in (cdr for day in days for cdr in day):
            if low <= cdr.value < high:
                t.add(cdr)
        assert t.asa_s is not None
        return t.asa_s

    def passed_over(days: list[list[CallDetailRecord]], bound_s: float) -> int:
        return sum(passed_over_beyond_bound(day, {"general": bound_s}) for day in days)

    report = (
        f"ASA of value >= 75: {asa(weighted, 75, 101):.1f} s weighted, "
        f"{asa(fifo, 75, 101):.1f} s FIFO; value < 25: {asa(weighted, 0, 25):.1f} s "
        f"weighted, {asa(fifo, 0, 25):.1f} s FIFO"
    )
    assert asa(weighted, 75, 101) < asa(fifo, 75, 101), report
    assert asa(weighted, 0, 25) > asa(fifo, 0, 25), report
    # Nobody is passed over by a caller who arrived more than the bound later ...
    assert passed_over(weighted, bound) == 0
    # ... though value does reorder callers within it (so the check above can fail),
    assert passed_over(weighted, bound / 10) > 0
    # and first come, first served passes nobody over at all.
    assert passed_over(fifo, 0.0) == 0
