"""`cti serve` runs campaigns: started, paused and stopped from "another terminal" (a
second connection to the store, as ``cti campaign start|pause|stop`` is), dialled on the
simulator trunk and worked by a bot agent; the campaign's status published retained.
On virtual time: the engine, the dialer and the SQLite store as ``cti serve`` runs them."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from cti import topics
from cti.app.commands.serve import serve
from cti.bus.memory import InMemoryBus
from cti.clock import run_virtual, wall_time
from cti.config import BrokerSettings, load_config
from cti.protocol import CallOffered, CampaignStatus
from cti.store.campaigns import CampaignSettings, CampaignStore
from cti.store.database import Store
from cti.store.leads import parse_leads
from queue_engine.pacing import DialMode
from simulators.bots import BotAgent, BotBehaviour
from telephony_adapters.base import DialEnd
from telephony_adapters.sim import SimTrunk
from tests.harness import elapse_until

pytestmark = pytest.mark.dialer

LEADS = "number,name\n" + "".join(f"1380000{i:04d},客户{i}\n" for i in range(1, 41))


async def attempts(db: Path) -> list[tuple[str, str]]:
    async with await Store.open(db) as other:
        rows = await other.fetch("test", "SELECT e164, outcome FROM dial_attempts ORDER BY id")
    return [(str(a), str(b)) for a, b in rows]


async def set_state(db: Path, state: str) -> None:
    """What `cti campaign start|pause|stop spring` does, from another process."""
    async with await Store.open(db) as other:
        await CampaignStore(other).set_campaign_state("spring", state)


def test_serve_follows_start_pause_and_stop_from_the_store(tmp_path: Path) -> None:
    db = tmp_path / "cti.db"

    async def body() -> None:
        async with await Store.open(db) as store:
            cs = CampaignStore(store)
            settings = CampaignSettings(
                name="spring", mode=DialMode.PROGRESSIVE, queue="outbound",
                script="outbound_survey",
            )  # fmt: skip
            await cs.create_campaign(settings, wall_time())
            report = await cs.import_leads("spring", "list1", parse_leads(LEADS, "CN"), wall_time())
            assert report.imported == 40
        config = load_config(
            overrides={
                "queues": [{"name": "general"}, {"name": "outbound", "wrap_up_s": 3.0}],
                "agents": [{"id": "1001", "queues": {"outbound": 0.0}}],
            }
        )
        bus = InMemoryBus()
        trunk = SimTrunk("sim")
        trunk.far_end["+8613800000002"] = DialEnd.BUSY
        stop = asyncio.Event()
        offers: list[CallOffered] = []
        statuses: list[CampaignStatus] = []
        behaviour = BotBehaviour(answer_delay_s=0.5, mean_handle_s=30.0, wrap_up_s=1.0,
                                 dispositions=("sale",))  # fmt: skip

        async def watch() -> None:
            async with (
                bus.subscribe(topics.agent_events("1001")) as agent,
                bus.subscribe(topics.ALL_CAMPAIGN_STATUS) as campaigns,
            ):

                async def offered() -> None:
                    async for _t, m in agent:
                        if isinstance(m, CallOffered):
                            offers.append(m)

                async def status() -> None:
                    async for _t, m in campaigns:
                        if isinstance(m, CampaignStatus):
                            statuses.append(m)

                await asyncio.gather(offered(), status())

        watcher = asyncio.create_task(watch())
        engine = asyncio.create_task(
            serve(config, BrokerSettings(), db, None, stop=stop, bus=bus, lines=[trunk],
                  campaign_poll_s=2.0)
        )  # fmt: skip
        await elapse_until(lambda: bool(statuses))  # the engine is up
        bot = asyncio.create_task(BotAgent(bus, "1001", behaviour, random.Random(3)).run())
        await asyncio.sleep(30)
        assert trunk.dialled == []  # not started: nothing dialled
        assert statuses[-1].state == "stopped"
        assert not statuses[-1].dialling

        await set_state(db, "running")
        await elapse_until(lambda: len(offers) >= 3)
        assert all(o.pop.queue == "outbound" for o in offers)
        assert offers[0].pop.script is not None
        assert offers[0].pop.script.name == "Satisfaction survey"  # the campaign's script
        await elapse_until(lambda: statuses[-1].dialling and statuses[-1].contacts_today >= 1)
        latest = statuses[-1]
        assert (latest.state, latest.mode, latest.line) == ("running", "progressive", "sim")
        assert latest.dials_today >= latest.contacts_today >= 1
        assert latest.agents_logged_in == 1
        assert latest.abandon_cap == 0.03

        await set_state(db, "paused")
        await elapse_until(lambda: statuses[-1].state == "paused")
        await asyncio.sleep(60)  # calls under way finish
        dialled = len(trunk.dialled)
        await asyncio.sleep(300)
        assert len(trunk.dialled) == dialled  # paused: no new dials

        await set_state(db, "running")
        await elapse_until(lambda: len(trunk.dialled) > dialled)  # resumed

        await set_state(db, "stopped")
        await elapse_until(lambda: not statuses[-1].dialling)
        await asyncio.sleep(60)
        stopped_at = len(trunk.dialled)
        await asyncio.sleep(300)
        assert len(trunk.dialled) == stopped_at

        stop.set()
        await asyncio.wait_for(engine, 60)
        for task in (bot, watcher):
            task.cancel()
        await asyncio.gather(bot, watcher, return_exceptions=True)
        rows = await attempts(db)
        assert len(rows) == len(trunk.dialled)  # every dial noted in the store
        assert all(outcome for _, outcome in rows)  # and each one's outcome
        assert ("+8613800000002", "busy") in rows or "+8613800000002" not in dict(rows)
        assert {outcome for _, outcome in rows} <= {"connected", "busy"}

    run_virtual(body)
