"""Reusable widgets of the agent console: the state bar, the customer card, the queue
status line and the disposition picker.

The card draws on the whole customer base: several customers holding the number (the
agent chooses, ``c``), none (a new-customer form, ``c``), the chosen or created
customer's details once the engine sends them (:class:`~cti.protocol.CustomerDetails`),
company, address, owner and other e-mails, "why this priority" (the value summary), the
open service items (priority, status, due with overdue marked, escalation) and recent
contacts. It never grows taller than the room it has: the rest is one line away (``i``).

Customer data is always built with :class:`rich.text.Text` appended as plain strings, so
a name such as ``[bold]x[/bold]`` shows literally; columns are padded by terminal cell
width (:func:`rich.cells.set_cell_size`) so wide characters (Chinese names) stay aligned.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

from rich.cells import cell_len, set_cell_size
from rich.console import Console
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Input, OptionList, Static

from agent_console.desk_dial import heading_of, queue_row
from cti.clock import wall_time
from cti.events import VoiceMessage
from cti.models import (
    AgentState,
    CallerKind,
    Customer,
    Interaction,
    ServiceItem,
    ValueExplanation,
)
from cti.protocol import AgentStateChanged, CustomerDetails, QueueStatus, ScreenPop

#: Width in cells of the label column of the customer card.
LABEL_WIDTH = 10
#: Most history rows shown on the card (newest first).
HISTORY_ROWS = 5
#: Widest the disposition column of the history table grows, in cells.
DISPOSITION_WIDTH_MAX = 14
#: Most service items and matching customers listed on the card itself.
ITEM_ROWS = 3
MATCH_ROWS = 4
#: Width in cells of a name in lists of customers (matches, search results).
NAME_WIDTH = 14


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


#: Narrowest value column a row wraps to (narrower: cut, the card is that small).
_WRAP_MIN = 12
_MEASURE = Console(width=200, file=io.StringIO(), color_system=None, legacy_windows=False)


def _row(card: Text, label: str, value: str | Text, width: int | None = None) -> None:
    """``label`` then ``value``; with the card's ``width``, a long value wraps under
    itself (nothing a person needs is cut)."""
    card.append(fit(label, LABEL_WIDTH), style="bold")
    _wrapped(card, value, width, LABEL_WIDTH)


def _wrapped(card: Text, value: str | Text, width: int | None, indent: int) -> None:
    """``value`` from column ``indent`` to ``width``, its further lines indented."""
    room = (width or 0) - indent
    if room < _WRAP_MIN:
        card.append(value)
        card.append("\n")
        return
    text = value if isinstance(value, Text) else Text(value)
    for number, line in enumerate(text.wrap(_MEASURE, room, overflow="fold")):
        if number:
            card.append(" " * indent)
        card.append_text(line)
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


def numbers_of(customer: Customer) -> str:
    """A customer's numbers, comma-separated, as entered (E.164 when none was kept)."""
    return ", ".join(p.raw or p.e164 for p in customer.phones) or "no number"


def customer_line(customer: Customer, *, name_width: int = NAME_WIDTH) -> Text:
    """One customer in a list: name, segment, numbers, company; columns cell-aligned."""
    line = Text(no_wrap=True, overflow="ellipsis", end="")
    line.append(fit(customer.name, name_width), style="bold")
    line.append("  ")
    line.append(fit(customer.segment.value, 8))
    line.append("  ")
    line.append(numbers_of(customer))
    if customer.company:
        line.append("  ")
        line.append(customer.company, style="italic")
    return line


def item_text(item: ServiceItem, now: float) -> Text:
    """``[high] title · open · due 2026-01-07 OVERDUE · escalated 1 -> 王经理``."""
    text = Text(no_wrap=True, overflow="ellipsis", end="")
    text.append(
        f"[{item.priority.value}] ",
        style="bold" if item.priority.value in ("high", "urgent") else "",
    )
    text.append(item.title)
    text.append(f" · {item.status.value.replace('_', ' ')}")
    if item.due_at is not None:
        text.append(f" · due {format_date(item.due_at)}")
        if item.overdue(now):
            text.append(" OVERDUE", style="bold reverse")
    if item.escalation_level:
        text.append(f" · escalated {item.escalation_level}")
        if item.escalated_to:
            text.append(" → ")
            text.append(item.escalated_to)
    return text


