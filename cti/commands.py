"""The commands on the bus: what an agent's console or a supervisor's wallboard asks of
the engine. Each carries a ``command_id``; the engine applies a command once however
often it arrives and answers with a :class:`~cti.events.CommandResult` naming that id.
The union of every message is :mod:`cti.protocol`.
"""

from __future__ import annotations

import os
from typing import Annotated, Literal, get_args

from pydantic import Field, model_validator

from cti.events import (
    MAX_DETAIL_HISTORY,
    MAX_SCRIPT_ACTIONS,
    MAX_SCRIPT_ANSWERS,
    MAX_SCRIPT_STEPS,
    MAX_SEARCH_RESULTS,
    AnswerValue,
    ScriptActions,
    WireMessage,
)
from cti.fields import Id, MultiLine, Name, OneLine, OptionalId, RecordId, WireFloat
from cti.models import ServicePriority

PhoneNumberText = Annotated[OneLine, Field(max_length=40)]
"""A phone number as typed (checked by the engine); a ``max_length`` beside an
annotated type's own is not applied, hence one inside the annotation."""


#: A version 4 UUID's bits (RFC 4122): the version nibble cleared and set to 4, the
#: variant's two bits cleared and set to 10.
_V4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_V4_SET = (4 << 76) | (0x8000 << 48)


def _new_id() -> str:
    """``uuid.uuid4().hex``, made without a ``UUID`` (its ``__init__`` checks, ~2.6 of
    a command's ~6 us made: issue 23): 16 random bytes, the version and variant set."""
    return f"{int.from_bytes(os.urandom(16)) & _V4_CLEAR | _V4_SET:032x}"


class _Command(WireMessage):
    command_id: Id = Field(default_factory=_new_id)


class _AgentCommand(_Command):
    agent_id: Id
    """The agent sending it (the topic must be this agent's)."""


class _SupervisorCommand(_Command):
    supervisor_id: Id
    """The supervisor sending it (the topic must be this supervisor's)."""


class Login(_AgentCommand):
    type: Literal["login"] = "login"


class Logout(_AgentCommand):
    type: Literal["logout"] = "logout"


class SetReady(_AgentCommand):
    type: Literal["set_ready"] = "set_ready"


class SetNotReady(_AgentCommand):
    type: Literal["set_not_ready"] = "set_not_ready"
    reason: OneLine = Field("break", max_length=100)


class AcceptOffer(_AgentCommand):
    type: Literal["accept_offer"] = "accept_offer"
    call_id: Id


class RejectOffer(_AgentCommand):
    type: Literal["reject_offer"] = "reject_offer"
    call_id: Id


class HangUp(_AgentCommand):
    type: Literal["hang_up"] = "hang_up"
    call_id: Id


class CompleteWrapUp(_AgentCommand):
    type: Literal["complete_wrap_up"] = "complete_wrap_up"
    call_id: Id
    disposition: OneLine = Field(max_length=100)
    note: MultiLine = ""
    script: OneLine = ""
    """The name of the script the call ran (empty: none); the rest describe that run."""
    script_version: OneLine = Field("", max_length=100)
    script_sha256: OneLine = Field("", max_length=64)
    answers: dict[Annotated[OneLine, Field(max_length=200)], AnswerValue] = Field(
        default_factory=dict, max_length=MAX_SCRIPT_ANSWERS
    )
    script_path: tuple[OneLine, ...] = Field((), max_length=MAX_SCRIPT_STEPS)
    """The ids of the nodes visited, in order."""
    script_actions: ScriptActions = Field((), max_length=MAX_SCRIPT_ACTIONS)
    """What the script asked for on the path taken (do-not-call, e-mail...)."""


class RequestSnapshot(_AgentCommand):
    """Ask the engine to re-send this agent's state and current offer or call."""

    type: Literal["request_snapshot"] = "request_snapshot"


class ExtendWrapUp(_AgentCommand):
    """More wrap-up time, up to the queue's cap."""

    type: Literal["extend_wrap_up"] = "extend_wrap_up"
    call_id: Id
    seconds: float = Field(30.0, gt=0, le=3600, allow_inf_nan=False)


class HoldCall(_AgentCommand):
    """Put the caller on hold (the line must be able to)."""

    type: Literal["hold_call"] = "hold_call"
    call_id: Id


class ResumeCall(_AgentCommand):
    """Take the caller off hold."""

    type: Literal["resume_call"] = "resume_call"
    call_id: Id


class MuteCall(_AgentCommand):
    """Keep the agent's voice from the caller (``muted``) or let it through again; the
    line must be able to (else the console mutes on its own, and says so)."""

    type: Literal["mute_call"] = "mute_call"
    call_id: Id
    muted: bool = True


