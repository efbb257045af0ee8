"""Call control in the real desktop against the real engine, in-process.

No fake: the engine service routes simulator-trunk calls over the in-memory bus to the
desk, with customers in a real SQLite store. Each agent action of REFERENCE §7 is
driven with keys and checked on the line (the trunk), in the router and on screen.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from agent_console.desktop import AgentDesktop
from agent_console.widgets import CustomerCard
from cti.bus import InMemoryBus
from cti.config import load_config
from cti.models import AgentState, Customer, PhoneNumber, Segment
from cti.service import EngineService
from cti.store import Store
from telephony_adapters.sim import SimTrunk

pytestmark = [pytest.mark.console, pytest.mark.integration]

WANG = Customer(
    id=1,
    name="王小明",
    phones=(PhoneNumber(raw="+8613800000001", e164="+8613800000001"),),
    value=90.0,
    segment=Segment.GOLD,
)
SIZE = (100, 30)


@dataclass
class Center:
    bus: InMemoryBus
    trunk: SimTrunk
    store: Store
    service: EngineService


async def settle(pilot: Pilot[Any], done: Callable[[], bool], rounds: int = 300) -> None:
    """Let messages flow (no sleeping) until ``done()`` holds."""
    for _ in range(rounds):
        if done():
            return
        await pilot.pause()
    raise AssertionError("the desk did not reach the expected state")


@pytest.fixture
async def center(tmp_path: Path) -> AsyncIterator[Center]:
    store = await Store.open(tmp_path / "cti.db")
    await store.add_customers([WANG])
    bus = InMemoryBus()
    trunk = SimTrunk()
    config = load_config(
        overrides={
            "queues": [
                {"name": "general", "wrap_up_s": 600, "wrap_up_max_s": 900},
                {"name": "billing", "wrap_up_s": 600},
            ]
        }
    )
    agents = {"1001": ["general", "billing"], "1002": ["general", "billing"]}
    service = EngineService(config, bus, store, [trunk], agents, recorder=store)
    task = asyncio.create_task(service.run())
    await service.ready.wait()
    try:
        yield Center(bus, trunk, store, service)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await service.flush()
        await store.close()


async def talking(pilot: Pilot[Any], center: Center) -> tuple[AgentDesktop, str]:
    """Log in, go Ready, take a call from 王小明: the desk is talking on it."""
    app = pilot.app
    assert isinstance(app, AgentDesktop)
    await pilot.press("enter")
    await settle(pilot, lambda: app.agent_state is AgentState.NOT_READY)
    await pilot.press("r")
    await settle(pilot, lambda: app.agent_state is AgentState.READY)
    call_id = center.trunk.ring("+8613800000001")
    await settle(pilot, lambda: app.view == "offer" and app.offer is not None)
    await pilot.press("a")
    await settle(pilot, lambda: app.view == "talking" and app.agent_state is AgentState.TALKING)
    return app, call_id


def card_text(app: AgentDesktop) -> str:
    return str(app.query_one("#pop-card", CustomerCard).render())


# --- CurrentCall: a desk restarted mid-call gets the card back -------------------------


async def test_a_desk_restarted_mid_call_gets_the_card_back_talking_then_in_wrap_up(
    center: Center,
) -> None:
    first = AgentDesktop(center.bus, "1001", queues=["general"])
    async with first.run_test(size=SIZE) as pilot:
        _, call_id = await talking(pilot, center)

    again = AgentDesktop(center.bus, "1001", queues=["general"])
    async with again.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await settle(pilot, lambda: again.offer is not None and again.view == "talking")
        assert again.current_call_id == call_id
        assert "王小明" in card_text(again)
        assert again.check_action("hang_up", ()) is True
        await pilot.press("h")
        await settle(pilot, lambda: again.view == "wrap_up")

    third = AgentDesktop(center.bus, "1001", queues=["general"])
    async with third.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await settle(pilot, lambda: third.offer is not None and third.view == "wrap_up")
        assert third.current_call_id == call_id
        assert third.agent_state is AgentState.WRAP_UP
        assert "王小明" in card_text(third)
        await pilot.press("3")  # the third configured disposition: "sale"
        await settle(pilot, lambda: third.agent_state is AgentState.READY)
    await center.service.flush()
    [record] = await center.store.call_records()
    assert (record.call_id, record.disposition, record.agent_id) == (call_id, "sale", "1001")
