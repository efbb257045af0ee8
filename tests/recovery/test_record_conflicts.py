"""A call id used again (a line that restarted its numbering after a journal cut) never
drops a record: the second is kept under a suffixed id, logged and counted, and the
supervisors are told. A restart storing the same records again is no conflict."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from cti import topics
from cti.protocol import (
    AcceptOffer,
    CallArrived,
    CompleteWrapUp,
    EngineHealth,
    HangUp,
    Login,
    SetReady,
)
from cti.store.database import Store
from cti.store.journal import Journal
from tests.cti.test_journal import Engine, _ForgetfulLine, engine
from tests.harness import virtual

pytestmark = pytest.mark.recovery


async def _one_call(e: Engine, call_id: str, ani: str) -> None:
    await e.service.handle_line_event(CallArrived(call_id=call_id, ani=ani, line="sim"))
    hand = e.hand("1001")
    await hand.send(
        AcceptOffer(agent_id="1001", call_id=call_id),
        HangUp(agent_id="1001", call_id=call_id),
        CompleteWrapUp(agent_id="1001", call_id=call_id, disposition="ok"),
    )
    await e.service.flush()


def test_a_reused_call_id_keeps_both_records_logs_counts_and_alerts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def body() -> None:
        store = await Store.open(tmp_path / "cti.db")
        try:
            # Two runs, each with a journal of its own (the first was cut): the line
            # numbers its calls from 1 in each.
            for run, ani in ((1, "19900000001"), (2, "19900000002")):
                with Journal.open(tmp_path / f"journal-{run}.db") as journal:
                    async with engine(journal, _ForgetfulLine(), store, ["1001"]) as e:
                        await e.hand("1001").send(Login(agent_id="1001"), SetReady(agent_id="1001"))
                        with caplog.at_level(logging.ERROR, logger="cti.store.calls"):
                            await _one_call(e, "line-1", ani)
                        health = e.service.health()
                        retained = e.bus.retained(topics.engine_health())
            records = await store.calls.records()
            assert [(r.call_id, r.ani) for r in records] == [
                ("line-1", "19900000001"),
                ("line-1.conflict2", "19900000002"),
            ]
            assert (health.ok, health.record_conflicts) == (False, 1)
            assert isinstance(retained, EngineHealth)
            assert retained.record_conflicts == 1
            assert "call id already used" in retained.alerts[0]
            (line,) = [r.getMessage() for r in caplog.records if r.name == "cti.store.calls"]
            assert "19900000001" in line
            assert "19900000002" in line
            assert [(c, s) for c, s, _ in await store.calls.stored_conflicts()] == [
                ("line-1", "line-1.conflict2")
            ]
        finally:
            await store.close()

    virtual(body)


def test_a_restart_storing_the_same_records_again_is_no_conflict(tmp_path: Path) -> None:
    async def body() -> None:
        store = await Store.open(tmp_path / "cti.db")
        try:
            with Journal.open(tmp_path / "journal.db") as journal:
                async with engine(journal, _ForgetfulLine(), store, ["1001"]) as e:
                    await e.hand("1001").send(Login(agent_id="1001"), SetReady(agent_id="1001"))
                    await _one_call(e, "line-1", "19900000001")
                # The same journal replayed: its record is stored again, idempotently.
                async with engine(journal, _ForgetfulLine(), store, ["1001"]) as again:
                    report = again.service.recovery
                    assert report is not None
                    assert (report.records_restored, report.record_conflicts) == (0, 0)
                    assert again.service.health().ok
            assert [r.call_id for r in await store.calls.records()] == ["line-1"]
        finally:
            await store.close()

    virtual(body)
