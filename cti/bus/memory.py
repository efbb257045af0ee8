"""The message bus: publish/subscribe on ``cti/v1/...`` topics.

:class:`Bus` is the interface every bus keeps: the in-memory bus here,
:class:`cti.bus.mqtt.MqttBus` over a broker. Messages cross it as JSON, even in memory,
so what works embedded works on a broker. A payload that does not decode is dropped
with a log line naming the topic and the fault; subscribers never see it and nothing
else stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Protocol, Self

from cti import log_limits, topics
from cti.bus.subscriptions import SubscriptionTable
from cti.errors import ProtocolError
from cti.protocol import Message, decode, encode

log = logging.getLogger(__name__)


class Subscription(Protocol):
    """Messages on the topics matching one pattern, in order, as ``(topic, message)``."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def __aiter__(self) -> AsyncIterator[tuple[str, Message]]: ...


class Bus(Protocol):
    """Publish and subscribe. ``retain=True`` keeps the last message of a topic and
    gives it to every later subscriber first (state snapshots)."""

    async def publish(self, topic: str, message: Message, *, retain: bool = False) -> None: ...

    def subscribe(self, pattern: str) -> Subscription: ...


class _MemorySubscription:
    def __init__(self, bus: InMemoryBus, pattern: str) -> None:
        self._bus = bus
        self.pattern = pattern
        self.queue: asyncio.Queue[tuple[str, Message]] = asyncio.Queue()

    async def __aenter__(self) -> Self:
        self._bus._attach(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._bus._detach(self)

    def __aiter__(self) -> AsyncIterator[tuple[str, Message]]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[tuple[str, Message]]:
        while True:
            yield await self.queue.get()


class InMemoryBus:
    """The bus inside one process: ordered, lossless, retained snapshots, JSON on the
    way through so that a message that could not cross a broker cannot cross it either."""

    def __init__(self) -> None:
        self._subs: SubscriptionTable[_MemorySubscription] = SubscriptionTable()
        self._retained: dict[str, Message] = {}
        self.dropped = 0
        """How many payloads were dropped because they did not decode."""

    async def publish(self, topic: str, message: Message, *, retain: bool = False) -> None:
        self.publish_nowait(topic, message, retain=retain)

    def publish_nowait(self, topic: str, message: Message, *, retain: bool = False) -> None:
        self.publish_payload(topic, encode(message), retain=retain)

    def publish_payload(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish raw bytes, as a broker would receive them from any client."""
        try:
            message = decode(payload, where=topic)
        except ProtocolError as exc:
            self.dropped += 1
            log_limits.warning(log, "%s; dropped", exc)
            return
        if not topic.startswith(topics.PREFIX + "/"):
            self.dropped += 1
            log_limits.warning(log, "topic %r is outside %s/; dropped", topic, topics.PREFIX)
            return
        if retain:
            self._retained[topic] = message
        for sub in self._subs.targets(topic, ()):
            sub.queue.put_nowait((topic, message))

    def subscribe(self, pattern: str) -> _MemorySubscription:
        return _MemorySubscription(self, pattern)

    def retained(self, topic: str) -> Message | None:
        return self._retained.get(topic)

    def _attach(self, sub: _MemorySubscription) -> None:
        self._subs.add(sub)
        for topic, message in self._retained.items():
            if topics.matches(sub.pattern, topic):
                sub.queue.put_nowait((topic, message))

    def _detach(self, sub: _MemorySubscription) -> None:
        self._subs.remove(sub)
