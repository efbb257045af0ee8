"""The events on the bus: what a line tells the engine (a call arrived, the caller hung
up) and what the engine tells consoles and wallboards (offers, states, queue figures,
answers to commands). Each is a frozen pydantic model told apart by its ``type``; the
union of every message, and how one is encoded and decoded, is :mod:`cti.protocol`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from cti.fields import (
    EventLine,
    EventText,
    Id,
    MultiLine,
    OptionalId,
    WireFloat,
    WireInt,
    clean_text,
)
from cti.models import (
    AgentState,
    CallerKind,
    Customer,
    Interaction,
    ScriptAction,
    ServiceItem,
    ValueExplanation,
)


class WireMessage(BaseModel):
    """Every message on the bus: frozen, and a field it does not know is refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# --- line events (adapter -> engine) -------------------------------------------------


class CallArrived(WireMessage):
    """A call rings on a line. ``ani`` is the number exactly as the line gave it."""

    type: Literal["call_arrived"] = "call_arrived"
    call_id: str
    ani: EventLine = ""
    dnis: EventLine = ""
    line: str = ""
    caller_name: EventLine = ""


class CallbackRequested(WireMessage):
    """A waiting caller asked to be called back (a key in the queue's menu): virtual hold.

    ``number`` is where to call back; empty means the number the call came from.
    """

    type: Literal["callback_requested"] = "callback_requested"
    call_id: str
    number: EventLine = ""
    line: str = ""


class CallerHungUp(WireMessage):
    """The far end hung up (while waiting, ringing or talking)."""

    type: Literal["caller_hung_up"] = "caller_hung_up"
    call_id: str
    line: str = ""


class DtmfReceived(WireMessage):
    """The caller pressed a key (DTMF) on a connected call; the engine forwards it, as is,
    to the agent on the call (the agent's events topic).

    ``key`` is one of ``0``-``9``, ``*``, ``#``, ``A``-``D`` (RFC 4733 events 0-15).
    """

    type: Literal["dtmf_received"] = "dtmf_received"
    call_id: str
    key: str = Field(pattern=r"^[0-9*#A-D]$")
    line: str = ""


class PhoneAnswered(WireMessage):
    """An agent's phone picked up the call offered to the agent: the same as accepting the
    offer on the desk. Only a line that carries the voice (``carries_voice``) says it."""

    type: Literal["phone_answered"] = "phone_answered"
    call_id: str
    agent_id: Id
    auto: bool = False
    """The phone picked up by itself (the agent had accepted on the desk, or a dial): the
    audio is connected now; there is no offer left to accept."""
    line: str = ""


class PhoneRefused(WireMessage):
    """An agent's phone did not take the call offered to the agent: declined (busy, do not
    disturb), rang out, or could not be reached. The engine treats it as a rejected offer."""

    type: Literal["phone_refused"] = "phone_refused"
    call_id: str
    agent_id: Id
    reason: EventLine = ""
    line: str = ""


class PhoneHungUp(WireMessage):
    """An agent's phone left a call it was connected to. The agent hung up on the phone:
    the engine treats it as the agent hanging up. ``lost``: the phone went away on its own
    (no audio from it for a while, ``reason`` says what): the caller goes back to its
    place in the queue and the agent is made Not Ready."""

    type: Literal["phone_hung_up"] = "phone_hung_up"
    call_id: str
    agent_id: Id
    reason: EventLine = ""
    lost: bool = False
    line: str = ""


class PhoneDisconnected(WireMessage):
    """An agent's standing connection (``phone_mode = "persistent"``) ended without the
    engine releasing it: the phone hung it up, or did not answer when called at login or
    Ready. The engine makes the agent Not Ready; going Ready calls the phone again."""

    type: Literal["phone_disconnected"] = "phone_disconnected"
    agent_id: Id
    reason: EventLine = ""
    line: str = ""


class TransferAsked(WireMessage):
    """An agent's phone asked to transfer the call the agent talks on (its own transfer
    key: a SIP REFER on the agent's leg); the engine carries it out as the desk's
    :class:`TransferCall` and tells the line how it went
    (:meth:`~telephony_adapters.base.TelephonyAdapter.transfer_asked_outcome`).
    ``target``: what the phone dialled (an agent id, a queue, a number); ``to_agent``:
    the agent whose phone that target is, when the line knows it (an extension)."""

    type: Literal["transfer_asked"] = "transfer_asked"
    call_id: str
    agent_id: Id
    target: EventLine = ""
    to_agent: OptionalId = ""
    line: str = ""


class PhoneReachability(WireMessage):
    """Whether an agent's phone can be rung now (registered and answering, or a fixed
    address that answers). Sent on every change and once per phone when the line starts."""

    type: Literal["phone_reachability"] = "phone_reachability"
    agent_id: Id
    reachable: bool
    contact: EventLine = ""
    """Where the phone is (its registered contact or fixed URI), for people."""
    line: str = ""


