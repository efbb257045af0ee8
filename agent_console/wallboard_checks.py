"""What the wallboard's dialogs check and say: a power ratio, a call's priority and a
reason typed by the supervisor (why each is refused), and a call's priority now."""

from __future__ import annotations

from cti.protocol import WaitingCall

__all__ = ["priority_now", "priority_problem", "ratio_problem", "reason_problem"]


def ratio_problem(value: str) -> str | None:
    """Why ``value`` is not a power ratio (lines per free agent), or None."""
    try:
        ratio = float(value)
    except ValueError:
        return f"{value!r} is not a number: type lines per free agent, e.g. 2 or 2.5"
    if not 1.0 <= ratio <= 20.0:
        return f"{ratio:g} is out of range: 1 to 20 lines per free agent"
    return None


def priority_problem(value: str) -> str | None:
    """Why ``value`` is not a call priority, or ``None`` if it is one."""
    try:
        number = float(value)
    except ValueError:
        return f"{value!r} is not a number: type rank points, e.g. 50 or -10"
    if number != number or abs(number) == float("inf"):
        return "the priority must be a finite number, e.g. 50"
    return None


def priority_now(call: WaitingCall) -> str:
    """``, now 50 (the queue's)``, ``(set by a supervisor)``, with its place and rank;
    empty from an older engine (which does not send them)."""
    if call.priority is None:
        return ""
    whose = "set by a supervisor" if call.own_priority else "the queue's"
    rank = "" if call.rank is None else f", rank {call.rank:.0f}"
    return f", place {call.position}{rank}; priority now {call.priority:g} ({whose})"


def reason_problem(value: str) -> str | None:
    if not value:
        return "type a reason the agent will see, e.g. supervisor"
    if len(value) > 40:
        return f"the reason is {len(value)} characters long; 40 at most"
    return None
