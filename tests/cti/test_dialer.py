"""The dialer shell on virtual time: a campaign through the engine service, a simulated
far end on the sim trunk, and bot agents who work the answered calls over the bus."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from cti.bus.memory import InMemoryBus
from cti.clock import run_virtual, wall_time
from cti.config import load_config
from cti.engine.dialer import MODEM_MODES, CampaignRunner, DialingLine, dial_through_line
from cti.engine.service import EngineService
from cti.errors import CtiError, TelephonyError
from cti.models import AgentConfig, CallDetailRecord
from cti.store.campaigns import CampaignSettings
from queue_engine.campaign import Campaign, Lead, LeadState
from queue_engine.pacing import DialMode, DialResult
from simulators.bots import BotAgent, BotBehaviour
from simulators.dialer_sim import FarEnd
from telephony_adapters.base import TelephonyAdapter
from telephony_adapters.sim import SimCallState, SimTrunk
from tests.cti.test_service import FakeStore
from tests.harness import engine_center, engine_service, until

pytestmark = pytest.mark.dialer

#: Virtual time starts at 08:00 UTC: 16:00 in Shanghai, inside calling hours.
SHANGHAI = ("Asia/Shanghai",)


@dataclass
class Dialer:
    service: EngineService
    trunk: SimTrunk
    line: DialingLine
    runner: CampaignRunner
    store: FakeStore


def leads(n: int, zones: tuple[str, ...] = SHANGHAI) -> list[Lead]:
    return [Lead(i, f"+86138{i:08d}", zones) for i in range(1, n + 1)]


@asynccontextmanager
async def dialer(
    mode: DialMode,
    *,
    agents: int = 5,
    campaign: Campaign | None = None,
    far_end: FarEnd | None = None,
    answer_delay_s: float = 0.3,
) -> AsyncIterator[Dialer]:
    config = load_config(
        overrides={"queues": [{"name": "general"}, {"name": "outbound", "wrap_up_s": 5.0}]}
    )
    ids = [f"a{i}" for i in range(1, agents + 1)]
    bus = InMemoryBus()
    trunk = SimTrunk()
    far = far_end or FarEnd(0.3, 0.1, 0.1, random.Random(7))
    line = DialingLine(trunk, place=far.place)
    store = FakeStore()
    agents_config = [AgentConfig(id=a, queues={"outbound": 0.0}) for a in ids]
    settings = CampaignSettings(name="spring", mode=mode, queue="outbound")
    core = campaign or Campaign("spring", leads=leads(400))
    behaviour = BotBehaviour(answer_delay_s=answer_delay_s, mean_handle_s=60.0, wrap_up_s=2.0,
                             dispositions=("sale",))  # fmt: skip
    bots = [BotAgent(bus, a, behaviour, random.Random(i)) for i, a in enumerate(ids)]
    async with engine_center(
        store, config=config, agents=agents_config, lines=[line], bus=bus, recorder=store
    ) as center:
        service = center.service
        runner = CampaignRunner(service, settings, core, line, tick_s=1.0)
        tasks = [asyncio.create_task(b.run()) for b in bots]
        try:
            await until(  # the bots log in and go Ready
                lambda: service.router.snapshot("outbound", service.now()).agents_ready == agents
            )
            yield Dialer(service, trunk, line, runner, store)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def campaign_records(store: FakeStore) -> list[CallDetailRecord]:
    return [r for r in store.records if r.queue == "outbound"]


def test_predictive_campaign_dials_connects_and_records_dispositions() -> None:
    async def body() -> None:
        async with dialer(DialMode.PREDICTIVE) as d:
            run = asyncio.create_task(d.runner.run())
            await asyncio.sleep(3600)  # the first live answers of a day go one per agent
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
            await d.service.flush()
            records = campaign_records(d.store)
            answered = [r for r in records if r.outcome == "answered"]
            assert len(answered) > 50
            assert all(r.disposition == "sale" for r in answered)
            assert all(r.kind == "outbound" for r in records)  # not inbound in reports
            core = d.runner.campaign
            completed = [lead for lead in core.leads.values() if lead.state is LeadState.COMPLETED]
            # connected leads: those with a record, and those whose agents still talk
            assert len(answered) <= len(completed) <= len(answered) + 5
            f = core.abandon_figures(wall_time())
            abandoned = [r for r in records if r.outcome == "abandoned"]
            assert f.today_abandoned == len(abandoned)
            assert f.today_live == len(completed) + len(abandoned)
            assert d.runner.pacer.contact_rate == pytest.approx(0.3, abs=0.08)
            status = d.runner.status()
            assert status["dials"] == d.runner.dials > len(answered)
            assert status["mode"] == "predictive"

    run_virtual(body)


def test_progressive_campaign_abandons_nothing_and_never_dials_more_than_agents() -> None:
    async def body() -> None:
        peak = 0

        class Watched(FarEnd):
            """The far end, noting the dials in flight as each one is placed."""

            async def place(
                self, line: TelephonyAdapter, number: str, call_id: str, ring_timeout_s: float
            ) -> DialResult:
                nonlocal peak
                peak = max(peak, d.runner.capacity().in_flight)
                return await super().place(line, number, call_id, ring_timeout_s)

        far = Watched(0.3, 0.1, 0.1, random.Random(7))
        async with dialer(DialMode.PROGRESSIVE, agents=3, far_end=far) as d:
            run = asyncio.create_task(d.runner.run())
            await asyncio.sleep(1200)
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
            await d.service.flush()
            records = campaign_records(d.store)
            assert any(r.outcome == "answered" for r in records)
            assert not any(r.outcome == "abandoned" for r in records)
            assert 1 <= peak <= 3

    run_virtual(body)


def test_an_answered_call_without_an_agent_within_two_seconds_is_abandoned() -> None:
    async def body() -> None:
        # agents slower than the window: every answered call is abandoned, and hung up
        everyone = FarEnd(1.0, 0.0, 0.0, random.Random(1))
        core = Campaign("spring", leads=leads(3))
        async with dialer(
            DialMode.PROGRESSIVE, agents=1, campaign=core, far_end=everyone, answer_delay_s=5.0
        ) as d:
            run = asyncio.create_task(d.runner.run())
            await asyncio.sleep(30)
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
            await d.service.flush()
            records = campaign_records(d.store)
            assert records
            assert all(r.outcome == "abandoned" for r in records)
            assert d.trunk.calls() == {}  # the dialer hung each one up
            f = core.abandon_figures(wall_time())
            assert f.today_abandoned == f.today_live == len(records)
            assert d.runner.pacer.recent_abandon_rate == 1.0

    run_virtual(body)


def test_no_dial_outside_calling_hours_or_to_a_do_not_call_number() -> None:
    async def body() -> None:
        # 08:00 UTC is 03:00 in New York: those leads wait; DNC numbers never ring
        core = Campaign(
            "spring",
            leads=[*leads(20), *(Lead(100 + i, f"+1212555{i:04d}", ("America/New_York",))
                                  for i in range(5))],
            global_dnc={"+8613800000001"},
            campaign_dnc={"+8613800000002"},
        )  # fmt: skip
        async with dialer(DialMode.POWER, campaign=core) as d:
            run = asyncio.create_task(d.runner.run())
            await asyncio.sleep(600)
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
            numbers = {n for _, n in d.trunk.dialled}
            assert numbers  # some were answered (and so reached the trunk)
            assert not any(n.startswith("+1") for n in numbers)
            assert not {"+8613800000001", "+8613800000002"} & numbers
            assert core.leads[1].state is LeadState.DO_NOT_CALL
            assert core.refusals.outside_hours == 5
            with pytest.raises(CtiError, match="do-not-call"):
                await d.runner.dial_preview(2)
            with pytest.raises(CtiError, match="outside calling hours"):
                await d.runner.dial_preview(101)

    run_virtual(body)


def test_preview_dials_only_when_the_agent_asks() -> None:
    async def body() -> None:
        async with dialer(DialMode.PREVIEW) as d:
            run = asyncio.create_task(d.runner.run())
            await asyncio.sleep(60)
            assert d.runner.dials == 0
            lead = d.runner.next_preview()
            assert lead is not None
            call_id = await d.runner.dial_preview(lead.lead_id)
            assert d.runner.dials == 1
            await asyncio.sleep(60)
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
            assert call_id.startswith("spring-")
            assert d.runner.campaign.leads[lead.lead_id].attempts == 1

    run_virtual(body)


def test_a_modem_line_refuses_predictive_mode() -> None:
    async def body() -> None:
        trunk = SimTrunk()
        line = DialingLine(trunk, max_lines=1, modes=MODEM_MODES)
        config = load_config(overrides={"queues": [{"name": "general"}, {"name": "outbound"}]})
        service = engine_service(
            FakeStore(), config=config, lines=[line], agents={"a1": ["outbound"]}
        )
        settings = CampaignSettings(name="c", mode=DialMode.PREDICTIVE, queue="outbound")
        with pytest.raises(CtiError, match="cannot dial in predictive mode"):
            CampaignRunner(service, settings, Campaign("c"), line)
        ok = CampaignRunner(
            service, settings.model_copy(update={"mode": DialMode.PROGRESSIVE}), Campaign("c"), line
        )
        assert ok.pacer.settings.max_lines == 1

    run_virtual(body)


class _Refusing(SimTrunk):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error

    async def dial(self, number: str, *, call_id: str | None = None) -> str:
        raise TelephonyError(self.error)


@pytest.mark.parametrize(
    ("error", "result"),
    [
        ("line 'sip': 486 Busy Here", DialResult.BUSY),
        ("modem: NO ANSWER", DialResult.NO_ANSWER),
        ("modem: NO CARRIER", DialResult.NO_ANSWER),
        ("line 'sip': 404 Not Found", DialResult.FAILED),
    ],
)
def test_a_real_lines_dial_errors_are_read_as_outcomes(error: str, result: DialResult) -> None:
    async def body() -> None:
        assert await dial_through_line(_Refusing(error), "+8613800000001", "c1", 25.0) is result

    run_virtual(body)


def test_a_dial_that_rings_past_the_timeout_is_no_answer() -> None:
    class Slow(SimTrunk):
        async def dial(self, number: str, *, call_id: str | None = None) -> str:
            await asyncio.sleep(60)
            return await super().dial(number, call_id=call_id)

    async def body() -> None:
        trunk = Slow()
        assert await dial_through_line(trunk, "+8613800000001", "c1", 25.0) is DialResult.NO_ANSWER
        assert trunk.state("c1") is not SimCallState.ANSWERED

    run_virtual(body)
