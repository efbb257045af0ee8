"""The wallboard's tables (*Agents*, *Waiting calls*, *Campaigns*): their columns, the
cells of one row, and :class:`BoardTables`, which brings them in line with the model
redrawing only what changed (the agent grid only the rows in view). Never markup."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import App
from textual.widgets import DataTable, TabbedContent

from agent_console.wallboard_model import AgentRow, WallboardModel, abandon_level
from agent_console.wallboard_tiles import LEVEL_STYLE
from agent_console.widgets import format_duration
from cti.models import AgentState
from cti.protocol import CampaignStatus, WaitingCall

#: Each table's columns: key, label, width when narrow, width when wide.
COLUMNS: dict[str, tuple[tuple[str, str, int, int], ...]] = {
    "agents": (
        ("agent", "Agent", 16, 24),
        ("state", "State", 17, 24),
        ("phone", "Ph", 2, 3),
        ("time", "In state", 8, 9),
        ("call", "Current call", 18, 30),
        ("handled", "Calls", 5, 6),
    ),
    "calls": (
        ("queue", "Queue", 8, 14),
        ("position", "#", 3, 3),
        ("waited", "Waited", 6, 8),
        ("estimate", "Est.", 5, 8),
        ("priority", "Prio", 5, 7),
        ("rank", "Rank", 5, 7),
        ("call", "Call", 8, 14),
        ("caller", "Caller", 12, 28),
        ("segment", "Segment", 7, 10),
    ),
    "campaigns": (
        ("campaign", "Campaign", 12, 18),
        ("state", "State", 8, 22),
        ("mode", "Mode", 11, 12),
        ("dials", "Dials", 5, 6),
        ("contacts", "Cont.", 5, 8),
        ("today", "Ab.day", 6, 7),
        ("rolling", "Ab.30d", 6, 7),
        ("cap", "Cap", 3, 4),
        ("agents", "Agents", 6, 7),
        ("note", "Line / problem", 12, 30),
    ),
}
_STATE_STYLE: dict[AgentState | None, str] = {
    None: "dim",
    AgentState.LOGGED_OUT: "dim",
    AgentState.NOT_READY: "bold red",
    AgentState.READY: "bold green",
    AgentState.RESERVED: "bold yellow",
    AgentState.TALKING: "bold cyan",
    AgentState.WRAP_UP: "bold magenta",
}

_AGENT_COLUMNS = tuple(key for key, *_ in COLUMNS["agents"])
_TIME = _AGENT_COLUMNS.index("time")
#: The phone column: reachable, not reachable, or nothing (no line carries the voice).
_PHONE: dict[bool | None, Text] = {
    True: Text("✓", style="green"),
    False: Text("✗", style="bold red"),
    None: Text(""),
}
_CALL_COLUMNS = tuple(key for key, *_ in COLUMNS["calls"])
_STATE_OF_CAMPAIGN = {"running": "bold green", "paused": "bold yellow", "stopped": "dim"}


def agent_sort_key(agent_id: str) -> tuple[int, int, str]:
    """Numeric ids in numeric order, then the others by name."""
    return (0, int(agent_id), "") if agent_id.isdigit() else (1, 0, agent_id)


def calls_note_text(cut: Sequence[tuple[str, int, int]]) -> Text:
    """``general: showing 200 of 2,013`` for each queue whose calls came in part."""
    text = Text(no_wrap=True, overflow="ellipsis", end="")
    for index, (queue, shown, waiting) in enumerate(cut):
        text.append(" · " if index else "")
        text.append(queue)
        text.append(f": showing {shown:,} of {waiting:,}")
    text.append(" waiting calls (the first in rank order)", style="dim")
    return text


def agent_cells(row: AgentRow, now: float) -> tuple[Text, ...]:
    """The agent grid's cells for one agent, in :data:`_AGENT_COLUMNS` order."""
    who = Text(row.agent_id, no_wrap=True, overflow="ellipsis")
    if row.name:
        who.append(" ")
        who.append(row.name)
    state = Text(row.state_label(), style=_STATE_STYLE[row.state], overflow="ellipsis")
    timer = Text("" if row.state is None else format_duration(now - row.since_wall))
    call = Text(no_wrap=True, overflow="ellipsis")
    if row.call_id is not None:
        call.append(row.caller_name)
        if row.caller_number:
            call.append(" " if row.caller_name else "")
            call.append(row.caller_number, style="dim" if row.caller_name else "")
        if not call.plain:  # nothing known of the caller: the call, to find it by
            call.append(row.call_id, style="dim")
    handled = Text(str(row.calls_handled), justify="right")
    return (who, state, _PHONE[row.phone_reachable].copy(), timer, call, handled)


