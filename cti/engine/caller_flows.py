"""What the caller hears before an agent, on a line that carries the voice: the dialled
number's flow (greeting, menu), then, queued, the place in line and the wait every so
often with the offer of a callback that keeps the place (virtual hold), and voicemail.

The cores decide: :class:`~scripts_engine.flow_runner.FlowRun` (greeting and menus),
:class:`~scripts_engine.waiting_caller.WaitingCaller` (a queued caller) and
:class:`~scripts_engine.waiting_caller.MessageTaking` (a message). This room is their
shell. It answers a caller whose dialled number has a ``[[flows]]`` table, turns each
``Say`` into the call's :class:`~telephony_adapters.base.Prompt` (the voice room asks
:meth:`CallerFlows.caller_audio` when it plans the call), feeds the cores the caller's
keys and the time, and turns their other steps into the router's inputs: the call joins
its queue when the menu is done (menu time is not queue wait), ``CallMeBack`` is the
router's virtual hold (the call keeps its place and age). A message becomes a callback
task of its queue with the message attached. A caller who hangs up in the menu is not
an abandon (REFERENCE 1: never offered to a queue); its record says ``menu``.

Callers of lines without the voice, or of numbers without a flow, go straight to their
queue as before (:meth:`CallerFlows.queue_for`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date

from cti import log_limits
from cti.call_flows import CallFlow, flow_for, language_for
from cti.clock import RetryBackoff, wait_for_timer, wall_time
from cti.config import Config
from cti.engine.line_book import LineBook
from cti.engine.recordings import message_file, message_id
from cti.errors import CtiError, RoutingError, TelephonyError
from cti.models import CallDetailRecord, CallerInfo, ExitAction
from cti.protocol import CallArrived, CallerHungUp, DtmfReceived
from queue_engine import inputs as ri
from queue_engine.business_hours import BusinessHours
from queue_engine.router import CallPhase, Router
from scripts_engine.flow_runner import FlowRun
from scripts_engine.flow_steps import (
    CallMeBack,
    Enqueue,
    FlowStep,
    HangUp,
    Language,
    LeaveMessage,
    MessageDone,
    RecordMessage,
    Say,
)
from scripts_engine.waiting_caller import (
    MessageTaking,
    WaitingCaller,
    play_time,
    waiting_settings,
)
from telephony_adapters.base import LineEvent, Prompt
from telephony_adapters.media import speech
from telephony_adapters.media.prompt_files import PromptFiles

log = logging.getLogger(__name__)

#: Seconds a hang-up (or the release of a caller who asked for a callback) waits after
#: the last prompt's end: the line starts playing a moment after the Say and the phone's
#: jitter buffer holds some, so a hang-up at the clip's end would cut its last words.
PLAYOUT_TAIL_S = 0.5


@dataclass(frozen=True, slots=True)
class CallerAudio:
    """The caller's part of a call's audio plan while no agent talks with it."""

    prompt: Prompt | None = None
    message: str = ""
    """A message being recorded to this file (relative to the recordings folder)."""
    music: bool = False
    """Queue music between prompts (queued, not in a dialogue)."""


@dataclass(slots=True)
class _Caller:
    call_id: str
    line: str
    caller: CallerInfo
    language: Language
    flow: CallFlow
    arrived_at: float
    arrived_wall: float
    run: FlowRun | None = None
    waiting: WaitingCaller | None = None
    taking: MessageTaking | None = None
    prompt: Prompt | None = None
    message: str = ""
    queue: str = ""
    routed: bool = False
    """In the router (queued, offered, talking): the router writes its record."""
    recorded: bool = False
    """Its record is written (by the router, or here)."""
    callback: str = ""
    """The callback task its message was attached to."""
    said_until: float = 0.0
    """When the last prompt ends (engine time, by the clips' lengths)."""
    ending: list[FlowStep] = field(default_factory=list)
    """A HangUp or CallMeBack (and what followed it) held until ``ending_at``."""
    ending_at: float | None = None


class CallerFlows:
    """The callers in a flow, queued with announcements, or leaving a message."""

    def __init__(
        self,
        router: Router,
        lines: LineBook,
        config: Callable[[], Config],
        route: Callable[[ri.AnyInput], None],
        now: Callable[[], float],
        *,
        replan: Callable[[str], None],
        schedule_callback: Callable[[str, str], Awaitable[str]],
        attach_message: Callable[[str, str], None],
        finished: Callable[[CallDetailRecord], None],
    ) -> None:
        self._router = router
        self._lines = lines
        self._config = config
        self._route = route
        self._now = now
        self._replan = replan
        self._schedule_callback = schedule_callback
        self._attach_message = attach_message
        self._finished = finished
        self._callers: dict[str, _Caller] = {}
        self._serial = 0
        self._wake = asyncio.Event()
        self._retry = RetryBackoff(first_s=0.1, most_s=5.0)
        self.prompts = PromptFiles(config().caller.prompts_dir)
        self._warned: set[tuple[str, str]] = set()

    # --- which calls are ours --------------------------------------------------------

    def queue_for(self, event: CallArrived) -> str:
        """The dialled number's queue (its flow's, else [engine.dnis_queues]), else the
        line's own (``queue`` of its [[lines]] table), else the default queue."""
        config = self._config()
        flow = flow_for(config.flows, event.dnis)
        if flow is not None:
            return flow.queue
        queue = config.engine.dnis_queues.get(event.dnis)
        if queue is not None:
            return queue
        for line in config.lines:
            if line.name == event.line and line.queue:
                return line.queue
        return config.engine.default_queue

    def _flow(self, event: CallArrived) -> CallFlow | None:
        flow = flow_for(self._config().flows, event.dnis)
        if flow is None:
            return None
        try:
            carries = self._lines.lines[event.line].capabilities.carries_voice
        except KeyError:
            return None
        return flow if carries else None

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._callers

    # --- the line's side -------------------------------------------------------------

    async def line_event(
        self, event: LineEvent, identify: Callable[[str, str], Awaitable[CallerInfo]]
    ) -> bool:
        """Take the line event if it is this room's (True: the service does nothing more
        with it)."""
        match event:
            case CallArrived():
                flow = self._flow(event)
                if flow is None:
                    return False
                await self._arrived(event, flow, await identify(event.ani, event.caller_name))
                return True
            case CallerHungUp(call_id=call_id):
                return await self._hung_up(call_id)
            case DtmfReceived(call_id=call_id, key=key):
                return await self._key(call_id, key)
        return False

    async def _arrived(self, event: CallArrived, flow: CallFlow, caller: CallerInfo) -> None:
        config = self._config()
        self._lines[event.call_id] = event.line
        customer = caller.customer.language if caller.customer is not None else None
        language = language_for(flow, config.caller, customer)  # the queue's may follow
        call = _Caller(event.call_id, event.line, caller, language, flow, self._now(), wall_time())
        self._callers[call.call_id] = call
        try:
            await self._lines.line_for(call.call_id).answer(call.call_id)
        except TelephonyError as exc:  # gone already, or cannot be answered: no flow
            log.info("call %s: not answered for its flow (%s); it waits unanswered",
                     call.call_id, exc)  # fmt: skip
            self._callers.pop(call.call_id, None)
            self._route(ri.CallArrives(call_id=call.call_id, queue=flow.queue, caller=caller))
            return
        hours = BusinessHours(config.hours, config.caller.time_zone)
        call.run = FlowRun(
            flow,
            call.language,
            closed=lambda queue, _now: hours.closed(queue, wall_time()),
            clip_length=self._length,
        )
        await self._do(call, call.run.start(self._now()))

    async def _hung_up(self, call_id: str) -> bool:
        call = self._callers.pop(call_id, None)
        if call is None:
            return False
        self._wake.set()
        confirmed = call.waiting.confirmed_number if call.waiting is not None else None
        if call.routed and confirmed and self._queued(call_id):
            # Gone after confirming, before hearing the confirmation: still a callback.
            self._route(ri.CallerAsksCallback(call_id=call_id, number=confirmed))
            return True
        if call.routed:
            return False  # the router counts it (abandoned, or over)
        if call.message:
            # Gone while leaving a message, as most callers end one: the line closes the
            # file, and the message is called back as if they had pressed #.
            await self._message_done(call, call.caller.e164 or "")
        if not call.recorded:
            self._record(call, "voicemail" if call.taking is not None else "menu", "caller hung up")
        self._lines.pop(call_id, None)
        self._replan(call_id)
        return True

    async def _key(self, call_id: str, key: str) -> bool:
        call = self._callers.get(call_id)
        if call is None:
            return False
        now = self._now()
        if call.taking is not None:
            steps = call.taking.key(key, now)
        elif call.run is not None:
            steps = call.run.key(key, now)
        elif call.waiting is not None and self._queued(call_id):
            steps = call.waiting.key(key, now)
        else:
            return False  # talking with an agent: the agent's desk hears it
        await self._do(call, steps)
        return True

    async def exit_call(self, call_id: str, action: ExitAction) -> bool:
        """The router let the call leave its queue (an exit rule); a caller answered by
        its flow and sent to voicemail leaves a message instead of being hung up."""
        call = self._callers.get(call_id)
        if call is None or action is not ExitAction.VOICEMAIL:
            return False
        call.routed = False
        call.recorded = True  # the router wrote the record of the exit
        call.waiting = None
        await self._do(call, self._take_message(call, call.queue))
        return True

    def call_over(self, record: CallDetailRecord) -> None:
        """The router finished a call; forget it unless it is leaving a message (then
        its line, which the record let go, is kept until the message is done)."""
        call = self._callers.get(record.call_id)
        if call is not None and call.taking is None:
            del self._callers[record.call_id]
        elif call is not None and record.call_id not in self._lines:
            self._lines[record.call_id] = call.line

    # --- the voice room's side -------------------------------------------------------

    def caller_audio(self, call_id: str) -> CallerAudio | None:
        """What the caller of ``call_id`` hears while no agent talks with it (None: the
        call is not in a flow)."""
        call = self._callers.get(call_id)
        if call is None:
            return None
        waiting = call.waiting
        dialogue = call.taking is not None or (waiting is not None and waiting.in_dialogue)
        music = call.routed and not dialogue
        return CallerAudio(prompt=call.prompt, message=call.message, music=music)

    # --- the cores' steps ------------------------------------------------------------

    async def _do(self, call: _Caller, steps: list[FlowStep], *, held: bool = False) -> None:
        now = self._now()
        for i, step in enumerate(steps):
            if not held and isinstance(step, HangUp | CallMeBack):
                end = call.said_until + PLAYOUT_TAIL_S
                if end > now:  # let the last prompt reach the caller first
                    call.ending, call.ending_at = steps[i:], end
                    break
            try:
                await self._step(call, step)
            except CtiError as exc:
                log_limits.warning(log, "call %s: %s not carried out: %s", call.call_id, step, exc)
        self._wake.set()
        self._replan(call.call_id)

    async def _step(self, call: _Caller, step: FlowStep) -> None:
        match step:
            case Say(language=language, clips=clips):
                call.said_until = self._now() + play_time(self._length, language, clips)
                self._serial += 1
                files = tuple(p for p in (self._path(language, c) for c in clips) if p)
                call.prompt = Prompt(self._serial, files) if files else None
            case Enqueue(queue=queue):
                await self._enqueue(call, queue)
            case LeaveMessage(queue=queue):
                call.run = None
                await self._do(call, self._take_message(call, queue))
            case RecordMessage(queue=queue):
                call.message = message_file(call.call_id, date.today())
                call.queue = queue
            case MessageDone(number=number):
                await self._message_done(call, number)
            case CallMeBack(number=number):
                self._callers.pop(call.call_id, None)  # the router calls back; the line goes
                self._route(ri.CallerAsksCallback(call_id=call.call_id, number=number))
            case HangUp(reason=reason):
                await self._hang_up(call, reason)

    async def _enqueue(self, call: _Caller, queue: str) -> None:
        call.run = None
        call.prompt = None
        call.queue = queue
        call.routed = True
        caller = self._config().caller
        customer = call.caller.customer
        if not (call.flow.language == "customer" and customer is not None):
            call.language = caller.queue_languages.get(queue, call.language)
        settings = waiting_settings(caller)
        call.waiting = WaitingCaller(settings, call.language, call.caller.ani or None, speech,
                                     self._length)  # fmt: skip
        self._route(ri.CallArrives(call_id=call.call_id, queue=queue, caller=call.caller))
        await self._do(call, self._tick_waiting(call, self._now(), {}))

    def _take_message(self, call: _Caller, queue: str) -> list[FlowStep]:
        caller = self._config().caller
        number = call.caller.e164 or ""
        call.taking = MessageTaking(call.language, number, caller.voicemail_max_s, self._length)
        call.queue = queue
        return call.taking.start(queue, self._now())

    async def _message_done(self, call: _Caller, number: str) -> None:
        call.message = ""
        target = number or call.caller.e164 or ""
        if not target:
            log.info("call %s: message left with no number to call back", call.call_id)
            return
        try:
            call.callback = await self._schedule_callback(target, call.queue)
        except CtiError as exc:
            log.warning("call %s: the message's callback could not be scheduled: %s",
                        call.call_id, exc)  # fmt: skip
            return
        self._attach_message(call.callback, message_id(call.call_id))

    async def _hang_up(self, call: _Caller, reason: str) -> None:
        call.message = ""
        try:
            await self._lines.line_for(call.call_id).hang_up(call.call_id)
        except CtiError as exc:
            log.info("call %s: hang-up after its flow: %s", call.call_id, exc)
        if not call.recorded and not call.routed:  # the record forgets the call's line
            outcome = "voicemail" if call.taking is not None else "menu"
            self._record(call, outcome, reason)
        elif not call.routed:
            self._lines.pop(call.call_id, None)  # kept for its message after the record
        if call.taking is None:
            self._callers.pop(call.call_id, None)

    def _record(self, call: _Caller, outcome: str, reason: str) -> None:
        """The record of a call that never reached a queue (the router writes the others)."""
        call.recorded = True
        info = call.caller
        self._finished(CallDetailRecord(
            call_id=call.call_id, queue=call.queue or call.flow.queue, ani=info.ani,
            caller_kind=info.kind, customer_id=info.customer.id if info.customer else None,
            segment=info.segment, value=info.value, arrived_at=call.arrived_at,
            ended_at=self._now(), outcome=outcome, exit_action=reason,
            started_wall=call.arrived_wall,
        ))  # fmt: skip

    # --- time ------------------------------------------------------------------------

    async def serve(self) -> None:
        """Tick the cores at their deadlines until cancelled."""
        while True:
            deadline = self._next_deadline()
            delay = None if deadline is None else max(0.0, deadline - self._now())
            await wait_for_timer(self._wake, delay, self._retry, self._now())
            try:
                await self.tick(self._now())
                self._retry.succeeded()
            except Exception:
                self._retry.failed(self._now())
                log_limits.exception(log, "caller flows' timers failed; the engine goes on")

    async def tick(self, now: float) -> None:
        """Everything due at ``now``."""
        estimates: dict[str, dict[str, tuple[int, float]]] = {}
        for call in list(self._callers.values()):
            if call.ending_at is not None:
                if now >= call.ending_at:
                    steps, call.ending, call.ending_at = call.ending, [], None
                    await self._do(call, steps, held=True)
                continue
            if call.taking is not None:
                steps = call.taking.tick(now)
            elif call.run is not None:
                steps = call.run.tick(now)
            elif call.waiting is not None and self._queued(call.call_id):
                steps = self._tick_waiting(call, now, estimates)
            else:
                continue
            if steps:
                await self._do(call, steps)

    def _tick_waiting(
        self, call: _Caller, now: float, estimates: dict[str, dict[str, tuple[int, float]]]
    ) -> list[FlowStep]:
        assert call.waiting is not None
        queue = self._router.call_queue(call.call_id)
        known = estimates.get(queue)
        if known is None:
            known = estimates[queue] = {
                e.call_id: (e.position, e.wait_s) for e in self._router.estimated_waits(queue, now)
            }
        position, wait = known.get(call.call_id, (1, 0.0))
        place = min(position, speech.MAX_NUMBER)
        return call.waiting.tick(now, place, wait if wait != float("inf") else None, queue)

    def _next_deadline(self) -> float | None:
        times: list[float | None] = []
        for call in self._callers.values():
            if call.ending_at is not None:
                times.append(call.ending_at)
            elif call.taking is not None:
                times.append(call.taking.next_deadline())
            elif call.run is not None:
                times.append(call.run.next_deadline())
            elif call.waiting is not None and self._queued(call.call_id):
                times.append(call.waiting.next_deadline())
        due = [t for t in times if t is not None]
        return min(due) if due else None

    def _queued(self, call_id: str) -> bool:
        """Waiting on the line for an agent (not a callback, whose line is released)."""
        try:
            phase = self._router.call_phase(call_id)
            return phase is CallPhase.QUEUED and self._router.call_kind(call_id) != "callback"
        except RoutingError:
            return False

    # --- clips -----------------------------------------------------------------------

    def _path(self, language: str, clip: str) -> str:
        path = self.prompts.path(language, clip)
        if not path and (language, clip) not in self._warned:
            self._warned.add((language, clip))
            log.warning("prompt %s/%s cannot be played: %s", language, clip,
                        self.prompts.problems.get((language, clip), "unknown"))  # fmt: skip
        return path

    def _length(self, language: Language, clip: str) -> float:
        return self.prompts.length(language, clip)
