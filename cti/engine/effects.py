"""What the engine's effects task carries out, in order: the router's actions, and the
engine's own steps queued between them (a publication, an audio plan, an agent's state)
so that each keeps its place after the actions decided before it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from cti.bus.memory import Bus
from cti.engine.built import built
from cti.models import CallerInfo
from cti.protocol import Message
from queue_engine import inputs as ri
from queue_engine.actions import Action, AgentStateSet, OfferCall


@dataclass(frozen=True, slots=True)
class VoiceUpdate:
    """Send the call's audio plan to its line (if it changed), in turn with the effects."""

    call_id: str


@dataclass(frozen=True, slots=True)
class StateOf:
    """Publish the agent's state again (its phone became reachable or not)."""

    agent_id: str


@dataclass(slots=True)
class Publish:
    """A message to publish in turn with the router's effects. Not frozen: a frozen
    dataclass sets each field through ``object.__setattr__`` (~1 us more; three a call)."""

    topic: str
    message: Message
    retain: bool = False


Effect = Action | Publish | VoiceUpdate | StateOf
"""What the effects task carries out, in order."""


def calls_touched(event: object, actions: list[Action]) -> list[str]:
    """The calls an input and its actions name, once each, in order."""
    named = (getattr(event, "call_id", None), *(getattr(a, "call_id", None) for a in actions))
    return list(dict.fromkeys(call_id for call_id in named if call_id is not None))


def offers_first(actions: list[Action]) -> list[Action]:
    """``actions`` with each offer moved ahead of the agent's state change decided just
    before it (Ready -> Reserved): the offer is what the agent waits for, and its
    state's two publications cost about as long again (issue 23). The state is read from
    the router when it is published, so it says the same either way; a desk takes an
    offer before the state that goes with it (``agent_console.desk_model``)."""
    moved = actions  # copied only to move an offer (issue 23: most inputs have none)
    for n in range(1, len(moved)):
        offer, state = moved[n], moved[n - 1]
        if (
            isinstance(offer, OfferCall)
            and isinstance(state, AgentStateSet)
            and state.agent_id == offer.agent_id
        ):
            if moved is actions:
                moved = list(actions)
            moved[n - 1], moved[n] = offer, state
    return moved


def arrives(call_id: str, queue: str, caller: CallerInfo) -> ri.CallArrives:
    """The router input of a call arriving in ``queue``, made of the line event's
    validated id, a configured queue's name and the caller the engine identified as they
    are (:mod:`cti.engine.built`: the input validation makes of them, issue 23)."""
    return built(ri.CallArrives, {"kind": "call_arrives", "call_id": call_id, "queue": queue,
                                  "caller": caller, "direction": "inbound"})  # fmt: skip


PublishEncoded = Callable[[str, Message, bytes], Awaitable[None]]
"""Publish a message on a topic with its bytes (:func:`cti.protocol.encode`) made already."""


def publish_encoded(bus: Bus) -> PublishEncoded:
    """``bus``'s own ``publish_encoded`` (:class:`~cti.bus.mqtt.MqttBus`: the bytes sent as
    they are), else its ``publish``, which encodes the message itself."""
    own: PublishEncoded | None = getattr(bus, "publish_encoded", None)
    if own is not None:
        return own

    async def publish(topic: str, message: Message, payload: bytes) -> None:
        await bus.publish(topic, message)

    return publish
