"""``cti script preview``: run a call script in the terminal without a call.

The same :class:`~agent_console.script_panel.ScriptPanel` the agent desktop uses, beside
a pane with the answers and the actions recorded so far, so a script's author sees
exactly what agents will see. Variables the preview has no value for (the agent's name,
a campaign...) show as their visible placeholders. The app returns the last run when it
quits, for the command to print.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Footer, Static

from agent_console.script_panel import ScriptPanel
from scripts_engine.expr import Scalar
from scripts_engine.model import Script
from scripts_engine.runner import RunState


def run_summary(state: RunState) -> dict[str, Any]:
    """A run as plain data: what ``cti script preview`` prints when it ends."""
    meta = state.script.meta
    return {
        "script": meta.name,
        "version": meta.version,
        "finished": state.finished,
        "path": [step.node for step in state.path],
        "answers": state.answers,
        "actions": [{"node": e.node, "action": e.action, "args": e.args} for e in state.effects],
    }


def answers_text(state: RunState | None) -> Text:
    """The answers and actions of a run, one per line (values as plain text)."""
    out = Text()
    out.append("Answers\n", style="bold")
    if state is None or not state.answers:
        out.append("  none yet\n", style="dim")
    else:
        for name, value in state.answers.items():
            out.append(f"  {name}: ")
            out.append("–" if value is None else json.dumps(value, ensure_ascii=False))
            out.append("\n")
    out.append("\nActions\n", style="bold")
    effects = state.effects if state is not None else []
    if not effects:
        out.append("  none yet\n", style="dim")
    for effect in effects:
        out.append(f"  {effect.action}")
        if effect.args:
            out.append(" " + json.dumps(effect.args, ensure_ascii=False))
        out.append("\n")
    if state is not None and state.finished:
        out.append("\nThe script has ended. ctrl+r: again · q: quit", style="italic")
    return out


class ScriptPreview(App[RunState | None]):
    """Runs ``script`` with ``context`` until the author quits."""

    TITLE = "CTI Desk · script preview"
    CSS_PATH = "script_preview.tcss"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "restart", "Again"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, script: Script, context: Mapping[str, Scalar], *, who: str = "") -> None:
        super().__init__()
        self.script = script
        self.context = dict(context)
        self.who = who

    def compose(self) -> ComposeResult:
        yield Static(id="preview-head")
        with Horizontal(id="preview-body"):
            yield ScriptPanel(id="script")
            yield Static(id="preview-answers")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        meta = self.script.meta
        head = Text(no_wrap=True, overflow="ellipsis")
        head.append(f"{meta.name} {meta.version}", style="bold")
        head.append(f" · {meta.direction.value} · {meta.language}")
        head.append(" · ")
        head.append(self.who or "no customer (--customer ID fills one in)")
        self.query_one("#preview-head", Static).update(head)
        self.query_one("#preview-answers", Static).border_title = "Recorded"
        self.action_restart()

    @property
    def current_run(self) -> RunState | None:
        return self.query_one(ScriptPanel).state

    def action_restart(self) -> None:
        panel = self.query_one(ScriptPanel)
        panel.start(self.script, self.context)
        panel.focus_script()
        self._draw_answers()

    def on_script_panel_moved(self, event: ScriptPanel.Moved) -> None:
        event.stop()
        self._draw_answers()

    def _draw_answers(self) -> None:
        self.query_one("#preview-answers", Static).update(answers_text(self.current_run))

    async def action_quit(self) -> None:
        self.exit(self.current_run)