MAX_PAUSES = 100
"""Most pauses a recording keeps (the desk refuses more)."""


class RecordingFinished(WireMessage):
    """A call's recording is closed: its file (relative to the recordings folder), length,
    the spans the agent paused it (seconds from its start), or why it failed. ``kind``:
    the conversation (``call``) or a voicemail the caller left (``message``)."""

    type: Literal["recording_finished"] = "recording_finished"
    call_id: str
    path: EventLine = ""
    duration_s: WireFloat = 0.0
    paused: tuple[tuple[WireFloat, WireFloat], ...] = Field(default=(), max_length=MAX_PAUSES)
    error: EventLine = ""
    line: str = ""
    kind: Literal["call", "message"] = "call"


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


class CallScript(WireMessage):
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


class LineFeatures(WireMessage):
    """What the line carrying a call can do, sent with its screen-pop: the console shows
    the actions it cannot do disabled (the engine refuses them anyway)."""

    hold: bool = False
    mute: bool = False
    """False: a mute on the desk is the desk's own (the line keeps the agent's voice)."""
    conference: bool = False
    dial: bool = False


class VoiceMessage(WireMessage):
    """A voicemail the caller left, returned by the callback offered: the desk plays or
    exports it (``cti recordings export RECORDING_ID``)."""

    recording_id: EventLine
    path: EventLine = ""
    """Its file, relative to the recordings folder ('' while it is being recorded)."""
    duration_s: WireFloat = 0.0
    status: Literal["recording", "recorded", "failed", "deleted"] = "recording"


class ScreenPop(WireMessage):
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
    message: VoiceMessage | None = None
    """A callback's voicemail, to hear before calling back (None: it has none)."""
    direction: Literal["inbound", "outbound"] = "inbound"
    """``outbound``: a number the agent dialled (the card says when, not a wait or rank)."""
    dialled_wall: float = 0.0
    """When the agent dialled it (wall-clock epoch; outbound only)."""
    caller_name: EventLine = ""
    """The caller-id name the line gave (``WANG JUN``), shown for an unknown caller."""


#: Most characters of a name or number an agent's state carries for wallboards (clipped).
MAX_SHOWN_NAME_CHARS = 64
ShownName = Annotated[
    str,
    BeforeValidator(
        lambda v: clean_text(v, max_length=MAX_SHOWN_NAME_CHARS) if isinstance(v, str) else v
    ),
]
"""A name or number shown on a wallboard: cleaned and clipped (:func:`clean_text`)."""


class AgentStateChanged(WireMessage):
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
    phone_reachable: bool | None = None
    """Whether the agent's phone can be rung (``None``: the center has no voice line)."""
    agent_name: ShownName = ""
    """The agent's configured name ("": none, or an older engine)."""
    caller_name: ShownName = ""
    """The customer on ``call_id``, when known (for wallboards; text, never markup)."""
    caller_number: ShownName = ""
    """The number ``call_id`` came from or dials (E.164 when it is one, else as the line
    gave it); "" with no call, no number, or from an older engine."""


class ColleagueState(WireMessage):
    """What another agent's desk may know of an agent (the transfer and consult dialogs):
    published retained on :func:`cti.topics.colleague_state` beside the agent's full
    :class:`AgentStateChanged`, which agents cannot read (its caller is the customer's
    personal data). Never add a call's or a caller's field here."""

    type: Literal["colleague_state"] = "colleague_state"
    agent_id: Id
    agent_name: ShownName = ""
    state: AgentState
    reason: EventLine = ""
    """The Not Ready reason ("": none, or not Not Ready)."""


class AgentPresence(WireMessage):
    """Whether an agent's console is connected to the broker; published retained on the
    agent's presence topic, ``online=False`` also as the console's MQTT last will."""

    type: Literal["agent_presence"] = "agent_presence"
    agent_id: Id
    online: bool
    client_id: OptionalId = ""


class EnginePresence(WireMessage):
    """Whether the engine serves: published retained on :func:`cti.topics.engine_presence`
    once it is ready (``online``) and as it stops (``online=False``, also its MQTT last
    will, so a killed engine shows offline within the broker's keepalive)."""

    type: Literal["engine_presence"] = "engine_presence"
    online: bool
    at_wall: float = 0.0
    """When it was said (0: a last will, written before the engine started)."""


class CallOffered(WireMessage):
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


class OfferWithdrawn(WireMessage):
    """An offer is no longer valid: timed out, rejected, or the caller hung up."""

    type: Literal["offer_withdrawn"] = "offer_withdrawn"
    agent_id: str
    call_id: str
    reason: EventLine
    command_id: str = ""
    """The agent's ``RejectOffer`` that withdrew it, if one did: this is its answer (no
    CommandResult follows). "": none, or an older engine (its CommandResult follows)."""


