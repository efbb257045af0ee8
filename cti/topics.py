"""The topic layout of the bus, version 1. Every topic starts with ``cti/v1/``.

| topic | direction | retained | what |
|---|---|---|---|
| ``cti/v1/agents/{agent}/commands`` | console -> engine | no | the agent's commands |
| ``cti/v1/agents/{agent}/events`` | engine -> console | no | offers, call events, results |
| ``cti/v1/agents/{agent}/state`` | engine -> all | yes | the agent's current state |
| ``cti/v1/agents/{agent}/presence`` | console -> all | yes | ``online``/``offline`` (last will) |
| ``cti/v1/colleagues/{agent}`` | engine -> all | yes | the agent's state as colleagues see it |
| ``cti/v1/queues/{queue}/status`` | engine -> all | yes | live queue figures |
| ``cti/v1/queues/{queue}/calls`` | engine -> all | yes | waiting calls, positions, waits |
| ``cti/v1/supervisors/{id}/commands`` | wallboard -> engine | no | supervisor actions |
| ``cti/v1/supervisors/{id}/events`` | engine -> wallboard | no | results of those actions |
| ``cti/v1/lines/{line}/events`` | adapter -> all | no | calls arriving and ending |
| ``cti/v1/campaigns/{campaign}/status`` | engine -> all | yes | an outbound campaign's figures |
| ``cti/v1/engine/health`` | engine -> all | yes | the engine's alerts (a full disk) |
| ``cti/v1/engine/presence`` | engine -> all | yes | ``online``/``offline`` (last will) |

Patterns use MQTT wildcards: ``+`` matches one level, ``#`` the rest.

The builders below do not check their argument: every id they get has passed
:data:`ID_CHARS` (a command's fields are checked by :mod:`cti.protocol`; a reply goes to
:func:`reply_topic` of the topic the broker accepted, never to an id in the payload), and
the MQTT bus refuses to publish on a topic that :func:`topic_problem` finds wrong.
"""

from __future__ import annotations

import re

PREFIX = "cti/v1"
#: The characters of an id (agent, supervisor, command, call): letters and digits of any
#: script and ``_ . : @ ~ = -``. Never ``/``, ``+``, ``#``, a space or a control character,
#: so an id is always exactly one topic level.
ID_CHARS = re.compile(r"[\w.:@~=-]*")
MAX_ID_CHARS = 128
#: MQTT's limit on a topic, in UTF-8 bytes.
MAX_TOPIC_BYTES = 65535


def agent_commands(agent_id: str) -> str:
    return f"{PREFIX}/agents/{agent_id}/commands"


def agent_events(agent_id: str) -> str:
    return f"{PREFIX}/agents/{agent_id}/events"


def agent_state(agent_id: str) -> str:
    return f"{PREFIX}/agents/{agent_id}/state"


def agent_presence(agent_id: str) -> str:
    return f"{PREFIX}/agents/{agent_id}/presence"


def colleague_state(agent_id: str) -> str:
    """An agent's name and state without its call (other agents may read it)."""
    return f"{PREFIX}/colleagues/{agent_id}"


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


def engine_presence() -> str:
    return f"{PREFIX}/engine/presence"


ALL_AGENT_COMMANDS = f"{PREFIX}/agents/+/commands"
ALL_AGENT_STATES = f"{PREFIX}/agents/+/state"
ALL_AGENT_PRESENCE = f"{PREFIX}/agents/+/presence"
ALL_COLLEAGUE_STATES = f"{PREFIX}/colleagues/+"
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


def is_id(value: str) -> bool:
    """Whether ``value`` is a well-formed id (see :data:`ID_CHARS`)."""
    return 0 < len(value) <= MAX_ID_CHARS and ID_CHARS.fullmatch(value) is not None


def reply_topic(command_topic: str) -> str | None:
    """Where the engine answers a command that came on ``command_topic``: the events
    topic of the agent or supervisor the topic names (the broker let only them publish
    there). None if it is not a command topic or its id is malformed."""
    parts = command_topic.split("/")
    if len(parts) != 5 or parts[:2] != ["cti", "v1"] or parts[4] != "commands":
        return None
    if parts[2] not in ("agents", "supervisors") or not is_id(parts[3]):
        return None
    return f"{PREFIX}/{parts[2]}/{parts[3]}/events"


def topic_problem(topic: str) -> str | None:
    """Why one cannot publish on ``topic``, or None: outside ``cti/v1/``, a wildcard, an
    empty level, a NUL or other control character, not UTF-8, or too long. A broker
    disconnects a client that publishes on such a topic."""
    if not topic.startswith(PREFIX + "/"):
        return "not a cti/v1/ topic"
    if "+" in topic or "#" in topic:
        return "a wildcard (+ or #) in it"
    if "" in topic.split("/"):
        return "an empty level in it"
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in topic):
        return "a control character in it"
    try:
        size = len(topic.encode("utf-8"))
    except UnicodeEncodeError:
        return "not UTF-8"
    if size > MAX_TOPIC_BYTES:
        return f"{size} bytes long (at most {MAX_TOPIC_BYTES})"
    return None


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
