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

import re
import uuid
from collections import OrderedDict
from typing import Annotated, Literal, TypeGuard, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from cti import topics
from cti.errors import ProtocolError
from cti.fields import BIDI as _BIDI
from cti.fields import CONTROL as _CONTROL
from cti.fields import CONTROL_MULTILINE as _CONTROL_MULTILINE
from cti.fields import (  # the bounded types, shared with the configuration
    MAX_LINE_CHARS,
    MAX_TEXT_CHARS,
    Id,
    MultiLine,
    Name,
    OneLine,
    OptionalId,
    WireFloat,
    WireInt,
)
from cti.models import (
    AgentState,
    CallerKind,
    Customer,
    Interaction,
    ScriptAction,
    ServiceItem,
    ServicePriority,
    ValueExplanation,
)


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _new_id() -> str:
    return uuid.uuid4().hex


# --- bounded fields --------------------------------------------------------------------
# What a sender chooses (commands, an agent's presence) is checked here, at the boundary:
# ids take a pattern and a length, text refuses control characters and bidirectional
# overrides, every string, list, dict and number has a bound. A message that does not
# fit is refused whole with the field named (docs/mqtt.md, "Hostile input"). Events the
# engine writes carry text from lines and the store: that text is neutralised and
# clipped instead (:func:`clean_text`), so a hostile caller name never stops an offer.

#: The largest message on the wire, as JSON bytes (the broker's max_packet_size is above).
MAX_MESSAGE_BYTES = 240 * 1024
RecordId = Annotated[int, Field(ge=1, le=2**63 - 1)]
"""A row id of the store (customer, service item)."""


def clean_text(text: str, *, multiline: bool = False, max_length: int = MAX_TEXT_CHARS) -> str:
    """``text`` made safe to show: bidirectional overrides removed, other control
    characters (but tab and line breaks when ``multiline``) replaced by U+FFFD, cut to
    ``max_length`` characters (the last one then ``…``)."""
    pattern = _CONTROL_MULTILINE if multiline else _CONTROL
    if pattern.search(text) is not None:
        text = re.sub(f"[{_BIDI}]", "", text)
        text = pattern.sub("\ufffd", text)
    if len(text) > max_length:
        text = text[: max_length - 1] + "…"
    return text


def _clean(max_length: int, *, multiline: bool = False) -> BeforeValidator:
    return BeforeValidator(
        lambda v: (
            clean_text(v, multiline=multiline, max_length=max_length) if isinstance(v, str) else v
        )
    )


EventLine = Annotated[str, _clean(MAX_LINE_CHARS)]
"""One line of text in an event the engine writes (a reason, a caller's name): cleaned
and clipped, never refused (:func:`clean_text`)."""
EventText = Annotated[str, _clean(MAX_TEXT_CHARS, multiline=True)]


# --- line events (adapter -> engine) -------------------------------------------------


class CallArrived(_Message):
    """A call rings on a line. ``ani`` is the number exactly as the line gave it."""

    type: Literal["call_arrived"] = "call_arrived"
    call_id: str
    ani: EventLine = ""
    dnis: EventLine = ""
    line: str = ""
    caller_name: EventLine = ""


class CallbackRequested(_Message):
    """A waiting caller asked to be called back (a key in the queue's menu): virtual hold.

    ``number`` is where to call back; empty means the number the call came from.
    """

    type: Literal["callback_requested"] = "callback_requested"
    call_id: str
    number: EventLine = ""
    line: str = ""


class CallerHungUp(_Message):
    """The far end hung up (while waiting, ringing or talking)."""

    type: Literal["caller_hung_up"] = "caller_hung_up"
    call_id: str
    line: str = ""


class DtmfReceived(_Message):
    """The caller pressed a key (DTMF) on a connected call; the engine forwards it, as is,
    to the agent on the call (the agent's events topic).

    ``key`` is one of ``0``-``9``, ``*``, ``#``, ``A``-``D`` (RFC 4733 events 0-15).
    """

    type: Literal["dtmf_received"] = "dtmf_received"
    call_id: str
    key: str = Field(pattern=r"^[0-9*#A-D]$")
    line: str = ""


# --- engine events (engine -> consoles) ----------------------------------------------


#: Most characters of script text sent with an offer (the engine refuses bigger files).
MAX_SCRIPT_CHARS = 64 * 1024
#: Most answers, path steps and actions a wrap-up may carry for a call's script.
MAX_SCRIPT_ANSWERS = 500
MAX_SCRIPT_STEPS = 2000
MAX_SCRIPT_ACTIONS = 100


ScriptActions = tuple[ScriptAction, ...]
"""Each bounded by :class:`~cti.models.ScriptAction` itself."""

