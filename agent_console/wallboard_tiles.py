"""The top of the wallboard: the engine's trouble banner, the alert banner and one tile
of figures per queue, each coloured by its worst level. Never markup."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.text import Text
from textual.widget import Widget

from agent_console.wallboard_model import (
    AlertEvent,
    EngineTrouble,
    Level,
    QueueView,
    format_percent,
)
from agent_console.widgets import format_duration
from cti.config import WallboardSettings

#: Width of a queue tile in cells (tiles share out any width left over).
TILE_WIDTH = 26
LEVEL_STYLE = {Level.NONE: "", Level.OK: "green", Level.WARN: "yellow", Level.ALERT: "bold red"}
#: Agents by state on a tile: (state key, short label), in reading order.
_TILE_STATES = (
    ("ready", "Ready"),
    ("reserved", "Ring"),
    ("talking", "Talk"),
    ("wrap_up", "Wrap"),
    ("not_ready", "NR"),
)


def tile_text(view: QueueView, settings: WallboardSettings, now: float) -> Text:
    """The body of a queue tile: waiting and longest wait, service level against the
    goal, ASA and abandoned, agents by state. Coloured by level; never markup."""
    text = Text(no_wrap=True, overflow="ellipsis", end="")
    status = view.status
    if status is None:
        text.append("No figures yet.", style="dim")
        return text
    wait_style = LEVEL_STYLE[view.longest_wait]
    text.append("Waiting ")
    text.append(str(status.waiting), style=f"bold {wait_style}".strip())
    if status.waiting:
        text.append("  max ")
        text.append(format_duration(status.longest_wait_s), style=wait_style)
    text.append("\nSL ")
    judged = view.service_level is not Level.NONE
    sl_text = format_percent(status.service_level)
    text.append(sl_text, style=f"bold {LEVEL_STYLE[view.service_level]}".strip())
    if not judged and status.service_level is not None:
        counted = max(0, status.offered - status.short_abandoned)
        text.append(f" of {counted} calls", style="dim")  # too few to judge
    else:
        text.append(f" goal {format_percent(settings.service_level_goal)}", style="dim")
    text.append("\nASA ")
    text.append("-" if status.asa_s is None else format_duration(status.asa_s))
    text.append(f"  Abandoned {status.abandoned}")
    text.append("\n")
    by_state = status.agents_by_state
    parts = [f"{label} {by_state.get(key, 0)}" for key, label in _TILE_STATES]
    text.append(" ".join(parts[:3]))
    text.append("\n")
    text.append(" ".join(parts[3:]))
    text.append(f"  of {status.agents_logged_in}", style="dim")
    if view.stale(now):
        text.append("\n")
        text.append(f"no update for {format_duration(now - status.at_wall)}", style="bold red")
    return text


def banner_text(alerts: Sequence[AlertEvent]) -> Text:
    """The alert banner: every active alert on one line."""
    text = Text(no_wrap=True, overflow="ellipsis", end="")
    text.append(f" ALERT ({len(alerts)}) ", style="bold reverse")
    for index, alert in enumerate(alerts):
        text.append(" · " if index else " ")
        text.append(alert.text())
    return text


def health_text(trouble: EngineTrouble, now: float) -> Text:
    """The engine's trouble banner: since when (and for how long), what is lost and what
    it holds in memory, then each of the engine's alerts on a line of its own."""
    text = Text(no_wrap=True, overflow="ellipsis", end="")
    text.append(" ENGINE ", style="bold reverse")
    since = time.strftime("%H:%M:%S", time.localtime(trouble.since_wall))
    text.append(f" since {since} (for {format_duration(max(0.0, now - trouble.since_wall))})")
    lost = trouble.lost()
    if lost:  # first: it is gone for good, and a narrow screen cuts the end off
        text.append(" · lost: ")
        text.append(lost, style="bold")
    text.append(f" · held in memory: {trouble.held() or 'nothing'}")
    for alert in trouble.health.alerts:
        text.append("\n ")
        text.append(alert)
    return text


class QueueTile(Widget):
    """One queue's figures; its border shows the worst of its levels. Its size is fixed
    by the style sheet, so a new figure repaints it without laying the screen out again."""

    def __init__(self, queue: str) -> None:
        super().__init__(classes="tile")
        self.queue = queue
        self._text = Text("No figures yet.", style="dim")
        self._classes_for: tuple[Level, bool] | None = None

    def render(self) -> Text:
        return self._text

    def on_mount(self) -> None:
        self.border_title = Text(self.queue)

    def show(self, view: QueueView, settings: WallboardSettings, now: float) -> None:
        self._text = tile_text(view, settings, now)
        self.refresh()
        classes = (view.worst, view.stale(now))
        if classes != self._classes_for:  # restyling is dear: only on a change
            self._classes_for = classes
            for level in Level:
                self.set_class(classes[0] is level, f"-{level.value}")
            self.set_class(classes[1], "-stale")

    @property
    def stale(self) -> bool:
        return self._classes_for is not None and self._classes_for[1]
