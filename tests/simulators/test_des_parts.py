"""The simulator's compiled parts draw exactly what the scenario's models draw: the same
numbers from the same seeds, leaving the random stream where the model leaves it."""

from __future__ import annotations

import random

import pytest

from simulators.des_parts import Draw, Stream, expovariate
from simulators.scenario import Exponential, Fixed, Lognormal, Never, Traffic, ValueShare

SEEDS = range(5)


def test_expovariate_is_randoms() -> None:
    for seed in SEEDS:
        mine, theirs = random.Random(seed), random.Random(seed)
        for lambd in (1 / 180.0, 600 / 3600.0, 3.0):
            assert [expovariate(mine, lambd) for _ in range(200)] == [
                theirs.expovariate(lambd) for _ in range(200)
            ]
        assert mine.getstate() == theirs.getstate()


@pytest.mark.parametrize(
    "dist",
    [
        Exponential(mean_s=180.0),
        Exponential(mean_s=0.3),
        Fixed(value_s=30.0),
        Fixed(value_s=0.0),
        Never(),
        Lognormal(mean_s=240.0, sd_s=120.0),
    ],
    ids=lambda d: f"{d.kind}",
)
def test_a_draw_is_the_models_draw(dist: Exponential | Lognormal | Fixed | Never) -> None:
    draw = Draw(dist)
    for seed in SEEDS:
        mine, theirs = random.Random(seed), random.Random(seed)
        assert [draw.draw(mine) for _ in range(300)] == [dist.draw(theirs) for _ in range(300)]
        assert mine.getstate() == theirs.getstate()


@pytest.mark.parametrize(
    "values",
    [
        (ValueShare(share=1.0),),
        (ValueShare(share=1.0, low=40.0, high=40.0, label="vip"),),
        (
            ValueShare(share=0.1, low=80.0, high=100.0, label="vip"),
            ValueShare(share=0.3, low=20.0, high=60.0),
            ValueShare(share=0.6),
        ),
        # shares that do not add up to 1, and a last share that takes what is left
        (ValueShare(share=0.7, low=10.0, high=20.0), ValueShare(share=0.05, label="rare")),
    ],
)
def test_a_streams_value_is_the_traffics(values: tuple[ValueShare, ...]) -> None:
    traffic = Traffic(queue="general", rate_per_hour=60.0, values=values)
    stream = Stream(traffic, random.Random(0))
    for seed in SEEDS:
        mine, theirs = random.Random(seed), random.Random(seed)
        assert [stream.draw_value(mine) for _ in range(500)] == [
            traffic.draw_value(theirs) for _ in range(500)
        ]
        assert mine.getstate() == theirs.getstate()


def test_a_stream_holds_its_traffics_fields() -> None:
    constant = Traffic(queue="sales", rate_per_hour=720.0, patience=Exponential(mean_s=90.0))
    stream = Stream(constant, random.Random(0))
    assert (stream.queue, stream.flow, stream.rate, stream.callback) == ("sales", False, 0.2, None)
    assert stream.traffic is constant
    by_interval = Stream(Traffic(flow="4000", rates_per_hour=(60.0, 120.0)), random.Random(0))
    assert (by_interval.rate, by_interval.flow) == (-1.0, True)