AnswerValue = MultiLine | WireInt | WireFloat | bool | None
"""One recorded script answer (a date as ``YYYY-MM-DD``); ``None``: skipped."""


class CallScript(_Message):
    """The call script for an offered call, sent whole: the console runs exactly this
    text, so the call keeps the version it started with whatever happens to the file,
    and a console on another machine needs no copy of it. ``sha256`` is of ``text``
    (UTF-8) and names the version exactly."""

    name: str
    version: str
    sha256: str
    file: str = ""
    """Where the engine read it, for messages."""
    text: str = Field(max_length=MAX_SCRIPT_CHARS)
    """The script file's TOML text, as validated by the engine."""


class LineFeatures(_Message):
    """What the line carrying a call can do, sent with its screen-pop: the console shows
    the actions it cannot do disabled (the engine refuses them anyway)."""

    hold: bool = False
    mute: bool = False
    """False: a mute on the desk is the desk's own (the line keeps the agent's voice)."""
    conference: bool = False
    dial: bool = False


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
    matches: tuple[Customer, ...] = ()
    """Every customer holding the number, most valuable first. More than one: the agent
    chooses (``customer`` is the first). None with ``caller_kind`` unknown and ``e164``
    set: a new-customer form with that number filled in."""
    service_items: tuple[ServiceItem, ...] = ()
    """The open service items of ``customer``, most urgent first."""
    value_explanation: ValueExplanation | None = None
    """Why ``customer`` has its value: the factors and their points."""
    script: CallScript | None = None
    """The script to run on this call (the queue's or campaign's), if any."""
    line: LineFeatures | None = None
    """What the call's line can do (hold, mute...); None: not known."""
    history_left_out: int = 0
    """History rows not sent (the oldest), the whole card being too big for one message
    (:mod:`cti.engine.card_budget`); likewise open items and matches."""
    items_left_out: int = 0
    matches_left_out: int = 0


class AgentStateChanged(_Message):
    """An agent's state; published retained on the agent's state topic."""

    type: Literal["agent_state"] = "agent_state"
    agent_id: str
    state: AgentState
    reason: EventLine = ""
    since_wall: float = Field(description="wall-clock epoch when this state began")
    call_id: str | None = None
    wrap_up_deadline_wall: float | None = None
    calls_handled: int = 0
    """Conversations this agent has finished, as the router counts them (for wallboards)."""
    not_ready_reasons: tuple[str, ...] = ()
    """The Not Ready reasons configured, for the agent to choose from."""


class AgentPresence(_Message):
    """Whether an agent's console is connected to the broker; published retained on the
    agent's presence topic, ``online=False`` also as the console's MQTT last will."""

    type: Literal["agent_presence"] = "agent_presence"
    agent_id: Id
    online: bool
    client_id: OptionalId = ""


class CallOffered(_Message):
    """A call is offered to an agent; it must accept before ``deadline_wall``."""

    type: Literal["call_offered"] = "call_offered"
    agent_id: str
    pop: ScreenPop
    timeout_s: float
    deadline_wall: float
    dispositions: tuple[str, ...] = ()
    agent_name: str = ""
    """The agent's name as configured (scripts greet with it)."""
    consult_from: str = ""
    """Not empty: another agent (this id) consults this agent about a call it is on;
    accepting joins that conversation (the caller is on hold)."""


class OfferWithdrawn(_Message):
    """An offer is no longer valid: timed out, rejected, or the caller hung up."""

    type: Literal["offer_withdrawn"] = "offer_withdrawn"
    agent_id: str
    call_id: str
    reason: EventLine


class CallConnected(_Message):
    type: Literal["call_connected"] = "call_connected"
    agent_id: str
    call_id: str


class CurrentCall(_Message):
    """The call an agent is on (talking or in wrap-up), sent again when its console asks
    for a snapshot: a console that restarted mid-call gets back the customer's card.
    The agent's retained state says whether it is talking or wrapping up."""

    type: Literal["current_call"] = "current_call"
    agent_id: str
    call_id: str
    pop: ScreenPop
    dispositions: tuple[str, ...] = ()
    agent_name: str = ""


class CallEnded(_Message):
    """The conversation ended for this agent; ``by`` is ``agent`` or ``caller``, or
    ``transfer``: the agent handed the call on (it goes on with another agent or queue)."""

    type: Literal["call_ended"] = "call_ended"
    agent_id: str
    call_id: str
    by: Literal["agent", "caller", "transfer"]


