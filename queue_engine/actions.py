"""What the router asks its shell to do. The router returns these; it performs no I/O.

Actions are plain slotted dataclasses (not frozen: building a frozen one costs three
times as much, and the router makes several per call). Treat them as read-only. The
ones made on every call write their ``__init__`` out: compiled with mypyc (see
``benchmarks/bench_simulator.py``), a generated ``__init__`` stays interpreted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cti.models import AgentState, CallDetailRecord, ExitAction

ConsultState = Literal["", "ringing", "talking", "conference"]
"""How far a consultation is: none, ringing the agent consulted, talking, conference."""

WithdrawReason = Literal[
    "timeout", "rejected", "caller_hung_up", "answered_elsewhere", "moved", "exited", "cancelled"
]


@dataclass(slots=True, init=False)
class OfferCall:
    """Ring ``agent_id`` with ``call_id``; the offer lapses at ``deadline``."""

    call_id: str
    agent_id: str
    queue: str
    deadline: float
    consult_from: str
    """Not empty: a consultation asked by that agent (the call is connected already)."""

    def __init__(
        self, call_id: str, agent_id: str, queue: str, deadline: float, consult_from: str = ""
    ) -> None:
        self.call_id = call_id
        self.agent_id = agent_id
        self.queue = queue
        self.deadline = deadline
        self.consult_from = consult_from


@dataclass(slots=True)
class WithdrawOffer:
    """The offer of ``call_id`` to ``agent_id`` is over (the call went back or ended)."""

    call_id: str
    agent_id: str
    reason: WithdrawReason


@dataclass(slots=True, init=False)
class ConnectCall:
    """The agent accepted: answer the line and bridge it to the agent.

    For a callback (the caller's line was released), ``dial`` is the number to call
    back for the agent instead.
    """

    call_id: str
    agent_id: str
    dial: str | None
    answered: bool
    """The line has the call connected already (it was transferred): bridge, no answer."""

    def __init__(
        self, call_id: str, agent_id: str, dial: str | None = None, answered: bool = False
    ) -> None:
        self.call_id = call_id
        self.agent_id = agent_id
        self.dial = dial
        self.answered = answered


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


@dataclass(slots=True, init=False)
class DisconnectCall:
    """The conversation is over for ``agent_id``; hang up the line if the agent ended
    it (``transfer``: the call goes on elsewhere, the line stays up)."""

    call_id: str
    agent_id: str
    by: Literal["agent", "caller", "transfer"]

    def __init__(
        self, call_id: str, agent_id: str, by: Literal["agent", "caller", "transfer"]
    ) -> None:
        self.call_id = call_id
        self.agent_id = agent_id
        self.by = by


@dataclass(slots=True, init=False)
class AgentStateSet:
    """An agent entered ``state``. ``deadline`` is the wrap-up or offer deadline."""

    agent_id: str
    state: AgentState
    reason: str
    call_id: str | None
    deadline: float | None

    def __init__(
        self,
        agent_id: str,
        state: AgentState,
        reason: str = "",
        call_id: str | None = None,
        deadline: float | None = None,
    ) -> None:
        self.agent_id = agent_id
        self.state = state
        self.reason = reason
        self.call_id = call_id
        self.deadline = deadline


@dataclass(slots=True, init=False)
class RecordCall:
    """The call is finished: keep its detail record."""

    cdr: CallDetailRecord

    def __init__(self, cdr: CallDetailRecord) -> None:
        self.cdr = cdr


@dataclass(slots=True)
class JoinCall:
    """An agent consulted accepted: it joins the conversation (nothing to do on the line)."""

    call_id: str
    agent_id: str


@dataclass(slots=True)
class ConsultChanged:
    """Tell ``agent_id`` how the consultation on its call stands (``state`` empty: none)."""

    call_id: str
    agent_id: str
    target: str
    state: ConsultState
    note: str = ""


@dataclass(slots=True)
class RecordLeg:
    """An agent who handed the call on finished its wrap-up: keep its disposition (the
    call's one record comes when the call ends)."""

    call_id: str
    agent_id: str
    queue: str
    customer_id: int | None
    disposition: str
    note: str


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
    | JoinCall
    | ConsultChanged
    | RecordLeg
)