def priority_text(call: WaitingCall) -> Text:
    """The call's priority, ``*`` after it when a supervisor set it (not its queue's)."""
    if call.priority is None:
        return Text("-", justify="right")
    text = Text(f"{call.priority:g}", justify="right", overflow="ellipsis")
    if call.own_priority:
        text.append("*", style="bold yellow")
    return text


def call_cells(queue: str, call: WaitingCall, waited: float) -> tuple[Text, ...]:
    """The waiting-calls table's cells for one call, in :data:`_CALL_COLUMNS` order."""
    estimate = "-" if call.estimated_wait_s is None else format_duration(call.estimated_wait_s)
    return (
        Text(queue, overflow="ellipsis"),
        Text(str(call.position), justify="right"),
        Text(format_duration(waited)),
        Text(estimate),
        priority_text(call),
        Text("-" if call.rank is None else f"{call.rank:.0f}", justify="right"),
        Text(call.call_id, overflow="ellipsis"),
        Text(call.customer or call.ani or "no number", overflow="ellipsis"),
        Text(
            " ".join(part for part in (call.segment, call.kind) if part and part != "inbound")
            or "-",
            overflow="ellipsis",
        ),
    )


def campaign_cells(status: CampaignStatus) -> tuple[Text, ...]:
    """One campaign's row: name, state, mode, today's dials and contacts, abandon rate
    today and over 30 days against the cap, the queue's agents, and what is wrong."""
    state = Text(status.state, style=_STATE_OF_CAMPAIGN.get(status.state, ""))
    if status.state == "running" and not status.dialling:
        state = Text("running (not dialling)", style="bold red")
    mode = status.mode + (f" {status.power_ratio:g}" if status.mode == "power" else "")
    cap = status.abandon_cap

    def rate(value: float) -> Text:
        return Text(f"{value:.1%}", style=LEVEL_STYLE[abandon_level(value, cap)])

    note = status.problem or (f"line {status.line}" if status.line else "")
    return (
        Text(status.campaign),
        state,
        Text(mode),
        Text(str(status.dials_today)),
        Text(str(status.contacts_today)),
        rate(status.abandon_rate_today),
        rate(status.abandon_rate_30_days),
        Text(f"{cap:.0%}"),
        Text(f"{status.agents_ready}/{status.agents_logged_in}"),
        Text(note, style="red" if status.problem else "dim"),
    )


def _highlighted(table: DataTable[Text], order: list[str]) -> str | None:
    row = table.cursor_row
    return order[row] if 0 <= row < len(order) else None