def _history(
    card: Text, history: Sequence[Interaction], rows: int, answers: bool, left_out: int = 0
) -> None:
    shown = sorted(history, key=lambda item: item.at, reverse=True)[:rows]
    if not shown:
        _row(card, "History", "no earlier contacts")
        _left_out(card, left_out, "older contacts")
        return
    card.append("History", style="bold")
    card.append("\n")
    width = min(DISPOSITION_WIDTH_MAX, max(cell_len(item.disposition or "-") for item in shown))
    for item in shown:
        card.append("  ")
        card.append(format_date(item.at))
        card.append("  ")
        card.append(fit(item.disposition or "-", width))
        card.append("  ")
        card.append(item.note)
        card.append("\n")
        if answers and item.script_answers:
            card.append("      ")
            card.append(" · ".join(f"{key}: {value}" for key, value in item.script_answers.items()))
            card.append("\n")
    _left_out(card, left_out, "older contacts")


def _customer_rows(
    card: Text,
    customer: Customer,
    explanation: ValueExplanation | None,
    factors: bool,
    width: int | None = None,
) -> None:
    if customer.company or customer.owner:
        company = customer.company or "-"
        owner = f"{company} · owner {customer.owner}" if customer.owner else company
        _row(card, "Company", owner, width)
    if customer.address:
        _row(card, "Address", customer.address, width)
    emails = [e for e in (customer.email, *customer.other_emails) if e]
    if emails:
        _row(card, "E-mail", ", ".join(emails), width)
    _row(card, "Segment", f"{customer.segment.value} · value {customer.value:g}", width)
    if explanation is not None:
        _row(card, "Why", explanation.summary, width)
        if factors:
            for factor in sorted(explanation.factors, key=lambda f: -f.points):
                card.append("  ")
                card.append(fit(factor.name, 10))
                card.append(f"{factor.points:5.1f}  ")
                card.append(factor.detail)
                card.append("\n")


def _items(
    card: Text, items: Sequence[ServiceItem], now: float, rows: int, left_out: int = 0
) -> None:
    if not items and not left_out:
        return
    card.append(f"Items ({len(items) + left_out} open)", style="bold")
    card.append("\n")
    for item in items[:rows]:
        card.append("  ")
        card.append(item_text(item, now))
        card.append("\n")
    if len(items) > rows:
        card.append(f"  … {len(items) - rows} more (i: all)\n")
    _left_out(card, left_out, "more items")


def _left_out(card: Text, count: int, what: str) -> None:
    """The line saying how many rows the engine left out of a card too big to send."""
    if count:
        card.append(f"  … {count:,} {what} not sent (too much for one message)\n", style="dim")


def message_text(message: VoiceMessage) -> str:
    """The voicemail a callback returns, as its card says it: how long, and how to hear
    it (the desk does not play audio: the engine exports it)."""
    if message.status == "recording":
        return "being left now"
    if message.status != "recorded":
        return f"{message.status} ({message.recording_id})"
    return (f"{format_duration(message.duration_s)} left · listen: "
            f"cti recordings export {message.recording_id}")  # fmt: skip


def _caller_heading(
    card: Text, pop: ScreenPop, customer: Customer | None, width: int | None
) -> None:
    """The customer's name, or "New caller" with the line's caller-id name if it gave one."""
    if customer is not None:
        _row(card, "Name", customer.name, width)
        return
    heading = Text(heading_of(pop), style="bold")
    if pop.caller_kind is CallerKind.UNKNOWN and pop.e164:
        heading.append(" · c: new-customer form (number filled in), f: find")
    _wrapped(card, heading, width, 0)
    if pop.caller_name:
        _row(card, "Name", f"{pop.caller_name} (caller ID)", width)


