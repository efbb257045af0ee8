"""Presence: the consoles' as the engine sees it, and the engine's own.

A console announces ``AgentPresence(online=True)`` (retained) on its agent's presence
topic and leaves ``online=False`` as its MQTT last will (:mod:`cti.bus.mqtt`). An agent
whose console went offline with the agent logged in would otherwise stay Talking (or
Ready, offered call after call) until someone noticed. :class:`PresenceWatch` (sans-I/O)
keeps when each console went offline; :func:`watch_presence` runs it for the engine:
once a console has been gone ``[engine] console_grace_s`` (default 10 s) without coming
back, the agent is logged out as a ``Logout`` would (the call in hand goes back by the
queue's ``on_agent_logout``: docs/acd.md, "Logging out with a call"). A console back
within the grace keeps everything.

The engine's own presence (:class:`~cti.protocol.EnginePresence` on
:func:`cti.topics.engine_presence`, retained) says whether anyone routes: online once the
engine is ready, offline as it stops, and offline as the MQTT bus's last will when the
process dies (:func:`cti.bus.roles.make_bus`), so a console can tell "the broker is up
but the engine is not" (:mod:`agent_console.connection`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from cti import log_limits, topics
from cti.bus.memory import Bus, Subscription
from cti.clock import wall_time
from cti.errors import CtiError
from cti.models import AgentState
from cti.protocol import AgentPresence, EnginePresence
from queue_engine import inputs as ri

if TYPE_CHECKING:
    from cti.engine.service import EngineService

log = logging.getLogger(__name__)


class PresenceWatch:
    """When each agent's console went offline (sans-I/O: every method takes ``now``)."""

    def __init__(self) -> None:
        self._gone: dict[str, float] = {}
        """Agent id -> when its console was last seen going offline."""
        self._client: dict[str, str] = {}
        """Agent id -> the client id of the console that last came online."""

    def seen(self, presence: AgentPresence, now: float) -> None:
        """A console's announcement: online forgets the absence, offline starts one
        (a repeated offline keeps the first moment). The will of a console another one
        replaced (a client id other than the one online) is not an absence."""
        agent_id, client = presence.agent_id, presence.client_id
        if presence.online:
            self._gone.pop(agent_id, None)
            self._client[agent_id] = client
        elif not (client and self._client.get(agent_id, client) != client):
            self._gone.setdefault(agent_id, now)

    def gone(self, agent_id: str) -> bool:
        return agent_id in self._gone

    def next_due(self, grace_s: float) -> float | None:
        """When the next absence reaches ``grace_s``; None when no console is gone."""
        first = min(self._gone.values(), default=None)
        return None if first is None else first + grace_s

    def due(self, now: float, grace_s: float) -> list[str]:
        """The agents whose console has been gone ``grace_s`` by ``now`` (each once)."""
        agents = sorted(a for a, since in self._gone.items() if now - since >= grace_s)
        for agent_id in agents:
            del self._gone[agent_id]
        return agents


async def watch_presence(service: EngineService) -> None:
    """Follow the consoles' presence for as long as the engine runs (a helper task of
    :func:`cti.engine.running.running_engine`)."""
    watch = PresenceWatch()
    wake = asyncio.Event()
    async with service.bus.subscribe(topics.ALL_AGENT_PRESENCE) as presence:
        reader = asyncio.create_task(_read(presence, watch, service, wake), name="presence")
        try:
            while True:
                grace_s = service.config.engine.console_grace_s
                due = watch.next_due(grace_s)
                delay = None if due is None else max(0.0, due - service.now())
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await wake.wait()
                wake.clear()
                for agent_id in watch.due(service.now(), grace_s):
                    log_out_absent(service, agent_id, grace_s)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


async def _read(
    presence: Subscription, watch: PresenceWatch, service: EngineService, wake: asyncio.Event
) -> None:
    async for topic, message in presence:
        if not isinstance(message, AgentPresence) or message.agent_id != topics.agent_of(topic):
            log_limits.warning(log, "%s: %s is not this agent's presence; ignored", topic,
                               message.type)  # fmt: skip
            continue
        watch.seen(message, service.now())
        if watch.gone(message.agent_id):
            log.info("agent %s: console offline; logged out after %g s unless it is back",
                     message.agent_id, service.config.engine.console_grace_s)  # fmt: skip
        wake.set()


def log_out_absent(service: EngineService, agent_id: str, grace_s: float) -> None:
    """Log out an agent whose console is gone (nothing to do if it is logged out, or
    not one of this engine's agents)."""
    router = service.router
    if not router.has_agent(agent_id) or router.agent(agent_id).state is AgentState.LOGGED_OUT:
        return
    call_id = router.agent(agent_id).call_id
    handed = f" (call {call_id} goes by its queue's on_agent_logout)" if call_id else ""
    log.warning("agent %s: console offline for %g s; logging the agent out%s", agent_id,
                grace_s, handed)  # fmt: skip
    try:
        service.route(ri.AgentLogsOut(agent_id=agent_id))
    except CtiError as exc:
        log_limits.error(log, "agent %s: console offline, but not logged out: %s", agent_id, exc)


async def announce_engine(bus: Bus, *, online: bool) -> None:
    """Publish the engine's presence (retained)."""
    await bus.publish(
        topics.engine_presence(), EnginePresence(online=online, at_wall=wall_time()), retain=True
    )
