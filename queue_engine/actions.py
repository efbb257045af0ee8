"""What the router asks its shell to do. The router returns these; it performs no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cti.models import AgentState, CallDetailRecord

WithdrawReason = Literal["timeout", "rejected", "caller_hung_up", "logged_out"]


@dataclass(frozen=True, slots=True)
class OfferCall:
    """Ring ``agent_id`` with ``call_id``; the offer lapses at ``deadline``."""

    call_id: str
    agent_id: str
    queue: str
    deadline: float


@dataclass(frozen=True, slots=True)
class WithdrawOffer:
    """The offer of ``call_id`` to ``agent_id`` is over (the call went back or ended)."""

    call_id: str
    agent_id: str
    reason: WithdrawReason


@dataclass(frozen=True, slots=True)
class ConnectCall:
    """The agent accepted: answer the line and bridge it to the agent."""

    call_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class DisconnectCall:
    """The conversation is over; hang up the line if the agent ended it."""

    call_id: str
    agent_id: str
    by: Literal["agent", "caller"]


@dataclass(frozen=True, slots=True)
class AgentStateSet:
    """An agent entered ``state``. ``deadline`` is the wrap-up or offer deadline."""

    agent_id: str
    state: AgentState
    reason: str = ""
    call_id: str | None = None
    deadline: float | None = None


@dataclass(frozen=True, slots=True)
class RecordCall:
    """The call is finished: keep its detail record."""

    cdr: CallDetailRecord


Action = OfferCall | WithdrawOffer | ConnectCall | DisconnectCall | AgentStateSet | RecordCall
