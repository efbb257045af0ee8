"""The router's two state machines as tables: an agent's state and a call's phase.

Each row is (from, event, to). The router moves an agent or a call only by naming the
event (``RouterCore._set_state``, ``RouterCore._move``); the table gives where it goes,
and a move the table lacks is refused, so the tables are the whole of what can happen
(docs/acd.md, "State machines", draws them).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Generic, NamedTuple, TypeVar

from cti.errors import RoutingError
from cti.models import AgentState


class CallPhase(StrEnum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    OFFERED = "offered"
    TALKING = "talking"
    WRAP_UP = "wrap_up"
    DONE = "done"


class AgentEvent(StrEnum):
    LOG_IN = "log_in"
    LOG_OUT = "log_out"
    PAUSE = "pause"
    """The agent asks to be Not Ready (a break)."""
    FREE = "free"
    """Nothing to take: the agent waits for a call, Ready."""
    OFFER = "offer"
    """A call (or a consultation) rings the agent."""
    ANSWER = "answer"
    DIAL = "dial"
    DECLINE = "decline"
    MISS = "miss"
    """The agent let offers lapse ``max_missed_offers`` times in a row."""
    END = "end"
    """The conversation is over for this agent (hung up, or handed on): wrap-up."""
    EXTEND = "extend"
    """More wrap-up time."""
    AFTER_CALL = "after_call"
    """Not Ready once the call is over, as the agent asked during it."""


class CallEvent(StrEnum):
    QUEUE = "queue"
    """Into a queue (new, due, moved, transferred, or back after an offer)."""
    OFFER = "offer"
    ANSWER = "answer"
    END = "end"
    """The conversation is over: the agent's wrap-up."""
    FINISH = "finish"
    """The call has its record (answered, abandoned or exited)."""


class AgentTransition(NamedTuple):
    source: AgentState
    event: AgentEvent
    target: AgentState


class CallTransition(NamedTuple):
    source: CallPhase
    event: CallEvent
    target: CallPhase


_S = AgentState
_BUSY_OR_OFFERED = (_S.RESERVED, _S.TALKING, _S.WRAP_UP)

AGENT_TRANSITIONS: tuple[AgentTransition, ...] = (
    AgentTransition(_S.LOGGED_OUT, AgentEvent.LOG_IN, _S.NOT_READY),
    *(AgentTransition(s, AgentEvent.LOG_OUT, _S.LOGGED_OUT) for s in (_S.NOT_READY, _S.READY)),
    *(AgentTransition(s, AgentEvent.PAUSE, _S.NOT_READY) for s in (_S.NOT_READY, _S.READY)),
    *(AgentTransition(s, AgentEvent.FREE, _S.READY) for s in (_S.NOT_READY, *_BUSY_OR_OFFERED)),
    *(
        AgentTransition(s, AgentEvent.OFFER, _S.RESERVED)
        for s in (_S.READY, _S.NOT_READY, *_BUSY_OR_OFFERED)
    ),
    AgentTransition(_S.RESERVED, AgentEvent.ANSWER, _S.TALKING),
    *(AgentTransition(s, AgentEvent.DIAL, _S.TALKING) for s in (_S.READY, _S.NOT_READY)),
    AgentTransition(_S.RESERVED, AgentEvent.DECLINE, _S.NOT_READY),
    AgentTransition(_S.RESERVED, AgentEvent.MISS, _S.NOT_READY),
    AgentTransition(_S.TALKING, AgentEvent.END, _S.WRAP_UP),
    AgentTransition(_S.WRAP_UP, AgentEvent.EXTEND, _S.WRAP_UP),
    *(AgentTransition(s, AgentEvent.AFTER_CALL, _S.NOT_READY) for s in _BUSY_OR_OFFERED),
)
"""Every move of an agent's state. FREE and OFFER come from busy states too: an agent
whose offer ended, whose consultation was dropped or whose wrap-up is over is free
again, and may be offered the next call at once, without a visible Ready between."""

_P = CallPhase
CALL_TRANSITIONS: tuple[CallTransition, ...] = (
    *(
        CallTransition(p, CallEvent.QUEUE, _P.QUEUED)
        for p in (_P.SCHEDULED, _P.QUEUED, _P.OFFERED, _P.TALKING)
    ),
    *(
        CallTransition(p, CallEvent.OFFER, _P.OFFERED)
        for p in (_P.SCHEDULED, _P.QUEUED, _P.OFFERED, _P.TALKING)
    ),
    CallTransition(_P.OFFERED, CallEvent.ANSWER, _P.TALKING),
    CallTransition(_P.TALKING, CallEvent.END, _P.WRAP_UP),
    *(CallTransition(p, CallEvent.FINISH, _P.DONE) for p in (_P.QUEUED, _P.OFFERED, _P.WRAP_UP)),
)
"""Every move of a call's phase. A new call starts QUEUED (an arrival), SCHEDULED (a
callback) or TALKING (a manual dial). OFFERED -> QUEUED or OFFERED: its offers ended
(lapsed, declined) and it goes back, or is offered again at once; TALKING -> QUEUED
or OFFERED: the agent transferred it."""

