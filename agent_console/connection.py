"""The console's connection to the engine across a broker: resync and the offline banner.

:class:`ConsoleLink` sits between the desktop and the bus and keeps the
:class:`cti.bus.memory.Bus` interface, so the desktop does not change. It remembers each of
the agent's commands until the engine answers it (a :class:`~cti.protocol.CommandResult`
with its ``command_id``, or the event an accept, reject or hang-up caused, naming it:
:func:`~cti.protocol.answer`). Whenever the bus comes back online (and now and then while
commands go unanswered) it asks the engine for a snapshot
(:class:`~cti.protocol.RequestSnapshot`: the engine publishes the agent's state again,
retained, and its offer if one is pending), and once the engine has answered that, it
sends again every command still unanswered, with its original id. The engine applies a
command once per id, so nothing is applied twice, and wrap-up work done while the
broker was unreachable is not lost: it waits in the bus and in the link until the
engine has it.

The link also follows the engine's own presence (:class:`~cti.protocol.EnginePresence`,
retained, offline as the engine stops or as its last will): the broker may be up with
no engine behind it, and then nothing the agent does is answered and no call comes.

:class:`ConnectionBanner` shows "offline" (why, when the next attempt is, how many
actions wait to be sent) and "engine offline" (since when, what waits); "Back online"
only once the broker or the engine is really back. :class:`NetworkedDesktop` is the agent
desktop with the link and the banner, used by ``cti console``; while the engine is
offline its state bar is struck through (the state shown is the last the engine said).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from agent_console.desktop import AgentDesktop
from agent_console.widgets import StateBar
from cti import log_limits, topics
from cti.bus.memory import Bus, Subscription
from cti.bus.mqtt import BusStatus, ConnectionState, MqttBus
from cti.bus.status_feed import StatusFeed
from cti.clock import wall_time
from cti.protocol import EnginePresence, Message, RequestSnapshot, answer, is_command

log = logging.getLogger(__name__)

#: Unanswered commands kept at most (the oldest go first beyond it).
MAX_UNANSWERED = 200
#: While commands go unanswered and the bus is online, probe the engine this often.
RETRY_S = 5.0


@dataclass(frozen=True, slots=True)
class LinkStatus:
    """What the banner shows: the bus's connection (None on the in-process bus), the
    commands not yet answered, whether a resync is under way, and the engine's presence
    (None: not heard, an older engine; else whether it serves, and since when)."""

    bus: BusStatus | None
    unanswered: int = 0
    resyncing: bool = False
    engine: bool | None = None
    engine_since_wall: float | None = None
    back: bool = False
    """The broker or the engine came back: the resync under way follows a real return."""

    @property
    def broker_online(self) -> bool:
        return self.bus is None or self.bus.online

    @property
    def online(self) -> bool:
        """The broker is reachable and the engine behind it not known to be gone."""
        return self.broker_online and self.engine is not False


class ConsoleLink:
    """The bus as the console sees it (see the module docstring). Run :meth:`run` as a
    task for as long as the console lives."""

    def __init__(self, bus: Bus, agent_id: str, *, retry_s: float = RETRY_S) -> None:
        self.bus = bus
        self.agent_id = agent_id
        self.retry_s = retry_s
        self._unanswered: OrderedDict[str, tuple[str, Message, float]] = OrderedDict()
        """command id -> (topic, command, when it was last sent, loop time)."""
        self._snapshot_id: str | None = None
        self._snapshot_asked = 0.0
        self._resync_due = False
        self._was_online = False
        self._engine: bool | None = None
        self._engine_since = 0.0
        self._back = False
        self._active = False
        """Set once the agent sent anything: before that there is nothing to resync."""
        self._feed: StatusFeed[LinkStatus] = StatusFeed(lambda: self.status)
        self._wake = asyncio.Event()
        self._resending: set[asyncio.Task[None]] = set()
        """Resends under way (held here: the loop keeps only weak references to tasks)."""
        self.resyncs = 0
        """Snapshots the engine answered after a reconnection or a silence."""

    # --- the bus interface -----------------------------------------------------------

    async def publish(self, topic: str, message: Message, *, retain: bool = False) -> None:
        if (
            is_command(message)
            and topic == topics.agent_commands(self.agent_id)
            and not isinstance(message, RequestSnapshot)
        ):
            self._active = True
            now = asyncio.get_running_loop().time()
            self._unanswered[message.command_id] = (topic, message, now)
            while len(self._unanswered) > MAX_UNANSWERED:
                old_id, (_, old, _) = self._unanswered.popitem(last=False)
                log_limits.warning(
                    log, "unanswered %s %s given up: too many waiting", old.type, old_id
                )
            self._notify()
            self._wake.set()
        await self.bus.publish(topic, message, retain=retain)

    def subscribe(self, pattern: str) -> Subscription:
        return self.bus.subscribe(pattern)

    # --- state -----------------------------------------------------------------------

    @property
    def status(self) -> LinkStatus:
        bus = self.bus.status if isinstance(self.bus, MqttBus) else None
        resyncing = self._snapshot_id is not None
        return LinkStatus(bus, len(self._unanswered), resyncing, self._engine,
                          self._engine_since or None, resyncing and self._back)  # fmt: skip

    @property
    def unanswered(self) -> list[Message]:
        """The commands the engine has not answered yet, oldest first."""
        return [message for _, message, _ in self._unanswered.values()]

    def add_listener(self, listener: Callable[[LinkStatus], None]) -> Callable[[], None]:
        """Call ``listener`` with every new status; returns a function that stops it."""
        return self._feed.add_listener(listener)

    def watch(self) -> AsyncGenerator[LinkStatus, None]:
        """The current status, then each change."""
        return self._feed.watch()

    def _notify(self) -> None:
        self._feed.tell(self.status)

    # --- running ---------------------------------------------------------------------

    async def run(self) -> None:
        """Follow the engine's answers and the connection; resync when needed."""
        stop_bus_listener: Callable[[], None] = lambda: None  # noqa: E731
        if isinstance(self.bus, MqttBus):
            stop_bus_listener = self.bus.add_listener(self._on_bus_status)
        try:
            async with (
                self.bus.subscribe(topics.agent_events(self.agent_id)) as events,
                self.bus.subscribe(topics.engine_presence()) as engine,
                asyncio.TaskGroup() as group,
            ):
                group.create_task(self._follow(events), name=f"link-events-{self.agent_id}")
                group.create_task(self._follow(engine), name=f"link-engine-{self.agent_id}")
                group.create_task(self._tend(), name=f"link-resync-{self.agent_id}")
        finally:
            stop_bus_listener()

    def _on_bus_status(self, status: BusStatus) -> None:
        if status.online and not self._was_online:
            self._came_back(again=status.connects > 1)  # a new connection: the state again
        self._was_online = status.online
        self._notify()

    def _came_back(self, *, again: bool) -> None:
        self._resync_due = True
        self._snapshot_id = None
        self._back = self._back or again
        self._wake.set()

    async def _follow(self, events: Subscription) -> None:
        async for _topic, message in events:
            if isinstance(message, EnginePresence):
                self._engine_said(message)
            elif (result := answer(message)) is not None:
                self._answered(result.command_id)

    def _engine_said(self, presence: EnginePresence) -> None:
        was, self._engine = self._engine, presence.online
        if was is not presence.online:
            self._engine_since = presence.at_wall or wall_time()  # a will has no time
            if presence.online and was is False:
                self._came_back(again=True)  # the engine restarted: the state again
        self._notify()

    def _answered(self, command_id: str) -> None:
        if command_id == self._snapshot_id:
            self._snapshot_id = None
            self._back = False
            self.resyncs += 1
            self._resend()
        elif self._unanswered.pop(command_id, None) is None:
            return
        self._notify()

    def _resend(self) -> None:
        """The engine hears us again: what it has not answered goes again, same ids."""
        loop = asyncio.get_running_loop()
        for command_id, (topic, message, _) in list(self._unanswered.items()):
            log.info("sending %s %s again", message.type, command_id)
            self._unanswered[command_id] = (topic, message, loop.time())
            task = loop.create_task(self.bus.publish(topic, message))
            self._resending.add(task)
            task.add_done_callback(self._resending.discard)
            task.add_done_callback(_log_failure)
        self._wake.set()

    async def _tend(self) -> None:
        """Ask for a snapshot on reconnecting, and whenever a command or the last
        request has gone unanswered for ``retry_s`` (the engine may have restarted)."""
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._next_check(loop.time())):
                    await self._wake.wait()
            self._wake.clear()
            if self.status.online and self._active and self._due(loop.time()):
                await self._ask_snapshot()

    def _due(self, now: float) -> bool:
        if self._snapshot_id is not None:
            return now - self._snapshot_asked >= self.retry_s
        if self._resync_due:
            return True
        return bool(self._unanswered) and now - self._oldest_sent() >= self.retry_s

    def _next_check(self, now: float) -> float | None:
        if self._snapshot_id is not None:
            return max(0.0, self._snapshot_asked + self.retry_s - now)
        if self._unanswered:
            return max(0.0, self._oldest_sent() + self.retry_s - now)
        return None

    def _oldest_sent(self) -> float:
        return min(sent for _, _, sent in self._unanswered.values())

    async def _ask_snapshot(self) -> None:
        """A new id each time: a repeat of an answered id would not resend the state."""
        request = RequestSnapshot(agent_id=self.agent_id)
        self._resync_due = False
        self._snapshot_id = request.command_id
        self._snapshot_asked = asyncio.get_running_loop().time()
        self._notify()
        await self.bus.publish(topics.agent_commands(self.agent_id), request)


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log_limits.error(log, "resending a command failed: %r", task.exception())


