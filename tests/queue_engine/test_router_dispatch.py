"""``Router.handle`` calls the handlers of the most frequent inputs directly (compiled, a
native call rather than a bound method's Python call: docs/acd.md §13); every other
input goes through the table. Both ways give the same: each input handled directly has
its row in the table, and random traffic through ``handle`` and through the table's
rows alone gives the same actions, refusals and deadlines."""

from __future__ import annotations

from cti.errors import RoutingError
from queue_engine import inputs as ri
from queue_engine.actions import Action
from queue_engine.router import DIRECT_INPUTS, Router
from tests.queue_engine.test_router_timers import _router, _traffic


def test_every_input_handled_directly_has_its_row_in_the_table() -> None:
    router = _router(4)
    assert set(DIRECT_INPUTS) <= set(router._handlers)
    assert len(set(DIRECT_INPUTS)) == len(DIRECT_INPUTS)


def _by_table(router: Router, event: ri.AnyInput, now: float) -> list[Action]:
    return router._handlers[type(event)](event, now)


def test_handle_gives_what_the_table_gives() -> None:
    direct = 0
    for seed in range(6):
        a, b = _router(4), _router(4)
        for now, event in _traffic(a, seed, 600):
            results = []
            for router, step in ((a, a.handle), (b, lambda e, t, r=b: _by_table(r, e, t))):
                try:
                    out: list[Action] | str = step(event, now)
                except RoutingError as exc:
                    out = f"refused: {exc}"
                results.append((repr(out), router.next_deadline()))
            assert results[0] == results[1], (seed, now, event)
            direct += type(event) in DIRECT_INPUTS
    assert direct > 2000
