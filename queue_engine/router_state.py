"""What the router keeps of each call, agent and queue, and the snapshots it gives out.

Plain records: the router's modules (:mod:`queue_engine.router`) change them. The
classes that the router makes one of per call write their ``__init__`` out: compiled
with mypyc, a generated ``__init__`` stays interpreted.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import FunctionType
from typing import Any, Final, NamedTuple

from cti.models import (
    AgentState,
    CallerInfo,
    MaxLengthExit,
    MaxWaitExit,
    NoAgentsExit,
    QueueConfig,
    Segment,
    Strategy,
)
from queue_engine.actions import ConsultState
from queue_engine.members import BASIC, LOGGED_OUT, READY, RESERVED, TALKING, WRAP_UP
from queue_engine.transitions import CallPhase

HeapEntry = tuple[float, int, "CallEntry", int]
"""A ring heap's entry: (-fixed_key, seq, the call, version). The call itself, not its
id: a look at a head reads it without a lookup in the router's calls (a finished call
is DONE, so its entries are stale like those of a call moved on). Tuples of two entries
never compare the calls: a call's seq is its own, so equal seqs are the same call
(compared by identity) and its versions differ."""

# Final: compiled, a module constant is a C static, a plain global (or a module's
# attribute: ``bisect.insort``) a dict lookup per read.
BUSY: Final = frozenset({RESERVED, TALKING, WRAP_UP})
PRESENT: Final = BUSY | {READY}
INSORT: Final = bisect.insort
BISECT_LEFT: Final = bisect.bisect_left
BISECT_RIGHT: Final = bisect.bisect_right
INF: Final = float("inf")
#: A timer lane's popped entries are cut off once this many lie before its head.
_LANE_COMPACT: Final = 1024


def _probe() -> None:
    """Compiled by mypyc, a module's function is no Python function (:data:`COMPILED`)."""


COMPILED: Final = not isinstance(_probe, FunctionType)
"""Whether this module runs compiled: then the router's heaps (timers, ring heaps) use
:func:`heap_push` and :func:`heap_pop`, else heapq's (the same order, the same layout)."""
HEAPQ_PUSH: Final = heapq.heappush
HEAPQ_POP: Final = heapq.heappop


