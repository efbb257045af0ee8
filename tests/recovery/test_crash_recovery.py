"""Kill the engine's process mid-traffic (SIGKILL), start it again, account for everything.

The engine runs in its own OS process (:mod:`tests.recovery.crash_harness`: store, journal,
simulator trunk, bot agents, callers). The test waits until calls are waiting and
agents are talking, in wrap-up or being offered a call, kills it at a seeded moment,
works out from the journal alone what the engine knew when it died, starts it again
with ``--resume``, lets it run to the end, and then checks against the far end's
ledger (the calls that really rang) and the store:

* the restarted engine starts from exactly the state the journal holds: every agent in
  its state with its call, the callers waiting in the same order, every unfinished call
  in its phase, with its original arrival time;
* every call that ever rang has exactly one call record, and the journal saw it arrive;
* agents that were talking or in wrap-up when the engine died finish those calls after
  the restart, and the callers who were waiting are served or give up with a wait that
  runs from their arrival before the crash.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from cti.errors import RoutingError
from cti.store.journal import Journal, journal_path_for
from queue_engine import inputs as ri
from tests.cti.test_service import FakeStore
from tests.harness import engine_service
from tests.recovery.crash_harness import agent_ids, harness_config, ledger_path_for, picture

pytestmark = pytest.mark.recovery

ROOT = Path(__file__).resolve().parents[2]
SEED = 5
AGENTS = 5


class Harness:
    """One run of the harness in its own process; its JSON lines arrive on a queue."""

    def __init__(self, db: Path, *args: str) -> None:
        self.err = db.with_name(f"harness-{time.monotonic_ns()}.err")
        with self.err.open("w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.recovery.crash_harness", "--db", str(db), *args],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def next(self, deadline: float) -> dict[str, Any]:
        """The next line, or a loud failure if the process ends or time is up first."""
        try:
            line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            self.process.kill()
            pytest.fail(f"the harness said nothing in time; its stderr:\n{self.stderr()}")
        if line is None:
            pytest.fail(
                f"the harness ended (exit {self.process.wait()}) early; stderr:\n{self.stderr()}"
            )
        return line

    def until(self, event: str, deadline: float) -> dict[str, Any]:
        while (line := self.next(deadline))["event"] != event:
            pass
        return line

    def stderr(self) -> str:
        return self.err.read_text()[-4000:]


def replay_journal(db: Path) -> tuple[dict[str, Any], list[str]]:
    """What the dead engine knew: its journal replayed into a router the service builds
    from the harness's configuration. Also every call id the journal saw arrive."""
    agents = {a: ["general"] for a in agent_ids(AGENTS)}
    service = engine_service(FakeStore(customers=[]), config=harness_config(), agents=agents)
    arrived: list[str] = []
    with Journal.open(journal_path_for(db)) as journal:
        for at, event in journal.replay():
            if isinstance(event, ri.CallArrives):
                arrived.append(event.call_id)
            with contextlib.suppress(RoutingError):  # refused live too
                service.router.handle(event, at)
        assert journal.bad_rows == []
    state: dict[str, Any] = json.loads(json.dumps(picture(service.router)))
    return state, arrived


def far_end(db: Path) -> tuple[list[str], set[str]]:
    """From the trunk's ledger: every call that rang, in order, and those still live."""
    rang: list[str] = []
    live: set[str] = set()
    for raw in ledger_path_for(db).read_text().splitlines():
        entry = json.loads(raw)
        if "ring" in entry:
            rang.append(entry["ring"])
            live.add(entry["ring"])
        elif "end" in entry:
            live.discard(entry["end"])
    return rang, live


def busy_enough(status: dict[str, Any]) -> bool:
    agents = status["agents"]
    return bool(
        status["waiting"] >= 1
        and agents["talking"] >= 1
        and agents["wrap_up"] + agents["reserved"] >= 1
    )


