"""The engine service: lines, router, bus and store wired together. The asyncio shell.

It owns no routing rule. It turns line events into router calls (after looking the
caller up), agent commands from the bus into router calls, router deadlines into
``advance``, and the router's actions into bus messages, line requests and records.

Order is kept by construction: every router call happens synchronously in the loop,
and its actions go, in order, to one effects queue worked by one task. So an agent's
console sees the events of its calls in the order the router decided them.

Nothing a line or a console sends can stop the service: a bad event or command is
logged (and, for a command, answered with a :class:`~cti.protocol.CommandResult`
that says what was wrong) and the service goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cti import log_limits, topics
from cti.bus.memory import Bus, Subscription
from cti.clock import wall_time
from cti.config import Config, watch_config
from cti.customers.base import (
    AuditEntry,
    CustomerBase,
    CustomerCard,
    new_customer,
    safe_text,
    text_problem,
)
from cti.engine.card_budget import fit_card, fit_search_results
from cti.errors import CtiError, RoutingError, StoreError, TelephonyError
from cti.models import (
    AgentConfig,
    AgentState,
    CallDetailRecord,
    CallerInfo,
    CallerKind,
    Customer,
    Interaction,
    OutboxItem,
    Scalar,
    ScriptRun,
)
from cti.phone import classify
from cti.protocol import (
    MAX_QUEUE_CALLS_BYTES,
    MAX_QUEUE_CALLS_SENT,
    AcceptOffer,
    AddServiceItem,
    AgentStateChanged,
    AnyCommand,
    CallArrived,
    CallbackRequested,
    CallConnected,
    CallControl,
    CallEnded,
    CallerHungUp,
    CallOffered,
    CallScript,
    CancelConsult,
    ChangeCallPriority,
    ChooseCustomer,
    CommandMemory,
    CommandResult,
    CompleteConsult,
    CompleteWrapUp,
    ConferenceCall,
    ConsultCall,
    CreateCustomer,
    CurrentCall,
    CustomerDetails,
    CustomerSearchResults,
    DialNumber,
    DtmfReceived,
    EngineHealth,
    EscalateServiceItem,
    ExtendWrapUp,
    ForceLogout,
    ForceNotReady,
    HangUp,
    HoldCall,
    LineFeatures,
    Login,
    Logout,
    Message,
    MoveWaitingCall,
    MuteCall,
    OfferWithdrawn,
    QueueCalls,
    QueueStatus,
    RejectOffer,
    RequestSnapshot,
    ResumeCall,
    SaveScriptRun,
    ScheduleCallback,
    ScreenPop,
    SearchCustomers,
    SetCampaignPacing,
    SetCampaignState,
    SetNotReady,
    SetReady,
    ShowCustomer,
    SupervisorCommand,
    TransferCall,
    WaitingCall,
    encode,
    is_command,
    is_supervisor_command,
)
from cti.scoring import score
from cti.store.database import RecordConflict, Store
from cti.store.journal import Journal, RecoveryReport, RetryBackoff
from queue_engine import inputs as ri
from queue_engine.actions import (
    Action,
    AgentStateSet,
    ConnectCall,
    ConsultChanged,
    DisconnectCall,
    ExitCall,
    JoinCall,
    MoveCall,
    OfferCall,
    RecordCall,
    RecordLeg,
    ReleaseLine,
    WithdrawOffer,
)
from queue_engine.live_stats import LiveStats
from queue_engine.priority import explain
from queue_engine.router import CallPhase, Router
from scripts_engine.catalog import ScriptCatalog
from telephony_adapters.base import LineEvent, TelephonyAdapter

log = logging.getLogger(__name__)

#: How many recent command ids are remembered to make repeats harmless.
_COMMAND_MEMORY = 10_000
#: Journal appends between checkpoints of its WAL (each about a page).
_CHECKPOINT_EVERY = 1000
#: Call records held in memory at most while the store cannot take them.
MAX_HELD_RECORDS = 100_000


class CustomerDirectory(Protocol):
    """What the service needs of the store to pop a customer card."""

    async def find_by_number(self, e164: str) -> list[Customer]: ...

    async def recent_interactions(
        self, customer_id: int, limit: int = 5
    ) -> tuple[Interaction, ...]: ...


@runtime_checkable
class CustomerCards(Protocol):
    """A directory that also gives the screen-pop's history, service items and value
    inputs in one call (the store does; a bare :class:`CustomerDirectory` is enough)."""

    async def customer_card(self, customer_id: int) -> CustomerCard: ...


class CallRecorder(Protocol):
    """Where finished calls are kept."""

    async def record_call(self, cdr: CallDetailRecord) -> object: ...

    async def add_interaction(self, customer_id: int, interaction: Interaction) -> None: ...


@runtime_checkable
class ScriptRunRecorder(Protocol):
    """A recorder that also keeps what a call's script recorded (the store does)."""

    async def record_script_run(
        self, run: ScriptRun, outbox: Sequence[OutboxItem] = ()
    ) -> None: ...


#: Script actions the service leaves in the outbox for other systems to carry out.
OUTBOX_ACTIONS = frozenset({"add_to_dnc", "send_email"})


