"""What the supervisor wallboard knows, built from bus messages: plain data, no widgets.

:class:`WallboardModel` takes every message the wallboard follows (queue figures,
waiting calls, agent states, answers to supervisor commands) with the wall-clock time
it is applied at, and keeps:

* the latest :class:`~cti.protocol.QueueStatus` and waiting calls of each queue, with a
  colour level for service level and longest wait (:class:`Level`);
* one :class:`AgentRow` per agent (name, state with reason, since when, current call and
  its caller, calls handled, whether its phone is reachable), and which rows changed
  since the screen last drew them;
* a history of waiting calls and service level per queue and for the whole center, one
  point per bucket over the configured span (the chart);
* alerts: raised once when a queue's service level falls below the alert level or its
  longest wait rises above it, cleared once the figure is back past the threshold by a
  margin (hysteresis, so a figure hovering at the threshold does not raise an alert at
  every update); every raise and clear is kept in a bounded log;
* the latest :class:`~cti.protocol.CampaignStatus` of each outbound campaign;
* the engine's own trouble (:class:`~cti.protocol.EngineHealth`: a full disk under its
  journal or store, records held in memory or lost), from when it started until the
  engine says it is over, raised and cleared once on the log (:class:`EngineTrouble`);
* the supervisor commands sent and not yet answered, and the answers.

It reads no clock and draws nothing, so it is unit-tested and benchmarked on its own;
:mod:`agent_console.wallboard` draws it.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from agent_console.widgets import format_duration
from cti.config import WallboardSettings
from cti.models import AgentState
from cti.protocol import (
    AgentStateChanged,
    CampaignStatus,
    ChangeCallPriority,
    CommandResult,
    EngineHealth,
    ForceLogout,
    ForceNotReady,
    Message,
    MoveWaitingCall,
    QueueCalls,
    QueueStatus,
    SetCampaignPacing,
    SetCampaignState,
    SupervisorCommand,
    WaitingCall,
)

#: Points in a chart: the span is cut into this many buckets.
HISTORY_POINTS = 60
#: A queue whose figures are older than this is shown as stale.
STALE_AFTER_S = 10.0
#: An unanswered supervisor command is reported as such after this long.
ANSWER_TIMEOUT_S = 5.0
#: Entries kept in the alert and action log.
LOG_KEPT = 500
#: Callers remembered by call id (to name an agent's current call).
_CALLERS_KEPT = 10_000

AlertKind = Literal["service_level", "longest_wait"]
ALL_QUEUES = ""
"""The key of the whole center's history (every queue together)."""


class Level(StrEnum):
    """How a figure compares with its thresholds: the colour it is shown in."""

    NONE = "none"
    """Not judged (no figure yet, or too few calls for a service level)."""
    OK = "ok"
    WARN = "warn"
    ALERT = "alert"


def format_percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{fraction:.0%}"


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """An alert raised or cleared for one queue, or a note on the log (an action's result)."""

    at_wall: float
    queue: str
    kind: AlertKind
    raised: bool
    value: float
    threshold: float

    def text(self) -> str:
        """One line for a person, e.g. ``general: service level 62% is below 70%``."""
        if self.kind == "service_level":
            value, limit = format_percent(self.value), format_percent(self.threshold)
            if self.raised:  # the figure just crossed: it may round to the threshold
                value = f"{self.value:.1%}" if value == limit else value
                return f"{self.queue}: service level fell below the {limit} alert (now {value})"
            if math.isnan(self.value):
                return f"{self.queue}: service level no longer measured; alert cleared"
            return f"{self.queue}: service level back to {value} (alert below {limit})"
        value, limit = format_duration(self.value), format_duration(self.threshold)
        if self.raised:
            return f"{self.queue}: longest wait passed the {limit} alert (now {value})"
        return f"{self.queue}: longest wait back to {value} (alert over {limit})"


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """What became of a supervisor command: applied, refused, or never answered."""

    at_wall: float
    command_id: str
    description: str
    ok: bool
    error: str = ""

    def text(self) -> str:
        if self.ok:
            return f"Done: {self.description}"
        return f"Refused: {self.description}: {self.error}"


