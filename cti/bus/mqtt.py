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
  clean close.
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

Use :func:`open_bus` to get the in-memory bus (empty URL) or a running MQTT bus from
:class:`~cti.config.BrokerSettings`, and :func:`resolve_broker_settings` to apply the
``CTI_BROKER_*`` environment variables and a ``--broker`` option on top of the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import random
import socket
import ssl
import time
import uuid
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from types import TracebackType
from typing import Any, Protocol, Self
from urllib.parse import quote, unquote, urlsplit

from pydantic import ValidationError

from cti import log_limits, topics
from cti.bus.memory import InMemoryBus
from cti.bus.status_feed import StatusFeed
from cti.config import BrokerSettings
from cti.errors import ConfigError, CtiError, ProtocolError
from cti.protocol import MAX_MESSAGE_BYTES, AgentPresence, Message, decode, encode, refusal

log = logging.getLogger(__name__)

#: Publishes kept while the broker is unreachable, by default.
DEFAULT_OFFLINE_LIMIT = 10_000
#: A persistent engine session lasts this long at the broker after a disconnection.
ENGINE_SESSION_EXPIRY_S = 3600
#: A publish in flight (the oldest unacknowledged) at this many broken connections in a
#: row is dropped: the broker disconnects for it (a topic or size it refuses), and sending
#: it first on every reconnection would keep the client off the broker for good.
MAX_DELIVERY_ATTEMPTS = 3
#: Messages a persistent session delivers before anyone here subscribed, kept for them.
EARLY_LIMIT = 1000
#: MQTT v5 DISCONNECT reason: another connection with this client id took the session.
SESSION_TAKEN_OVER = 0x8E
#: Takeovers in a row after which the bus stops reconnecting: with the broker's
#: ``use_username_as_clientid``, two clients of one user (a console opened twice) would
#: otherwise throw each other off for ever. The newer one keeps the session.
MAX_TAKEOVERS = 3
#: Wait before reconnecting after a takeover (doubled at each one in a row).
TAKEOVER_WAIT_S = 60.0
#: A broker that does not say 0x8E (Mosquitto 2.0.11 just closes the socket) shows a
#: takeover as connections closed this soon after they opened, twice in a row with
#: nothing of ours unacknowledged: taken for one.
QUICK_LOSS_S = 5.0
QUICK_LOSSES = 2
#: Patterns of the topics published at QoS 0 (superseded every status interval).
QOS0_PATTERNS = (topics.ALL_QUEUE_STATUS, topics.ALL_QUEUE_CALLS)
#: Environment variables read by :func:`resolve_broker_settings`, and the key each sets.
ENV_VARS: dict[str, str] = {
    "CTI_BROKER_URL": "url",
    "CTI_BROKER_CLIENT_ID": "client_id",
    "CTI_BROKER_KEEPALIVE_S": "keepalive_s",
    "CTI_BROKER_MAX_IN_FLIGHT": "max_in_flight",
    "CTI_BROKER_RECONNECT_MIN_S": "reconnect_min_s",
    "CTI_BROKER_RECONNECT_MAX_S": "reconnect_max_s",
    "CTI_BROKER_CA_FILE": "ca_file",
}
#: These two replace the user and password of the URL (keeps a password off the command line).
ENV_USERNAME = "CTI_BROKER_USERNAME"
ENV_PASSWORD = "CTI_BROKER_PASSWORD"


class BrokerError(CtiError):
    """The broker refused something (a login, a subscription) or cannot be reached."""


class SessionTakenOver(BrokerError):
    """The broker disconnected us for another connection with our client id (MQTT v5
    reason 0x8E): with ``use_username_as_clientid``, another client of the same user."""