def screen_pop_text(
    pop: ScreenPop,
    details: CustomerDetails | None = None,
    now: float | None = None,
    width: int | None = None,
    callbacks: Sequence[str] = (),
) -> Text:
    """The card for one screen-pop as plain text: never markup, columns cell-aligned.

    ``details``: the customer the agent chose or created for this call (it replaces the
    pop's customer, history, items and value explanation). ``width``: the card's, in
    cells: its rows (why this priority, the number, the e-mails...) wrap to it.
    ``callbacks``: those the agent scheduled during the call (``b``)."""
    now = wall_time() if now is None else now
    card = Text(no_wrap=True, overflow="ellipsis", end="")
    chosen = details if details is not None and details.call_id == pop.call_id else None
    customer = pop.customer if pop.caller_kind is CallerKind.KNOWN else None
    history, items, why = pop.history, pop.service_items, pop.value_explanation
    history_out, items_out = pop.history_left_out, pop.items_left_out
    if chosen is not None:
        customer, history = chosen.customer, chosen.history
        items, why = chosen.service_items, chosen.value_explanation
        history_out, items_out = chosen.history_left_out, chosen.items_left_out
    _caller_heading(card, pop, customer, width)
    if len(pop.matches) + pop.matches_left_out > 1:
        holders = len(pop.matches) + pop.matches_left_out
        card.append(f"{holders:,} customers hold this number", style="bold")
        card.append(" · chosen\n" if chosen is not None else " · c: choose\n")
        for match in pop.matches[:MATCH_ROWS]:
            card.append("  ")
            card.append("▸ " if customer is not None and match.id == customer.id else "  ")
            card.append(customer_line(match, name_width=NAME_WIDTH - 2))
            card.append("\n")
        if len(pop.matches) > MATCH_ROWS:
            card.append(f"  … {len(pop.matches) - MATCH_ROWS} more (c)\n")
        _left_out(card, pop.matches_left_out, "more")
    _row(card, "Number", caller_number(pop), width)
    if customer is not None:
        _customer_rows(card, customer, why, factors=False, width=width)
    _row(card, *queue_row(pop, format_duration(pop.waited_s)), width)
    if pop.priority_reason:
        _row(card, "Priority", pop.priority_reason, width)
    if pop.message is not None:
        _row(card, "Voicemail", message_text(pop.message), width)
    for callback in callbacks:
        _row(card, "Callback", callback, width)
    if customer is not None:
        _items(card, items, now, ITEM_ROWS, items_out)
        _history(card, history, HISTORY_ROWS, answers=False, left_out=history_out)
    card.rstrip()
    return card


def details_text(
    details: CustomerDetails, now: float | None = None, width: int | None = None
) -> Text:
    """One customer in full (search, ``i``): contact data, the value's factors, every
    open item, and history with script answers; the rows wrap to ``width``."""
    now = wall_time() if now is None else now
    card = Text(no_wrap=True, overflow="ellipsis", end="")
    customer = details.customer
    _row(card, "Name", f"{customer.name}  (#{customer.id})", width)
    _row(card, "Numbers", numbers_of(customer), width)
    _row(card, "Language", f"{customer.language} · time zone {customer.time_zone}", width)
    _customer_rows(card, customer, details.value_explanation, factors=True, width=width)
    _items(card, details.service_items, now, len(details.service_items), details.items_left_out)
    _history(
        card, details.history, len(details.history), answers=True, left_out=details.history_left_out
    )
    card.rstrip()
    return card


def fit_lines(text: Text, height: int) -> Text:
    """``text`` cut to ``height`` lines, the last saying how many more there are."""
    lines = text.split("\n", allow_blank=True)
    if height <= 0 or len(lines) <= height:
        return text
    kept = Text("\n", no_wrap=True, overflow="ellipsis", end="").join(lines[: height - 1])
    kept.append("\n")
    kept.append(f"… {len(lines) - height + 1} more lines (i: all details)", style="dim")
    return kept


