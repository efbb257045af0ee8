"""The topic layout of the bus, version 1. Every topic starts with ``cti/v1/``.

| topic | direction | retained | what |
|---|---|---|---|
| ``cti/v1/agents/{agent}/commands`` | console -> engine | no | the agent's commands |
| ``cti/v1/agents/{agent}/events`` | engine -> console | no | offers, call events, results |
| ``cti/v1/agents/{agent}/state`` | engine -> all | yes | the agent's current state |
| ``cti/v1/agents/{agent}/presence`` | console -> all | yes | ``online``/``offline`` (last will) |
| ``cti/v1/queues/{queue}/status`` | engine -> all | yes | live queue figures |
| ``cti/v1/queues/{queue}/calls`` | engine -> all | yes | waiting calls, positions, waits |
| ``cti/v1/supervisors/{id}/commands`` | wallboard -> engine | no | supervisor actions |
| ``cti/v1/supervisors/{id}/events`` | engine -> wallboard | no | results of those actions |
| ``cti/v1/lines/{line}/events`` | adapter -> all | no | calls arriving and ending |
| ``cti/v1/campaigns/{campaign}/status`` | engine -> all | yes | an outbound campaign's figures |
| ``cti/v1/engine/health`` | engine -> all | yes | the engine's alerts (a full disk) |

Patterns use MQTT wildcards: ``+`` matches one level, ``#`` the rest.
"""

from __future__ import annotations

PREFIX = "cti/v1"


def agent_commands(agent_id: str) -> str:
    return f"{PREFIX}/agents/{agent_id}/commands"


def agent_events(agent_id: str) -> str:
    return f"{PREFIX}/agents/{agent_id}/events"


def agent_state(agent_id: str) -> str:
    return f"{PREFIX}/agents/{agent_id}/state"


def agent_presence(agent_id: str) -> str:
    return f"{PREFIX}/agents/{agent_id}/presence"


def queue_status(queue: str) -> str:
    return f"{PREFIX}/queues/{queue}/status"


def queue_calls(queue: str) -> str:
    return f"{PREFIX}/queues/{queue}/calls"


def supervisor_commands(supervisor_id: str) -> str:
    return f"{PREFIX}/supervisors/{supervisor_id}/commands"


def supervisor_events(supervisor_id: str) -> str:
    return f"{PREFIX}/supervisors/{supervisor_id}/events"


def line_events(line: str) -> str:
    return f"{PREFIX}/lines/{line}/events"


def campaign_status(campaign: str) -> str:
    return f"{PREFIX}/campaigns/{campaign}/status"


def engine_health() -> str:
    return f"{PREFIX}/engine/health"


ALL_AGENT_COMMANDS = f"{PREFIX}/agents/+/commands"
ALL_AGENT_STATES = f"{PREFIX}/agents/+/state"
ALL_QUEUE_STATUS = f"{PREFIX}/queues/+/status"
ALL_QUEUE_CALLS = f"{PREFIX}/queues/+/calls"
ALL_SUPERVISOR_COMMANDS = f"{PREFIX}/supervisors/+/commands"
ALL_CAMPAIGN_STATUS = f"{PREFIX}/campaigns/+/status"


def agent_of(topic: str) -> str | None:
    """The agent id in an ``agents/{agent}/...`` topic, else ``None``."""
    return _id_in(topic, "agents")


def supervisor_of(topic: str) -> str | None:
    """The supervisor id in a ``supervisors/{id}/...`` topic, else ``None``."""
    return _id_in(topic, "supervisors")


def _id_in(topic: str, kind: str) -> str | None:
    parts = topic.split("/")
    if len(parts) >= 4 and parts[:3] == ["cti", "v1", kind]:
        return parts[3]
    return None


def matches(pattern: str, topic: str) -> bool:
    """Whether ``topic`` matches an MQTT-style ``pattern`` (``+`` and ``#``)."""
    pat = pattern.split("/")
    top = topic.split("/")
    for i, part in enumerate(pat):
        if part == "#":
            return True
        if i >= len(top):
            return False
        if part != "+" and part != top[i]:
            return False
    return len(pat) == len(top)
