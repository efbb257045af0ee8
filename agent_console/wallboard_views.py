"""The wallboard's *Chart* and *Log* views: waiting calls and service level over the
last hour as sparklines, and one line per alert and supervisor action. Never markup."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static

from agent_console.wallboard_model import AlertEvent, EngineTrouble, LogEntry
from agent_console.widgets import fit, format_duration


def log_line(entry: LogEntry) -> Text:
    """One line of the alert and action log, with the local time of day."""
    text = Text(no_wrap=True, overflow="ellipsis", end="")
    text.append(time.strftime("%H:%M:%S ", time.localtime(entry.at_wall)), style="dim")
    if isinstance(entry, AlertEvent):
        label, style = ("ALERT", "bold red") if entry.raised else ("clear", "green")
    elif isinstance(entry, EngineTrouble):
        label, style = ("ENGINE", "bold red") if entry.raised else ("clear", "green")
    else:
        label, style = ("done ", "green") if entry.ok else ("REFUSED", "bold red")
    text.append(fit(label, 7), style=style)
    text.append(" ")
    if isinstance(entry, AlertEvent | EngineTrouble):
        text.append(entry.text())
    else:
        text.append(entry.description)
        if entry.error:
            text.append(": ")
            text.append(entry.error)
    return text


class ChartPanel(Vertical):
    """Waiting calls and service level over the configured span, as two sparklines."""

    def compose(self) -> ComposeResult:
        yield Static(id="chart-title")
        yield Static(id="waiting-label")
        yield Sparkline([], id="waiting-chart")
        yield Static(id="sl-label")
        yield Sparkline([], id="sl-chart")
        yield Static(id="chart-axis")

    def show(
        self, subject: str, waiting: list[float], service: list[float], bucket_s: float
    ) -> None:
        """Chart ``waiting`` and ``service`` (percent), one point per ``bucket_s``."""
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append("Chart: ", style="bold")
        title.append(subject or "all queues")
        title.append(" · c: next queue", style="dim")
        self.query_one("#chart-title", Static).update(title)
        each = "minute" if bucket_s == 60 else format_duration(bucket_s)
        if waiting:
            label = f"Calls waiting, most in each {each}: now {waiting[-1]:.0f}, "
            label += f"peak {max(waiting):.0f}"
        else:
            label = "Calls waiting: no figures yet"
        self.query_one("#waiting-label", Static).update(Text(label))
        measured = [value for value in service if value > 0]
        if measured:
            sl = f"Service level: now {service[-1]:.0f}%, lowest {min(measured):.0f}%, "
            sl += f"highest {max(measured):.0f}%"
        else:
            sl = "Service level: not measured yet"
        self.query_one("#sl-label", Static).update(Text(sl))
        # One point would fill the whole width: the sparkline scales to its data.
        self.query_one("#waiting-chart", Sparkline).data = (
            waiting * 2 if len(waiting) == 1 else waiting
        )
        self.query_one("#sl-chart", Sparkline).data = service * 2 if len(service) == 1 else service
        span = format_duration(len(waiting) * bucket_s) if waiting else "-"
        left = f"{span} ago" if waiting else ""
        self.query_one("#chart-axis", Static).update(
            Text(fit(left, 20) + "now".rjust(max(3, self.size.width - 20)))
        )
