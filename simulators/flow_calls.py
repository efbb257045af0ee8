"""Callers of a dialled number with a call flow, in the discrete-event day.

The real cores decide, on virtual time: :class:`~scripts_engine.flow_runner.FlowRun`
plays the greeting and menus (their lengths are the shipped prompts', from
:class:`~telephony_adapters.media.prompt_files.PromptFiles`) and routes each key to a
queue, a sub-menu or voicemail; queued, :class:`~scripts_engine.waiting_caller.WaitingCaller`
announces the place and wait and offers the callback (virtual hold) at each
announcement; :class:`~scripts_engine.waiting_caller.MessageTaking` takes a message.
This module only plays the caller: each time a menu's prompt plays it draws a key (or a
hang-up, or nothing) from the traffic's ``keys``; at each callback offer it accepts with
``callback_take_up`` and then confirms its number; a message lasts ``message_s``.

As the engine counts them (REFERENCE 1): the call joins the router when its menu is
done, so menu time is no queue wait and patience starts there; a caller who hangs up
in the menu is no abandon (counted apart: :attr:`FlowCounts.menu_hang_ups`); a
confirmed callback is the router's ``CallerAsksCallback``; a message becomes a callback
task of its queue (``CallbackScheduled``), whose record is kept apart from the callers'.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from cti.call_flows import language_for
from cti.errors import RoutingError
from cti.models import CallDetailRecord, CallerInfo
from queue_engine import inputs as ri
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
    CALLBACK_OFFER,
    CONFIRM_KEY,
    CONFIRM_OR_OTHER,
    END_KEY,
    MessageTaking,
    WaitingCaller,
    play_time,
    waiting_settings,
)
from simulators.scenario import HANG_UP, Scenario, Traffic, scenario_flow
from telephony_adapters.media import speech
from telephony_adapters.media.prompt_files import PromptFiles


@dataclass(slots=True)
class FlowCounts:
    """What the flows did in one day, for callers who called in the measured window
    (after the warm-up, before the end of arrivals)."""

    callers: int = 0
    """Callers who reached a flow."""
    queued: dict[str, int] = field(default_factory=dict)
    """Queue -> callers the flow put in it."""
    menu_hang_ups: int = 0
    """Callers who hung up in the greeting or a menu (no abandon: never queued)."""
    goodbyes: int = 0
    """Calls the flow ended (a hangup key, too many wrong keys with a hangup exit)."""
    messages: int = 0
    """Voicemail messages left (each a callback task of its queue)."""
    callbacks_asked: int = 0
    """Queued callers who took the callback offer and confirmed (virtual hold)."""
    message_callbacks: list[CallDetailRecord] = field(default_factory=list)
    """The records of the messages' callback tasks (kept out of the callers' figures)."""


class FlowWorld(Protocol):
    """What the day's simulation gives the flows (``simulators.des``)."""

    @property
    def now(self) -> float: ...

    def at(self, t: float, fn: Callable[[], None]) -> None: ...

    def enqueue(self, call_id: str, queue: str, caller: CallerInfo) -> None: ...

    def waiting(self, call_id: str) -> bool: ...

    def ask_callback(self, call_id: str, number: str) -> None: ...

    def add_task(self, task: ri.CallbackScheduled, traffic: Traffic) -> None: ...

    def flow_over(self, call_id: str) -> None: ...


@dataclass(slots=True)
class _Caller:
    call_id: str
    traffic: Traffic
    caller: CallerInfo
    language: Language
    counted: bool
    rng: random.Random
    run: FlowRun | None = None
    waiting: WaitingCaller | None = None
    taking: MessageTaking | None = None
    queue: str = ""
    serial: int = 0
    """Bumped at every step: events scheduled before it are stale."""
    committed: bool = False
    """In the callback dialogue: the caller no longer gives up."""


