"""What the router asks its shell to do. The router returns these; it performs no I/O.

Actions are plain slotted dataclasses (not frozen: building a frozen one costs three
times as much, and the router makes several per call). Treat them as read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cti.models import AgentState, CallDetailRecord, ExitAction

WithdrawReason = Literal[
    "timeout", "rejected", "caller_hung_up", "answered_elsewhere", "moved", "exited"
]


@dataclass(slots=True)
class OfferCall:
    """Ring ``agent_id`` with ``call_id``; the offer lapses at ``deadline``."""

    call_id: str
    agent_id: str
    queue: str
    deadline: float


@dataclass(slots=True)
class WithdrawOffer:
    """The offer of ``call_id`` to ``agent_id`` is over (the call went back or ended)."""

    call_id: str
    agent_id: str
    reason: WithdrawReason


@dataclass(slots=True)
class ConnectCall:
    """The agent accepted: answer the line and bridge it to the agent.

    For a callback (the caller's line was released), ``dial`` is the number to call
    back for the agent instead.
    """

    call_id: str
    agent_id: str
    dial: str | None = None


@dataclass(slots=True)
class ReleaseLine:
    """Hang up the caller's line; the call stays in the queue as a callback."""

    call_id: str


@dataclass(slots=True)
class ExitCall:
    """The call leaves the queue for ``action`` (voicemail or a message, then hang-up)."""

    call_id: str
    queue: str
    action: ExitAction
    reason: str
    message: str = ""


@dataclass(slots=True)
class MoveCall:
    """The call moved to another queue (by an exit rule or a supervisor); age kept."""

    call_id: str
    from_queue: str
    to_queue: str
    reason: str


@dataclass(slots=True)
class DisconnectCall:
    """The conversation is over; hang up the line if the agent ended it."""

    call_id: str
    agent_id: str
    by: Literal["agent", "caller"]


@dataclass(slots=True)
class AgentStateSet:
    """An agent entered ``state``. ``deadline`` is the wrap-up or offer deadline."""

    agent_id: str
    state: AgentState
    reason: str = ""
    call_id: str | None = None
    deadline: float | None = None


@dataclass(slots=True)
class RecordCall:
    """The call is finished: keep its detail record."""

    cdr: CallDetailRecord


Action = (
    OfferCall
    | WithdrawOffer
    | ConnectCall
    | DisconnectCall
    | AgentStateSet
    | RecordCall
    | ReleaseLine
    | ExitCall
    | MoveCall
)