@dataclass(frozen=True, slots=True)
class EngineTrouble:
    """The engine's health as the banner and the log show it: ``health`` the latest
    message, ``since_wall`` when the trouble began (as the engine says; from an older
    engine, the first message of it this board saw)."""

    since_wall: float
    health: EngineHealth

    @property
    def raised(self) -> bool:
        return not self.health.ok

    @property
    def at_wall(self) -> float:
        return self.health.at_wall

    def text(self) -> str:
        """One line for a person: what is wrong and what is held and lost, or that all
        is written again."""
        h = self.health
        if h.ok:
            return "engine: all written again" + (
                f" (conflicts so far: {h.record_conflicts})" if h.record_conflicts else ""
            )
        parts = [f"engine: {'; '.join(h.alerts) or 'trouble'}"]
        lost = self.lost()
        if lost:
            parts.append(f"lost: {lost}")
        held = self.held()
        if held:
            parts.append(f"held in memory: {held}")
        return " · ".join(parts)

    def held(self) -> str:
        """What the engine holds in memory until it can write it, e.g. ``12 router
        inputs, 3 call records`` (empty if nothing)."""
        h = self.health
        return _counts((h.journal_held, "router input"), (h.records_held, "call record"))

    def lost(self) -> str:
        """What could not be held: routed but not journaled, records only in the log."""
        h = self.health
        return _counts(
            (h.inputs_lost, "input not journaled"), (h.records_lost, "call record not held")
        )


def _counts(*items: tuple[int, str]) -> str:
    return ", ".join(
        f"{count:,} {noun}" if count == 1 else f"{count:,} {_plural(noun)}"
        for count, noun in items
        if count
    )


def _plural(noun: str) -> str:
    head, _, rest = noun.partition(" not ")
    head = head + "s"
    return f"{head} not {rest}" if rest else head


LogEntry = AlertEvent | ActionOutcome | EngineTrouble


@dataclass(slots=True)
class AgentRow:
    """One agent as the grid shows it."""

    agent_id: str
    name: str = ""
    state: AgentState | None = None
    """``None``: configured, but the engine has not said anything about this agent."""
    reason: str = ""
    since_wall: float = 0.0
    call_id: str | None = None
    calls_handled: int = 0
    phone_reachable: bool | None = None
    """Whether the agent's phone can be rung; ``None``: no line carries the voice."""
    caller_name: str = ""
    """The customer on ``call_id`` when known; the number it came from or dials."""
    caller_number: str = ""

    def state_label(self) -> str:
        """``Ready``, ``Not ready (lunch)``, ``not seen``..."""
        if self.state is None:
            return "not seen"
        label = self.state.value.replace("_", " ").capitalize()
        return f"{label} ({self.reason})" if self.reason else label


@dataclass(slots=True)
class QueueView:
    """One queue's latest figures and their colour levels."""

    name: str
    status: QueueStatus | None = None
    calls: tuple[WaitingCall, ...] = ()
    calls_waiting: int = 0
    """How many wait: the engine sends only the first of a long queue (``calls``)."""
    service_level: Level = Level.NONE
    longest_wait: Level = Level.NONE

    @property
    def worst(self) -> Level:
        order = (Level.NONE, Level.OK, Level.WARN, Level.ALERT)
        return max(self.service_level, self.longest_wait, key=order.index)

    def stale(self, now: float) -> bool:
        return self.status is not None and now - self.status.at_wall > STALE_AFTER_S


