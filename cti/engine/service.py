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

This module is the core (construction, :meth:`EngineService.run`, ``route``, the
effects and records loops); the parts it composes each have their own module: dispatch
(commands, once each), call_control, customer_desk (and the audit trail), screen_pop,
script_runs, records, recovery, status, callbacks, line_book (all in :mod:`cti.engine`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path

from cti import log_limits, topics
from cti.bus.memory import Bus, Subscription
from cti.bus.queues import OneReaderQueue
from cti.clock import EngineClock, RetryBackoff, wait_for_timer, wall_time
from cti.config import Config, watch_config
from cti.customers.base import CustomerBase
from cti.engine import effects
from cti.engine.call_control import CallController
from cti.engine.callbacks import CallbackScheduler
from cti.engine.caller_flows import CallerFlows
from cti.engine.customer_desk import CustomerDesk
from cti.engine.directory import CallRecorder, CustomerDirectory
from cti.engine.dispatch import CampaignControl, CommandDispatcher, Parts
from cti.engine.effects import Effect, Publish, StateOf, VoiceUpdate, calls_touched, offers_first
from cti.engine.line_book import LineBook
from cti.engine.live_figures import DeferredFigures
from cti.engine.outbox import serve_outbox
from cti.engine.reconfigure import reconfigured
from cti.engine.recordings import RecordingKeeper
from cti.engine.records import RecordKeeper, started
from cti.engine.recovery import JournalTending, Recovery
from cti.engine.retries import serve_retries
from cti.engine.screen_pop import ScreenPops, identify
from cti.engine.script_runs import ScriptRuns
from cti.engine.status import AgentViews, HealthWatch, publish_queues
from cti.engine.voice import PhoneEvent, Voice
from cti.errors import CtiError
from cti.models import AgentConfig, CallDetailRecord, CallerInfo
from cti.protocol import (
    AgentStateChanged,
    CallArrived,
    CallbackRequested,
    CallerHungUp,
    DtmfReceived,
    EngineHealth,
    Message,
    PhoneReachability,
)
from cti.store.database import Store
from cti.store.journal import Journal, RecoveryReport
from cti.store.recordings import RecordingRows
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
from queue_engine.router import Router
from scripts_engine.catalog import ScriptCatalog
from telephony_adapters.base import LineEvent, TelephonyAdapter

log = logging.getLogger(__name__)


def _failed(action: Effect, exc: Exception) -> None:
    """An effect that could not be carried out is logged; the engine goes on."""
    if isinstance(exc, CtiError):
        log_limits.warning(log, "%s", exc)
    else:
        log_limits.exception(log, "could not carry out %r; the engine goes on", action)


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
        self._send_now: Callable[[], None] = getattr(bus, "send_now", lambda: None)  # MqttBus
        self._publish_encoded = effects.publish_encoded(bus)  # the offer's bytes made once
        self.directory = directory
        self.recorder = recorder
        self.journal = journal
        """Where every router input is written before it is applied (:mod:`cti.store.journal`)."""
        self.recovery: RecoveryReport | None = None
        """What :meth:`run` found in the journal when it started, if there was one."""
        self._recovered = journal is None
        if isinstance(agents, Mapping):
            agents = [AgentConfig(id=a, queues=dict.fromkeys(qs, 0.0)) for a, qs in agents.items()]
        agents = list(agents)
        self.scripts = ScriptCatalog()
        """The queues' call scripts, read again when their files change (a broken one is
        logged with its file and line, and its calls go without a script)."""
        self.router = Router(
            config.queues,
            max_missed_offers=config.engine.max_missed_offers,
            agents=agents,
            seed=config.engine.seed,
        )
        self.figures = DeferredFigures(LiveStats(
            {q.name: q for q in config.queues},
            {a: self.router.agent_queues(a) for a in self.router.agent_ids()},
        ))  # fmt: skip
        self.record_listeners: list[Callable[[CallDetailRecord], None]] = []
        """Called with every call record as the call finishes (before it is stored)."""
        self.clock = EngineClock()
        self.line_book = LineBook(lines, journal)
        self.lines = self.line_book.lines
        self._effects: OneReaderQueue[Effect | list[Action]] = OneReaderQueue()
        """Effects in turn; a router step's actions one item (one queue turn, issue 23)."""
        self._left: list[Effect] = []  # of a step's actions when its task was cancelled
        self._wake = asyncio.Event()
        self.retry_now = asyncio.Event()  # wakes the write-back task (cti.engine.retries)
        self._timer_deadline: float | None = None
        self._serving = False
        self.journal_retry = RetryBackoff()  # the journal's write-back, by that task
        self._timer_retry = RetryBackoff(first_s=0.1, most_s=5.0)
        self._build_parts(agents)
        self.ready = asyncio.Event()
        """Set once the service listens for commands and line events."""
        for queue in config.queues:
            self.scripts.get(queue.script)  # a broken script is logged at start-up

    def _build_parts(self, agents: list[AgentConfig]) -> None:
        names = {a.id: a.name for a in (*agents, *self.config.agents) if a.name}
        config = self._config
        rows = RecordingRows(self.recorder) if isinstance(self.recorder, Store) else None
        self.recordings = RecordingKeeper(rows, self.now, lambda: self._config().voice)
        self.pops = ScreenPops(self.router, config, self.scripts, self.line_book, names,
                               messages=self.recordings.message_for)  # fmt: skip
        # The customer base behind the desk's commands (none without a store: refused).
        base = CustomerBase(self.directory, self.config.customers) if isinstance(
            self.directory, Store) else None  # fmt: skip
        self.desk = CustomerDesk(base, config, self.router, self.pops, self._send)
        self.calls = CallController(self.router, self.route, self._send, self.line_book,
                                    self.pops, self.identify, self.now)  # fmt: skip
        self.runs = ScriptRuns(self.router, self.recorder, self.desk.call_customer.get)
        self.records = RecordKeeper(
            self.recorder,
            self.runs,
            self.now,
            forget=lambda call_id: self.desk.call_customer.pop(call_id, None),
            trouble=lambda: self.health_watch.check(),
            wake=self.retry_now.set,
        )
        if isinstance(self.recorder, Store):
            self.recorder.calls.conflict_listeners.append(self.records.on_conflict)
        self.health_watch = HealthWatch(self.journal, self.records, self._send)
        self.callbacks = CallbackScheduler(self.router, self.route, self.now, config,
                                           self.identify)  # fmt: skip
        replan = lambda call_id: self._effects.put_nowait(VoiceUpdate(call_id))  # noqa: E731
        self.flows = CallerFlows(self.router, self.line_book, config, self.route, self.now,
            replan=replan, finished=self._call_over,
            schedule_callback=lambda number, queue: self.callbacks.schedule(number, queue=queue),
            attach_message=self.recordings.attach_message,
        )  # fmt: skip
        self.voice = Voice(self.router, self.line_book, lambda: self._config().voice, self.route,
                           seed=self.config.engine.seed, recording_closed=self.recordings.take,
                           caller_audio=self.flows.caller_audio, asked=self.calls.transfer_asked,
                           persistent={a.id for a in (*agents, *self.config.agents)
                                       if a.phone_mode == "persistent"})  # fmt: skip
        self.views = AgentViews(self.router, config, self.pops, self.calls, self._send,
                                phone_reachable=self.voice.phone_reachable,
                                call_customer=self.desk.call_customer.get)  # fmt: skip
        parts = Parts(self.route, self.calls, self.desk, self.runs, self.callbacks,
                      lambda agent_id: self.views.resend(agent_id, self.now()),
                      self.voice.ready_refusal, self.voice, replan)  # fmt: skip
        self.dispatch = CommandDispatcher(parts, self._send)
        self.answers = self.dispatch.answers  # accepts, rejects, hang-ups answered by events
        self.tending = (
            JournalTending(self.journal, self.router, self.records)
            if self.journal is not None
            else None
        )

    def _config(self) -> Config:
        return self.config

    @property
    def stats(self) -> LiveStats:
        """Live figures per queue and 15-minute interval (docs/acd.md), all actions observed."""
        return self.figures.stats

    @property
    def campaign_control(self) -> CampaignControl | None:
        """Carries out the supervisor's campaign commands (``SetCampaignState``,
        ``SetCampaignPacing``): the dialer's, when one runs in this engine
        (:mod:`cti.engine.campaigns`). It raises :class:`CtiError` to refuse one."""
        return self.dispatch.campaign_control

    @campaign_control.setter
    def campaign_control(self, control: CampaignControl | None) -> None:
        self.dispatch.campaign_control = control

    @property
    def max_held_records(self) -> int:
        """Call records held in memory at most while the store cannot take them."""
        return self.records.max_held

    @max_held_records.setter
    def max_held_records(self, most: int) -> None:
        self.records.max_held = most

    @property
    def records_lost(self) -> int:
        """Records the full memory spool could not hold (logged whole; the journal still
        has them, so a restart stores them again)."""
        return self.records.lost

    @property
    def record_conflicts(self) -> int:
        """Records the store kept under a suffixed id (their call id was taken)."""
        return self.records.conflicts

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
                tg.create_task(self.flows.serve(), name="engine:flows")
                tg.create_task(self._serve_effects(), name="engine:effects")
                tg.create_task(self.records.serve(), name="engine:records")
                tg.create_task(self.recordings.serve(), name="engine:recordings")
                tg.create_task(serve_outbox(self.recorder, self._config), name="engine:outbox")
                tg.create_task(serve_retries(self), name="engine:retries")
                tg.create_task(self._serve_status(), name="engine:status")
                if self.desk.trail is not None:
                    tg.create_task(self.desk.trail.serve(), name="engine:audit")
                self._serving = True
                self.ready.set()
        finally:
            self._serving = False
            self.calls.cancel_transfers()
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
        reconfigured(self, config)

    async def follow_config(self, path: str | Path, interval_s: float = 2.0) -> None:
        """Reload the configuration whenever ``path`` changes (run it as a task)."""
        async for config in watch_config(path, interval_s):
            try:
                self.reconfigure(config)
            except CtiError as exc:
                log.error("configuration from %s not applied: %s", path, exc)

    async def flush(self) -> None:
        """Wait until every effect, record and audit entry decided so far is carried out;
        once the engine has stopped, carry out here what its tasks left queued."""
        self.views.colleagues.send_due()  # not at their tick
        if not self._serving:
            await self._drain()
        await self._effects.join()
        await self.records.join()
        await self.recordings.flush()
        if self.desk.trail is not None:
            await self.desk.trail.flush()

    async def _drain(self) -> None:
        await self._serve_effects(until_empty=True)
        await self.records.drain()
        if self.desk.trail is not None:
            await self.desk.trail.drain()

    async def _recover(self) -> None:
        """Bring back the state the journal holds, before serving anything
        (:mod:`cti.engine.recovery`, docs/durability.md).

        Replays every input into the router at its journaled time (live figures too);
        each call record is stored again. Then engine time carries on from the wall
        clock (never behind the journal), the configuration is the file's, each line
        adopts the calls still on it and the others are routed as hung up, offers still
        running are sent again, and every agent's state is published again (retained).
        """
        journal = self.journal
        assert journal is not None
        self.clock.carry_on_from(journal.last_at)
        recovery = Recovery(journal, self.router, self.stats, self.records, self.line_book,
                            self.pops, route=self.route, config=self._config,
                            resend=self.views.resend)  # fmt: skip
        report = RecoveryReport()
        records = recovery.replay(report)
        self._recovered = True
        recovery.reconcile_config()
        await recovery.restore_records(records, self.now(), report)
        await recovery.adopt_calls(report)
        if self.voice.active:  # plans are not journaled: each live call's is sent again
            for call_id in self.router.active_call_ids():
                self._effects.put_nowait(VoiceUpdate(call_id))
        recovery.tell_agents(self.now())
        self.recovery = report
        log.info("journal %s: %s", journal.path, report)
        await self._tend_journal()

    async def _tend_journal(self) -> None:
        if self.tending is not None and self._recovered:
            await self.tending.tend(self.recovery)

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
        if await self.flows.line_event(event, self.identify):
            return  # a caller in its flow (:mod:`cti.engine.caller_flows`)
        if isinstance(event, CallArrived):
            caller = await identify(self.directory, event.ani, self.config, event.caller_name)
            queue = self.flows.queue_for(event)
            self.line_book[event.call_id] = event.line
            self.route(effects.arrives(event.call_id, queue, caller))
        elif isinstance(event, CallerHungUp):
            self.route(ri.CallerHangsUp(call_id=event.call_id))
        elif isinstance(event, CallbackRequested):
            caller = self.router.call_caller(event.call_id)
            number = event.number or caller.e164 or ""  # a withheld number cannot be called
            self.route(ri.CallerAsksCallback(call_id=event.call_id, number=number))
        elif isinstance(event, PhoneEvent):
            self.voice.phone_event(event)
            if isinstance(event, PhoneReachability) and self.router.has_agent(event.agent_id):
                self._effects.put_nowait(StateOf(event.agent_id))
        elif isinstance(event, DtmfReceived):
            agent_id = self.calls.talking_on(event.call_id)
            if agent_id is None:  # still queued, ringing an agent, or over: no one to tell
                log.debug("call %s: DTMF %r with no agent on the call", event.call_id, event.key)
                return
            self._send(topics.agent_events(agent_id), event)  # in order with CallConnected

    async def route_answered_outbound(
        self, call_id: str, line: str, number: str, queue: str, *, script: str = ""
    ) -> None:
        """A call the dialer placed on ``line`` was answered by a person: look the callee
        up and route the call to ``queue`` like an arrival (the dialer's line has it
        answered already; see :mod:`cti.engine.dialer`). ``script``: the campaign's script,
        sent with the offer instead of the queue's (if it names none, the queue's)."""
        caller = await self.identify(number)
        self.line_book[call_id] = line
        if script:
            self.pops.call_scripts[call_id] = script
        self.route(
            ri.CallArrives(call_id=call_id, queue=queue, caller=caller, direction="outbound")
        )

    async def identify(self, ani: str, caller_name: str = "") -> CallerInfo:
        """Classify the number and look the customer up (:func:`cti.engine.screen_pop.identify`)."""
        return await identify(self.directory, ani, self.config, caller_name)

    async def _serve_commands(self, commands: Subscription) -> None:
        async for topic, message in commands:
            try:
                await self.handle_command(topic, message)
            except Exception:
                log_limits.exception(log, "%s: unexpected error on %r; the engine goes on",
                                     topic, message)  # fmt: skip

    async def handle_command(self, topic: str, message: Message) -> None:
        """Apply one command from ``topic``, once per ``command_id``, and answer it."""
        await self.dispatch.handle(topic, message)

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
        """Schedule a callback to ``number``; returns its call id
        (:meth:`cti.engine.callbacks.CallbackScheduler.schedule`)."""
        return await self.callbacks.schedule(
            number, local_time, time_zone, queue, for_agent=for_agent,
            max_days_ahead=max_days_ahead, max_s_behind=max_s_behind,
        )  # fmt: skip

    async def _serve_timers(self) -> None:
        while True:
            self._timer_deadline = deadline = self.router.next_deadline()
            delay = None if deadline is None else max(0.0, deadline - self.now())
            await wait_for_timer(self._wake, delay, self._timer_retry, self.now())
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
        now = self.clock.now()  # the clock's, not through now(): ~10 reads a call (issue 23)
        if self.journal is not None:
            if not self._recovered:
                raise CtiError("the engine takes inputs once run() has replayed its journal")
            self.journal.append(now, event)
            if self.journal.spooled and not self.journal_retry.failing:
                self.journal_retry.failed(now)  # routing goes on; written back later
                self.retry_now.set()
                self.health_watch.check()
            elif self.journal.lost.count and "journal_lost" not in self.health_watch.alerts:
                self.health_watch.check()
        actions = self.router.handle(event, now)
        self._apply(actions)
        self.figures.later(actions, now)  # after the effects task's turn, which this wakes
        if self.voice.active:  # after the actions: the plan follows the router's new state
            for call_id in calls_touched(event, actions):
                self._effects.put_nowait(VoiceUpdate(call_id))

    def now(self) -> float:
        """Engine time (:class:`EngineClock`)."""
        return self.clock.now()

    # --- outputs -------------------------------------------------------------------

    def _apply(self, actions: list[Action]) -> None:
        ordered = offers_first(actions)
        for action in ordered:
            if isinstance(action, AgentStateSet):
                self.views.queued(action.agent_id)  # a later one publishes the same state
            elif isinstance(action, RecordCall):
                self.records.unstored += 1
        if ordered:
            self._effects.put_nowait(ordered)
        deadline, sleeping_to = self.router.next_deadline(), self._timer_deadline
        if deadline is not None and (sleeping_to is None or deadline < sleeping_to):
            # Due before the timer task wakes. A later one is read when it wakes: an
            # offer sets one at almost every call, a wake cost ~60 Python calls (issue 23).
            self._wake.set()

    def _send(self, topic: str, message: Message, *, retain: bool = False) -> None:
        """Publish after every effect decided so far (keeps each agent's events in order)."""
        self._effects.put_nowait(Publish(topic, message, retain))

    async def _serve_effects(self, *, until_empty: bool = False) -> None:
        """Carry the effects out in turn (``until_empty``: those left once the engine
        stopped). No coroutine an effect but what it awaits (issue 23)."""
        effects = self._effects
        while not until_empty or self._left or not effects.empty():
            batch: Sequence[Effect]
            if self._left:  # what a cancelled task left of a step's actions: first, in order
                batch, self._left, taken = self._left, [], False
            else:
                item = await effects.get()
                batch, taken = (item if isinstance(item, list) else (item,)), True
            try:
                for n, action in enumerate(batch):
                    try:
                        pending = self._carry_out(action)
                        if pending is not None:
                            await pending
                    except Exception as exc:
                        _failed(action, exc)
                    except BaseException:
                        self._left = list(batch[n + 1 :])
                        raise
            finally:
                if taken:
                    effects.task_done()

    def _carry_out(self, action: Effect) -> Awaitable[None] | None:
        """Carry ``action`` out: its steps that need no await here, and the rest (a
        publish, a line's request) returned to be awaited in turn. Most effects of a call
        are one publish, or nothing at all (issue 23: a coroutine or two fewer each)."""
        # The commonest first: each case is a class test (issue 23).
        match action:
            case Publish(topic=topic, message=message, retain=retain):
                # A command's result that its event gave already (Answers.due) is not sent.
                return self.bus.publish(topic, message, retain=retain) if self.answers.due(
                    message) else None  # fmt: skip
            case AgentStateSet(agent_id=agent_id):
                state = self.views.queued_state(agent_id, self.clock.now(), wall_time())
                if self.voice.active:
                    return self._state_published(state, action)
                if state is None:
                    return None
                return self.bus.publish(topics.agent_state(agent_id), state, retain=True)
            case OfferCall():
                if self.voice.active:  # its ring is read by audio plans alone
                    self.voice.offered(action.call_id, action.agent_id)
                return self._offer(action, self.clock.now(), wall_time())
            case ConnectCall():
                return self._connect(action)
            case DisconnectCall() | ReleaseLine() | ExitCall() | MoveCall():
                return self._call_leaves(action)
            case RecordCall(cdr=cdr):
                wall = wall_time()
                self._call_over(started(cdr, wall - (self.clock.now() - cdr.arrived_at)))
                return None
        return self._carry_out_other(action)

    def _carry_out_other(self, action: Effect) -> Awaitable[None] | None:
        match action:
            case VoiceUpdate(call_id=call_id):
                return self.voice.update(call_id)
            case StateOf(agent_id=agent_id):
                return self.views.publish_state(self.bus, agent_id, self.now(), wall_time())
            case WithdrawOffer(call_id=call_id, agent_id=agent_id):
                self.voice.offer_over(call_id, agent_id)
                self.pops.offers.pop(agent_id, None)
                withdrawn = self.answers.withdrawn(action)  # a reject's answer
                return self.bus.publish(topics.agent_events(agent_id), withdrawn)
            case JoinCall(call_id=call_id, agent_id=agent_id):
                self.voice.offer_over(call_id, agent_id)
                self.pops.connected(agent_id)
                connected = self.answers.connected(action)  # an accept's answer
                return self.bus.publish(topics.agent_events(agent_id), connected)
            case ConsultChanged():
                message = self.calls.message(action)
                return self.bus.publish(topics.agent_events(action.agent_id), message)
            case RecordLeg(agent_id=agent_id):
                # An agent who handed a call on finished its wrap-up: its card is put away.
                self.pops.current.pop(agent_id, None)
                return self.records.add_leg(action, wall_time())
        return None

    async def _state_published(
        self, state: AgentStateChanged | None, action: AgentStateSet
    ) -> None:
        """The agent's state published (None: a later change publishes it), then its
        phone kept or released (:meth:`Voice.agent_state`)."""
        if state is not None:
            await self.bus.publish(topics.agent_state(action.agent_id), state, retain=True)
        await self.voice.agent_state(action.agent_id, action.state)

    async def _call_leaves(
        self, action: DisconnectCall | ReleaseLine | ExitCall | MoveCall
    ) -> None:
        """The call leaves its agent, its line or its queue."""
        match action:
            case DisconnectCall(call_id=call_id, agent_id=agent_id, by=by):
                ended = self.answers.ended(action)  # a hang-up's answer
                await self.bus.publish(topics.agent_events(agent_id), ended)
                if by == "agent":
                    await self.line_book.line_for(call_id).hang_up(call_id)
            case ReleaseLine(call_id=call_id):
                await self.line_book.line_for(call_id).hang_up(call_id)
            case ExitCall(call_id=call_id, action=exit_action, reason=reason):
                log.info("call %s leaves for %s (%s)", call_id, exit_action.value, reason)
                if not await self.flows.exit_call(call_id, exit_action):  # else: a message
                    await self.line_book.line_for(call_id).hang_up(call_id)
            case MoveCall(call_id=call_id, from_queue=source, to_queue=target, reason=reason):
                log.info("call %s moved from %s to %s (%s)", call_id, source, target, reason)

    async def _offer(self, action: OfferCall, now: float, wall: float) -> None:
        """Ring the agent with the call's card; its customers go to the audit trail, queued."""
        agent_id = action.agent_id
        offer, payload = self.pops.offer_encoded(
            action.call_id, agent_id, action.queue, action.deadline, now, wall, action.consult_from
        )
        self.pops.offers[agent_id] = offer
        await self._publish_encoded(topics.agent_events(agent_id), offer, payload)
        self._send_now()  # on its way before the agent's state is made and published
        if self.desk.trail is not None:
            self.desk.trail.offered(offer, wall)

    async def _connect(self, action: ConnectCall) -> None:
        call_id, agent_id = action.call_id, action.agent_id
        self.voice.offer_over(call_id, agent_id)
        self.pops.connected(agent_id)
        if action.answered:  # a transferred caller: connected already, maybe held
            await self.calls.resume_if_held(call_id, self.line_book.line_for(call_id))
        elif action.dial is None:
            await self.line_book.line_for(call_id).answer(call_id)
        else:
            line = self.line_book.dialling_line(call_id)
            self.line_book[call_id] = line.name
            await line.dial(action.dial, call_id=call_id)
        connected = self.answers.connected(action)  # an accept's answer
        await self.bus.publish(topics.agent_events(agent_id), connected)

    def _call_over(self, record: CallDetailRecord) -> None:
        """The router wrote the call's record: forget the call, hand the record on."""
        self.line_book.pop(record.call_id, None)
        chosen = self.desk.call_customer.pop(record.call_id, None)
        if chosen is not None:  # the agent said who the caller is
            record.customer_id = chosen.id
        self.pops.call_over(record.agent_id or "", record.call_id)
        self.flows.call_over(record)
        for listener in self.record_listeners:
            listener(record)
        self.records.put(record)

    def retry_writes(self) -> None:
        """Try the journal and the store again now (space was freed), not at next backoff."""
        self.records.retry.now_due()
        self.journal_retry.now_due()
        self.retry_now.set()

    def health(self) -> EngineHealth:
        """The engine's troubles now (what it publishes on its health topic on change)."""
        return self.health_watch.health()

    async def _serve_status(self) -> None:
        interval = self.config.engine.status_interval_s
        while True:
            await self.publish_status()
            await self._tend_journal()
            self.health_watch.check(refresh=True)
            log_limits.flush()  # counts of repeated log lines whose interval is over
            await asyncio.sleep(interval)

    async def publish_status(self) -> None:
        """Publish every queue's live figures and waiting calls (both retained)."""
        await publish_queues(self.bus, self.router, self.stats, self.now(), wall_time())
