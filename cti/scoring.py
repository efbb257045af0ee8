"""The customer value model: an RFM score from orders, with contacts as a small signal.

Pure: it takes what was measured (:class:`ValueInputs`, including the wall-clock
``scored_at``) and a :class:`ValueModel` (the ``[customers]`` settings), and returns the
value score 0..100, the segment, and the explanation the screen-pop shows. Reading the
orders and contacts from the store is :mod:`cti.customers.base`' job.

The formula (``docs/customers.md`` says it with an example), over the last
``window_days``:

* recency   ``R = 100 x 0.5 ** (days since the last order / recency_half_life_days)``
  (0 without orders; the last order counts even if it is older than the window)
* frequency ``F = 100 x min(1, ln(1 + orders) / ln(1 + frequency_cap))``
* monetary  ``M = 100 x min(1, ln(1 + spent) / ln(1 + monetary_cap))``
* engagement ``E = engagement_points x contacts / (contacts + engagement_half)``

``value = min(100, recency_weight x R + frequency_weight x F + monetary_weight x M + E)``,
rounded to 0.1, with the three weights adding up to 1. Logarithms, because spend and
order counts are heavy-tailed: the tenth order adds less than the second. The segment is
the first of the five whose floor the value reaches.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cti.models import Segment, ValueExplanation, ValueFactor

DAY_S = 86400.0

_Weight = Annotated[float, Field(ge=0.0, le=1.0)]


class ValueModel(BaseModel):
    """The ``[customers]`` settings: the value formula's constants and the segments."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window_days: float = Field(365.0, gt=0)
    recency_half_life_days: float = Field(90.0, gt=0)
    frequency_cap: int = Field(24, ge=1)
    monetary_cap: float = Field(50_000.0, gt=0)
    recency_weight: _Weight = 0.3
    frequency_weight: _Weight = 0.3
    monetary_weight: _Weight = 0.4
    engagement_points: float = Field(5.0, ge=0.0, le=100.0)
    engagement_half: float = Field(3.0, gt=0)
    segment_floors: tuple[float, float, float, float, float] = (90.0, 75.0, 50.0, 25.0, 0.0)
    segment_names: tuple[str, str, str, str, str] = (
        "platinum",
        "gold",
        "silver",
        "bronze",
        "basic",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ValueModel:
        weights = self.recency_weight + self.frequency_weight + self.monetary_weight
        if abs(weights - 1.0) > 1e-9:
            raise ValueError(
                "recency_weight + frequency_weight + monetary_weight must add up to 1,"
                f" not {weights:g}"
            )
        floors = self.segment_floors
        if any(a <= b for a, b in itertools.pairwise(floors)) or floors[-1] != 0:
            raise ValueError(
                f"segment_floors must fall from the most valuable segment to 0, got {list(floors)}"
            )
        if floors[0] > 100:
            raise ValueError(f"segment_floors must be within 0..100, got {list(floors)}")
        names = [n.strip() for n in self.segment_names]
        if not all(names) or len(set(names)) != len(names):
            raise ValueError(f"segment_names must be five different names, got {names}")
        return self

    def segment(self, value: float) -> Segment:
        """The segment (``value_rank`` 1..5) a value score falls in."""
        for segment, floor in zip(Segment, self.segment_floors, strict=True):
            if value >= floor:
                return segment
        return Segment.BASIC

    def label(self, segment: Segment) -> str:
        """The segment's configured name."""
        return self.segment_names[segment.value_rank - 1]


@dataclass(frozen=True, slots=True)
class ValueInputs:
    """What a customer's score is computed from, as measured at ``scored_at``."""

    scored_at: float
    """Wall-clock epoch seconds the figures were taken at."""
    last_order_at: float | None = None
    """The latest order ever (None: no orders)."""
    orders: int = 0
    """Orders within the window."""
    spent: float = 0.0
    """Their total amount."""
    contacts: int = 0
    """Interactions (calls, e-mails, chats) within the window."""


def value_of(inputs: ValueInputs, model: ValueModel) -> float:
    """The value score alone (what :func:`score` gives as ``value``), without the
    explanation: for rescoring a million customers."""
    recency, frequency, monetary, engagement = _terms(inputs, model)
    total = (
        model.recency_weight * recency
        + model.frequency_weight * frequency
        + model.monetary_weight * monetary
        + model.engagement_points * engagement
    )
    return min(100.0, round(total, 1))


def _terms(inputs: ValueInputs, model: ValueModel) -> tuple[float, float, float, float]:
    """Recency, frequency and monetary scores (0..100), and the engagement share (0..1)."""
    if inputs.last_order_at is None:
        recency = 0.0
    else:
        days = max(0.0, (inputs.scored_at - inputs.last_order_at) / DAY_S)
        recency = 100.0 * 0.5 ** (days / model.recency_half_life_days)
    frequency = 100.0 * min(1.0, math.log1p(inputs.orders) / math.log1p(model.frequency_cap))
    monetary = 100.0 * min(1.0, math.log1p(max(0.0, inputs.spent)) / math.log1p(model.monetary_cap))
    engagement = inputs.contacts / (inputs.contacts + model.engagement_half)
    return recency, frequency, monetary, engagement


def score(inputs: ValueInputs, model: ValueModel) -> ValueExplanation:
    """The value score, segment and explanation for ``inputs`` under ``model``."""
    window = f"{model.window_days:g} days"
    recency, frequency, monetary, engagement = _terms(inputs, model)
    if inputs.last_order_at is None:
        recency_detail = "no orders"
    else:
        days = max(0.0, (inputs.scored_at - inputs.last_order_at) / DAY_S)
        recency_detail = f"last order {days:.0f} days ago"
    factors = (
        ValueFactor(
            name="recency",
            detail=recency_detail,
            score=round(recency, 1),
            points=round(model.recency_weight * recency, 1),
        ),
        ValueFactor(
            name="frequency",
            detail=f"{inputs.orders} order{'s' * (inputs.orders != 1)} in {window}",
            score=round(frequency, 1),
            points=round(model.frequency_weight * frequency, 1),
        ),
        ValueFactor(
            name="monetary",
            detail=f"{max(0.0, inputs.spent):,.2f} spent in {window}",
            score=round(monetary, 1),
            points=round(model.monetary_weight * monetary, 1),
        ),
        ValueFactor(
            name="engagement",
            detail=f"{inputs.contacts} contact{'s' * (inputs.contacts != 1)} in {window}",
            score=round(100.0 * engagement, 1),
            points=round(model.engagement_points * engagement, 1),
        ),
    )
    value = value_of(inputs, model)
    segment = model.segment(value)
    return ValueExplanation(
        value=value,
        segment=segment,
        segment_label=model.label(segment),
        factors=factors,
        scored_at=inputs.scored_at,
    )
