"""Every length a message field declares is the length it accepts.

A field's own ``Field(max_length=...)`` on a type that carries a validator was dropped
by pydantic when the type put its length before the validator (``OneLine``,
``MultiLine``): a desk could send a 40-character-limited number of any length up to the
type's own limit. This walks every command and event and checks each declared limit."""

from __future__ import annotations

import inspect

import annotated_types
import pytest
from pydantic import BaseModel, ValidationError

from cti import commands, events


def _models() -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}
    for module in (commands, events):
        for _name, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseModel) and cls.__module__ == module.__name__:
                found[f"{module.__name__}.{cls.__name__}"] = cls
    return [found[k] for k in sorted(found)]


def _limits() -> list[tuple[type[BaseModel], str, int]]:
    out = []
    for model in _models():
        for name, field in model.model_fields.items():
            lengths = [
                m.max_length for m in field.metadata if isinstance(m, annotated_types.MaxLen)
            ]
            if lengths and field.annotation is str:
                out.append((model, name, min(lengths)))
    return out


LIMITS = _limits()
TOO_LONG = {"string_too_long", "too_long"}
"""pydantic's names for it (the second when the limit comes after a validator)."""


def test_the_walk_finds_the_limited_fields() -> None:
    names = {(m.__name__, f) for m, f, _ in LIMITS}
    assert ("ScheduleCallback", "number") in names
    assert ("SetNotReady", "reason") in names
    assert len(LIMITS) > 20


@pytest.mark.security
@pytest.mark.parametrize(("model", "field", "limit"), LIMITS,
                         ids=[f"{m.__name__}.{f}" for m, f, _ in LIMITS])  # fmt: skip
def test_a_field_refuses_one_character_more_than_its_limit(
    model: type[BaseModel], field: str, limit: int
) -> None:
    assert _errors(model, field, "x" * (limit + 1)) & TOO_LONG
    # Exactly the limit may fail a pattern or a check of its own, never the length.
    assert not _errors(model, field, "x" * limit) & TOO_LONG


def _errors(model: type[BaseModel], field: str, value: str) -> set[str]:
    """The kinds of error validating ``value`` into ``field`` alone gives."""
    try:
        model.__pydantic_validator__.validate_assignment(model.model_construct(), field, value)
    except ValidationError as refused:
        return {str(e["type"]) for e in refused.errors()}
    return set()
