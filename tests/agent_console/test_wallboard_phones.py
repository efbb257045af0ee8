"""The wallboard's agents table shows each agent's phone (✓ reachable, ✗ not, blank when
no line carries the voice) from the agents' state messages, in one column however wide
the names before it are (Chinese names take two cells a character)."""

from __future__ import annotations

import pytest
from rich.cells import cell_len
from textual.widgets import DataTable

from agent_console.wallboard import Wallboard
from agent_console.wallboard_model import WallboardModel
from cti import topics
from cti.bus.memory import InMemoryBus
from cti.models import AgentState
from cti.protocol import AgentStateChanged
from tests.agent_console.test_wallboard import T0, drawn
from tests.harness import settle

pytestmark = pytest.mark.console

NAMES = {"1001": "欧阳明月", "1002": "Ada", "1003": "王伟"}
PHONES: dict[str, bool | None] = {"1001": True, "1002": False, "1003": None}


def _state(agent_id: str, phone: bool | None) -> AgentStateChanged:
    return AgentStateChanged(
        agent_id=agent_id, state=AgentState.NOT_READY, since_wall=T0, phone_reachable=phone
    )


def test_the_row_keeps_what_the_last_state_said_of_the_phone() -> None:
    model = WallboardModel()
    model.apply(_state("1001", False), T0)
    assert model.agents["1001"].phone_reachable is False
    model.apply(_state("1001", True), T0)
    assert model.agents["1001"].phone_reachable is True
    model.apply(_state("1001", None), T0)
    assert model.agents["1001"].phone_reachable is None


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
async def test_the_phone_column_lines_up_under_wide_names(size: tuple[int, int]) -> None:
    bus = InMemoryBus()
    app = Wallboard(bus, "sup1", agent_names=NAMES, clock=lambda: T0)
    async with app.run_test(size=size) as pilot:
        for agent_id, phone in PHONES.items():
            await bus.publish(topics.agent_state(agent_id), _state(agent_id, phone), retain=True)
        table = app.query_one("#agents", DataTable)
        await settle(pilot, lambda: table.row_count == len(PHONES))
        await pilot.pause()
        header, *rows = drawn(table).splitlines()[: len(PHONES) + 1]
        column = cell_len(header[: header.index(" Ph ")]) + 1
        marks = {}
        for line in rows:
            agent_id = line.split()[0]
            cells = {cell_len(line[:i]): ch for i, ch in enumerate(line)}
            marks[agent_id] = cells.get(column)
            assert line.index(NAMES[agent_id]) < line.index("Not ready")
        assert marks == {"1001": "✓", "1002": "✗", "1003": " "}
        # The phone registers: the row is redrawn from the next state message.
        await bus.publish(topics.agent_state("1002"), _state("1002", True), retain=True)
        await settle(pilot, lambda: "✗" not in drawn(table))
        assert drawn(table).count("✓") == 2
