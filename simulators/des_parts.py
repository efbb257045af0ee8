"""Parts of the discrete-event runner (:mod:`simulators.des`), compiled with it.

Each does what a pydantic model does, with the same results, in code mypyc compiles: a
traffic's draws and the fields its calls read (:class:`Stream`), a distribution's draws
(:class:`Draw`), the router's inputs without validating each (:class:`Inputs`). A
simulated day calls them for every call; the models' own methods are interpreted Python
(``random.expovariate`` too, and a model's field is a hooked attribute lookup), which
cost the compiled day about a sixth of its instructions, and validating the inputs a
fifth. The tests hold each to its model: the same draws from the same seeds, the same
inputs as validated ones (``tests/simulators/test_des_parts.py``), and the golden days.
"""

from __future__ import annotations

import math
import random
import sys
from typing import Any, Final, Generic, TypeVar, cast, final

from pydantic import BaseModel

from simulators.scenario import Exponential, Fixed, Lognormal, Never, Traffic

_RANDOM: Final = random.Random.random
"""The draw of a ``random.Random`` (its C method, which ``rng.random`` finds): called as
``_RANDOM(rng)``, compiled, it is not looked up on the instance at each draw (~400
instructions, four times the draw's own)."""


def expovariate(rng: random.Random, lambd: float) -> float:
    """``rng.expovariate(lambd)``: the same draw by the same formula, in compiled code
    (``random.expovariate`` is Python: two interpreted calls a draw)."""
    return -math.log(1.0 - _RANDOM(rng)) / lambd


class Draw:
    """Draws of one handle, wrap-up or patience distribution, equal to its ``draw``:
    exponential by :func:`expovariate`, fixed and none without a call, others by the
    model's own ``draw``."""

    __slots__ = ("_dist", "_kind", "_lambd", "_value")

    def __init__(self, dist: Exponential | Lognormal | Fixed | Never) -> None:
        self._dist = dist
        self._lambd = 1.0
        self._value = 0.0
        self._kind = 0  # the model's draw
        if isinstance(dist, Exponential):
            self._kind, self._lambd = 1, 1.0 / dist.mean_s
        elif isinstance(dist, Fixed):
            self._kind, self._value = 2, dist.value_s
        elif isinstance(dist, Never):
            self._kind, self._value = 2, math.inf

    def draw(self, rng: random.Random) -> float:
        kind = self._kind
        if kind == 1:
            return expovariate(rng, self._lambd)
        if kind == 2:
            return self._value
        value: float = self._dist.draw(rng)
        return value


class Stream:
    """One traffic of the scenario, with what its calls read at every arrival and
    answer (a pydantic model's field is a hooked attribute lookup each time)."""

    __slots__ = (
        "_total",
        "_values",
        "callback",
        "flow",
        "handle",
        "patience",
        "queue",
        "rate",
        "rng",
        "traffic",
    )

    def __init__(self, traffic: Traffic, rng: random.Random) -> None:
        self.traffic = traffic
        self.queue = traffic.queue
        self.flow = bool(traffic.flow)
        self.rng = rng
        """The arrivals' stream: the day's, or the flow's own."""
        constant = traffic.rate_per_hour
        self.rate = -1.0 if constant is None else constant / 3600.0
        """Arrivals per second all day, or -1: rates per interval."""
        self.handle = Draw(traffic.handle)
        self.patience = Draw(traffic.patience)
        self.callback = traffic.callback
        # the same sum as Traffic.draw_value's (builtins.sum, not a compiled loop)
        self._total: float = sum([v.share for v in traffic.values])
        self._values = [(v.share, v.low, v.high, v.label) for v in traffic.values]

    def draw_value(self, rng: random.Random) -> tuple[float, str]:
        """``traffic.draw_value(rng)``: the same draws in the same order."""
        u = _RANDOM(rng) * self._total
        last = len(self._values) - 1
        for i, (share, low, high, label) in enumerate(self._values):
            u -= share
            if u <= 0 or i == last:
                return (low if high == low else rng.uniform(low, high)), label
        raise AssertionError("a traffic has at least one value share")


_Item = TypeVar("_Item")


@final
class _Entry:
    """An item of an :class:`Agenda`, with when it is due and when it was added (a
    class of its own, final: compiled, an entry read from the heap is checked by its
    exact type, where an item of a class with subclasses took a walk of its bases)."""

    __slots__ = ("item", "seq", "t")

    def __init__(self, t: float, seq: int, item: object) -> None:
        self.t = t
        self.seq = seq
        self.item = item


