"""What a screen shows of an MQTT bus's connection (:class:`BusStatus`), apart from the
bus itself (:mod:`cti.bus.mqtt`, which re-exports them).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

#: Takeovers in a row after which the bus stops reconnecting: with the broker's
#: ``use_username_as_clientid``, two clients of one user (a console opened twice) would
#: otherwise throw each other off for ever. The newer one keeps the session.
MAX_TAKEOVERS = 3


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
