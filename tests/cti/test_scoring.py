"""The value model: the RFM formula, its explanation, segment boundaries, settings."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from pydantic import ValidationError

from cti.config import load_config
from cti.errors import ConfigError
from cti.models import Segment
from cti.scoring import DAY_S, ValueInputs, ValueModel, score, value_of

pytestmark = pytest.mark.customers

NOW = 1_767_600_000.0
MODEL = ValueModel()


def inputs(
    days_ago: float | None = None, orders: int = 0, spent: float = 0.0, contacts: int = 0
) -> ValueInputs:
    last = None if days_ago is None else NOW - days_ago * DAY_S
    return ValueInputs(
        scored_at=NOW, last_order_at=last, orders=orders, spent=spent, contacts=contacts
    )


def test_no_orders_no_contacts_is_zero_and_basic() -> None:
    explained = score(inputs(), MODEL)
    assert (explained.value, explained.segment, explained.segment_label) == (
        0.0,
        Segment.BASIC,
        "basic",
    )
    assert [f.points for f in explained.factors] == [0.0, 0.0, 0.0, 0.0]
    assert explained.factors[0].detail == "no orders"


def test_the_best_customer_scores_100_and_is_platinum() -> None:
    explained = score(inputs(0, MODEL.frequency_cap, MODEL.monetary_cap, 10), MODEL)
    assert explained.value == 100.0
    assert explained.segment is Segment.PLATINUM


def test_each_factor_follows_the_documented_formula() -> None:
    explained = score(inputs(90, 5, 1000.0, 3), MODEL)
    factors = {f.name: f for f in explained.factors}
    assert factors["recency"].score == 50.0  # one half-life
    assert factors["frequency"].score == round(100 * math.log(6) / math.log(25), 1)
    assert factors["monetary"].score == round(100 * math.log(1001) / math.log(50001), 1)
    assert factors["engagement"].points == 2.5  # contacts == engagement_half: half the points
    expected = 0.3 * 50 + 0.3 * 100 * math.log(6) / math.log(25)
    expected += 0.4 * 100 * math.log(1001) / math.log(50001) + 2.5
    assert explained.value == round(expected, 1)
    assert abs(sum(f.points for f in explained.factors) - explained.value) < 0.3
    assert explained.summary.startswith(f"silver ({explained.value:.1f}): monetary")


@pytest.mark.parametrize(
    ("better", "worse"),
    [
        (inputs(1, 3, 900.0), inputs(100, 3, 900.0)),  # more recent
        (inputs(10, 6, 900.0), inputs(10, 2, 900.0)),  # more frequent
        (inputs(10, 3, 9000.0), inputs(10, 3, 900.0)),  # more spent
        (inputs(10, 3, 900.0, 5), inputs(10, 3, 900.0, 0)),  # more contacts
    ],
)
def test_more_of_any_factor_never_scores_less(better: ValueInputs, worse: ValueInputs) -> None:
    assert value_of(better, MODEL) > value_of(worse, MODEL)


def test_value_of_equals_the_explained_value() -> None:
    for case in (inputs(), inputs(3, 1, 10.0), inputs(400, 0, 0.0, 2), inputs(0, 99, 1e9, 99)):
        assert value_of(case, MODEL) == score(case, MODEL).value


def test_refunds_and_future_orders_do_not_break_the_score() -> None:
    assert value_of(inputs(-5, 1, -300.0), MODEL) >= 0.0
    assert score(inputs(-5, 1, -300.0), MODEL).factors[0].score == 100.0


@pytest.mark.parametrize(
    ("value", "segment"),
    [
        (100.0, Segment.PLATINUM),
        (90.0, Segment.PLATINUM),
        (89.9, Segment.GOLD),
        (75.0, Segment.GOLD),
        (74.9, Segment.SILVER),
        (50.0, Segment.SILVER),
        (49.9, Segment.BRONZE),
        (25.0, Segment.BRONZE),
        (24.9, Segment.BASIC),
        (0.0, Segment.BASIC),
    ],
)
def test_default_segment_boundaries(value: float, segment: Segment) -> None:
    assert MODEL.segment(value) is segment
    assert MODEL.segment(value) is Segment.for_value(value)  # same as the router's defaults


def test_boundaries_and_names_are_configurable(tmp_path: Path) -> None:
    path = tmp_path / "cti.toml"
    path.write_text(
        "[customers]\nsegment_floors = [80.0, 60.0, 40.0, 10.0, 0.0]\n"
        'segment_names = ["钻石", "黄金", "白银", "青铜", "普通"]\n',
        encoding="utf-8",
    )
    model = load_config(path).customers
    assert model.segment(80.0) is Segment.PLATINUM
    assert model.segment(79.9) is Segment.GOLD
    assert model.segment(10.0) is Segment.BRONZE
    assert model.segment(9.9) is Segment.BASIC
    assert model.label(Segment.GOLD) == "黄金"
    assert score(inputs(0, 24, 50_000.0), model).segment_label == "钻石"


@pytest.mark.parametrize(
    ("toml", "fragment"),
    [
        ("recency_weight = 0.5\n", "add up to 1"),
        ("segment_floors = [90.0, 95.0, 50.0, 25.0, 0.0]\n", "segment_floors must fall"),
        ("segment_floors = [90.0, 75.0, 50.0, 25.0, 5.0]\n", "segment_floors must fall"),
        ("segment_floors = [90.0, 75.0, 50.0]\n", "customers.segment_floors"),
        ('segment_names = ["a", "a", "b", "c", "d"]\n', "five different names"),
        ("monetary_cap = 0\n", "customers.monetary_cap"),
        ("colour = 1\n", "customers.colour"),
    ],
)
def test_bad_settings_name_the_key(tmp_path: Path, toml: str, fragment: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[customers]\n" + toml, encoding="utf-8")
    with pytest.raises(ConfigError, match=fragment):
        load_config(path)


def test_model_rejects_bad_values_directly() -> None:
    with pytest.raises(ValidationError):
        ValueModel(window_days=0)
