"""The desk gets the card of a customer whose history outgrows one bus message.

Before (issue 17), the offer and the details of such a customer were dropped by the bus
(over :data:`~cti.protocol.MAX_MESSAGE_BYTES`): the call rang with no card and ``i``
showed nothing. Real engine, real SQLite store, the in-memory bus (which refuses what a
broker would) and the real desk.
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from agent_console.desktop import AgentDesktop
from agent_console.dialogs import CustomerInfoScreen
from agent_console.widgets import CustomerCardView
from cti.models import AgentState
from cti.protocol import MAX_DETAIL_HISTORY
from tests.cti.test_card_budget import CUSTOMER, worst_contacts
from tests.harness import center_config, engine_center, settle

pytestmark = [pytest.mark.console, pytest.mark.integration, pytest.mark.security]


async def _ready(pilot: Pilot[Any], app: AgentDesktop) -> None:
    await pilot.press("enter")
    await settle(pilot, lambda: app.agent_state is AgentState.NOT_READY)
    await pilot.press("r")
    await settle(pilot, lambda: app.agent_state is AgentState.READY)


async def test_worst_case_history_reaches_the_desk_cut_with_what_was_left_out(
    tmp_path: Any,
) -> None:
    config = center_config([{"name": "general", "wrap_up_s": 600}])
    async with engine_center(tmp_path / "cti.db", config=config, customers=[CUSTOMER]) as center:
        await center.store.add_interactions(
            (CUSTOMER.id, row) for row in worst_contacts(MAX_DETAIL_HISTORY)
        )
        bus, trunk = center.bus, center.trunk
        app = AgentDesktop(bus, "1001", queues=["general"])
        async with app.run_test(size=(120, 40)) as pilot:
            await _ready(pilot, app)
            call_id = trunk.ring("138 1234 5678")
            await settle(pilot, lambda: app.current_call_id == call_id)
            card = str(app.query_one("#pop-card", CustomerCardView).render())
            assert "欧阳明月" in card
            assert "#49 回" in card
            await pilot.press("a")
            await settle(pilot, lambda: app.agent_state is AgentState.TALKING)
            await pilot.press("i")  # the customer in full: 20 contacts asked for
            await settle(pilot, lambda: isinstance(app.screen, CustomerInfoScreen))
            shown = str(app.screen.query_one(Static).render())
            assert "欧阳明月" in shown
            assert "#49 回" in shown
            # the 20 newest contacts, each with its note and answers cut with a marker
            assert "#30 回" in shown
            assert "#29 回" not in shown
            assert shown.count("more characters not shown]") >= 20
            assert shown.count("more script answers not shown]") == 20
        assert bus.dropped == 0
