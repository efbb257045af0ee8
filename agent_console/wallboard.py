"""The supervisor wallboard: live queue tiles, the agent grid, waiting calls, a chart of
the last hour, alerts, and the supervisor's actions.

The app follows the engine on the bus only (:mod:`cti.topics`): every queue's status
and waiting calls, every agent's state, and this supervisor's events (the answers to
its commands). What it knows lives in :class:`~agent_console.wallboard_model.WallboardModel`;
this module only draws it. Messages are applied to the model as they come, and the
screen is brought up to date once per turn of the event loop, however many arrived.

Actions work on what is highlighted: a call in the *Waiting calls* view (change its
priority, move it to another queue), an agent in the *Agents* view (force Not ready,
log out) or a campaign in the *Campaigns* view (start or pause it, change its dialing
mode or power ratio; the engine's dialer carries them out). Each sends a supervisor
command; the engine's answer is shown when it comes (and in the log), as is a command
left unanswered.

The engine's own trouble (a full disk under its journal or store: what it holds in memory
and what is lost) is a banner of its own at the top, from when it starts until the engine
says it is over; a queue whose waiting calls the engine sent only in part (a flood) says
so above the *Waiting calls* table.

Names, numbers and reasons are drawn as plain :class:`rich.text.Text`, never as markup;
wide (Chinese) characters are measured in terminal cells.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Container, Vertical
from textual.css.query import NoMatches
from textual.events import Resize
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import (
    DataTable,
    Footer,
    Input,
    OptionList,
    RichLog,
    Sparkline,
    Static,
    TabbedContent,
    TabPane,
)

from agent_console.wallboard_model import (
    ALL_QUEUES,
    AgentRow,
    AlertEvent,
    EngineTrouble,
    Level,
    LogEntry,
    QueueView,
    WallboardModel,
    abandon_level,
    format_percent,
)
from agent_console.widgets import fit, format_duration
from cti import topics
from cti.bus.memory import Bus, Subscription
from cti.clock import wall_time
from cti.config import WallboardSettings
from cti.models import AgentState
from cti.protocol import (
    CampaignStatus,
    ChangeCallPriority,
    ForceLogout,
    ForceNotReady,
    Message,
    MoveWaitingCall,
    SetCampaignPacing,
    SetCampaignState,
    SupervisorCommand,
    WaitingCall,
)

#: How long a command may take to get onto the bus before the supervisor is told.
PUBLISH_TIMEOUT_S = 5.0
#: Width of a queue tile in cells (tiles share out any width left over).
TILE_WIDTH = 26
#: The agent grid and the calls table get their wide columns from this many cells on.
WIDE_FROM = 110
#: Reason sent with a forced Not ready unless the supervisor types another.
FORCE_REASON = "supervisor"

_PANES = ("agents-pane", "calls-pane", "campaigns-pane", "chart-pane", "log-pane")
#: Each table's columns: key, label, width when narrow, width when wide.
_COLUMNS: dict[str, tuple[tuple[str, str, int, int], ...]] = {
    "agents": (
        ("agent", "Agent", 16, 24),
        ("state", "State", 17, 24),
        ("time", "In state", 8, 9),
        ("call", "Current call", 18, 30),
        ("handled", "Calls", 5, 6),
    ),
    "calls": (
        ("queue", "Queue", 9, 14),
        ("position", "#", 3, 3),
        ("waited", "Waited", 6, 8),
        ("estimate", "Est.", 6, 8),
        ("call", "Call", 10, 14),
        ("caller", "Caller", 17, 28),
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
_DIAL_MODES = ("preview", "progressive", "power", "predictive")
_CALL_AND_AGENT_ACTIONS = ("change_priority", "move_call", "force_not_ready", "force_logout")
_STATE_STYLE: dict[AgentState | None, str] = {
    None: "dim",
    AgentState.LOGGED_OUT: "dim",
    AgentState.NOT_READY: "bold red",
    AgentState.READY: "bold green",
    AgentState.RESERVED: "bold yellow",
    AgentState.TALKING: "bold cyan",
    AgentState.WRAP_UP: "bold magenta",
}
_LEVEL_STYLE = {Level.NONE: "", Level.OK: "green", Level.WARN: "yellow", Level.ALERT: "bold red"}
#: Agents by state on a tile: (state key, short label), in reading order.
_TILE_STATES = (
    ("ready", "Ready"),
    ("reserved", "Ring"),
    ("talking", "Talk"),
    ("wrap_up", "Wrap"),
    ("not_ready", "NR"),
)
_AGENT_COLUMNS = ("agent", "state", "time", "call", "handled")
_CALL_COLUMNS = ("queue", "position", "waited", "estimate", "call", "caller", "segment")
_STATE_OF_CAMPAIGN = {"running": "bold green", "paused": "bold yellow", "stopped": "dim"}


def agent_sort_key(agent_id: str) -> tuple[int, int, str]:
    """Numeric ids in numeric order, then the others by name."""
    return (0, int(agent_id), "") if agent_id.isdigit() else (1, 0, agent_id)


# --- pure drawing functions ----------------------------------------------------------


def tile_text(view: QueueView, settings: WallboardSettings, now: float) -> Text:
    """The body of a queue tile: waiting and longest wait, service level against the
    goal, ASA and abandoned, agents by state. Coloured by level; never markup."""
    text = Text(no_wrap=True, overflow="ellipsis", end="")
    status = view.status
    if status is None:
        text.append("No figures yet.", style="dim")
        return text
    wait_style = _LEVEL_STYLE[view.longest_wait]
    text.append("Waiting ")
    text.append(str(status.waiting), style=f"bold {wait_style}".strip())
    if status.waiting:
        text.append("  max ")
        text.append(format_duration(status.longest_wait_s), style=wait_style)
    text.append("\nSL ")
    judged = view.service_level is not Level.NONE
    sl_text = format_percent(status.service_level)
    text.append(sl_text, style=f"bold {_LEVEL_STYLE[view.service_level]}".strip())
    if not judged and status.service_level is not None:
        counted = max(0, status.offered - status.short_abandoned)
        text.append(f" of {counted} calls", style="dim")  # too few to judge
    else:
        text.append(f" goal {format_percent(settings.service_level_goal)}", style="dim")
    text.append("\nASA ")
    text.append("-" if status.asa_s is None else format_duration(status.asa_s))
    text.append(f"  Abandoned {status.abandoned}")
    text.append("\n")
    by_state = status.agents_by_state
    parts = [f"{label} {by_state.get(key, 0)}" for key, label in _TILE_STATES]
    text.append(" ".join(parts[:3]))
    text.append("\n")
    text.append(" ".join(parts[3:]))
    text.append(f"  of {status.agents_logged_in}", style="dim")
    if view.stale(now):
        text.append("\n")
        text.append(f"no update for {format_duration(now - status.at_wall)}", style="bold red")
    return text


def banner_text(alerts: Sequence[AlertEvent]) -> Text:
    """The alert banner: every active alert on one line."""
    text = Text(no_wrap=True, overflow="ellipsis", end="")
    text.append(f" ALERT ({len(alerts)}) ", style="bold reverse")
    for index, alert in enumerate(alerts):
        text.append(" · " if index else " ")
        text.append(alert.text())
    return text


def health_text(trouble: EngineTrouble, now: float) -> Text:
    """The engine's trouble banner: since when (and for how long), what is lost and what
    it holds in memory, then each of the engine's alerts on a line of its own."""
    text = Text(no_wrap=True, overflow="ellipsis", end="")
    text.append(" ENGINE ", style="bold reverse")
    since = time.strftime("%H:%M:%S", time.localtime(trouble.since_wall))
    text.append(f" since {since} (for {format_duration(max(0.0, now - trouble.since_wall))})")
    lost = trouble.lost()
    if lost:  # first: it is gone for good, and a narrow screen cuts the end off
        text.append(" · lost: ")
        text.append(lost, style="bold")
    text.append(f" · held in memory: {trouble.held() or 'nothing'}")
    for alert in trouble.health.alerts:
        text.append("\n ")
        text.append(alert)
    return text


