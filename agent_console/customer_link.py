"""Asking the engine about customers: one command, its answer, over the bus.

The desk's customer commands (:mod:`cti.protocol`: search, show, choose, create, service
items) are answered on the agent's events topic by a :class:`CustomerSearchResults` or
:class:`CustomerDetails` and then the command's :class:`CommandResult`, all naming the
command's id. :func:`ask` subscribes first, publishes, and waits for that result (with a
timeout), so no answer is missed and none is taken for another command's.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from cti import topics
from cti.bus.memory import Bus
from cti.protocol import AnyCommand, CommandResult, CustomerDetails, CustomerSearchResults

#: How long the engine may take to answer a customer command.
ANSWER_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Answer:
    """What the engine said to one command."""

    ok: bool
    error: str = ""
    details: CustomerDetails | None = None
    results: CustomerSearchResults | None = None


async def ask(bus: Bus, command: AnyCommand, timeout_s: float = ANSWER_TIMEOUT_S) -> Answer:
    """Send ``command`` and wait for the engine's answer; never raises for a silent or
    unreachable engine (the answer then says so)."""
    details: CustomerDetails | None = None
    results: CustomerSearchResults | None = None
    try:
        async with (
            asyncio.timeout(timeout_s),
            bus.subscribe(topics.agent_events(command.agent_id)) as events,
        ):
            await bus.publish(topics.agent_commands(command.agent_id), command)
            async for _topic, message in events:
                if getattr(message, "command_id", None) != command.command_id:
                    continue
                if isinstance(message, CustomerDetails):
                    details = message
                elif isinstance(message, CustomerSearchResults):
                    results = message
                elif isinstance(message, CommandResult):
                    return Answer(message.ok, message.error, details, results)
    except TimeoutError:
        pass
    return Answer(
        False, f"no answer from the engine within {timeout_s:g} s: is it running and reachable?"
    )
