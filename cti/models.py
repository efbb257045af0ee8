"""Domain models shared by every room of the house.

These are plain pydantic models: no I/O, no clock. Times inside the cores are monotonic
seconds (``float``) supplied by the caller; wall-clock timestamps appear only in records.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


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


class Interaction(BaseModel):
    """One past contact with a customer, as shown on the screen-pop."""

    model_config = ConfigDict(frozen=True)

    at: float = Field(description="wall-clock epoch seconds")
    channel: str = "call"
    disposition: str = ""
    agent_id: str = ""
    note: str = ""


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


class CallerInfo(BaseModel):
    """What the engine knows about the caller when the call is routed."""

    model_config = ConfigDict(frozen=True)

    ani: str
    """The number as the line gave it (may be empty, 'P', 'O', or garbage)."""
    e164: str | None = None
    kind: CallerKind = CallerKind.UNKNOWN
    customer: Customer | None = None
    history: tuple[Interaction, ...] = ()

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


class QueueConfig(BaseModel):
    """A queue's routing parameters.

    A waiting call's rank is ``priority + value_weight * value + aging_rate * waited``.
    The lowest-value caller waits at most ``100 * value_weight / aging_rate`` seconds
    longer than the highest-value caller who arrived at the same moment
    (:func:`queue_engine.priority.starvation_bound_s`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    priority: float = 0.0
    value_weight: float = Field(1.0, ge=0.0, description="rank points per value point")
    aging_rate: float = Field(1.0, gt=0.0, description="rank points per second waited")
    offer_timeout_s: float = Field(15.0, gt=0.0)
    wrap_up_s: float = Field(10.0, ge=0.0, description="wrap-up time before auto-ready")
    sl_target_s: float = Field(20.0, gt=0.0)
    short_abandon_s: float = Field(5.0, ge=0.0)


class CallDetailRecord(BaseModel):
    """What happened to one call. Times are seconds on the engine's clock."""

    call_id: str
    queue: str
    ani: str
    caller_kind: CallerKind
    customer_id: int | None
    segment: Segment
    value: float
    arrived_at: float
    offered_at: float | None = Field(None, description="first offer to an agent")
    answered_at: float | None = None
    ended_at: float
    """When the conversation (or the wait) ended."""
    agent_id: str | None = None
    outcome: str = Field(description="answered | abandoned | failed")
    disposition: str = ""
    wrap_up_s: float = 0.0
    offers: int = 0
    started_wall: float = Field(0.0, description="wall-clock epoch of arrival")
    note: str = Field("", description="the agent's wrap-up note")

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