class CallControl(_Message):
    """The call-control state of the call an agent is on, sent to that agent whenever it
    changes (and with a snapshot): on hold, muted, and a consultation with another agent
    (``consult_state`` ``ringing``, ``talking`` or ``conference``; empty: none)."""

    type: Literal["call_control"] = "call_control"
    agent_id: str
    call_id: str
    held: bool = False
    muted: bool = False
    consult_agent: str = ""
    consult_state: Literal["", "ringing", "talking", "conference"] = ""
    note: EventLine = ""
    """What just happened, for the agent (e.g. "1002 did not answer the consultation")."""


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
    short_abandoned: int = 0
    service_level_of_answered: float | None = None
    aht_s: float | None = None
    abandon_rate: float | None = None
    occupancy: float | None = None
    agents_by_state: dict[str, int] = Field(default_factory=dict)


class WaitingCall(_Message):
    """One waiting call as the wallboard shows it."""

    call_id: str
    position: int
    waited_s: float
    estimated_wait_s: float | None
    """None when nobody is there to answer."""
    ani: str
    customer: str = ""
    segment: str = ""
    kind: str = "inbound"


#: Most waiting calls one :class:`QueueCalls` carries, and most bytes they take (as JSON):
#: a flood's whole queue would not fit in one message (the broker's max_packet_size), so
#: the engine sends the first in rank order and how many wait (``total``).
MAX_QUEUE_CALLS_SENT = 200
MAX_QUEUE_CALLS_BYTES = 128 * 1024


class QueueCalls(_Message):
    """The waiting calls of a queue, best first; published retained beside its status."""

    type: Literal["queue_calls"] = "queue_calls"
    queue: str
    calls: tuple[WaitingCall, ...]
    """The first in rank order: at most :data:`MAX_QUEUE_CALLS_SENT` (and bytes)."""
    at_wall: float
    total: int = 0
    """How many calls wait (more than ``calls`` in a flood); 0 from an older engine."""


class CampaignStatus(_Message):
    """An outbound campaign as the engine's dialer sees it; published retained on the
    campaign's status topic (:func:`cti.topics.campaign_status`) every few seconds.

    Today's figures are for the campaign's day (in its ``day_zone``); ``dials_today`` and
    ``contacts_today`` (people who reached an agent) count from the stored attempts, so
    they survive a restart. ``problem`` says why a running campaign is not dialling (no
    line that can dial, a mode the line cannot do), else it is empty."""

    type: Literal["campaign_status"] = "campaign_status"
    campaign: str
    state: str
    """``running``, ``paused`` or ``stopped`` (as the store has it)."""
    mode: str
    power_ratio: float
    queue: str
    line: str = ""
    """The line the dialer dials on ("" when none runs it)."""
    dialling: bool = False
    """A dialer runs the campaign in this engine now (paused or not)."""
    dials_today: int = 0
    contacts_today: int = 0
    live_answers_today: int = 0
    abandoned_today: int = 0
    abandon_rate_today: float = 0.0
    abandon_rate_30_days: float = 0.0
    abandon_cap: float = 0.03
    in_flight: int = 0
    pending_leads: int = 0
    agents_logged_in: int = 0
    agents_ready: int = 0
    agents_busy: int = 0
    problem: EventLine = ""
    at_wall: float


class EngineHealth(_Message):
    """The engine's own troubles (a full disk under its journal or store, records kept
    under another id): published retained on :func:`cti.topics.engine_health` when one
    starts, changes kind or ends, so supervisors see it at once, and again every status
    interval while one lasts (the counts move). ``ok`` with no alerts: all written.
    The counts are as of the publication."""

    type: Literal["engine_health"] = "engine_health"
    ok: bool
    alerts: tuple[str, ...] = ()
    journal_held: int = 0
    """Router inputs held in memory: the journal could not be written."""
    records_held: int = 0
    """Call records held in memory: the store could not take them."""
    inputs_lost: int = 0
    """Inputs routed but not journaled (the memory spool was full)."""
    records_lost: int = 0
    """Call records the memory spool could not hold (still in the journal, if it was)."""
    record_conflicts: int = 0
    """Call records stored under a suffixed id: their call id was taken."""
    at_wall: float
    since_wall: float | None = None
    """When the current trouble began (kept while its kinds change); None when ok, or
    from an older engine."""
    kinds: tuple[str, ...] = ()
    """The kinds of trouble (``journal``, ``journal_lost``, ``records``, ``records_lost``,
    ``record_conflicts``): a change of them is news; the same kinds again, a refresh of
    the counts. Empty from an older engine (which published changes only)."""


class CommandResult(_Message):
    """The engine's answer to a command: applied, or refused with a reason."""

    type: Literal["command_result"] = "command_result"
    command_id: str
    ok: bool
    error: EventText = ""


#: Most customers a search answers with, and most history rows a customer's details carry.
MAX_SEARCH_RESULTS = 50
MAX_DETAIL_HISTORY = 50


