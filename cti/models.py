"""Domain models shared by every room of the house.

These are plain pydantic models: no I/O, no clock. Times inside the cores are monotonic
seconds (``float``) supplied by the caller; wall-clock timestamps appear only in records.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from cti.fields import CONTROL_MULTILINE, MAX_TEXT_CHARS, Id, OneLine, RequiredName


class Segment(StrEnum):
    """The five value segments, most valuable first (``value_rank`` 1..5)."""

    PLATINUM = "platinum"
    GOLD = "gold"
    SILVER = "silver"
    BRONZE = "bronze"
    BASIC = "basic"

    @property
    def value_rank(self) -> int:
        """1 for the most valuable segment, 5 for the least."""
        return list(Segment).index(self) + 1

    @classmethod
    def for_value(cls, value: float) -> Segment:
        """The segment a value score (0..100) falls in, by the default cut points."""
        for segment, floor in SEGMENT_FLOORS:
            if value >= floor:
                return segment
        return cls.BASIC


#: Lowest value score (0..100) of each segment, most valuable first.
SEGMENT_FLOORS: tuple[tuple[Segment, float], ...] = (
    (Segment.PLATINUM, 90.0),
    (Segment.GOLD, 75.0),
    (Segment.SILVER, 50.0),
    (Segment.BRONZE, 25.0),
    (Segment.BASIC, 0.0),
)


class PhoneType(StrEnum):
    MOBILE = "mobile"
    HOME = "home"
    WORK = "work"
    OTHER = "other"


class PhoneNumber(BaseModel):
    """One of a customer's numbers: as entered and normalised to E.164."""

    model_config = ConfigDict(frozen=True)

    raw: str
    e164: str
    kind: PhoneType = PhoneType.MOBILE
    extension: str = ""
    """Digits dialled after the number is answered (``ext. 12``); not part of ``e164``."""


Scalar = str | int | float | bool | None
"""A script answer: what one question of a call script recorded."""


class Interaction(BaseModel):
    """One past contact with a customer, as shown on the screen-pop."""

    model_config = ConfigDict(frozen=True)

    at: float = Field(description="wall-clock epoch seconds")
    channel: str = "call"
    disposition: str = ""
    agent_id: str = ""
    note: str = ""
    call_id: str = ""
    script_answers: dict[str, Scalar] = Field(
        default_factory=dict, description="the call script's answers, by question id"
    )


class Customer(BaseModel):
    """A customer as the store keeps it."""

    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    phones: tuple[PhoneNumber, ...] = ()
    value: float = Field(0.0, ge=0.0, le=100.0, description="value score, 0..100")
    segment: Segment = Segment.BASIC
    language: str = "en"
    time_zone: str = "UTC"
    email: str = ""
    """The primary e-mail address."""
    other_emails: tuple[str, ...] = ()
    company: str = ""
    address: str = ""
    owner: str = ""
    """The agent this customer's numbers are assigned to (an agent id), if any."""


class ServiceStatus(StrEnum):
    """Where a service item (ticket) stands; the first three are open."""

    OPEN = "open"
    IN_PROGRESS = "in_progress"
    WAITING = "waiting"
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def is_open(self) -> bool:
        return self in (ServiceStatus.OPEN, ServiceStatus.IN_PROGRESS, ServiceStatus.WAITING)


class ServicePriority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class ServiceItem(BaseModel):
    """A customer's service item (ticket). Times are wall-clock epoch seconds."""

    model_config = ConfigDict(frozen=True)

    id: int
    customer_id: int
    title: str
    detail: str = ""
    status: ServiceStatus = ServiceStatus.OPEN
    priority: ServicePriority = ServicePriority.NORMAL
    created_at: float
    updated_at: float
    due_at: float | None = None
    assignee: str = ""
    escalation_level: int = Field(0, ge=0, description="0: never escalated")
    escalated_at: float | None = None
    escalated_to: str = ""

    def overdue(self, now: float) -> bool:
        """Open and past its due time at wall-clock ``now``."""
        return self.status.is_open and self.due_at is not None and now > self.due_at