# --- addresses and settings ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where the broker is and who we are there, from ``mqtt[s]://user:pass@host:port``."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None

    @property
    def display(self) -> str:
        """The address for messages and screens: never shows the password."""
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def parse_broker_url(url: str) -> BrokerAddress:
    """Parse ``mqtt://[user[:password]@]host[:port]`` (``mqtts://`` for TLS).

    The port defaults to 1883 (8883 for ``mqtts``); user and password may be
    percent-encoded. Raises :class:`ConfigError` naming the URL (without its password)
    and what is accepted.
    """
    accepted = "expected mqtt://[user:password@]host[:port] or mqtts://... for TLS"
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ConfigError(
            f"broker URL {_hide_password(url)!r} is not valid: {exc}; {accepted}"
        ) from None
    if parts.scheme not in ("mqtt", "mqtts"):
        shown = parts.scheme or "none"
        raise ConfigError(f"broker URL {_hide_password(url)!r}: scheme {shown!r}; {accepted}")
    if not parts.hostname:
        raise ConfigError(f"broker URL {_hide_password(url)!r} names no host; {accepted}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(
            f"broker URL {_hide_password(url)!r} has a path or query; {accepted} (nothing after)"
        )
    tls = parts.scheme == "mqtts"
    return BrokerAddress(
        host=parts.hostname,
        port=port if port is not None else (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def _hide_password(url: str) -> str:
    head, sep, tail = url.rpartition("@")
    if not sep or "://" not in head:
        return url
    scheme, _, userinfo = head.partition("://")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{tail}" if ":" in userinfo else url


def resolve_broker_settings(
    base: BrokerSettings,
    *,
    url: str | None = None,
    env: Mapping[str, str] | None = None,
    default_username: str | None = None,
) -> BrokerSettings:
    """The broker settings in force: the config file's ``[broker]`` (``base``), then the
    ``CTI_BROKER_*`` environment variables (:data:`ENV_VARS`), then ``url`` (``--broker``).

    ``CTI_BROKER_USERNAME`` and ``CTI_BROKER_PASSWORD`` replace the URL's user and
    password; ``default_username`` is the user when neither names one (a console's
    agent id). Raises :class:`ConfigError` naming the variable and the bad value.
    """
    env = os.environ if env is None else env
    changes: dict[str, Any] = {}
    for var, key in ENV_VARS.items():
        if env.get(var, "") != "":
            changes[key] = env[var]
    if url:
        changes["url"] = url
    try:
        settings = BrokerSettings.model_validate({**base.model_dump(), **changes})
    except ValidationError as exc:
        first = exc.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else "?"
        var = next((v for v, k in ENV_VARS.items() if k == key), key)
        raise ConfigError(
            f"broker setting {key} (from {var} or the config file): {first['msg']}"
        ) from None
    user, password = env.get(ENV_USERNAME, ""), env.get(ENV_PASSWORD, "")
    if settings.url and (user or password or default_username):
        address = parse_broker_url(settings.url)
        address = replace(
            address,
            username=user or address.username or default_username,
            password=password or address.password,
        )
        settings = settings.model_copy(update={"url": broker_url(address)})
    return settings


def broker_url(address: BrokerAddress) -> str:
    """The URL of ``address``, with its user and password (percent-encoded)."""
    auth = ""
    if address.username is not None:
        auth = quote(address.username, safe="")
        if address.password is not None:
            auth += ":" + quote(address.password, safe="")
        auth += "@"
    return f"{'mqtts' if address.tls else 'mqtt'}://{auth}{address.host}:{address.port}"


def qos_for(topic: str) -> int:
    """QoS 0 for the queue snapshots (superseded every second), QoS 1 for the rest."""
    return 0 if any(topics.matches(p, topic) for p in QOS0_PATTERNS) else 1


# --- the sans-I/O pieces ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One publish on its way to the broker (already encoded)."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
    strikes: int = 0
    """Broken connections while this was the oldest publish awaiting acknowledgement."""


class Outbox:
    """Publishes not yet handed to the broker, oldest first, at most ``limit``.

    When full, :meth:`put` drops the oldest and returns it. A retained publish replaces
    an older retained one of the same topic still waiting (only the newest state
    matters; it takes the newer place in the order).
    """

    def __init__(self, limit: int = DEFAULT_OFFLINE_LIMIT) -> None:
        if limit < 1:
            raise ValueError(f"outbox limit must be at least 1, got {limit}")
        self.limit = limit
        self._items: deque[Outgoing] = deque()
        self.dropped = 0
        """How many publishes were dropped because the outbox was full."""

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Any:
        return iter(tuple(self._items))

    def put(self, item: Outgoing) -> Outgoing | None:
        """Append ``item``; return the publish dropped to make room, if any."""
        if item.retain:
            for old in self._items:
                if old.retain and old.topic == item.topic:
                    self._items.remove(old)
                    break
        self._items.append(item)
        if len(self._items) > self.limit:
            self.dropped += 1
            return self._items.popleft()
        return None

    def put_back(self, items: Sequence[Outgoing]) -> list[Outgoing]:
        """Put ``items`` (oldest first) back at the head, before everything waiting.

        If that overfills the outbox, the oldest are dropped, as in :meth:`put`; returns
        those."""
        self._items.extendleft(reversed(items))
        dropped = []
        while len(self._items) > self.limit:
            self.dropped += 1
            dropped.append(self._items.popleft())
        return dropped

    def pop(self) -> Outgoing:
        """The oldest waiting publish (``IndexError`` when empty)."""
        return self._items.popleft()

    def waiting_topics(self) -> set[str]:
        return {item.topic for item in self._items}


class InFlightWindow:
    """The publishes handed to the broker and not yet acknowledged, at most ``size``.

    :meth:`add` returns a ticket, :meth:`done` retires it. When the connection breaks,
    :meth:`take_all` returns the unacknowledged ones, oldest first, to send again.
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"in-flight window must be at least 1, got {size}")
        self.size = size
        self._next = 0
        self._items: dict[int, Outgoing] = {}

    def __len__(self) -> int:
        return len(self._items)

    @property
    def has_room(self) -> bool:
        return len(self._items) < self.size

    def add(self, item: Outgoing) -> int:
        if not self.has_room:
            raise RuntimeError("in-flight window is full")
        ticket = self._next
        self._next += 1
        self._items[ticket] = item
        return ticket

    def done(self, ticket: int) -> None:
        self._items.pop(ticket, None)

    def take_all(self) -> list[Outgoing]:
        """Every unacknowledged publish, oldest first; the window is empty after."""
        items = [self._items[t] for t in sorted(self._items)]
        self._items.clear()
        return items


def strike(items: list[Outgoing]) -> tuple[list[Outgoing], Outgoing | None]:
    """The connection broke with ``items`` (oldest first) unacknowledged. A broker reads
    publishes in order, so the oldest is the one it disconnected for, if any: it gets a
    strike, and at :data:`MAX_DELIVERY_ATTEMPTS` it is returned apart, to be dropped.
    Returns the publishes to send again and the one dropped."""
    if not items:
        return items, None
    first = replace(items[0], strikes=items[0].strikes + 1)
    if first.strikes >= MAX_DELIVERY_ATTEMPTS:
        return items[1:], first
    return [first, *items[1:]], None


class Backoff:
    """Reconnection delays: ``min_s``, doubling up to ``max_s``, with +-``jitter`` share.

    :meth:`reset` after a good connection starts again from ``min_s``.
    """

    def __init__(
        self,
        min_s: float,
        max_s: float,
        *,
        jitter: float = 0.2,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 < min_s <= max_s:
            raise ConfigError(
                f"reconnect_min_s ({min_s}) must be > 0 and at most reconnect_max_s ({max_s})"
            )
        self.min_s, self.max_s, self.jitter = min_s, max_s, jitter
        self._rng = rng or random.Random()
        self._attempt = 0

    def next_delay(self) -> float:
        base = min(self.max_s, self.min_s * 2.0**self._attempt)
        self._attempt = min(self._attempt + 1, 64)
        spread = base * self.jitter * (2.0 * self._rng.random() - 1.0)
        return min(self.max_s, max(self.min_s, base + spread))

    def reset(self) -> None:
        self._attempt = 0


# --- the connection --------------------------------------------------------------------


class ConnectionState(StrEnum):
    CONNECTING = "connecting"
    ONLINE = "online"
    OFFLINE = "offline"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class BusStatus:
    """What a screen shows of the connection."""

    state: ConnectionState
    broker: str
    """The broker's address, without the password."""
    queued: int = 0
    """Publishes waiting for the connection (the outbox)."""
    in_flight: int = 0
    error: str = ""
    """Why the last connection failed or broke ("" when none did)."""
    retry_in_s: float | None = None
    """While offline: the delay before the next attempt."""
    connects: int = 0
    """Successful connections so far (more than 1: it reconnected)."""
    dropped: int = 0
    """Publishes dropped because the outbox was full."""
    taken_over: int = 0
    """Times in a row another client of the same broker user took this session over;
    at :data:`MAX_TAKEOVERS` the bus stops reconnecting (:attr:`gave_up`)."""

    @property
    def online(self) -> bool:
        return self.state is ConnectionState.ONLINE

    @property
    def gave_up(self) -> bool:
        """Offline for good: taken over too often (:meth:`MqttBus.reconnect` resumes)."""
        return self.taken_over >= MAX_TAKEOVERS and not self.online


class Link(Protocol):
    """One live connection to the broker (the part of aiomqtt the bus uses)."""

    async def publish(self, item: Outgoing) -> None:
        """Send and return once acknowledged (QoS 1) or written (QoS 0)."""
        ...

    async def subscribe(self, pattern: str, ident: int) -> None:
        """Subscribe with MQTT v5 subscription identifier ``ident``; raise
        :class:`BrokerError` if the broker refuses."""
        ...

    async def unsubscribe(self, pattern: str) -> None: ...

    def messages(self) -> AsyncIterator[tuple[str, bytes, tuple[int, ...]]]:
        """Incoming ``(topic, payload, subscription identifiers)``; ends with an exception
        when the link breaks."""
        ...


Connector = Callable[[], contextlib.AbstractAsyncContextManager[Link]]
"""Opens one connection (used once per attempt); tests pass a fake one."""


class _Sub:
    """One subscription of a :class:`MqttBus` (see :class:`cti.bus.memory.Subscription`)."""

    def __init__(self, bus: MqttBus, pattern: str) -> None:
        self._bus = bus
        self.pattern = pattern
        self.queue: asyncio.Queue[tuple[str, Message] | BrokerError] = asyncio.Queue()

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
        self._connector = connector or self._aiomqtt_connector
        self._backoff = Backoff(reconnect_min_s, reconnect_max_s, rng=rng)
        self.takeover_wait_s = takeover_wait_s
        self._resume = asyncio.Event()
        self._quick_losses = 0
        self._outbox = Outbox(offline_limit)
        self._window = InFlightWindow(max_in_flight)
        self._retained: dict[str, Outgoing] = {}
        """The last retained publish handed to the broker, per topic (sent again on reconnect)."""
        self._subs: list[_Sub] = []
        self._routes: dict[str, list[_Sub]] = {}
        self._link: Link | None = None
        self._subscribed: set[str] = set()
        self._idents: dict[str, int] = {}
        """Pattern -> its MQTT subscription identifier (stable for the bus's life)."""
        self._patterns: dict[int, str] = {}
        self._changed = asyncio.Event()  # the outbox or the window changed
        self._status = BusStatus(ConnectionState.CLOSED, self.address.display)
        self._feed: StatusFeed[BusStatus] = StatusFeed(lambda: self.status)
        self._task: asyncio.Task[None] | None = None
        self._online = asyncio.Event()
        self._early: deque[tuple[str, Message]] = deque()
        """A persistent session's messages that came before anyone subscribed to them."""
        self.dropped = 0
        """How many received payloads were dropped because they did not decode."""
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
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(drain_s):
                    while (len(self._outbox) or len(self._window)) and self._status.online:
                        self._changed.clear()
                        await self._changed.wait()
        task, self._task = self._task, None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self._set_status(state=ConnectionState.CLOSED, retry_in_s=None)

    async def wait_online(self, timeout: float | None = None) -> None:
        """Return once connected; ``TimeoutError`` after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            await self._online.wait()

    # --- the bus interface -----------------------------------------------------------

    async def publish(self, topic: str, message: Message, *, retain: bool = False) -> None:
        """Publish ``message``. Online, waits while the in-flight window is full;
        offline, it waits in the outbox and this returns at once."""
        self.publish_payload(topic, encode(message), retain=retain)
        while self._status.online and len(self._outbox) >= self._window.size:
            self._changed.clear()
            await self._changed.wait()

    def publish_payload(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Queue raw bytes for ``topic``. A topic the broker would disconnect us for
        (:func:`cti.topics.topic_problem`) or a payload over
        :data:`~cti.protocol.MAX_MESSAGE_BYTES` is dropped with an error, never sent."""
        problem = topics.topic_problem(topic)
        if problem is None and len(payload) > MAX_MESSAGE_BYTES:
            problem = f"a payload of {len(payload)} bytes (at most {MAX_MESSAGE_BYTES})"
        if problem is not None:
            shown = topic.encode("unicode_escape").decode("ascii")[:200]
            log_limits.error(log, "publish on %s refused: %s; dropped", shown, problem)
            return
        self._put(Outgoing(topic, payload, qos_for(topic), retain))

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
        self._subs.append(sub)
        self._routes.clear()
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
            await link.subscribe(sub.pattern, self._ident(sub.pattern))
            self._subscribed.add(sub.pattern)
        except BrokerError:
            self._subs.remove(sub)
            self._routes.clear()
            raise
        except Exception as exc:  # the link broke meanwhile: subscribed on reconnecting
            log.debug("subscribe %s while the link broke: %r", sub.pattern, exc)

    async def _detach(self, sub: _Sub) -> None:
        if sub not in self._subs:
            return
        self._subs.remove(sub)
        self._routes.clear()
        if any(other.pattern == sub.pattern for other in self._subs):
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

    def _ident(self, pattern: str) -> int:
        ident = self._idents.get(pattern)
        if ident is None:
            ident = self._idents[pattern] = len(self._idents) + 1
            self._patterns[ident] = pattern
        return ident

    def _dispatch(self, topic: str, payload: bytes, idents: tuple[int, ...] = ()) -> None:
        """Hand one message to the subscriptions it is for.

        The broker may send a message once per matching subscription (Mosquitto does
        with overlapping ones); the subscription identifiers it carries say which, so
        each of our subscriptions sees it once. Without identifiers, every local
        subscription matching the topic gets it.
        """
        try:
            message = decode(payload, where=topic)
        except ProtocolError as exc:
            self.dropped += 1
            self._refuse(topic, payload, exc)
            return
        if idents and all(i in self._patterns for i in idents):
            patterns = {self._patterns[i] for i in idents}
            targets = [sub for sub in self._subs if sub.pattern in patterns]
        else:  # no identifiers, or a former process's (a persistent session's backlog)
            targets = self._subs_for(topic)
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

    def _subs_for(self, topic: str) -> list[_Sub]:
        subs = self._routes.get(topic)
        if subs is None:
            subs = [sub for sub in self._subs if topics.matches(sub.pattern, topic)]
            if len(self._routes) > 100_000:
                self._routes.clear()
            self._routes[topic] = subs
        return subs

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
            except SessionTakenOver:
                said = True
            except Exception as exc:
                error = _describe(exc)
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
        deliveries: set[asyncio.Task[None]] = set()
        try:
            # Subscribe again (also to what was subscribed meanwhile) before going online.
            while pending := {s.pattern for s in self._subs} - self._subscribed:
                for pattern in sorted(pending):
                    try:
                        await link.subscribe(pattern, self._ident(pattern))
                    except BrokerError as exc:
                        log_limits.error(log, "%s", exc)
                        for sub in [s for s in self._subs if s.pattern == pattern]:
                            sub.queue.put_nowait(exc)
                            self._subs.remove(sub)
                        self._routes.clear()
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
            sender = asyncio.create_task(
                self._send(link, deliveries), name=f"mqtt-send:{self.client_id}"
            )
            done, _ = await asyncio.wait({reader, sender}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                failure = task.exception()
                if isinstance(failure, SessionTakenOver):
                    raise failure
                if failure is not None:
                    return _describe(failure)
            return "the connection ended"
        finally:
            tasks = [reader, *deliveries] + ([sender] if sender is not None else [])
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _read(self, link: Link) -> None:
        async for topic, payload, idents in link.messages():
            try:
                self._dispatch(topic, payload, idents)
            except Exception:
                log_limits.exception(log, "message on %s not delivered; going on", topic)
        raise BrokerError("the broker closed the connection")

    async def _send(self, link: Link, deliveries: set[asyncio.Task[None]]) -> None:
        while True:
            while not (len(self._outbox) and self._window.has_room):
                self._changed.clear()
                await self._changed.wait()
            item = self._outbox.pop()
            if item.retain:
                self._retained[item.topic] = item
            ticket = self._window.add(item)
            task = asyncio.create_task(self._deliver(link, ticket, item))
            deliveries.add(task)
            task.add_done_callback(deliveries.discard)
            self._changed.set()

    async def _deliver(self, link: Link, ticket: int, item: Outgoing) -> None:
        try:
            await link.publish(item)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self._link is link and self._status.online:
                # The link lives but refused this one: sending it again would not help.
                log_limits.error(
                    log, "publish on %s failed: %s; dropped", item.topic, _describe(exc)
                )
                self._window.done(ticket)
                self._changed.set()  # its place in the window is free: the sender goes on
            return  # otherwise the connection broke: it goes back to the outbox
        self._window.done(ticket)
        self._changed.set()

    # --- aiomqtt ---------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _aiomqtt_connector(self) -> AsyncIterator[Link]:
        import aiomqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if self.persistent:
            properties.SessionExpiryInterval = ENGINE_SESSION_EXPIRY_S
        will = None
        if self.presence_agent is not None:
            gone = self._presence_message(online=False)
            will = aiomqtt.Will(gone.topic, gone.payload, qos=1, retain=True)
        tls = None
        if self.address.tls:
            tls = await asyncio.to_thread(ssl.create_default_context, cafile=self.ca_file or None)
        client = aiomqtt.Client(
            self.address.host,
            self.address.port,
            username=self.address.username,
            password=self.address.password,
            identifier=self.client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            will=will,
            keepalive=max(1, round(self.keepalive_s)),
            timeout=max(5.0, self.keepalive_s),
            clean_start=not self.persistent,
            properties=properties,
            tls_context=tls,
            # paho's own window (20 by default) would hold back what ours lets through
            max_inflight_messages=self._window.size,
            # Small messages at once: Nagle's algorithm with delayed ACKs adds ~40 ms.
            socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
        )
        # aiomqtt warns (a log line per publish) above 10 pending: ours are bounded anyway
        client.pending_calls_threshold = self._window.size + 10
        try:
            async with client:
                yield _AiomqttLink(client, self.address.display)
        except aiomqtt.MqttCodeError as exc:
            raise BrokerError(f"broker {self.address.display}: {_reason(exc)}") from exc


class _AiomqttLink:
    def __init__(self, client: Any, display: str) -> None:
        self._client = client
        self._display = display

    async def publish(self, item: Outgoing) -> None:
        await self._client.publish(
            item.topic, item.payload, qos=item.qos, retain=item.retain, timeout=math.inf
        )

    async def subscribe(self, pattern: str, ident: int) -> None:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        properties = Properties(PacketTypes.SUBSCRIBE)  # type: ignore[no-untyped-call]
        properties.SubscriptionIdentifier = ident
        codes = await self._client.subscribe(pattern, qos=1, properties=properties)
        for code in codes:
            value = code if isinstance(code, int) else code.value
            if value >= 0x80:
                name = code.getName() if hasattr(code, "getName") else f"code {value:#x}"
                raise BrokerError(
                    f"broker {self._display} refused the subscription to {pattern!r}: {name}"
                )

    async def unsubscribe(self, pattern: str) -> None:
        await self._client.unsubscribe(pattern)

    async def messages(self) -> AsyncIterator[tuple[str, bytes, tuple[int, ...]]]:
        try:
            async for message in self._messages():
                yield message
        except Exception as exc:
            if _taken_over(exc):
                raise SessionTakenOver(
                    f"broker {self._display}: session taken over by another connection"
                ) from exc
            raise

    async def _messages(self) -> AsyncIterator[tuple[str, bytes, tuple[int, ...]]]:
        async for message in self._client.messages:
            payload = message.payload
            if isinstance(payload, str):
                payload = payload.encode("utf-8")
            elif not isinstance(payload, bytes | bytearray):
                payload = str(payload).encode("utf-8")
            idents = getattr(message.properties, "SubscriptionIdentifier", None) or ()
            yield message.topic.value, bytes(payload), tuple(idents)


def _taken_over(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what caused it) is the broker's DISCONNECT 0x8E."""
    seen = 0
    while exc is not None and seen < 10:
        rc = getattr(exc, "rc", None)
        if rc is not None and getattr(rc, "value", rc) == SESSION_TAKEN_OVER:
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _reason(exc: Exception) -> str:
    rc = getattr(exc, "rc", None)
    name = getattr(rc, "getName", None)
    if callable(name):
        return str(name())
    return str(exc)


def _describe(exc: BaseException) -> str:
    """A short reason for a screen or a log line."""
    if isinstance(exc, CtiError):
        return str(exc)
    text = str(exc) or type(exc).__name__
    if "Connection refused" in text:
        return "connection refused: is the broker running, at that host and port?"
    return text


# --- choosing the bus ------------------------------------------------------------------

ROLES = ("engine", "console", "supervisor", "tool")


def _host() -> str:
    host = socket.gethostname().split(".")[0]
    return host if topics.is_id(host) else "host"


def default_client_id(role: str, name: str = "") -> str:
    """``cti-<role>[-<name>]-<host>-<random>``: a random suffix, so nobody can name it in
    advance (a broker lets a new connection with a client's id throw that client off)
    and two consoles of one agent do not take each other's connection over. The engine's
    id must also stay the same across restarts: :func:`installation_client_id`."""
    who = f"-{name}" if name else ""
    return f"cti-{role}{who}-{_host()}-{uuid.uuid4().hex[:12]}"


def installation_client_id(path: os.PathLike[str] | str) -> str:
    """The engine's client id for the installation whose id file is ``path``:
    ``cti-engine-<host>-<32 random hex>``, made on first use and read back after, so
    the engine's MQTT session survives restarts yet nobody can guess the id. The file is
    owner-only; a broken one is replaced (the old session then expires at the broker)."""
    try:
        with open(path, encoding="ascii") as handle:
            kept = handle.read().strip()
        if topics.is_id(kept) and kept.startswith("cti-engine-"):
            return kept
        log.warning("%s holds no valid client id; making a new one", path)
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("%s cannot be read (%s); making a new client id", path, exc)
    made = f"cti-engine-{_host()}-{uuid.uuid4().hex}"
    tmp = f"{os.fspath(path)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(made + "\n")
    os.replace(tmp, path)
    return made


def make_bus(
    settings: BrokerSettings,
    role: str,
    *,
    agent_id: str | None = None,
    name: str = "",
    offline_limit: int = DEFAULT_OFFLINE_LIMIT,
) -> InMemoryBus | MqttBus:
    """The bus for ``settings``: in memory when ``url`` is empty, else MQTT (not started).

    ``role`` is one of :data:`ROLES`; a ``console`` with ``agent_id`` announces the
    agent's presence; the ``engine`` keeps a persistent session (pass its
    :func:`installation_client_id` in ``settings.client_id``) and answers commands that
    do not decode with a refusal.
    """
    if role not in ROLES:
        raise ConfigError(f"bus role {role!r} is not one of {', '.join(ROLES)}")
    if not settings.url:
        return InMemoryBus()
    return MqttBus(
        settings.url,
        client_id=settings.client_id or default_client_id(role, name or agent_id or ""),
        keepalive_s=settings.keepalive_s,
        max_in_flight=settings.max_in_flight,
        reconnect_min_s=settings.reconnect_min_s,
        reconnect_max_s=settings.reconnect_max_s,
        ca_file=settings.ca_file,
        presence=agent_id if role == "console" else None,
        persistent=role == "engine",
        answer_refusals=role == "engine",
        offline_limit=offline_limit,
    )


@contextlib.asynccontextmanager
async def open_bus(
    settings: BrokerSettings,
    role: str,
    *,
    agent_id: str | None = None,
    name: str = "",
    wait_online_s: float | None = None,
) -> AsyncIterator[InMemoryBus | MqttBus]:
    """``async with open_bus(settings, "console", agent_id="1001") as bus:`` -- the
    in-memory bus for an empty URL, else a running :class:`MqttBus`, closed on exit.

    With ``wait_online_s``, wait that long for the first connection and raise
    :class:`BrokerError` (with the reason) if it does not come; without, return at once
    (the bus connects in the background, see :attr:`MqttBus.status`).
    Pass settings through :func:`resolve_broker_settings` to honour the environment.
    """
    bus = make_bus(settings, role, agent_id=agent_id, name=name)
    if isinstance(bus, InMemoryBus):
        yield bus
        return
    async with bus:
        if wait_online_s is not None:
            try:
                await bus.wait_online(wait_online_s)
            except TimeoutError:
                reason = bus.status.error or "no answer"
                raise BrokerError(
                    f"cannot reach the broker {bus.address.display} within "
                    f"{wait_online_s:g} s: {reason}"
                ) from None
        yield bus
