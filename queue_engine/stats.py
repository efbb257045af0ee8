"""Call statistics from call detail records, defined as in docs/statistics.md.

* **Service level** (target T): calls answered within T / calls offered, leaving out
  short abandons (abandoned within ``short_abandon_s``) from both. The variant
  "answered within T / answered" is reported too, as ``service_level_of_answered``.
* **ASA**: mean wait of answered calls. **AHT**: talk + hold + wrap-up, averaged over
  answered calls (hold is inside talk: the agent stays Talking while its caller is held).
* **Abandon rate**: abandoned / offered (short abandons counted apart as well).
* **Occupancy**: busy time (talk, hold, wrap-up) / staffed time not in Not Ready.
  Reserved (an offer ringing) is not busy: it counts as available (idle) time, as
  Ready does. Logged-out time is not staffed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cti.models import AgentState, CallDetailRecord
from queue_engine.members import NOT_READY, READY, RESERVED, TALKING, WRAP_UP


@dataclass(slots=True)
class Tally:
    """Running figures over a set of finished calls."""

    sl_target_s: float = 20.0
    short_abandon_s: float = 5.0
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    answered_within_target: int = 0
    answered_wait_total_s: float = 0.0
    max_wait_s: float = 0.0
    answered_handle_total_s: float = 0.0
    """Talk + hold + wrap-up of the answered calls, summed (for AHT)."""

    def add(
        self,
        cdr: CallDetailRecord,
        *,
        sl_target_s: float | None = None,
        short_abandon_s: float | None = None,
    ) -> None:
        """Count one finished call. ``sl_target_s`` and ``short_abandon_s`` judge this
        call by other thresholds than the tally's own (a tally over several queues
        judges each call by its queue's)."""
        target = self.sl_target_s if sl_target_s is None else sl_target_s
        short = self.short_abandon_s if short_abandon_s is None else short_abandon_s
        wait = cdr.wait_s
        self.offered += 1
        self.max_wait_s = max(self.max_wait_s, wait)
        if cdr.outcome == "answered":
            self.answered += 1
            self.answered_wait_total_s += wait
            self.answered_handle_total_s += cdr.talk_s + cdr.wrap_up_s
            if wait <= target:
                self.answered_within_target += 1
        elif cdr.outcome == "abandoned":
            self.abandoned += 1
            if wait <= short:
                self.short_abandoned += 1

    @property
    def service_level(self) -> float | None:
        """Answered within target / offered, short abandons left out of both."""
        base = self.offered - self.short_abandoned
        return self.answered_within_target / base if base > 0 else None

    @property
    def service_level_of_answered(self) -> float | None:
        return self.answered_within_target / self.answered if self.answered else None

    @property
    def asa_s(self) -> float | None:
        return self.answered_wait_total_s / self.answered if self.answered else None

    @property
    def aht_s(self) -> float | None:
        """Mean talk + hold + wrap-up of answered calls."""
        return self.answered_handle_total_s / self.answered if self.answered else None

    @property
    def abandon_rate(self) -> float | None:
        return self.abandoned / self.offered if self.offered else None


BUSY_STATES = frozenset({TALKING, WRAP_UP})
"""Busy for occupancy: talk, (hold,) wrap-up."""
IDLE_STATES = frozenset({READY, RESERVED})
"""Staffed, not Not Ready and not busy: waiting for a call or being offered one."""


@dataclass(slots=True)
class AgentTime:
    """Agent seconds by kind, for occupancy. Logged-out time is not staffed: not kept."""

    busy_s: float = 0.0
    idle_s: float = 0.0
    not_ready_s: float = 0.0

    def add(self, state: AgentState, seconds: float) -> None:
        """Count ``seconds`` spent in ``state``."""
        if state in BUSY_STATES:
            self.busy_s += seconds
        elif state in IDLE_STATES:
            self.idle_s += seconds
        elif state is NOT_READY:
            self.not_ready_s += seconds

    @property
    def staffed_s(self) -> float:
        """Logged-in time: busy + idle + Not Ready."""
        return self.busy_s + self.idle_s + self.not_ready_s

    @property
    def occupancy(self) -> float | None:
        """Busy / staffed time not in Not Ready (busy + idle)."""
        available = self.busy_s + self.idle_s
        return self.busy_s / available if available > 0 else None


def tally(
    cdrs: Iterable[CallDetailRecord], *, sl_target_s: float = 20.0, short_abandon_s: float = 5.0
) -> Tally:
    t = Tally(sl_target_s, short_abandon_s)
    for cdr in cdrs:
        t.add(cdr)
    return t


def passed_over_beyond_bound(cdrs: Iterable[CallDetailRecord], bound_s: Mapping[str, float]) -> int:
    """How many calls were taken from their queue while a call of the same queue that
    arrived more than the queue's starvation bound earlier was still waiting.

    The router's priority rule makes this zero; the headless summary reports it so
    that a run shows it. O(n log n): a sweep in arrival order with a running maximum of
    the time each earlier call left the queue.
    """
    by_queue: dict[str, list[CallDetailRecord]] = {}
    for cdr in cdrs:
        by_queue.setdefault(cdr.queue, []).append(cdr)
    violations = 0
    for queue, calls in by_queue.items():
        bound = bound_s[queue]
        calls.sort(key=lambda c: c.arrived_at)
        latest_left = float("-inf")  # max left_queue_at over calls older than the window
        j = 0
        for b in calls:
            while j < len(calls) and calls[j].arrived_at < b.arrived_at - bound:
                latest_left = max(latest_left, calls[j].left_queue_at)
                j += 1
            if b.offered_at is not None and latest_left > b.offered_at:
                violations += 1
    return violations
