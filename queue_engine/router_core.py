"""The router's state and its primitive steps: lookups, timers, agents' states and
Ready pools, the queues' heaps, choosing agents by strategy, and call records.

Nothing here decides where a call goes next (:mod:`queue_engine.matching` does); the
steps here only keep the state consistent (counts, pools, heaps, timers).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable
from typing import Final

from cti.errors import RoutingError
from cti.models import CallDetailRecord, QueueConfig, new_call_record
from queue_engine.actions import Action, AgentStateSet, RecordCall, WithdrawOffer, WithdrawReason
from queue_engine.members import (
    BEST_PROFICIENCY,
    FEWEST_CALLS,
    LEAST_TALK_TIME,
    LOGGED_OUT,
    NOT_READY,
    RANDOM,
    READY,
    RESERVED,
    RING_ALL,
    ROUND_ROBIN,
    TALKING,
)
from queue_engine.priority import key_of
from queue_engine.router_state import (
    BISECT_LEFT,
    COMPILED,
    INSORT,
    PRESENT,
    AgentEntry,
    CallEntry,
    HeapEntry,
    PoolEntry,
    QueueEntry,
    ReadyPool,
    TimerLane,
    heap_pop,
    heap_push,
)
from queue_engine.transitions import (
    CALL_FINISH,
    AgentMove,
    CallMove,
    CallPhase,
    agent_next,
    call_next,
)

#: Reason given when an agent goes Not Ready on their own after missing offers.
MISSED_OFFER: Final = "missed offer"
REJECTED_OFFER: Final = "rejected offer"
NOT_READY_AFTER_CALL: Final = "not ready after call"

_FINISHED_MEMORY: Final = 100_000
#: heapq's functions as constants: compiled, ``heapq.heappush`` is a module attribute
#: looked up on every call, a ``Final`` a C static.
HEAP_PUSH: Final = heapq.heappush
HEAP_POP: Final = heapq.heappop
#: At most this many timer lanes (each is looked at for every timer): the agents'
#: deadlines come in a run per fixed delay (offer, wrap-up); more runs than lanes go
#: to the heap.
_MAX_LANES: Final = 4
Timer = tuple[float, int, str, str, int]
"""The heap's timer: (when, seq, kind, agent or call id, token)."""
#: A queue's front (its first waiting calls, kept for the status publications) longer
#: than this is cut to half (pushes of calls better than all but these made it grow).
_FRONT_MAX: Final = 2048


