"""The desk's banners: what it says above the card when idle, with a call, and in
wrap-up (split from :mod:`.widgets`)."""

from __future__ import annotations

import math

from rich.text import Text

from agent_console.desk_dial import banner_word
from agent_console.desk_model import DeskModel
from agent_console.widgets import caller_number, format_duration
from cti.models import AgentState


def idle_text(model: DeskModel) -> Text:
    """No call in hand: Ready and waiting, or Not ready (why) and how to be Ready."""
    text = Text()
    if model.agent_state is AgentState.READY:
        text.append("Ready. Waiting for a call.", style="bold")
    else:
        reason = model.state.reason if model.state is not None else ""
        text.append(f"Not ready{f' ({reason})' if reason else ''}.", style="bold")
        text.append(" Press r when you are ready.")
    if model.state is not None and model.state.phone_reachable is False:
        text.append("\n\nYour phone is not reachable: register your softphone (or check its ")
        text.append("address). Calls cannot ring it, so Ready is refused until it is.")
    if model.notice:
        text.append("\n\n")
        text.append(model.notice)
    return text


def call_banner_text(model: DeskModel, now: float) -> Text:
    """The call offered (and until when) or in conversation (hold, mute, consultation)."""
    if model.view == "talking":
        return _talking_text(model, now)
    text = Text()
    offer = model.offer
    if offer is not None and offer.consult_from:
        text.append(f"{offer.consult_from} consults you", style="bold")
    else:
        text.append("Incoming call", style="bold")
    if offer is None:
        text.append(" · details coming…")
        return text
    left = offer.deadline_wall - now
    if left > 0:
        text.append(f" · answer within {math.ceil(left)} s")
    else:
        text.append(" · offer expired")
    text.append("  ·  a: answer  x: reject")
    return text


def _talking_text(model: DeskModel, now: float) -> Text:
    if (dialling := banner_word(model.dial, model.call_id)) is not None:  # not answered yet
        return Text.assemble((dialling, "bold"), " · h: hang up")
    text = Text()  # wraps: hold, mute and a consultation must show at 80 columns
    text.append("Talking", style="bold")
    if model.state is not None and model.state.state is AgentState.TALKING:
        text.append(f" · {format_duration(now - model.state.since_wall)}")
    control = model.control
    if control is not None and control.held:
        text.append(" · ON HOLD", style="bold reverse")
    if control is not None and control.muted:
        text.append(" · MUTED", style="bold reverse")
    elif model.local_mute:
        text.append(" · MUTED here only (the line cannot mute)", style="bold reverse")
    if model.recording_paused:
        text.append(" · REC paused", style="bold reverse")
    if control is not None and control.consult_state:
        text.append(f" · consulting {control.consult_agent} ({control.consult_state})")
    elif model.offer is not None and model.offer.consult_from and not model.owner:
        text.append(f" · consulted by {model.offer.consult_from}")
    if model.after_call:
        text.append(" · not ready after this call")
    return text


def wrap_up_banner_text(model: DeskModel, now: float) -> Text:
    """Wrap-up: whose call, and when the engine ends it by itself."""
    text = Text()  # wraps: the timer must show at 80 columns
    text.append("Wrap-up", style="bold")
    if model.offer is not None:
        pop = model.offer.pop
        known = model.caller or pop.customer  # the customer identified during the call first
        text.append(" · ")
        text.append(known.name if known else caller_number(pop))
    deadline = model.state.wrap_up_deadline_wall if model.state is not None else None
    if deadline is not None and model.agent_state is AgentState.WRAP_UP:
        then = "not ready" if model.after_call else "ready"
        text.append(f" · auto-{then} in {format_duration(deadline - now)}")
    return text
