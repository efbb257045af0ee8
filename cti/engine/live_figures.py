"""The live figures (:class:`~queue_engine.live_stats.LiveStats`) observe the router's
actions after their effects are out, not before: on an arrival their two observations
(~14 us each warm, more in a process that sleeps between calls) were on the way from
the ring to the offer (issue 23).

Each input's actions wait here with the input's engine time, in the router's order, and
are observed in that order: at the loop's next turn (``call_soon``, scheduled after the
effects task's wake-up that the same input's actions scheduled, so after the offer is
sent), when many wait, and before anything reads the figures
(:attr:`DeferredFigures.stats`): a reader sees exactly what observing at once would
have shown. Outside a running loop they are observed at once."""

from __future__ import annotations

import asyncio
import logging

from cti import log_limits
from queue_engine.actions import Action
from queue_engine.live_stats import OBSERVED, LiveStats

log = logging.getLogger(__name__)

#: Inputs whose actions wait at most before they are observed in the router's turn.
MOST_WAITING = 256


class DeferredFigures:
    """Live figures fed the router's actions a little later, in order (module text)."""

    def __init__(self, stats: LiveStats) -> None:
        self._stats = stats
        self._waiting: list[tuple[list[Action], float]] = []

    @property
    def stats(self) -> LiveStats:
        """The figures, with every action decided so far observed."""
        if self._waiting:
            self.catch_up()
        return self._stats

    def later(self, actions: list[Action], now: float) -> None:
        """Observe ``actions``, decided at engine time ``now``, after those before them."""
        self._waiting.append((actions, now))
        if len(self._waiting) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.catch_up)
            except RuntimeError:  # no loop runs: at once
                self.catch_up()
        elif len(self._waiting) >= MOST_WAITING:
            self.catch_up()

    def catch_up(self) -> None:
        """Observe every action waiting, in order."""
        waiting, self._waiting = self._waiting, []
        observe = self._stats.observe
        for actions, now in waiting:
            for action in actions:
                if isinstance(action, OBSERVED):  # the others would be ignored: no call
                    try:
                        observe(action, now)
                    except Exception:  # the figures never stop the calls
                        log_limits.exception(log, "live figures: %r not observed; going on", action)