class Order(BaseModel):
    """A customer's order: the source of value. ``ordered_at`` is wall-clock epoch seconds."""

    model_config = ConfigDict(frozen=True)

    customer_id: int
    ordered_at: float
    amount: float
    currency: str = ""
    reference: str = ""
    """The order's number in the system it came from; one per customer at most once."""
    id: int = 0


class ValueFactor(BaseModel):
    """One term of a customer's value score: "why this priority"."""

    model_config = ConfigDict(frozen=True)

    name: str
    """``recency``, ``frequency``, ``monetary`` or ``engagement``."""
    detail: str
    """What was measured, e.g. ``last order 12 days ago``."""
    score: float
    """The factor on its own, 0..100."""
    points: float
    """What it adds to the value score."""


class ValueExplanation(BaseModel):
    """How a customer's value score (0..100) and segment came about."""

    model_config = ConfigDict(frozen=True)

    value: float
    segment: Segment
    segment_label: str
    factors: tuple[ValueFactor, ...] = ()
    scored_at: float = Field(0.0, description="wall-clock epoch the score was computed at")

    @property
    def summary(self) -> str:
        """One line: ``gold (82.4): monetary 35.1 + recency 27.0 + ...``."""
        terms = " + ".join(
            f"{f.name} {f.points:.1f}" for f in sorted(self.factors, key=lambda f: -f.points)
        )
        return f"{self.segment_label} ({self.value:.1f}): {terms or 'no orders or contacts'}"


class CallerKind(StrEnum):
    """What the line told us about the caller's number."""

    KNOWN = "known"
    """Number given and a customer matched."""
    UNKNOWN = "unknown"
    """Number given, no customer has it."""
    PRIVATE = "private"
    """The caller withheld the number."""
    MALFORMED = "malformed"
    """The line gave something that is not a phone number."""


#: Longest caller-id name kept from the line (CNAM is 15 characters; SIP display names
#: are longer).
CALLER_NAME_MAX_CHARS = 64


class CallerInfo(BaseModel):
    """What the engine knows about the caller when the call is routed."""

    model_config = ConfigDict(frozen=True)

    ani: str
    """The number as the line gave it (may be empty, 'P', 'O', or garbage)."""
    e164: str | None = None
    kind: CallerKind = CallerKind.UNKNOWN
    customer: Customer | None = None
    history: tuple[Interaction, ...] = ()
    matches: tuple[Customer, ...] = ()
    """Every customer holding the number, most valuable first (``customer`` is the first)."""
    service_items: tuple[ServiceItem, ...] = ()
    """The open service items of ``customer``."""
    value_explanation: ValueExplanation | None = None
    """Why ``customer`` has its value."""
    caller_name: str = Field("", max_length=CALLER_NAME_MAX_CHARS)
    """The caller-id name the line gave (e.g. ``WANG JUN`` from a modem); "" if none."""

    @property
    def value(self) -> float:
        return self.customer.value if self.customer else 0.0

    @property
    def segment(self) -> Segment:
        return self.customer.segment if self.customer else Segment.BASIC


class AgentState(StrEnum):
    """Agent states, as in REFERENCE §7."""

    LOGGED_OUT = "logged_out"
    NOT_READY = "not_ready"
    READY = "ready"
    RESERVED = "reserved"
    TALKING = "talking"
    WRAP_UP = "wrap_up"


class Strategy(StrEnum):
    """How a queue picks among the Ready agents who may take a call."""

    LONGEST_IDLE = "longest_idle"
    """The agent Ready the longest."""
    FEWEST_CALLS = "fewest_calls"
    """The agent who has handled the fewest calls (then longest idle)."""
    LEAST_TALK_TIME = "least_talk_time"
    """The agent with the least talk time so far (then longest idle)."""
    ROUND_ROBIN = "round_robin"
    """The next agent in the queue's member order after the one who got the last call."""
    RANDOM = "random"
    """Any, at random (seeded, so a replay chooses the same)."""
    BEST_PROFICIENCY = "best_proficiency"
    """The agent most proficient in the queue's skills (then longest idle)."""
    RING_ALL = "ring_all"
    """Offer to every eligible Ready agent at once; the first to accept takes it."""


