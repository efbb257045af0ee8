"""The wire protocol: every event and command on the bus, in one discriminated union.

Messages are pydantic v2 models serialised as JSON; the ``type`` field tells them
apart. The protocol version lives in the topic (``cti/v1/...``), see :mod:`cti.topics`.

* **Line events** come from a telephony adapter (a call arrived, the caller hung up).
* **Engine events** go from the engine to consoles and wallboards (offers, state).
* **Commands** go from consoles to the engine. Each carries a ``command_id``; the engine
  applies a command once however often it arrives, and answers with a
  :class:`CommandResult` naming that id.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal, TypeGuard, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from cti.errors import ProtocolError
from cti.models import AgentState, CallerKind, Customer, Interaction


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _new_id() -> str:
    return uuid.uuid4().hex


# --- line events (adapter -> engine) -------------------------------------------------


class CallArrived(_Message):
    """A call rings on a line. ``ani`` is the number exactly as the line gave it."""

    type: Literal["call_arrived"] = "call_arrived"
    call_id: str
    ani: str = ""
    dnis: str = ""
    line: str = ""
    caller_name: str = ""


class CallerHungUp(_Message):
    """The far end hung up (while waiting, ringing or talking)."""

    type: Literal["caller_hung_up"] = "caller_hung_up"
    call_id: str
    line: str = ""


# --- engine events (engine -> consoles) ----------------------------------------------


class ScreenPop(_Message):
    """What the agent sees when a call is offered."""

    call_id: str
    queue: str
    ani: str
    e164: str | None = None
    caller_kind: CallerKind
    customer: Customer | None = None
    history: tuple[Interaction, ...] = ()
    waited_s: float = 0.0
    priority_reason: str = ""


class AgentStateChanged(_Message):
    """An agent's state; published retained on the agent's state topic."""

    type: Literal["agent_state"] = "agent_state"
    agent_id: str
    state: AgentState
    reason: str = ""
    since_wall: float = Field(description="wall-clock epoch when this state began")
    call_id: str | None = None
    wrap_up_deadline_wall: float | None = None


class CallOffered(_Message):
    """A call is offered to an agent; it must accept before ``deadline_wall``."""

    type: Literal["call_offered"] = "call_offered"
    agent_id: str
    pop: ScreenPop
    timeout_s: float
    deadline_wall: float
    dispositions: tuple[str, ...] = ()


class OfferWithdrawn(_Message):
    """An offer is no longer valid: timed out, rejected, or the caller hung up."""

    type: Literal["offer_withdrawn"] = "offer_withdrawn"
    agent_id: str
    call_id: str
    reason: str


class CallConnected(_Message):
    type: Literal["call_connected"] = "call_connected"
    agent_id: str
    call_id: str


class CallEnded(_Message):
    """The conversation ended; ``by`` is ``agent`` or ``caller``."""

    type: Literal["call_ended"] = "call_ended"
    agent_id: str
    call_id: str
    by: Literal["agent", "caller"]


class QueueStatus(_Message):
    """A queue's live figures; published retained on the queue's status topic."""

    type: Literal["queue_status"] = "queue_status"
    queue: str
    waiting: int
    longest_wait_s: float
    agents_ready: int
    agents_busy: int
    agents_logged_in: int
    offered: int
    answered: int
    abandoned: int
    service_level: float | None
    asa_s: float | None
    at_wall: float


class CommandResult(_Message):
    """The engine's answer to a command: applied, or refused with a reason."""

    type: Literal["command_result"] = "command_result"
    command_id: str
    ok: bool
    error: str = ""


# --- commands (console -> engine) ----------------------------------------------------


class _Command(_Message):
    command_id: str = Field(default_factory=_new_id)
    agent_id: str


class Login(_Command):
    type: Literal["login"] = "login"


class Logout(_Command):
    type: Literal["logout"] = "logout"


class SetReady(_Command):
    type: Literal["set_ready"] = "set_ready"


class SetNotReady(_Command):
    type: Literal["set_not_ready"] = "set_not_ready"
    reason: str = "break"


class AcceptOffer(_Command):
    type: Literal["accept_offer"] = "accept_offer"
    call_id: str


class RejectOffer(_Command):
    type: Literal["reject_offer"] = "reject_offer"
    call_id: str


class HangUp(_Command):
    type: Literal["hang_up"] = "hang_up"
    call_id: str


class CompleteWrapUp(_Command):
    type: Literal["complete_wrap_up"] = "complete_wrap_up"
    call_id: str
    disposition: str
    note: str = ""


class RequestSnapshot(_Command):
    """Ask the engine to re-send this agent's state and current offer or call."""

    type: Literal["request_snapshot"] = "request_snapshot"


AnyCommand = (
    Login
    | Logout
    | SetReady
    | SetNotReady
    | AcceptOffer
    | RejectOffer
    | HangUp
    | CompleteWrapUp
    | RequestSnapshot
)
"""Every command a console may send."""

AnyEvent = (
    CallArrived
    | CallerHungUp
    | AgentStateChanged
    | CallOffered
    | OfferWithdrawn
    | CallConnected
    | CallEnded
    | QueueStatus
    | CommandResult
)
"""Every event a line or the engine may publish."""

Command = Annotated[AnyCommand, Field(discriminator="type")]
Message = Annotated[AnyEvent | AnyCommand, Field(discriminator="type")]

COMMAND_TYPES: tuple[type[_Command], ...] = get_args(AnyCommand)

_MESSAGE: TypeAdapter[Message] = TypeAdapter(Message)


def encode(message: _Message) -> bytes:
    """Serialise a message to JSON bytes (UTF-8, non-ASCII kept as is)."""
    return message.model_dump_json().encode("utf-8")


def decode(payload: bytes | str, *, where: str = "") -> Message:
    """Parse JSON bytes into a message.

    Raises :class:`ProtocolError` naming ``where`` (usually the topic) and what was
    wrong: bad JSON, an unknown ``type``, or a field that does not fit.
    """
    try:
        return _MESSAGE.validate_json(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(part) for part in first["loc"]) or "(message)"
        place = f" on {where}" if where else ""
        raise ProtocolError(
            f"bad message{place}: {loc}: {first['msg']} "
            f"(expected one of the cti/v1 message types, as JSON)"
        ) from exc


def is_command(message: Message) -> TypeGuard[AnyCommand]:
    return isinstance(message, COMMAND_TYPES)
