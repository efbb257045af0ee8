"""The simulator's compiled parts draw exactly what the scenario's models draw: the same
numbers from the same seeds, leaving the random stream where the model leaves it; the
router's inputs it makes are the ones the models' validators make; its event queue keeps
heapq's order."""

from __future__ import annotations

import heapq
import random
from typing import Any

import pytest
from pydantic import BaseModel

from cti.models import CallerInfo, CallerKind
from queue_engine import inputs as ri
from simulators.des_parts import Agenda, Draw, Inputs, Stream, expovariate
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


_CALLER = CallerInfo(ani="+8613800000000", kind=CallerKind.UNKNOWN)


@pytest.mark.parametrize(
    ("model", "example", "values"),
    [
        (
            ri.CallArrives,
            {"call_id": "c0", "queue": "q", "caller": _CALLER},
            ("c7", "sales", _CALLER),
        ),
        (ri.AgentAccepts, {"agent_id": "a", "call_id": "c0"}, ("agent-3", "c7")),
        (ri.AgentHangsUp, {"agent_id": "a", "call_id": "c0"}, ("agent-3", "c7")),
        (
            ri.AgentFinishesWrapUp,
            {"agent_id": "a", "call_id": "c0", "disposition": "done"},
            ("agent-3", "c7"),
        ),
    ],
    ids=lambda x: x.__name__ if isinstance(x, type) else "",
)
def test_an_input_is_the_validated_one(
    model: type[BaseModel], example: dict[str, Any], values: tuple[object, ...]
) -> None:
    """Field by field, in order, with the same set of fields given: what the model's
    validator makes of the same fields (the example's, these values replacing the first)."""
    inputs = Inputs(model, example)
    fields = dict(example) | dict(zip(example, values, strict=False))
    for _ in range(3):  # made again from the one instance: still the validated one
        made = inputs.make(*values)
        valid = model.__pydantic_validator__.validate_python(fields)
        assert type(made) is model
        assert list(made.__dict__.items()) == list(valid.__dict__.items())
        assert made.__pydantic_fields_set__ == valid.__pydantic_fields_set__
        assert (made.__pydantic_extra__, made.__pydantic_private__) == (None, None)
        assert made == valid
        del made


def test_an_input_held_elsewhere_is_not_changed() -> None:
    inputs = Inputs(ri.AgentHangsUp, {"agent_id": "a", "call_id": "c0"})
    held = inputs.make("agent-1", "c1")
    other = inputs.make("agent-2", "c2")
    assert other is not held
    assert (held.agent_id, held.call_id) == ("agent-1", "c1")
    assert (other.agent_id, other.call_id) == ("agent-2", "c2")
    assert other.__pydantic_fields_set__ == {"agent_id", "call_id"}
    first = id(other)
    del other
    assert id(inputs.make("agent-3", "c3")) == first  # alone again: the same one reused


@pytest.mark.parametrize("seed", SEEDS)
def test_an_agenda_gives_its_items_by_time_then_as_added(seed: int) -> None:
    """The order of heapq on (time, order added): adds and takes interleaved, with many
    items due at the same moment (the runner's samples, logins and breaks)."""
    rng = random.Random(seed)
    agenda: Agenda[int] = Agenda()
    reference: list[tuple[float, int]] = []
    taken: list[int] = []
    expected: list[int] = []
    for n in range(3000):
        if reference and rng.random() < 0.45:
            taken.append(agenda.pop())
            expected.append(heapq.heappop(reference)[1])
            continue
        t = float(rng.randrange(40)) if rng.random() < 0.5 else rng.uniform(0.0, 40.0)
        agenda.add(t, n)
        heapq.heappush(reference, (t, n))
        assert agenda.first_time() == reference[0][0]
    while agenda:
        taken.append(agenda.pop())
        expected.append(heapq.heappop(reference)[1])
    assert taken == expected
    assert not reference