SkillLevel = Annotated[int, Field(ge=1, le=5)]
"""Proficiency in a skill: 1 (novice) to 5 (expert)."""


class RelaxStep(BaseModel):
    """After ``after_s`` seconds of waiting, a call needs only ``skills`` (a bullseye ring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    after_s: float = Field(gt=0.0)
    skills: dict[str, SkillLevel] = Field(default_factory=dict)


class ExitAction(StrEnum):
    QUEUE = "queue"
    """Move the call to another queue; it keeps its age."""
    VOICEMAIL = "voicemail"
    """Send the caller to voicemail."""
    CALLBACK = "callback"
    """Release the line and call back later; the call keeps its place in the queue."""
    MESSAGE = "message"
    """Play a message and hang up."""


class QueueExit(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    action: ExitAction
    queue: str = ""
    """Target of ``action = "queue"``."""
    message: str = ""
    """What to play for ``message`` (and before voicemail)."""

    @model_validator(mode="after")
    def _queue_named(self) -> QueueExit:
        if self.action is ExitAction.QUEUE and not self.queue:
            raise ValueError('an exit with action = "queue" must name the queue')
        return self


class MaxWaitExit(QueueExit):
    after_s: float = Field(gt=0.0)


class MaxLengthExit(QueueExit):
    calls: int = Field(ge=1)
    """A call that finds this many already waiting leaves at once."""


class NoAgentsExit(QueueExit):
    when: Literal["none_logged_in", "none_available"] = "none_available"
    """``none_available``: every member is logged out or Not Ready (busy counts as there)."""


class QueueExits(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_wait: MaxWaitExit | None = None
    max_length: MaxLengthExit | None = None
    no_agents: NoAgentsExit | None = None


class QueueConfig(BaseModel):
    """A queue's routing parameters.

    A waiting call's rank is ``priority + value_weight * value + aging_rate * waited``.
    The lowest-value caller waits at most ``100 * value_weight / aging_rate`` seconds
    longer than the highest-value caller who arrived at the same moment
    (:func:`queue_engine.priority.starvation_bound_s`).

    ``skills`` are required of an agent at first; each of ``relax``, once a call has
    waited ``after_s``, replaces them with a looser set (fewer skills, lower levels).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: RequiredName
    """A topic level (``cti/v1/queues/<name>/status``): no ``/``, ``+``, ``#`` or controls."""
    priority: float = 0.0
    value_weight: float = Field(1.0, ge=0.0, description="rank points per value point")
    aging_rate: float = Field(1.0, gt=0.0, description="rank points per second waited")
    offer_timeout_s: float = Field(15.0, gt=0.0)
    wrap_up_s: float = Field(10.0, ge=0.0, description="wrap-up time before auto-ready")
    wrap_up_max_s: float | None = Field(
        None, ge=0.0, description="cap on wrap-up when an agent asks for more time"
    )
    sl_target_s: float = Field(20.0, gt=0.0)
    short_abandon_s: float = Field(5.0, ge=0.0)
    strategy: Strategy = Strategy.LONGEST_IDLE
    skills: dict[str, SkillLevel] = Field(default_factory=dict)
    relax: tuple[RelaxStep, ...] = ()
    exits: QueueExits = QueueExits()
    expected_aht_s: float = Field(180.0, gt=0.0, description="handle time assumed for waits")
    personal_callback_wait_s: float = Field(
        600.0,
        ge=0.0,
        description="a due callback reserved for one agent waits this long for that agent "
        "to be Ready, then joins the queue for anyone",
    )
    on_agent_logout: Literal["requeue", "hang_up"] = Field(
        "requeue",
        description="an agent who logs out (or whose console vanishes) talking on this "
        "queue's call: requeue hands the caller back to the queue, hang_up ends the call",
    )
    script: str = Field(
        "",
        description="the call script offered with this queue's calls: a shipped example's "
        "name (inbound_service_zh) or a .toml path; empty: none",
    )
    outbound_script: str = Field(
        "",
        description="the call script of the numbers agents dial themselves under this "
        "queue (as script; empty: none, never the inbound one)",
    )

    @model_validator(mode="after")
    def _relaxation_only_loosens(self) -> QueueConfig:
        previous, after = self.skills, 0.0
        for i, step in enumerate(self.relax):
            if step.after_s <= after:
                raise ValueError(f"relax[{i}].after_s must grow: {step.after_s} <= {after}")
            for skill, level in step.skills.items():
                if skill not in previous or level > previous[skill]:
                    raise ValueError(
                        f"relax[{i}] asks for {skill} >= {level}, which is not a loosening "
                        f"of the step before ({previous}); a ring may only drop skills or "
                        "lower levels"
                    )
            previous, after = step.skills, step.after_s
        if self.wrap_up_max_s is not None and self.wrap_up_max_s < self.wrap_up_s:
            raise ValueError("wrap_up_max_s must be at least wrap_up_s")
        return self

    @property
    def rings(self) -> tuple[tuple[float, dict[str, int]], ...]:
        """(waited at least, skills required) for each step, the first from 0 s."""
        return ((0.0, dict(self.skills)), *((r.after_s, dict(r.skills)) for r in self.relax))