def calls_note_text(cut: Sequence[tuple[str, int, int]]) -> Text:
    """``general: showing 200 of 2,013`` for each queue whose calls came in part."""
    text = Text(no_wrap=True, overflow="ellipsis", end="")
    for index, (queue, shown, waiting) in enumerate(cut):
        text.append(" · " if index else "")
        text.append(queue)
        text.append(f": showing {shown:,} of {waiting:,}")
    text.append(" waiting calls (the first in rank order)", style="dim")
    return text


def log_line(entry: LogEntry) -> Text:
    """One line of the alert and action log, with the local time of day."""
    text = Text(no_wrap=True, overflow="ellipsis", end="")
    text.append(time.strftime("%H:%M:%S ", time.localtime(entry.at_wall)), style="dim")
    if isinstance(entry, AlertEvent):
        label, style = ("ALERT", "bold red") if entry.raised else ("clear", "green")
    elif isinstance(entry, EngineTrouble):
        label, style = ("ENGINE", "bold red") if entry.raised else ("clear", "green")
    else:
        label, style = ("done ", "green") if entry.ok else ("REFUSED", "bold red")
    text.append(fit(label, 7), style=style)
    text.append(" ")
    if isinstance(entry, AlertEvent | EngineTrouble):
        text.append(entry.text())
    else:
        text.append(entry.description)
        if entry.error:
            text.append(": ")
            text.append(entry.error)
    return text


def agent_cells(row: AgentRow, now: float, caller: str) -> tuple[Text, ...]:
    """The agent grid's cells for one agent, in :data:`_AGENT_COLUMNS` order."""
    who = Text(row.agent_id, no_wrap=True, overflow="ellipsis")
    if row.name:
        who.append(" ")
        who.append(row.name)
    state = Text(row.state_label(), style=_STATE_STYLE[row.state], overflow="ellipsis")
    timer = Text("" if row.state is None else format_duration(now - row.since_wall))
    call = Text(overflow="ellipsis")
    if row.call_id is not None:
        call.append(row.call_id)
        if caller:
            call.append(" · ")
            call.append(caller)
    handled = Text(str(row.calls_handled), justify="right")
    return (who, state, timer, call, handled)


def call_cells(queue: str, call: WaitingCall, waited: float) -> tuple[Text, ...]:
    """The waiting-calls table's cells for one call, in :data:`_CALL_COLUMNS` order."""
    estimate = "-" if call.estimated_wait_s is None else format_duration(call.estimated_wait_s)
    return (
        Text(queue, overflow="ellipsis"),
        Text(str(call.position), justify="right"),
        Text(format_duration(waited)),
        Text(estimate),
        Text(call.call_id, overflow="ellipsis"),
        Text(call.customer or call.ani or "no number", overflow="ellipsis"),
        Text(
            " ".join(part for part in (call.segment, call.kind) if part and part != "inbound")
            or "-",
            overflow="ellipsis",
        ),
    )