@dataclass(slots=True)
class _History:
    """One point per bucket: the most calls waiting in it, the last service level."""

    points: deque[tuple[int, float, float | None]] = field(
        default_factory=lambda: deque(maxlen=HISTORY_POINTS)
    )

    def add(self, bucket: int, waiting: float, service_level: float | None) -> None:
        if self.points and self.points[-1][0] == bucket:
            _, most, _ = self.points[-1]
            self.points[-1] = (bucket, max(most, waiting), service_level)
        elif not self.points or bucket > self.points[-1][0]:
            self.points.append((bucket, waiting, service_level))
        # an older bucket (a late message) is not redrawn: the chart only moves forward

    def series(self, last_bucket: int) -> tuple[list[float], list[float]]:
        """Waiting and service level (0-100) for the buckets up to ``last_bucket``, from
        the first within the span that has figures (empty lists if none has).

        A bucket without figures counts no calls waiting and keeps the service level
        before it (the level is cumulative; it does not drop to nothing between updates);
        0 stands for a service level not measured yet.
        """
        first = last_bucket - HISTORY_POINTS + 1
        by_bucket = {b: (w, s) for b, w, s in self.points if first <= b <= last_bucket}
        if not by_bucket:
            return [], []
        older = [s for b, _, s in self.points if b < first and s is not None]
        level = older[-1] if older else None
        waiting: list[float] = []
        service: list[float] = []
        for bucket in range(min(by_bucket), last_bucket + 1):
            if bucket in by_bucket:
                count, sl = by_bucket[bucket]
                level = sl if sl is not None else level
                waiting.append(count)
            else:
                waiting.append(0.0)
            service.append(100.0 * level if level is not None else 0.0)
        return waiting, service


@dataclass(slots=True)
class _Pending:
    description: str
    sent_wall: float