class PauseRecording(_AgentCommand):
    """Pause the call's recording (``paused``: card details are being said) or resume it;
    the agent must be talking on the call, on a line that records it. The pause is kept
    in the recording's metadata and the call's record."""

    type: Literal["pause_recording"] = "pause_recording"
    call_id: Id
    paused: bool = True


class TransferCall(_AgentCommand):
    """Blind transfer: hand the call to ``queue`` (it waits there with its age and
    value), offer it to agent ``to_agent`` (who must be Ready), or send it out to the
    phone ``number`` (by the line, REFER on a SIP trunk); exactly one of them. The agent
    goes to wrap-up (for a number: once the line says the transfer worked)."""

    type: Literal["transfer_call"] = "transfer_call"
    call_id: Id
    queue: Name = ""
    to_agent: OptionalId = ""
    number: PhoneNumberText = ""

    @model_validator(mode="after")
    def _one_target(self) -> TransferCall:
        if sum(bool(t) for t in (self.queue, self.to_agent, self.number)) != 1:
            raise ValueError("a transfer names exactly one of queue, to_agent and number")
        return self


class ConsultCall(_AgentCommand):
    """Consult (warm) transfer, first step: hold the caller and call agent ``to_agent``
    (who must be Ready); then :class:`CompleteConsult`, :class:`CancelConsult` or
    :class:`ConferenceCall`."""

    type: Literal["consult_call"] = "consult_call"
    call_id: Id
    to_agent: Id


class CompleteConsult(_AgentCommand):
    """Hand the caller to the agent consulted (who is talking with this one); this agent
    goes to wrap-up."""

    type: Literal["complete_consult"] = "complete_consult"
    call_id: Id


class CancelConsult(_AgentCommand):
    """End the consultation (ringing or talking): the agent consulted is free again, the
    caller comes off hold with this agent."""

    type: Literal["cancel_consult"] = "cancel_consult"
    call_id: Id


class ConferenceCall(_AgentCommand):
    """Bring the held caller into the consultation: caller and both agents talk
    together (the line must be able to). Then this agent's hang-up hands the caller to
    the agent consulted; :class:`CancelConsult` drops that agent."""

    type: Literal["conference_call"] = "conference_call"
    call_id: Id


class DialNumber(_AgentCommand):
    """Manual dial: call ``number`` (as typed) for this agent, who must be Ready or Not
    Ready; the agent talks on the new call once the line has placed it."""

    type: Literal["dial_number"] = "dial_number"
    number: Annotated[PhoneNumberText, Field(min_length=1)]
    queue: Name = ""
    """The queue the call is recorded under (empty: the agent's first)."""


class SaveScriptRun(_AgentCommand):
    """The call's script run so far, saved as the agent goes (replacing the last one
    saved), so the answers are kept even if wrap-up ends before the agent finishes.
    The wrap-up's own run replaces it."""

    type: Literal["save_script_run"] = "save_script_run"
    call_id: Id
    script: OneLine
    script_version: OneLine = Field("", max_length=100)
    script_sha256: OneLine = Field("", max_length=64)
    answers: dict[Annotated[OneLine, Field(max_length=200)], AnswerValue] = Field(
        default_factory=dict, max_length=MAX_SCRIPT_ANSWERS
    )
    script_path: tuple[OneLine, ...] = Field((), max_length=MAX_SCRIPT_STEPS)
    script_actions: ScriptActions = Field((), max_length=MAX_SCRIPT_ACTIONS)


class ScheduleCallback(_AgentCommand):
    """Call ``number`` back at ``local_time`` in ``time_zone`` (the customer's).

    ``local_time`` is ISO 8601 without an offset, e.g. ``2026-11-23T10:30``; an empty
    ``time_zone`` means the engine's default. The callback joins ``queue`` (empty: the
    default queue) with the customer's value when that moment comes.

    ``for_agent`` (an agent id, usually the sender's own: "for me"): a personal callback,
    offered only to that agent when due, before their queue calls; it goes to anyone in
    its queue if they log out or are not Ready within the queue's
    ``personal_callback_wait_s``. If that agent does not serve ``queue``, it goes to their
    first queue. Empty: for anyone.
    """

    type: Literal["schedule_callback"] = "schedule_callback"
    number: OneLine = Field(max_length=40)
    local_time: OneLine = Field(max_length=32)
    time_zone: OneLine = Field("", max_length=64)
    queue: Name = ""
    for_agent: OptionalId = ""


class ChooseCustomer(_AgentCommand):
    """The caller is this customer (one of several holding the number, or one found by
    search): the call's record and history go to them. Answered with CustomerDetails."""

    type: Literal["choose_customer"] = "choose_customer"
    call_id: Id
    customer_id: RecordId


