"""Rate-limited logging: a line that repeats is logged once, then counted.

A loop that fails on every turn (a full disk under the timer loop, a line whose socket
is gone, a broker that refuses a publish) must not write a traceback per turn: that
filled 100 MB of log in 55 s. Each log line (its logger, level and format string, plus
an optional ``key`` such as a line's name) is logged the first time; further
occurrences within ``interval_s`` are only counted, and when the interval is over the
last one is logged with the count::

    journal: not written: disk full (repeated 1,234 times in the last 60 s)

A line that stays quiet for a whole interval is logged at once again when it next
occurs. The counting is sans-I/O (:class:`LogLimiter` takes ``now``); the module-level
:func:`error`, :func:`warning`, :func:`exception` and :func:`flush` use one limiter per
process on the monotonic clock, so a call site changes by one line::

    log.exception("line %s: timers failed", name)
    log_limits.exception(log, "line %s: timers failed", name)

Counts of a flood that stopped are written by :func:`flush`, which the engine calls
with every status publication.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass

#: Seconds over which repeats of one line are counted before their count is logged.
INTERVAL_S = 60.0
#: Log lines tracked at once; the longest quiet goes first (its count is logged).
MAX_LINES = 1024

_Key = tuple[str, int, str, str]


@dataclass(slots=True)
class _Window:
    logger: logging.Logger
    level: int
    since: float
    repeats: int = 0
    last: str = ""


class LogLimiter:
    """Counts repeats of log lines; see the module docstring. Not thread-safe: use it
    from one thread (the event loop's)."""

    def __init__(self, interval_s: float = INTERVAL_S, max_lines: int = MAX_LINES) -> None:
        self.interval_s = interval_s
        self.max_lines = max_lines
        self._windows: OrderedDict[_Key, _Window] = OrderedDict()
        self.suppressed = 0
        """Occurrences counted instead of logged, since this limiter was made."""

    def log(
        self,
        logger: logging.Logger,
        level: int,
        msg: str,
        *args: object,
        now: float,
        key: str = "",
        exc_info: bool = False,
        stacklevel: int = 2,
    ) -> bool:
        """Log ``msg % args`` unless it repeats within the interval; True if written now."""
        if not logger.isEnabledFor(level):
            return False
        line = (logger.name, level, msg, key)
        window = self._windows.get(line)
        if window is not None and now - window.since >= self.interval_s:
            self._close(line, window, now)
            window = self._windows.get(line)  # still there if it had repeats
        if window is None:
            self._windows[line] = _Window(logger, level, since=now)
            self._evict(now)
            logger.log(level, msg, *args, exc_info=exc_info, stacklevel=stacklevel)
            return True
        window.repeats += 1
        window.last = _render(msg, args)
        if exc_info and (exc := sys.exc_info()[1]) is not None:
            window.last += f": {type(exc).__name__}: {exc}"
        self.suppressed += 1
        self._windows.move_to_end(line)
        return False

    def flush(self, now: float) -> int:
        """Log the count of every line whose interval is over; return how many were logged."""
        written = 0
        for line, window in list(self._windows.items()):
            if now - window.since >= self.interval_s:
                written += window.repeats > 0
                self._close(line, window, now)
        return written

    def _close(self, line: _Key, window: _Window, now: float) -> None:
        """End ``window``: log its count if it had repeats (and keep counting, as the
        flood may go on), else forget it (the line's next occurrence is logged at once)."""
        if window.repeats == 0:
            del self._windows[line]
            return
        window.logger.log(
            window.level,
            "%s (repeated %s times in the last %.0f s)",
            window.last,
            f"{window.repeats:,}",
            now - window.since,
        )
        window.since, window.repeats = now, 0

    def _evict(self, now: float) -> None:
        while len(self._windows) > self.max_lines:
            line, window = next(iter(self._windows.items()))
            window.since = now - self.interval_s  # its count goes out now
            self._close(line, window, now)
            self._windows.pop(line, None)


def _render(msg: str, args: tuple[object, ...]) -> str:
    try:
        return msg % args if args else msg
    except (TypeError, ValueError):
        return f"{msg} {args!r}"


_LIMITER = LogLimiter()


def limiter() -> LogLimiter:
    """The process's limiter behind the module-level functions."""
    return _LIMITER


def error(logger: logging.Logger, msg: str, *args: object, key: str = "") -> bool:
    """``logger.error(msg, *args)``, rate-limited."""
    return _LIMITER.log(
        logger, logging.ERROR, msg, *args, now=time.monotonic(), key=key, stacklevel=3
    )


def warning(logger: logging.Logger, msg: str, *args: object, key: str = "") -> bool:
    """``logger.warning(msg, *args)``, rate-limited."""
    return _LIMITER.log(
        logger, logging.WARNING, msg, *args, now=time.monotonic(), key=key, stacklevel=3
    )


def exception(logger: logging.Logger, msg: str, *args: object, key: str = "") -> bool:
    """``logger.exception(msg, *args)``, rate-limited (the traceback only when written)."""
    return _LIMITER.log(
        logger,
        logging.ERROR,
        msg,
        *args,
        now=time.monotonic(),
        key=key,
        exc_info=True,
        stacklevel=3,
    )


def flush() -> int:
    """Log the counts of the process's lines whose interval is over."""
    return _LIMITER.flush(time.monotonic())
