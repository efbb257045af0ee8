"""One connection to the broker: what the bus needs of it (:class:`Link`, a fake one in
the tests), the real one over aiomqtt (MQTT v5), and the reconnection delays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cti import log_limits
from cti.bus.batching_socket import BatchingSocket, batching_sockets
from cti.bus.broker import BrokerAddress, BrokerError
from cti.bus.outbox import Outgoing
from cti.bus.packets import Demux, publish_packet, topic_head
from cti.bus.paho_tables import quiet_debug_lines, share_property_tables
from cti.errors import ConfigError, CtiError

log = logging.getLogger(__name__)

#: A persistent engine session lasts this long at the broker after a disconnection.
ENGINE_SESSION_EXPIRY_S = 3600
#: MQTT v5 DISCONNECT reason: another connection with this client id took the session.
SESSION_TAKEN_OVER = 0x8E
#: Small messages at once: Nagle's algorithm with delayed ACKs adds ~40 ms a message.
SOCKET_OPTIONS = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)


class TakenOverError(BrokerError):
    """The broker disconnected us for another connection with our client id (MQTT v5
    reason 0x8E): with ``use_username_as_clientid``, another client of the same user."""


class Link(Protocol):
    """One live connection to the broker (the part of aiomqtt the bus uses)."""

    def publish(self, item: Outgoing) -> Awaitable[None]:
        """Send; the awaitable completes once acknowledged (QoS 1) or written (QoS 0),
        and fails if the publish cannot be sent (a future: no task per publish)."""
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


Deliver = Callable[[str, bytes, tuple[int, ...]], None]
"""Takes one message received: topic, payload, subscription identifiers."""

Acknowledged = Callable[[int, BaseException | None], None]
"""Told a publish's fate, by the ticket given with it: None once acknowledged (or written
at QoS 0), else why it cannot be sent. One for many publishes (no object made for each)."""

Connector = Callable[[], contextlib.AbstractAsyncContextManager[Link]]
"""Opens one connection (used once per attempt); tests pass a fake one."""


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


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """What opening a connection takes (from the bus's settings)."""

    address: BrokerAddress
    client_id: str
    keepalive_s: float
    ca_file: str = ""
    persistent: bool = False
    """Keep an MQTT session at the broker (the engine's)."""
    will: Outgoing | None = None
    """Left by the broker when the connection dies (a console's presence, offline)."""
    max_in_flight: int = 100


@contextlib.asynccontextmanager
async def aiomqtt_link(settings: LinkSettings) -> AsyncIterator[Link]:
    """One connection over aiomqtt (MQTT v5); :class:`BrokerError` if the broker refuses."""
    import aiomqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    share_property_tables()
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    if settings.persistent:
        properties.SessionExpiryInterval = ENGINE_SESSION_EXPIRY_S
    will = None
    if settings.will is not None:
        will = aiomqtt.Will(settings.will.topic, settings.will.payload, qos=1, retain=True)
    address = settings.address
    tls = None
    if address.tls:
        tls = await asyncio.to_thread(ssl.create_default_context, cafile=settings.ca_file or None)
    client = aiomqtt.Client(
        address.host,
        address.port,
        username=address.username,
        password=address.password,
        identifier=settings.client_id,
        protocol=aiomqtt.ProtocolVersion.V5,
        will=will,
        keepalive=max(1, round(settings.keepalive_s)),
        timeout=max(5.0, settings.keepalive_s),
        clean_start=not settings.persistent,
        properties=properties,
        tls_context=tls,
        # paho's own window (20 by default) would hold back what ours lets through
        max_inflight_messages=settings.max_in_flight,
        socket_options=SOCKET_OPTIONS,
    )
    # aiomqtt warns (a log line per publish) above 10 pending: ours are bounded anyway
    client.pending_calls_threshold = settings.max_in_flight + 10
    link = _AiomqttLink(client, address.display)
    batching_sockets(client._client, asyncio.get_running_loop(), SOCKET_OPTIONS, link.opened)
    quiet_debug_lines(client._client)
    try:
        async with client:
            link.connected()
            yield link
    except aiomqtt.MqttCodeError as exc:
        raise BrokerError(f"broker {address.display}: {_reason(exc)}") from exc


class _AiomqttLink:
    """One connection through aiomqtt and paho, with the hot packets kept out of them.

    On a plain TCP connection (a :class:`BatchingSocket`) the PUBLISHes are written and
    the PUBACKs and PUBLISHes read here (:mod:`cti.bus.packets`); paho keeps the rest
    (connecting, subscribing, pings, disconnecting). Over TLS, publishes go to paho
    directly, each with a future its acknowledgement completes (aiomqtt's publish costs
    an event, a ``wait_for`` and a task per message). Either way what is received waits
    in one inbox (no task per message, as aiomqtt's iterator has)."""

    def __init__(self, client: Any, display: str) -> None:
        self._client = client
        self._paho = client._client
        self._display = display
        self._loop = asyncio.get_running_loop()
        self._acks: dict[int, tuple[Acknowledged, int]] = {}
        self._on_publish = self._paho.on_publish
        self._paho.on_publish = self._acknowledged
        self._paho.on_message = self._from_paho
        self._sock: BatchingSocket | None = None
        self._heads: dict[str, bytes] = {}
        self._held: list[tuple[Acknowledged, int]] = []
        """QoS 0 publishes written while the broker does not read: done once it does."""
        self._inbox: deque[tuple[str, bytes, tuple[int, ...]]] = deque()
        self._deliver: Deliver | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._ended: BaseException | None = None

    def opened(self, sock: BatchingSocket) -> None:
        """paho opened a plain TCP connection (before anything is read from it)."""
        self._sock = sock
        sock.demux = Demux(self._received, self._acked, sock.write, self._heard)
        paho = self._paho
        read = paho.loop_read

        def loop_read(max_packets: int = 1) -> Any:
            # aiomqtt's reader calls this at every readable event: paho reads only when
            # the demux left it something (MQTT_ERR_SUCCESS, 0, as paho's when none)
            if paho._sock is sock and not sock.read_for_paho():
                return 0
            return read(max_packets)

        paho.loop_read = loop_read

    def connected(self) -> None:
        """aiomqtt is connected: its end of the connection ends the inbox."""
        self._client._disconnected.add_done_callback(self._disconnected)

    # --- publishing -------------------------------------------------------------------

    def publish(self, item: Outgoing) -> asyncio.Future[None]:
        ack = self._loop.create_future()

        def done(_ticket: int, error: BaseException | None) -> None:
            if ack.done():
                return
            if error is None:
                ack.set_result(None)
            else:
                ack.set_exception(error)

        self.publish_then(item, done, 0)
        return ack

    def publish_then(self, item: Outgoing, done: Acknowledged, ticket: int) -> None:
        """Send; ``done(ticket, None)`` once acknowledged (QoS 1) or written (QoS 0),
        ``done(ticket, error)`` if it cannot be sent, never if the connection broke first
        (the bus sends it again on the next). No future: the bus's per-publish cost."""
        sock = self._sock
        if sock is None:
            self._publish_through_paho(item, done, ticket)
            return
        head = self._heads.get(item.topic)
        if head is None:
            if len(self._heads) > 100_000:
                self._heads.clear()
            head = self._heads[item.topic] = topic_head(item.topic)
        mid = 0
        if item.qos:
            # paho's _mid_generate (1 to 65535, then 1 again) without its lock: every
            # packet id is made on the loop's thread (~0.4 us a publish)
            paho = self._paho
            mid = paho._last_mid = paho._last_mid % 65535 + 1
        try:
            sock.write(publish_packet(head, item.payload, item.qos, item.retain, mid))
        except OSError:
            return  # the connection broke: sent again on the next one
        if mid:
            self._acks[mid] = (done, ticket)
        elif sock.over_high_water:
            self._held.append((done, ticket))  # the bus's window bounds what is written meanwhile
            sock.drained = self._drained  # only while some are held: not a call every flush
            log_limits.warning(
                log, "the broker does not read: %d bytes wait to be sent", sock.waiting
            )
        else:
            done(ticket, None)

    def send_now(self) -> None:
        """Write the PUBLISHes queued in this turn now (a plain TCP connection)."""
        if self._sock is not None:
            self._sock.flush_now()

    def _publish_through_paho(self, item: Outgoing, done: Acknowledged, ticket: int) -> None:
        info = self._paho.publish(item.topic, item.payload, item.qos, item.retain)
        if info.rc != 0:
            error = f"broker {self._display}: could not publish on {item.topic!r} (rc {info.rc})"
            done(ticket, ConnectionError(error))
        elif info.is_published():
            done(ticket, None)
        else:
            self._acks[info.mid] = (done, ticket)

    def _acked(self, mid: int) -> bool:
        waiting = self._acks.pop(mid, None)
        if waiting is None:
            return False  # not ours: paho's to see
        done, ticket = waiting
        done(ticket, None)
        return True

    def _acknowledged(self, client: Any, userdata: Any, mid: int, *rest: Any) -> None:
        if not self._acked(mid):
            self._on_publish(client, userdata, mid, *rest)  # one of aiomqtt's own

    def _drained(self) -> None:
        if self._sock is not None:
            self._sock.drained = None  # until a publish is held again
        held, self._held = self._held, []
        for done, ticket in held:
            done(ticket, None)

    def _heard(self) -> None:
        # paho's keepalive counts what it read; the packets read here count too
        self._paho._last_bytes_received = time.monotonic()

    # --- receiving ------------------------------------------------------------------

    def deliver_to(self, deliver: Deliver) -> None:
        """Hand each message to ``deliver`` as it is read, those waiting first (no inbox,
        no task woken per message); :meth:`messages` then only ends with the link."""
        self._deliver = deliver
        while self._inbox:
            deliver(*self._inbox.popleft())
        if self._sock is not None and self._sock.demux is not None:
            self._sock.demux.received = deliver  # straight there, not through _received

    def _received(self, topic: str, payload: bytes, idents: tuple[int, ...]) -> None:
        deliver = self._deliver
        if deliver is not None:
            deliver(topic, payload, idents)
            return
        self._inbox.append((topic, payload, idents))
        self._wake()

    def _from_paho(self, client: Any, userdata: Any, message: Any) -> None:
        """A PUBLISH paho read (over TLS, or one the demux left to paho)."""
        payload = message.payload
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        elif not isinstance(payload, bytes | bytearray):
            payload = str(payload).encode("utf-8")
        idents = getattr(message.properties, "SubscriptionIdentifier", None) or ()
        self._received(message.topic, bytes(payload), tuple(idents))

    def _disconnected(self, done: asyncio.Future[None]) -> None:
        import aiomqtt

        cause = None if done.cancelled() else done.exception()
        ended = aiomqtt.MqttError("Disconnected during message iteration")
        ended.__cause__ = cause
        self._ended = ended
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

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
        inbox = self._inbox
        while True:
            while inbox:
                yield inbox.popleft()
            ended = self._ended
            if ended is not None:
                if taken_over(ended):
                    raise TakenOverError(
                        f"broker {self._display}: session taken over by another connection"
                    ) from ended
                raise ended
            self._waiter = self._loop.create_future()
            await self._waiter


def taken_over(exc: BaseException | None) -> bool:
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


def describe(exc: BaseException) -> str:
    """A short reason for a screen or a log line."""
    if isinstance(exc, CtiError):
        return str(exc)
    text = str(exc) or type(exc).__name__
    if "Connection refused" in text:
        return "connection refused: is the broker running, at that host and port?"
    return text
