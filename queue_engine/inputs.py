"""Everything the router can be told, as data.

``Router.handle(input, now)`` is the router's one entry point for its shells: the
engine service builds one of these for each line event, agent command, supervisor
action and timer, and hands it over. Because inputs are plain serialisable values and
the router is deterministic, the sequence of ``(now, input)`` pairs *is* the router's
state: the engine journals it and replays it after a crash
(see :mod:`cti.store.journal`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from cti.models import AgentConfig, CallerInfo, QueueConfig


class _Input(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AgentLogsIn(_Input):
    kind: Literal["agent_logs_in"] = "agent_logs_in"
    agent_id: str


class AgentLogsOut(_Input):
    kind: Literal["agent_logs_out"] = "agent_logs_out"
    agent_id: str


class AgentGoesReady(_Input):
    kind: Literal["agent_goes_ready"] = "agent_goes_ready"
    agent_id: str


class AgentGoesNotReady(_Input):
    kind: Literal["agent_goes_not_ready"] = "agent_goes_not_ready"
    agent_id: str
    reason: str = "break"


class AgentAccepts(_Input):
    kind: Literal["agent_accepts"] = "agent_accepts"
    agent_id: str
    call_id: str


class AgentRejects(_Input):
    kind: Literal["agent_rejects"] = "agent_rejects"
    agent_id: str
    call_id: str


class AgentHangsUp(_Input):
    kind: Literal["agent_hangs_up"] = "agent_hangs_up"
    agent_id: str
    call_id: str


class AgentFinishesWrapUp(_Input):
    kind: Literal["agent_finishes_wrap_up"] = "agent_finishes_wrap_up"
    agent_id: str
    call_id: str
    disposition: str = ""
    note: str = ""


class AgentExtendsWrapUp(_Input):
    """More wrap-up time, up to the queue's cap."""

    kind: Literal["agent_extends_wrap_up"] = "agent_extends_wrap_up"
    agent_id: str
    call_id: str
    seconds: float = Field(gt=0)


class AgentHoldsCall(_Input):
    """The line holds the caller of the call the agent talks on."""

    kind: Literal["agent_holds_call"] = "agent_holds_call"
    agent_id: str
    call_id: str


class AgentResumesCall(_Input):
    """The line takes the caller off hold (not while a consultation is under way)."""

    kind: Literal["agent_resumes_call"] = "agent_resumes_call"
    agent_id: str
    call_id: str


class AgentMutes(_Input):
    """The line keeps the agent's voice from the caller (``muted``), or lets it through."""

    kind: Literal["agent_mutes"] = "agent_mutes"
    agent_id: str
    call_id: str
    muted: bool = True


class AgentTransfers(_Input):
    """Blind transfer of the call the agent talks on: to ``queue`` or to ``to_agent``."""

    kind: Literal["agent_transfers"] = "agent_transfers"
    agent_id: str
    call_id: str
    queue: str = ""
    to_agent: str = ""


class AgentConsults(_Input):
    """The agent holds its caller and calls ``to_agent`` (consult transfer)."""

    kind: Literal["agent_consults"] = "agent_consults"
    agent_id: str
    call_id: str
    to_agent: str


class AgentCompletesConsult(_Input):
    kind: Literal["agent_completes_consult"] = "agent_completes_consult"
    agent_id: str
    call_id: str


class AgentCancelsConsult(_Input):
    kind: Literal["agent_cancels_consult"] = "agent_cancels_consult"
    agent_id: str
    call_id: str


class AgentConferences(_Input):
    """The held caller joins the agent's consultation."""

    kind: Literal["agent_conferences"] = "agent_conferences"
    agent_id: str
    call_id: str


class AgentDials(_Input):
    """The agent called ``number``; the line has placed the call ``call_id``."""

    kind: Literal["agent_dials"] = "agent_dials"
    agent_id: str
    call_id: str
    number: str
    caller: CallerInfo
    queue: str = ""
    ringing: bool = False
    """The line tells how the dial ends: the call rings until :class:`DialEnds` (or the
    agent hangs up). False, as in older journals: answered as soon as it is placed."""


DialEndName = Literal["answered", "no_answer", "busy", "failed"]
"""How a manual dial ended, as the agent is told (the line's ends, folded)."""


class DialEnds(_Input):
    """The line says how the manual dial ``call_id`` ended: answered (its agent talks),
    or not (the call is over, recorded with ``end`` as its disposition, and its agent is
    back in the state it dialled from, with no wrap-up)."""

    kind: Literal["dial_ends"] = "dial_ends"
    call_id: str
    end: DialEndName


class AgentConfigured(_Input):
    """An agent is added, or its skills and queues change (configuration reload)."""

    kind: Literal["agent_configured"] = "agent_configured"
    agent: AgentConfig


class CallArrives(_Input):
    kind: Literal["call_arrives"] = "call_arrives"
    call_id: str
    queue: str
    caller: CallerInfo
    direction: Literal["inbound", "outbound"] = "inbound"
    """``outbound``: a dialer's call answered by a person, routed like an arrival."""


class CallerHangsUp(_Input):
    kind: Literal["caller_hangs_up"] = "caller_hangs_up"
    call_id: str


class CallerAsksCallback(_Input):
    """Virtual hold: a waiting caller hangs up and is called back from their place."""

    kind: Literal["caller_asks_callback"] = "caller_asks_callback"
    call_id: str
    number: str


class CallbackScheduled(_Input):
    """A callback joins ``queue`` at engine time ``due``.

    ``for_agent`` set: a personal callback, offered only to that agent until its queue's
    ``personal_callback_wait_s`` has passed (empty, as in older journals: for anyone)."""

    kind: Literal["callback_scheduled"] = "callback_scheduled"
    call_id: str
    queue: str
    caller: CallerInfo
    due: float
    number: str
    for_agent: str = ""


class CallPriorityChanged(_Input):
    """A supervisor gives one waiting call its own priority; it keeps its age."""

    kind: Literal["call_priority_changed"] = "call_priority_changed"
    call_id: str
    priority: float


class CallMoved(_Input):
    """A supervisor moves a waiting call to another queue; it keeps its age."""

    kind: Literal["call_moved"] = "call_moved"
    call_id: str
    queue: str


class TimePasses(_Input):
    """Fire every deadline due by ``now``."""

    kind: Literal["time_passes"] = "time_passes"


class QueueConfigured(_Input):
    """A queue is added, or its parameters change (configuration reload)."""

    kind: Literal["queue_configured"] = "queue_configured"
    queue: QueueConfig


AnyInput = (
    AgentLogsIn
    | AgentLogsOut
    | AgentGoesReady
    | AgentGoesNotReady
    | AgentAccepts
    | AgentRejects
    | AgentHangsUp
    | AgentFinishesWrapUp
    | AgentExtendsWrapUp
    | AgentHoldsCall
    | AgentResumesCall
    | AgentMutes
    | AgentTransfers
    | AgentConsults
    | AgentCompletesConsult
    | AgentCancelsConsult
    | AgentConferences
    | AgentDials
    | DialEnds
    | AgentConfigured
    | CallArrives
    | CallerHangsUp
    | CallerAsksCallback
    | CallbackScheduled
    | CallPriorityChanged
    | CallMoved
    | TimePasses
    | QueueConfigured
)
RouterInput = Annotated[AnyInput, Field(discriminator="kind")]

INPUT: TypeAdapter[RouterInput] = TypeAdapter(RouterInput)
"""Validates and (de)serialises any router input (``INPUT.validate_json(...)``)."""