class Agenda(Generic[_Item]):
    """Things due, by time, then by the order they were added: a binary heap (heapq's
    algorithm: the same order), written out so that compiled each comparison reads two
    native fields (~1.5k instructions an item added and taken). A heap of the distinct
    times with a dict of what is due at each cost ~2.8k; heapq on the events, compared
    by a ``__lt__``, ~2.2k (rich comparison and subtype checks between event classes).
    Interpreted, this heap in Python costs an interpreted day ~8% more than heapq did."""

    __slots__ = ("_added", "_heap", "_spare")

    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self._added = 0
        self._spare: _Entry | None = None
        """The entry taken last, for the next item added (not one made and freed an
        event)."""

    def __bool__(self) -> bool:
        return bool(self._heap)

    def first_time(self) -> float:
        """When the first item is due (the agenda must not be empty)."""
        return self._heap[0].t

    def add(self, t: float, item: _Item) -> None:
        """``item`` is due at ``t``, after everything already due then."""
        entry = self._spare
        if entry is None:
            entry = _Entry(t, self._added, item)
        else:
            self._spare = None
            entry.t, entry.seq, entry.item = t, self._added, item
        self._added += 1
        heap = self._heap
        heap.append(entry)
        self._up(len(heap) - 1, entry)

    def pop(self) -> _Item:
        """The item due first, taken out (the agenda must not be empty)."""
        heap = self._heap
        last = heap.pop()
        if not heap:
            return self._taken(last)
        first = heap[0]
        # heapq's _siftup: the smaller child up, down to a leaf, then the last entry up
        # from there (fewer comparisons than stopping where it fits: it belongs low)
        n = len(heap)
        pos = 0
        child = 1
        while child < n:
            below = heap[child]
            right = child + 1
            if right < n:
                other = heap[right]
                if not (below.t < other.t or (below.t == other.t and below.seq < other.seq)):
                    below = other
                    child = right
            heap[pos] = below
            pos = child
            child = 2 * pos + 1
        self._up(pos, last)
        return self._taken(first)

    def _taken(self, entry: _Entry) -> _Item:
        item = cast(_Item, entry.item)
        entry.item = None  # kept as the spare: not holding what it held
        self._spare = entry
        return item

    def _up(self, pos: int, entry: _Entry) -> None:
        """Put ``entry`` at ``pos`` or above, below the first parent due before it."""
        heap = self._heap
        t, seq = entry.t, entry.seq
        while pos > 0:
            up = (pos - 1) >> 1
            parent = heap[up]
            if not (t < parent.t or (t == parent.t and seq < parent.seq)):
                break
            heap[pos] = parent
            pos = up
        heap[pos] = entry


_Input = TypeVar("_Input", bound=BaseModel)

_REFS: Final = sys.getrefcount


class Inputs(Generic[_Input]):
    """Inputs of one kind for the router, made without validating each (pydantic-core
    validating one cost ~6k instructions, three a call, and even setting a model's
    four slots from compiled code costs ~4k: each is a call of ``object.__setattr__``).

    One instance, what ``model``'s validator makes of ``example``, is handed to the
    router again and again with its fields' values replaced in its own ``__dict__``:
    the same type, fields (defaults too, in pydantic's order) and set of fields given
    as a validated one, from values the runner makes itself. The router reads an
    input's fields and keeps no reference to it; should anything hold the instance
    (its reference count says so), it is left alone and a fresh one validated.
    """

    __slots__ = ("_alone", "_fields", "_keys", "_made", "_model")

    def __init__(self, model: type[_Input], example: dict[str, Any]) -> None:
        self._model = model
        self._keys = tuple(example)
        """The fields ``make`` replaces (the first of the example's keys)."""
        self._made = self._validated(example)
        self._fields: dict[str, Any] = self._made.__dict__
        self._alone = self._refs()
        """The instance's references while only this holds it."""

    def _validated(self, fields: dict[str, Any]) -> _Input:
        made: _Input = self._model.__pydantic_validator__.validate_python(fields)
        # a model with private attributes or extra fields would need them kept too
        assert made.__pydantic_private__ is None
        assert made.__pydantic_extra__ is None
        return made

    def _refs(self) -> int:
        return _REFS(self._made)

    def make(self, *values: object) -> _Input:
        """The input with these values for the first of the example's keys, the
        example's for the others: equal to the validated one in every field."""
        if self._refs() != self._alone:  # held elsewhere: never changed under a holder
            self._made = self._validated({key: self._fields[key] for key in self._keys})
            self._fields = self._made.__dict__
        fields = self._fields
        for i, value in enumerate(values):
            fields[self._keys[i]] = value
        return self._made