class ConnectionBanner(Static):
    """One line above the desk while the engine's broker is out of reach."""

    DEFAULT_CSS = """
    ConnectionBanner {
        height: auto;
        padding: 0 1;
        background: $error 60%;
        color: $text;
        display: none;
    }
    ConnectionBanner.-shown { display: block; }
    ConnectionBanner.-resync { background: $warning 50%; }
    """

    def __init__(self, link: ConsoleLink, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.link = link
        self.shown_text = ""
        """What the banner says now ("" when hidden), for tests."""

    def on_mount(self) -> None:
        self.run_worker(self._follow(), name="connection-banner", group="connection")

    async def _follow(self) -> None:
        async for status in self.link.watch():
            self.show(status)

    def show(self, status: LinkStatus) -> None:
        text = banner_text(status)
        self.shown_text = text.plain
        self.update(text)
        self.set_class(bool(text.plain), "-shown")
        self.set_class(status.online and bool(text.plain), "-resync")


def banner_text(status: LinkStatus) -> Text:
    """ "Offline: ..." with the reason, the retry and the waiting actions; empty when
    all is well."""
    text = Text(no_wrap=False, end="")
    bus = status.bus
    waiting = status.unanswered
    actions = f"{waiting} action{'s' if waiting != 1 else ''}"
    if bus is not None and bus.state is ConnectionState.CONNECTING and bus.connects == 0:
        text.append("Connecting to ", style="bold")
        text.append(bus.broker)
        text.append("…")
    elif bus is not None and not bus.online:
        text.append("Offline", style="bold")
        text.append(": cannot reach the engine's broker ")
        text.append(bus.broker)
        if bus.error:
            text.append(f" ({bus.error})")
        if bus.retry_in_s is not None:
            text.append(f"; retrying in {math.ceil(bus.retry_in_s)} s")
        elif bus.gave_up:
            text.append("; not reconnecting: close the other one, then restart this console")
        text.append(".")
        _kept(text, waiting, actions)
    elif status.engine is False:
        text.append("Engine offline", style="bold")
        if status.engine_since_wall is not None:
            since = time.strftime("%H:%M", time.localtime(status.engine_since_wall))
            text.append(f" since {since}")
        text.append(": no calls come and the state shown is the last it sent.")
        _kept(text, waiting, actions)
    elif status.resyncing:
        text.append("Back online" if status.back else "Waiting for the engine", style="bold")
        text.append(": getting your state from it")
        if waiting:
            text.append(f"; {actions} to send")
        text.append("…")
    return text


def _kept(text: Text, waiting: int, actions: str) -> None:
    if waiting:
        text.append(f" {actions} kept, sent when it is back.")
    else:
        text.append(" Your work is kept.")


class NetworkedDesktop(AgentDesktop):
    """The agent desktop over a broker: the link under it, the banner above it."""

    CSS_PATH = AgentDesktop.CSS_PATH
    CSS = "StateBar.-stale { background: $error 40%; text-style: strike; }"

    def __init__(
        self, bus: Bus, agent_id: str, *, queues: Sequence[str] = (), **kwargs: Any
    ) -> None:
        self.link = ConsoleLink(bus, agent_id)
        super().__init__(self.link, agent_id, queues=queues, **kwargs)

    def compose(self) -> ComposeResult:
        yield ConnectionBanner(self.link, id="connection")
        yield from super().compose()

    def on_mount(self) -> None:
        self.run_worker(self.link.run(), name="console-link", group="connection")
        self.link.add_listener(self._mark_state)

    def _mark_state(self, status: LinkStatus) -> None:
        """The state bar shows the engine's last word: struck through while it is gone."""
        self.query_one(StateBar).set_class(status.engine is False, "-stale")