def _before(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """``a < b`` for heap entries whose first item is a float: compiled, two C double
    comparisons where the tuples' comparison dispatches two ``float_richcompare`` calls
    (equality, then order: some 300 instructions). A tie, or a NaN, compares the tuples
    as ever."""
    x: float = a[0]
    y: float = b[0]
    if x < y:
        return True
    if y < x:
        return False
    return a < b


def heap_push(heap: list[Any], item: tuple[Any, ...]) -> None:
    """heapq.heappush, compiled (its algorithm: the same layout), by :func:`_before`."""
    heap.append(item)
    pos = len(heap) - 1
    while pos > 0:
        parentpos = (pos - 1) >> 1
        parent: tuple[Any, ...] = heap[parentpos]
        if not _before(item, parent):
            break
        heap[pos] = parent
        pos = parentpos
    heap[pos] = item


def heap_pop(heap: list[Any]) -> tuple[Any, ...]:
    """heapq.heappop, compiled (its algorithm: the same layout), by :func:`_before`."""
    last: tuple[Any, ...] = heap.pop()
    if not heap:
        return last
    top: tuple[Any, ...] = heap[0]
    endpos = len(heap)
    pos = 0
    childpos = 1
    while childpos < endpos:  # the smaller child up, to a leaf
        rightpos = childpos + 1
        if rightpos < endpos and not _before(heap[childpos], heap[rightpos]):
            childpos = rightpos
        heap[pos] = heap[childpos]
        pos = childpos
        childpos = 2 * pos + 1
    while pos > 0:  # then the last item down from there to its place
        parentpos = (pos - 1) >> 1
        parent: tuple[Any, ...] = heap[parentpos]
        if not _before(last, parent):
            break
        heap[pos] = parent
        pos = parentpos
    heap[pos] = last
    return top


@dataclass(slots=True)
class Callback:
    """The caller's line is released: the call is a callback to ``number``."""

    number: str
    requested_at: float
    reserved_for: str | None = None
    """A personal callback's agent (kept once it went to anyone, for the record)."""


@dataclass(slots=True)
class Consultation:
    """The agent consulted about the call, and how far (ringing, talking, conference)."""

    agent: str
    state: ConsultState


@dataclass(slots=True, init=False)
class CallEntry:
    call_id: str
    queue: str
    caller: CallerInfo
    kind: str
    phase: CallPhase
    # Rank and place in the queue (read on every step)
    value: float
    segment: Segment
    customer_id: int | None
    """The caller's customer's id (the record's), read with its value and segment."""
    arrived_at: float
    priority: float | None
    """Supervisor's priority for this call, replacing the queue's."""
    key: float
    seq: int
    ring: int
    version: int
    """Bumped whenever the call's heap entry is replaced; older entries are stale."""
    # Exits
    exit_at: float | None
    """When the max-wait timer last armed for this call fires (not armed twice)."""
    exit_moves: int
    # When the call was first offered, answered and ended, and its current agent's part
    # began (talk time). Its fields, not a record of their own: a call is made at every
    # arrival, and each record more is an object made and freed (docs/acd.md §13).
    offered_at: float | None
    answered_at: float | None
    ended_at: float | None
    leg_started: float
    # Who has the call: offered to, talking with, and who handed it on (the record's)
    current: str | None
    """The agent the call is offered to (one), talking with, or wrapping up."""
    offered_to: set[str]
    offers: int
    handled_by: str | None
    """The agent who talks (or last talked) with the caller: the record's agent."""
    trail: list[str]
    """Transfers and the dispositions of agents who handed the call on (record's note)."""
    # Its other parts
    callback: Callback | None
    consult: Consultation | None
    held: bool
    """The caller is on hold (by its agent, or for a consultation)."""

    def __init__(
        self,
        call_id: str,
        queue: str,
        caller: CallerInfo,
        arrived_at: float,
        seq: int,
        kind: str = "inbound",
        phase: CallPhase = CallPhase.QUEUED,
    ) -> None:
        self.call_id = call_id
        self.queue = queue
        self.caller = caller
        self.kind = kind
        self.phase = phase
        # CallerInfo.value and .segment read without its properties (interpreted code),
        # and the customer's fields from its dict: pydantic's attribute hook costs some
        # 430 instructions a read, ``__dict__`` one such for the three.
        customer = caller.customer
        if customer is None:
            self.value = 0.0
            self.segment = BASIC
            self.customer_id = None
        else:
            fields = customer.__dict__
            self.value = fields["value"]
            self.segment = fields["segment"]
            self.customer_id = fields["id"]
        self.arrived_at = arrived_at
        self.priority = None
        self.key = 0.0
        self.seq = seq
        self.ring = 0
        self.version = 0
        self.exit_at = None
        self.exit_moves = 0
        self.offered_at = None
        self.answered_at = None
        self.ended_at = None
        self.leg_started = 0.0
        self.current = None
        self.offered_to = set()
        self.offers = 0
        self.handled_by = None
        self.trail = []
        self.callback = None
        self.consult = None
        self.held = False


def dialling(call: CallEntry) -> bool:
    """Whether ``call`` is an agent's dial the far end has not answered yet (it rings)."""
    return call.kind == "manual" and call.answered_at is None and call.phase is CallPhase.TALKING


PoolEntry = tuple[Any, ...]
"""A Ready pool's entry: the strategy's key, flat, ending with the agent id (flat: a
comparison compares plain values, not a key tuple inside an entry tuple)."""


@dataclass(slots=True)
class AgentEntry:
    agent_id: str
    queues: dict[str, float]
    """Queue -> this agent's priority (rank bonus) for it, in the order configured."""
    skills: dict[str, int]
    state: AgentState = LOGGED_OUT
    reason: str = ""
    since: float = 0.0
    ready_seq: int = 0
    """Order of going Ready: breaks ties between agents Ready since the same moment."""
    token: int = 0
    """Bumped on every state change; timer entries carry the token they saw."""
    call_id: str | None = None
    deadline: float | None = None
    wrap_started: float | None = None
    missed: int = 0
    not_ready_after_call: bool = False
    after_call_reason: str = ""
    """The Not Ready reason to go back to after the call (one it dialled from a break)."""
    muted: bool = False
    """The line keeps the agent's voice from the caller (while it talks)."""
    calls_handled: int = 0
    talk_time: float = 0.0
    pool_keys: dict[str, tuple[ReadyPool, PoolEntry]] = field(default_factory=dict)
    """Queue -> the pool this Ready agent sits in for that queue, and its entry there
    (the pool kept, not looked up again through the queue and the agent's ring)."""
    links: list[QueueLink] = field(default_factory=list)
    """The queues whose calls the agent may take (it meets a ring), in the order of
    ``queues``, with its bonus and first ring: made when the agent or one of its queues
    is configured, so that a decision does not look them up by name again."""
    handed_off: tuple[str, int | None] | None = None
    """In wrap-up of a call it transferred: (the call's queue then, its customer id)."""


class ReadyPool:
    """Ready agents of one ring of one queue, kept sorted by the strategy's key."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: list[PoolEntry] = []

    def add(self, entry: PoolEntry) -> None:
        INSORT(self.entries, entry)

    def remove(self, entry: PoolEntry) -> None:
        """Take out ``entry`` (the very tuple added: the agent keeps it)."""
        entries = self.entries
        if entries and entries[0] is entry:  # the pool's best: the agent a call just chose
            del entries[0]  # no bisection (each of its steps compares two tuples)
            return
        i = BISECT_LEFT(entries, entry)
        if i < len(entries) and entries[i] == entry:
            del entries[i]

    def first_after(self, index: int) -> PoolEntry | None:
        """Round robin: the first entry whose key (member index) is above ``index``."""
        i = BISECT_RIGHT(self.entries, (index, "\U0010ffff"))
        if i < len(self.entries):
            return self.entries[i]
        return self.entries[0] if self.entries else None


AgentTimer = tuple[float, int, AgentEntry, int]
"""An agent's deadline in a :class:`TimerLane`: (when, seq, agent, the token it saw)."""


class TimerLane:
    """Agents' deadlines pushed in (when, seq) order: a first-in first-out list.

    An agent's deadline is now plus its queue's fixed offer or wrap-up time, so most
    arrive in order: such a run costs a list append and a step of :attr:`head` where a
    heap of every timer walks its depth (the router's own timers, docs/acd.md §13).
    The router merges the lanes' heads with its heap's by (when, seq): the same order.
    """

    __slots__ = ("head", "items", "last")

    def __init__(self) -> None:
        self.items: list[AgentTimer] = []
        self.head = 0
        """Index of the first timer not yet popped."""
        self.last = -INF
        """The latest ``when`` appended; a timer before it does not fit."""

    def live(self) -> bool:
        """Whether :attr:`head` is at a timer whose agent has not changed state since
        (stale ones dropped before it). Not the timer itself: compiled, a tuple read
        from the list is unboxed, and returning it makes a new one (floats, ints)."""
        items, head = self.items, self.head
        n = len(items)
        while head < n:
            timer = items[head]
            if timer[2].token == timer[3]:  # indexed: see RouterCore._head
                self.head = head
                return True
            head += 1
        items.clear()  # all popped or stale: the lane takes any timer again
        self.head = 0
        self.last = -INF
        return False

    def pop(self) -> None:
        """Drop the head (:meth:`live` found it)."""
        head = self.head + 1
        if head >= _LANE_COMPACT and 2 * head >= len(self.items):
            del self.items[:head]  # amortised: the list does not grow without end
            head = 0
        self.head = head


@dataclass(slots=True, init=False)
class QueueEntry:
    config: QueueConfig
    rings: list[tuple[float, dict[str, int]]]
    afters: list[float]
    """Each ring's wait after arrival (``rings``' first items, read at every placing)."""
    calls: list[list[HeapEntry]]
    """Per ring, a heap of (-fixed_key, seq, call, version); stale entries skipped."""
    pools: list[ReadyPool]
    by_arrival: list[tuple[float, int, str]]
    waiting: int
    members: dict[str, int | None]
    """Agent id -> the first ring the agent is eligible for (None: never)."""
    order: dict[str, int]
    """Agent id -> member index, for round robin."""
    rr_last: int
    aht: float
    present: int
    """Members who may take this queue's calls and are Ready or busy."""
    logged_in: int
    """Members who may take this queue's calls and are logged in."""
    front: list[tuple[HeapEntry, int]] | None
    """The first waiting calls in rank order, kept once a status publication read them
    (:meth:`queue_engine.router.Router.estimated_waits` with a limit): (entry, ring) of
    every live heap entry up to ``front_bound`` (None: all), sorted. None: not kept."""
    front_bound: HeapEntry | None
    # The config's fields read on every call, copied once (a new config builds a new
    # entry): compiled, a native attribute is a load, a pydantic model's a lookup
    # through its class's ``__getattr__`` hook (some hundred instructions).
    name: str
    strategy: Strategy
    priority: float
    value_weight: float
    aging_rate: float
    offer_timeout_s: float
    wrap_up_s: float
    max_wait: MaxWaitExit | None
    max_wait_s: float
    """``max_wait``'s ``after_s`` (0 without it: then never read)."""
    max_length: MaxLengthExit | None
    no_agents: NoAgentsExit | None
    max_calls: int
    """``max_length``'s calls (0 without it: then never read)."""
    staffed_by_present: bool
    """``no_agents`` counts the members present (``none_available``), else those
    logged in: read at every arrival, so kept out of the model."""

    def __init__(self, config: QueueConfig) -> None:
        self.config = config
        self.rings = [(after, dict(skills)) for after, skills in config.rings]
        self.afters = [after for after, _ in self.rings]
        self.calls = [[] for _ in self.rings]
        self.pools = [ReadyPool() for _ in self.rings]
        self.by_arrival = []
        self.waiting = 0
        self.members = {}
        self.order = {}
        self.rr_last = -1
        self.aht = config.expected_aht_s
        self.present = 0
        self.logged_in = 0
        self.front = None
        self.front_bound = None
        self.name = config.name
        self.strategy = config.strategy
        self.priority = config.priority
        self.value_weight = config.value_weight
        self.aging_rate = config.aging_rate
        self.offer_timeout_s = config.offer_timeout_s
        self.wrap_up_s = config.wrap_up_s
        self.max_wait = config.exits.max_wait
        self.max_wait_s = 0.0 if self.max_wait is None else self.max_wait.after_s
        self.max_length = config.exits.max_length
        self.no_agents = config.exits.no_agents
        self.max_calls = 0 if self.max_length is None else self.max_length.calls
        self.staffed_by_present = (
            self.no_agents is not None and self.no_agents.when == "none_available"
        )

    def ring_for(self, arrived_at: float, now: float) -> int:
        # ``now >= arrived_at + after``, the very sum the ring timer is set for: with
        # ``now - arrived_at >= after`` rounding can make the timer fire without effect.
        # The first ring is the call's whatever its wait: from the second on.
        afters = self.afters
        ring = 0
        for i in range(1, len(afters)):
            if now >= arrived_at + afters[i]:
                ring = i
        return ring

    def first_ring(self, skills: Mapping[str, int]) -> int | None:
        for i, (_, required) in enumerate(self.rings):
            if all(skills.get(s, 0) >= level for s, level in required.items()):
                return i
        return None


QueueLink = tuple[QueueEntry, float, int]
"""A queue an agent may take calls of: (the queue, the agent's bonus there, its first ring)."""


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """A queue's state at one moment, for the wallboard and the status line."""

    queue: str
    waiting: int
    longest_wait_s: float
    agents_ready: int
    agents_busy: int
    agents_logged_in: int


@dataclass(frozen=True, slots=True)
class AgentSnapshot:
    agent_id: str
    state: AgentState
    reason: str
    since: float
    call_id: str | None
    deadline: float | None
    calls_handled: int
    muted: bool = False


class WaitEstimate(NamedTuple):
    """A waiting call's place and estimated further wait (a named tuple: a publication
    makes one per call it sends, and a tuple is the cheapest record to make)."""

    call_id: str
    position: int
    """1 for the call that will be served next."""
    wait_s: float
    """Estimated further wait, in seconds."""
