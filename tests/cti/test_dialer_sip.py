"""A campaign dialled on the SIP line against SIPp as the callees (marker ``sipp``): the
dialer waits for each INVITE's real outcome and records it on the right lead: the one
who answers reaches the agent, 486 is busy, the one who rings unanswered is no answer
(the line's CANCEL). Real time (SIPp is a real peer); every wait is bounded."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cti.bus.memory import InMemoryBus
from cti.config import load_config
from cti.engine.dialer import CampaignRunner, DialingLine
from cti.models import AgentConfig
from cti.store.campaigns import CampaignSettings
from queue_engine.campaign import Campaign, Lead
from queue_engine.pacing import DialMode, PacingSettings
from simulators.bots import BotAgent, BotBehaviour
from telephony_adapters.sipline.line import SipLine
from telephony_adapters.sipline.params import SipLineParams
from tests.cti.test_service import FakeStore
from tests.harness import engine_center, until
from tests.telephony_adapters.sipline.sipp import Sipp

pytestmark = [pytest.mark.sipp, pytest.mark.dialer]

NUMBERS = ("+8613800000001", "+8613800000002", "+8613800000003")  # answers, busy, rings


def midday_zone() -> str:
    """A fixed-offset zone where it is about noon now: inside calling hours whenever the
    test runs."""
    offset = 12 - time.gmtime().tm_hour
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


@pytest.fixture
async def sipp(tmp_path: Path) -> AsyncIterator[Sipp]:
    peer = Sipp(tmp_path)
    yield peer
    await peer.stop()


async def test_a_campaign_on_the_sip_line_records_sipps_outcomes(sipp: Sipp) -> None:
    await sipp.start("callee_campaign.xml", "-m", "3")
    settings = SipLineParams(
        name="trunk", bind_host="127.0.0.1", bind_port=0, outbound_proxy=f"127.0.0.1:{sipp.port}"
    )
    sip = SipLine(settings, dial_timeout_s=2.0)
    line = DialingLine(sip)
    config = load_config(overrides={"queues": [{"name": "general"}, {"name": "outbound"}]})
    bus = InMemoryBus()
    store = FakeStore()
    zone = (midday_zone(),)
    core = Campaign("spring", leads=[Lead(i, n, zone) for i, n in enumerate(NUMBERS, 1)])
    campaign = CampaignSettings(
        name="spring", mode=DialMode.POWER, queue="outbound",
        pacing=PacingSettings(power_ratio=3.0),
    )  # fmt: skip
    behaviour = BotBehaviour(answer_delay_s=0.2, mean_handle_s=0.5, wrap_up_s=0.2,
                             dispositions=("sale",))  # fmt: skip
    tasks: list[asyncio.Task[None]] = []
    agents = [AgentConfig(id="a1", queues={"outbound": 0.0})]
    async with engine_center(
        store, config=config, agents=agents, lines=[line], bus=bus, recorder=store
    ) as center:
        service = center.service
        runner = CampaignRunner(service, campaign, core, line, tick_s=0.2)
        try:
            bot = BotAgent(bus, "a1", behaviour, random.Random(1))
            tasks.append(asyncio.create_task(bot.run()))
            await until(
                lambda: service.router.snapshot("outbound", service.now()).agents_ready == 1
            )
            tasks.append(asyncio.create_task(runner.run()))
            await until(lambda: all(lead.last_outcome for lead in core.leads.values()))
            await until(lambda: any(r.call_id.startswith("spring-") for r in store.records))
            run = await sipp.wait()
            assert run.returncode == 0, run.explain()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    outcomes = {lead.number: lead.last_outcome for lead in core.leads.values()}
    assert outcomes == {
        "+8613800000001": "connected",
        "+8613800000002": "busy",
        "+8613800000003": "no_answer",
    }
    assert runner.dials == 3
    [record] = [r for r in store.records if r.call_id.startswith("spring-")]
    assert (record.outcome, record.agent_id, record.disposition) == ("answered", "a1", "sale")
    assert sip.outcomes[record.call_id].outcome == "answered"
    assert not sip.ua.calls  # nothing left on the line
