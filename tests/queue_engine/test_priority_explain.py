"""``explain`` keeps each queue configuration's figures' text once made (docs/acd.md
§13): its lines are the plain formula's, for any figures, values and waits, NaN and the
clamp included, and for queues whose figures differ only in their sign (0.0 and -0.0,
equal as numbers, are written apart)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from cti.models import QueueConfig
from queue_engine.priority import clamp_value, explain


def _plain(queue: QueueConfig, value: float, waited_s: float) -> str:
    v = clamp_value(value)
    return (
        f"rank {queue.priority + queue.value_weight * v + queue.aging_rate * waited_s:.0f} = "
        f"queue {queue.priority:g} + value {v:.0f} x {queue.value_weight:g} "
        f"+ waited {int(waited_s)}s x {queue.aging_rate:g}"
    )


figures = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(
    priority=figures,
    weight=st.floats(min_value=0.0, max_value=1e3),
    aging=st.floats(min_value=1e-6, max_value=1e3),
    value=st.floats(allow_nan=True, allow_infinity=False, width=32),
    waited=st.floats(min_value=0.0, max_value=1e7),
)
def test_explain_says_what_the_plain_formula_says(
    priority: float, weight: float, aging: float, value: float, waited: float
) -> None:
    try:
        queue = QueueConfig(name="q", priority=priority, value_weight=weight, aging_rate=aging)
    except ValueError:
        return  # figures the configuration refuses
    assert explain(queue, value, waited) == _plain(queue, value, waited)
    assert explain(queue, value, waited) == _plain(queue, value, waited)  # the kept text


def test_queues_whose_figures_differ_in_sign_alone_read_as_their_own() -> None:
    zero = QueueConfig(name="a", priority=0.0)
    minus = QueueConfig(name="b", priority=-0.0)
    assert math.copysign(1.0, minus.priority) == -1.0
    for queue in (zero, minus, zero):
        assert explain(queue, 10.0, 3.0) == _plain(queue, 10.0, 3.0)
