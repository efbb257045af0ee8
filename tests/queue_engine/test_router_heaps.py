"""The router's compiled heap (``router_state.heap_push``/``heap_pop``, used when the
module runs compiled) keeps heapq's order and layout: the same list after every push and
pop, and the same items popped, on ties of the first item, NaN, -0.0 and 0.0 among them.
Run on both builds (tests/simulators/test_compiled.py runs this directory compiled)."""

from __future__ import annotations

import heapq
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from queue_engine.router_state import heap_pop, heap_push

#: First items that tie, that are NaN (never equal, not even to themselves unless the
#: very object), and that are equal but differ in sign.
_FIRST = st.sampled_from([0.0, -0.0, 1.0, 1.5, -2.0, math.inf, -math.inf, math.nan])
_ENTRY = st.tuples(_FIRST, st.integers(0, 3), st.sampled_from(["a", "b"]), st.integers(0, 2))
#: A push (an entry) or a pop (None).
_STEP = st.one_of(_ENTRY, st.none())


@settings(max_examples=300)
@given(st.lists(_STEP, max_size=80), st.booleans())
def test_the_compiled_heap_is_heapqs(steps: list[tuple[Any, ...] | None], shared: bool) -> None:
    ours: list[Any] = []
    theirs: list[Any] = []
    nan = math.nan
    for step in steps:
        if step is None:
            if not theirs:
                continue
            assert heap_pop(ours) is heapq.heappop(theirs)
        else:
            if shared and step[0] != step[0]:
                step = (nan, *step[1:])  # the very NaN object: tuples then compare on
            heap_push(ours, step)
            heapq.heappush(theirs, step)
        assert ours == theirs or repr(ours) == repr(theirs)
        assert [id(x) for x in ours] == [id(x) for x in theirs]


def test_a_single_item_and_an_empty_heap() -> None:
    heap: list[Any] = []
    item = (1.0, 0, "a", 0)
    heap_push(heap, item)
    assert heap_pop(heap) is item
    assert heap == []