class CustomerSearchResults(_Message):
    """The engine's answer to :class:`SearchCustomers` (sent before its CommandResult)."""

    type: Literal["customer_search_results"] = "customer_search_results"
    agent_id: str
    command_id: str
    """The search it answers."""
    query: str
    customers: tuple[Customer, ...] = ()
    """Best first; at most the limit asked for."""
    more: bool = False
    """More customers match than were sent: the agent should narrow the query."""


class CustomerDetails(_Message):
    """One customer in full, the answer to the customer commands (:class:`ShowCustomer`,
    :class:`ChooseCustomer`, :class:`CreateCustomer`, :class:`AddServiceItem`,
    :class:`EscalateServiceItem`); sent before the command's CommandResult.

    ``call_id`` set: the customer is now the one of that call (its record and history go
    to this customer)."""

    type: Literal["customer_details"] = "customer_details"
    agent_id: str
    command_id: str
    call_id: str = ""
    customer: Customer
    history: tuple[Interaction, ...] = ()
    """Newest first, with dispositions, notes and script answers."""
    service_items: tuple[ServiceItem, ...] = ()
    """Open items, most urgent first."""
    value_explanation: ValueExplanation | None = None
    history_left_out: int = 0
    """History rows not sent (the oldest), the card being too big for one message
    (:mod:`cti.engine.card_budget`); likewise open items."""
    items_left_out: int = 0


# --- commands (console -> engine) ----------------------------------------------------


class _Command(_Message):
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


class TransferCall(_AgentCommand):
    """Blind transfer: hand the call to ``queue`` (it waits there with its age and
    value) or offer it to agent ``to_agent`` (who must be Ready); exactly one of them.
    The agent goes to wrap-up."""

    type: Literal["transfer_call"] = "transfer_call"
    call_id: Id
    queue: Name = ""
    to_agent: OptionalId = ""

    @model_validator(mode="after")
    def _one_target(self) -> TransferCall:
        if bool(self.queue) == bool(self.to_agent):
            raise ValueError("a transfer names exactly one of queue and to_agent")
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
    number: OneLine = Field(min_length=1, max_length=40)
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

AnyEvent = (
    CallArrived
    | CallerHungUp
    | CallbackRequested
    | DtmfReceived
    | QueueCalls
    | AgentStateChanged
    | AgentPresence
    | CallOffered
    | OfferWithdrawn
    | CallConnected
    | CurrentCall
    | CallEnded
    | CallControl
    | QueueStatus
    | CommandResult
    | CampaignStatus
    | CustomerSearchResults
    | CustomerDetails
    | EngineHealth
)
"""Every event a line or the engine may publish."""

Command = Annotated[AnyCommand, Field(discriminator="type")]
Message = Annotated[AnyEvent | AnyCommand | SupervisorCommand, Field(discriminator="type")]

COMMAND_TYPES: tuple[type[_AgentCommand], ...] = get_args(AnyCommand)
SUPERVISOR_COMMAND_TYPES: tuple[type[_SupervisorCommand], ...] = get_args(SupervisorCommand)

_MESSAGE: TypeAdapter[Message] = TypeAdapter(Message)


def encode(message: _Message) -> bytes:
    """Serialise a message to JSON bytes (UTF-8, non-ASCII kept as is)."""
    return message.model_dump_json().encode("utf-8")


def decode(payload: bytes | str, *, where: str = "") -> Message:
    """Parse JSON bytes into a message.

    Raises :class:`ProtocolError` naming ``where`` (usually the topic) and what was
    wrong: too big, bad JSON, an unknown ``type``, or a field that does not fit (the
    field is named; the sender's text is shown escaped and cut short).
    """
    place = f" on {_shown(where)}" if where else ""
    size = len(payload.encode("utf-8") if isinstance(payload, str) else payload)
    if size > MAX_MESSAGE_BYTES:
        raise ProtocolError(
            f"bad message{place}: {size} bytes, more than the {MAX_MESSAGE_BYTES} allowed"
        )
    try:
        return _MESSAGE.validate_json(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(_shown(str(part)) for part in first["loc"]) or "(message)"
        raise ProtocolError(
            f"bad message{place}: {loc}: {first['msg']} "
            f"(expected one of the cti/v1 message types, as JSON)"
        ) from exc


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


def is_command(message: Message) -> TypeGuard[AnyCommand]:
    """Whether ``message`` is an agent's command."""
    return isinstance(message, COMMAND_TYPES)


def is_supervisor_command(message: Message) -> TypeGuard[SupervisorCommand]:
    return isinstance(message, SUPERVISOR_COMMAND_TYPES)