class WallboardModel:
    """The wallboard's state (see the module docstring). ``agent_names`` names agents
    (from the configuration); ``queue_order`` puts those queues first, in that order."""

    def __init__(
        self,
        settings: WallboardSettings | None = None,
        *,
        agent_names: Mapping[str, str] | None = None,
        queue_order: Iterable[str] = (),
    ) -> None:
        self.settings = settings or WallboardSettings()
        self.queues: dict[str, QueueView] = {}
        self.agents: dict[str, AgentRow] = {}
        self.log: deque[LogEntry] = deque(maxlen=LOG_KEPT)
        self.changed_agents: set[str] = set()
        """Agents whose row changed since :meth:`take_changes` last ran."""
        self.changed_queues: set[str] = set()
        self.calls_changed = False
        self.campaigns: dict[str, CampaignStatus] = {}
        """Each campaign's latest status, by name."""
        self.campaigns_changed = False
        self.engine_trouble: EngineTrouble | None = None
        """The engine's current trouble, ``None`` while it reports none."""
        self.health_changed = False
        self._health_at = -math.inf
        self._order = {name: index for index, name in enumerate(queue_order)}
        self._names = dict(agent_names or {})
        self._active: dict[tuple[str, AlertKind], AlertEvent] = {}
        self._history: dict[str, _History] = {ALL_QUEUES: _History()}
        self._callers: OrderedDict[str, str] = OrderedDict()
        self._pending: dict[str, _Pending] = {}
        # running totals over the latest status of every queue (the center's chart)
        self._waiting_total = 0
        self._counted_total = 0
        self._within_total = 0.0
        for agent_id, name in self._names.items():
            self.agents[agent_id] = AgentRow(agent_id, name)
            self.changed_agents.add(agent_id)

    # --- reading -----------------------------------------------------------------

    @property
    def bucket_s(self) -> float:
        return self.settings.history_minutes * 60.0 / HISTORY_POINTS

    def queue_names(self) -> list[str]:
        """Configured queues first (in configuration order), then the others by name."""
        last = len(self._order)
        return sorted(self.queues, key=lambda name: (self._order.get(name, last), name))

    @property
    def active_alerts(self) -> list[AlertEvent]:
        """Alerts raised and not yet cleared, oldest first."""
        return sorted(self._active.values(), key=lambda alert: alert.at_wall)

    def alert_active(self, queue: str, kind: AlertKind) -> bool:
        return (queue, kind) in self._active

    def waiting_calls(self) -> list[tuple[str, WaitingCall]]:
        """Every waiting call as ``(queue, call)``, queue by queue, best first."""
        return [(name, call) for name in self.queue_names() for call in self.queues[name].calls]

    def calls_cut(self) -> list[tuple[str, int, int]]:
        """``(queue, calls shown, calls waiting)`` of every queue whose waiting calls the
        engine sent only in part (a flood), in queue order."""
        return [
            (name, len(view.calls), view.calls_waiting)
            for name in self.queue_names()
            if (view := self.queues[name]).calls_waiting > len(view.calls)
        ]

    def find_call(self, call_id: str) -> tuple[str, WaitingCall] | None:
        for queue, call in self.waiting_calls():
            if call.call_id == call_id:
                return queue, call
        return None

    def caller_of(self, call_id: str | None) -> str:
        """The customer's name or the number of a call seen waiting, else ``""``."""
        return self._callers.get(call_id, "") if call_id is not None else ""

    def history(self, queue: str = ALL_QUEUES, *, now: float) -> tuple[list[float], list[float]]:
        """Waiting calls and service level (percent) over the span, one point per bucket,
        for ``queue`` (default: the whole center)."""
        history = self._history.get(queue) or _History()
        return history.series(int(now // self.bucket_s))

    def center_service_level(self) -> float | None:
        """Service level of every queue together, weighted by the calls each counts."""
        return self._within_total / self._counted_total if self._counted_total else None

    def center_waiting(self) -> int:
        return self._waiting_total

    def campaign_names(self) -> list[str]:
        return sorted(self.campaigns)

    def pending_commands(self) -> list[str]:
        return [pending.description for pending in self._pending.values()]

    def take_changes(self) -> tuple[set[str], set[str], bool]:
        """The agents and queues changed, and whether the waiting calls changed, since
        the last call; resets them (the screen calls this when it draws)."""
        agents, queues, calls = self.changed_agents, self.changed_queues, self.calls_changed
        self.changed_agents, self.changed_queues, self.calls_changed = set(), set(), False
        return agents, queues, calls

    # --- applying messages -------------------------------------------------------

    def apply(self, message: Message, now: float) -> list[LogEntry]:
        """Take one message at wall-clock ``now``; returns the alerts raised or cleared
        and the command outcomes it brought (also added to :attr:`log`)."""
        if isinstance(message, QueueStatus):
            return self._on_status(message)
        if isinstance(message, QueueCalls):
            self._on_calls(message)
        elif isinstance(message, AgentStateChanged):
            self._on_agent(message)
        elif isinstance(message, CommandResult):
            return self._on_result(message, now)
        elif isinstance(message, EngineHealth):
            return self._on_health(message)
        elif isinstance(message, CampaignStatus):
            known = self.campaigns.get(message.campaign)
            if known is None or message.at_wall >= known.at_wall:  # not a late one
                self.campaigns[message.campaign] = message
                self.campaigns_changed = True
        return []

    def _on_health(self, health: EngineHealth) -> list[LogEntry]:
        """A trouble starts, changes kind or ends: each is on the log once; the same kinds
        again (the engine refreshes the counts each status interval) update the banner
        only. A message older than the one shown is ignored."""
        if health.at_wall <= self._health_at:
            return []  # late, or the same retained message again (a reconnection)
        self._health_at = health.at_wall
        current = self.engine_trouble
        if health.ok:
            if current is None:
                return []  # all well, and it was: a repeat or the retained "ok"
            self.engine_trouble = None
            self.health_changed = True
            cleared = EngineTrouble(current.since_wall, health)
            self.log.append(cleared)
            return [cleared]
        since = health.since_wall
        if since is None:  # an older engine: from the first message of it seen here
            since = current.since_wall if current is not None else health.at_wall
        self.engine_trouble = EngineTrouble(since, health)
        self.health_changed = True
        # Without kinds (an older engine, which published changes only) each is news.
        if current is not None and health.kinds and health.kinds == current.health.kinds:
            return []  # a refresh of the counts
        self.log.append(self.engine_trouble)
        return [self.engine_trouble]

    def _on_status(self, status: QueueStatus) -> list[LogEntry]:
        view = self.queues.get(status.queue)
        if view is None:
            view = self.queues[status.queue] = QueueView(status.queue)
            self._history[status.queue] = _History()
        elif view.status is not None and status.at_wall < view.status.at_wall:
            return []  # older than what is shown: a late or repeated retained message
        self._retotal(view.status, status)
        view.status = status
        self.changed_queues.add(status.queue)
        bucket = int(status.at_wall // self.bucket_s)
        self._history[status.queue].add(bucket, status.waiting, self._judged_sl(status))
        self._history[ALL_QUEUES].add(bucket, self._waiting_total, self.center_service_level())
        events = [*self._judge_service_level(view, status), *self._judge_wait(view, status)]
        self.log.extend(events)
        return list(events)

    def _retotal(self, old: QueueStatus | None, new: QueueStatus) -> None:
        for status, sign in ((old, -1), (new, 1)):
            if status is None:
                continue
            self._waiting_total += sign * status.waiting
            counted = _counted(status)
            if status.service_level is not None and counted > 0:
                self._counted_total += sign * counted
                self._within_total += sign * status.service_level * counted

    def _judged_sl(self, status: QueueStatus) -> float | None:
        """The queue's service level if enough calls count to judge it, else ``None``."""
        if status.service_level is None:
            return None
        if _counted(status) < max(1, self.settings.service_level_min_offered):
            return None
        return status.service_level

    def _judge_service_level(self, view: QueueView, status: QueueStatus) -> list[AlertEvent]:
        s = self.settings
        key: tuple[str, AlertKind] = (status.queue, "service_level")
        sl = self._judged_sl(status)
        active = key in self._active
        events: list[AlertEvent] = []
        if sl is None:
            if active:
                del self._active[key]
                events.append(
                    AlertEvent(
                        status.at_wall,
                        status.queue,
                        "service_level",
                        False,
                        math.nan,
                        s.service_level_alert,
                    )
                )
            view.service_level = Level.NONE
            return events
        if not active and sl < s.service_level_alert:
            event = AlertEvent(
                status.at_wall, status.queue, "service_level", True, sl, s.service_level_alert
            )
            self._active[key] = event
            events.append(event)
        elif active and sl >= s.service_level_alert + s.service_level_clear_margin:
            del self._active[key]
            events.append(
                AlertEvent(
                    status.at_wall,
                    status.queue,
                    "service_level",
                    False,
                    sl,
                    s.service_level_alert,
                )
            )
        if key in self._active:
            view.service_level = Level.ALERT
        elif sl < s.service_level_goal:
            view.service_level = Level.WARN
        else:
            view.service_level = Level.OK
        return events

    def _judge_wait(self, view: QueueView, status: QueueStatus) -> list[AlertEvent]:
        s = self.settings
        key: tuple[str, AlertKind] = (status.queue, "longest_wait")
        wait = status.longest_wait_s if status.waiting else 0.0
        active = key in self._active
        events: list[AlertEvent] = []
        if not active and wait > s.longest_wait_alert_s:
            event = AlertEvent(
                status.at_wall, status.queue, "longest_wait", True, wait, s.longest_wait_alert_s
            )
            self._active[key] = event
            events.append(event)
        elif active and wait <= s.longest_wait_alert_s - s.longest_wait_clear_margin_s:
            del self._active[key]
            events.append(
                AlertEvent(
                    status.at_wall,
                    status.queue,
                    "longest_wait",
                    False,
                    wait,
                    s.longest_wait_alert_s,
                )
            )
        if key in self._active:
            view.longest_wait = Level.ALERT
        elif wait > s.longest_wait_warn_s:
            view.longest_wait = Level.WARN
        else:
            view.longest_wait = Level.OK
        return events

    def _on_calls(self, message: QueueCalls) -> None:
        view = self.queues.get(message.queue)
        if view is None:
            view = self.queues[message.queue] = QueueView(message.queue)
            self._history[message.queue] = _History()
        view.calls = message.calls
        view.calls_waiting = max(message.total, len(message.calls))  # 0: an older engine
        self.calls_changed = True
        self.changed_queues.add(message.queue)
        for call in message.calls:
            label = call.customer or call.ani
            if label:
                self._callers[call.call_id] = label
                self._callers.move_to_end(call.call_id)
        while len(self._callers) > _CALLERS_KEPT:
            self._callers.popitem(last=False)

    def _on_agent(self, message: AgentStateChanged) -> None:
        row = self.agents.get(message.agent_id)
        if row is None:
            row = self.agents[message.agent_id] = AgentRow(
                message.agent_id, self._names.get(message.agent_id, "")
            )
        row.state = message.state
        row.reason = message.reason
        row.since_wall = message.since_wall
        row.call_id = message.call_id
        row.calls_handled = message.calls_handled
        row.phone_reachable = message.phone_reachable
        row.name = message.agent_name or self._names.get(message.agent_id, "")
        row.caller_name, row.caller_number = message.caller_name, message.caller_number
        if message.call_id is not None and not (row.caller_name or row.caller_number):
            row.caller_name = self.caller_of(message.call_id)  # an older engine
        self.changed_agents.add(message.agent_id)

    # --- supervisor commands -----------------------------------------------------

    def sent(self, command: SupervisorCommand, now: float) -> str:
        """Note a command just published; returns how it is described to a person."""
        description = describe(command, self)
        self._pending[command.command_id] = _Pending(description, now)
        return description

    def _on_result(self, result: CommandResult, now: float) -> list[LogEntry]:
        pending = self._pending.pop(result.command_id, None)
        if pending is None:
            return []  # another wallboard's command, or a repeat already reported
        outcome = ActionOutcome(
            now, result.command_id, pending.description, result.ok, result.error
        )
        self.log.append(outcome)
        return [outcome]

    def overdue(self, now: float) -> list[ActionOutcome]:
        """Commands unanswered for :data:`ANSWER_TIMEOUT_S`: reported once and forgotten."""
        late = [
            command_id
            for command_id, pending in self._pending.items()
            if now - pending.sent_wall > ANSWER_TIMEOUT_S
        ]
        outcomes = []
        for command_id in late:
            pending = self._pending.pop(command_id)
            outcomes.append(
                ActionOutcome(
                    now,
                    command_id,
                    pending.description,
                    False,
                    f"no answer from the engine within {ANSWER_TIMEOUT_S:g} s",
                )
            )
        self.log.extend(outcomes)
        return outcomes


def abandon_level(rate: float, cap: float) -> Level:
    """A campaign's abandon rate against its cap: over it alert, within half a point of it
    warn (the dialer's own guard starts there)."""
    if rate > cap:
        return Level.ALERT
    if rate > cap - 0.005:
        return Level.WARN
    return Level.OK


def _counted(status: QueueStatus) -> int:
    """Calls a service level is measured over: offered, less the short abandons."""
    return max(0, status.offered - status.short_abandoned)


def describe(command: SupervisorCommand, model: WallboardModel | None = None) -> str:
    """A supervisor command in words, naming the caller or agent when known."""

    def agent(agent_id: str) -> str:
        row = model.agents.get(agent_id) if model is not None else None
        return (
            f"agent {agent_id} {row.name}" if row is not None and row.name else f"agent {agent_id}"
        )

    def call(call_id: str) -> str:
        caller = model.caller_of(call_id) if model is not None else ""
        return f"call {call_id} ({caller})" if caller else f"call {call_id}"

    match command:
        case ChangeCallPriority(call_id=call_id, priority=priority):
            return f"priority of {call(call_id)} set to {priority:g}"
        case MoveWaitingCall(call_id=call_id, queue=queue):
            return f"{call(call_id)} moved to {queue}"
        case ForceNotReady(agent_id=agent_id, reason=reason):
            return f"{agent(agent_id)} forced Not ready ({reason})"
        case ForceLogout(agent_id=agent_id):
            return f"{agent(agent_id)} logged out"
        case SetCampaignState(campaign=campaign, state=state):
            verb = {"running": "started", "paused": "paused", "stopped": "stopped"}[state]
            return f"campaign {campaign} {verb}"
        case SetCampaignPacing(campaign=campaign, mode=mode, power_ratio=ratio):
            changes = [f"{mode} mode"] if mode else []
            changes += [f"power ratio {ratio:g}"] if ratio is not None else []
            return f"campaign {campaign}: {', '.join(changes) or 'no change'}"
    return command.type  # pragma: no cover