class BoardTables:
    """The three tables of ``app`` drawn from ``model``. A table not on screen waits for
    its turn: its changes are drawn when it is shown (:meth:`sync`)."""

    def __init__(self, app: App[None], model: WallboardModel) -> None:
        self.app = app
        self.model = model
        self.wide = False
        self.agent_order: list[str] = []
        self._agent_rows: set[str] = set()
        self._agent_cells: dict[str, tuple[str, ...]] = {}
        """What each agent's row shows, to redraw only the cells that change."""
        self.call_order: list[str] = []
        self.campaign_order: list[str] = []
        self.agents_due: set[str] = set()
        """Agents changed and not drawn yet: the grid draws the rows in view (or all,
        for a new agent) and keeps the others until they scroll into view."""
        self.calls_due = False
        self.campaigns_due = False

    def _table(self, table_id: str) -> DataTable[Text]:
        return self.app.query_one(f"#{table_id}", DataTable)

    def columns(self) -> None:
        """(Re)create every table's columns for the width (wide or narrow)."""
        for table_id, columns in COLUMNS.items():
            table = self._table(table_id)
            table.clear(columns=True)
            for key, label, narrow, broad in columns:
                table.add_column(label, key=key, width=broad if self.wide else narrow)
        self.agent_order = []
        self._agent_rows = set()
        self.call_order = []
        self.campaign_order = []

    def relayout(self, wide: bool, now: float) -> None:
        """The screen crossed the width of the wide columns: draw everything again."""
        self.wide = wide
        self.columns()
        self.agents_due = set()
        self._rebuild_agents(now)
        self.calls_due = True
        self.sync(now)

    def highlighted(self, table_id: str) -> str | None:
        """The key of the row highlighted in ``table_id``."""
        order = {"agents": self.agent_order, "calls": self.call_order}.get(
            table_id, self.campaign_order
        )
        return _highlighted(self._table(table_id), order)

    def sync(self, now: float) -> None:
        """Draw the changes of the table on screen; the others wait until shown."""
        active = self.app.query_one(TabbedContent).active
        if active == "agents-pane" and self.agents_due:
            self._sync_agents(now)
        elif active == "calls-pane" and self.calls_due:
            self.calls_due = False
            self._sync_calls(now)
        elif active == "campaigns-pane" and self.campaigns_due:
            self.campaigns_due = False
            self._sync_campaigns()

    def _sync_campaigns(self) -> None:
        """Redraw the campaigns (a handful of rows), keeping the one highlighted."""
        table = self._table("campaigns")
        selected = _highlighted(table, self.campaign_order)
        table.clear()
        self.campaign_order = self.model.campaign_names()
        for name in self.campaign_order:
            table.add_row(*campaign_cells(self.model.campaigns[name]), key=name)
        if selected in self.campaign_order:
            table.move_cursor(row=self.campaign_order.index(selected), animate=False)

    def agents_in_view(self) -> list[str]:
        table = self._table("agents")
        first = int(table.scroll_y)
        return self.agent_order[first : first + table.size.height] if table.size.height else []

    def _sync_agents(self, now: float) -> None:
        """Draw the changed agents whose rows are in view (every row if one is new)."""
        if not self.agents_due <= self._agent_rows:
            self.agents_due = set()
            self._rebuild_agents(now)
            return
        changed = self.agents_due.intersection(self.agents_in_view())
        self.agents_due -= changed
        table = self._table("agents")
        for agent_id in changed:
            row = self.model.agents[agent_id]
            cells = agent_cells(row, now)
            plain = tuple(cell.plain for cell in cells)
            before = self._agent_cells.get(agent_id, ("",) * len(plain))
            for column, cell, now_shows, showed in zip(
                _AGENT_COLUMNS, cells, plain, before, strict=True
            ):
                if now_shows != showed:
                    table.update_cell(agent_id, column, cell)
            self._agent_cells[agent_id] = plain

    def _rebuild_agents(self, now: float) -> None:
        table = self._table("agents")
        selected = _highlighted(table, self.agent_order)
        table.clear()
        self.agent_order = sorted(self.model.agents, key=agent_sort_key)
        self._agent_rows = set(self.agent_order)
        self._agent_cells.clear()
        for agent_id in self.agent_order:
            row = self.model.agents[agent_id]
            cells = agent_cells(row, now)
            table.add_row(*cells, key=agent_id)
            self._agent_cells[agent_id] = tuple(cell.plain for cell in cells)
        if selected in self.agent_order:
            table.move_cursor(row=self.agent_order.index(selected), animate=False)

    def tick_agents(self, now: float) -> None:
        """The time in state of the agents in view, redrawn when its text changes."""
        table = self._table("agents")
        for agent_id in self.agents_in_view():
            row = self.model.agents[agent_id]
            if row.state is not None:
                timer = format_duration(now - row.since_wall)
                cells = self._agent_cells.get(agent_id)
                if cells is not None and cells[_TIME] != timer:
                    table.update_cell(agent_id, "time", Text(timer))
                    self._agent_cells[agent_id] = (*cells[:_TIME], timer, *cells[_TIME + 1 :])

    def _sync_calls(self, now: float) -> None:
        """Bring the waiting-calls table in line with the model: calls gone are removed,
        new ones added, the others updated in place, and the rows put in order."""
        table = self._table("calls")
        selected = _highlighted(table, self.call_order)
        rows = {
            call.call_id: call_cells(queue, call, self._waited(queue, call, now))
            for queue, call in self.model.waiting_calls()
        }
        order = list(rows)
        if not rows and self.call_order:
            table.clear()
        else:
            shown = set(self.call_order)
            for call_id in shown - rows.keys():
                table.remove_row(call_id)
            for call_id, cells in rows.items():
                if call_id in shown:
                    for column in ("position", "waited", "estimate", "priority", "rank"):
                        index = _CALL_COLUMNS.index(column)
                        table.update_cell(call_id, column, cells[index])
                else:
                    table.add_row(*cells, key=call_id)
            if [row.key.value for row in table.ordered_rows] != order:
                place = {call_id: index for index, call_id in enumerate(order)}
                table.sort("call", key=lambda cell: place[str(cell)])
        self.call_order = order
        if selected in rows:
            table.move_cursor(row=order.index(selected), animate=False)

    def _waited(self, queue: str, call: WaitingCall, now: float) -> float:
        """How long ``call`` has waited by ``now`` (its figure is from the last status)."""
        status = self.model.queues[queue].status
        since = now - status.at_wall if status is not None else 0.0
        return call.waited_s + max(0.0, since)
