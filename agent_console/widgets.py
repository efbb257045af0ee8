"""Reusable widgets of the agent console: the state bar, the customer card, the queue
status line and the disposition picker.

Customer data is always built with :class:`rich.text.Text` appended as plain strings, so
a name such as ``[bold]x[/bold]`` shows literally; columns are padded by terminal cell
width (:func:`rich.cells.set_cell_size`) so wide characters (Chinese names) stay aligned.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence

from rich.cells import cell_len, set_cell_size
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Input, OptionList

from cti.models import AgentState, CallerKind
from cti.protocol import AgentStateChanged, QueueStatus, ScreenPop

#: Width in cells of the label column of the customer card.
LABEL_WIDTH = 10
#: Most history rows shown on the card (newest first).
HISTORY_ROWS = 5
#: Widest the disposition column of the history table grows, in cells.
DISPOSITION_WIDTH_MAX = 14


def format_duration(seconds: float) -> str:
    """``mm:ss`` (``h:mm:ss`` from an hour on); negative durations show as ``00:00``."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes:02d}:{secs:02d}"


def fit(text: str, width: int) -> str:
    """``text`` padded or cut to exactly ``width`` terminal cells."""
    return set_cell_size(text, width)


def format_date(wall: float) -> str:
    """A wall-clock epoch as a local ``YYYY-MM-DD``."""
    return time.strftime("%Y-%m-%d", time.localtime(wall))


def state_label(state: AgentStateChanged) -> str:
    """``READY``, ``NOT READY (break)``... as the state bar shows it."""
    label = state.state.value.replace("_", " ").upper()
    return f"{label} ({state.reason})" if state.reason else label


# --- the customer card ---------------------------------------------------------------


def _row(card: Text, label: str, value: str | Text) -> None:
    card.append(fit(label, LABEL_WIDTH), style="bold")
    card.append(value)
    card.append("\n")


def caller_number(pop: ScreenPop) -> str:
    """The caller's number as the agent should read it, by caller kind."""
    if pop.caller_kind is CallerKind.PRIVATE:
        return "private number"
    if pop.caller_kind is CallerKind.MALFORMED:
        return f"number not recognised ({pop.ani})" if pop.ani else "number not recognised"
    if pop.e164 and pop.e164 != pop.ani:
        return f"{pop.ani}  ({pop.e164})" if pop.ani else pop.e164
    return pop.ani or "no number given"


def screen_pop_text(pop: ScreenPop) -> Text:
    """The card for one screen-pop as plain text: never markup, columns cell-aligned."""
    card = Text(no_wrap=True, overflow="ellipsis", end="")
    customer = pop.customer if pop.caller_kind is CallerKind.KNOWN else None
    if customer is None:
        card.append("New caller", style="bold")
        card.append("\n")
    else:
        _row(card, "Name", customer.name)
    _row(card, "Number", caller_number(pop))
    if customer is not None:
        _row(card, "Segment", f"{customer.segment.value} · value {customer.value:g}")
    _row(card, "Queue", f"{pop.queue} · waited {format_duration(pop.waited_s)}")
    if pop.priority_reason:
        _row(card, "Priority", pop.priority_reason)
    if customer is not None:
        history = sorted(pop.history, key=lambda item: item.at, reverse=True)[:HISTORY_ROWS]
        if not history:
            _row(card, "History", "no earlier contacts")
        else:
            card.append("History", style="bold")
            card.append("\n")
            width = min(
                DISPOSITION_WIDTH_MAX,
                max(cell_len(item.disposition or "-") for item in history),
            )
            for item in history:
                card.append("  ")
                card.append(format_date(item.at))
                card.append("  ")
                card.append(fit(item.disposition or "-", width))
                card.append("  ")
                card.append(item.note)
                card.append("\n")
    card.rstrip()
    return card


