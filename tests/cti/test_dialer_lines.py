"""The dialer on a line that reports its dials' outcomes (here the simulator trunk with
its far end told what to do; SIP and modem in their own tests): every outcome lands on
the right lead, the engine never hears of the dials that did not connect, and the agent
gets the campaign's script, not the queue's."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest

from cti import topics
from cti.bus.memory import InMemoryBus
from cti.clock import run_virtual
from cti.config import load_config
from cti.engine.dialer import CampaignRunner, DialingLine
from cti.models import AgentConfig
from cti.protocol import CallOffered, CommandResult, SetCampaignState
from cti.store.campaigns import CampaignSettings
from queue_engine.campaign import Campaign, Lead
from queue_engine.pacing import DialMode
from simulators.bots import BotAgent, BotBehaviour
from telephony_adapters.base import DialEnd
from telephony_adapters.sim import SimTrunk
from tests.cti.test_service import FakeStore
from tests.harness import engine_center, until

pytestmark = pytest.mark.dialer

ENDS = {
    "+8613800000001": None,  # answered by a person
    "+8613800000002": DialEnd.BUSY,
    "+8613800000003": DialEnd.NO_ANSWER,
    "+8613800000004": DialEnd.MACHINE,
    "+8613800000005": DialEnd.FAILED,
    "+8613800000006": DialEnd.REJECTED,
}


def test_line_outcomes_reach_the_leads_and_the_agent_gets_the_campaigns_script(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def body() -> None:
        config = load_config(
            overrides={
                "queues": [
                    {"name": "general"},
                    {"name": "outbound", "script": "inbound_service_en"},
                ]
            }
        )
        bus = InMemoryBus()
        trunk = SimTrunk()
        for number, end in ENDS.items():
            if end is not None:
                trunk.far_end[number] = end
        line = DialingLine(trunk)  # place: dial_through_line, the real lines' way
        store = FakeStore()
        settings = CampaignSettings(
            name="spring", mode=DialMode.PROGRESSIVE, queue="outbound", script="outbound_survey"
        )
        core = Campaign(
            "spring", leads=[Lead(i, n, ("Asia/Shanghai",)) for i, n in enumerate(ENDS, 1)]
        )
        offers: list[CallOffered] = []
        behaviour = BotBehaviour(answer_delay_s=0.3, mean_handle_s=20.0, wrap_up_s=1.0,
                                 dispositions=("sale",))  # fmt: skip
        agents = [AgentConfig(id="a1", queues={"outbound": 0.0})]
        async with (
            bus.subscribe(topics.agent_events("a1")) as inbox,
            engine_center(
                store, config=config, agents=agents, lines=[line], bus=bus, recorder=store
            ) as center,
        ):
            service = center.service
            runner = CampaignRunner(service, settings, core, line)

            async def collect() -> None:
                async for _topic, message in inbox:
                    if isinstance(message, CallOffered):
                        offers.append(message)

            tasks = [asyncio.create_task(collect())]
            tasks.append(
                asyncio.create_task(BotAgent(bus, "a1", behaviour, random.Random(1)).run())
            )
            await until(lambda: service.router.snapshot("outbound", service.now()).agents_ready > 0)
            tasks.append(asyncio.create_task(runner.run()))
            await asyncio.sleep(300)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        outcomes = {core.leads[i].number: core.leads[i].last_outcome for i in core.leads}
        assert outcomes == {
            "+8613800000001": "connected",
            "+8613800000002": "busy",
            "+8613800000003": "no_answer",
            "+8613800000004": "machine",
            "+8613800000005": "failed",
            "+8613800000006": "no_answer",  # declined: tried again later, like no answer
        }
        assert len(offers) == 1
        script = offers[0].pop.script
        assert script is not None
        assert script.name == "Satisfaction survey"
        assert trunk.calls() == {}  # the machine's call hung up; the person's ended
        # the engine never heard of the dials that did not connect
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING
                    and "sim" in r.getMessage()]  # fmt: skip
        assert [r.call_id for r in store.records] == [offers[0].pop.call_id]

    with caplog.at_level(logging.INFO):
        run_virtual(body)


def test_a_campaign_command_to_an_engine_without_a_dialer_is_refused() -> None:
    async def body() -> None:
        config = load_config(overrides={"queues": [{"name": "general"}]})
        command = SetCampaignState(supervisor_id="boss", campaign="spring", state="paused")
        async with (
            engine_center(FakeStore(), config=config, agents={"a1": ["general"]}) as center,
            center.bus.subscribe(topics.supervisor_events("boss")) as events,
        ):
            await center.bus.publish(topics.supervisor_commands("boss"), command)
            async with asyncio.timeout(5):
                _topic, result = await anext(aiter(events))
        assert isinstance(result, CommandResult)
        assert not result.ok
        assert "no dialer runs in this engine" in result.error

    run_virtual(body)
