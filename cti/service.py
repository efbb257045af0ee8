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
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from cti import topics
from cti.bus import Bus, Subscription
from cti.clock import wall_time
from cti.config import Config
from cti.errors import CtiError, StoreError
from cti.models import (
    AgentConfig,
    CallDetailRecord,
    CallerInfo,
    CallerKind,
    Customer,
    Interaction,
)
from cti.phone import classify
from cti.protocol import (
    AcceptOffer,
    AgentStateChanged,
    AnyCommand,
    CallArrived,
    CallConnected,
    CallEnded,
    CallerHungUp,
    CallOffered,
    CommandResult,
    CompleteWrapUp,
    HangUp,
    Login,
    Logout,
    Message,
    OfferWithdrawn,
    QueueStatus,
    RejectOffer,
    RequestSnapshot,
    ScreenPop,
    SetNotReady,
    SetReady,
    is_command,
)
from queue_engine import inputs as ri
from queue_engine.actions import (
    Action,
    AgentStateSet,
    ConnectCall,
    DisconnectCall,
    OfferCall,
    RecordCall,
    WithdrawOffer,
)
from queue_engine.priority import explain
from queue_engine.router import Router
from queue_engine.stats import Tally
from telephony_adapters.base import LineEvent, TelephonyAdapter

log = logging.getLogger(__name__)

#: How many recent command ids are remembered to make repeats harmless.
_COMMAND_MEMORY = 10_000


class CustomerDirectory(Protocol):
    """What the service needs of the store to pop a customer card."""

    async def find_by_number(self, e164: str) -> list[Customer]: ...

    async def recent_interactions(
        self, customer_id: int, limit: int = 5
    ) -> tuple[Interaction, ...]: ...


class CallRecorder(Protocol):
    """Where finished calls are kept."""

    async def record_call(self, cdr: CallDetailRecord) -> object: ...

    async def add_interaction(self, customer_id: int, interaction: Interaction) -> None: ...