class WrappedCard(Static):
    """Card text built for the width it is drawn at (its rows wrap): ``build`` takes the
    width in cells."""

    def __init__(self, build: Callable[[int | None], Text], *, id: str | None = None) -> None:
        super().__init__(build(None), id=id)
        self.build = build

    def show(self, build: Callable[[int | None], Text]) -> None:
        """Draw what ``build`` gives from now on."""
        self.build = build
        self.refresh(layout=True)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.build(width or None).split("\n", allow_blank=True))

    def render(self) -> Text:
        return self.build(self.content_region.width or None)


class CustomerCardView(Widget):
    """The screen-pop card: a known customer with value, segment and recent contacts,
    the customers holding the number, or a "New caller" card with the number as given.

    It takes the room its content needs, but never more than is left in its container
    (below the widgets before it): then the last line says what was left out."""

    DEFAULT_CSS = """
    CustomerCardView {
        height: auto;
        border: round $primary;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    pop: reactive[ScreenPop | None] = reactive(None, layout=True)
    """The screen-pop shown, or ``None`` for an empty card."""
    details: reactive[CustomerDetails | None] = reactive(None, layout=True)
    """The customer chosen or created for the pop's call (ignored for another call)."""
    clock: Callable[[], float] = staticmethod(wall_time)
    """Wall-clock epoch seconds, for overdue items (the desk sets its own)."""
    callbacks: reactive[tuple[tuple[str, str], ...]] = reactive((), layout=True)
    """(call id, what was scheduled) of the callbacks the agent scheduled (``b``)."""

    def add_callback(self, call_id: str, line: str) -> None:
        """A callback scheduled during ``call_id``: shown on its card."""
        kept = tuple(c for c in self.callbacks if c[0] == call_id)
        self.callbacks = (*kept, (call_id, line))

    def on_mount(self) -> None:
        self.border_title = "Caller"

    def _full(self, width: int | None = None) -> Text:
        if self.pop is None:
            return Text("No caller details yet.", style="italic")
        scheduled = [line for call_id, line in self.callbacks if call_id == self.pop.call_id]
        return screen_pop_text(self.pop, self.details, self.clock(), width, scheduled)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        lines = len(self._full(width).split("\n", allow_blank=True))
        room = self._room()
        return min(lines, room) if room > 0 else lines

    def _room(self) -> int:
        """Lines left for the content in the parent, below the widgets before this one."""
        parent = self.parent
        if not isinstance(parent, Widget) or parent.content_region.height <= 0:
            return 0
        used = 0
        for child in parent.children:
            if child is self:
                break
            if child.display:
                used += child.outer_size.height
        return max(3, parent.content_region.height - used - self.styles.gutter.height)

    def render(self) -> Text:
        height, width = self.content_region.height, self.content_region.width
        full = self._full(width or None)
        return fit_lines(full, height) if height > 0 else full

    def watch_pop(self) -> None:
        self._mark_cut()

    def watch_details(self) -> None:
        self._mark_cut()

    def on_resize(self) -> None:
        self._mark_cut()

    def _mark_cut(self) -> None:
        """A history note or an item cut at this width: the border says where it is whole."""
        width = self.content_region.width
        lines = self._full(width or None).split("\n", allow_blank=True)
        cut = width > 0 and any(cell_len(line.plain) > width for line in lines)
        self.border_subtitle = "… i: all details" if cut and self.pop is not None else ""


# --- the state bar -------------------------------------------------------------------


class StateBar(Widget):
    """One line: agent id, state (with reason), the time spent in it, and whether the
    agent's phone is reachable (when the center's lines carry the voice)."""

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
        reachable = self.state.phone_reachable
        if reachable is not None:
            line.append("  │  ")
            if reachable:
                line.append("phone reachable")
            else:
                line.append("phone not reachable", style="bold reverse")
                line.append(" (register your softphone)")
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
        statuses: Mapping[str, QueueStatus],
        queues: Sequence[str] = (),
        *,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        """``statuses`` is read at each draw (the desk's model keeps it)."""
        super().__init__(id=id, classes=classes)
        self.queues = tuple(queues)
        self.statuses = statuses

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
