"""The sans-I/O pieces of sending to the broker: the outbox of publishes waiting for the
connection, the window of publishes awaiting the broker's acknowledgement, and the
strikes that drop a publish the broker keeps disconnecting for (``docs/mqtt.md``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from cti import topics

#: Publishes kept while the broker is unreachable, by default.
DEFAULT_OFFLINE_LIMIT = 10_000
#: A publish in flight (the oldest unacknowledged) at this many broken connections in a
#: row is dropped: the broker disconnects for it (a topic or size it refuses), and sending
#: it first on every reconnection would keep the client off the broker for good.
MAX_DELIVERY_ATTEMPTS = 3
#: Patterns of the topics published at QoS 0: retained and superseded by the next, so a
#: lost one costs nothing the next (or the bus's resend of its retained state on every
#: reconnection) does not give back: the queue snapshots (every status interval) and
#: the colleague states (advisory; no PUBACK to read, 4 a call: issue 23).
QOS0_PATTERNS = (topics.ALL_QUEUE_STATUS, topics.ALL_QUEUE_CALLS, topics.ALL_COLLEAGUE_STATES)


def qos_for(topic: str) -> int:
    """QoS 0 for the queue snapshots and colleague states (retained, each superseded by
    the next), QoS 1 for the rest."""
    return 0 if any(topics.matches(p, topic) for p in QOS0_PATTERNS) else 1


@dataclass(slots=True)
class Outgoing:
    """One publish on its way to the broker (already encoded). Never changed once made
    (:func:`strike` makes another): not frozen only because a frozen dataclass's
    ``__init__`` sets each field through ``object.__setattr__``, ~1 us a publish (issue 23).
    """

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
        self.items: deque[Outgoing] = deque()
        """Oldest first, never replaced: the bus reads it on every publish (no ``__len__``)."""
        self.dropped = 0
        """How many publishes were dropped because the outbox was full."""

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Any:
        return iter(tuple(self.items))

    def put(self, item: Outgoing) -> Outgoing | None:
        """Append ``item``; return the publish dropped to make room, if any."""
        if item.retain:
            for old in self.items:
                if old.retain and old.topic == item.topic:
                    self.items.remove(old)
                    break
        self.items.append(item)
        if len(self.items) > self.limit:
            self.dropped += 1
            return self.items.popleft()
        return None

    def put_back(self, items: Sequence[Outgoing]) -> list[Outgoing]:
        """Put ``items`` (oldest first) back at the head, before everything waiting.

        If that overfills the outbox, the oldest are dropped, as in :meth:`put`; returns
        those."""
        self.items.extendleft(reversed(items))
        dropped = []
        while len(self.items) > self.limit:
            self.dropped += 1
            dropped.append(self.items.popleft())
        return dropped

    def pop(self) -> Outgoing:
        """The oldest waiting publish (``IndexError`` when empty)."""
        return self.items.popleft()

    def waiting_topics(self) -> set[str]:
        return {item.topic for item in self.items}


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
        self.items: dict[int, Outgoing] = {}
        """Ticket -> publish, never replaced: the bus reads it on every publish."""

    def __len__(self) -> int:
        return len(self.items)

    @property
    def has_room(self) -> bool:
        return len(self.items) < self.size

    def add(self, item: Outgoing) -> int:
        if len(self.items) >= self.size:
            raise RuntimeError("in-flight window is full")
        ticket = self._next
        self._next += 1
        self.items[ticket] = item
        return ticket

    def done(self, ticket: int) -> None:
        self.items.pop(ticket, None)

    def take_all(self) -> list[Outgoing]:
        """Every unacknowledged publish, oldest first; the window is empty after."""
        items = [self.items[t] for t in sorted(self.items)]
        self.items.clear()
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