def test_a_killed_engine_restarts_with_every_call_agent_and_record(tmp_path: Path) -> None:
    db = tmp_path / "cti.db"
    rng = random.Random(SEED)
    start = time.monotonic()

    # 1. Run, and kill -9 at a seeded moment once the center is busy.
    first = Harness(db, "--seconds", "30", "--seed", str(SEED), "--agents", str(AGENTS))
    first.until("started", start + 20)
    # The moment: the k-th busy status report (seeded; one each 0.1 s), not a span of
    # real time.
    for _ in range(rng.randint(10, 30)):
        while not busy_enough(status := first.until("status", start + 25)):
            pass
    first.process.send_signal(signal.SIGKILL)
    assert first.process.wait(timeout=10) == -signal.SIGKILL
    assert status["waiting"] >= 1

    # 2. What the engine knew when it died, from its journal alone.
    at_crash, arrived_before = replay_journal(db)
    rang_before, live_at_far_end = far_end(db)
    unfinished = at_crash["calls"]
    talking = {c for c, call in unfinished.items() if call["phase"] == "talking"}
    wrapping = {c for c, call in unfinished.items() if call["phase"] == "wrap_up"}
    queued = {c for c, call in unfinished.items() if call["phase"] in ("queued", "offered")}
    assert talking, f"the crash should catch calls talking: {unfinished}"
    assert queued, f"the crash should catch calls queued: {unfinished}"
    lost = {c for c in talking | queued if c not in live_at_far_end}  # ended as it died
    unknown = set(rang_before) - set(arrived_before)  # rang as it died: never journaled

    # 3. Start again: the engine recovers, then runs a little more traffic and drains.
    second = Harness(db, "--seconds", "3", "--seed", str(SEED), "--agents", str(AGENTS), "--resume")
    started = second.until("started", time.monotonic() + 20)
    report = started["recovery"]
    assert report["bad_rows"] == []
    assert report["failed"] == 0
    assert report["adopted"] == len((talking | queued) - lost)
    assert report["dropped"] == len(lost)
    recovered_now = started["now"]
    for agent_id, agent in at_crash["agents"].items():
        now_agent = started["agents"][agent_id]
        if agent["call_id"] in lost:
            continue  # its call was routed as hung up during recovery
        assert now_agent == agent, f"agent {agent_id} came back as {now_agent}, was {agent}"
    expected_calls = {c: call for c, call in unfinished.items() if c not in lost}
    assert {c: started["calls"][c] for c in expected_calls} == expected_calls
    if not lost:
        assert started["waiting"] == at_crash["waiting"]  # the same callers, same order
    done = second.until("done", time.monotonic() + 60)
    assert second.process.wait(timeout=20) == 0, second.stderr()
    assert done["calls"] == {}
    assert all(a["state"] in ("ready", "not_ready") for a in done["agents"].values())
    for line in second.stderr().splitlines():
        assert not line.startswith(("ERROR", "Traceback")), second.stderr()

    # 4. Account for every call.
    rang, _ = far_end(db)
    assert len(rang) == len(set(rang))
    assert set(rang_before) <= set(rang)
    _, arrived = replay_journal(db)
    assert sorted(arrived) == sorted(rang)  # the engine saw every call that rang, once
    records = _records(db)
    assert sorted(records) == sorted(rang)  # one record each, not one lost
    assert len(records) >= 10
    assert unknown <= set(records)
    for call_id in talking - lost:
        r = records[call_id]
        assert (r["outcome"], r["agent_id"]) == ("answered", unfinished_agent(at_crash, call_id))
        assert r["ended_at"] > recovered_now  # the bot hung up after the restart
    for call_id in wrapping:
        r = records[call_id]
        assert (r["outcome"], r["agent_id"]) == ("answered", unfinished_agent(at_crash, call_id))
        assert r["ended_at"] + r["wrap_up_s"] > recovered_now  # wrap-up finished after it
    for call_id in queued - lost:
        r = records[call_id]
        assert r["arrived_at"] == unfinished[call_id]["arrived_at"]
        left_queue = r["answered_at"] if r["answered_at"] is not None else r["ended_at"]
        assert left_queue > recovered_now
        assert left_queue - r["arrived_at"] > recovered_now - r["arrived_at"] > 0


def unfinished_agent(state: dict[str, Any], call_id: str) -> str:
    [agent_id] = [a for a, agent in state["agents"].items() if agent["call_id"] == call_id]
    return str(agent_id)


def _records(db: Path) -> dict[str, dict[str, Any]]:
    connection = sqlite3.connect(db)
    connection.row_factory = sqlite3.Row
    try:
        rows = connection.execute("SELECT * FROM call_records").fetchall()
    finally:
        connection.close()
    records = {row["call_id"]: dict(row) for row in rows}
    assert len(records) == len(rows)
    return records
