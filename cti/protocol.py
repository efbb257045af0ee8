"""The wire protocol: every message on the bus, in one discriminated union, and how a
message is encoded and decoded.

Messages are pydantic v2 models serialised as JSON; the ``type`` field tells them
apart. The protocol version lives in the topic (``cti/v1/...``), see :mod:`cti.topics`.

* **Line events** come from a telephony adapter (a call arrived, the caller hung up), and
  **engine events** go from the engine to consoles and wallboards (offers, state):
  :mod:`cti.events`.
* **Commands** go from consoles to the engine (:mod:`cti.commands`). Each carries a
  ``command_id``; the engine applies a command once however often it arrives, and
  answers with a :class:`CommandResult` naming that id, or, for an agent's command
  applied whose event goes to the agent anyway (accept, reject, hang up), with that
  event naming it (:data:`~cti.events.ANSWERS`, :func:`answer`).

Every event and command is importable from here too: ``from cti.protocol import
CallOffered, Login`` is the usual way in.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Annotated, TypeGuard

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from cti import topics
from cti.commands import (
    COMMAND_TYPES,
    SUPERVISOR_COMMAND_TYPES,
    AcceptOffer,
    AddServiceItem,
    AnyCommand,
    CancelConsult,
    ChangeCallPriority,
    ChooseCustomer,
    CompleteConsult,
    CompleteWrapUp,
    ConferenceCall,
    ConsultCall,
    CreateCustomer,
    DialNumber,
    EscalateServiceItem,
    ExtendWrapUp,
    ForceLogout,
    ForceNotReady,
    HangUp,
    HoldCall,
    Login,
    Logout,
    MoveWaitingCall,
    MuteCall,
    PauseRecording,
    RejectOffer,
    RequestSnapshot,
    ResumeCall,
    SaveScriptRun,
    ScheduleCallback,
    SearchCustomers,
    SetCampaignPacing,
    SetCampaignState,
    SetNotReady,
    SetReady,
    ShowCustomer,
    SupervisorCommand,
    TransferCall,
)
from cti.errors import ProtocolError
from cti.events import (
    ANSWERS,
    MAX_DETAIL_HISTORY,
    MAX_QUEUE_CALLS_BYTES,
    MAX_QUEUE_CALLS_SENT,
    MAX_SCRIPT_ACTIONS,
    MAX_SCRIPT_ANSWERS,
    MAX_SCRIPT_CHARS,
    MAX_SCRIPT_STEPS,
    MAX_SEARCH_RESULTS,
    AgentPresence,
    AgentStateChanged,
    AnswerValue,
    AnyEvent,
    CallArrived,
    CallbackRequested,
    CallConnected,
    CallControl,
    CallEnded,
    CallerHungUp,
    CallOffered,
    CallScript,
    CampaignStatus,
    ColleagueState,
    CommandResult,
    CurrentCall,
    CustomerDetails,
    CustomerSearchResults,
    DialProgress,
    DtmfReceived,
    EngineHealth,
    EnginePresence,
    LineFeatures,
    OfferWithdrawn,
    PhoneAnswered,
    PhoneDisconnected,
    PhoneHungUp,
    PhoneReachability,
    PhoneRefused,
    QueueCalls,
    QueueStatus,
    RecordingFinished,
    ScreenPop,
    ScriptActions,
    WaitingCall,
    WireMessage,
)
from cti.fields import Id

__all__ = [
    "ANSWERS",
    "COMMAND_TYPES",
    "MAX_DETAIL_HISTORY",
    "MAX_MESSAGE_BYTES",
    "MAX_QUEUE_CALLS_BYTES",
    "MAX_QUEUE_CALLS_SENT",
    "MAX_SCRIPT_ACTIONS",
    "MAX_SCRIPT_ANSWERS",
    "MAX_SCRIPT_CHARS",
    "MAX_SCRIPT_STEPS",
    "MAX_SEARCH_RESULTS",
    "SUPERVISOR_COMMAND_TYPES",
    "AcceptOffer",
    "AddServiceItem",
    "AgentPresence",
    "AgentStateChanged",
    "AnswerValue",
    "AnyCommand",
    "AnyEvent",
    "CallArrived",
    "CallConnected",
    "CallControl",
    "CallEnded",
    "CallOffered",
    "CallScript",
    "CallbackRequested",
    "CallerHungUp",
    "CampaignStatus",
    "CancelConsult",
    "ChangeCallPriority",
    "ChooseCustomer",
    "ColleagueState",
    "Command",
    "CommandMemory",
    "CommandResult",
    "CompleteConsult",
    "CompleteWrapUp",
    "ConferenceCall",
    "ConsultCall",
    "CreateCustomer",
    "CurrentCall",
    "CustomerDetails",
    "CustomerSearchResults",
    "DialNumber",
    "DialProgress",
    "DtmfReceived",
    "EngineHealth",
    "EnginePresence",
    "EscalateServiceItem",
    "ExtendWrapUp",
    "ForceLogout",
    "ForceNotReady",
    "HangUp",
    "HoldCall",
    "LineFeatures",
    "Login",
    "Logout",
    "Message",
    "MoveWaitingCall",
    "MuteCall",
    "OfferWithdrawn",
    "PauseRecording",
    "PhoneAnswered",
    "PhoneDisconnected",
    "PhoneHungUp",
    "PhoneReachability",
    "PhoneRefused",
    "QueueCalls",
    "QueueStatus",
    "RecordingFinished",
    "RejectOffer",
    "RequestSnapshot",
    "ResumeCall",
    "SaveScriptRun",
    "ScheduleCallback",
    "ScreenPop",
    "ScriptActions",
    "SearchCustomers",
    "SetCampaignPacing",
    "SetCampaignState",
    "SetNotReady",
    "SetReady",
    "ShowCustomer",
    "SupervisorCommand",
    "TransferCall",
    "WaitingCall",
    "WireMessage",
    "answer",
    "decode",
    "encode",
    "is_command",
    "is_supervisor_command",
    "refusal",
]

#: The largest message on the wire, as JSON bytes (the broker's max_packet_size is above).
MAX_MESSAGE_BYTES = 240 * 1024

Command = Annotated[AnyCommand, Field(discriminator="type")]
Message = Annotated[AnyEvent | AnyCommand | SupervisorCommand, Field(discriminator="type")]


_MESSAGE: TypeAdapter[Message] = TypeAdapter(Message)
#: Its validator, called directly: TypeAdapter.validate_json's own Python costs ~1.4 us
#: a message (issue 23); the validation is the same.
_VALIDATOR = _MESSAGE.validator


def encode(message: WireMessage) -> bytes:
    """Serialise a message to JSON bytes (UTF-8, non-ASCII kept as is): the bytes of
    ``model_dump_json()``, straight from pydantic's serializer (no str made and encoded
    again, ~1 us a message less: issue 23)."""
    return message.__pydantic_serializer__.to_json(message)


def decode(payload: bytes | str, *, where: str = "") -> Message:
    """Parse JSON bytes into a message.

    Raises :class:`ProtocolError` naming ``where`` (usually the topic) and what was
    wrong: too big, bad JSON, an unknown ``type``, or a field that does not fit (the
    field is named; the sender's text is shown escaped and cut short).
    """
    # ``where`` is escaped only for an error: for every message it cost ~1.3 us of a
    # decode's ~3 (issue 23).
    size = len(payload.encode("utf-8") if isinstance(payload, str) else payload)
    if size > MAX_MESSAGE_BYTES:
        raise ProtocolError(
            f"bad message{_place(where)}: {size} bytes, more than the {MAX_MESSAGE_BYTES} allowed"
        )
    try:
        message: Message = _VALIDATOR.validate_json(payload)
        return message
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(_shown(str(part)) for part in first["loc"]) or "(message)"
        raise ProtocolError(
            f"bad message{_place(where)}: {loc}: {first['msg']} "
            f"(expected one of the cti/v1 message types, as JSON)"
        ) from exc


def _place(where: str) -> str:
    return f" on {_shown(where)}" if where else ""


def _shown(text: str, limit: int = 80) -> str:
    """Sender-chosen text for a log line: escaped (no control characters) and cut."""
    shown = text.encode("unicode_escape").decode("ascii")
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def refusal(topic: str, payload: bytes, error: str) -> tuple[str, CommandResult] | None:
    """The answer to a command that did not decode, when one can be sent safely: the
    topic is a command topic (its id checked, :func:`cti.topics.reply_topic`) and the
    payload names a valid ``command_id``. Else None (the error is only logged)."""
    reply = topics.reply_topic(topic)
    if reply is None or len(payload) > MAX_MESSAGE_BYTES:
        return None
    try:
        command_id = _COMMAND_ID.validate_json(payload).command_id
    except ValidationError:
        return None
    return reply, CommandResult(command_id=command_id, ok=False, error=error)


class _CommandIdOnly(BaseModel):
    command_id: Id


_COMMAND_ID: TypeAdapter[_CommandIdOnly] = TypeAdapter(_CommandIdOnly)


class CommandMemory:
    """The results of recent commands by id, so a repeat gets the same answer without
    being applied again: at most ``max_count`` commands and about ``max_bytes`` of ids
    and errors (the oldest forgotten first)."""

    def __init__(self, max_count: int = 10_000, max_bytes: int = 4 * 1024 * 1024) -> None:
        self.max_count, self.max_bytes = max_count, max_bytes
        self._results: OrderedDict[str, CommandResult] = OrderedDict()
        self.bytes = 0
        """What the results kept take, by :meth:`size`."""

    def __len__(self) -> int:
        return len(self._results)

    def get(self, command_id: str) -> CommandResult | None:
        return self._results.get(command_id)

    def remember(self, command_id: str, result: CommandResult) -> None:
        old = self._results.pop(command_id, None)
        if old is not None:
            self.bytes -= self.size(command_id, old)
        self._results[command_id] = result
        self.bytes += self.size(command_id, result)
        while len(self._results) > self.max_count or (
            self.bytes > self.max_bytes and len(self._results) > 1
        ):
            gone_id, gone = self._results.popitem(last=False)
            self.bytes -= self.size(gone_id, gone)

    @staticmethod
    def size(command_id: str, result: CommandResult) -> int:
        """Bytes a kept result takes, roughly (its strings and the objects around them)."""
        return 2 * len(command_id) + len(result.command_id) + len(result.error) + 400


def answer(message: Message) -> CommandResult | None:
    """What ``message`` answers of a command: a :class:`CommandResult` as it is; an event
    naming the agent's command that caused it (:data:`~cti.events.ANSWERS`) as that
    command applied; None for anything else."""
    if isinstance(message, CommandResult):
        return message
    if isinstance(message, ANSWERS) and message.command_id:
        return CommandResult(command_id=message.command_id, ok=True)
    return None


def is_command(message: Message) -> TypeGuard[AnyCommand]:
    """Whether ``message`` is an agent's command."""
    return isinstance(message, COMMAND_TYPES)


def is_supervisor_command(message: Message) -> TypeGuard[SupervisorCommand]:
    return isinstance(message, SUPERVISOR_COMMAND_TYPES)
