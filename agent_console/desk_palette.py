"""The desk's command palette (ctrl+p, "more keys" in the footer): every desk action with
its key, the customer keys and the dispositions included; one that cannot be used now is
listed with the reason, and choosing it tells the agent why.

The reasons are the desk's state in the agent's words (:func:`why_not`): not "only during
a call" during a call, but what stops the action in this very call.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING

from textual.app import SystemCommand

from agent_console.customer_actions import CUSTOMER_ACTIONS
from agent_console.desk_model import EXTEND_WRAP_UP_S, VIEW_OF
from cti.models import AgentState

if TYPE_CHECKING:
    from agent_console.desktop import AgentDesktop

#: What the command palette lists: action, its key, title, what it does.
PALETTE: tuple[tuple[str, str, str, str], ...] = (
    ("ready", "r", "Ready", "Take calls"),
    ("not_ready", "n", "Not ready", "Choose a reason; during a call: not ready after it"),
    ("answer", "a", "Answer", "Take the call offered"),
    ("reject", "x", "Reject", "Let the call offered go to another agent"),
    ("hang_up", "h", "Hang up", "End the call"),
    ("hold", "o", "Hold / resume", "Put the caller on hold, or take them off it"),
    ("mute", "m", "Mute / unmute", "Keep your voice from the caller"),
    ("pause_recording", "p", "Pause / resume recording", "While card details are given"),
    ("transfer", "w", "Transfer", "Blind transfer to a queue, a Ready agent or a number"),
    ("consult", "k", "Consult", "Hold the caller and call a Ready agent first"),
    ("hand_over", "y", "Hand over", "Give the caller to the agent consulted"),
    ("back_to_caller", "g", "Go back to the caller", "End the consultation"),
    ("conference", "j", "Join all (conference)", "Caller and both agents talk together"),
    ("dial", "d", "Dial", "Call a number (the last caller's, or one you type)"),
    ("focus_script", "s", "Script", "Put the focus on the call's script"),
    ("disposition", "1-9", "Disposition", "End wrap-up with a disposition"),
    ("extend_wrap_up", "e", "More wrap-up time", f"{EXTEND_WRAP_UP_S:g} s more"),
    ("customer", "c", "Caller", "Who is calling: choose the customer, or a new one"),
    ("find_customer", "f", "Find a customer", "By number, name, #id or e-mail"),
    ("customer_info", "i", "Caller details", "History, items and value in full"),
    ("service_item", "t", "New service item", "For the caller's customer"),
    ("escalate_item", "u", "Escalate an item", "One of the caller's open items"),
    ("callback", "b", "Callback", "Call the customer back at a time of theirs"),
    ("quit", "q", "Quit", "Log out and leave the desk"),
)

_WAITING = "Waiting for the engine's answer to your last action."
_CONSULTING = "Finish the consultation first: y hands over, g goes back to the caller."
_NOT_CONSULTING = "Only while you consult another agent (k)."


def desk_commands(app: AgentDesktop) -> Iterator[SystemCommand]:
    """The palette's desk entries, in :data:`PALETTE`'s order (in wrap-up, one entry per
    disposition offered)."""
    for action, key, title, help_text in PALETTE:
        if action == "disposition" and app.view == "wrap_up":
            yield from _dispositions(app)
        elif app.check_action(action, ()):
            yield SystemCommand(f"{title} ({key})", help_text, partial(_run, app, action))
        else:
            tell = partial(_tell_why, app, title, why_not(app, action))
            yield SystemCommand(f"{title} ({key}) · not now", why_not(app, action), tell)


def _dispositions(app: AgentDesktop) -> Iterator[SystemCommand]:
    for number, disposition in enumerate(app.model.dispositions[:9], start=1):
        action = f"disposition({number})"
        title = f"Disposition {number}: {disposition} ({number})"
        if app.check_action("disposition", (number,)) is None:
            why = why_not(app, "disposition")
            yield SystemCommand(f"{title} · not now", why, partial(_tell_why, app, title, why))
        else:
            yield SystemCommand(title, "End wrap-up with it", partial(_run, app, action))


def _run(app: AgentDesktop, action: str) -> None:
    app.call_later(app.run_action, action)


def _tell_why(app: AgentDesktop, title: str, why: str) -> None:
    app.notify(why, title=title, severity="warning", markup=False)


def why_not(app: AgentDesktop, action: str) -> str:
    """Why ``action`` cannot be used now, in the agent's words, for the desk's state."""
    model, view = app.model, app.view
    if action in CUSTOMER_ACTIONS:
        return app.customers.why_not(action)
    if view == "login" and action != "quit":
        return "Log in first (type your agent id, Enter)."
    if model.pending is not None and action in VIEW_OF:
        return _WAITING
    if action == "focus_script":
        return _script_why(app)
    if action == "disposition":
        if view != "wrap_up":
            return "Only in wrap-up, after the call."
        unfinished = app.script_unfinished()
        return f"Not yet: {unfinished}. Press s." if unfinished else "No such disposition."
    special = _state_why(app, action) if view == "idle" else None
    if special is None and view == "talking":
        special = _talking_why(app, action)
    if special is None and view in ("talking", "wrap_up") and action == "not_ready":
        special = "You go Not ready after this call already." if model.after_call else None
    return special or model.why_not(action)


def _state_why(app: AgentDesktop, action: str) -> str | None:
    state = app.agent_state
    if action == "ready" and state is AgentState.READY:
        return "You are Ready already."
    if action == "not_ready" and state is AgentState.NOT_READY:
        return "You are Not ready already (r: Ready)."
    return None


def _talking_why(app: AgentDesktop, action: str) -> str | None:
    """During a call: what in this call stops ``action`` (``None``: the model says)."""
    model = app.model
    control = model.control
    if action in ("hand_over", "back_to_caller", "conference") and not model.consulting:
        return _NOT_CONSULTING
    waiting = control is not None and control.consult_state != "talking"
    if action == "conference" and waiting and model.line.conference and control is not None:
        return f"Only once {control.consult_agent} has answered the consultation."
    if action in ("hold", "mute", "pause_recording", "transfer", "consult") and not model.owner:
        offer = model.offer
        who = offer.consult_from if offer is not None and offer.consult_from else "the agent"
        return f"The caller is {who}'s: {who} consulted you and has them on hold."
    if action in ("hold", "transfer", "consult") and model.consulting:
        return _CONSULTING
    return None


def _script_why(app: AgentDesktop) -> str:
    if app.view not in ("talking", "wrap_up"):
        return "Only during a call or in wrap-up."
    if not app.has_call_script():
        return "This call has no script."
    return "The script has the focus already."