def _check_phone(value: str) -> str:
    bad = any(c in value for c in ' <>"\\') or not value.isprintable()
    if value and (bad or not value.startswith(("sip:", "sips:")) or len(value) < 5):
        raise ValueError(f"phone {value[:80]!r}: expected a sip: URI such as sip:1001@10.0.0.5")
    return value


class AgentConfig(BaseModel):
    """An agent: skills, and the queues served with a per-agent queue priority.

    The priority is added to the rank of that queue's calls when this agent frees up
    and chooses among its queues: a bonus in rank points (like seconds of waiting).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Id
    """A topic level (``cti/v1/agents/<id>/...``) and the agent's broker user."""
    name: OneLine = ""
    skills: dict[str, SkillLevel] = Field(default_factory=dict)
    queues: dict[RequiredName, float] = Field(default_factory=dict)
    phone: Annotated[str, Field(max_length=256), AfterValidator(_check_phone)] = ""
    """A fixed ``sip:`` URI of the agent's phone (one that does not register); "": none."""
    phone_mode: Literal["ring", "persistent"] = "ring"
    """``ring``: each call rings the phone. ``persistent``: the line keeps a connection to
    the phone from login to logout and bridges each call into it without ringing."""


@dataclass(slots=True, kw_only=True)
class CallDetailRecord:
    """What happened to one call. Times are seconds on the engine's clock.

    A plain slotted dataclass, not a pydantic model: the router makes one for every call
    in its hot path and nothing untrusted builds one (the store converts its rows with
    :meth:`from_row`). Validating each record cost a tenth of a simulated day.
    """

    call_id: str
    queue: str
    ani: str
    caller_kind: CallerKind
    customer_id: int | None
    segment: Segment
    value: float
    arrived_at: float
    offered_at: float | None = None
    """First offer to an agent."""
    answered_at: float | None = None
    ended_at: float
    """When the conversation (or the wait) ended."""
    agent_id: str | None = None
    outcome: str
    """answered | abandoned | exited"""
    disposition: str = ""
    wrap_up_s: float = 0.0
    offers: int = 0
    started_wall: float = 0.0
    """Wall-clock epoch of arrival."""
    note: str = ""
    """The agent's wrap-up note."""
    kind: str = "inbound"
    """inbound | callback | outbound"""
    exit_action: str = ""
    """For outcome 'exited': where the call went and why."""
    callback_requested_at: float | None = None

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_row(cls, values: dict[str, Any]) -> CallDetailRecord:
        """A record from stored values (enums as their text)."""
        return cls(
            **{
                **values,
                "caller_kind": CallerKind(values["caller_kind"]),
                "segment": Segment(values["segment"]),
            }
        )

    @property
    def wait_s(self) -> float:
        """Seconds in queue: to the answer, or to the hang-up for an abandoned call."""
        end = self.answered_at if self.answered_at is not None else self.ended_at
        return end - self.arrived_at

    @property
    def left_queue_at(self) -> float:
        """When the call was first taken from the queue (offered) or abandoned it."""
        return self.offered_at if self.offered_at is not None else self.ended_at

    @property
    def talk_s(self) -> float:
        return self.ended_at - self.answered_at if self.answered_at is not None else 0.0


