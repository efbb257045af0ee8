"""How a waiting call is ranked, and why no caller starves.

A call waiting in queue ``q`` has, at time ``t``, the rank::

    rank(t) = q.priority + q.value_weight * value + q.aging_rate * (t - arrived_at)

Higher rank is served first; equal ranks go by arrival. Within one queue the aging
rate is shared, so ``rank(t) = fixed_key + q.aging_rate * t`` with::

    fixed_key = q.priority + q.value_weight * value - q.aging_rate * arrived_at

The order of two waiting calls never changes as time passes, so a plain heap on
``fixed_key`` keeps the queue in rank order at O(log n) per call, with no re-sorting.

**Starvation bound.** Value scores lie in 0..100. Take caller A of value ``vA`` who
arrived at ``tA`` and caller B of value ``vB`` who arrived at ``tB > tA``. At any
moment ``rank(A) - rank(B) = w * (vA - vB) + a * (tB - tA) >= -100 * w + a * (tB - tA)``,
which is positive once ``tB - tA > 100 * w / a``. So no caller is ever served after a
caller who arrived more than ``starvation_bound_s = 100 * value_weight / aging_rate``
seconds later: that is the most extra waiting that customer value can cost anyone.
"""

from __future__ import annotations

from typing import Final

from cti.models import QueueConfig

#: The value scale: customer value scores lie in [VALUE_MIN, VALUE_MAX].
VALUE_MIN: Final = 0.0
VALUE_MAX: Final = 100.0


def clamp_value(value: float) -> float:
    """A value score forced into the scale (NaN counts as the lowest)."""
    if value != value:  # NaN
        return VALUE_MIN
    return min(VALUE_MAX, max(VALUE_MIN, value))


def fixed_key(queue: QueueConfig, value: float, arrived_at: float) -> float:
    """The time-independent part of the rank; larger is served first."""
    return key_of(queue.priority, queue.value_weight, queue.aging_rate, value, arrived_at)


def key_of(
    priority: float, value_weight: float, aging_rate: float, value: float, arrived_at: float
) -> float:
    """:func:`fixed_key` from the queue's three numbers (the router keeps them at hand)."""
    return priority + value_weight * clamp_value(value) - aging_rate * arrived_at


def rank(queue: QueueConfig, value: float, arrived_at: float, now: float) -> float:
    """The rank of a call at ``now``: fixed key plus the aging accrued so far."""
    return fixed_key(queue, value, arrived_at) + queue.aging_rate * now


def starvation_bound_s(queue: QueueConfig) -> float:
    """The longest extra wait that customer value can cost a caller in ``queue``."""
    return (VALUE_MAX - VALUE_MIN) * queue.value_weight / queue.aging_rate


#: The text of each queue's three figures in :func:`explain`, by the configuration
#: (its id, the configuration kept beside: an id is not reused while it lives). Formatting
#: a float with ``g`` was some 40% of a line made at every offer (the screen-pop).
_TERMS: Final[dict[int, tuple[QueueConfig, str, str, str]]] = {}
_TERMS_MAX: Final = 1024


def explain(queue: QueueConfig, value: float, waited_s: float) -> str:
    """One line for the screen-pop: why this call has the priority it has."""
    v = clamp_value(value)
    priority, weight, aging = queue.priority, queue.value_weight, queue.aging_rate
    terms = _TERMS.get(id(queue))
    if terms is None or terms[0] is not queue:
        if len(_TERMS) >= _TERMS_MAX:
            _TERMS.clear()  # bounded: configurations change seldom
        terms = (
            queue,
            f" = queue {priority:g} + value ",
            f" x {weight:g} + waited ",
            f"s x {aging:g}",
        )
        _TERMS[id(queue)] = terms
    rank_now = priority + weight * v + aging * waited_s
    return f"rank {rank_now:.0f}{terms[1]}{v:.0f}{terms[2]}{int(waited_s)}{terms[3]}"