# --- widgets -------------------------------------------------------------------------


def campaign_cells(status: CampaignStatus) -> tuple[Text, ...]:
    """One campaign's row: name, state, mode, today's dials and contacts, abandon rate
    today and over 30 days against the cap, the queue's agents, and what is wrong."""
    state = Text(status.state, style=_STATE_OF_CAMPAIGN.get(status.state, ""))
    if status.state == "running" and not status.dialling:
        state = Text("running (not dialling)", style="bold red")
    mode = status.mode + (f" {status.power_ratio:g}" if status.mode == "power" else "")
    cap = status.abandon_cap

    def rate(value: float) -> Text:
        return Text(f"{value:.1%}", style=_LEVEL_STYLE[abandon_level(value, cap)])

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


def ratio_problem(value: str) -> str | None:
    """Why ``value`` is not a power ratio (lines per free agent), or None."""
    try:
        ratio = float(value)
    except ValueError:
        return f"{value!r} is not a number: type lines per free agent, e.g. 2 or 2.5"
    if not 1.0 <= ratio <= 20.0:
        return f"{ratio:g} is out of range: 1 to 20 lines per free agent"
    return None


class QueueTile(Widget):
    """One queue's figures; its border shows the worst of its levels. Its size is fixed
    by the style sheet, so a new figure repaints it without laying the screen out again."""

    def __init__(self, queue: str) -> None:
        super().__init__(classes="tile")
        self.queue = queue
        self._text = Text("No figures yet.", style="dim")
        self._classes_for: tuple[Level, bool] | None = None

    def render(self) -> Text:
        return self._text

    def on_mount(self) -> None:
        self.border_title = Text(self.queue)

    def show(self, view: QueueView, settings: WallboardSettings, now: float) -> None:
        self._text = tile_text(view, settings, now)
        self.refresh()
        classes = (view.worst, view.stale(now))
        if classes != self._classes_for:  # restyling is dear: only on a change
            self._classes_for = classes
            for level in Level:
                self.set_class(classes[0] is level, f"-{level.value}")
            self.set_class(classes[1], "-stale")

    @property
    def stale(self) -> bool:
        return self._classes_for is not None and self._classes_for[1]


class ChartPanel(Vertical):
    """Waiting calls and service level over the configured span, as two sparklines."""

    def compose(self) -> ComposeResult:
        yield Static(id="chart-title")
        yield Static(id="waiting-label")
        yield Sparkline([], id="waiting-chart")
        yield Static(id="sl-label")
        yield Sparkline([], id="sl-chart")
        yield Static(id="chart-axis")

    def show(
        self, subject: str, waiting: list[float], service: list[float], bucket_s: float
    ) -> None:
        """Chart ``waiting`` and ``service`` (percent), one point per ``bucket_s``."""
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append("Chart: ", style="bold")
        title.append(subject or "all queues")
        title.append(" · c: next queue", style="dim")
        self.query_one("#chart-title", Static).update(title)
        each = "minute" if bucket_s == 60 else format_duration(bucket_s)
        if waiting:
            label = f"Calls waiting, most in each {each}: now {waiting[-1]:.0f}, "
            label += f"peak {max(waiting):.0f}"
        else:
            label = "Calls waiting: no figures yet"
        self.query_one("#waiting-label", Static).update(Text(label))
        measured = [value for value in service if value > 0]
        if measured:
            sl = f"Service level: now {service[-1]:.0f}%, lowest {min(measured):.0f}%, "
            sl += f"highest {max(measured):.0f}%"
        else:
            sl = "Service level: not measured yet"
        self.query_one("#sl-label", Static).update(Text(sl))
        # One point would fill the whole width: the sparkline scales to its data.
        self.query_one("#waiting-chart", Sparkline).data = (
            waiting * 2 if len(waiting) == 1 else waiting
        )
        self.query_one("#sl-chart", Sparkline).data = service * 2 if len(service) == 1 else service
        span = format_duration(len(waiting) * bucket_s) if waiting else "-"
        left = f"{span} ago" if waiting else ""
        self.query_one("#chart-axis", Static).update(
            Text(fit(left, 20) + "now".rjust(max(3, self.size.width - 20)))
        )


class ValueDialog(ModalScreen[str | None]):
    """Ask for one value: Enter accepts it (if ``check`` finds nothing wrong), Esc cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        title: str,
        prompt: str,
        value: str = "",
        check: Callable[[str], str | None] | None = None,
    ) -> None:
        super().__init__(classes="dialog")
        self._title = title
        self._prompt = prompt
        self._value = value
        self._check = check

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box") as box:
            box.border_title = Text(self._title)
            yield Static(Text(self._prompt), classes="dialog-prompt")
            yield Input(self._value, id="dialog-input")
            yield Static(Text("Enter: send · Esc: cancel"), classes="dialog-hint", id="dialog-hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        value = event.value.strip()
        problem = self._check(value) if self._check is not None else None
        if problem is not None:
            self.query_one("#dialog-hint", Static).update(Text(problem, style="bold red"))
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChoiceDialog(ModalScreen[str | None]):
    """Choose one of ``choices`` (value, label): Enter picks, Esc cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, prompt: str, choices: Sequence[tuple[str, str]]) -> None:
        super().__init__(classes="dialog")
        self._title = title
        self._prompt = prompt
        self._choices = list(choices)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box") as box:
            box.border_title = Text(self._title)
            yield Static(Text(self._prompt), classes="dialog-prompt")
            yield OptionList(*(Text(label) for _, label in self._choices), id="dialog-choices")
            yield Static(Text("↑↓ Enter: choose · Esc: cancel"), classes="dialog-hint")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = 0
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(self._choices[event.option_index][0])

    def action_cancel(self) -> None:
        self.dismiss(None)


