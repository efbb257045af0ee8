"""One caller's way through the call flow of the dialled number: the greeting, the menus
and their keys, timeouts and retries, and closed queues. Sans-I/O: keys and ``now`` in,
:mod:`scripts_engine.flow_steps` out; :meth:`FlowRun.next_deadline` says when to
:meth:`~FlowRun.tick`.

- The greeting and the entry menu's prompt are one ``Say``. The time for a key starts
  when the prompt ends (:data:`~scripts_engine.flow_steps.ClipLength`); a key during a
  prompt acts at once (barge-in: the shell stops a prompt when a new ``Say`` or another
  step comes).
- A key the menu does not list, or no key in ``timeout_s``, says the invalid-key or
  no-key prompt and the menu again; after ``max_retries`` of them the caller goes to the
  menu's ``after_retries`` (a sub-menu starts its own count).
- A queue closed by its ``[[hours]]`` says its closed prompt, then ``HangUp`` or
  ``LeaveMessage``; when every queue the flow can reach is closed, that is said right
  after the greeting instead of a menu no key of which could help.
- The flow ends with ``Enqueue``, ``LeaveMessage`` or ``HangUp`` (:attr:`FlowRun.outcome`);
  it says nothing more after that.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

from cti.call_flows import CallFlow, Hours, Menu, Target, parse_target
from scripts_engine.flow_steps import (
    ClipLength,
    Enqueue,
    FlowStep,
    HangUp,
    Language,
    LeaveMessage,
    Say,
)
from scripts_engine.waiting_caller import play_time

#: (queue, now) -> the ``[[hours]]`` rule keeping the queue closed at ``now``, or None
#: while it is open (the shell binds its wall clock: ``BusinessHours.closed``).
ClosedRule = Callable[[str, float], Hours | None]

Outcome = Enqueue | LeaveMessage | HangUp


class _Phase(Enum):
    NEW = "new"
    GREETING = "greeting"  # a flow without a menu: the greeting plays, then the queue
    MENU = "menu"  # a menu's prompt plays or the caller may press a key
    CLOSING = "closing"  # a closed queue's prompt plays
    DONE = "done"


def always_open(queue: str, now: float) -> Hours | None:
    """A :data:`ClosedRule` for centers without ``[[hours]]``."""
    return None


class FlowRun:
    """One call's run of ``flow``, in ``language`` (already chosen: see
    :func:`cti.call_flows.language_for`)."""

    def __init__(
        self,
        flow: CallFlow,
        language: Language,
        closed: ClosedRule = always_open,
        clip_length: ClipLength = lambda language, clip: 0.0,
    ) -> None:
        self.flow = flow
        self.language: Language = language
        self._closed = closed
        self._clip_length = clip_length
        self._phase = _Phase.NEW
        self._deadline: float | None = None
        self._menu: Menu | None = None
        self._failures = 0
        self._closing: tuple[str, Hours] | None = None
        self.outcome: Outcome | None = None

    @property
    def done(self) -> bool:
        return self._phase is _Phase.DONE

    @property
    def menu(self) -> str:
        """The menu the caller is in ("" outside menus)."""
        return self._menu.name if self._menu and self._phase is _Phase.MENU else ""

    def next_deadline(self) -> float | None:
        """When :meth:`tick` has something to do; None before :meth:`start` and when done."""
        return self._deadline

    def start(self, now: float) -> list[FlowStep]:
        """The call is answered: the greeting, then the entry menu (or the queue)."""
        if self._phase is not _Phase.NEW:
            return []
        greeting = (self.flow.greeting,) if self.flow.greeting else ()
        all_closed = self._all_closed(now)
        if all_closed is not None:
            return self._close(*all_closed, now, before=greeting)
        if self.flow.menu:
            return self._enter(self.flow.menu_named(self.flow.menu), now, before=greeting)
        self._phase = _Phase.GREETING
        return self._say(greeting, now, wait=0.0) or self._route(
            Target("queue", self.flow.queue), now
        )

    def key(self, key: str, now: float) -> list[FlowStep]:
        """A key the caller pressed; outside a menu (greeting, closed prompt, done) it
        does nothing. Any text is safe: one that is no listed key is a wrong key."""
        if self._phase is not _Phase.MENU or self._menu is None:
            return []
        target = self._menu.keys.get(key)
        if target is None:
            return self._failed(self._menu.invalid_prompt, now)
        return self._route(parse_target(target), now, f"key {key} in menu {self._menu.name}")

    def tick(self, now: float) -> list[FlowStep]:
        """What is due at ``now``: a menu's time for a key is up, the greeting or the
        closed prompt has ended."""
        if self._deadline is None or now < self._deadline:
            return []
        if self._phase is _Phase.MENU and self._menu is not None:
            return self._failed(self._menu.no_key_prompt, now)
        if self._phase is _Phase.GREETING:
            return self._route(Target("queue", self.flow.queue), now)
        if self._phase is _Phase.CLOSING and self._closing is not None:
            queue, rule = self._closing
            if rule.closed == "voicemail":
                return self._finish(LeaveMessage(queue))
            return self._finish(HangUp(f"queue {queue} closed"))
        return []

    # -- the steps

    def _route(self, target: Target, now: float, why: str = "") -> list[FlowStep]:
        if target.kind == "queue":
            rule = self._closed(target.name, now)
            if rule is not None:
                return self._close(target.name, rule, now)
            return self._finish(Enqueue(target.name))
        if target.kind == "voicemail":
            return self._finish(LeaveMessage(target.name))
        if target.kind == "menu":
            return self._enter(self.flow.menu_named(target.name), now)
        if target.kind == "repeat" and self._menu is not None:
            return self._say((self._menu.prompt,), now, wait=self._menu.timeout_s)
        return self._finish(HangUp(f"hangup: {why}"))

    def _enter(self, menu: Menu, now: float, before: tuple[str, ...] = ()) -> list[FlowStep]:
        self._phase = _Phase.MENU
        self._menu = menu
        self._failures = 0
        return self._say((*before, menu.prompt), now, wait=menu.timeout_s)

    def _failed(self, prompt: str, now: float) -> list[FlowStep]:
        """A wrong key or no key: the menu again, or after its retries its exit."""
        assert self._menu is not None
        self._failures += 1
        if self._failures > self._menu.max_retries:
            why = f"{self._failures} wrong or no keys in menu {self._menu.name}"
            return self._route(self.flow.after_retries(self._menu), now, why)
        clips = ((prompt,) if prompt else ()) + (self._menu.prompt,)
        return self._say(clips, now, wait=self._menu.timeout_s)

    def _close(
        self, queue: str, rule: Hours, now: float, before: tuple[str, ...] = ()
    ) -> list[FlowStep]:
        self._phase = _Phase.CLOSING
        self._closing = (queue, rule)
        prompt = (rule.closed_prompt,) if rule.closed_prompt else ()
        return self._say((*before, *prompt), now, wait=0.0) or self.tick(now)

    def _all_closed(self, now: float) -> tuple[str, Hours] | None:
        """(queue, rule) to say at once when no queue the flow reaches is open; the
        flow's own queue first."""
        queues = sorted(self.flow.queues(), key=lambda q: (q != self.flow.queue, q))
        rules = [(q, self._closed(q, now)) for q in queues]
        if not rules or any(rule is None for _, rule in rules):
            return None
        queue, rule = rules[0]
        assert rule is not None
        return queue, rule

    def _say(self, clips: tuple[str, ...], now: float, wait: float) -> list[FlowStep]:
        """Say ``clips`` and be due ``wait`` seconds after they end; nothing said (no
        clips): due at once, and no step (the caller goes on)."""
        if not clips:
            self._deadline = now + wait
            return []
        self._deadline = now + play_time(self._clip_length, self.language, clips) + wait
        return [Say(self.language, clips)]

    def _finish(self, outcome: Outcome) -> list[FlowStep]:
        self._phase = _Phase.DONE
        self._deadline = None
        self.outcome = outcome
        return [outcome]
