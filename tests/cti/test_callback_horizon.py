"""Callbacks from any source: a horizon for their time, unguessable ids (issue 17)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cti import topics
from cti.config import load_config
from cti.errors import CtiError
from cti.protocol import CommandResult, ScheduleCallback
from cti.store.journal import Journal
from tests.cti.test_service import FakeStore, center
from tests.harness import elapse_until, engine_center, virtual

pytestmark = pytest.mark.security


@pytest.mark.parametrize(
    "local_time", ["9999-12-31T23:59", "9999-12-31T23:59-12:00", "2027-01-06T16:00"]
)
def test_an_agents_callback_beyond_the_horizon_is_refused(local_time: str) -> None:
    async def body() -> None:
        async with center(["1001"]) as c:
            a = c.agents["1001"]
            result = await a.do(
                ScheduleCallback(agent_id="1001", number="13812345678", local_time=local_time)
            )
            assert not result.ok
            assert "366 days ahead" in result.error
            assert local_time in result.error
            assert c.service.router.active_call_ids() == []
            # Within the horizon (a year less a day from 2026-01-05) it is taken.
            ok = await a.do(
                ScheduleCallback(
                    agent_id="1001", number="13812345678", local_time="2027-01-04T08:00"
                )
            )
            assert ok.ok, ok.error
            assert len(c.service.router.active_call_ids()) == 1

    virtual(body)


def test_callback_ids_are_random_and_not_sequential() -> None:
    async def body() -> None:
        async with center([]) as c:
            ids = [await c.service.schedule_callback("13812345678") for _ in range(50)]
            assert len(set(ids)) == 50
            assert all(i.startswith("cb-") and len(i) >= 3 + 21 for i in ids)
            # No shared counter or clock in them: even their first characters differ.
            assert len({i[3:8] for i in ids}) > 40

    virtual(body)


def test_a_refused_far_callback_leaves_the_journal_cuttable(tmp_path: Path) -> None:
    async def body() -> None:
        config = load_config(overrides={"engine": {"status_interval_s": 1.0}})
        store = FakeStore()
        with Journal.open(tmp_path / "j.db") as journal:
            async with (
                engine_center(store, config=config, recorder=store, journal=journal) as center,
                center.bus.subscribe(topics.agent_events("1001")) as events,
            ):
                service = center.service
                with pytest.raises(CtiError, match="days ahead"):
                    await service.schedule_callback("13812345678", "9999-12-31T23:59")
                command = ScheduleCallback(
                    agent_id="1001", number="13812345678", local_time="9999-12-31"
                )
                await center.send(command)
                async with asyncio.timeout(60):  # a safety net
                    async for _, result in events:
                        if isinstance(result, CommandResult):
                            break
                assert isinstance(result, CommandResult)
                assert (result.command_id, result.ok) == (command.command_id, False)
                assert service.router.active_call_ids() == []
                # The centre emptied: the journal is cut (at the next tending).
                await elapse_until(lambda: not journal.has_uncut_rows)

    virtual(body)
