"""A recorded journal replayed on the engine's compiled build (``cti serve --compiled``,
:data:`cti.compiled_build.ENGINE`) gives exactly the records (and every other action)
the interpreted router gives, which are the ones decided while it was recorded.

Here rather than in ``tests/queue_engine``: those tests also run on a compiled build
(``tests/simulators/test_compiled.py``), which could not build this one."""

from __future__ import annotations

import contextlib
import itertools
from pathlib import Path

from cti.errors import RoutingError
from cti.store.journal import Journal
from queue_engine.actions import RecordCall
from queue_engine.router import Router
from tests.engine_build import assert_same_on_engine_build
from tests.queue_engine import traffic


def record_journal(path: Path, seed: int, steps: int) -> list[str]:
    """Journal random traffic as the engine does (each input before it is routed) and
    route it; the call records decided on the way."""
    router = Router(traffic.QUEUES)
    records: list[str] = []
    with Journal.open(path) as journal:
        staffing = ((0.0, event) for event in traffic.staffing())
        for now, event in itertools.chain(staffing, traffic.random_traffic(router, seed, steps)):
            journal.append(now, event)
            with contextlib.suppress(RoutingError):
                actions = router.handle(event, now)
                records += [repr(a.cdr) for a in actions if isinstance(a, RecordCall)]
    return records


def replay(path: Path) -> list[str]:
    """Every journaled input into a new router at its journaled time, as a restarted
    engine replays it: per input, its actions or its refusal."""
    router = Router(traffic.QUEUES)
    out = []
    with Journal.open(path) as journal:
        for at, event in journal.replay():
            try:
                out.append(f"{at!r} {router.handle(event, at)!r}")
            except RoutingError as exc:
                out.append(f"{at!r} refused: {exc}")
    return out


_REPLAY_ON_COMPILED = """
import sys
from pathlib import Path
from cti import compiled_build
if not compiled_build.loaded(compiled_build.ENGINE):
    sys.exit("not the compiled engine build")
from tests.cti.test_compiled_replay import replay
print("\\n".join(replay(Path(sys.argv[1]))))
"""


def test_a_recorded_journal_replays_to_the_same_records_on_both_builds(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    recorded = record_journal(path, seed=7, steps=1500)
    interpreted = replay(path)
    assert [line for line in interpreted if "RecordCall(" in line]
    assert [r for line in interpreted for r in recorded if r in line] == recorded
    assert_same_on_engine_build(_REPLAY_ON_COMPILED, interpreted, tmp_path, str(path), what="input")
