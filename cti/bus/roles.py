"""The bus each program gets: in memory when no broker is configured, else an
:class:`~cti.bus.mqtt.MqttBus` set up for its role (the engine's persistent session, a
console's presence). Pass the settings through
:func:`~cti.bus.broker.resolve_broker_settings` first to honour the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from cti import topics
from cti.bus.broker import BrokerError, default_client_id
from cti.bus.memory import InMemoryBus
from cti.bus.mqtt import MqttBus
from cti.bus.outbox import DEFAULT_OFFLINE_LIMIT
from cti.config import BrokerSettings
from cti.errors import ConfigError
from cti.protocol import EnginePresence

ROLES = ("engine", "console", "supervisor", "tool")
#: The engine's last will: offline, published by the broker if the engine's connection
#: dies (the engine announces itself online once ready: cti/engine/presence.py).
ENGINE_WILL = (topics.engine_presence(), EnginePresence(online=False))


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
    agent's presence; the ``engine`` leaves its offline presence as its last will, keeps
    a persistent session (pass its
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
        last_will=ENGINE_WILL if role == "engine" else None,
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
                async with asyncio.timeout(wait_online_s):
                    await bus.wait_online()
            except TimeoutError:
                reason = bus.status.error or "no answer"
                raise BrokerError(
                    f"cannot reach the broker {bus.address.display} within "
                    f"{wait_online_s:g} s: {reason}"
                ) from None
        yield bus