class CallerFlows:
    """The callers in a flow on one simulated day."""

    def __init__(self, scenario: Scenario, world: FlowWorld, router: Router) -> None:
        self._scenario = scenario
        self._world = world
        self._router = router
        self._prompts = PromptFiles(scenario.caller.prompts_dir)
        c = scenario.caller
        self._settings = waiting_settings(c)
        self._callers: dict[str, _Caller] = {}
        self._tasks: set[str] = set()
        self.counts = FlowCounts()

    def _length(self, language: Language, clip: str) -> float:
        return self._prompts.length(language, clip)

    # --- the day's side --------------------------------------------------------------

    def arrive(
        self, call_id: str, traffic: Traffic, caller: CallerInfo, rng: random.Random
    ) -> None:
        """A caller dialled ``traffic.flow``: the greeting and the entry menu. ``rng``
        is the caller's own random stream (its keys, take-up, message)."""
        now = self._world.now
        flow = scenario_flow(self._scenario, traffic)
        language = language_for(flow, self._scenario.caller, None)
        counted = self._scenario.warm_up_s <= now < self._scenario.duration_s
        call = _Caller(call_id, traffic, caller, language, counted, rng)
        call.run = FlowRun(flow, language, clip_length=self._length)
        self._callers[call_id] = call
        if counted:
            self.counts.callers += 1
        self._do(call, call.run.start(now))

    def holds(self, call_id: str) -> bool:
        """True while the caller is busy with the callback dialogue (it does not give up)."""
        call = self._callers.get(call_id)
        return call is not None and call.committed

    def take_record(self, cdr: CallDetailRecord) -> bool:
        """Keep a message callback's record apart (True: it was one)."""
        if cdr.call_id not in self._tasks:
            return False
        self._tasks.discard(cdr.call_id)
        if cdr.arrived_at < self._scenario.duration_s:
            self.counts.message_callbacks.append(cdr)
        return True

    # --- the cores' steps ------------------------------------------------------------

    def _do(self, call: _Caller, steps: list[FlowStep]) -> None:
        call.serial += 1
        for step in steps:
            self._step(call, step)
        self._schedule_tick(call)

    def _step(self, call: _Caller, step: FlowStep) -> None:
        now = self._world.now
        match step:
            case Say(language=language, clips=clips):
                self._heard(call, now + play_time(self._length, language, clips), clips)
            case Enqueue(queue=queue):
                self._enqueue(call, queue)
            case LeaveMessage(queue=queue):
                call.run = None
                max_s = self._scenario.caller.voicemail_max_s
                number = call.caller.e164 or ""
                call.taking = MessageTaking(call.language, number, max_s, self._length)
                call.queue = queue
                self._do(call, call.taking.start(queue, now))
            case RecordMessage():
                length = call.traffic.message_s.draw(call.rng)
                self._press(call, now + length, END_KEY)
            case MessageDone(number=number):
                self._message(call, number)
            case CallMeBack(number=number):
                call.committed = False
                self._callers.pop(call.call_id, None)
                if call.counted:
                    self.counts.callbacks_asked += 1
                self._world.ask_callback(call.call_id, number)
            case HangUp():
                if call.run is not None and call.counted:
                    self.counts.goodbyes += 1
                self._over(call)

    def _heard(self, call: _Caller, end: float, clips: tuple[str, ...]) -> None:
        """A prompt plays until ``end``: the caller decides what it does after it."""
        if call.run is not None and call.run.menu:
            choice = _choose(call.rng, call.traffic.keys.get(call.run.menu, {}))
            if choice == HANG_UP:
                self._schedule(
                    call, end + call.traffic.key_delay_s, lambda: self._menu_hang_up(call)
                )
            elif choice:
                self._press(call, end + call.traffic.key_delay_s, choice)
        elif call.waiting is not None:
            if CONFIRM_OR_OTHER in clips:
                self._press(call, end + call.traffic.key_delay_s, CONFIRM_KEY)
            elif CALLBACK_OFFER in clips and call.rng.random() < call.traffic.callback_take_up:
                call.committed = True
                self._press(call, end + call.traffic.key_delay_s, self._settings.callback_key)

    def _enqueue(self, call: _Caller, queue: str) -> None:
        call.run = None
        call.queue = queue
        if call.counted:
            self.counts.queued[queue] = self.counts.queued.get(queue, 0) + 1
        self._world.enqueue(call.call_id, queue, call.caller)
        call.waiting = WaitingCaller(
            self._settings, call.language, call.caller.ani, speech, self._length
        )
        self._tick_waiting(call)

    def _message(self, call: _Caller, number: str) -> None:
        if call.counted:
            self.counts.messages += 1
        if not number:
            return
        task_id = f"{call.call_id}-message"
        self._tasks.add(task_id)
        self._world.add_task(
            ri.CallbackScheduled(call_id=task_id, queue=call.queue, caller=call.caller,
                                 due=self._world.now, number=number),
            call.traffic,
        )  # fmt: skip

    def _menu_hang_up(self, call: _Caller) -> None:
        if call.counted:
            self.counts.menu_hang_ups += 1
        self._over(call)

    def _over(self, call: _Caller) -> None:
        call.serial += 1
        self._callers.pop(call.call_id, None)
        self._world.flow_over(call.call_id)

    # --- time ------------------------------------------------------------------------

    def _schedule(self, call: _Caller, t: float, fn: Callable[[], None]) -> None:
        serial = call.serial

        def fire() -> None:
            if call.serial == serial and call.call_id in self._callers:
                fn()

        self._world.at(t, fire)

    def _press(self, call: _Caller, t: float, key: str) -> None:
        self._schedule(call, t, lambda: self._key(call, key))

    def _key(self, call: _Caller, key: str) -> None:
        now = self._world.now
        if call.taking is not None:
            self._do(call, call.taking.key(key, now))
        elif call.run is not None:
            self._do(call, call.run.key(key, now))
        elif call.waiting is not None and self._queued(call):
            self._do(call, call.waiting.key(key, now))

    def _schedule_tick(self, call: _Caller) -> None:
        if call.call_id not in self._callers:
            return
        if call.taking is not None:
            due = call.taking.next_deadline()
        elif call.run is not None:
            due = call.run.next_deadline()
        elif call.waiting is not None:
            due = call.waiting.next_deadline()
        else:
            return
        if due is not None:
            self._schedule(call, due, lambda: self._tick(call))

    def _tick(self, call: _Caller) -> None:
        now = self._world.now
        if call.taking is not None:
            self._do(call, call.taking.tick(now))
        elif call.run is not None:
            self._do(call, call.run.tick(now))
        elif call.waiting is not None:
            self._tick_waiting(call)

    def _tick_waiting(self, call: _Caller) -> None:
        """The queued caller's announcements, while it waits on the line."""
        assert call.waiting is not None
        if not self._queued(call):
            self._callers.pop(call.call_id, None)  # answered, gone or called back
            return
        now = self._world.now
        queue = self._router.call_queue(call.call_id)
        position, wait = 1, 0.0
        for e in self._router.estimated_waits(queue, now):
            if e.call_id == call.call_id:
                position, wait = e.position, e.wait_s
                break
        place = min(position, speech.MAX_NUMBER)
        said = wait if wait != float("inf") else None
        self._do(call, call.waiting.tick(now, place, said, queue))

    def _queued(self, call: _Caller) -> bool:
        if not self._world.waiting(call.call_id):
            return False
        try:
            return self._router.call_phase(call.call_id) is CallPhase.QUEUED
        except RoutingError:  # the router forgot it: no longer queued
            return False


def _choose(rng: random.Random, shares: dict[str, float]) -> str:
    """A key (or hang_up) by its share; "" for nothing."""
    if not shares:
        return ""
    u = rng.random()
    for key, share in shares.items():
        u -= share
        if u < 0:
            return key
    return ""