class CustomerCard(Widget):
    """The screen-pop card: a known customer with value, segment and recent contacts,
    or a "New caller" card with the number as given."""

    DEFAULT_CSS = """
    CustomerCard {
        height: auto;
        border: round $primary;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    pop: reactive[ScreenPop | None] = reactive(None, layout=True)
    """The screen-pop shown, or ``None`` for an empty card."""

    def on_mount(self) -> None:
        self.border_title = "Caller"

    def render(self) -> Text:
        if self.pop is None:
            return Text("No caller details yet.", style="italic")
        return screen_pop_text(self.pop)


# --- the state bar -------------------------------------------------------------------


class StateBar(Widget):
    """One line: agent id, state (with reason) and the time spent in it."""

    DEFAULT_CSS = """
    StateBar {
        height: 1;
        padding: 0 1;
        background: $panel;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    StateBar.-ready { background: $success 40%; }
    StateBar.-reserved { background: $warning 50%; }
    StateBar.-talking { background: $accent 50%; }
    StateBar.-wrap_up { background: $secondary 50%; }
    StateBar.-not_ready { background: $error 30%; }
    """

    agent_id: reactive[str] = reactive("")
    state: reactive[AgentStateChanged | None] = reactive(None)
    now: reactive[float] = reactive(0.0)
    """Wall-clock epoch the time in state is counted to (set every second)."""

    def watch_state(self, state: AgentStateChanged | None) -> None:
        for kind in AgentState:
            self.set_class(state is not None and state.state is kind, f"-{kind.value}")

    def render(self) -> Text:
        line = Text(no_wrap=True, overflow="ellipsis", end="")
        line.append("Agent ", style="dim")
        line.append(self.agent_id or "-", style="bold")
        line.append("  │  ")
        if self.state is None:
            line.append("not logged in")
            return line
        line.append(state_label(self.state), style="bold")
        line.append("  │  ")
        line.append(format_duration(self.now - self.state.since_wall))
        return line


# --- the queue status line -----------------------------------------------------------


def queue_status_text(statuses: Mapping[str, QueueStatus], queues: Sequence[str] = ()) -> Text:
    """``sales 3 waiting, longest 01:25 │ ...`` for the queues asked for (all if none)."""
    names = list(queues) if queues else sorted(statuses)
    line = Text(no_wrap=True, overflow="ellipsis", end="")
    shown = [name for name in names if name in statuses]
    if not shown:
        line.append("No queue figures yet.", style="dim")
        return line
    for index, name in enumerate(shown):
        status = statuses[name]
        if index:
            line.append("  │  ", style="dim")
        line.append(name, style="bold")
        line.append(f" {status.waiting} waiting")
        if status.waiting:
            line.append(f", longest {format_duration(status.longest_wait_s)}")
    return line


class QueueStatusLine(Widget):
    """One line of live queue figures: waiting calls and the longest wait per queue."""

    DEFAULT_CSS = """
    QueueStatusLine {
        height: 1;
        padding: 0 1;
        background: $boost;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def __init__(
        self,
        queues: Sequence[str] = (),
        *,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.queues = tuple(queues)
        self.statuses: dict[str, QueueStatus] = {}

    def update_status(self, status: QueueStatus) -> None:
        self.statuses[status.queue] = status
        self.refresh()

    def render(self) -> Text:
        return queue_status_text(self.statuses, self.queues)


# --- the disposition picker ----------------------------------------------------------


class DispositionPicker(Vertical):
    """The dispositions of a call, numbered 1-9, and an optional note.

    Posts :class:`DispositionPicker.Chosen` when the agent picks one: Enter on the list,
    Enter in the note (the highlighted disposition), or :meth:`choose` (number keys).
    """

    DEFAULT_CSS = """
    DispositionPicker { height: auto; }
    DispositionPicker > OptionList { height: auto; max-height: 11; }
    DispositionPicker > Input { margin-top: 1; }
    """

    class Chosen(Message):
        """The agent chose a disposition (with the note typed so far)."""

        def __init__(self, disposition: str, note: str) -> None:
            super().__init__()
            self.disposition = disposition
            self.note = note

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.dispositions: tuple[str, ...] = ()

    def compose(self) -> ComposeResult:
        yield OptionList(id="dispositions")
        yield Input(placeholder="Note (optional), Enter to finish", id="note")

    def set_dispositions(self, dispositions: Iterable[str]) -> None:
        """Offer these dispositions (numbered from 1) and clear the note."""
        self.dispositions = tuple(dispositions)
        options = self.query_one(OptionList)
        options.set_options(
            Text.assemble((f"{number} ", "bold"), name)
            for number, name in enumerate(self.dispositions, start=1)
        )
        options.highlighted = 0 if self.dispositions else None
        self.query_one(Input).value = ""

    def preselect(self, disposition: str) -> None:
        """Highlight ``disposition`` (a script's suggestion), adding it last if missing,
        so Enter chooses it and the numbers of the others stay the same."""
        if not disposition:
            return
        if disposition not in self.dispositions:
            self.dispositions = (*self.dispositions, disposition)
            number = len(self.dispositions)
            self.query_one(OptionList).add_option(
                Text.assemble((f"{number} ", "bold"), disposition)
            )
        self.query_one(OptionList).highlighted = self.dispositions.index(disposition)

    def choose(self, index: int) -> bool:
        """Choose the disposition at ``index`` (0-based); ``False`` if there is none."""
        if not 0 <= index < len(self.dispositions):
            return False
        self.post_message(self.Chosen(self.dispositions[index], self.query_one(Input).value))
        return True

    def focus_list(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.choose(event.option_index)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        highlighted = self.query_one(OptionList).highlighted
        self.choose(highlighted if highlighted is not None else 0)