class CreateCustomer(_AgentCommand):
    """A new customer from the desk's form; ``call_id`` set: also the caller of that call.

    Checked by the engine (name, number, e-mail, language, time zone); a refusal names the
    field first (``e-mail: ...``). Empty ``time_zone``: the engine's; empty ``language``:
    the engine's default. Answered with CustomerDetails."""

    type: Literal["create_customer"] = "create_customer"
    call_id: OptionalId = ""
    name: OneLine = Field(max_length=200)
    number: OneLine = Field("", max_length=64)
    email: OneLine = Field("", max_length=254)
    company: OneLine = Field("", max_length=200)
    language: OneLine = Field("", max_length=35)
    time_zone: OneLine = Field("", max_length=64)


class SearchCustomers(_AgentCommand):
    """Find customers by a number in any format, ``#id``, an e-mail or part of a name
    (Chinese or Latin). Answered with CustomerSearchResults."""

    type: Literal["search_customers"] = "search_customers"
    query: OneLine = Field(max_length=200)
    limit: int = Field(20, ge=1, le=MAX_SEARCH_RESULTS)


class ShowCustomer(_AgentCommand):
    """A customer's card with history (up to ``history``), open items and value
    explanation. Answered with CustomerDetails."""

    type: Literal["show_customer"] = "show_customer"
    customer_id: RecordId
    history: int = Field(20, ge=1, le=MAX_DETAIL_HISTORY)


class AddServiceItem(_AgentCommand):
    """Quick entry of a service item for a customer. ``due`` is a local time, ISO 8601
    without offset (``2026-11-23T18:00``, or a date: end of that day), in ``time_zone``
    (empty: the customer's). Answered with CustomerDetails."""

    type: Literal["add_service_item"] = "add_service_item"
    customer_id: RecordId
    title: OneLine = Field(max_length=200)
    priority: ServicePriority = ServicePriority.NORMAL
    due: OneLine = Field("", max_length=32)
    time_zone: OneLine = Field("", max_length=64)
    detail: MultiLine = Field("", max_length=4000)
    call_id: OptionalId = ""
    """The call it was entered on, if any (kept in the detail)."""


class EscalateServiceItem(_AgentCommand):
    """Escalate a service item one level, to ``to`` (a supervisor, team or agent id).
    Answered with CustomerDetails of the item's customer."""

    type: Literal["escalate_service_item"] = "escalate_service_item"
    item_id: RecordId
    to: OneLine = Field(max_length=100)


class ChangeCallPriority(_SupervisorCommand):
    type: Literal["change_call_priority"] = "change_call_priority"
    call_id: Id
    priority: WireFloat


class MoveWaitingCall(_SupervisorCommand):
    type: Literal["move_waiting_call"] = "move_waiting_call"
    call_id: Id
    queue: Name = Field(min_length=1)


class ForceNotReady(_SupervisorCommand):
    type: Literal["force_not_ready"] = "force_not_ready"
    agent_id: Id
    reason: OneLine = Field("supervisor", max_length=100)


class ForceLogout(_SupervisorCommand):
    type: Literal["force_logout"] = "force_logout"
    agent_id: Id


class SetCampaignState(_SupervisorCommand):
    """Start (``running``), pause or stop an outbound campaign; the engine's dialer
    follows at once and the store keeps it (as ``cti campaign start|pause|stop``)."""

    type: Literal["set_campaign_state"] = "set_campaign_state"
    campaign: Name = Field(min_length=1)
    state: Literal["running", "paused", "stopped"]


class SetCampaignPacing(_SupervisorCommand):
    """Change an outbound campaign's dialing mode and/or its power ratio (lines per
    free agent in power mode); the fields left None stay as they are."""

    type: Literal["set_campaign_pacing"] = "set_campaign_pacing"
    campaign: Name = Field(min_length=1)
    mode: Literal["preview", "progressive", "power", "predictive"] | None = None
    power_ratio: float | None = Field(None, ge=1.0, le=20.0, allow_inf_nan=False)


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
    | ExtendWrapUp
    | ScheduleCallback
    | ChooseCustomer
    | CreateCustomer
    | SearchCustomers
    | ShowCustomer
    | AddServiceItem
    | EscalateServiceItem
    | HoldCall
    | ResumeCall
    | MuteCall
    | PauseRecording
    | TransferCall
    | ConsultCall
    | CompleteConsult
    | CancelConsult
    | ConferenceCall
    | DialNumber
    | SaveScriptRun
)
"""Every command an agent's console may send."""

SupervisorCommand = (
    ChangeCallPriority
    | MoveWaitingCall
    | ForceNotReady
    | ForceLogout
    | SetCampaignState
    | SetCampaignPacing
)
"""Every command a supervisor's wallboard may send."""

COMMAND_TYPES: tuple[type[_AgentCommand], ...] = get_args(AnyCommand)
SUPERVISOR_COMMAND_TYPES: tuple[type[_SupervisorCommand], ...] = get_args(SupervisorCommand)
