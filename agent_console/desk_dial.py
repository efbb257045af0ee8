"""The agent's own dial on the desk, as the engine tells how it goes
(:class:`~cti.protocol.DialProgress`): under way (dialling, ringing: the call keys wait
for an answer), answered (a conversation like any other), or over with no one to talk
to (no answer, busy, failed: the desk is idle again, the agent in the state it dialled
from, told why). Pure: :class:`~agent_console.desk_model.DeskModel` reads these."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from cti.models import CallerKind
from cti.protocol import DialProgress, ScreenPop

if TYPE_CHECKING:
    from agent_console.desk_model import DeskModel

#: What the agent is told when nobody answered.
_ENDS = {
    "no_answer": "No answer from {number}.",
    "busy": "{number} is busy.",
    "failed": "The call to {number} failed",
}


def ringing(dial: DialProgress | None, call_id: str | None) -> bool:
    """Whether ``dial`` is of ``call_id`` (or of no call yet) and not yet answered."""
    if dial is None or dial.state not in ("dialling", "ringing"):
        return False
    return call_id is None or dial.call_id == call_id


def dial_end_text(dial: DialProgress) -> str | None:
    """What to tell the agent of a dial nobody answered; None while it goes on."""
    said = _ENDS.get(dial.state)
    if said is None:
        return None
    text = said.format(number=dial.number)
    if dial.state == "failed":
        text += f": {dial.detail}." if dial.detail else "."
    return text


def number_to_dial(model: DeskModel) -> str:
    """The number of the card shown last, to prefill the dial prompt with."""
    pop = model.offer.pop if model.offer is not None else model.last_pop
    if pop is None:
        return ""
    return pop.e164 or (pop.ani if pop.caller_kind is CallerKind.UNKNOWN else "")


def banner_word(dial: DialProgress | None, call_id: str | None) -> str | None:
    """``Dialling +86…`` or ``Ringing +86…`` while the agent's dial is under way."""
    if not ringing(dial, call_id) or dial is None:
        return None
    return f"{dial.state.capitalize()} {dial.number}"


def heading_of(pop: ScreenPop) -> str:
    """The card's first line when no customer holds the number."""
    return "New number (not a customer yet)" if pop.direction == "outbound" else "New caller"


def queue_row(pop: ScreenPop, waited: str) -> tuple[str, str]:
    """The card's queue row: how long the caller waited (``waited``), or when the agent
    dialled (no wait, no rank: the agent called)."""
    if pop.direction == "outbound":
        at = time.strftime("%H:%M", time.localtime(pop.dialled_wall))
        return "Dialled", f"{at} · queue {pop.queue}"
    return "Queue", f"{pop.queue} · waited {waited}"