def priority_problem(value: str) -> str | None:
    """Why ``value`` is not a call priority, or ``None`` if it is one."""
    try:
        number = float(value)
    except ValueError:
        return f"{value!r} is not a number: type rank points, e.g. 50 or -10"
    if number != number or abs(number) == float("inf"):
        return "the priority must be a finite number, e.g. 50"
    return None


def reason_problem(value: str) -> str | None:
    if not value:
        return "type a reason the agent will see, e.g. supervisor"
    if len(value) > 40:
        return f"the reason is {len(value)} characters long; 40 at most"
    return None


# --- the app -------------------------------------------------------------------------


class Wallboard(App[None]):
    """The supervisor's wallboard on ``bus``. Read-only for tests and embedding:
    :attr:`model` (everything the board knows) and :attr:`supervisor_id`."""

    CSS_PATH = "wallboard.tcss"
    TITLE = "CTI Desk · wallboard"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "change_priority", "Priority"),
        Binding("m", "move_call", "Move call"),
        Binding("n", "force_not_ready", "Not ready"),
        Binding("o", "force_logout", "Log out"),
        Binding("s", "start_pause_campaign", "Start/pause"),
        Binding("d", "campaign_mode", "Dial mode"),
        Binding("r", "campaign_ratio", "Ratio"),
        Binding("v", "next_view", "View"),
        Binding("c", "next_chart", "Chart queue", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        bus: Bus,
        supervisor_id: str = "supervisor",
        *,
        settings: WallboardSettings | None = None,
        agent_names: Mapping[str, str] | None = None,
        queues: Iterable[str] = (),
        clock: Callable[[], float] = wall_time,
    ) -> None:
        """``agent_names`` (agent id -> name, from the configuration) lists agents before
        the engine says anything of them; ``queues`` orders the tiles; ``clock`` gives
        wall-clock epoch seconds (fix it for snapshots)."""
        super().__init__()
        self.bus = bus
        self.supervisor_id = supervisor_id
        self.settings = settings or WallboardSettings()
        self.model = WallboardModel(self.settings, agent_names=agent_names, queue_order=queues)
        self._clock = clock
        self._sync_pending = False
        self._agent_order: list[str] = []
        self._agent_rows: set[str] = set()
        self._agent_cells: dict[str, tuple[str, ...]] = {}
        """What each agent's row shows, to redraw only the cells that change."""
        self._call_order: list[str] = []
        self._campaign_order: list[str] = []
        self._campaigns_due = False
        self._agents_due: set[str] = set()
        """Agents changed and not drawn yet: the grid draws the rows in view (or all,
        for a new agent) and keeps the others until they scroll into view."""
        self._calls_due = False
        self._chart_subject = ALL_QUEUES
        self._wide = False
        self._can_act = (False, False, False)

    # --- layout ------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="health-banner")
        yield Static(id="alert-banner")
        yield Container(id="tiles")
        with TabbedContent(initial="agents-pane", id="views"):
            with TabPane("Agents", id="agents-pane"):
                yield DataTable(id="agents", cursor_type="row", zebra_stripes=True)
            with TabPane("Waiting calls", id="calls-pane"):
                yield Static(id="calls-note")
                yield DataTable(id="calls", cursor_type="row", zebra_stripes=True)
            with TabPane("Campaigns", id="campaigns-pane"):
                yield DataTable(id="campaigns", cursor_type="row", zebra_stripes=True)
            with TabPane("Chart", id="chart-pane"):
                yield ChartPanel(id="chart")
            with TabPane("Log", id="log-pane"):
                yield RichLog(id="log", max_lines=500, markup=False, wrap=False)
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#alert-banner").display = False
        self._wide = self.size.width >= WIDE_FROM
        self._columns()
        self._layout_tiles(self.size.width)
        self._follow()
        agents = self.query_one("#agents", DataTable)
        self.watch(agents, "scroll_y", lambda _: self._sync_tables(self._clock()), init=False)
        self.set_interval(1.0, self.tick, name="wallboard-clock")
        self._sync()

    def on_resize(self, event: Resize) -> None:
        self._layout_tiles(event.size.width)
        wide = event.size.width >= WIDE_FROM
        if wide != self._wide:
            self._wide = wide
            self._columns()
            self._agents_due = set()
            self._rebuild_agents(self._clock())
            self._calls_due = True
            self._sync_tables(self._clock())

    def _layout_tiles(self, width: int) -> None:
        tiles = self.query_one("#tiles")
        tiles.styles.grid_size_columns = max(1, (width - 1) // TILE_WIDTH)

    def _columns(self) -> None:
        for table_id, columns in _COLUMNS.items():
            table = self.query_one(f"#{table_id}", DataTable)
            table.clear(columns=True)
            for key, label, narrow, broad in columns:
                table.add_column(label, key=key, width=broad if self._wide else narrow)
        self._agent_order = []
        self._agent_rows = set()
        self._call_order = []
        self._campaign_order = []

    # --- the bus -----------------------------------------------------------------

    @work(group="bus", name="wallboard-follow")
    async def _follow(self) -> None:
        patterns = (
            topics.ALL_QUEUE_STATUS,
            topics.ALL_QUEUE_CALLS,
            topics.ALL_AGENT_STATES,
            topics.supervisor_events(self.supervisor_id),
            topics.ALL_CAMPAIGN_STATUS,
            topics.engine_health(),
        )
        async with (
            self.bus.subscribe(patterns[0]) as statuses,
            self.bus.subscribe(patterns[1]) as calls,
            self.bus.subscribe(patterns[2]) as agents,
            self.bus.subscribe(patterns[3]) as events,
            self.bus.subscribe(patterns[4]) as campaigns,
            self.bus.subscribe(patterns[5]) as health,
            asyncio.TaskGroup() as group,
        ):
            for name, subscription in zip(
                ("status", "calls", "agents", "events", "campaigns", "health"),
                (statuses, calls, agents, events, campaigns, health),
                strict=True,
            ):
                group.create_task(self._pump(subscription), name=f"wallboard-{name}")

    async def _pump(self, subscription: Subscription) -> None:
        async for _topic, message in subscription:
            self.apply(message)

    def apply(self, message: Message) -> None:
        """Take one message from the engine; the screen follows on the next turn."""
        for entry in self.model.apply(message, self._clock()):
            self._report(entry)
        if not self._sync_pending:
            self._sync_pending = True
            self.call_later(self._sync)

    def _report(self, entry: LogEntry) -> None:
        self.query_one("#log", RichLog).write(log_line(entry))
        if isinstance(entry, AlertEvent):
            if entry.raised:
                self.notify(entry.text(), title="Alert", severity="error", markup=False)
            else:
                self.notify(entry.text(), title="Cleared", markup=False)
        elif isinstance(entry, EngineTrouble):
            if entry.raised:
                self.notify(entry.text(), title="Engine", severity="error", markup=False)
            else:
                self.notify(entry.text(), title="Engine: cleared", markup=False)
        elif entry.ok:
            self.notify(entry.text(), markup=False)
        else:
            self.notify(entry.text(), title="Refused", severity="error", markup=False)

    @work(group="commands", name="wallboard-command")
    async def send(self, command: SupervisorCommand) -> None:
        """Publish a supervisor command; its answer is reported when it comes."""
        description = self.model.sent(command, self._clock())
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                await self.bus.publish(topics.supervisor_commands(self.supervisor_id), command)
        except TimeoutError:
            self.notify(
                f"Could not send ({description}) within {PUBLISH_TIMEOUT_S:g} s: "
                "is the engine's bus reachable?",
                severity="error",
                markup=False,
            )

    # --- drawing -----------------------------------------------------------------

    def _sync(self) -> None:
        self._sync_pending = False
        with contextlib.suppress(NoMatches):  # a message as the app shuts down: no screen
            self._draw()

    def _draw(self) -> None:
        now = self._clock()
        agents, queues, calls = self.model.take_changes()
        if queues:
            self._sync_tiles(queues, now)
            self._sync_chart(now)
        self._agents_due |= agents
        self._calls_due = self._calls_due or calls
        if calls:
            self._sync_calls_note()
        if self.model.health_changed:
            self.model.health_changed = False
            self._sync_health(now)
        if self.model.campaigns_changed:
            self.model.campaigns_changed = False
            self._campaigns_due = True
        self._sync_tables(now)
        self._sync_banner()
        can_act = (self._calls_waiting(), self._agents_known(), bool(self.model.campaigns))
        if can_act != self._can_act:
            self._can_act = can_act
            self.refresh_bindings()

    def _calls_waiting(self) -> bool:
        return any(view.calls for view in self.model.queues.values())

    def _agents_known(self) -> bool:
        return any(row.state is not None for row in self.model.agents.values())

    def _sync_tables(self, now: float) -> None:
        """Draw the changes of the table on screen; the other waits until it is shown."""
        active = self.query_one(TabbedContent).active
        if active == "agents-pane" and self._agents_due:
            self._sync_agents(now)
        elif active == "calls-pane" and self._calls_due:
            self._calls_due = False
            self._sync_calls(now)
        elif active == "campaigns-pane" and self._campaigns_due:
            self._campaigns_due = False
            self._sync_campaigns()

    def _sync_campaigns(self) -> None:
        """Redraw the campaigns (a handful of rows), keeping the one highlighted."""
        table = self.query_one("#campaigns", DataTable)
        selected = self._highlighted(table, self._campaign_order)
        table.clear()
        self._campaign_order = self.model.campaign_names()
        for name in self._campaign_order:
            table.add_row(*campaign_cells(self.model.campaigns[name]), key=name)
        if selected in self._campaign_order:
            table.move_cursor(row=self._campaign_order.index(selected), animate=False)

    def _sync_tiles(self, changed: set[str], now: float) -> None:
        container = self.query_one("#tiles")
        tiles = {tile.queue: tile for tile in container.query_children(QueueTile)}
        for index, name in enumerate(self.model.queue_names()):
            tile = tiles.get(name)
            if tile is None:
                tile = QueueTile(name)
                later = [t for t in container.children if isinstance(t, QueueTile)]
                if index < len(later):
                    container.mount(tile, before=later[index])
                else:
                    container.mount(tile)
                tiles[name] = tile
                changed.add(name)
            if name in changed:
                tile.show(self.model.queues[name], self.settings, now)

    def _sync_banner(self) -> None:
        banner = self.query_one("#alert-banner", Static)
        alerts = self.model.active_alerts
        banner.display = bool(alerts)
        if alerts:
            banner.update(banner_text(alerts))

    def _sync_health(self, now: float) -> None:
        banner = self.query_one("#health-banner", Static)
        trouble = self.model.engine_trouble
        banner.display = trouble is not None
        if trouble is not None:
            banner.update(health_text(trouble, now))

    def _sync_calls_note(self) -> None:
        note = self.query_one("#calls-note", Static)
        cut = self.model.calls_cut()
        note.display = bool(cut)
        if cut:
            note.update(calls_note_text(cut))

    def _agents_in_view(self) -> list[str]:
        table = self.query_one("#agents", DataTable)
        first = int(table.scroll_y)
        return self._agent_order[first : first + table.size.height] if table.size.height else []

    def _sync_agents(self, now: float) -> None:
        """Draw the changed agents whose rows are in view (every row if one is new)."""
        if not self._agents_due <= self._agent_rows:
            self._agents_due = set()
            self._rebuild_agents(now)
            return
        changed = self._agents_due.intersection(self._agents_in_view())
        self._agents_due -= changed
        table = self.query_one("#agents", DataTable)
        for agent_id in changed:
            row = self.model.agents[agent_id]
            cells = agent_cells(row, now, self.model.caller_of(row.call_id))
            plain = tuple(cell.plain for cell in cells)
            before = self._agent_cells.get(agent_id, ("",) * len(plain))
            for column, cell, now_shows, showed in zip(
                _AGENT_COLUMNS, cells, plain, before, strict=True
            ):
                if now_shows != showed:
                    table.update_cell(agent_id, column, cell)
            self._agent_cells[agent_id] = plain

    def _rebuild_agents(self, now: float) -> None:
        table = self.query_one("#agents", DataTable)
        selected = self._highlighted(table, self._agent_order)
        table.clear()
        self._agent_order = sorted(self.model.agents, key=agent_sort_key)
        self._agent_rows = set(self._agent_order)
        self._agent_cells.clear()
        for agent_id in self._agent_order:
            row = self.model.agents[agent_id]
            cells = agent_cells(row, now, self.model.caller_of(row.call_id))
            table.add_row(*cells, key=agent_id)
            self._agent_cells[agent_id] = tuple(cell.plain for cell in cells)
        if selected in self._agent_order:
            table.move_cursor(row=self._agent_order.index(selected), animate=False)

    def _sync_calls(self, now: float) -> None:
        """Bring the waiting-calls table in line with the model: calls gone are removed,
        new ones added, the others updated in place, and the rows put in order."""
        table = self.query_one("#calls", DataTable)
        selected = self._highlighted(table, self._call_order)
        rows = {
            call.call_id: call_cells(queue, call, self._waited(queue, call, now))
            for queue, call in self.model.waiting_calls()
        }
        order = list(rows)
        if not rows and self._call_order:
            table.clear()
        else:
            shown = set(self._call_order)
            for call_id in shown - rows.keys():
                table.remove_row(call_id)
            for call_id, cells in rows.items():
                if call_id in shown:
                    for column in ("position", "waited", "estimate"):
                        index = _CALL_COLUMNS.index(column)
                        table.update_cell(call_id, column, cells[index])
                else:
                    table.add_row(*cells, key=call_id)
            if [row.key.value for row in table.ordered_rows] != order:
                place = {call_id: index for index, call_id in enumerate(order)}
                table.sort("call", key=lambda cell: place[str(cell)])
        self._call_order = order
        if selected in rows:
            table.move_cursor(row=order.index(selected), animate=False)

    def _waited(self, queue: str, call: WaitingCall, now: float) -> float:
        """How long ``call`` has waited by ``now`` (its figure is from the last status)."""
        status = self.model.queues[queue].status
        since = now - status.at_wall if status is not None else 0.0
        return call.waited_s + max(0.0, since)

    @staticmethod
    def _highlighted(table: DataTable[Text], order: list[str]) -> str | None:
        row = table.cursor_row
        return order[row] if 0 <= row < len(order) else None

    def _sync_chart(self, now: float) -> None:
        if self._chart_subject and self._chart_subject not in self.model.queues:
            self._chart_subject = ALL_QUEUES
        waiting, service = self.model.history(self._chart_subject, now=now)
        self.query_one(ChartPanel).show(self._chart_subject, waiting, service, self.model.bucket_s)

    def tick(self) -> None:
        """Once a second: time in state of the agents on screen, stale tiles, overdue
        commands, the chart moving on, and how long the engine's trouble has lasted."""
        with contextlib.suppress(NoMatches):  # a tick as the app shuts down: no screen
            self._tick(self._clock())

    def _tick(self, now: float) -> None:
        for outcome in self.model.overdue(now):
            self._report(outcome)
        self._sync_tables(now)
        table = self.query_one("#agents", DataTable)
        for agent_id in self._agents_in_view():
            row = self.model.agents[agent_id]
            if row.state is not None:
                timer = format_duration(now - row.since_wall)
                cells = self._agent_cells.get(agent_id)
                if cells is not None and cells[2] != timer:
                    table.update_cell(agent_id, "time", Text(timer))
                    self._agent_cells[agent_id] = (*cells[:2], timer, *cells[3:])
        for tile in self.query(QueueTile):
            view = self.model.queues.get(tile.queue)
            if view is not None and (view.stale(now) or tile.stale):
                tile.show(view, self.settings, now)
        self._sync_chart(now)
        if self.model.engine_trouble is not None:
            self._sync_health(now)  # how long it has lasted

    # --- actions -----------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Actions with nothing to act on are shown disabled, not hidden. The campaign
        keys belong to the *Campaigns* view (there the call and agent keys give way, so
        the footer fits 80 columns)."""
        campaigns_view = self._active_pane() == "campaigns-pane"
        if action in ("start_pause_campaign", "campaign_mode", "campaign_ratio"):
            if not campaigns_view:
                return False
            return True if self.model.campaigns else None
        if campaigns_view and action in _CALL_AND_AGENT_ACTIONS:
            return False
        if action in ("change_priority", "move_call"):
            return True if self._calls_waiting() else None
        if action in ("force_not_ready", "force_logout"):
            return True if self._agents_known() else None
        return True

    def _active_pane(self) -> str:
        try:
            return self.query_one(TabbedContent).active
        except NoMatches:  # not composed yet
            return ""

    def _show(self, pane: str) -> None:
        tabs = self.query_one(TabbedContent)
        if tabs.active != pane:
            tabs.active = pane
        self._focus_pane(pane)

    def _focus_pane(self, pane: str) -> None:
        if pane == "agents-pane":
            self.query_one("#agents", DataTable).focus()
        elif pane == "calls-pane":
            self.query_one("#calls", DataTable).focus()
        elif pane == "campaigns-pane":
            self.query_one("#campaigns", DataTable).focus()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self._sync_tables(self._clock())
        self.refresh_bindings()
        # A view chosen on the tab bar takes the focus into its table. Not when the focus
        # is already in a view: TabbedContent activates the pane that gets the focus, so
        # the focus is what decides the view (``_show`` moves both), and focusing here
        # too would fight it: focusing is deferred, a late activation took the focus back
        # to its own view, whose pane then activated again, and two views took turns for
        # ever. Nor for an activation no longer current (tabs stepped through quickly).
        focused = self.focused
        in_a_view = focused is not None and any(
            isinstance(node, TabPane) for node in focused.ancestors
        )
        pane = event.pane.id
        if not in_a_view and pane is not None and pane == event.tabbed_content.active:
            self._focus_pane(pane)

    def selected_call(self, key: str) -> tuple[str, WaitingCall] | None:
        """The call highlighted in *Waiting calls*; otherwise shows that view and says
        how to choose one (``key`` is the action's key)."""
        if not self._calls_waiting():
            self.notify("No call is waiting.", markup=False)
            return None
        if self.query_one(TabbedContent).active != "calls-pane":
            self._show("calls-pane")
            self.notify(f"Highlight a call with ↑↓, then press {key} again.", markup=False)
            return None
        call_id = self._highlighted(self.query_one("#calls", DataTable), self._call_order)
        found = self.model.find_call(call_id) if call_id is not None else None
        if found is None:
            self.notify("That call is no longer waiting.", markup=False)
        return found

    def selected_agent(self, key: str) -> AgentRow | None:
        """The agent highlighted in *Agents* (see :meth:`selected_call`)."""
        if self.query_one(TabbedContent).active != "agents-pane":
            self._show("agents-pane")
            self.notify(f"Highlight an agent with ↑↓, then press {key} again.", markup=False)
            return None
        agent_id = self._highlighted(self.query_one("#agents", DataTable), self._agent_order)
        row = self.model.agents.get(agent_id) if agent_id is not None else None
        if row is None or row.state is None:
            self.notify("The engine has said nothing of that agent yet.", markup=False)
            return None
        return row

    def selected_campaign(self, key: str) -> CampaignStatus | None:
        """The campaign highlighted in *Campaigns* (see :meth:`selected_call`)."""
        if not self.model.campaigns:
            self.notify("The engine has published no campaign.", markup=False)
            return None
        if self.query_one(TabbedContent).active != "campaigns-pane":
            self._show("campaigns-pane")
            self.notify(f"Highlight a campaign with ↑↓, then press {key} again.", markup=False)
            return None
        name = self._highlighted(self.query_one("#campaigns", DataTable), self._campaign_order)
        return self.model.campaigns.get(name) if name is not None else None

    def action_start_pause_campaign(self) -> None:
        status = self.selected_campaign("s")
        if status is None:
            return
        state = "paused" if status.state == "running" else "running"
        self.send(
            SetCampaignState(
                supervisor_id=self.supervisor_id, campaign=status.campaign, state=state
            )
        )

    def action_campaign_mode(self) -> None:
        status = self.selected_campaign("d")
        if status is None:
            return

        def chosen(mode: str | None) -> None:
            if mode in _DIAL_MODES and mode != status.mode:
                self.send(
                    SetCampaignPacing(
                        supervisor_id=self.supervisor_id,
                        campaign=status.campaign,
                        mode=mode,
                    )
                )

        self.push_screen(
            ChoiceDialog(
                f"Dial mode of {status.campaign}",
                f"Now {status.mode}. Predictive keeps agents busiest within the abandon "
                f"cap ({status.abandon_cap:.0%}); progressive never dials more lines than "
                "free agents; power dials a fixed ratio; preview waits for the agent.",
                [(mode, mode) for mode in _DIAL_MODES if mode != status.mode],
            ),
            chosen,
        )

    def action_campaign_ratio(self) -> None:
        status = self.selected_campaign("r")
        if status is None:
            return

        def chosen(value: str | None) -> None:
            if value is not None:
                self.send(
                    SetCampaignPacing(
                        supervisor_id=self.supervisor_id,
                        campaign=status.campaign,
                        power_ratio=float(value),
                    )
                )

        self.push_screen(
            ValueDialog(
                f"Power ratio of {status.campaign}",
                f"Lines dialled per free agent in power mode (now {status.power_ratio:g}; "
                f"the campaign is in {status.mode} mode).",
                f"{status.power_ratio:g}",
                check=ratio_problem,
            ),
            chosen,
        )

    def action_change_priority(self) -> None:
        found = self.selected_call("p")
        if found is None:
            return
        queue, call = found
        caller = call.customer or call.ani or "no number"

        def chosen(value: str | None) -> None:
            if value is not None:
                self.send(
                    ChangeCallPriority(
                        supervisor_id=self.supervisor_id,
                        call_id=call.call_id,
                        priority=float(value),
                    )
                )

        self.push_screen(
            ValueDialog(
                f"Priority of call {call.call_id}",
                f"{caller}, waiting in {queue} for {format_duration(call.waited_s)}. "
                "New priority in rank points (higher is served sooner); it keeps its age.",
                check=priority_problem,
            ),
            chosen,
        )

    def action_move_call(self) -> None:
        found = self.selected_call("m")
        if found is None:
            return
        queue, call = found
        others = [name for name in self.model.queue_names() if name != queue]
        if not others:
            self.notify(f"There is no queue but {queue} to move it to.", markup=False)
            return

        def chosen(target: str | None) -> None:
            if target is not None:
                self.send(
                    MoveWaitingCall(
                        supervisor_id=self.supervisor_id, call_id=call.call_id, queue=target
                    )
                )

        self.push_screen(
            ChoiceDialog(
                f"Move call {call.call_id}",
                f"{call.customer or call.ani or 'no number'} from {queue} to (it keeps its age):",
                [(name, name) for name in others],
            ),
            chosen,
        )

    def action_force_not_ready(self) -> None:
        row = self.selected_agent("n")
        if row is None:
            return

        def chosen(reason: str | None) -> None:
            if reason is not None:
                self.send(
                    ForceNotReady(
                        supervisor_id=self.supervisor_id, agent_id=row.agent_id, reason=reason
                    )
                )

        busy = row.state in (AgentState.RESERVED, AgentState.TALKING, AgentState.WRAP_UP)
        after = " after this call" if busy else ""
        self.push_screen(
            ValueDialog(
                f"Not ready: {row.agent_id} {row.name}".strip(),
                f"Agent {row.agent_id} {row.name} goes Not ready{after}. Reason:",
                FORCE_REASON,
                check=reason_problem,
            ),
            chosen,
        )

    def action_force_logout(self) -> None:
        row = self.selected_agent("o")
        if row is None:
            return

        def chosen(answer: str | None) -> None:
            if answer == "yes":
                self.send(ForceLogout(supervisor_id=self.supervisor_id, agent_id=row.agent_id))

        self.push_screen(
            ChoiceDialog(
                f"Log out {row.agent_id} {row.name}".strip(),
                f"Log out agent {row.agent_id} {row.name} ({row.state_label()})?",
                [("yes", "Yes, log out"), ("no", "No")],
            ),
            chosen,
        )

    def action_next_view(self) -> None:
        tabs = self.query_one(TabbedContent)
        current = tabs.active if tabs.active in _PANES else _PANES[0]
        self._show(_PANES[(_PANES.index(current) + 1) % len(_PANES)])

    def action_next_chart(self) -> None:
        subjects = [ALL_QUEUES, *self.model.queue_names()]
        index = subjects.index(self._chart_subject) if self._chart_subject in subjects else 0
        self._chart_subject = subjects[(index + 1) % len(subjects)]
        self._show("chart-pane")
        self._sync_chart(self._clock())

    def get_system_commands(self, screen: Screen[object]) -> Iterator[SystemCommand]:
        """The command palette offers every action of the footer, with its key."""
        yield from super().get_system_commands(screen)
        for title, help_text, action in (
            (
                "Change a call's priority (p)",
                "The call highlighted in Waiting calls",
                self.action_change_priority,
            ),
            (
                "Move a call to another queue (m)",
                "The call highlighted in Waiting calls",
                self.action_move_call,
            ),
            (
                "Force an agent Not ready (n)",
                "The agent highlighted in Agents",
                self.action_force_not_ready,
            ),
            ("Log an agent out (o)", "The agent highlighted in Agents", self.action_force_logout),
            (
                "Start or pause a campaign (s)",
                "The campaign highlighted in Campaigns",
                self.action_start_pause_campaign,
            ),
            (
                "Change a campaign's dial mode (d)",
                "The campaign highlighted in Campaigns",
                self.action_campaign_mode,
            ),
            (
                "Change a campaign's power ratio (r)",
                "The campaign highlighted in Campaigns",
                self.action_campaign_ratio,
            ),
            (
                "Next view (v)",
                "Agents, Waiting calls, Campaigns, Chart, Log",
                self.action_next_view,
            ),
            ("Chart the next queue (c)", "All queues, then each queue", self.action_next_chart),
        ):
            yield SystemCommand(title, help_text, action)