class EngineService:
    """Runs the engine until cancelled. Queues come from ``config``; ``agents`` are
    agent configurations (or, for short, a map of agent id to the queues it serves)."""

    def __init__(
        self,
        config: Config,
        bus: Bus,
        directory: CustomerDirectory,
        lines: Sequence[TelephonyAdapter],
        agents: Iterable[AgentConfig] | Mapping[str, Sequence[str]],
        *,
        recorder: CallRecorder | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.config = config
        self.bus = bus
        self.directory = directory
        self.recorder = recorder
        self.journal = journal
        """Where every router input is written before it is applied (:mod:`cti.store.journal`)."""
        self.recovery: RecoveryReport | None = None
        """What :meth:`run` found in the journal when it started, if there was one."""
        self._recovered = journal is None
        self._unstored = 0
        """Call records decided but not yet in the store: the journal is not cut meanwhile."""
        self._held_records: deque[_HeldRecord] = deque()
        """Call records the store could not take yet, oldest first: written back with
        backoff (see docs/durability.md). At most :attr:`max_held_records`."""
        self.max_held_records = MAX_HELD_RECORDS
        self.records_lost = 0
        """Records the full memory spool could not hold (logged whole; the journal still
        has them, so a restart stores them again)."""
        self.record_conflicts = 0
        """Records the store kept under a suffixed id (their call id was taken)."""
        self._record_error = ""
        self._record_retry = RetryBackoff()
        self._journal_retry = RetryBackoff()
        self._timer_retry = RetryBackoff(first_s=0.1, most_s=5.0)
        self._retry_now = asyncio.Event()
        self._alerts: tuple[str, ...] = ()
        """The kinds of trouble last published on the engine's health topic."""
        self._trouble_since: float | None = None
        """Wall-clock time the current trouble began (None: all well)."""
        if isinstance(recorder, Store):
            recorder.conflict_listeners.append(self._on_record_conflict)
        self.lines = {line.name: line for line in lines}
        if isinstance(agents, Mapping):
            agents = [AgentConfig(id=a, queues=dict.fromkeys(qs, 0.0)) for a, qs in agents.items()]
        agents = list(agents)
        self._agent_names = {a.id: a.name for a in (*agents, *config.agents) if a.name}
        self.scripts = ScriptCatalog()
        """The queues' call scripts, read again when their files change (a broken one is
        logged with its file and line, and its calls go without a script)."""
        self._script_answers: dict[str, dict[str, Scalar]] = {}
        """Answers a wrap-up brought, until the call's interaction is written."""
        self.router = Router(
            config.queues,
            max_missed_offers=config.engine.max_missed_offers,
            agents=agents,
            seed=config.engine.seed,
        )
        self.stats = LiveStats(
            {q.name: q for q in config.queues},
            {a: self.router.agent_queues(a) for a in self.router.agent_ids()},
        )
        """Live figures per queue and per 15-minute interval (REFERENCE §1)."""
        self.record_listeners: list[Callable[[CallDetailRecord], None]] = []
        """Called with every call record as the call finishes (before it is stored)."""
        self.campaign_control: Callable[[SupervisorCommand], Awaitable[None]] | None = None
        """Carries out the supervisor's campaign commands (``SetCampaignState``,
        ``SetCampaignPacing``): the dialer's, when one runs in this engine
        (:mod:`cti.engine.campaigns`). It raises :class:`CtiError` to refuse one."""
        self._call_scripts: dict[str, str] = {}
        """Call -> the script its offer carries instead of its queue's (a campaign's)."""
        self._line_of = _LineBook(journal)
        self._offers: dict[str, CallOffered] = {}
        self._current: dict[str, CallOffered] = {}
        """Agent -> the offer of the call it is on (talking or wrap-up): its card, sent
        again as :class:`CurrentCall` when the console asks for a snapshot."""
        self._held: set[str] = set()
        """Calls whose caller is on hold (by the agent, a consultation or a transfer)."""
        self._muted: set[str] = set()
        """Calls where the line keeps the agent's voice from the caller."""
        self._partial_runs: OrderedDict[str, SaveScriptRun] = OrderedDict()
        """The script run saved last for each call not yet wrapped up (SaveScriptRun)."""
        self._commands = CommandMemory(_COMMAND_MEMORY)
        self._effects: asyncio.Queue[Action | _Publish] = asyncio.Queue()
        self._records: asyncio.Queue[CallDetailRecord] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._time_offset: float | None = None
        self._timer_deadline: float | None = None
        self.customers = (
            CustomerBase(directory, config.customers) if isinstance(directory, Store) else None
        )
        """The customer base behind the desk's customer commands (None: the directory is
        not a store, and those commands are refused)."""
        self._call_customer: dict[str, Customer] = {}
        """Call -> the customer the agent chose or created for it: its record and history
        go to that customer."""
        self.ready = asyncio.Event()
        """Set once the service listens for commands and line events."""
        for queue in config.queues:
            self.scripts.get(queue.script)  # a broken script is logged at start-up

    # --- running -------------------------------------------------------------------

    async def run(self) -> None:
        """Start the lines and serve until cancelled; lines are stopped on the way out.

        With a journal, first recover the state it holds (see :meth:`_recover`).
        """
        for line in self.lines.values():
            if self.journal is not None:  # a line that keeps call state keeps it beside
                line.keep_state_beside(self.journal.path)
            await line.start()
        try:
            if not self._recovered:
                await self._recover()
            async with (
                self.bus.subscribe(topics.ALL_AGENT_COMMANDS) as commands,
                self.bus.subscribe(topics.ALL_SUPERVISOR_COMMANDS) as supervision,
                asyncio.TaskGroup() as tg,
            ):
                for line in self.lines.values():
                    tg.create_task(self._serve_line(line), name=f"line:{line.name}")
                tg.create_task(self._serve_commands(commands), name="engine:commands")
                tg.create_task(self._serve_commands(supervision), name="engine:supervision")
                tg.create_task(self._serve_timers(), name="engine:timers")
                tg.create_task(self._serve_effects(), name="engine:effects")
                tg.create_task(self._serve_records(), name="engine:records")
                tg.create_task(self._serve_retries(), name="engine:retries")
                tg.create_task(self._serve_status(), name="engine:status")
                self.ready.set()
        finally:
            for line in self.lines.values():
                with contextlib.suppress(Exception):
                    await line.stop()

    def reconfigure(self, config: Config) -> None:
        """Apply a reloaded configuration without a restart.

        New and changed queues and agents go to the router (waiting calls keep their
        age, agents their state); engine settings such as dispositions apply to the
        next offer. A queue or agent that disappeared from the file stays until a
        restart (calls may be waiting in it), with a warning in the log.
        """
        now = self.now()
        old_queues = {q.name: q for q in self.config.queues}
        new_queues = {q.name: q for q in config.queues}
        for name in sorted(set(old_queues) - set(new_queues)):
            log.warning("queue %r is no longer configured; it stays until a restart", name)
        for name, queue in new_queues.items():
            if old_queues.get(name) != queue:
                self.route(ri.QueueConfigured(queue=queue))
                self.stats.configure_queue(queue)
        old_agents = {a.id: a for a in self.config.agents}
        for agent in config.agents:
            if old_agents.get(agent.id) != agent:
                self.route(ri.AgentConfigured(agent=agent))
                self.stats.set_agent_queues(agent.id, list(agent.queues), now)
        for agent_id in sorted(set(old_agents) - {a.id for a in config.agents}):
            log.warning("agent %r is no longer configured; it stays until a restart", agent_id)
        self._agent_names.update({a.id: a.name for a in config.agents if a.name})
        for queue in config.queues:
            self.scripts.get(queue.script)  # a broken script is logged at once
        self.config = config

    async def follow_config(self, path: str | Path, interval_s: float = 2.0) -> None:
        """Reload the configuration whenever ``path`` changes (run it as a task)."""
        async for config in watch_config(path, interval_s):
            try:
                self.reconfigure(config)
            except CtiError as exc:
                log.error("configuration from %s not applied: %s", path, exc)

    async def flush(self) -> None:
        """Wait until every effect and record decided so far has been carried out."""
        await self._effects.join()
        await self._records.join()

    # --- durability ----------------------------------------------------------------

    async def _recover(self) -> None:
        """Bring back the state the journal holds, before serving anything.

        Replays every input into the router at its journaled time. The actions go to the
        live statistics, and each call record is stored again (the store ignores one it
        has, so a record lost between the router and the store comes back); the others
        were carried out before the crash or are overtaken by what follows. Then engine time
        carries on from the wall clock (never behind the journal), each line adopts the
        calls still on it and the others are routed as hung up, offers still running
        are sent again, and every agent's state is published again (retained).
        """
        journal = self.journal
        assert journal is not None
        loop_time = asyncio.get_running_loop().time()
        floor = journal.last_at if journal.last_at is not None else -float("inf")
        self._time_offset = max(wall_time(), floor) - loop_time
        report = RecoveryReport()
        records: list[CallDetailRecord] = []
        for at, event in journal.replay():
            report.inputs += 1
            try:
                actions = self.router.handle(event, at)
            except RoutingError:
                report.refused += 1  # refused live too: the router's state allowed it not
                continue
            except Exception:
                report.failed += 1
                log_limits.exception(log, "journal: replaying %r failed; going on", event)
                continue
            for action in actions:
                self.stats.observe(action, at)  # live figures come back as they were
                if isinstance(action, RecordCall):
                    records.append(action.cdr)
        report.bad_rows = list(journal.bad_rows)
        self._recovered = True
        self._reconcile_config()
        now, wall = self.now(), wall_time()
        conflicts = self.record_conflicts
        for cdr in records:
            record = replace(cdr, started_wall=wall - (now - cdr.arrived_at))
            if self.recorder is None:
                continue
            try:
                if await self.recorder.record_call(record) is True:
                    report.records_restored += 1
                    await self._add_interaction(record)
            except CtiError as exc:
                self._unstored += 1  # keep the journal that can still tell of it
                log_limits.error(log, "journal: call record %s not stored again: %s",
                                 record.call_id, exc)  # fmt: skip
                if isinstance(exc, StoreError):  # written back when the store can take it
                    self._hold_record(_HeldRecord(record, restored=True), str(exc))
        report.record_conflicts = self.record_conflicts - conflicts
        if journal.stored_lost is not None:
            report.lost_inputs = str(journal.stored_lost)
            log.error("journal %s: a run before lost %s; they are not replayed",
                      journal.path, report.lost_inputs)  # fmt: skip
        await self._adopt_calls(journal, report)
        for agent_id in self.router.agent_ids():
            agent = self.router.agent(agent_id)
            if agent.state is AgentState.LOGGED_OUT and agent.since == 0.0:
                continue  # never logged in: nothing to say
            if (
                agent.state is AgentState.RESERVED
                and agent.call_id is not None
                and agent.deadline is not None
                and agent.deadline > now
            ):
                queue = self.router.call_queue(agent.call_id)
                self._offers[agent_id] = self._offer_message(
                    agent.call_id, agent_id, queue, agent.deadline, now, wall
                )
            elif (
                agent.state in (AgentState.TALKING, AgentState.WRAP_UP)
                and agent.call_id is not None
            ):
                try:
                    queue = self.router.call_queue(agent.call_id)
                    self._current[agent_id] = self._offer_message(
                        agent.call_id, agent_id, queue, now, now, wall
                    )
                except RoutingError:  # wrap-up of a call it handed on, over since
                    pass
            self._resend_agent(agent_id)
        self.recovery = report
        log.info("journal %s: %s", journal.path, report)
        await self._tend_journal()

    async def _adopt_calls(self, journal: Journal, report: RecoveryReport) -> None:
        """Ask each line which of the router's unfinished calls it still has.

        Every line is asked, also one with no call in the journal: it may hold calls the
        engine never heard of (they arrived as it died), which it announces or ends."""
        line_of = journal.lines()
        by_line: dict[str, list[str]] = {name: [] for name in self.lines}
        for call_id in self.router.active_call_ids():
            if call_id in line_of:  # a call without a line (a callback) is not the line's
                by_line.setdefault(line_of[call_id], []).append(call_id)
        for name, call_ids in by_line.items():
            line = self.lines.get(name)
            kept = set(await line.adopt(call_ids)) if line is not None else set()
            for call_id in call_ids:
                # In wrap-up (or a callback not yet dialled) the call has no line leg.
                over = self.router.call_phase(call_id) in (CallPhase.WRAP_UP, CallPhase.SCHEDULED)
                if call_id in kept and over and line is not None:
                    # The leg was to be hung up, but that was lost with the process.
                    with contextlib.suppress(TelephonyError):
                        await line.hang_up(call_id)
                elif call_id in kept:
                    report.adopted += 1
                    self._line_of.restore(call_id, name)
                elif not over:
                    report.dropped += 1
                    self.route(ri.CallerHangsUp(call_id=call_id))

    def _reconcile_config(self) -> None:
        """After a replay, make the router's queues and agents those configured now.

        The journal may hold an older reload's configuration, and the file may have
        changed while the engine was down: the file wins, as in :meth:`reconfigure`.
        """
        for queue in self.config.queues:
            if queue.name not in self.router.queue_names or (
                self.router.queue_config(queue.name) != queue
            ):
                self.route(ri.QueueConfigured(queue=queue))
        for agent in self.config.agents:
            if not self.router.has_agent(agent.id) or (
                sorted(self.router.agent_queues(agent.id)) != sorted(agent.queues)
            ):
                self.route(ri.AgentConfigured(agent=agent))

    async def _tend_journal(self) -> None:
        """Cut the journal if the center is empty; checkpoint its WAL now and then."""
        journal = self.journal
        if journal is None or not self._recovered:
            return
        if (
            journal.has_uncut_rows
            and self._unstored == 0
            and not journal.spooled
            and not self.router.active_call_ids()
            and all(
                self.router.agent(a).state is AgentState.LOGGED_OUT for a in self.router.agent_ids()
            )
        ):
            try:
                removed = journal.cut()
                log.info("journal %s: the center is empty; %d rows cut", journal.path, removed)
                if self.recovery is not None:
                    self.recovery.cut += removed
            except CtiError as exc:
                log_limits.error(log, "journal %s: not cut: %s", journal.path, exc)
        if journal.appended_since_checkpoint >= _CHECKPOINT_EVERY and not journal.spooled:
            try:
                await journal.checkpoint()
            except CtiError as exc:
                log_limits.error(log, "%s", exc)

    async def _add_interaction(self, cdr: CallDetailRecord) -> None:
        """Add an answered call of a known customer to the customer's history."""
        if self.recorder is not None and cdr.customer_id is not None and cdr.outcome == "answered":
            await self.recorder.add_interaction(
                cdr.customer_id,
                Interaction(
                    at=cdr.started_wall,
                    channel="call",
                    disposition=cdr.disposition,
                    agent_id=cdr.agent_id or "",
                    note=cdr.note,
                    call_id=cdr.call_id,
                    script_answers=self._script_answers.pop(cdr.call_id, {}),
                ),
            )

    # --- inputs --------------------------------------------------------------------

    async def _serve_line(self, line: TelephonyAdapter) -> None:
        async for event in line.events():
            try:
                await self.handle_line_event(event)
            except CtiError as exc:
                log_limits.warning(log, "line %s: %s", line.name, exc, key=line.name)
            except Exception:
                log_limits.exception(log, "line %s: unexpected error on %r; the line goes on",
                                     line.name, event, key=line.name)  # fmt: skip

    async def handle_line_event(self, event: LineEvent) -> None:
        if isinstance(event, CallArrived):
            caller = await self.identify(event.ani)
            queue = self._queue_for(event)
            self._line_of[event.call_id] = event.line
            self.route(ri.CallArrives(call_id=event.call_id, queue=queue, caller=caller))
        elif isinstance(event, CallerHungUp):
            self.route(ri.CallerHangsUp(call_id=event.call_id))
        elif isinstance(event, CallbackRequested):
            caller = self.router.call_caller(event.call_id)
            number = event.number or caller.e164 or ""  # a withheld number cannot be called
            self.route(ri.CallerAsksCallback(call_id=event.call_id, number=number))
        elif isinstance(event, DtmfReceived):
            agent_id = self._agent_talking_on(event.call_id)
            if agent_id is None:  # still queued, ringing an agent, or over: no one to tell
                log.debug("call %s: DTMF %r with no agent on the call", event.call_id, event.key)
                return
            self._send(topics.agent_events(agent_id), event)  # in order with CallConnected

    def _agent_talking_on(self, call_id: str) -> str | None:
        """The agent talking on ``call_id``, if any."""
        try:
            if self.router.call_phase(call_id) is not CallPhase.TALKING:
                return None
        except RoutingError:
            return None  # not (or no longer) a call of the engine's
        return self.router.call_agent(call_id)

    def _queue_for(self, event: CallArrived) -> str:
        """The dialled number's queue ([engine.dnis_queues]), else the line's own
        (``queue`` of its [[lines]] table), else the default queue."""
        engine = self.config.engine
        queue = engine.dnis_queues.get(event.dnis)
        if queue is not None:
            return queue
        for line in self.config.lines:
            if line.name == event.line and line.queue:
                return line.queue
        return engine.default_queue

    async def route_answered_outbound(
        self, call_id: str, line: str, number: str, queue: str, *, script: str = ""
    ) -> None:
        """A call the dialer placed on ``line`` was answered by a person: look the callee
        up and route the call to ``queue`` like an arrival (the dialer's line has it
        answered already; see :mod:`cti.engine.dialer`). ``script``: the campaign's script,
        sent with the offer instead of the queue's (if it names none, the queue's)."""
        caller = await self.identify(number)
        self._line_of[call_id] = line
        if script:
            self._call_scripts[call_id] = script
        self.route(
            ri.CallArrives(call_id=call_id, queue=queue, caller=caller, direction="outbound")
        )

    async def identify(self, ani: str) -> CallerInfo:
        """Classify the number the line gave and look the customer up (one indexed query).

        Every customer holding the number comes back in ``matches``, most valuable first;
        the first sets the call's priority (a family phone: the agent chooses on the
        screen-pop). With a directory that gives cards, the pop also gets the open
        service items and the value explanation.
        """
        kind, e164 = classify(ani, self.config.engine.default_region)
        if e164 is None:
            return CallerInfo(ani=ani, kind=kind)
        try:
            matches = sorted(
                await self.directory.find_by_number(e164), key=lambda c: (-c.value, c.id)
            )
            if not matches:
                return CallerInfo(ani=ani, e164=e164, kind=CallerKind.UNKNOWN)
            customer = matches[0]
            if isinstance(self.directory, CustomerCards):
                card = await self.directory.customer_card(customer.id)
            else:
                card = CustomerCard(history=await self.directory.recent_interactions(customer.id))
        except StoreError as exc:
            # The call matters more than the card: route it as an unknown caller.
            log_limits.error(log, "customer lookup for %s failed, routing as unknown: %s",
                             e164, exc)  # fmt: skip
            return CallerInfo(ani=ani, e164=e164, kind=CallerKind.UNKNOWN)
        inputs = card.value_inputs
        return CallerInfo(
            ani=ani,
            e164=e164,
            kind=CallerKind.KNOWN,
            customer=customer,
            history=card.history,
            matches=tuple(matches),
            service_items=card.service_items,
            value_explanation=None if inputs is None else score(inputs, self.config.customers),
        )

    async def _serve_commands(self, commands: Subscription) -> None:
        async for topic, message in commands:
            try:
                await self.handle_command(topic, message)
            except Exception:
                log_limits.exception(log, "%s: unexpected error on %r; the engine goes on",
                                     topic, message)  # fmt: skip

    async def handle_command(self, topic: str, message: Message) -> None:
        """Apply one command from ``topic``, once per ``command_id``, and answer it."""
        # The answer goes to the topic's owner (the broker let only them publish there),
        # never to an id the sender wrote in the payload.
        reply = topics.reply_topic(topic)
        if is_command(message):
            sender, claimed = message.agent_id, topics.agent_of(topic)
        elif is_supervisor_command(message):
            sender, claimed = message.supervisor_id, topics.supervisor_of(topic)
        else:
            log_limits.warning(log, "%s: %s is not a command; ignored", topic, message.type)
            return
        if reply is None:
            log_limits.error(
                log, "%s: a command on a topic that is not a command topic; ignored", topic
            )
            return
        result = self._commands.get(message.command_id)
        if result is None:
            if claimed != sender:
                result = CommandResult(
                    command_id=message.command_id,
                    ok=False,
                    error=f"command from {sender!r} arrived on the topic of {claimed!r}",
                )
            else:
                result = await self._execute(message)
            self._commands.remember(message.command_id, result)
        self._send(reply, result)

    async def _execute(self, message: AnyCommand | SupervisorCommand) -> CommandResult:
        try:
            match message:
                case Login(agent_id=a):
                    self.route(ri.AgentLogsIn(agent_id=a))
                case Logout(agent_id=a):
                    self.route(ri.AgentLogsOut(agent_id=a))
                case SetReady(agent_id=a):
                    self.route(ri.AgentGoesReady(agent_id=a))
                case (
                    SetNotReady(agent_id=a, reason=reason)
                    | ForceNotReady(agent_id=a, reason=reason)
                ):
                    self.route(ri.AgentGoesNotReady(agent_id=a, reason=reason))
                case AcceptOffer(agent_id=a, call_id=call_id):
                    self.route(ri.AgentAccepts(agent_id=a, call_id=call_id))
                case RejectOffer(agent_id=a, call_id=call_id):
                    self.route(ri.AgentRejects(agent_id=a, call_id=call_id))
                case HangUp(agent_id=a, call_id=call_id):
                    self.route(ri.AgentHangsUp(agent_id=a, call_id=call_id))
                case CompleteWrapUp(agent_id=a, call_id=call_id, disposition=d, note=note):
                    await self._keep_script_run(message)
                    self.route(
                        ri.AgentFinishesWrapUp(
                            agent_id=a, call_id=call_id, disposition=d, note=note
                        )
                    )
                case (
                    HoldCall()
                    | ResumeCall()
                    | MuteCall()
                    | TransferCall()
                    | ConsultCall()
                    | CompleteConsult()
                    | CancelConsult()
                    | ConferenceCall()
                ):
                    await self._call_control(message)
                case DialNumber(agent_id=a, number=number, queue=queue):
                    await self._dial_for(a, number, queue, message.command_id)
                case SaveScriptRun():
                    await self._keep_partial_run(message)
                case ExtendWrapUp(agent_id=a, call_id=call_id, seconds=seconds):
                    self.route(ri.AgentExtendsWrapUp(agent_id=a, call_id=call_id, seconds=seconds))
                case ScheduleCallback(
                    number=number, local_time=at, time_zone=tz, queue=queue, for_agent=fa
                ):
                    await self.schedule_callback(number, at, tz, queue, for_agent=fa)
                case RequestSnapshot(agent_id=a):
                    self._resend_agent(a)
                case (
                    ChooseCustomer()
                    | CreateCustomer()
                    | SearchCustomers()
                    | ShowCustomer()
                    | AddServiceItem()
                    | EscalateServiceItem()
                ):
                    await self._customer_command(message)
                case ForceLogout(agent_id=a):
                    self.route(ri.AgentLogsOut(agent_id=a))
                case ChangeCallPriority(call_id=call_id, priority=priority):
                    self.route(ri.CallPriorityChanged(call_id=call_id, priority=priority))
                case MoveWaitingCall(call_id=call_id, queue=queue):
                    self.route(ri.CallMoved(call_id=call_id, queue=queue))
                case SetCampaignState() | SetCampaignPacing():
                    if self.campaign_control is None:
                        raise CtiError(
                            "no dialer runs in this engine: campaigns run under `cti serve`"
                        )
                    await self.campaign_control(message)
        except CtiError as exc:
            return CommandResult(command_id=message.command_id, ok=False, error=str(exc))
        return CommandResult(command_id=message.command_id, ok=True)

    async def schedule_callback(
        self,
        number: str,
        local_time: str = "",
        time_zone: str = "",
        queue: str = "",
        *,
        for_agent: str = "",
        max_days_ahead: float | None = None,
        max_s_behind: float | None = None,
    ) -> str:
        """Schedule a callback to ``number`` at ``local_time`` in ``time_zone`` (default:
        the customer's, else the engine's); empty ``local_time`` means as soon as possible.

        The caller is looked up like an inbound call, so the callback ranks by the
        customer's value. ``for_agent``: reserved for that agent (in their first queue if
        they do not serve ``queue``; see ScheduleCallback). Returns the callback's call id.
        ``max_days_ahead`` (default ``[engine] callback_max_days_ahead``) and
        ``max_s_behind`` (default: any past time means now) bound the time.
        Raises :class:`CtiError` naming the bad number, time, zone or agent.
        """
        caller = await self.identify(number)
        if caller.e164 is None:
            raise CtiError(f"cannot call back {number!r}: not a phone number")
        target = queue or self.config.engine.default_queue
        if for_agent and self.router.has_agent(for_agent):
            theirs = self.router.agent_queues(for_agent)
            target = target if target in theirs else theirs[0]
        now = self.now()
        due = now
        if local_time:
            zone = time_zone or (caller.customer.time_zone if caller.customer else "")
            due = _local_to_epoch(local_time, zone or self.config.engine.time_zone)
        days = max_days_ahead
        if days is None:
            days = self.config.engine.callback_max_days_ahead
        if due > now + days * 86400.0:
            # A far date would keep the centre from ever emptying (the journal never cut).
            raise CtiError(
                f"callback time {local_time!r} is more than {days:g} days ahead; "
                "expected a time within that horizon"
            )
        if max_s_behind is not None and due < now - max_s_behind:
            raise CtiError(f"callback time {local_time!r} is in the past; expected a later time")
        # Unguessable: an id is all a web client needs to ask about its callback.
        call_id = f"cb-{secrets.token_urlsafe(16)}"
        self.route(
            ri.CallbackScheduled(
                call_id=call_id,
                queue=target,
                caller=caller,
                due=due,
                number=caller.e164,
                for_agent=for_agent,
            )
        )
        return call_id

    # --- the desk's customer commands ----------------------------------------------

    async def _customer_command(
        self,
        command: ChooseCustomer
        | CreateCustomer
        | SearchCustomers
        | ShowCustomer
        | AddServiceItem
        | EscalateServiceItem,
    ) -> None:
        """Run one customer command on the customer base and send its answer (search
        results or the customer's details) to the agent, ahead of the CommandResult.
        Raises :class:`CtiError` saying what was wrong."""
        base = self.customers
        if base is None:
            raise CtiError("this engine has no customer base (no store): customer commands")
        agent, call_id = command.agent_id, ""
        wall = wall_time()
        engine = self.config.engine
        match command:
            case SearchCustomers(query=query, limit=limit):
                if not query.strip():
                    raise CtiError("search: empty; type a number, a name, #id or an e-mail")
                if not self.config.access.may_search(agent):
                    role = self.config.access.role_of(agent)
                    await self._audit(agent, "search", None, f"{query!r}", allowed=False)
                    raise CtiError(
                        f"search: your role ({role}) may not search the customer base; the"
                        " customers of your calls are on your card (c: choose, i: details)"
                    )
                found = await base.search(
                    query, default_region=engine.default_region, limit=limit + 1
                )
                shown = found[:limit]
                await self._audit(agent, "search", None, f"{query!r} found {[c.id for c in shown]}")
                self._send(
                    topics.agent_events(agent),
                    fit_search_results(
                        CustomerSearchResults(
                            agent_id=agent,
                            command_id=command.command_id,
                            query=query,
                            customers=tuple(shown),
                            more=len(found) > limit,
                        )
                    ),
                )
                return
            case ShowCustomer(customer_id=customer_id, history=history):
                await self._may_read(agent, "show", customer_id)
                customer = await self._customer(customer_id)
                await self._audit(agent, "show", customer_id)
                await self._send_details(command, customer, history=history)
                return
            case ChooseCustomer(call_id=call_id, customer_id=customer_id):
                self._check_on_call(agent, call_id)
                await self._may_read(agent, "choose", customer_id)
                customer = await self._customer(customer_id)
                await self._audit(agent, "choose", customer_id, f"for call {call_id}")
            case CreateCustomer(call_id=call_id):
                if call_id:
                    self._check_on_call(agent, call_id)
                customer = await base.create_customer(
                    new_customer(
                        name=command.name,
                        number=command.number,
                        email=command.email,
                        company=command.company,
                        language=command.language,
                        time_zone=command.time_zone,
                        default_region=engine.default_region,
                        default_time_zone=engine.time_zone,
                    )
                )
                log.info("agent %s created customer %d", agent, customer.id)
                await self._audit(agent, "create", customer.id, f"for call {call_id}")
            case AddServiceItem(customer_id=customer_id, title=title):
                await self._may_read(agent, "item", customer_id)
                customer = await self._customer(customer_id)
                if not title.strip():
                    raise CtiError("title: empty; say in a few words what is to be done")
                if (problem := text_problem(title)) is not None:
                    raise CtiError(f"title: {problem}")
                due = None
                if command.due:
                    local = command.due if "T" in command.due else f"{command.due}T23:59"
                    try:
                        datetime.fromisoformat(local)
                    except ValueError:
                        raise CtiError(
                            f"due: {command.due!r} is not a date or time such as 2026-11-23"
                            " or 2026-11-23T18:00"
                        ) from None
                    due = _local_to_epoch(local, command.time_zone or customer.time_zone)
                detail = safe_text(command.detail)
                if command.call_id:
                    detail = f"{detail}\n(call {command.call_id})".strip()
                await base.open_service_item(
                    customer.id,
                    " ".join(title.split()),
                    now=wall,
                    detail=detail,
                    priority=command.priority,
                    due_at=due,
                    assignee=agent,
                )
                await self._audit(agent, "item", customer.id, " ".join(title.split()))
            case EscalateServiceItem(item_id=item_id, to=to):
                if not to.strip():
                    raise CtiError("to: empty; name the supervisor, team or agent to escalate to")
                if (problem := text_problem(to)) is not None:
                    raise CtiError(f"to: {problem}")
                item = await base.service_item(item_id)
                await self._may_read(agent, "escalate", item.customer_id)
                item = await base.escalate_service_item(item_id, to.strip(), now=wall)
                customer = await self._customer(item.customer_id)
                await self._audit(agent, "escalate", customer.id, f"item {item_id} to {to.strip()}")
        if call_id:
            self._call_customer[call_id] = customer
        await self._send_details(command, customer, call_id=call_id)

    def _check_on_call(self, agent_id: str, call_id: str) -> None:
        """The agent is on ``call_id`` (offered, talking or wrapping up) or CtiError."""
        if not self.router.has_agent(agent_id):
            raise CtiError(f"agent {agent_id!r} is not configured")
        agent = self.router.agent(agent_id)
        if agent.call_id != call_id or agent.state not in (
            AgentState.RESERVED,
            AgentState.TALKING,
            AgentState.WRAP_UP,
        ):
            raise CtiError(f"call {call_id!r} is not yours now: its customer cannot be set")

    async def _may_read(self, agent_id: str, action: str, customer_id: int) -> None:
        """CtiError (kept in the audit trail) unless the agent may read the customer: one
        of their current or recent calls', or any with a search right (config [access])."""
        access = self.config.access
        if access.may_search(agent_id) or customer_id in await self._customers_of(agent_id):
            return
        reason = (
            f"customer #{customer_id} is not one of your calls' customers, and your role"
            f" ({access.role_of(agent_id)}) may not read others; ask a supervisor"
        )
        await self._audit(agent_id, action, customer_id, reason, allowed=False)
        raise CtiError(reason)

    async def _customers_of(self, agent_id: str) -> set[int]:
        """The customers of the agent's call in hand (its caller, the customers holding
        its number, the one chosen) and of their recent calls."""
        assert self.customers is not None
        ids: set[int] = set()
        for book in (self._offers, self._current):
            offer = book.get(agent_id)
            if offer is None:
                continue
            pop = offer.pop
            ids.update(c.id for c in pop.matches)
            chosen = self._call_customer.get(pop.call_id, pop.customer)
            ids.update(c.id for c in (pop.customer, chosen) if c is not None)
        access = self.config.access
        since = wall_time() - access.recent_hours * 3600.0
        return ids | await self.customers.recent_customers_of(
            agent_id, since=since, limit=access.recent_calls
        )

    async def _audit(
        self,
        agent_id: str,
        action: str,
        customer_id: int | None,
        detail: str = "",
        *,
        allowed: bool = True,
    ) -> None:
        """Keep a look, search or change in the customer audit trail (a store failure is
        logged: the desk keeps working)."""
        assert self.customers is not None
        entry = AuditEntry(wall_time(), agent_id, action, customer_id, allowed, detail)
        try:
            await self.customers.audit(entry)
        except StoreError as exc:
            log_limits.error(log, "customer audit entry not kept (%s): %s", entry, exc)

    async def _customer(self, customer_id: int) -> Customer:
        assert self.customers is not None
        customer = await self.customers.get(customer_id)
        if customer is None:
            raise CtiError(f"there is no customer #{customer_id}")
        return customer

    async def _send_details(
        self,
        command: AnyCommand,
        customer: Customer,
        *,
        call_id: str = "",
        history: int = 5,
    ) -> None:
        """Send the customer's card; with ``call_id``, also make it that call's card (so
        a console that asks for a snapshot gets it back)."""
        assert self.customers is not None
        card = await self.customers.card(customer.id, history_limit=history)
        inputs = card.value_inputs
        details = fit_card(
            CustomerDetails(
                agent_id=command.agent_id,
                command_id=command.command_id,
                call_id=call_id,
                customer=customer,
                history=card.history,
                service_items=card.service_items,
                value_explanation=None if inputs is None else score(inputs, self.config.customers),
            )
        )
        if call_id:
            for book in (self._offers, self._current):
                offer = book.get(command.agent_id)
                if offer is not None and offer.pop.call_id == call_id:
                    pop = offer.pop.model_copy(
                        update={
                            "customer": customer,
                            "caller_kind": CallerKind.KNOWN,
                            "history": details.history,
                            "service_items": details.service_items,
                            "value_explanation": details.value_explanation,
                            "history_left_out": details.history_left_out,
                            "items_left_out": details.items_left_out,
                        }
                    )
                    book[command.agent_id] = fit_card(offer.model_copy(update={"pop": pop}))
        self._send(topics.agent_events(command.agent_id), details)

    async def _serve_timers(self) -> None:
        while True:
            self._timer_deadline = deadline = self.router.next_deadline()
            delay = None if deadline is None else max(0.0, deadline - self.now())
            pause = self._timer_retry.delay(self.now())  # after a failure: never a busy loop
            if pause is not None:
                delay = max(delay or 0.0, pause)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            self._wake.clear()
            due = self.router.next_deadline()
            if due is not None and due <= self.now():
                try:
                    self.route(ri.TimePasses())
                    self._timer_retry.succeeded()
                except Exception:
                    self._timer_retry.failed(self.now())
                    log_limits.exception(log, "router timers failed; the engine goes on")

    def route(self, event: ri.AnyInput) -> None:
        """Hand one input to the router now and queue its actions, in order.

        Every change of routing state passes through here, so this is where it is
        journaled: written (and committed) before the router sees it. Every input is
        journaled, also one the router then refuses: a refusal changes nothing, and a
        replay refuses it again, so the replayed router matches the live one exactly.
        Raises :class:`~cti.errors.RoutingError` (nothing changed) if the router's state
        does not allow the input, and :class:`~cti.errors.StoreError` (nothing changed)
        if the journal cannot be written: an input that is not journaled is not applied.
        """
        now = self.now()
        if self.journal is not None:
            if not self._recovered:
                raise CtiError("the engine takes inputs once run() has replayed its journal")
            self.journal.append(now, event)
            if self.journal.spooled and not self._journal_retry.failing:
                self._journal_retry.failed(now)  # routing goes on; written back later
                self._retry_now.set()
                self._check_health()
            elif self.journal.lost.count and "journal_lost" not in self._alerts:
                self._check_health()
        actions = self.router.handle(event, now)
        for action in actions:
            self.stats.observe(action, now)
        self._unstored += sum(isinstance(action, RecordCall) for action in actions)
        self._apply(actions)

    def now(self) -> float:
        """Engine time: the router's ``now``, monotonic seconds that read as epoch seconds.

        The loop's monotonic clock plus an offset fixed on first use so that engine time
        then equals :func:`~cti.clock.wall_time`. So it never jumps with the wall clock
        while the process lives, and across a restart it carries on where the wall clock
        is: a caller who waited 30 s before a crash and 10 s of downtime has waited 40 s.
        """
        loop_time = asyncio.get_running_loop().time()
        if self._time_offset is None:
            self._time_offset = wall_time() - loop_time
        return loop_time + self._time_offset

    # --- outputs -------------------------------------------------------------------

    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            self._effects.put_nowait(action)
        if self.router.next_deadline() != self._timer_deadline:
            self._wake.set()  # the timer task sleeps until another moment: wake it

    def _send(self, topic: str, message: Message, *, retain: bool = False) -> None:
        """Publish after every effect decided so far (keeps each agent's events in order)."""
        self._effects.put_nowait(_Publish(topic, message, retain))

    async def _serve_effects(self) -> None:
        while True:
            action = await self._effects.get()
            try:
                await self._carry_out(action)
            except CtiError as exc:
                log_limits.warning(log, "%s", exc)
            except Exception:
                log_limits.exception(log, "could not carry out %r; the engine goes on", action)
            finally:
                self._effects.task_done()

    async def _carry_out(self, action: Action | _Publish) -> None:
        loop_now = self.now()
        wall = wall_time()
        match action:
            case _Publish(topic=topic, message=message, retain=retain):
                await self.bus.publish(topic, message, retain=retain)
            case OfferCall(call_id=call_id, agent_id=agent_id, queue=queue, deadline=deadline):
                offer = self._offer_message(call_id, agent_id, queue, deadline, loop_now, wall)
                if action.consult_from:
                    offer = offer.model_copy(update={"consult_from": action.consult_from})
                self._offers[agent_id] = offer
                await self.bus.publish(topics.agent_events(agent_id), offer)
            case WithdrawOffer(call_id=call_id, agent_id=agent_id, reason=reason):
                self._offers.pop(agent_id, None)
                await self.bus.publish(
                    topics.agent_events(agent_id),
                    OfferWithdrawn(agent_id=agent_id, call_id=call_id, reason=reason),
                )
            case ConnectCall(call_id=call_id, agent_id=agent_id, dial=dial, answered=answered):
                offered = self._offers.pop(agent_id, None)
                if offered is not None:
                    self._current[agent_id] = offered
                if answered:  # a transferred caller: connected already, maybe held
                    if call_id in self._held:
                        self._held.discard(call_id)
                        await self._line_for(call_id).resume(call_id)
                elif dial is None:
                    await self._line_for(call_id).answer(call_id)
                else:
                    line = self._dialling_line(call_id)
                    self._line_of[call_id] = line.name
                    await line.dial(dial, call_id=call_id)
                await self.bus.publish(
                    topics.agent_events(agent_id), CallConnected(agent_id=agent_id, call_id=call_id)
                )
            case DisconnectCall(call_id=call_id, agent_id=agent_id, by=by):
                await self.bus.publish(
                    topics.agent_events(agent_id),
                    CallEnded(agent_id=agent_id, call_id=call_id, by=by),
                )
                if by == "agent":
                    await self._line_for(call_id).hang_up(call_id)
            case JoinCall(call_id=call_id, agent_id=agent_id):
                offered = self._offers.pop(agent_id, None)
                if offered is not None:
                    self._current[agent_id] = offered
                await self.bus.publish(
                    topics.agent_events(agent_id), CallConnected(agent_id=agent_id, call_id=call_id)
                )
            case ConsultChanged():
                await self.bus.publish(
                    topics.agent_events(action.agent_id), self._control_message(action)
                )
            case RecordLeg():
                await self._record_leg(action, wall)
            case AgentStateSet():
                await self.bus.publish(
                    topics.agent_state(action.agent_id),
                    self._state_message(action.agent_id, loop_now, wall),
                    retain=True,
                )
            case ReleaseLine(call_id=call_id):
                await self._line_for(call_id).hang_up(call_id)
            case ExitCall(call_id=call_id, action=exit_action, reason=reason):
                log.info("call %s leaves for %s (%s)", call_id, exit_action.value, reason)
                await self._line_for(call_id).hang_up(call_id)
            case MoveCall(call_id=call_id, from_queue=source, to_queue=target, reason=reason):
                log.info("call %s moved from %s to %s (%s)", call_id, source, target, reason)
            case RecordCall(cdr=cdr):
                record = replace(cdr, started_wall=wall - (loop_now - cdr.arrived_at))
                self._line_of.pop(record.call_id, None)
                self._held.discard(record.call_id)
                self._muted.discard(record.call_id)
                self._call_scripts.pop(record.call_id, None)
                chosen = self._call_customer.pop(record.call_id, None)
                if chosen is not None:  # the agent said who the caller is
                    record.customer_id = chosen.id
                current = self._current.get(record.agent_id or "")
                if current is not None and current.pop.call_id == record.call_id:
                    del self._current[current.agent_id]
                for listener in self.record_listeners:
                    listener(record)
                self._records.put_nowait(record)

    async def _keep_script_run(self, wrap_up: CompleteWrapUp) -> None:
        """Store what the call's script recorded, before the wrap-up is applied.

        Only for the call the agent is wrapping up; if the store fails, the wrap-up is
        refused (:class:`StoreError`) so the agent can send it again: nothing is lost.
        The do-not-call and e-mail actions go to the outbox. An agent who handed the
        call on keeps its run under ``<call id>/<agent id>`` (the call's own id is for
        the agent who finishes it).
        """
        if not wrap_up.script or not self.router.has_agent(wrap_up.agent_id):
            return
        agent = self.router.agent(wrap_up.agent_id)
        if agent.state is not AgentState.WRAP_UP or agent.call_id != wrap_up.call_id:
            return  # the router refuses the wrap-up itself, with its reason
        self._partial_runs.pop(wrap_up.call_id, None)  # the wrap-up's run replaces it
        leg = self._leg_of(wrap_up.agent_id, wrap_up.call_id)
        if not leg:
            self._script_answers[wrap_up.call_id] = dict(wrap_up.answers)
        try:
            await self._store_run(wrap_up, outbox=True, leg=leg)
        except StoreError as exc:
            self._script_answers.pop(wrap_up.call_id, None)
            raise StoreError(
                f"the script's answers were not saved, send the wrap-up again: {exc}"
            ) from exc

    async def _keep_partial_run(self, save: SaveScriptRun) -> None:
        """Store the script run so far (replacing the last one saved): the answers are
        kept even if the wrap-up timer ends the call first. Its actions go to the outbox
        only when the call's record is written without a wrap-up of its own."""
        agent = self.router.agent(save.agent_id)
        if agent.call_id != save.call_id or agent.state not in (
            AgentState.TALKING,
            AgentState.WRAP_UP,
        ):
            raise CtiError(f"agent {save.agent_id!r} is not on call {save.call_id!r}")
        leg = self._leg_of(save.agent_id, save.call_id)
        if not leg:
            self._partial_runs[save.call_id] = save
            self._partial_runs.move_to_end(save.call_id)
            while len(self._partial_runs) > _COMMAND_MEMORY:
                self._partial_runs.popitem(last=False)
            self._script_answers[save.call_id] = dict(save.answers)
        await self._store_run(save, outbox=False, leg=leg)

    def _leg_of(self, agent_id: str, call_id: str) -> bool:
        """Whether ``agent_id`` handed ``call_id`` on (its run is its part only)."""
        try:
            return self.router.call_agent(call_id) != agent_id
        except RoutingError:
            return True  # over already: only an agent who handed it on is still on it

    async def _store_run(
        self,
        source: CompleteWrapUp | SaveScriptRun,
        *,
        outbox: bool,
        leg: bool = False,
        customer_id: int | None = None,
    ) -> None:
        """Keep a script run (``leg``: under ``<call id>/<agent id>``); ``customer_id``
        when the call is over and the router no longer knows its caller."""
        if not isinstance(self.recorder, ScriptRunRecorder):
            return
        call_id = source.call_id
        try:
            caller: Customer | None = self.router.call_caller(call_id).customer
        except RoutingError:
            caller = None
        customer = self._call_customer.get(call_id, caller)
        customer_id = customer.id if customer is not None else customer_id
        wall = wall_time()
        run = ScriptRun(
            call_id=f"{call_id}/{source.agent_id}" if leg else call_id,
            agent_id=source.agent_id,
            customer_id=customer_id,
            script=source.script,
            version=source.script_version,
            sha256=source.script_sha256,
            answers=dict(source.answers),
            path=source.script_path,
            actions=source.script_actions,
            recorded_wall=wall,
        )
        items = [
            OutboxItem(
                call_id=run.call_id,
                customer_id=customer_id,
                action=action.action,
                args=action.args,
                created_wall=wall,
            )
            for action in source.script_actions
            if outbox and action.action in OUTBOX_ACTIONS
        ]
        await self.recorder.record_script_run(run, items)

    def _call_script(self, queue: str, call_id: str = "") -> CallScript | None:
        """The call's script as sent with an offer (its campaign's, else its queue's), or
        None (none, or it cannot be used)."""
        try:
            ref = self._call_scripts.get(call_id) or self.router.queue_config(queue).script
            loaded = self.scripts.get(ref)
        except Exception:  # a script never stops an offer
            log_limits.exception(log, "script of call %s (queue %r) not loaded; it goes without",
                                 call_id, queue, key=queue)  # fmt: skip
            return None
        if loaded is None:
            return None
        return CallScript(
            name=loaded.name,
            version=loaded.version,
            sha256=loaded.sha256,
            file=loaded.file,
            text=loaded.text,
        )

    def _offer_message(
        self, call_id: str, agent_id: str, queue: str, deadline: float, now: float, wall: float
    ) -> CallOffered:
        caller = self.router.call_caller(call_id)
        waited = now - self.router.call_arrived_at(call_id)
        pop = ScreenPop(
            call_id=call_id,
            queue=queue,
            ani=caller.ani,
            e164=caller.e164,
            caller_kind=caller.kind,
            customer=caller.customer,
            history=caller.history,
            waited_s=waited,
            priority_reason=explain(self.router.queue_config(queue), caller.value, waited),
            matches=caller.matches,
            service_items=caller.service_items,
            value_explanation=caller.value_explanation,
            script=self._call_script(queue, call_id),
            line=self._line_features(call_id),
        )
        offer = CallOffered(
            agent_id=agent_id,
            pop=pop,
            timeout_s=deadline - now,
            deadline_wall=wall + (deadline - now),
            dispositions=self.config.engine.dispositions,
            agent_name=self._agent_names.get(agent_id, ""),
        )
        return fit_card(offer)  # the card cut to one message, else the bus would drop it

    def _state_message(self, agent_id: str, now: float, wall: float) -> AgentStateChanged:
        a = self.router.agent(agent_id)
        deadline_wall = None if a.deadline is None else wall + (a.deadline - now)
        return AgentStateChanged(
            agent_id=agent_id,
            state=a.state,
            reason=a.reason,
            since_wall=wall - (now - a.since),
            call_id=a.call_id,
            wrap_up_deadline_wall=deadline_wall if a.state.value == "wrap_up" else None,
            calls_handled=a.calls_handled,
            not_ready_reasons=self.config.engine.not_ready_reasons,
        )

    def _resend_agent(self, agent_id: str) -> None:
        now = self.now()
        wall = wall_time()
        self._send(
            topics.agent_state(agent_id), self._state_message(agent_id, now, wall), retain=True
        )
        offer = self._offers.get(agent_id)
        if offer is not None:
            self._send(topics.agent_events(agent_id), offer)
        current = self._current.get(agent_id)
        if current is not None and self.router.agent(agent_id).call_id == current.pop.call_id:
            self._send(
                topics.agent_events(agent_id),
                CurrentCall(
                    agent_id=agent_id,
                    call_id=current.pop.call_id,
                    pop=current.pop,
                    dispositions=current.dispositions,
                    agent_name=current.agent_name,
                ),
            )
            call_id = current.pop.call_id
            try:
                consult, state = self.router.call_consult(call_id)
            except RoutingError:  # a call this agent handed on, over since
                consult, state = None, ""
            if call_id in self._held or call_id in self._muted or consult is not None:
                self._send(
                    topics.agent_events(agent_id),
                    self._control_message(ConsultChanged(call_id, agent_id, consult or "", state)),
                )

    # --- call control (hold, mute, transfers, consultations, manual dial) ----------

    def _line_features(self, call_id: str) -> LineFeatures | None:
        line = self.lines.get(self._line_of.get(call_id, ""))
        if line is None:
            return None
        caps = line.capabilities
        return LineFeatures(
            hold=caps.can_hold,
            mute=caps.can_mute,
            conference=caps.can_conference and caps.can_hold,
            dial=any(other.capabilities.can_dial for other in self.lines.values()),
        )

    def _control_message(self, change: ConsultChanged) -> CallControl:
        return CallControl(
            agent_id=change.agent_id,
            call_id=change.call_id,
            held=change.call_id in self._held,
            muted=change.call_id in self._muted,
            consult_agent=change.target if change.state else "",
            consult_state=change.state,
            note=change.note,
        )

    async def _call_control(
        self,
        command: HoldCall
        | ResumeCall
        | MuteCall
        | TransferCall
        | ConsultCall
        | CompleteConsult
        | CancelConsult
        | ConferenceCall,
    ) -> None:
        """Carry out one call-control command on the line and in the router.

        The agent must be talking on the call (its owner, not an agent consulted). The
        line acts first where it can refuse (hold, mute, conference: a
        :class:`TelephonyError` refuses the command, nothing changed); the router
        next, and if it refuses, the line is put back as it was.
        """
        a, call_id = command.agent_id, command.call_id
        if self._agent_talking_on(call_id) != a:
            raise CtiError(f"agent {a!r} is not talking on call {call_id!r}")
        line = self._line_for(call_id)
        consult, state = self.router.call_consult(call_id)
        match command:
            case HoldCall() | ResumeCall():
                held = isinstance(command, HoldCall)
                if consult is not None and not held:
                    raise CtiError(f"call {call_id!r}: end the consultation to take it off hold")
                await (line.hold if held else line.resume)(call_id)
                (self._held.add if held else self._held.discard)(call_id)
            case MuteCall(muted=muted):
                await line.mute(call_id, muted)
                (self._muted.add if muted else self._muted.discard)(call_id)
            case TransferCall(queue=queue, to_agent=to_agent):
                self.route(ri.AgentTransfers(agent_id=a, call_id=call_id, queue=queue,
                                             to_agent=to_agent))  # fmt: skip
                self._muted.discard(call_id)
                if line.capabilities.can_hold and call_id not in self._held:
                    with contextlib.suppress(TelephonyError):  # music for the wait, if it can
                        await line.hold(call_id)
                        self._held.add(call_id)
                return
            case ConsultCall(to_agent=to_agent):
                await line.hold(call_id)
                try:
                    self.route(ri.AgentConsults(agent_id=a, call_id=call_id, to_agent=to_agent))
                except CtiError:
                    if call_id not in self._held:
                        await line.resume(call_id)
                    raise
                self._held.add(call_id)
                return  # the router's ConsultChanged tells the agent
            case ConferenceCall():
                if state != "talking":
                    raise CtiError(f"call {call_id!r}: no agent consulted is talking to join")
                await line.conference(call_id)
                self._held.discard(call_id)
                self.route(ri.AgentConferences(agent_id=a, call_id=call_id))
                return
            case CompleteConsult() | CancelConsult():
                if isinstance(command, CompleteConsult):
                    self.route(ri.AgentCompletesConsult(agent_id=a, call_id=call_id))
                else:
                    self.route(ri.AgentCancelsConsult(agent_id=a, call_id=call_id))
                if call_id in self._held or state == "conference":
                    self._held.discard(call_id)
                    with contextlib.suppress(TelephonyError):  # the caller may have just left
                        await line.resume(call_id)
                return
        self._send(
            topics.agent_events(a),
            self._control_message(ConsultChanged(call_id, a, consult or "", state)),
        )

    async def _dial_for(self, agent_id: str, number: str, queue: str, command_id: str) -> None:
        """Manual dial: the line places the call, then the agent talks on it (its card
        comes as :class:`CurrentCall`). A line that cannot place it refuses the command."""
        agent = self.router.agent(agent_id)
        if agent.state not in (AgentState.READY, AgentState.NOT_READY):
            raise CtiError(
                f"agent {agent_id!r} is {agent.state.value}: dial when Ready or Not Ready"
            )
        caller = await self.identify(number)
        if caller.e164 is None:
            raise CtiError(f"cannot dial {number!r}: not a phone number (e.g. +86 138 0000 0001)")
        call_id = f"dial-{command_id[:16]}"
        line = self._dialling_line(call_id)
        await line.dial(caller.e164, call_id=call_id)
        self._line_of[call_id] = line.name
        try:
            self.route(ri.AgentDials(agent_id=agent_id, call_id=call_id, number=caller.e164,
                                     caller=caller, queue=queue))  # fmt: skip
        except CtiError:
            with contextlib.suppress(TelephonyError):
                await line.hang_up(call_id)
            raise
        now, wall = self.now(), wall_time()
        placed = self._offer_message(call_id, agent_id, self.router.call_queue(call_id), now,
                                     now, wall)  # fmt: skip
        self._current[agent_id] = placed
        events = topics.agent_events(agent_id)
        self._send(events, CurrentCall(agent_id=agent_id, call_id=call_id, pop=placed.pop,
                                       dispositions=placed.dispositions,
                                       agent_name=placed.agent_name))  # fmt: skip
        self._send(events, CallConnected(agent_id=agent_id, call_id=call_id))

    async def _record_leg(self, leg: RecordLeg, wall: float) -> None:
        """An agent who handed a call on finished its wrap-up: its disposition goes in
        the customer's history (the call's record comes when the call ends)."""
        self._current.pop(leg.agent_id, None)
        if self.recorder is None or leg.customer_id is None:
            return
        await self.recorder.add_interaction(
            leg.customer_id,
            Interaction(
                at=wall,
                channel="call",
                disposition=leg.disposition,
                agent_id=leg.agent_id,
                note=leg.note or f"handed on (queue {leg.queue})",
                call_id=leg.call_id,
            ),
        )

    def _dialling_line(self, call_id: str) -> TelephonyAdapter:
        """The line to call back on: the one the call came in on if it can dial."""
        name = self._line_of.get(call_id)
        if name in self.lines and self.lines[name].capabilities.can_dial:
            return self.lines[name]
        for line in self.lines.values():
            if line.capabilities.can_dial:
                return line
        raise CtiError(f"no line can dial out to call back {call_id!r}")

    def _line_for(self, call_id: str) -> TelephonyAdapter:
        name = self._line_of.get(call_id)
        if name is None or name not in self.lines:
            raise CtiError(f"no line carries call {call_id!r}")
        return self.lines[name]

    async def _serve_records(self) -> None:
        while True:
            cdr = await self._records.get()
            try:
                held = _HeldRecord(cdr)
                if self._held_records:  # behind those waiting for the store: in order
                    self._hold_record(held, self._record_error)
                else:
                    error = await self._write_record(held)
                    if error:
                        self._hold_record(held, error)
            finally:
                self._records.task_done()

    async def _write_record(self, held: _HeldRecord) -> str:
        """Store a finished call's record, its script run and its interaction (the steps
        not done yet); '' once done, else why the store refused (to try again later)."""
        cdr = held.cdr
        try:
            if self.recorder is not None:
                if not held.stored:
                    stored = await self.recorder.record_call(cdr)
                    held.stored, held.new = True, held.new or stored is not False
                if not held.restored:
                    partial = self._partial_runs.pop(cdr.call_id, None)
                    if partial is not None:  # no wrap-up of its own: the run saved last
                        held.partial = partial
                    if held.partial is not None:
                        run, customer_id = held.partial, cdr.customer_id
                        await self._store_run(run, outbox=True, customer_id=customer_id)
                        held.partial = None
                if held.new and not held.interaction:
                    await self._add_interaction(cdr)
                held.interaction = True
        except StoreError as exc:
            log_limits.error(log, "call record %s not stored: %s", cdr.call_id, exc)
            return str(exc) or type(exc).__name__
        except CtiError as exc:  # not the store's: it will not go better next time
            log.error("call record %s: %s", cdr.call_id, exc)
        self._unstored -= 1
        self._script_answers.pop(cdr.call_id, None)
        self._call_customer.pop(cdr.call_id, None)
        return ""

    def _hold_record(self, held: _HeldRecord, error: str) -> None:
        """Keep a record the store could not take, to write it back later in order."""
        self._record_error = error
        if len(self._held_records) >= self.max_held_records:
            self.records_lost += 1  # still in the journal: a restart stores it again
            log.error("call record not held (%d in memory already), written here instead: %s",
                      len(self._held_records), held.cdr)  # fmt: skip
        else:
            self._held_records.append(held)
        if not self._record_retry.failing:
            self._record_retry.failed(self.now())
            self._retry_now.set()
        self._check_health()

    def retry_writes(self) -> None:
        """Try the journal and the store again at once (space was freed), not at the
        next backoff."""
        self._record_retry.now_due()
        self._journal_retry.now_due()
        self._retry_now.set()

    async def _serve_retries(self) -> None:
        """Write back, with backoff, what the journal and the store could not take."""
        while True:
            now = self.now()
            waits = [self._record_retry.delay(now), self._journal_retry.delay(now)]
            delay = min((w for w in waits if w is not None), default=None)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._retry_now.wait()
            self._retry_now.clear()
            now = self.now()
            journal = self.journal
            if journal is not None and self._journal_retry.due(now):
                if journal.write_back():
                    self._journal_retry.succeeded()
                else:
                    self._journal_retry.failed(now)
            if self._record_retry.due(now):
                while self._held_records:
                    error = await self._write_record(self._held_records[0])
                    if error:
                        self._record_error = error
                        self._record_retry.failed(self.now())
                        break
                    self._held_records.popleft()
                else:
                    self._record_retry.succeeded()
                    if self._record_error:
                        log.warning("call records: the store takes them again; none held")
                        self._record_error = ""
            self._check_health()

    def _on_record_conflict(self, conflict: RecordConflict) -> None:
        self.record_conflicts += 1
        self._check_health()

    def health(self) -> EngineHealth:
        """The engine's troubles now (what :meth:`_check_health` publishes on change)."""
        alerts = self._alert_texts()
        journal = self.journal
        return EngineHealth(
            ok=not alerts,
            alerts=tuple(alerts.values()),
            journal_held=journal.spooled if journal is not None else 0,
            records_held=len(self._held_records),
            inputs_lost=journal.lost.count if journal is not None else 0,
            records_lost=self.records_lost,
            record_conflicts=self.record_conflicts,
            at_wall=wall_time(),
            since_wall=self._trouble_since if alerts else None,
            kinds=tuple(alerts),
        )

    def _alert_texts(self) -> dict[str, str]:
        alerts: dict[str, str] = {}
        journal = self.journal
        if journal is not None and journal.spooled:
            alerts["journal"] = (
                f"journal {journal.path} not written ({journal.write_error}): routing goes on,"
                f" {journal.spooled} inputs held in memory"
            )
        if journal is not None and journal.lost.count:
            alerts["journal_lost"] = f"journal spool full: {journal.lost} not journaled"
        if self._held_records:
            alerts["records"] = (
                f"call records not stored ({self._record_error}):"
                f" {len(self._held_records)} held in memory"
            )
        if self.records_lost:
            alerts["records_lost"] = (
                f"{self.records_lost} call records not held (memory spool full): in the log"
                " and the journal only"
            )
        if self.record_conflicts:
            alerts["record_conflicts"] = (
                f"{self.record_conflicts} call records had a call id already used:"
                " kept as <call id>.conflict<n>"
            )
        return alerts

    def _check_health(self, *, refresh: bool = False) -> None:
        """Publish the engine's health (retained) and log it when a trouble starts, changes
        kind or ends; with ``refresh`` (each status interval), publish it again while a
        trouble lasts, so the counts shown stay current (not once per call)."""
        kinds = tuple(self._alert_texts())
        if kinds == self._alerts:
            if refresh and kinds:
                self._send(topics.engine_health(), self.health(), retain=True)
            return
        if not kinds or not self._alerts:  # a trouble begins or ends (not a change of kind)
            self._trouble_since = wall_time() if kinds else None
        self._alerts = kinds
        health = self.health()
        if health.ok:
            log.warning("engine health: all written again")
        else:
            log.error("engine health: %s", "; ".join(health.alerts))
        self._send(topics.engine_health(), health, retain=True)

    async def _serve_status(self) -> None:
        interval = self.config.engine.status_interval_s
        while True:
            await self.publish_status()
            await self._tend_journal()
            self._check_health(refresh=True)
            log_limits.flush()  # counts of repeated log lines whose interval is over
            await asyncio.sleep(interval)

    async def publish_status(self) -> None:
        """Publish every queue's live figures and waiting calls (both retained)."""
        now = self.now()
        wall = wall_time()
        for name in self.router.queue_names:
            snap = self.router.snapshot(name, now)
            f = self.stats.snapshot(name, now)
            states = self.stats.agents_by_state(name, now)
            await self.bus.publish(
                topics.queue_status(name),
                QueueStatus(
                    queue=name,
                    waiting=snap.waiting,
                    longest_wait_s=snap.longest_wait_s,
                    agents_ready=snap.agents_ready,
                    agents_busy=snap.agents_busy,
                    agents_logged_in=snap.agents_logged_in,
                    offered=f.offered,
                    answered=f.answered,
                    abandoned=f.abandoned,
                    short_abandoned=f.short_abandoned,
                    service_level=f.service_level,
                    service_level_of_answered=f.service_level_of_answered,
                    asa_s=f.asa_s,
                    aht_s=f.aht_s,
                    abandon_rate=f.abandon_rate,
                    occupancy=f.occupancy,
                    agents_by_state={s.value: n for s, n in states.items()},
                    at_wall=wall,
                ),
                retain=True,
            )
            await self.bus.publish(
                topics.queue_calls(name), self._waiting_calls(name, now, wall), retain=True
            )

    def _waiting_calls(self, queue: str, now: float, wall: float) -> QueueCalls:
        """The first waiting calls of ``queue`` in rank order, as many as one message
        takes (:data:`~cti.protocol.MAX_QUEUE_CALLS_SENT` and ``_BYTES``: a flood's whole
        queue would be refused by the broker), and how many wait."""
        estimates = self.router.estimated_waits(queue, now)
        calls = []
        size = 0
        for estimate in estimates[:MAX_QUEUE_CALLS_SENT]:
            caller = self.router.call_caller(estimate.call_id)
            call = WaitingCall(
                call_id=estimate.call_id,
                position=estimate.position,
                waited_s=now - self.router.call_arrived_at(estimate.call_id),
                estimated_wait_s=None if estimate.wait_s == float("inf") else estimate.wait_s,
                ani=caller.ani,
                customer=caller.customer.name if caller.customer else "",
                segment=caller.segment.value if caller.customer else "",
                kind=self.router.call_kind(estimate.call_id),
            )
            size += len(encode(call)) + 1
            if size > MAX_QUEUE_CALLS_BYTES:
                break
            calls.append(call)
        return QueueCalls(queue=queue, calls=tuple(calls), at_wall=wall, total=len(estimates))


class _LineBook(dict[str, str]):
    """Which line carries each call. With a journal, each new entry (``book[call] =
    line``) is also kept there, so that after a restart the engine knows which line to
    ask for which call (see :meth:`EngineService._recover`)."""

    def __init__(self, journal: Journal | None) -> None:
        super().__init__()
        self._journal = journal

    def __setitem__(self, call_id: str, line: str) -> None:
        if self._journal is not None and self.get(call_id) != line:
            self._journal.remember_line(call_id, line)
        super().__setitem__(call_id, line)

    def restore(self, call_id: str, line: str) -> None:
        """An entry read back from the journal: kept there already."""
        super().__setitem__(call_id, line)


@dataclass(slots=True)
class _HeldRecord:
    """A call record on its way to the store, and the steps of it done so far."""

    cdr: CallDetailRecord
    restored: bool = False
    """Decided before a restart (its script run is not in memory)."""
    stored: bool = False
    new: bool = False
    """The store did not have it (so its interaction is added)."""
    partial: SaveScriptRun | None = None
    interaction: bool = False


@dataclass(frozen=True, slots=True)
class _Publish:
    """A message to publish in turn with the router's effects."""

    topic: str
    message: Message
    retain: bool = False


def _local_to_epoch(local_time: str, zone: str) -> float:
    """``2026-11-23T10:30`` in ``Asia/Shanghai`` -> epoch seconds (engine time)."""
    try:
        naive = datetime.fromisoformat(local_time)
    except ValueError:
        raise CtiError(
            f"callback time {local_time!r} is not ISO 8601 (expected e.g. 2026-11-23T10:30)"
        ) from None
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CtiError(f"unknown time zone {zone!r} (expected e.g. Asia/Shanghai)") from None
    if naive.tzinfo is not None:
        return naive.timestamp()
    return naive.replace(tzinfo=tz).timestamp()
