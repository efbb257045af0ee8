"""A reloaded configuration applied to a running engine (:meth:`EngineService.reconfigure`),
apart from the service's module, which holds its per-call path."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from cti.config import Config
from queue_engine import inputs as ri

if TYPE_CHECKING:
    from cti.engine.service import EngineService

log = logging.getLogger("cti.engine.service")  # its lines, as when the service wrote them


def reconfigured(service: EngineService, config: Config) -> None:
    """:meth:`EngineService.reconfigure`: ``config`` applied to ``service``."""
    now = service.now()
    old_queues = {q.name: q for q in service.config.queues}
    new_queues = {q.name: q for q in config.queues}
    for name in sorted(set(old_queues) - set(new_queues)):
        log.warning("queue %r is no longer configured; it stays until a restart", name)
    for name, queue in new_queues.items():
        if old_queues.get(name) != queue:
            service.route(ri.QueueConfigured(queue=queue))
            service.stats.configure_queue(queue)
    old_agents = {a.id: a for a in service.config.agents}
    for agent in config.agents:
        if old_agents.get(agent.id) != agent:
            service.route(ri.AgentConfigured(agent=agent))
            service.stats.set_agent_queues(agent.id, list(agent.queues), now)
    for agent_id in sorted(set(old_agents) - {a.id for a in config.agents}):
        log.warning("agent %r is no longer configured; it stays until a restart", agent_id)
    service.pops.agent_names.update({a.id: a.name for a in config.agents if a.name})
    for queue in config.queues:
        service.scripts.get(queue.script)  # a broken script is logged at once
    service.config = config
