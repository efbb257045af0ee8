"""Everything the router can be told, as data.

``Router.handle(input, now)`` is the router's one entry point for its shells: the
engine service builds one of these for each line event, agent command, supervisor
action and timer, and hands it over. Because inputs are plain serialisable values and
the router is deterministic, the sequence of ``(now, input)`` pairs *is* the router's
state: the engine journals it and replays it after a crash
(see :mod:`cti.journal`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from cti.models import CallerInfo, QueueConfig


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


class CallArrives(_Input):
    kind: Literal["call_arrives"] = "call_arrives"
    call_id: str
    queue: str
    caller: CallerInfo


class CallerHangsUp(_Input):
    kind: Literal["caller_hangs_up"] = "caller_hangs_up"
    call_id: str


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
    | CallArrives
    | CallerHangsUp
    | TimePasses
    | QueueConfigured
)
RouterInput = Annotated[AnyInput, Field(discriminator="kind")]

INPUT: TypeAdapter[RouterInput] = TypeAdapter(RouterInput)
"""Validates and (de)serialises any router input (``INPUT.validate_json(...)``)."""
