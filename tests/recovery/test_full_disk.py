"""A full disk under the journal and the store: routing goes on, nothing is lost.

The journal and the store live on a small tmpfs mounted for the test (CI runs as root;
without the right to mount the test fails, it never skips). The disk is filled to the
last byte, 30 calls go through the engine, then the space comes back. See
``docs/durability.md`` (Disk full).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cti import topics
from cti.bus.memory import InMemoryBus
from cti.errors import RoutingError
from cti.models import AgentConfig
from cti.protocol import (
    AcceptOffer,
    CompleteWrapUp,
    EngineHealth,
    HangUp,
    Login,
    SetReady,
)
from cti.store.database import Store
from cti.store.journal import Journal, journal_path_for
from queue_engine.router import Router
from telephony_adapters.sim import SimTrunk
from tests.cti.test_journal import CONFIG, _picture, engine
from tests.harness import virtual

pytestmark = pytest.mark.recovery

AGENTS = ["1001", "1002"]
CALLS = 30


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs on {disk} (run as root): {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path) -> Path:
    """Write a file until the disk is full (ENOSPC), to its last page."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for chunk in (1 << 20, 1 << 16, 1 << 12, 1 << 9):
            while True:
                try:
                    os.write(fd, b"\0" * chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return filler


def _changes(healths: list[EngineHealth]) -> list[EngineHealth]:
    """The publications that began, changed or ended a trouble (not the refreshes)."""
    return [h for n, h in enumerate(healths) if n == 0 or h.kinds != healths[n - 1].kinds]


def test_a_full_disk_keeps_routing_alerts_once_and_writes_everything_back(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def body() -> None:
        store = await Store.open(small_disk / "cti.db")
        journal = Journal.open(journal_path_for(small_disk / "cti.db"))
        healths: list[EngineHealth] = []
        healthy_again = asyncio.Event()

        async def listen(bus: InMemoryBus) -> None:
            listening = asyncio.Event()

            async def collect() -> None:
                async with bus.subscribe(topics.engine_health()) as sub:
                    listening.set()
                    async for _, message in sub:
                        assert isinstance(message, EngineHealth)
                        healths.append(message)
                        if message.ok:
                            healthy_again.set()

            asyncio.get_running_loop().create_task(collect())
            await listening.wait()

        trunk = SimTrunk()
        try:
            async with engine(journal, trunk, store, AGENTS, before_start=listen) as e:
                service = e.service
                for a in AGENTS:
                    await e.hand(a).send(Login(agent_id=a), SetReady(agent_id=a))
                filler = _fill(small_disk)
                calls = []
                with caplog.at_level(logging.WARNING):
                    for n in range(CALLS):
                        call = trunk.ring(f"1990000{n:04d}")
                        await asyncio.sleep(1)
                        agent = service.router.call_agent(call)
                        assert agent is not None, f"call {n} ({call}) not offered to an agent"
                        await e.hand(agent).send(
                            AcceptOffer(agent_id=agent, call_id=call),
                            HangUp(agent_id=agent, call_id=call),
                            CompleteWrapUp(agent_id=agent, call_id=call, disposition="ok"),
                        )
                        await e.hand(agent).send(SetReady(agent_id=agent))
                        calls.append(call)
                    await service.flush()
                    outage = service.health()
                logged = [r for r in caplog.records if r.name.startswith("cti")]
                # The disk was full: the journal and the store held what they could not write.
                assert outage.journal_held > 0, outage
                assert outage.records_held > 0, outage
                assert (outage.inputs_lost, outage.records_lost) == (0, 0)
                # Each trouble alerted once as it began (the journal's, then the store's),
                # not once per call; in between, the same kinds again each status interval
                # with the counts of the moment, and the start of the trouble kept.
                changes = _changes(healths)
                assert [h.kinds for h in changes] == [("journal",), ("journal", "records")]
                assert "journal" in healths[0].alerts[0]
                assert "disk is full" in healths[0].alerts[0]
                assert len(healths) > len(changes) + CALLS // 2  # refreshed as it lasted
                assert {h.since_wall for h in healths} == {healths[0].since_wall}
                assert healths[-1].records_held > changes[1].records_held  # counts move
                assert healths[-1].journal_held > changes[0].journal_held
                # A few lines for the whole outage, not one (or a traceback) per input.
                assert len(logged) <= 6, [r.getMessage() for r in logged]

                filler.unlink()  # the space comes back
                service.retry_writes()
                async with asyncio.timeout(120):  # a safety net; the event is the wait
                    await healthy_again.wait()
                await service.flush()
                assert [h.ok for h in _changes(healths)] == [False, False, True]
                assert healths[-1].since_wall is None
                assert service.health().ok
                assert journal.spooled == 0
                records = {r.call_id: r for r in await store.calls.records()}
                assert sorted(records) == sorted(calls)
                assert {r.outcome for r in records.values()} == {"answered"}
                # The journal on disk replays to the very router that ran the outage.
                now = service.now()
                rebuilt = Router(
                    CONFIG.queues,
                    max_missed_offers=CONFIG.engine.max_missed_offers,
                    agents=[AgentConfig(id=a, queues={"general": 0.0}) for a in AGENTS],
                    seed=CONFIG.engine.seed,
                )
                with Journal.open(journal.path) as reader:
                    for at, event in reader.replay():
                        with contextlib.suppress(RoutingError):  # refused live too
                            rebuilt.handle(event, at)
                assert _picture(rebuilt, now) == _picture(service.router, now)
        finally:
            journal.close()
            await store.close()

    virtual(body)
