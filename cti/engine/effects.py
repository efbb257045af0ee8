"""What the engine's effects task carries out, in order: the router's actions, and the
engine's own steps queued between them (a publication, an audio plan, an agent's state)
so that each keeps its place after the actions decided before it."""

from __future__ import annotations

from dataclasses import dataclass

from cti.protocol import Message
from queue_engine.actions import Action


@dataclass(frozen=True, slots=True)
class VoiceUpdate:
    """Send the call's audio plan to its line (if it changed), in turn with the effects."""

    call_id: str


@dataclass(frozen=True, slots=True)
class StateOf:
    """Publish the agent's state again (its phone became reachable or not)."""

    agent_id: str


@dataclass(frozen=True, slots=True)
class Publish:
    """A message to publish in turn with the router's effects."""

    topic: str
    message: Message
    retain: bool = False


Effect = Action | Publish | VoiceUpdate | StateOf
"""What the effects task carries out, in order."""
