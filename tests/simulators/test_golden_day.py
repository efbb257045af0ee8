"""A fixed-seed day of each kind gives exactly the day recorded here.

The simulator's own machinery (event queue, samplers, input building, time accounting)
is rewritten for speed from time to time; the days it plays must not change by one
bit. Each case runs one shipped scenario with one seed and compares a fingerprint of
everything the day returns (every record field by field in order, the labels, each
agent's time, the samples, the event count, the flows' counts) with the one recorded
when the figures were first written down, and the Erlang C day's headline figures
exactly (readable when they move). A change to the router that changes its decisions
shows here too; it must then say so and record the new days.
"""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from simulators.des import DayResult, run_day
from simulators.report import measure_day
from simulators.scenario import SCENARIO_DIR, load_scenario


def fingerprint(day: DayResult) -> str:
    """A digest of the whole day: any change to any figure of it changes the digest."""
    parts: list[object] = [
        [dataclasses.astuple(r) for r in day.records],
        sorted(day.labels.items()),
        sorted((a, t.busy_s, t.idle_s, t.not_ready_s) for a, t in day.agent_time.items()),
        sorted(day.agent_queues.items()),
        [dataclasses.astuple(s) for s in day.samples],
        day.events,
        None if day.flows is None else dataclasses.asdict(day.flows),
    ]
    return hashlib.sha256(repr(parts).encode()).hexdigest()


#: scenario -> (seed, records, events, fingerprint), recorded on 2026-12-07 (a1692f2).
GOLDEN = {
    "reference_erlang_c": (
        1,
        4764,
        14806,
        "5812d40450ba1edc0a2a771f10916e0ac2f4c3748cb4724e709eed5d3dffec0c",
    ),
    "realistic_day": (
        3,
        4954,
        25626,
        "afd3110fcfa779ff42aef2f9662a20c10e28ca107ded4ca7ba490a1dfba664aa",
    ),
    "virtual_hold": (
        5,
        1476,
        16154,
        "8f35a5ff8b96c40edf593937f62f824ac4f2bf706603995fe7f4a44ca600c2b4",
    ),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_a_fixed_seed_day_is_the_recorded_day(name: str) -> None:
    seed, records, events, digest = GOLDEN[name]
    day = run_day(load_scenario(SCENARIO_DIR / f"{name}.toml"), seed)
    assert (len(day.records), day.events) == (records, events)
    assert fingerprint(day) == digest


def test_the_erlang_c_days_figures_are_the_recorded_ones() -> None:
    scenario = load_scenario(SCENARIO_DIR / "reference_erlang_c.toml")
    overall = measure_day(scenario, run_day(scenario, 1)).overall
    assert (overall.service_level, overall.asa_s, overall.occupancy) == (
        0.599195710455764,
        34.5692662806003,
        0.9225599852265773,
    )
