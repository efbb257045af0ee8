"""Every test here runs in a network namespace of its own (only ``lo``): the softphones
bind ``0.0.0.0`` and ``[::]`` whatever they are told (see tests/phones.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.phones import isolated_network


@pytest.fixture(autouse=True)
def _isolated_network() -> Iterator[None]:
    with isolated_network():
        yield