class CallConnected(WireMessage):
    type: Literal["call_connected"] = "call_connected"
    agent_id: str
    call_id: str
    command_id: str = ""
    """The agent's ``AcceptOffer`` that connected it, if one did: this is its answer (no
    CommandResult follows). "": none, or an older engine (its CommandResult follows)."""


class CurrentCall(WireMessage):
    """The call an agent is on (talking or in wrap-up), sent again when its console asks
    for a snapshot: a console that restarted mid-call gets back the customer's card.
    The agent's retained state says whether it is talking or wrapping up."""

    type: Literal["current_call"] = "current_call"
    agent_id: str
    call_id: str
    pop: ScreenPop
    dispositions: tuple[str, ...] = ()
    agent_name: str = ""


class CallEnded(WireMessage):
    """The conversation ended for this agent; ``by`` is ``agent`` or ``caller``, or
    ``transfer``: the agent handed the call on (it goes on with another agent or queue)."""

    type: Literal["call_ended"] = "call_ended"
    agent_id: str
    call_id: str
    by: Literal["agent", "caller", "transfer"]
    command_id: str = ""
    """The agent's ``HangUp`` that ended it, if one did: this is its answer (no
    CommandResult follows). "": none, or an older engine (its CommandResult follows)."""


class CallControl(WireMessage):
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


DialState = Literal["dialling", "ringing", "answered", "no_answer", "busy", "failed"]
"""How far an agent's dial has come: the last three end it, and so does ``answered``
(the conversation starts)."""


class DialProgress(WireMessage):
    """How the agent's own dial (``DialNumber``) goes, sent to that agent at each step.
    ``detail``: the line's words (``486 Busy Here``), for people."""

    type: Literal["dial_progress"] = "dial_progress"
    agent_id: str
    call_id: str
    number: EventLine
    state: DialState
    detail: EventLine = ""


class QueueStatus(WireMessage):
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


class WaitingCall(WireMessage):
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
    priority: WireFloat | None = None
    """Its priority in rank points: its own when ``own_priority`` (a supervisor set it),
    else its queue's; None from an older engine."""
    own_priority: bool = False
    rank: WireFloat | None = None
    """Its rank when sent (priority + value x weight + seconds waited x aging rate): the
    queue serves the highest first; None from an older engine."""


#: Most waiting calls one :class:`QueueCalls` carries, and most bytes they take (as JSON):
#: a flood's whole queue would not fit in one message (the broker's max_packet_size), so
#: the engine sends the first in rank order and how many wait (``total``).
MAX_QUEUE_CALLS_SENT = 200
MAX_QUEUE_CALLS_BYTES = 128 * 1024


class QueueCalls(WireMessage):
    """The waiting calls of a queue, best first; published retained beside its status."""

    type: Literal["queue_calls"] = "queue_calls"
    queue: str
    calls: tuple[WaitingCall, ...]
    """The first in rank order: at most :data:`MAX_QUEUE_CALLS_SENT` (and bytes)."""
    at_wall: float
    total: int = 0
    """How many calls wait (more than ``calls`` in a flood); 0 from an older engine."""


class CampaignStatus(WireMessage):
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


class EngineHealth(WireMessage):
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


class CommandResult(WireMessage):
    """The engine's answer to a command: applied, or refused with a reason. An agent's
    command applied whose event goes to the agent anyway is answered by that event
    instead (:data:`ANSWERS`), and a repeat of it by a CommandResult."""

    type: Literal["command_result"] = "command_result"
    command_id: str
    ok: bool
    error: EventText = ""


#: Most customers a search answers with, and most history rows a customer's details carry.
MAX_SEARCH_RESULTS = 50
MAX_DETAIL_HISTORY = 50


class CustomerSearchResults(WireMessage):
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


class CustomerDetails(WireMessage):
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


AnyEvent = (
    CallArrived
    | CallerHungUp
    | CallbackRequested
    | DtmfReceived
    | PhoneAnswered
    | PhoneRefused
    | PhoneHungUp
    | PhoneDisconnected
    | PhoneReachability
    | TransferAsked
    | RecordingFinished
    | QueueCalls
    | AgentStateChanged
    | ColleagueState
    | AgentPresence
    | EnginePresence
    | CallOffered
    | OfferWithdrawn
    | CallConnected
    | CurrentCall
    | CallEnded
    | CallControl
    | DialProgress
    | QueueStatus
    | CommandResult
    | CampaignStatus
    | CustomerSearchResults
    | CustomerDetails
    | EngineHealth
)
"""Every event a line or the engine may publish."""

ANSWERS = (CallConnected, CallEnded, OfferWithdrawn)
"""The events that answer the agent's command that caused them, when they name it
(``command_id``): the command was applied, and no :class:`CommandResult` follows."""