def new_call_record(
    call_id: str,
    queue: str,
    ani: str,
    caller_kind: CallerKind,
    customer_id: int | None,
    segment: Segment,
    value: float,
    arrived_at: float,
    offered_at: float | None,
    answered_at: float | None,
    ended_at: float,
    agent_id: str | None,
    outcome: str,
    disposition: str,
    wrap_up_s: float,
    offers: int,
    note: str,
    kind: str,
    exit_action: str,
    callback_requested_at: float | None,
) -> CallDetailRecord:
    """The record ``CallDetailRecord(...)`` makes (``started_wall`` 0), made for the router's
    hot path: its arguments by position, its slots set here. The class's ``__init__``
    matches 23 keywords by name (some 4k instructions a record, compiled router or not);
    the router's own compiled code setting the slots goes through the generic setattr.
    tests/queue_engine/test_router_records.py compares the two field by field."""
    record = _NEW_CALL_RECORD(CallDetailRecord)
    record.call_id = call_id
    record.queue = queue
    record.ani = ani
    record.caller_kind = caller_kind
    record.customer_id = customer_id
    record.segment = segment
    record.value = value
    record.arrived_at = arrived_at
    record.offered_at = offered_at
    record.answered_at = answered_at
    record.ended_at = ended_at
    record.agent_id = agent_id
    record.outcome = outcome
    record.disposition = disposition
    record.wrap_up_s = wrap_up_s
    record.offers = offers
    record.started_wall = 0.0
    record.note = note
    record.kind = kind
    record.exit_action = exit_action
    record.callback_requested_at = callback_requested_at
    return record


_NEW_CALL_RECORD = CallDetailRecord.__new__


def _check_args(args: dict[str, str | int | float | bool]) -> dict[str, str | int | float | bool]:
    for key, value in args.items():
        if len(key) > 64 or (isinstance(value, str) and len(value) > MAX_TEXT_CHARS):
            raise ValueError(f"argument {key[:64]!r} too long")
        if isinstance(value, str) and CONTROL_MULTILINE.search(value):
            raise ValueError(
                f"argument {key[:64]!r}: control characters and bidirectional overrides are refused"
            )
    return args


class ScriptAction(BaseModel):
    """An action a call script asked for (``add_to_dnc``, ``send_email``...), with its
    arguments already filled in; ``node`` is the script node that asked."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    node: str = Field(max_length=200)
    action: str = Field(max_length=64)
    args: Annotated[dict[str, str | int | float | bool], AfterValidator(_check_args)] = Field(
        default_factory=dict, max_length=32
    )
    """At most 32; names up to 64 characters, text up to 4,000 (tabs and line breaks but
    no other control characters): they travel in a wrap-up and are stored."""


class ScriptRun(BaseModel):
    """The script one call ran: its answers, the path taken and the actions it asked for.

    Kept beside the call's record (same ``call_id``).
    """

    model_config = ConfigDict(frozen=True)

    call_id: str
    agent_id: str
    customer_id: int | None = None
    script: str
    version: str
    sha256: str = ""
    """The SHA-256 of the script's text: exactly which version the call ran."""
    answers: dict[str, Scalar] = Field(default_factory=dict)
    path: tuple[str, ...] = ()
    actions: tuple[ScriptAction, ...] = ()
    recorded_wall: float = Field(0.0, description="wall-clock epoch it was stored")


class OutboxItem(BaseModel):
    """Work a call left for another system: add the customer to do-not-call, send a
    follow-up e-mail. ``done_wall`` is set by whoever carries it out."""

    model_config = ConfigDict(frozen=True)

    id: int = 0
    call_id: str
    customer_id: int | None = None
    action: str
    args: dict[str, str | int | float | bool] = Field(default_factory=dict)
    created_wall: float
    done_wall: float | None = None
