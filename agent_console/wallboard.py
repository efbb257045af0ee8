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
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Container
from textual.css.query import NoMatches
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import (
    DataTable,
    Footer,
    RichLog,
    Static,
    TabbedContent,
    TabPane,
)

from agent_console.dialogs import ChoiceDialog, Prompt
from agent_console.wallboard_checks import (
    priority_now,
    priority_problem,
    ratio_problem,
    reason_problem,
)
from agent_console.wallboard_model import (
    ALL_QUEUES,
    AgentRow,
    AlertEvent,
    EngineTrouble,
    LogEntry,
    WallboardModel,
)
from agent_console.wallboard_tables import BoardTables, calls_note_text
from agent_console.wallboard_tiles import TILE_WIDTH, QueueTile, banner_text, health_text
from agent_console.wallboard_views import ChartPanel, log_line
from agent_console.widgets import format_duration
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
#: The agent grid and the calls table get their wide columns from this many cells on.
WIDE_FROM = 110
#: Reason sent with a forced Not ready unless the supervisor types another.
FORCE_REASON = "supervisor"
_SEND_HINT = "Enter: send · Esc: cancel"

_PANES = ("agents-pane", "calls-pane", "campaigns-pane", "chart-pane", "log-pane")
_DIAL_MODES = ("preview", "progressive", "power", "predictive")
_CALL_AND_AGENT_ACTIONS = ("change_priority", "move_call", "force_not_ready", "force_logout")


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
        watching: str = "",
    ) -> None:
        """``agent_names`` (agent id -> name, from the configuration) lists agents before
        the engine says anything of them; ``queues`` orders the tiles; ``clock`` gives
        wall-clock epoch seconds (fix it for snapshots); ``watching`` says which centre
        the bus leads to (told when the board opens, and on the log)."""
        super().__init__()
        self.watching = watching
        self.bus = bus
        self.supervisor_id = supervisor_id
        self.settings = settings or WallboardSettings()
        self.model = WallboardModel(self.settings, agent_names=agent_names, queue_order=queues)
        self._clock = clock
        self._sync_pending = False
        self.tables = BoardTables(self, self.model)
        self._chart_subject = ALL_QUEUES
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
        self.tables.wide = self.size.width >= WIDE_FROM
        self.tables.columns()
        self._layout_tiles(self.size.width)
        self._follow()
        agents = self.query_one("#agents", DataTable)
        self.watch(agents, "scroll_y", lambda _: self.tables.sync(self._clock()), init=False)
        self.set_interval(1.0, self.tick, name="wallboard-clock")
        self._sync()
        if self.watching:
            self.notify(f"Watching {self.watching}", title="Centre", markup=False)
            self.query_one("#log", RichLog).write(Text(f"Watching {self.watching}"))

    def on_resize(self, event: Resize) -> None:
        self._layout_tiles(event.size.width)
        wide = event.size.width >= WIDE_FROM
        if wide != self.tables.wide:
            self.tables.relayout(wide, self._clock())

    def _layout_tiles(self, width: int) -> None:
        tiles = self.query_one("#tiles")
        tiles.styles.grid_size_columns = max(1, (width - 1) // TILE_WIDTH)

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
        self.tables.agents_due |= agents
        self.tables.calls_due = self.tables.calls_due or calls
        if calls:
            self._sync_calls_note()
        if self.model.health_changed:
            self.model.health_changed = False
            self._sync_health(now)
        if self.model.campaigns_changed:
            self.model.campaigns_changed = False
            self.tables.campaigns_due = True
        self.tables.sync(now)
        self._sync_banner()
        can_act = (self._calls_waiting(), self._agents_known(), bool(self.model.campaigns))
        if can_act != self._can_act:
            self._can_act = can_act
            self.refresh_bindings()

    def _calls_waiting(self) -> bool:
        return any(view.calls for view in self.model.queues.values())

    def _agents_known(self) -> bool:
        return any(row.state is not None for row in self.model.agents.values())

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
        self.tables.sync(now)
        self.tables.tick_agents(now)
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
        self.tables.sync(self._clock())
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
        call_id = self.tables.highlighted("calls")
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
        agent_id = self.tables.highlighted("agents")
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
        name = self.tables.highlighted("campaigns")
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
                [(mode, mode) for mode in _DIAL_MODES if mode != status.mode],
                intro=f"Now {status.mode}. Predictive keeps agents busiest within the abandon "
                f"cap ({status.abandon_cap:.0%}); progressive never dials more lines than "
                "free agents; power dials a fixed ratio; preview waits for the agent.",
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
            Prompt(
                f"Power ratio of {status.campaign}",
                _SEND_HINT,
                f"{status.power_ratio:g}",
                intro=f"Lines dialled per free agent in power mode (now {status.power_ratio:g}; "
                f"the campaign is in {status.mode} mode).",
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
            Prompt(
                f"Priority of call {call.call_id}",
                _SEND_HINT,
                "" if call.priority is None else f"{call.priority:g}",
                intro=f"{caller}, waiting in {queue} for {format_duration(call.waited_s)}"
                f"{priority_now(call)}. New priority in rank points (higher is served "
                "sooner); it keeps its age.",
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
                [(name, name) for name in others],
                intro=f"{call.customer or call.ani or 'no number'} from {queue} to "
                "(it keeps its age):",
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
            Prompt(
                f"Not ready: {row.agent_id} {row.name}".strip(),
                _SEND_HINT,
                FORCE_REASON,
                intro=f"Agent {row.agent_id} {row.name} goes Not ready{after}. Reason:",
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
                [("yes", "Yes, log out"), ("no", "No")],
                intro=f"Log out agent {row.agent_id} {row.name} ({row.state_label()})?",
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
