"""The bus over an MQTT broker (Mosquitto), with the interface of the in-memory bus.

:class:`MqttBus` keeps :class:`cti.bus.memory.Bus`: ``publish(topic, message, retain=...)``
and ``subscribe(pattern)``; messages are the same JSON on the same ``cti/v1/...``
topics (:mod:`cti.topics`), so the engine, the consoles and the wallboard run on it
unchanged. ``docs/mqtt.md`` tells the whole story; in short:

* **QoS.** Every message goes at QoS 1 (at least once) except the queue snapshots
  (``queues/+/status`` and ``queues/+/calls``), which are QoS 0: the next one, a second
  later, supersedes a lost one. A message may arrive twice (after a reconnection);
  commands are idempotent by ``command_id`` and events and state are idempotent in the
  console, so a repeat is harmless.
* **Retained.** ``retain=True`` is an MQTT retained message. The bus also remembers the
  last retained message it sent on each topic and sends it again after every
  reconnection, so a broker that restarted without persistence gets its state back.
* **Presence.** A console's bus announces ``AgentPresence(online=True)`` (retained) on
  connecting, leaves ``online=False`` as its last will, and publishes that itself on a
  clean close. The engine's bus leaves ``EnginePresence(online=False)`` as its will
  (``last_will``); the engine announces itself online once ready (a retained publish,
  so sent again on every reconnection) and offline as it stops.
* **In flight.** At most ``max_in_flight`` publishes await the broker's acknowledgement;
  while the window is full, :meth:`MqttBus.publish` waits (back-pressure).
* **Offline.** While the broker is unreachable, publishes wait in an *outbox* (bounded,
  ``offline_limit``) and go out in order on reconnection, before anything newer.
  A retained publish replaces an older one of the same topic still in the outbox. When
  the outbox is full the **oldest** message is dropped (logged, counted in
  :attr:`BusStatus.dropped`): the newest state is worth more than the oldest, and a
  console's handful of commands never gets near the limit. Publishes that were in
  flight when the connection broke go back to the head of the outbox.
* **Reconnection.** Exponential backoff from ``reconnect_min_s`` to ``reconnect_max_s``
  with +-20% jitter; every subscription is made again on reconnection.
* **State.** :attr:`MqttBus.status` (a :class:`BusStatus`) and :meth:`MqttBus.watch` let
  a screen show "offline" and how much waits to be sent.

Its parts: the broker's address and the client ids (:mod:`cti.bus.broker`), the outbox
and in-flight window (:mod:`cti.bus.outbox`), one connection (:mod:`cti.bus.link`), the
status a screen shows (:mod:`cti.bus.bus_status`).
Use :func:`cti.bus.roles.open_bus` to get the in-memory bus (empty URL) or a running MQTT
bus from :class:`~cti.config.BrokerSettings`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import replace
from types import TracebackType
from typing import Any, Self

from cti import log_limits, topics
from cti.bus.broker import BrokerAddress, BrokerError, parse_broker_url
from cti.bus.bus_status import MAX_TAKEOVERS as MAX_TAKEOVERS
from cti.bus.bus_status import BusStatus as BusStatus
from cti.bus.bus_status import ConnectionState as ConnectionState
from cti.bus.link import (
    Acknowledged,
    Backoff,
    Connector,
    Link,
    LinkSettings,
    TakenOverError,
    aiomqtt_link,
    describe,
)
from cti.bus.outbox import DEFAULT_OFFLINE_LIMIT, InFlightWindow, Outbox, Outgoing, qos_for, strike
from cti.bus.queues import OneReaderQueue
from cti.bus.status_feed import StatusFeed
from cti.bus.subscriptions import SubscriptionTable
from cti.errors import ProtocolError
from cti.protocol import MAX_MESSAGE_BYTES, AgentPresence, Message, decode, encode, refusal

log = logging.getLogger(__name__)

#: Messages a persistent session delivers before anyone here subscribed, kept for them.
EARLY_LIMIT = 1000
#: Wait before reconnecting after a takeover (doubled at each one in a row).
TAKEOVER_WAIT_S = 60.0
#: A broker that does not say 0x8E (Mosquitto 2.0.11 just closes the socket) shows a
#: takeover as connections closed this soon after they opened, twice in a row with
#: nothing of ours unacknowledged: taken for one.
QUICK_LOSS_S = 5.0
QUICK_LOSSES = 2

_Sending = tuple[
    Link, set[asyncio.Future[None]], Callable[[Outgoing, Acknowledged, int], None] | None
]
"""While a connection's sender runs: its link, its deliveries' futures and its
``publish_then`` if it has one (publishes go straight out while nothing waits in the
outbox)."""


class _Sub:
    """One subscription of a :class:`MqttBus` (see :class:`cti.bus.memory.Subscription`)."""

    def __init__(self, bus: MqttBus, pattern: str) -> None:
        self._bus = bus
        self.pattern = pattern
        self.queue: OneReaderQueue[tuple[str, Message] | BrokerError] = OneReaderQueue()

    async def __aenter__(self) -> Self:
        await self._bus._attach(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._bus._detach(self)

    def __aiter__(self) -> AsyncIterator[tuple[str, Message]]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[tuple[str, Message]]:
        while True:
            item = await self.queue.get()
            if isinstance(item, BrokerError):
                raise item
            yield item


class MqttBus:
    """The bus over a broker. Start it with ``async with bus`` (or :meth:`start` /
    :meth:`close`); it connects in the background, and publishing and subscribing work
    before it is online (queued, then done on connecting).

    ``presence``: the agent id whose console this is; the bus then announces the agent
    online and leaves the offline announcement as its last will. ``persistent``: keep an
    MQTT session at the broker (the engine: commands sent while it was away, or while it
    was not running at all, wait for it there); give it a ``client_id`` stable across
    restarts (:func:`installation_client_id`). ``answer_refusals``: a command that does
    not decode is answered with a refusal on its sender's events topic (the engine).
    ``last_will``: (topic, message) the broker publishes, retained, if the connection
    dies (the engine's offline presence); a console's ``presence`` has its own.
    """

    def __init__(
        self,
        address: BrokerAddress | str,
        *,
        client_id: str = "",
        keepalive_s: float = 30.0,
        max_in_flight: int = 100,
        reconnect_min_s: float = 0.5,
        reconnect_max_s: float = 30.0,
        ca_file: str = "",
        presence: str | None = None,
        persistent: bool = False,
        answer_refusals: bool = False,
        last_will: tuple[str, Message] | None = None,
        offline_limit: int = DEFAULT_OFFLINE_LIMIT,
        connector: Connector | None = None,
        rng: random.Random | None = None,
        takeover_wait_s: float = TAKEOVER_WAIT_S,
    ) -> None:
        self.address = parse_broker_url(address) if isinstance(address, str) else address
        self.client_id = client_id or f"cti-{uuid.uuid4().hex[:12]}"
        self.keepalive_s = keepalive_s
        self.ca_file = ca_file
        self.persistent = persistent
        self.answer_refusals = answer_refusals
        self.presence_agent = presence
        self.last_will = last_will
        self._connector = connector or self._aiomqtt_connector
        self._backoff = Backoff(reconnect_min_s, reconnect_max_s, rng=rng)
        self.takeover_wait_s = takeover_wait_s
        self._resume = asyncio.Event()
        self._quick_losses = 0
        self._outbox = Outbox(offline_limit)
        self._waiting = self._outbox.items  # read on every publish: no __len__ call
        self._window = InFlightWindow(max_in_flight)
        self._in_flight = self._window.items
        self._retained: dict[str, Outgoing] = {}
        """The last retained publish handed to the broker, per topic (sent again on reconnect)."""
        self._subs: SubscriptionTable[_Sub] = SubscriptionTable()
        self._topics: dict[str, tuple[str | None, int]] = {}
        """Topic -> why it cannot be published on (None: it can) and its QoS."""
        self._link: Link | None = None
        self._subscribed: set[str] = set()
        self._changed = asyncio.Event()  # the outbox or the window changed
        self._draining = False  # close() waits for the window to empty
        self._sending: _Sending | None = None  # while the sender runs: see _Sending
        self._acked_on: Acknowledged = lambda ticket, error: None  # the link's, once it runs
        self._status = BusStatus(ConnectionState.CLOSED, self.address.display)
        self._feed: StatusFeed[BusStatus] = StatusFeed(lambda: self.status)
        self._task: asyncio.Task[None] | None = None
        self._online = asyncio.Event()
        self._early: deque[tuple[str, Message]] = deque()
        """A persistent session's messages that came before anyone subscribed to them."""
        self.dropped = 0
        """How many received payloads were dropped because they did not decode."""
        self.sent = 0
        """Publishes handed to the broker (one sent again after a reconnection counts again)."""
        self.received = 0
        """Messages received from the broker (those that did not decode too)."""
        self.refused = 0

    # --- life ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Start connecting (in the background); returns at once."""
        if self._task is None:
            self._set_status(state=ConnectionState.CONNECTING)
            self._task = asyncio.create_task(self._run(), name=f"mqtt:{self.client_id}")

    async def close(self, *, drain_s: float = 2.0) -> None:
        """Send what waits (for at most ``drain_s`` while online), announce the agent
        offline, and disconnect."""
        if self._task is None:
            return
        if self.presence_agent is not None:
            self._put(self._presence_message(online=False))
        if self._status.online:
            self._draining = True
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(drain_s):
                    while (len(self._outbox) or len(self._window)) and self._status.online:
                        self._changed.clear()
                        await self._changed.wait()
        task, self._task, self._draining = self._task, None, False
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self._set_status(state=ConnectionState.CLOSED, retry_in_s=None)

    async def wait_online(self) -> None:
        """Return once connected (bound the wait with ``asyncio.timeout``)."""
        await self._online.wait()

    # --- the bus interface -----------------------------------------------------------

    async def publish(self, topic: str, message: Message, *, retain: bool = False) -> None:
        """Publish ``message``. Online, waits while the in-flight window is full;
        offline, it waits in the outbox and this returns at once."""
        # publish_encoded's two lines, not a call to it: a coroutine made a publish less
        self.publish_payload(topic, encode(message), retain=retain)
        if len(self._waiting) >= self._window.size:
            await self._window_room()

    async def publish_encoded(
        self, topic: str, message: Message, payload: bytes, *, retain: bool = False
    ) -> None:
        """:meth:`publish` of ``message`` encoded already: ``payload`` is its
        :func:`~cti.protocol.encode`, sent as it is (the engine's offer, encoded once to
        measure its card and to send it)."""
        self.publish_payload(topic, payload, retain=retain)
        if len(self._waiting) >= self._window.size:  # no coroutine made while there is room
            await self._window_room()

    async def _window_room(self) -> None:
        """Online, wait while the in-flight window is full."""
        while len(self._waiting) >= self._window.size and self._status.online:
            self._changed.clear()
            await self._changed.wait()

    def publish_payload(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Queue raw bytes for ``topic``. A topic the broker would disconnect us for
        (:func:`cti.topics.topic_problem`) or a payload over
        :data:`~cti.protocol.MAX_MESSAGE_BYTES` is dropped with an error, never sent."""
        known = self._topics.get(topic)
        if known is None:
            if len(self._topics) > 100_000:
                self._topics.clear()
            known = self._topics[topic] = (topics.topic_problem(topic), qos_for(topic))
        problem, qos = known
        if problem is None and len(payload) > MAX_MESSAGE_BYTES:
            problem = f"a payload of {len(payload)} bytes (at most {MAX_MESSAGE_BYTES})"
        if problem is not None:
            shown = topic.encode("unicode_escape").decode("ascii")[:200]
            log_limits.error(log, "publish on %s refused: %s; dropped", shown, problem)
            return
        sending = self._sending
        if sending is not None and not self._waiting and len(self._in_flight) < self._window.size:
            self._hand(sending, Outgoing(topic, payload, qos, retain))  # _put's first case
            return
        self._put(Outgoing(topic, payload, qos, retain))

    def send_now(self) -> None:
        """Write what was published so far now, not at the end of the loop's turn (the
        engine's offer, before the rest of its call's messages are made)."""
        link = self._link
        if link is not None and self._status.online:
            send_now = getattr(link, "send_now", None)
            if send_now is not None:
                send_now()

    def subscribe(self, pattern: str) -> _Sub:
        return _Sub(self, pattern)

    # --- the connection's state ------------------------------------------------------

    @property
    def status(self) -> BusStatus:
        """The connection's state now, with the current outbox and window counts."""
        return replace(
            self._status,
            queued=len(self._outbox),
            in_flight=len(self._window),
            dropped=self._outbox.dropped,
        )

    def add_listener(self, listener: Callable[[BusStatus], None]) -> Callable[[], None]:
        """Call ``listener`` with every new status; returns a function that stops it."""
        return self._feed.add_listener(listener)

    def watch(self) -> AsyncGenerator[BusStatus, None]:
        """The current status, then each change (for a screen's worker)."""
        return self._feed.watch()

    def _set_status(self, **changes: Any) -> None:
        changes.setdefault("queued", len(self._outbox))
        changes.setdefault("in_flight", len(self._window))
        changes.setdefault("dropped", self._outbox.dropped)
        status = replace(self._status, **changes)
        if status == self._status:
            return
        self._status = status
        if status.online:
            self._online.set()
        else:
            self._online.clear()
        self._feed.tell(status)

    # --- the outbox ------------------------------------------------------------------

    def _put(self, item: Outgoing) -> None:
        sending = self._sending
        if sending is not None and not self._waiting and len(self._in_flight) < self._window.size:
            # Nothing waits before it: handed to the link now, without waking the sender
            # (a task switch and the outbox's round trip for each of ~10 publishes a call).
            self._hand(sending, item)
            return
        dropped = self._outbox.put(item)
        if dropped is not None:
            log_limits.warning(
                log,
                "broker %s unreachable and %d publishes waiting: dropped the oldest, on %s",
                self.address.display,
                self._outbox.limit,
                dropped.topic,
            )
        self._changed.set()
        if not self._status.online:
            self._set_status()

    def _presence_message(self, *, online: bool) -> Outgoing:
        agent = self.presence_agent or ""
        message = AgentPresence(agent_id=agent, online=online, client_id=self.client_id)
        return Outgoing(topics.agent_presence(agent), encode(message), 1, True)

    # --- subscriptions ---------------------------------------------------------------

    async def _attach(self, sub: _Sub) -> None:
        self._subs.add(sub)
        if self._early:
            early, self._early = self._early, deque()
            for topic, message in early:
                if topics.matches(sub.pattern, topic):
                    sub.queue.put_nowait((topic, message))
                else:
                    self._early.append((topic, message))
        link = self._link
        if link is None or not self._status.online:
            return  # subscribed on connecting
        try:
            await link.subscribe(sub.pattern, self._subs.ident(sub.pattern))
            self._subscribed.add(sub.pattern)
        except BrokerError:
            self._subs.remove(sub)
            raise
        except Exception as exc:  # the link broke meanwhile: subscribed on reconnecting
            log.debug("subscribe %s while the link broke: %r", sub.pattern, exc)

    async def _detach(self, sub: _Sub) -> None:
        if not self._subs.remove(sub) or self._subs.has_pattern(sub.pattern):
            return
        if self.persistent:
            # The session keeps it: what arrives while nobody here listens (the engine
            # is stopping, or stopped) waits for the next subscriber, here or in the
            # next process.
            return
        self._subscribed.discard(sub.pattern)
        link = self._link
        if link is not None and self._status.online:
            with contextlib.suppress(Exception):
                await link.unsubscribe(sub.pattern)

    def _dispatch(self, topic: str, payload: bytes, idents: tuple[int, ...] = ()) -> None:
        """Hand one message to the subscriptions it is for.

        The broker may send a message once per matching subscription (Mosquitto does
        with overlapping ones); the subscription identifiers it carries say which, so
        each of our subscriptions sees it once. Without identifiers, every local
        subscription matching the topic gets it.
        """
        self.received += 1
        try:
            message = decode(payload, where=topic)
        except ProtocolError as exc:
            self.dropped += 1
            self._refuse(topic, payload, exc)
            return
        targets = self._subs.targets(topic, idents)
        if not targets and self.persistent:
            # The session's backlog can come before anyone here has subscribed again.
            if len(self._early) >= EARLY_LIMIT:
                log_limits.error(
                    log, "%s: nobody subscribed yet and %d waiting; dropped", topic, EARLY_LIMIT
                )
                return
            self._early.append((topic, message))
            return
        for sub in targets:
            sub.queue.put_nowait((topic, message))

    def _refuse(self, topic: str, payload: bytes, exc: ProtocolError) -> None:
        """A message that does not decode: logged (rate-limited: the first, then a count),
        and with ``answer_refusals`` a command gets a refusal its sender can read."""
        self.refused += 1
        log_limits.error(log, "%s; dropped", exc)
        if self.answer_refusals:
            answer = refusal(topic, payload, str(exc))
            if answer is not None:
                reply, result = answer
                self._put(Outgoing(reply, encode(result), qos_for(reply)))

    # --- the connection loop ---------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._set_status(state=ConnectionState.CONNECTING, retry_in_s=None)
            error = ""
            opened: float | None = None
            said = False  # the broker said 0x8E
            try:
                async with self._connector() as link:
                    self._backoff.reset()
                    opened = time.monotonic()
                    error = await self._serve(link)
            except asyncio.CancelledError:
                self._teardown()
                raise
            except TakenOverError:
                said = True
            except Exception as exc:
                error = describe(exc)
            # Nothing of ours unacknowledged: a broker refusing a publish closes at once too.
            quiet = not len(self._window)
            self._teardown()
            quick = opened is not None and time.monotonic() - opened < QUICK_LOSS_S
            self._quick_losses = self._quick_losses + 1 if quick and quiet else 0
            # The engine never backs off for a takeover: routing must resume within seconds,
            # a guessed one may be a flapping broker, and a named one means someone holds
            # the engine's credentials - an error to see, not a reason to leave the centre.
            if self.persistent:
                if said:
                    error = "another client logged in with the engine's credentials took over"
                    log_limits.error(log, "broker %s: %s; taking it back", self.address.display,
                                     error)  # fmt: skip
            elif said or self._quick_losses >= QUICK_LOSSES:
                await self._after_takeover(self._status.taken_over + 1, said=said)
                continue
            if self._status.taken_over:
                self._set_status(taken_over=0)  # it ended for another reason: not a fight
            delay = self._backoff.next_delay()
            # Once per kind of failure, not once per attempt through a long outage.
            level = logging.DEBUG if error == self._status.error else logging.WARNING
            log.log(level, "broker %s: %s; retrying in %.1f s", self.address.display, error, delay)
            self._set_status(state=ConnectionState.OFFLINE, error=error, retry_in_s=delay)
            await asyncio.sleep(delay)

    async def _after_takeover(self, count: int, *, said: bool) -> None:
        """Do not fight another client of our broker user for the session: wait long
        (doubling), and at :data:`MAX_TAKEOVERS` in a row stop until :meth:`reconnect`.
        Not for the engine (``persistent``): it reconnects on its usual backoff."""
        who = "console" if self.presence_agent is not None else "client"
        user = self.address.username or self.client_id
        error = f"another {who} logged in as {user} took over this session"
        if not said:
            error += " (the broker closed it as soon as it opened)"
        if count >= MAX_TAKEOVERS:
            log.error("broker %s: %s %d times; not reconnecting", self.address.display, error,
                      count)  # fmt: skip
            self._set_status(
                state=ConnectionState.OFFLINE, error=error, retry_in_s=None, taken_over=count
            )
            self._resume.clear()
            await self._resume.wait()
            return
        delay = self.takeover_wait_s * 2 ** (min(count, MAX_TAKEOVERS) - 1)
        log.warning("broker %s: %s; trying again in %.0f s", self.address.display, error, delay)
        self._set_status(
            state=ConnectionState.OFFLINE, error=error, retry_in_s=delay, taken_over=count
        )
        self._resume.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._resume.wait()

    def reconnect(self) -> None:
        """Connect again now (after a takeover: take the session back)."""
        self._resume.set()
        if self._status.gave_up:
            self._set_status(taken_over=0)

    def _teardown(self) -> None:
        """The link is gone: unacknowledged publishes go back to the head of the outbox."""
        self._link = None
        self._sending = None
        self._subscribed.clear()
        back, poison = strike(self._window.take_all())
        if poison is not None:
            log_limits.error(
                log,
                "publish on %s was the first unacknowledged at %d broken connections in a "
                "row (the broker refuses it?); dropped",
                poison.topic.encode("unicode_escape").decode("ascii")[:200],
                poison.strikes,
            )
        for dropped in self._outbox.put_back(back):
            log_limits.warning(log, "outbox full: dropped the oldest publish, on %s", dropped.topic)
        self._changed.set()

    async def _serve(self, link: Link) -> str:
        """Run one connection until it breaks; return why it did."""
        self._link = link
        reader = asyncio.create_task(self._read(link), name=f"mqtt-read:{self.client_id}")
        sender: asyncio.Task[None] | None = None
        deliveries: set[asyncio.Future[None]] = set()
        try:
            # Subscribe again (also to what was subscribed meanwhile) before going online.
            while pending := self._subs.patterns() - self._subscribed:
                for pattern in sorted(pending):
                    try:
                        await link.subscribe(pattern, self._subs.ident(pattern))
                    except BrokerError as exc:
                        log_limits.error(log, "%s", exc)
                        for sub in self._subs.remove_pattern(pattern):
                            sub.queue.put_nowait(exc)
                        continue
                    self._subscribed.add(pattern)
            # The retained state we own, again (a broker that restarted empty gets it
            # back); anything newer already waiting in the outbox follows it.
            waiting = self._outbox.waiting_topics()
            again = [item for t, item in self._retained.items() if t not in waiting]
            if self.presence_agent is not None:
                again = [i for i in again if i.topic != topics.agent_presence(self.presence_agent)]
                again.insert(0, self._presence_message(online=True))
            self._outbox.put_back(again)
            self._set_status(
                state=ConnectionState.ONLINE, error="", connects=self._status.connects + 1
            )
            log.info("broker %s: connected as %s", self.address.display, self.client_id)
            self._sending = sending = (link, deliveries, getattr(link, "publish_then", None))
            self._acked_on = functools.partial(self._acknowledged, link)
            sender = asyncio.create_task(self._send(sending), name=f"mqtt-send:{self.client_id}")
            done, _ = await asyncio.wait({reader, sender}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                failure = task.exception()
                if isinstance(failure, TakenOverError):
                    raise failure
                if failure is not None:
                    return describe(failure)
            return "the connection ended"
        finally:
            self._sending = None
            running: list[asyncio.Future[None]] = [reader, *deliveries]
            running += [sender] if sender is not None else []
            for future in running:
                future.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def _read(self, link: Link) -> None:
        deliver_to = getattr(link, "deliver_to", None)
        if deliver_to is not None:  # the real link: each message as it is read (no task hop)
            deliver_to(self._deliver)
        async for topic, payload, idents in link.messages():
            self._deliver(topic, payload, idents)
        raise BrokerError("the broker closed the connection")

    def _deliver(self, topic: str, payload: bytes, idents: tuple[int, ...]) -> None:
        try:
            self._dispatch(topic, payload, idents)
        except Exception:
            log_limits.exception(log, "message on %s not delivered; going on", topic)

    async def _send(self, sending: _Sending) -> None:
        while True:
            while not (self._waiting and len(self._in_flight) < self._window.size):
                self._changed.clear()
                await self._changed.wait()
            self._hand(sending, self._outbox.pop())
            self._changed.set()

    def _hand(self, sending: _Sending, item: Outgoing) -> None:
        """Publish ``item`` on the link (the window has room): in flight until acknowledged."""
        if item.retain:
            self._retained[item.topic] = item
        self.sent += 1
        ticket = self._window.add(item)
        link, deliveries, then = sending
        if then is not None:  # the real link: told by the connection's callback, no future
            then(item, self._acked_on, ticket)  # and no object made a publish
            return
        sent = link.publish(item)
        ack = sent if isinstance(sent, asyncio.Future) else asyncio.ensure_future(sent)
        deliveries.add(ack)
        ack.add_done_callback(functools.partial(self._delivered, link, ticket, deliveries))

    def _delivered(
        self, link: Link, ticket: int, deliveries: set[asyncio.Future[None]], ack: Any
    ) -> None:
        deliveries.discard(ack)
        if not ack.cancelled():  # cancelled: the connection broke, it goes back to the outbox
            self._acknowledged(link, ticket, ack.exception())

    def _acknowledged(self, link: Link, ticket: int, error: BaseException | None) -> None:
        if error is not None:
            if not (self._link is link and self._status.online):
                return  # the connection broke: it goes back to the outbox
            # The link lives but refused this one: sending it again would not help.
            topic = getattr(self._in_flight.get(ticket), "topic", "?")
            log_limits.error(log, "publish on %s failed: %s; dropped", topic, describe(error))
        self._in_flight.pop(ticket, None)
        # Its place in the window is free: only the sender with publishes waiting, or
        # close(), waits for that (waking the idle sender at every PUBACK cost ~15
        # Python calls each).
        if self._waiting or self._draining:
            self._changed.set()

    def _aiomqtt_connector(self) -> contextlib.AbstractAsyncContextManager[Link]:
        will = None if self.presence_agent is None else self._presence_message(online=False)
        if will is None and self.last_will is not None:
            will = Outgoing(self.last_will[0], encode(self.last_will[1]), 1, True)
        return aiomqtt_link(
            LinkSettings(
                self.address,
                self.client_id,
                self.keepalive_s,
                ca_file=self.ca_file,
                persistent=self.persistent,
                will=will,
                max_in_flight=self._window.size,
            )
        )
