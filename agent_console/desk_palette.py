"""The desk's command palette (ctrl+p): every desk action with its key; one that cannot
be used now is listed with the reason, and choosing it tells the agent why."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING

from textual.app import SystemCommand

from agent_console.desk_model import EXTEND_WRAP_UP_S

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
    ("transfer", "w", "Transfer", "Blind transfer to a queue or an agent"),
    ("consult", "k", "Consult", "Hold the caller and call an agent first"),
    ("hand_over", "y", "Hand over", "Give the caller to the agent consulted"),
    ("back_to_caller", "g", "Go back to the caller", "End the consultation"),
    ("conference", "j", "Join all (conference)", "Caller and both agents talk together"),
    ("dial", "d", "Dial", "Call a number (the last caller's, or one you type)"),
    ("extend_wrap_up", "e", "More wrap-up time", f"{EXTEND_WRAP_UP_S:g} s more"),
    ("focus_script", "s", "Script", "Put the focus on the call's script"),
)


def desk_commands(app: AgentDesktop) -> Iterator[SystemCommand]:
    """The palette's desk entries, in :data:`PALETTE`'s order."""
    for action, key, title, help_text in PALETTE:
        if app.check_action(action, ()):
            run = partial(app.call_later, app.run_action, action)
            yield SystemCommand(f"{title} ({key})", help_text, run)
        else:
            why = app.model.why_not(action)
            tell = partial(_tell_why, app, title, why)
            yield SystemCommand(f"{title} ({key}) · not now", why, tell)


def _tell_why(app: AgentDesktop, title: str, why: str) -> None:
    app.notify(why, title=title, severity="warning", markup=False)
