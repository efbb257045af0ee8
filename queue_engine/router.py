"""The router: queues, agents, skills and the matching between them. Sans-I/O.

One way in: :meth:`Router.handle` applies one input (:mod:`queue_engine.inputs`) at
``now`` (monotonic seconds, never read from a clock) and returns the
:mod:`queue_engine.actions` its shell must carry out. An input the state does not allow
raises :class:`~cti.errors.RoutingError` and changes nothing. Everything else public
here only reads. Because the router is deterministic and its inputs are data, the
sequence of ``(now, input)`` pairs is its state: the engine journals it and replays it.

The parts, each a module, from the bottom: :mod:`~queue_engine.router_state` (the
records kept per call, agent and queue), :mod:`~queue_engine.transitions` (the agent
and call state machines as tables), :mod:`~queue_engine.router_core` (state, pools,
heaps, strategies, records), :mod:`~queue_engine.matching` (where a call goes next,
what a free agent takes), then the inputs by concern: :mod:`~queue_engine.call_control`
(hold, mute, transfers, consultations, dial), :mod:`~queue_engine.agent_desk`,
:mod:`~queue_engine.call_desk` (calls, callbacks, queue configuration) and
:mod:`~queue_engine.timers`.

The rules (ranking by fixed keys on per-ring heaps, choosing a call for an agent and an
agent for a call, exits on every way back into a queue, personal callbacks) and the
invariants the property tests check are in docs/acd.md ("The router's rules").
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from itertools import repeat
from typing import Any, Final

from cti.errors import RoutingError
from cti.models import AgentConfig, CallerInfo, QueueConfig
from queue_engine import inputs
from queue_engine.actions import Action, ConsultState
from queue_engine.inputs import AnyInput
from queue_engine.members import LOGGED_OUT, READY
from queue_engine.priority import starvation_bound_s
from queue_engine.router_core import MISSED_OFFER, NOT_READY_AFTER_CALL, REJECTED_OFFER
from queue_engine.router_state import (
    BUSY,
    PRESENT,
    AgentSnapshot,
    QueueSnapshot,
    WaitEstimate,
    dialling,
)
from queue_engine.timers import Timers
from queue_engine.transitions import CallPhase

#: Makes a named tuple from its class and a tuple of its fields, in C (estimated_waits).
_NEW_TUPLE: Final[Callable[[type[WaitEstimate], tuple[str, int, float]], Any]] = tuple.__new__

# The inputs of every call's life and of the routing decisions, handled by a direct call
# in Router.handle: compiled, a native call, where the table's bound method is a Python
# call (its arguments parsed, ``now`` boxed and unboxed: some 300 instructions an
# input, docs/acd.md §13). ``Final``: a C static, not a module attribute looked up.
_TIME_PASSES: Final = inputs.TimePasses
_CALL_ARRIVES: Final = inputs.CallArrives
_ACCEPTS: Final = inputs.AgentAccepts
_HANGS_UP: Final = inputs.AgentHangsUp
_FINISHES_WRAP_UP: Final = inputs.AgentFinishesWrapUp
_GOES_READY: Final = inputs.AgentGoesReady
_GOES_NOT_READY: Final = inputs.AgentGoesNotReady
_CALLER_HANGS_UP: Final = inputs.CallerHangsUp
#: What :meth:`Router.handle` calls directly (each also in the table, the same method).
DIRECT_INPUTS: Final = (
    _TIME_PASSES,
    _CALL_ARRIVES,
    _ACCEPTS,
    _HANGS_UP,
    _FINISHES_WRAP_UP,
    _GOES_READY,
    _GOES_NOT_READY,
    _CALLER_HANGS_UP,
)

__all__ = [
    "DIRECT_INPUTS",
    "MISSED_OFFER",
    "NOT_READY_AFTER_CALL",
    "REJECTED_OFFER",
    "AgentSnapshot",
    "CallPhase",
    "QueueSnapshot",
    "Router",
    "WaitEstimate",
]


class Router(Timers):
    """The automatic call distributor's core (see the module docstring)."""

    def __init__(
        self,
        queues: Iterable[QueueConfig],
        *,
        max_missed_offers: int = 1,
        agents: Iterable[AgentConfig] = (),
        seed: int = 0,
    ) -> None:
        super().__init__(queues, max_missed_offers=max_missed_offers, seed=seed)
        self._handlers = {
            **self._agent_inputs(),
            **self._call_inputs(),
            **self._call_control_inputs(),
            **self._timer_inputs(),
        }
        for agent in agents:
            self._configure_agent(agent, 0.0)

    def handle(self, event: AnyInput, now: float) -> list[Action]:
        """Apply one input (see :mod:`queue_engine.inputs`) at ``now``."""
        kind = type(event)
        # ``type(event) is``: the table's exact type, and narrowed without a cast (a
        # call of typing.cast, interpreted).
        if type(event) is _TIME_PASSES:
            return self._advance(now)
        if type(event) is _CALL_ARRIVES:
            return self._arrive(event, now)
        if type(event) is _ACCEPTS:
            return self._accept(event, now)
        if type(event) is _HANGS_UP:
            return self._hang_up(event, now)
        if type(event) is _FINISHES_WRAP_UP:
            return self._finish_own_wrap_up(event, now)
        if type(event) is _GOES_READY:
            return self._go_ready(event, now)
        if type(event) is _GOES_NOT_READY:
            return self._pause(event, now)
        if type(event) is _CALLER_HANGS_UP:
            return self._caller_hung_up(event, now)
        step = self._handlers.get(kind)
        if step is None:
            raise RoutingError(f"unknown router input {event!r}")
        return step(event, now)

    # --- configuration ---------------------------------------------------------------

    @property
    def queue_names(self) -> list[str]:
        return list(self._queues)

    def queue_config(self, name: str) -> QueueConfig:
        return self._queue(name).config

    def starvation_bound_s(self, queue: str) -> float:
        return starvation_bound_s(self._queue(queue).config)

    # --- views -----------------------------------------------------------------------

    def snapshot(self, queue: str, now: float) -> QueueSnapshot:
        q = self._queue(queue)
        while q.by_arrival and not self._is_queued(q.by_arrival[0][2], queue):
            heapq.heappop(q.by_arrival)
        longest = now - q.by_arrival[0][0] if q.by_arrival else 0.0
        states = [self._agents[a].state for a in q.members]
        return QueueSnapshot(
            queue=queue,
            waiting=q.waiting,
            longest_wait_s=max(0.0, longest),
            agents_ready=sum(s is READY for s in states),
            agents_busy=sum(s in BUSY for s in states),
            agents_logged_in=sum(s is not LOGGED_OUT for s in states),
        )

    def agent(self, agent_id: str) -> AgentSnapshot:
        a = self._agent(agent_id)
        return AgentSnapshot(
            a.agent_id, a.state, a.reason, a.since, a.call_id, a.deadline, a.calls_handled,
            a.muted,
        )  # fmt: skip

    def waiting(self, queue: str) -> int:
        """How many calls wait in ``queue`` (O(1))."""
        return self._queue(queue).waiting

    def agent_ids(self) -> list[str]:
        return list(self._agents)

    def agent_queues(self, agent_id: str) -> list[str]:
        return list(self._agent(agent_id).queues)

    def has_agent(self, agent_id: str) -> bool:
        return agent_id in self._agents

    def call_caller(self, call_id: str) -> CallerInfo:
        return self._call(call_id).caller

    def call_queue(self, call_id: str) -> str:
        return self._call(call_id).queue

    def call_phase(self, call_id: str) -> CallPhase:
        return self._call(call_id).phase

    def call_agent(self, call_id: str) -> str | None:
        """The agent the call is offered to (one), talking with, or wrapping up."""
        return self._call(call_id).current

    def call_consult(self, call_id: str) -> tuple[str | None, ConsultState]:
        """The agent consulted about the call and how far (ringing, talking, conference)."""
        consult = self._call(call_id).consult
        return (None, "") if consult is None else (consult.agent, consult.state)

    def call_held(self, call_id: str) -> bool:
        """Whether the caller is on hold (by its agent, or for a consultation)."""
        return self._call(call_id).held

    def call_arrived_at(self, call_id: str) -> float:
        return self._call(call_id).arrived_at

    def call_kind(self, call_id: str) -> str:
        return self._call(call_id).kind

    def call_dialling(self, call_id: str) -> bool:
        """Whether the call is an agent's dial still ringing (not answered yet)."""
        return dialling(self._call(call_id))

    def call_priority(self, call_id: str, now: float) -> tuple[float, bool, float]:
        """A call's priority (its own, set by a supervisor, else its queue's), whether it
        is its own, and its rank at ``now`` as the queue orders it (higher: sooner)."""
        call = self._call(call_id)
        q = self._queue(call.queue)
        own = call.priority is not None
        rank = call.key + q.aging_rate * now
        return (call.priority if call.priority is not None else q.priority), own, rank

    def call_ring(self, call_id: str) -> int:
        return self._call(call_id).ring

    def offered_to(self, call_id: str) -> list[str]:
        return sorted(self._call(call_id).offered_to)

    def waiting_in_order(self, queue: str) -> list[str]:
        """Waiting call ids of ``queue``, best first (for the wallboard and tests).

        Reads only this queue's heaps: O(w log w) for w calls waiting here.
        """
        return self._waiting_in_order(queue)

    def estimated_waits(
        self, queue: str, now: float, limit: int | None = None
    ) -> list[WaitEstimate]:
        """Position and estimated further wait of every waiting call of ``queue`` (the
        first ``limit`` of them if given).

        Position 1 is served next. With ``r`` Ready agents the first ``r`` wait nothing;
        after them, each place costs the queue's average handle time divided by the
        agents present (Ready or busy): ``wait(p) = (p - r) * AHT / n``. The average
        handle time starts at ``expected_aht_s`` and follows finished calls.

        Without ``limit``, O(w log w) for w calls waiting. With it (a status
        publication), O(limit + changes since the last such read): the order comes
        from the queue's front kept between reads, the counts from those kept on every
        change (the Ready agents are those in the queue's pools).
        """
        q = self._queue(queue)
        if limit is None:
            order = self._waiting_in_order(queue)
            states = [self._agents[a].state for a, ring in q.members.items() if ring is not None]
            present = sum(s in PRESENT for s in states)
            ready = sum(s is READY for s in states)
        else:
            order = self._first_waiting(q, limit)
            present = q.present
            ready = sum(len(pool.entries) for pool in q.pools)
        n = len(order)
        if present == 0:
            waits = [float("inf")] * n
        else:
            # max(0, p - r) * AHT / n: the first r places all get 0 * AHT / n, made once.
            aht, head = q.aht, min(ready, n)
            waits = [0 * aht / present] * head
            waits += [(i - ready) * aht / present for i in range(head + 1, n + 1)]
        # WaitEstimate's own constructor is a Python function (namedtuple's __new__);
        # tuple.__new__ through map makes the same named tuples in C, about half the cost
        # of a publication's 200 estimates a queue.
        made: list[WaitEstimate] = list(
            map(_NEW_TUPLE, repeat(WaitEstimate), zip(order, range(1, n + 1), waits, strict=True))
        )
        return made

    def active_call_ids(self) -> list[str]:
        """Calls not yet finished: scheduled, waiting, offered, talking or in wrap-up."""
        return list(self._calls)