AGENT_NEXT: Final[dict[AgentEvent, dict[AgentState, AgentState]]] = {e: {} for e in AgentEvent}
"""Event -> from -> to: the agent table as the router looks it up."""
for _t in AGENT_TRANSITIONS:
    AGENT_NEXT[_t.event][_t.source] = _t.target
CALL_NEXT: Final[dict[CallEvent, dict[CallPhase, CallPhase]]] = {e: {} for e in CallEvent}
"""Event -> from -> to: the call table as the router looks it up."""
for _u in CALL_TRANSITIONS:
    CALL_NEXT[_u.event][_u.source] = _u.target


S = TypeVar("S", AgentState, CallPhase)
E = TypeVar("E", AgentEvent, CallEvent)


class Move(Generic[S, E]):
    """An event's row of a table, at hand: the router names the move and finds where it
    goes with one lookup (by the state it is in). Compiled, ``AGENT_NEXT[event]`` was a
    dict lookup more a move (some 140 instructions, two moves a decision at least)."""

    def __init__(self, event: E, to: dict[S, S]) -> None:
        self.event: E = event
        self.to: dict[S, S] = to
        targets = set(to.values())
        self.sources: tuple[S, ...] = tuple(to)
        """The states the move comes from, in the table's order."""
        self.target: S | None = targets.pop() if len(targets) == 1 else None
        """Where it goes from each of them, when that is one state (every event's is)."""

    def after(self, state: S) -> S | None:
        """Where the move takes ``state``; None if the table has no such row. By identity
        among its sources (the states are the enums' members): compiled, a dict's lookup
        by a ``StrEnum`` member costs some 140 instructions, a look at two or three
        pointers a few."""
        target = self.target
        if target is None:
            return self.to.get(state)
        for source in self.sources:
            if source is state:
                return target
        return None


AGENT_LOG_IN: Final = Move(AgentEvent.LOG_IN, AGENT_NEXT[AgentEvent.LOG_IN])
AGENT_LOG_OUT: Final = Move(AgentEvent.LOG_OUT, AGENT_NEXT[AgentEvent.LOG_OUT])
AGENT_PAUSE: Final = Move(AgentEvent.PAUSE, AGENT_NEXT[AgentEvent.PAUSE])
AGENT_FREE: Final = Move(AgentEvent.FREE, AGENT_NEXT[AgentEvent.FREE])
AGENT_OFFER: Final = Move(AgentEvent.OFFER, AGENT_NEXT[AgentEvent.OFFER])
AGENT_ANSWER: Final = Move(AgentEvent.ANSWER, AGENT_NEXT[AgentEvent.ANSWER])
AGENT_DIAL: Final = Move(AgentEvent.DIAL, AGENT_NEXT[AgentEvent.DIAL])
AGENT_DECLINE: Final = Move(AgentEvent.DECLINE, AGENT_NEXT[AgentEvent.DECLINE])
AGENT_MISS: Final = Move(AgentEvent.MISS, AGENT_NEXT[AgentEvent.MISS])
AGENT_END: Final = Move(AgentEvent.END, AGENT_NEXT[AgentEvent.END])
AGENT_EXTEND: Final = Move(AgentEvent.EXTEND, AGENT_NEXT[AgentEvent.EXTEND])
AGENT_AFTER_CALL: Final = Move(AgentEvent.AFTER_CALL, AGENT_NEXT[AgentEvent.AFTER_CALL])
CALL_QUEUE: Final = Move(CallEvent.QUEUE, CALL_NEXT[CallEvent.QUEUE])
CALL_OFFER: Final = Move(CallEvent.OFFER, CALL_NEXT[CallEvent.OFFER])
CALL_ANSWER: Final = Move(CallEvent.ANSWER, CALL_NEXT[CallEvent.ANSWER])
CALL_END: Final = Move(CallEvent.END, CALL_NEXT[CallEvent.END])
CALL_FINISH: Final = Move(CallEvent.FINISH, CALL_NEXT[CallEvent.FINISH])
AgentMove = Move[AgentState, AgentEvent]
CallMove = Move[CallPhase, CallEvent]


def agent_next(agent_id: str, state: AgentState, event: AgentEvent) -> AgentState:
    """The state ``event`` takes an agent to from ``state``; refused if the table has none."""
    target = AGENT_NEXT[event].get(state)
    if target is None:
        raise RoutingError(f"agent {agent_id!r}: no move from {state.value} on {event.value}")
    return target


def call_next(call_id: str, phase: CallPhase, event: CallEvent) -> CallPhase:
    """The phase ``event`` takes a call to from ``phase``; refused if the table has none."""
    target = CALL_NEXT[event].get(phase)
    if target is None:
        raise RoutingError(f"call {call_id!r}: no move from {phase.value} on {event.value}")
    return target