class RouterCore:
    """State and primitive steps shared by the router's parts."""

    def __init__(
        self, queues: Iterable[QueueConfig], *, max_missed_offers: int = 1, seed: int = 0
    ) -> None:
        self._queues: dict[str, QueueEntry] = {q.name: QueueEntry(q) for q in queues}
        if not self._queues:
            raise RoutingError("the router needs at least one queue")
        if max_missed_offers < 1:
            raise RoutingError(f"max_missed_offers must be at least 1, got {max_missed_offers}")
        self.max_missed_offers = max_missed_offers
        self._agents: dict[str, AgentEntry] = {}
        self._calls: dict[str, CallEntry] = {}
        """Calls not yet finished. Heap entries of calls no longer here are stale."""
        self._finished: set[str] = set()
        """Recently finished call ids (the last ``_FINISHED_MEMORY``), so that a repeated
        hang-up is recognised. A set and the ids in the order finished (each finishes
        once: a known id is refused), not an ``OrderedDict``: compiled, ``in`` on one is
        the generic protocol and a store keeps a linked list too."""
        self._finished_order: list[str] = []
        self._finished_head = 0
        """Index in ``_finished_order`` of the oldest id still remembered."""
        self._timers: list[Timer] = []
        """Heap of (when, seq, kind, agent or call id, token): calls' timers, and agents'
        that fit no lane."""
        self._lanes: list[TimerLane] = []
        """Agents' deadlines in runs of (when, seq) order (:class:`TimerLane`)."""
        self._max_lanes = _MAX_LANES
        """At most this many lanes (0: every timer on the heap, as the tests compare)."""
        self._seq = 0
        """The next sequence number (ties in heaps and pools; an int, not an itertools.count:
        compiled, ``next()`` on one is a builtin looked up and called)."""
        self._rng = random.Random(seed)
        self._personal: dict[str, list[tuple[float, int, str]]] = {}
        """Agent id -> heap of (-fixed_key, seq, call_id): due callbacks reserved for it."""

    # --- lookups ---------------------------------------------------------------------

    def _queue(self, name: str) -> QueueEntry:
        try:
            return self._queues[name]
        except KeyError:
            known = ", ".join(sorted(self._queues))
            raise RoutingError(f"no queue named {name!r} (queues: {known})") from None

    def _agent(self, agent_id: str) -> AgentEntry:
        try:
            return self._agents[agent_id]
        except KeyError:
            raise RoutingError(f"no agent with id {agent_id!r}") from None

    def _call(self, call_id: str) -> CallEntry:
        try:
            return self._calls[call_id]
        except KeyError:
            raise RoutingError(f"no call with id {call_id!r}") from None

    def _waiting(self, call_id: str) -> CallEntry:
        call = self._calls.get(call_id)
        if call is None or call.phase is not CallPhase.QUEUED:
            raise RoutingError(f"call {call_id!r} is not waiting in a queue")
        return call

    def _new_call_id(self, call_id: str) -> None:
        if call_id in self._calls or call_id in self._finished:
            raise RoutingError(f"call {call_id!r} is already known to the router")

    def _is_queued(self, call_id: str, queue: str | None = None) -> bool:
        call = self._calls.get(call_id)
        return (
            call is not None
            and call.phase is CallPhase.QUEUED
            and (queue is None or call.queue == queue)
        )

    def _offered_to(self, agent: AgentEntry, call_id: str) -> CallEntry:
        call = self._calls.get(call_id)
        if (
            call is None
            or agent.state is not RESERVED
            or agent.call_id != call_id
            or call.phase is not CallPhase.OFFERED
            or agent.agent_id not in call.offered_to
        ):
            raise RoutingError(f"agent {agent.agent_id!r} has no offer of call {call_id!r}")
        return call

    def _key(self, call: CallEntry) -> float:
        return self._key_in(call, self._queues[call.queue])

    @staticmethod
    def _key_in(call: CallEntry, q: QueueEntry) -> float:
        """:meth:`_key` with the call's queue at hand (not looked up by name again)."""
        priority = q.priority if call.priority is None else call.priority
        return key_of(priority, q.value_weight, q.aging_rate, call.value, call.arrived_at)

    # --- timers ----------------------------------------------------------------------

    def _timer(self, when: float, kind: str, call_id: str) -> None:
        """A call's timer (a token only an agent's timer needs)."""
        seq = self._seq
        self._seq = seq + 1
        if COMPILED:  # the compiled heap's steps compare the floats in C (router_state)
            heap_push(self._timers, (when, seq, kind, call_id, 0))
        else:
            HEAP_PUSH(self._timers, (when, seq, kind, call_id, 0))

    def _agent_timer(self, when: float, agent: AgentEntry) -> None:
        """The agent's deadline, into the first lane it fits at the end of (first fit:
        the fewest lanes for runs in order, as patience sorting), else a new lane, else
        (more lanes than ``_max_lanes``) the heap."""
        seq = self._seq
        self._seq = seq + 1
        for lane in self._lanes:
            if lane.last <= when:
                lane.last = when
                lane.items.append((when, seq, agent, agent.token))
                return
        if len(self._lanes) < self._max_lanes:
            lane = TimerLane()
            lane.last = when
            lane.items.append((when, seq, agent, agent.token))
            self._lanes.append(lane)
            return
        if COMPILED:
            heap_push(self._timers, (when, seq, "agent", agent.agent_id, agent.token))
        else:
            HEAP_PUSH(self._timers, (when, seq, "agent", agent.agent_id, agent.token))

    def _first_lane(self) -> TimerLane | None:
        """The lane whose live head comes first by (when, seq), if any has one."""
        best: TimerLane | None = None
        best_when = 0.0
        best_seq = 0
        for lane in self._lanes:
            if lane.live():
                timer = lane.items[lane.head]
                when = timer[0]
                if best is None or when < best_when or (when == best_when and timer[1] < best_seq):
                    best, best_when, best_seq = lane, when, timer[1]
        return best

    def _heap_live(self) -> bool:
        """Whether the heap holds a live timer, then first (``_timers[0]``): stale agents'
        timers popped. A bool, not the timer: see :meth:`TimerLane.live`."""
        timers = self._timers
        while timers:
            timer = timers[0]  # indexed: see _head
            if timer[2] != "agent" or self._agents[timer[3]].token == timer[4]:
                return True
            if COMPILED:
                heap_pop(timers)
            else:
                HEAP_POP(timers)
        return False

    def next_deadline(self) -> float | None:
        """When time passing next has something to do."""
        lane = self._first_lane()
        live = self._heap_live()
        if lane is None:
            return self._timers[0][0] if live else None
        when = lane.items[lane.head][0]
        if not live:
            return when
        first = self._timers[0][0]
        return when if when < first else first

    # --- agents' states and Ready pools ----------------------------------------------

    def _set_state(
        self,
        agent: AgentEntry,
        move: AgentMove,
        reason: str,
        now: float,
        out: list[Action],
        *,
        call_id: str | None = None,
        deadline: float | None = None,
    ) -> None:
        """Move the agent by ``move`` (:data:`queue_engine.transitions.AGENT_TRANSITIONS`)."""
        # Compiled, by identity among the move's sources (Move.after); interpreted, the
        # dict's lookup is one C call where the method is a Python call.
        state = move.after(agent.state) if COMPILED else move.to.get(agent.state)
        if state is None:  # the table has no such move: say which
            state = agent_next(agent.agent_id, agent.state, move.event)
        if agent.state is READY:
            self._leave_pools(agent)
        # ``in PRESENT`` by identity: present is neither logged out nor Not Ready (two
        # pointer comparisons; compiled, a frozenset's lookup hashes the member).
        was = agent.state
        present_delta = (state is not LOGGED_OUT and state is not NOT_READY) - (
            was is not LOGGED_OUT and was is not NOT_READY
        )
        in_delta = (state is not LOGGED_OUT) - (was is not LOGGED_OUT)
        if present_delta or in_delta:
            for link in agent.links:  # indexed, not unpacked (see _head)
                q = link[0]
                q.present += present_delta
                q.logged_in += in_delta
        agent.state = state
        agent.reason = reason
        agent.since = now
        if state is READY:
            agent.ready_seq = self._seq
            self._seq += 1
        elif state is not TALKING:
            agent.muted = False
        agent.token += 1
        agent.call_id = call_id
        agent.deadline = deadline
        if deadline is not None:
            self._agent_timer(deadline, agent)
        out.append(AgentStateSet(agent.agent_id, state, reason, call_id, deadline))

    def _move(self, call: CallEntry, move: CallMove) -> None:
        """Move the call by ``move`` (:data:`queue_engine.transitions.CALL_TRANSITIONS`)."""
        phase = move.after(call.phase) if COMPILED else move.to.get(call.phase)
        call.phase = call_next(call.call_id, call.phase, move.event) if phase is None else phase

    def _link(self, agent: AgentEntry) -> None:
        """Make the agent's :attr:`~AgentEntry.links` anew (after it or a queue of its
        changed): its queues in order, those whose calls it may take."""
        links = []
        for name, bonus in agent.queues.items():
            q = self._queues[name]
            first = q.members.get(agent.agent_id)
            if first is not None:
                links.append((q, bonus, first))
        agent.links = links

    def _leave_pools(self, agent: AgentEntry) -> None:
        for pool, entry in agent.pool_keys.values():
            pool.remove(entry)
        agent.pool_keys.clear()

    def _pool_entry(self, q: QueueEntry, agent: AgentEntry) -> PoolEntry:
        """The agent's entry in ``q``'s pools: the strategy's key, then its id."""
        strategy = q.strategy
        agent_id = agent.agent_id
        # (since, ready_seq, agent_id) breaks ties; kept across reconfiguration.
        if strategy is FEWEST_CALLS:
            return (agent.calls_handled, agent.since, agent.ready_seq, agent_id)
        if strategy is LEAST_TALK_TIME:
            return (agent.talk_time, agent.since, agent.ready_seq, agent_id)
        if strategy is BEST_PROFICIENCY:
            required = q.rings[0][1]
            score = sum(agent.skills.get(s, 0) for s in required) / max(1, len(required))
            return (-score, agent.since, agent.ready_seq, agent_id)
        if strategy is ROUND_ROBIN:
            return (q.order[agent_id], agent_id)
        return (agent.since, agent.ready_seq, agent_id)  # longest idle, ring-all, random

    def _join_pools(self, agent: AgentEntry) -> None:
        """A Ready agent waits in the pool of its first ring in every queue it serves."""
        for link in agent.links:  # indexed, not unpacked (see _head)
            q = link[0]
            entry = self._pool_entry(q, agent)
            pool = q.pools[link[2]]
            pool.add(entry)
            agent.pool_keys[q.name] = (pool, entry)

    @staticmethod
    def _staffed(q: QueueEntry) -> bool:
        """Whether ``q`` has the members its ``no_agents`` exit asks for."""
        return (q.present if q.staffed_by_present else q.logged_in) > 0

    def _recount(self, q: QueueEntry) -> None:
        """Recount a queue's present and logged-in members (after membership changes)."""
        states = [self._agents[a].state for a, ring in q.members.items() if ring is not None]
        q.present = sum(s in PRESENT for s in states)
        q.logged_in = sum(s is not LOGGED_OUT for s in states)

    def _choose_agents(self, q: QueueEntry, ring: int) -> list[AgentEntry]:
        """The agent(s) to offer a call of ``ring`` to, by the queue's strategy."""
        strategy = q.strategy
        if strategy is not RING_ALL and strategy is not RANDOM and strategy is not ROUND_ROBIN:
            best: PoolEntry | None = None
            for i in range(ring + 1):  # the best first entry of the rings' pools
                entries = q.pools[i].entries
                if entries and (best is None or entries[0] < best):
                    best = entries[0]
            return [] if best is None else [self._agents[best[-1]]]
        pools = q.pools[: ring + 1]
        if strategy is RING_ALL:
            ids = sorted({entry[-1] for pool in pools for entry in pool.entries})
            return [self._agents[a] for a in ids]
        if strategy is RANDOM:
            return self._draw(pools)
        turn = self._next_in_turn(q, pools)
        return [] if turn is None else [self._agents[turn[-1]]]

    @staticmethod
    def _next_in_turn(q: QueueEntry, pools: list[ReadyPool]) -> PoolEntry | None:
        """Round robin: the Ready member next after the one offered the last call."""
        best: PoolEntry | None = None
        n = max(1, len(q.order))
        best_distance = n + 1
        for pool in pools:
            entry = pool.first_after(q.rr_last)
            if entry is None:
                continue
            distance = (entry[0] - q.rr_last - 1) % n
            if distance < best_distance:
                best, best_distance = entry, distance
        return best

    def _draw(self, pools: list[ReadyPool]) -> list[AgentEntry]:
        """One of the Ready agents of ``pools``, each as likely, drawn for this call (a
        draw made when an agent joined would favour it for every call until it leaves)."""
        sizes = [len(pool.entries) for pool in pools]
        total = sum(sizes)
        if total == 0:
            return []
        i = self._rng.randrange(total) if total > 1 else 0
        for pool, size in zip(pools, sizes, strict=True):
            if i < size:
                return [self._agents[pool.entries[i][-1]]]
            i -= size
        raise AssertionError("unreachable: the draw is below the total")  # pragma: no cover

    def _withdraw_offers(
        self, call: CallEntry, reason: WithdrawReason, out: list[Action]
    ) -> list[AgentEntry]:
        """Withdraw every offer of ``call``; returns the agents, now without a call."""
        agents = [self._agents[a] for a in sorted(call.offered_to)]
        call.offered_to = set()
        for agent in agents:
            out.append(WithdrawOffer(call.call_id, agent.agent_id, reason))
            agent.call_id = None
        return agents

    # --- the queues' heaps -----------------------------------------------------------

    def _head(self, q: QueueEntry, ring: int) -> CallEntry | None:
        """The best call waiting in ``q``'s ``ring``, its heap's stale entries on top
        popped. Also called, for the popping alone, where a call stops waiting other
        than by being taken (its ring widens, it takes the max-wait exit, its caller
        hangs up): a stale entry then on top is popped by time passing or the hang-up,
        not by the next agent who frees up (a routing decision)."""
        heap = q.calls[ring]
        while heap:
            # Indexed, not unpacked into ``_, _, call_id, version``: compiled, each ``_``
            # boxes its item again (a float and an int made per look).
            entry = heap[0]
            call = entry[2]  # a finished call is DONE: no lookup by id (docs/acd.md §13)
            if (
                call.phase is CallPhase.QUEUED
                and call.version == entry[3]
                and call.queue == q.name
                and call.ring == ring
            ):
                return call
            if COMPILED:
                heap_pop(heap)
            else:
                HEAP_POP(heap)
        return None

    def _push(self, call: CallEntry, q: QueueEntry, now: float) -> None:
        call.version += 1
        call.ring = q.ring_for(call.arrived_at, now)
        heap = q.calls[call.ring]
        entry = (-call.key, call.seq, call, call.version)
        if COMPILED:
            heap_push(heap, entry)
        else:
            HEAP_PUSH(heap, entry)
        front = q.front
        if front is not None and (q.front_bound is None or entry < q.front_bound):
            INSORT(front, (entry, call.ring))
            if len(front) > _FRONT_MAX:  # keep its first half: still every entry below
                del front[_FRONT_MAX // 2 :]
                q.front_bound = front[-1][0]
        if len(heap) > 2 * q.waiting + 64:
            q.calls[call.ring] = [e for e in heap if self._head_valid(e, q, call.ring)]
            heapq.heapify(q.calls[call.ring])

    @staticmethod
    def _head_valid(entry: HeapEntry, q: QueueEntry, ring: int) -> bool:
        call = entry[2]
        return (
            call.phase is CallPhase.QUEUED
            and call.version == entry[3]
            and call.queue == q.name
            and call.ring == ring
        )

    def _waiting_in_order(self, queue: str) -> list[str]:
        """Waiting call ids of ``queue``, best first: O(w log w) for w calls waiting."""
        q = self._queue(queue)
        live = [
            entry
            for ring, heap in enumerate(q.calls)
            for entry in heap
            if self._head_valid(entry, q, ring)
        ]
        live.sort()  # distinct calls: the tuples differ by (key, seq), never compare calls
        return [entry[2].call_id for entry in live]

    def _unwait(self, q: QueueEntry, call: CallEntry) -> None:
        """``call`` no longer waits in ``q`` (called before its key, version or ring
        change: its entry is found by them)."""
        q.waiting -= 1
        front = q.front
        if front is not None:
            item = ((-call.key, call.seq, call, call.version), call.ring)
            i = BISECT_LEFT(front, item)
            if i < len(front) and front[i] == item:
                del front[i]

    def _first_waiting(self, q: QueueEntry, limit: int) -> list[str]:
        """The first ``limit`` waiting call ids of ``q``, best first: what
        :meth:`_waiting_in_order` starts with, in O(limit). The queue's front is kept
        from the first such read on (:meth:`_push`, :meth:`_unwait`: O(log) each); when
        it runs short, the heaps' tops are walked again for twice ``limit``."""
        if limit <= 0:
            return []
        front = q.front
        if front is None or (len(front) < limit and q.front_bound is not None):
            front, q.front_bound = self._walk_front(q, 2 * limit)
            q.front = front
        return [item[0][2].call_id for item in front[:limit]]

    def _walk_front(
        self, q: QueueEntry, count: int
    ) -> tuple[list[tuple[HeapEntry, int]], HeapEntry | None]:
        """The first ``count`` live entries of ``q``'s ring heaps in order, and the last
        of them (None when there are no more): the heaps' tops merged through a heap of
        candidates (a node's children enter when it leaves), stale entries skipped."""
        heaps = q.calls
        todo = [(heap[0], ring, 0) for ring, heap in enumerate(heaps) if heap]
        heapq.heapify(todo)
        out: list[tuple[HeapEntry, int]] = []
        while todo:
            entry, ring, i = heapq.heappop(todo)
            heap = heaps[ring]
            for child in (2 * i + 1, 2 * i + 2):
                if child < len(heap):
                    heapq.heappush(todo, (heap[child], ring, child))
            if self._head_valid(entry, q, ring):
                out.append((entry, ring))
                if len(out) == count:
                    return out, (entry if todo else None)
        return out, None

    def _max_wait_due(self, call: CallEntry, q: QueueEntry) -> float | None:
        """When ``call`` takes ``q``'s max-wait exit: only callers on the line (not a
        callback) who were never answered (not a transfer)."""
        if q.max_wait is None or call.callback is not None or call.answered_at is not None:
            return None
        return call.arrived_at + q.max_wait_s  # the very sum the check compares with

    # --- records ---------------------------------------------------------------------

    def _finish_call(
        self,
        call: CallEntry,
        ended_at: float,
        outcome: str,
        out: list[Action],
        *,
        disposition: str = "",
        note: str = "",
        wrap_up_s: float = 0.0,
        exit_action: str = "",
    ) -> None:
        trail = call.trail
        if trail:  # a transferred call: answered by its first agent, whatever came after
            if outcome != "answered":
                trail.append(f"then {outcome} ({exit_action or 'caller hung up'})")
                outcome = "answered"
            note = " · ".join([*trail, note] if note else trail)
        callback = call.callback
        if callback is not None and callback.reserved_for is not None:
            note = f"callback for {callback.reserved_for}" + (f" · {note}" if note else "")
        self._move(call, CALL_FINISH)
        call.ended_at = ended_at
        del self._calls[call.call_id]
        self._remember_finished(call.call_id)
        out.append(RecordCall(self._record(call, outcome, disposition, note, wrap_up_s,
                                           exit_action)))  # fmt: skip

    def _remember_finished(self, call_id: str) -> None:
        """``call_id`` into the finished ids, the oldest forgotten past the memory's size."""
        finished, order = self._finished, self._finished_order
        finished.add(call_id)
        order.append(call_id)
        if len(finished) > _FINISHED_MEMORY:
            head = self._finished_head
            finished.discard(order[head])
            head += 1
            if 2 * head >= len(order):  # amortised: the list does not grow without end
                del order[:head]
                head = 0
            self._finished_head = head

    @staticmethod
    def _record(
        call: CallEntry,
        outcome: str,
        disposition: str,
        note: str,
        wrap_up_s: float,
        exit_action: str,
    ) -> CallDetailRecord:
        caller, callback = call.caller, call.callback
        assert call.ended_at is not None
        fields = caller.__dict__  # one read through pydantic's attribute hook, not two
        return new_call_record(
            call.call_id,
            call.queue,
            fields["ani"],
            fields["kind"],
            call.customer_id,
            call.segment,
            call.value,
            call.arrived_at,
            call.offered_at,
            call.answered_at,
            call.ended_at,
            call.handled_by
            if call.answered_at is not None or call.kind == "manual"  # who dialled
            else None,
            outcome,
            disposition,
            wrap_up_s,
            call.offers,
            note,
            call.kind,
            exit_action,
            callback.requested_at if callback else None,
        )
