"""Fixtures for every test."""

from __future__ import annotations

import pytest

from cti import log_limits


@pytest.fixture(autouse=True)
def _fresh_log_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with the process's rate-limited log lines unseen: a line an
    earlier test wrote must not be counted instead of logged in this one."""
    monkeypatch.setattr(log_limits, "_LIMITER", log_limits.LogLimiter())