class EngineService:
    """Runs the engine until cancelled. Agents and queues come from ``config`` and
    ``agents`` (id -> queue names)."""

    def __init__(
        self,
        config: Config,
        bus: Bus,
        directory: CustomerDirectory,
        lines: Sequence[TelephonyAdapter],
        agents: Iterable[AgentConfig] | Mapping[str, Sequence[str]],
        *,
        recorder: CallRecorder | None = None,
    ) -> None:
        self.config = config
        self.bus = bus
        self.directory = directory
        self.recorder = recorder
        self.lines = {line.name: line for line in lines}
        if isinstance(agents, Mapping):
            agents = [AgentConfig(id=a, queues=dict.fromkeys(qs, 0.0)) for a, qs in agents.items()]
        self.router = Router(
            config.queues,
            max_missed_offers=config.engine.max_missed_offers,
            agents=agents,
            seed=config.engine.seed,
        )
        self.tallies = {q.name: Tally(q.sl_target_s, q.short_abandon_s) for q in config.queues}
        self.record_listeners: list[Callable[[CallDetailRecord], None]] = []
        """Called with every call record as the call finishes (before it is stored)."""
        self._line_of: dict[str, str] = {}
        self._offers: dict[str, CallOffered] = {}
        self._commands: OrderedDict[str, CommandResult] = OrderedDict()
        self._effects: asyncio.Queue[Action | _Publish] = asyncio.Queue()
        self._records: asyncio.Queue[CallDetailRecord] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._time_offset: float | None = None
        self.ready = asyncio.Event()
        """Set once the service listens for commands and line events."""

    # --- running -------------------------------------------------------------------

    async def run(self) -> None:
        """Start the lines and serve until cancelled; lines are stopped on the way out."""
        for line in self.lines.values():
            await line.start()
        try:
            async with (
                self.bus.subscribe(topics.ALL_AGENT_COMMANDS) as commands,
                asyncio.TaskGroup() as tg,
            ):
                for line in self.lines.values():
                    tg.create_task(self._serve_line(line), name=f"line:{line.name}")
                tg.create_task(self._serve_commands(commands), name="engine:commands")
                tg.create_task(self._serve_timers(), name="engine:timers")
                tg.create_task(self._serve_effects(), name="engine:effects")
                tg.create_task(self._serve_records(), name="engine:records")
                tg.create_task(self._serve_status(), name="engine:status")
                self.ready.set()
        finally:
            for line in self.lines.values():
                with contextlib.suppress(Exception):
                    await line.stop()

    async def flush(self) -> None:
        """Wait until every effect and record decided so far has been carried out."""
        await self._effects.join()
        await self._records.join()

    # --- inputs --------------------------------------------------------------------

    async def _serve_line(self, line: TelephonyAdapter) -> None:
        async for event in line.events():
            try:
                await self.handle_line_event(event)
            except CtiError as exc:
                log.warning("line %s: %s", line.name, exc)
            except Exception:
                log.exception("line %s: unexpected error on %r; the line goes on", line.name, event)

    async def handle_line_event(self, event: LineEvent) -> None:
        if isinstance(event, CallArrived):
            caller = await self.identify(event.ani)
            queue = self.config.engine.dnis_queues.get(event.dnis, self.config.engine.default_queue)
            self._line_of[event.call_id] = event.line
            self.route(ri.CallArrives(call_id=event.call_id, queue=queue, caller=caller))
        elif isinstance(event, CallerHungUp):
            self.route(ri.CallerHangsUp(call_id=event.call_id))

    async def identify(self, ani: str) -> CallerInfo:
        """Classify the number the line gave and look the customer up (one indexed query)."""
        kind, e164 = classify(ani, self.config.engine.default_region)
        if e164 is None:
            return CallerInfo(ani=ani, kind=kind)
        try:
            matches = await self.directory.find_by_number(e164)
            customer = max(matches, key=lambda c: c.value) if matches else None
            history = await self.directory.recent_interactions(customer.id) if customer else ()
        except StoreError as exc:
            # The call matters more than the card: route it as an unknown caller.
            log.error("customer lookup for %s failed, routing as unknown: %s", e164, exc)
            return CallerInfo(ani=ani, e164=e164, kind=CallerKind.UNKNOWN)
        if customer is None:
            return CallerInfo(ani=ani, e164=e164, kind=CallerKind.UNKNOWN)
        # Several customers may share a number (a family phone): the most valuable
        # sets the call's priority.
        return CallerInfo(
            ani=ani, e164=e164, kind=CallerKind.KNOWN, customer=customer, history=history
        )

    async def _serve_commands(self, commands: Subscription) -> None:
        async for topic, message in commands:
            try:
                self.handle_command(topic, message)
            except Exception:
                log.exception("%s: unexpected error on %r; the engine goes on", topic, message)

    def handle_command(self, topic: str, message: Message) -> None:
        """Apply one command from ``topic``, once per ``command_id``, and answer it."""
        if not is_command(message):
            log.warning("%s: %s is not a command; ignored", topic, message.type)
            return
        agent_id = topics.agent_of(topic)
        result = self._commands.get(message.command_id)
        if result is None:
            result = self._execute(agent_id, message)
            self._commands[message.command_id] = result
            if len(self._commands) > _COMMAND_MEMORY:
                self._commands.popitem(last=False)
        self._send(topics.agent_events(agent_id or message.agent_id), result)

    def _execute(self, topic_agent: str | None, message: AnyCommand) -> CommandResult:
        command_id = message.command_id
        agent_id = message.agent_id
        if topic_agent != agent_id:
            return CommandResult(
                command_id=command_id,
                ok=False,
                error=f"command for agent {agent_id!r} arrived on the topic of {topic_agent!r}",
            )
        try:
            match message:
                case Login():
                    self.route(ri.AgentLogsIn(agent_id=agent_id))
                case Logout():
                    self.route(ri.AgentLogsOut(agent_id=agent_id))
                case SetReady():
                    self.route(ri.AgentGoesReady(agent_id=agent_id))
                case SetNotReady(reason=reason):
                    self.route(ri.AgentGoesNotReady(agent_id=agent_id, reason=reason))
                case AcceptOffer(call_id=call_id):
                    self.route(ri.AgentAccepts(agent_id=agent_id, call_id=call_id))
                case RejectOffer(call_id=call_id):
                    self.route(ri.AgentRejects(agent_id=agent_id, call_id=call_id))
                case HangUp(call_id=call_id):
                    self.route(ri.AgentHangsUp(agent_id=agent_id, call_id=call_id))
                case CompleteWrapUp(call_id=call_id, disposition=disposition, note=note):
                    self.route(
                        ri.AgentFinishesWrapUp(
                            agent_id=agent_id, call_id=call_id, disposition=disposition, note=note
                        )
                    )
                case RequestSnapshot():
                    self._resend_agent(agent_id)
        except CtiError as exc:
            return CommandResult(command_id=command_id, ok=False, error=str(exc))
        return CommandResult(command_id=command_id, ok=True)

    async def _serve_timers(self) -> None:
        while True:
            deadline = self.router.next_deadline()
            delay = None if deadline is None else max(0.0, deadline - self.now())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            self._wake.clear()
            try:
                self.route(ri.TimePasses())
            except Exception:
                log.exception("router timers failed; the engine goes on")

    def route(self, event: ri.AnyInput) -> None:
        """Hand one input to the router now and queue its actions, in order.

        Every change of routing state passes through here, so this is where it can be
        journaled. Raises :class:`~cti.errors.RoutingError` (nothing changed) if the
        router's state does not allow the input.
        """
        self._apply(self.router.handle(event, self.now()))

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
        if actions:
            self._wake.set()

    def _send(self, topic: str, message: Message, *, retain: bool = False) -> None:
        """Publish after every effect decided so far (keeps each agent's events in order)."""
        self._effects.put_nowait(_Publish(topic, message, retain))

    async def _serve_effects(self) -> None:
        while True:
            action = await self._effects.get()
            try:
                await self._carry_out(action)
            except CtiError as exc:
                log.warning("%s", exc)
            except Exception:
                log.exception("could not carry out %r; the engine goes on", action)
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
                self._offers[agent_id] = offer
                await self.bus.publish(topics.agent_events(agent_id), offer)
            case WithdrawOffer(call_id=call_id, agent_id=agent_id, reason=reason):
                self._offers.pop(agent_id, None)
                await self.bus.publish(
                    topics.agent_events(agent_id),
                    OfferWithdrawn(agent_id=agent_id, call_id=call_id, reason=reason),
                )
            case ConnectCall(call_id=call_id, agent_id=agent_id):
                self._offers.pop(agent_id, None)
                await self._line_for(call_id).answer(call_id)
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
            case AgentStateSet():
                await self.bus.publish(
                    topics.agent_state(action.agent_id),
                    self._state_message(action.agent_id, loop_now, wall),
                    retain=True,
                )
            case RecordCall(cdr=cdr):
                record = cdr.model_copy(update={"started_wall": wall - (loop_now - cdr.arrived_at)})
                self._line_of.pop(record.call_id, None)
                self.tallies[record.queue].add(record)
                for listener in self.record_listeners:
                    listener(record)
                self._records.put_nowait(record)

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
        )
        return CallOffered(
            agent_id=agent_id,
            pop=pop,
            timeout_s=deadline - now,
            deadline_wall=wall + (deadline - now),
            dispositions=self.config.engine.dispositions,
        )

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

    def _line_for(self, call_id: str) -> TelephonyAdapter:
        name = self._line_of.get(call_id)
        if name is None or name not in self.lines:
            raise CtiError(f"no line carries call {call_id!r}")
        return self.lines[name]

    async def _serve_records(self) -> None:
        while True:
            cdr = await self._records.get()
            try:
                if self.recorder is not None:
                    await self.recorder.record_call(cdr)
                    if cdr.customer_id is not None and cdr.outcome == "answered":
                        await self.recorder.add_interaction(
                            cdr.customer_id,
                            Interaction(
                                at=cdr.started_wall,
                                channel="call",
                                disposition=cdr.disposition,
                                agent_id=cdr.agent_id or "",
                                note=cdr.note,
                            ),
                        )
            except CtiError as exc:
                log.error("call record %s not stored: %s", cdr.call_id, exc)
            finally:
                self._records.task_done()

    async def _serve_status(self) -> None:
        interval = self.config.engine.status_interval_s
        while True:
            await self.publish_status()
            await asyncio.sleep(interval)

    async def publish_status(self) -> None:
        """Publish every queue's live figures (retained)."""
        now = self.now()
        wall = wall_time()
        for name in self.router.queue_names:
            snap = self.router.snapshot(name, now)
            t = self.tallies[name]
            await self.bus.publish(
                topics.queue_status(name),
                QueueStatus(
                    queue=name,
                    waiting=snap.waiting,
                    longest_wait_s=snap.longest_wait_s,
                    agents_ready=snap.agents_ready,
                    agents_busy=snap.agents_busy,
                    agents_logged_in=snap.agents_logged_in,
                    offered=t.offered,
                    answered=t.answered,
                    abandoned=t.abandoned,
                    service_level=t.service_level,
                    asa_s=t.asa_s,
                    at_wall=wall,
                ),
                retain=True,
            )


@dataclass(frozen=True, slots=True)
class _Publish:
    """A message to publish in turn with the router's effects."""

    topic: str
    message: Message
    retain: bool = False
