"""Rate-limited logging: the first occurrence written, repeats counted per interval."""

from __future__ import annotations

import logging

import pytest

from cti import log_limits
from cti.log_limits import LogLimiter

log = logging.getLogger("tests.log_limits")


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == log.name]


def test_a_flood_is_one_line_then_one_count_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    limiter = LogLimiter(interval_s=60.0)
    caplog.set_level(logging.ERROR, logger=log.name)
    for i in range(1800 * 130):  # 1,800 a second for 130 s
        limiter.log(log, logging.ERROR, "journal: %s", f"disk full {i}", now=i / 1800)
    assert _lines(caplog) == [
        "journal: disk full 0",
        "journal: disk full 107999 (repeated 107,999 times in the last 60 s)",
        "journal: disk full 215999 (repeated 108,000 times in the last 60 s)",
    ]
    assert limiter.flush(now=200.0) == 1
    assert _lines(caplog)[-1] == (
        "journal: disk full 233999 (repeated 18,000 times in the last 80 s)"
    )
    assert limiter.suppressed == 1800 * 130 - 1


def test_the_count_of_a_flood_that_stopped_is_flushed_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limiter = LogLimiter(interval_s=10.0)
    caplog.set_level(logging.WARNING, logger=log.name)
    for i in range(5):
        limiter.log(log, logging.WARNING, "line %s down", "sip", now=float(i))
    assert limiter.flush(now=9.0) == 0  # the interval is not over
    assert limiter.flush(now=10.0) == 1
    assert limiter.flush(now=30.0) == 0  # nothing more to say; the line is forgotten
    assert _lines(caplog) == ["line sip down", "line sip down (repeated 4 times in the last 10 s)"]
    # Quiet for an interval: the next occurrence is written at once.
    assert limiter.log(log, logging.WARNING, "line %s down", "sip", now=31.0) is True


def test_lines_are_told_apart_by_format_level_and_key(caplog: pytest.LogCaptureFixture) -> None:
    limiter = LogLimiter()
    caplog.set_level(logging.WARNING, logger=log.name)
    written = [
        limiter.log(log, logging.WARNING, "a %s", 1, now=0.0),
        limiter.log(log, logging.WARNING, "a %s", 2, now=1.0),  # same line: counted
        limiter.log(log, logging.ERROR, "a %s", 3, now=1.0),
        limiter.log(log, logging.WARNING, "b %s", 4, now=1.0),
        limiter.log(log, logging.WARNING, "a %s", 5, now=1.0, key="line-2"),
    ]
    assert written == [True, False, True, True, True]
    assert _lines(caplog) == ["a 1", "a 3", "b 4", "a 5"]


def test_tracebacks_only_with_the_written_line(caplog: pytest.LogCaptureFixture) -> None:
    limiter = LogLimiter(interval_s=1.0)
    caplog.set_level(logging.ERROR, logger=log.name)
    for i in range(3):
        try:
            raise OSError(28, "No space left on device")
        except OSError:
            limiter.log(log, logging.ERROR, "timers failed", now=i * 0.4, exc_info=True)
    limiter.flush(now=5.0)
    records = [r for r in caplog.records if r.name == log.name]
    assert [r.exc_info is not None for r in records] == [True, False]
    assert records[1].getMessage() == (
        "timers failed: OSError: [Errno 28] No space left on device"
        " (repeated 2 times in the last 5 s)"
    )


def test_tracked_lines_are_bounded_and_an_evicted_count_is_written(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limiter = LogLimiter(interval_s=60.0, max_lines=3)
    caplog.set_level(logging.ERROR, logger=log.name)
    limiter.log(log, logging.ERROR, "first", now=0.0)
    limiter.log(log, logging.ERROR, "first", now=0.5)
    for n in range(5):
        limiter.log(log, logging.ERROR, f"other {n}", now=1.0)
    assert len(limiter._windows) == 3
    assert "first (repeated 1 times in the last 60 s)" in _lines(caplog)


def test_disabled_levels_cost_nothing_and_are_not_counted() -> None:
    limiter = LogLimiter()
    quiet = logging.getLogger("tests.log_limits.quiet")
    quiet.setLevel(logging.CRITICAL)
    assert limiter.log(quiet, logging.ERROR, "x", now=0.0) is False
    assert limiter.suppressed == 0


def test_module_functions_use_the_process_limiter(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=log.name)
    before = log_limits.limiter().suppressed
    assert log_limits.warning(log, "module %s", "x", key="test-module") is True
    assert log_limits.warning(log, "module %s", "y", key="test-module") is False
    assert log_limits.limiter().suppressed == before + 1
    records = [r for r in caplog.records if r.name == log.name]
    assert records[0].filename == "test_log_limits.py"  # the call site, not the helper
