"""The agent desktop: log in, go ready, take an offered call with its screen-pop and its
call script, hang up, wrap up with a disposition.

The app talks to the engine only through the bus and the wire protocol
(:mod:`cti.protocol`): it publishes commands on ``topics.agent_commands(id)`` and
follows ``topics.agent_events(id)``, ``topics.agent_state(id)`` and
``topics.ALL_QUEUE_STATUS``. Events and state arrive on separate topics and may be
seen in either order, so the call in hand (offer, talking, wrap-up) is reconciled from
both; a state that names a call the desk has already left behind is not allowed to
bring that call back.

The call's script (sent whole with the offer, so the call keeps that version) runs in
the :class:`~agent_console.script_panel.ScriptPanel` beside the card: shown at the offer,
answered during the call and in wrap-up. The number keys choose script answers while
the script has the focus (during the call) and dispositions while the disposition list
has it (in wrap-up); the footer says which. Wrap-up cannot finish before the script has
reached its end; the answers, the path and the script's actions go with the wrap-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any, ClassVar, Literal

from pydantic import ValidationError
from rich.text import Text
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, Input, Label, Static

from agent_console.call_controls import Choice, Prompt
from agent_console.customer_actions import CustomerActions
from agent_console.script_panel import ScriptPanel
from agent_console.widgets import (
    CustomerCard,
    DispositionPicker,
    QueueStatusLine,
    StateBar,
    caller_number,
    format_duration,
)
from cti import topics
from cti.bus.memory import Bus, Subscription
from cti.clock import wall_time
from cti.models import AgentState, CallerKind, ScriptAction
from cti.protocol import (
    MAX_SCRIPT_ACTIONS,
    MAX_SCRIPT_ANSWERS,
    MAX_SCRIPT_STEPS,
    AcceptOffer,
    AgentStateChanged,
    AnyCommand,
    CallConnected,
    CallControl,
    CallEnded,
    CallOffered,
    CancelConsult,
    CommandResult,
    CompleteConsult,
    CompleteWrapUp,
    ConferenceCall,
    ConsultCall,
    CurrentCall,
    DialNumber,
    ExtendWrapUp,
    HangUp,
    HoldCall,
    LineFeatures,
    Login,
    Logout,
    Message,
    MuteCall,
    OfferWithdrawn,
    QueueStatus,
    RejectOffer,
    RequestSnapshot,
    ResumeCall,
    SaveScriptRun,
    ScheduleCallback,
    ScreenPop,
    SetNotReady,
    SetReady,
    TransferCall,
)
from scripts_engine import runner
from scripts_engine.catalog import text_sha256
from scripts_engine.expr import Scalar
from scripts_engine.model import Script
from scripts_engine.runner import RunState
from scripts_engine.text import has_placeholder
from scripts_engine.validate import parse_script

View = Literal["login", "idle", "offer", "talking", "wrap_up"]
"""What the desk shows: the login form, no call, an offer, a conversation, wrap-up."""

Phase = Literal["offer", "talking", "wrap_up"]

#: How long a command may take to get onto the bus before the agent is told.
PUBLISH_TIMEOUT_S = 5.0
#: How long a command may go unanswered before its key is enabled again.
ANSWER_TIMEOUT_S = 5.0
#: Dispositions offered when the engine sent none with the offer.
DEFAULT_DISPOSITIONS: tuple[str, ...] = ("done",)
#: Reason sent with "not ready" from the `n` key when the engine lists none.
NOT_READY_REASON = "break"
#: Seconds of wrap-up the `e` key asks for.
EXTEND_WRAP_UP_S = 30.0
#: How many finished call ids are remembered to ignore stale state about them.
_LEFT_CALLS_KEPT = 64
#: How many parsed scripts (by SHA-256 of their text) are kept for the next offers.
_SCRIPTS_KEPT = 16
#: Longest text answer sent with a wrap-up (the wire protocol's bound).
_ANSWER_CHARS = 4000

_BUSY = frozenset({AgentState.RESERVED, AgentState.TALKING, AgentState.WRAP_UP})
_GATED = frozenset({"ready", "not_ready", "answer", "reject", "hang_up", "disposition"})
#: The view each gated action belongs to: elsewhere it is hidden from the footer (the
#: command palette still lists it, as "not now").
_VIEW_OF: dict[str, tuple[View, ...]] = {
    "ready": ("idle",),
    "not_ready": ("idle", "wrap_up"),
    "answer": ("offer",),
    "reject": ("offer",),
    "hang_up": ("talking",),
    "disposition": ("wrap_up",),
    "extend_wrap_up": ("wrap_up",),
    "dial": ("idle",),
    "hold": ("talking",),
    "mute": ("talking",),
    "transfer": ("talking",),
    "consult": ("talking",),
    "hand_over": ("talking",),
    "back_to_caller": ("talking",),
    "conference": ("talking",),
}
_CONSULT_ONLY = frozenset({"hand_over", "back_to_caller", "conference"})
#: What the command palette lists: action, its key, title, what it does.
_PALETTE: tuple[tuple[str, str, str, str], ...] = (
    ("ready", "r", "Ready", "Take calls"),
    ("not_ready", "n", "Not ready", "Choose a reason; during a call: not ready after it"),
    ("answer", "a", "Answer", "Take the call offered"),
    ("reject", "x", "Reject", "Let the call offered go to another agent"),
    ("hang_up", "h", "Hang up", "End the call"),
    ("hold", "o", "Hold / resume", "Put the caller on hold, or take them off it"),
    ("mute", "m", "Mute / unmute", "Keep your voice from the caller"),
    ("transfer", "w", "Transfer", "Blind transfer to a queue or an agent"),
    ("consult", "k", "Consult", "Hold the caller and call an agent first"),
    ("hand_over", "y", "Hand over", "Give the caller to the agent consulted"),
    ("back_to_caller", "g", "Go back to the caller", "End the consultation"),
    ("conference", "j", "Join all (conference)", "Caller and both agents talk together"),
    ("dial", "d", "Dial", "Call a number (the last caller's, or one you type)"),
    ("extend_wrap_up", "e", "More wrap-up time", f"{EXTEND_WRAP_UP_S:g} s more"),
    ("focus_script", "s", "Script", "Put the focus on the call's script"),
)
_SWITCHER_CHILD: dict[View, str] = {
    "login": "login",
    "idle": "idle",
    "offer": "call",
    "talking": "call",
    "wrap_up": "wrap-up",
}


def _no_spaces(value: str) -> str | None:
    """A queue or agent id has no spaces (the prompt's check)."""
    return f"{value!r} has a space: a queue name or an agent id has none." if " " in value else None


def agent_id_problem(agent_id: str) -> str | None:
    """Why ``agent_id`` cannot be used in a topic, or ``None`` if it can."""
    if not agent_id:
        return "Agent id is empty: type the id you were given (letters and digits)."
    bad = sorted({ch for ch in agent_id if ch in "/+#" or ch.isspace()})
    if bad:
        shown = " ".join(repr(ch) for ch in bad)
        return f"Agent id {agent_id!r} contains {shown}: use letters, digits, '-' or '_'."
    return None


class AgentDesktop(CustomerActions, App[None]):
    """The agent's desk. Read-only attributes for tests and embedding: :attr:`agent_id`,
    :attr:`agent_state`, :attr:`current_call_id`, :attr:`offer`, :attr:`view`,
    :attr:`queue_statuses`."""

    CSS_PATH = "desktop.tcss"
    TITLE = "CTI Desk"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "ready", "Ready"),
        Binding("n", "not_ready", "Not ready"),
        Binding("a", "answer", "Answer"),
        Binding("x", "reject", "Reject"),
        Binding("h", "hang_up", "Hang up"),
        Binding("o", "hold", "Hold"),
        Binding("m", "mute", "Mute"),
        Binding("w", "transfer", "Transfer"),
        Binding("k", "consult", "Consult"),
        Binding("y", "hand_over", "Hand over"),
        Binding("g", "back_to_caller", "Cancel"),
        Binding("j", "conference", "Join"),
        Binding("d", "dial", "Dial"),
        Binding("s", "focus_script", "Script"),
        Binding("1", "disposition(1)", "Disposition", key_display="1-9"),
        *(
            Binding(str(number), f"disposition({number})", f"Disposition {number}", show=False)
            for number in range(2, 10)
        ),
        Binding("e", "extend_wrap_up", "More time"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        bus: Bus,
        agent_id: str = "",
        *,
        queues: Sequence[str] = (),
        clock: Callable[[], float] = wall_time,
    ) -> None:
        """``queues`` limits the status line to those queues (all when empty);
        ``clock`` gives wall-clock epoch seconds for the timers (fix it for snapshots)."""
        super().__init__()
        self.bus = bus
        self.queues = tuple(queues)
        self._clock = clock
        self._agent_id = agent_id
        self._state: AgentStateChanged | None = None
        self._phase: Phase | None = None
        self._call_id: str | None = None
        self._offer: CallOffered | None = None
        self._left_calls: dict[str, None] = {}
        self._notice = ""
        self._picker_call: str | None = None
        self._pending: str | None = None
        self._pending_since = 0.0
        self._shown_view: View | None = None
        self._scripts: OrderedDict[str, tuple[Script | None, list[str]]] = OrderedDict()
        self._script_key: tuple[str, str] | None = None
        """(call id, script SHA-256) of the run in the script panel."""
        self._effects_seen = 0
        self._last_pop: ScreenPop | None = None
        """The card of the last call (dial from the card)."""
        self._control: CallControl | None = None
        """Hold, mute and consultation of the call in hand, as the engine last said."""
        self._local_mute = False
        """Muted on this desk only (the line cannot mute)."""
        self._after_call = False
        """Not ready after this call was asked."""
        self._run_sent: dict[str, Any] | None = None
        """The script run last saved to the engine (SaveScriptRun), to send only changes."""
        self._card_asked: str | None = None
        """The call whose card the desk asked the engine for (see _ask_for_the_card)."""

    # --- read-only state ---------------------------------------------------------

    @property
    def agent_id(self) -> str:
        """The agent logged in (or typed in the login form before logging in)."""
        return self._agent_id

    @property
    def agent_state(self) -> AgentState | None:
        """The agent's state as the engine last published it; ``None`` before any."""
        return self._state.state if self._state is not None else None

    @property
    def current_call_id(self) -> str | None:
        """The call offered, in conversation or in wrap-up; ``None`` when idle."""
        return self._call_id

    @property
    def offer(self) -> CallOffered | None:
        """The offer of the call in hand (kept through talking and wrap-up)."""
        return self._offer

    @property
    def view(self) -> View:
        if self.agent_state is None or self.agent_state is AgentState.LOGGED_OUT:
            return "login"
        return self._phase or "idle"

    @property
    def queue_statuses(self) -> dict[str, QueueStatus]:
        return dict(self.query_one(QueueStatusLine).statuses)

    @property
    def script_run(self) -> RunState | None:
        """The run of the call's script, or ``None`` when the call has none."""
        return self.query_one(ScriptPanel).state

    # --- layout ------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield StateBar(id="state-bar")
        yield QueueStatusLine(self.queues, id="queue-status")
        with Horizontal(id="desk"):
            with ContentSwitcher(initial="login", id="views"):
                with Vertical(id="login"), Vertical(id="login-box"):
                    yield Label("Agent id", id="login-label")
                    yield Input(self._agent_id, placeholder="e.g. 1001", id="agent-id")
                    yield Static(Text("Enter to log in."), id="login-status")
                yield Static(id="idle")
                with Vertical(id="call"):
                    yield Static(id="call-banner")
                    yield CustomerCard(id="pop-card")
                with Vertical(id="wrap-up"):
                    yield Static(id="wrap-up-banner")
                    yield DispositionPicker(id="disposition-picker")
                    yield Static(id="wrap-up-hint")
            yield ScriptPanel(id="script")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#login-box").border_title = "CTI Desk · agent login"
        self.query_one(StateBar).agent_id = self._agent_id
        self.query_one("#agent-id", Input).focus()
        self._follow_queues()
        self.set_interval(1.0, self.refresh_clock, name="desk-clock")
        self.refresh_clock()

    # --- login -------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "agent-id":
            return
        event.stop()
        agent_id = event.value.strip()
        problem = agent_id_problem(agent_id)
        if problem is not None:
            self._login_status(problem)
            self.notify(problem, severity="error", markup=False)
            return
        self.log_in(agent_id)

    def log_in(self, agent_id: str) -> None:
        """Follow ``agent_id``'s events and state, then publish ``Login``."""
        if agent_id != self._agent_id:
            self._state = None
            self._end_call()
        self._agent_id = agent_id
        self.query_one(StateBar).agent_id = agent_id
        self._login_status(f"Logging in as {agent_id}…")
        self._follow_agent(agent_id)

    def _login_status(self, text: str) -> None:
        self.query_one("#login-status", Static).update(Text(text))

    # --- bus workers -------------------------------------------------------------

    @work(exclusive=True, group="agent", name="agent-follow")
    async def _follow_agent(self, agent_id: str) -> None:
        async with (
            self.bus.subscribe(topics.agent_events(agent_id)) as events,
            self.bus.subscribe(topics.agent_state(agent_id)) as states,
        ):
            # Subscribed before logging in, so no answer to the login is missed.
            await self._send(Login(agent_id=agent_id))
            async with asyncio.TaskGroup() as group:
                group.create_task(self._pump(events), name=f"desk-events-{agent_id}")
                group.create_task(self._pump(states), name=f"desk-state-{agent_id}")

    async def _pump(self, subscription: Subscription) -> None:
        async for _topic, message in subscription:
            self.apply(message)

    @work(group="queues", name="queue-follow")
    async def _follow_queues(self) -> None:
        line = self.query_one(QueueStatusLine)
        async with self.bus.subscribe(topics.ALL_QUEUE_STATUS) as statuses:
            async for _topic, message in statuses:
                if isinstance(message, QueueStatus):
                    line.update_status(message)

    async def _send(
        self,
        command: AnyCommand,
        *,
        awaits_answer: bool = False,
    ) -> None:
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                await self.bus.publish(topics.agent_commands(command.agent_id), command)
        except TimeoutError:
            self.notify(
                f"Could not send {command.type} within {PUBLISH_TIMEOUT_S:g} s: "
                "is the engine's bus reachable?",
                severity="error",
                markup=False,
            )
            return
        if awaits_answer:
            self._pending = command.command_id
            self._pending_since = self._clock()
            self.refresh_bindings()

    # --- applying what the engine says -------------------------------------------

    def apply(self, message: Message) -> None:
        """Bring the desk up to date with one message from the engine."""
        if isinstance(message, AgentStateChanged):
            self._on_state(message)
        elif isinstance(message, CallOffered):
            self._on_offered(message)
        elif isinstance(message, CurrentCall):
            self._on_current(message)
        elif isinstance(message, CallControl):
            self._on_control(message)
        elif isinstance(message, OfferWithdrawn):
            self._on_withdrawn(message)
        elif isinstance(message, CallConnected):
            self._on_connected(message)
        elif isinstance(message, CallEnded):
            self._on_ended(message)
        elif isinstance(message, CommandResult):
            self._on_result(message)
        elif isinstance(message, QueueStatus):
            self.query_one(QueueStatusLine).update_status(message)
            return
        else:
            return
        self._refresh()

    def _mine(self, agent_id: str) -> bool:
        return agent_id == self._agent_id

    def _on_state(self, message: AgentStateChanged) -> None:
        if not self._mine(message.agent_id):
            return
        previous = self.agent_state
        self._state = message
        self._pending = None
        state, call_id = message.state, message.call_id
        if state is AgentState.LOGGED_OUT:
            self._end_call()
            if previous is not None and previous is not AgentState.LOGGED_OUT:
                self._login_status("Logged out. Enter to log in again.")
        elif state in (AgentState.READY, AgentState.NOT_READY):
            # An offer is only cleared by its withdrawal or expiry: its state may
            # arrive after the offer itself.
            if self._phase in ("talking", "wrap_up") or self._offer_expired():
                self._end_call()
        elif call_id is not None and call_id in self._left_calls:
            pass  # stale news about a call already left behind
        elif state is AgentState.RESERVED:
            if self._phase is None:
                self._start_call(call_id, "offer")
        elif state is AgentState.TALKING:
            if self._phase in (None, "offer"):
                self._start_call(call_id or self._call_id, "talking")
            self._ask_for_the_card(call_id)
        elif state is AgentState.WRAP_UP:
            self._start_call(call_id or self._call_id, "wrap_up")
            self._ask_for_the_card(call_id)

    def _on_offered(self, message: CallOffered) -> None:
        if not self._mine(message.agent_id):
            return
        self._left_calls.pop(message.pop.call_id, None)
        self._start_call(message.pop.call_id, "offer")
        self._offer = message
        self._notice = ""
        self._load_script(message)

    def _ask_for_the_card(self, call_id: str | None) -> None:
        """On a call with no card (the desk restarted mid-call): ask the engine for a
        snapshot, which brings the card back as :class:`CurrentCall`. Once per call."""
        if call_id is None or call_id == self._card_asked:
            return
        if self._offer is not None and self._offer.pop.call_id == call_id:
            return
        self._card_asked = call_id
        self.run_worker(self._send(RequestSnapshot(agent_id=self._agent_id)), name="desk-snapshot")

    def _on_current(self, message: CurrentCall) -> None:
        """The call the agent is on, sent again after a restart or a reconnection: the
        card and the script come back, in the view the retained state says (talking
        unless the state says wrap-up of this very call)."""
        if not self._mine(message.agent_id) or message.call_id in self._left_calls:
            return
        state = self._state
        in_wrap_up = (
            state is not None
            and state.state is AgentState.WRAP_UP
            and state.call_id in (None, message.call_id)
        ) or (self._phase == "wrap_up" and self._call_id == message.call_id)
        self._start_call(message.call_id, "wrap_up" if in_wrap_up else "talking")
        if self._offer is None or self._offer.pop.call_id != message.call_id:
            self._offer = CallOffered(
                agent_id=message.agent_id,
                pop=message.pop,
                timeout_s=0.0,
                deadline_wall=0.0,
                dispositions=message.dispositions,
                agent_name=message.agent_name,
            )
            self._picker_call = None  # the dispositions came with it: offer them
        self._load_script(self._offer)

    def _on_control(self, message: CallControl) -> None:
        if not self._mine(message.agent_id) or message.call_id != self._call_id:
            return
        self._control = message
        if message.note:
            self.notify(message.note, title="Call", markup=False)

    def _on_withdrawn(self, message: OfferWithdrawn) -> None:
        if not self._mine(message.agent_id):
            return
        if message.call_id == self._call_id and self._phase == "offer":
            self._end_call()
            self._notice = f"The offered call was withdrawn: {message.reason}."
            self.notify(self._notice, severity="warning", markup=False)
        else:
            self._remember_left(message.call_id)

    def _on_connected(self, message: CallConnected) -> None:
        if self._mine(message.agent_id) and message.call_id not in self._left_calls:
            self._start_call(message.call_id, "talking")

    def _on_ended(self, message: CallEnded) -> None:
        if self._mine(message.agent_id) and message.call_id not in self._left_calls:
            self._start_call(message.call_id, "wrap_up")
            if message.by == "caller":
                self.notify("The caller hung up.", markup=False)
            elif message.by == "transfer":
                self.notify("The call is handed on. Wrap up your part.", markup=False)

    def _on_result(self, message: CommandResult) -> None:
        if message.command_id == self._pending:
            self._pending = None
        if not message.ok:
            error = message.error or "the engine refused the command"
            self.notify(error, title="Refused", severity="error", markup=False)
            if self.view == "login":
                self._login_status(f"Login refused: {error}")

    def _start_call(self, call_id: str | None, phase: Phase) -> None:
        if self._call_id is not None and call_id is not None and call_id != self._call_id:
            self._end_call()
        self._call_id = call_id if call_id is not None else self._call_id
        self._phase = phase

    def _end_call(self) -> None:
        if self._call_id is not None:
            self._remember_left(self._call_id)
        if self._offer is not None:
            self._last_pop = self._offer.pop
        self._call_id = None
        self._phase = None
        self._offer = None
        self._picker_call = None
        self._script_key = None
        self._control = None
        self._local_mute = False
        self._after_call = False
        self._run_sent = None
        self.query_one(ScriptPanel).clear()

    def _remember_left(self, call_id: str) -> None:
        self._left_calls[call_id] = None
        while len(self._left_calls) > _LEFT_CALLS_KEPT:
            del self._left_calls[next(iter(self._left_calls))]

    def _offer_expired(self) -> bool:
        return (
            self._phase == "offer"
            and self._offer is not None
            and self._clock() > self._offer.deadline_wall
        )

    # --- the call's script -------------------------------------------------------

    def _load_script(self, offer: CallOffered) -> None:
        """Start the offered call's script in the panel (shown, not yet answerable).

        The same offer sent again (after a reconnect) keeps the run where it is.
        """
        panel = self.query_one(ScriptPanel)
        sent = offer.pop.script
        if sent is None:
            self._script_key = None
            panel.clear()
            return
        key = (offer.pop.call_id, sent.sha256)
        if key == self._script_key:
            return
        self._script_key = key
        self._effects_seen = 0
        title = f"{sent.name} {sent.version}"
        script, problems = self._parse_script(sent.text, sent.sha256, sent.file or sent.name)
        if script is None:
            panel.show_problems(title, problems)
            self.notify(
                f"The script {title!r} cannot be used: {problems[0] if problems else '?'}",
                severity="warning",
                markup=False,
            )
            return
        panel.start(script, self._script_context(offer), title=title)

    def _parse_script(self, text: str, sha256: str, file: str) -> tuple[Script | None, list[str]]:
        """The script sent with an offer, checked again here (parsed once per version)."""
        cached = self._scripts.get(sha256)
        if cached is not None:
            self._scripts.move_to_end(sha256)
            return cached
        if text_sha256(text) != sha256:
            result: tuple[Script | None, list[str]] = (
                None,
                ["its text does not match the SHA-256 it came with (damaged on the way?)"],
            )
        else:
            script, problems = parse_script(text, file)
            result = (script if not problems else None, [str(p) for p in problems])
        self._scripts[sha256] = result
        while len(self._scripts) > _SCRIPTS_KEPT:
            self._scripts.popitem(last=False)
        return result

    def _script_context(self, offer: CallOffered) -> dict[str, Scalar]:
        """The variables a script reads, from the offer (what the engine knows)."""
        pop = offer.pop
        customer = pop.customer if pop.caller_kind is CallerKind.KNOWN else None
        context = runner.context_for(
            customer,
            agent_id=self._agent_id,
            agent_name=offer.agent_name,
            call_id=pop.call_id,
            queue=pop.queue,
        )
        context["call.ani"] = pop.ani
        context["call.caller_kind"] = pop.caller_kind.value
        context["call.wait_s"] = round(pop.waited_s)
        return {k: v for k, v in context.items() if v != ""}

    def on_script_panel_moved(self, event: ScriptPanel.Moved) -> None:
        event.stop()
        state = event.state
        effects = state.effects
        for effect in effects[self._effects_seen :]:
            if effect.action == "transfer_queue":
                self._script_transfer(str(effect.args.get("queue") or ""))
        self._effects_seen = len(effects)
        self._save_run()
        if self.view == "wrap_up":
            self._preselect_disposition()
            if state.finished and self.query_one(ScriptPanel).has_focus_within:
                self.query_one(DispositionPicker).focus_list()
            self._draw_wrap_up_hint()
        self.refresh_bindings()

    def _script_transfer(self, queue: str) -> None:
        """The script asked to transfer the call to ``queue``: done, if it can be now."""
        if self.view != "talking" or self._call_id is None or not queue or not self._owner():
            self.notify(
                f"The script asks to transfer the call to queue {queue!r}; that is only "
                "possible while you talk with the caller (press w to transfer).",
                title="Transfer",
                severity="warning",
                markup=False,
            )
            return
        self._save_run()
        self.run_worker(self._transfer(queue=queue), name="desk-script-transfer")

    def _save_run(self) -> None:
        """Save the script run so far to the engine (only when it changed), so the answers
        are kept even if the wrap-up timer ends the call before the agent finishes."""
        if self._call_id is None or self.view not in ("talking", "wrap_up"):
            return
        fields = self._script_fields()
        if not fields or fields == self._run_sent:
            return
        try:
            command = SaveScriptRun(agent_id=self._agent_id, call_id=self._call_id, **fields)
        except ValidationError:
            return  # too big for the wire: the wrap-up says so when it is sent
        self._run_sent = fields
        self.run_worker(self._send(command), name="desk-save-run", group="save-run")

    def _preselect_disposition(self) -> None:
        """Highlight the disposition the script set last, if it set one."""
        state = self.script_run
        if state is None:
            return
        chosen = [
            str(e.args.get("disposition", ""))
            for e in state.effects
            if e.action == "set_disposition"
        ]
        if chosen:
            self.query_one(DispositionPicker).preselect(chosen[-1])

    def _script_fields(self) -> dict[str, Any]:
        """What the wrap-up carries of the call's script: answers, path, actions."""
        state = self.script_run
        sent = self._offer.pop.script if self._offer is not None else None
        if state is None or sent is None:
            return {}
        answers = {
            name: value[:_ANSWER_CHARS] if isinstance(value, str) else value
            for name, value in list(state.answers.items())[:MAX_SCRIPT_ANSWERS]
        }
        actions = tuple(
            ScriptAction(
                node=effect.node,
                action=effect.action,
                args={k: v for k, v in effect.args.items() if v is not None},
            )
            for effect in state.effects[:MAX_SCRIPT_ACTIONS]
        )
        return {
            "script": sent.name,
            "script_version": sent.version,
            "script_sha256": sent.sha256,
            "answers": answers,
            "script_path": tuple(step.node for step in state.path)[-MAX_SCRIPT_STEPS:],
            "script_actions": actions,
        }

    def _callbacks_asked(self) -> list[ScheduleCallback]:
        """The callbacks the script scheduled, as commands to the engine."""
        state = self.script_run
        if state is None or self._offer is None:
            return []
        pop = self._offer.pop
        out = []
        for effect in state.effects:
            if effect.action != "schedule_callback":
                continue
            phone = effect.args.get("phone")
            number = str(phone) if phone and not has_placeholder(str(phone)) else ""
            number = number or pop.e164 or pop.ani
            try:
                minutes = float(effect.args.get("after_minutes") or 0)
            except (TypeError, ValueError):
                minutes = 0.0
            at = datetime.fromtimestamp(self._clock() + max(0.0, minutes) * 60, UTC)
            out.append(
                ScheduleCallback(
                    agent_id=self._agent_id,
                    number=number,
                    local_time=at.strftime("%Y-%m-%dT%H:%M"),
                    time_zone="UTC",
                    queue=pop.queue,
                )
            )
        return out

    def action_focus_script(self) -> None:
        self.query_one(ScriptPanel).focus_script()

    # --- drawing -----------------------------------------------------------------

    def _refresh(self) -> None:
        with contextlib.suppress(NoMatches):  # a message as the app shuts down: no screen
            self._draw()

    def _draw(self) -> None:
        view = self.view
        self.query_one(StateBar).state = self._state
        pop = self._offer.pop if self._offer is not None else None
        self.query_one(CustomerCard).pop = pop if pop and pop.call_id == self._call_id else None
        if view == "wrap_up" and self._picker_call != self._call_id:
            self._picker_call = self._call_id
            dispositions = self._offer.dispositions if self._offer else ()
            self.query_one(DispositionPicker).set_dispositions(dispositions or DEFAULT_DISPOSITIONS)
            self._preselect_disposition()
        panel = self.query_one(ScriptPanel)
        panel.display = view in ("offer", "talking", "wrap_up") and (
            panel.has_script or bool(panel.problems)
        )
        panel.active = view in ("talking", "wrap_up")
        switcher = self.query_one(ContentSwitcher)
        switcher.current = _SWITCHER_CHILD[view]
        if view != self._shown_view:
            self._shown_view = view
            self._focus_for(view)
        if view == "wrap_up":
            self._draw_wrap_up_hint()
        self.refresh_clock()
        self.refresh_bindings()

    def _focus_for(self, view: View) -> None:
        panel = self.query_one(ScriptPanel)
        if view == "login":
            self.query_one("#agent-id", Input).focus()
        elif view == "wrap_up":
            if panel.display and panel.unfinished_reason() is not None:
                panel.focus_script()  # finish the script first
            else:
                self.query_one(DispositionPicker).focus_list()
        elif view == "talking" and panel.display and panel.has_script:
            panel.focus_script()
        else:
            self.screen.set_focus(None)

    def _draw_wrap_up_hint(self) -> None:
        hint = Text()
        reason = self.query_one(ScriptPanel).unfinished_reason()
        if reason is not None:
            hint.append("Finish the script first (s): ", style="bold")
            hint.append(reason.removeprefix("the script is not finished: "))
        else:
            hint.append("1-9 or ↑↓ Enter: choose · Tab: type a note first")
        self.query_one("#wrap-up-hint", Static).update(hint)

    def refresh_clock(self) -> None:
        """Redraw what counts with the clock (time in state, countdowns); runs every second."""
        with contextlib.suppress(NoMatches):  # a tick as the app shuts down: no screen
            self._tick(self._clock())

    def _tick(self, now: float) -> None:
        self.query_one(StateBar).now = now
        if self._pending is not None and now - self._pending_since > ANSWER_TIMEOUT_S:
            self._pending = None
            self.refresh_bindings()
        view = self.view
        if view == "idle":
            self.query_one("#idle", Static).update(self._idle_text())
        elif view in ("offer", "talking"):
            self.query_one("#call-banner", Static).update(self._call_banner(now))
        elif view == "wrap_up":
            self.query_one("#wrap-up-banner", Static).update(self._wrap_up_banner(now))

    def _idle_text(self) -> Text:
        text = Text()
        if self.agent_state is AgentState.READY:
            text.append("Ready. Waiting for a call.", style="bold")
        else:
            reason = self._state.reason if self._state is not None else ""
            text.append(f"Not ready{f' ({reason})' if reason else ''}.", style="bold")
            text.append(" Press r when you are ready.")
        if self._notice:
            text.append("\n\n")
            text.append(self._notice)
        return text

    def _call_banner(self, now: float) -> Text:
        text = Text()  # wraps: hold, mute and a consultation must show at 80 columns
        if self.view == "talking":
            text.append("Talking", style="bold")
            if self._state is not None and self._state.state is AgentState.TALKING:
                text.append(f" · {format_duration(now - self._state.since_wall)}")
            control = self._control
            if control is not None and control.held:
                text.append(" · ON HOLD", style="bold reverse")
            if control is not None and control.muted:
                text.append(" · MUTED", style="bold reverse")
            elif self._local_mute:
                text.append(" · MUTED here only (the line cannot mute)", style="bold reverse")
            if control is not None and control.consult_state:
                text.append(f" · consulting {control.consult_agent} ({control.consult_state})")
            elif self._offer is not None and self._offer.consult_from and not self._owner():
                text.append(f" · consulted by {self._offer.consult_from}")
            if self._after_call:
                text.append(" · not ready after this call")
            return text
        if self._offer is not None and self._offer.consult_from:
            text.append(f"{self._offer.consult_from} consults you", style="bold")
        else:
            text.append("Incoming call", style="bold")
        if self._offer is None:
            text.append(" · details coming…")
            return text
        left = self._offer.deadline_wall - now
        if left > 0:
            text.append(f" · answer within {math.ceil(left)} s")
        else:
            text.append(" · offer expired")
        text.append("  ·  a: answer  x: reject")
        return text

    def _wrap_up_banner(self, now: float) -> Text:
        text = Text()  # wraps: the timer must show at 80 columns
        text.append("Wrap-up", style="bold")
        if self._offer is not None:
            pop = self._offer.pop
            text.append(" · ")
            text.append(pop.customer.name if pop.customer else caller_number(pop))
        deadline = self._state.wrap_up_deadline_wall if self._state is not None else None
        if deadline is not None and self.agent_state is AgentState.WRAP_UP:
            then = "not ready" if self._after_call else "ready"
            text.append(f" · auto-{then} in {format_duration(deadline - now)}")
        return text

    # --- actions -----------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Actions that do not apply now are shown disabled (``None``), not hidden."""
        if action == "focus_script":
            panel = self.query_one(ScriptPanel)
            usable = (
                self.view in ("talking", "wrap_up")
                and panel.has_script
                and not panel.has_focus_within
            )
            return usable
        views = _VIEW_OF.get(action)
        if views is None:
            return super().check_action(action, parameters)
        if self.view == "login":
            return None if action == "ready" else False  # log in first
        if self.view not in views:
            return False  # another view's action: not in the footer now
        if action in _CONSULT_ONLY and not self._consulting():
            return False
        if action in ("transfer", "consult", "hold") and self._consulting():
            return False  # the caller is held for the consultation
        return True if self._applies(action, parameters) else None

    def _line(self) -> LineFeatures:
        """What the line of the call in hand can do (all, when the engine did not say)."""
        features = self._offer.pop.line if self._offer is not None else None
        return features or LineFeatures(hold=True, mute=True, conference=True, dial=True)

    def _consulting(self) -> bool:
        return self._control is not None and bool(self._control.consult_state)

    def _owner(self) -> bool:
        """Whether this agent has the caller (not only consulted about the call)."""
        if self._offer is None or not self._offer.consult_from:
            return True
        return self._control is not None and not self._control.consult_state

    def _applies(self, action: str, parameters: tuple[object, ...]) -> bool:
        if self._pending is not None:
            return False
        state, view = self.agent_state, self.view
        if action == "ready":
            return state is AgentState.NOT_READY
        if action == "not_ready":
            if view in ("talking", "wrap_up"):
                return not self._after_call
            return state is AgentState.READY and view == "idle"
        if action == "dial":
            return view == "idle" and state in (AgentState.READY, AgentState.NOT_READY)
        if action == "extend_wrap_up":
            return view == "wrap_up" and state is AgentState.WRAP_UP
        if action in ("hold", "mute", "transfer", "consult", "hand_over", "back_to_caller"):
            usable = view == "talking" and self._call_id is not None and self._owner()
            if action == "hold":
                return usable and self._line().hold and not self._consulting()
            if action == "consult":
                return usable and self._line().hold
            return usable
        if action == "conference":
            control = self._control
            return (
                self._line().conference
                and control is not None
                and control.consult_state == "talking"
            )
        if action in ("answer", "reject"):
            return view == "offer" and self._call_id is not None
        if action == "hang_up":
            return view == "talking" and self._call_id is not None
        if action == "disposition":
            if view != "wrap_up":
                return False
            number = parameters[0] if parameters else 0
            offered = len(self.query_one(DispositionPicker).dispositions)
            return isinstance(number, int) and 1 <= number <= offered
        return False

    # --- call control ------------------------------------------------------------

    async def action_hold(self) -> None:
        if self._call_id is None:
            return
        held = self._control is not None and self._control.held
        kind = ResumeCall if held else HoldCall
        await self._send(kind(agent_id=self._agent_id, call_id=self._call_id), awaits_answer=True)

    async def action_mute(self) -> None:
        if self._call_id is None:
            return
        if not self._line().mute:
            self._local_mute = not self._local_mute
            if self._local_mute:
                self.notify(
                    "Muted on this desk only: the line cannot mute, so the caller may still "
                    "hear you. Use your headset's mute too.",
                    title="Mute",
                    severity="warning",
                    markup=False,
                )
            self._refresh()
            return
        muted = self._control is not None and self._control.muted
        await self._send(
            MuteCall(agent_id=self._agent_id, call_id=self._call_id, muted=not muted),
            awaits_answer=True,
        )

    def action_transfer(self) -> None:
        queues = sorted(self.query_one(QueueStatusLine).statuses)
        shown = ", ".join(queues[:6]) or "general"
        self._cx_push(
            Prompt(
                "Transfer to (blind)",
                f"A queue ({shown}) or an agent id (e.g. 1002). Enter: transfer · Esc: cancel",
                check=_no_spaces,
            ),
            self._on_transfer_target,
        )

    def _on_transfer_target(self, target: str | None) -> None:
        if not target:
            return
        queues = set(self.query_one(QueueStatusLine).statuses)
        if self._offer is not None:
            queues.add(self._offer.pop.queue)
        if target in queues:
            self.run_worker(self._transfer(queue=target), name="desk-transfer")
        else:
            self.run_worker(self._transfer(to_agent=target), name="desk-transfer")

    async def _transfer(self, *, queue: str = "", to_agent: str = "") -> None:
        if self._call_id is None:
            return
        await self._send(
            TransferCall(
                agent_id=self._agent_id, call_id=self._call_id, queue=queue, to_agent=to_agent
            ),
            awaits_answer=True,
        )

    def action_consult(self) -> None:
        self._cx_push(
            Prompt(
                "Consult an agent",
                "The agent id (e.g. 1002): the caller waits on hold. Enter: call · Esc: cancel",
                check=_no_spaces,
            ),
            self._on_consult_target,
        )

    def _on_consult_target(self, agent: str | None) -> None:
        if agent and self._call_id is not None:
            command = ConsultCall(agent_id=self._agent_id, call_id=self._call_id, to_agent=agent)
            self.run_worker(self._send(command, awaits_answer=True), name="desk-consult")

    async def action_hand_over(self) -> None:
        if self._call_id is not None:
            await self._send(
                CompleteConsult(agent_id=self._agent_id, call_id=self._call_id),
                awaits_answer=True,
            )

    async def action_back_to_caller(self) -> None:
        if self._call_id is not None:
            await self._send(
                CancelConsult(agent_id=self._agent_id, call_id=self._call_id), awaits_answer=True
            )

    async def action_conference(self) -> None:
        if self._call_id is not None:
            await self._send(
                ConferenceCall(agent_id=self._agent_id, call_id=self._call_id),
                awaits_answer=True,
            )

    def action_dial(self) -> None:
        self._cx_push(
            Prompt(
                "Dial",
                "The number to call (e.g. +86 138 0000 0001). Enter: dial · Esc: cancel",
                self._last_number,
            ),
            self.dial_number,
        )

    def dial_number(self, number: str | None) -> None:
        """Call ``number`` for this agent (Ready or Not Ready); a customer card may use it."""
        if number:
            command = DialNumber(agent_id=self._agent_id, number=number)
            self.run_worker(self._send(command, awaits_answer=True), name="desk-dial")

    def dial_customer(self, number: str, customer_id: int) -> None:
        """Dial a customer found in the search (its ``d`` key)."""
        self.dial_number(number)

    async def action_extend_wrap_up(self) -> None:
        if self._call_id is not None:
            await self._send(
                ExtendWrapUp(
                    agent_id=self._agent_id, call_id=self._call_id, seconds=EXTEND_WRAP_UP_S
                ),
                awaits_answer=True,
            )

    def get_system_commands(self, screen: Screen[Any]) -> Iterator[SystemCommand]:
        """Every desk action with its key; one that cannot be used now says why."""
        yield from super().get_system_commands(screen)
        for action, key, title, help_text in _PALETTE:
            usable = self.check_action(action, ())
            if usable:
                run = partial(self.call_later, self.run_action, action)
                yield SystemCommand(f"{title} ({key})", help_text, run)
            else:
                why = self._why_not(action)
                yield SystemCommand(
                    f"{title} ({key}) · not now", why, partial(self._tell_why, title, why)
                )

    def _tell_why(self, title: str, why: str) -> None:
        self.notify(why, title=title, severity="warning", markup=False)

    def _why_not(self, action: str) -> str:
        line = self._line()
        if self._pending is not None:
            return "Waiting for the engine's answer to your last action."
        if action == "hold" and not line.hold and self.view == "talking":
            return "This call's line cannot hold calls."
        if action == "consult" and not line.hold and self.view == "talking":
            return "This call's line cannot hold the caller while you consult."
        if action == "conference" and not line.conference and self._consulting():
            return "This call's line cannot hold a conference."
        views = _VIEW_OF.get(action, ())
        where = {
            "idle": "with no call in hand",
            "offer": "while a call is offered",
            "talking": "during a call",
            "wrap_up": "in wrap-up",
        }
        return "Only " + " or ".join(where[v] for v in views if v in where) + "."

    @property
    def _last_number(self) -> str:
        """The number of the card shown last (dial from the card)."""
        pop = self._offer.pop if self._offer is not None else self._last_pop
        if pop is None:
            return ""
        return pop.e164 or (pop.ani if pop.caller_kind is CallerKind.UNKNOWN else "")

    async def action_ready(self) -> None:
        await self._send(SetReady(agent_id=self._agent_id), awaits_answer=True)

    def action_not_ready(self) -> None:
        reasons = self._state.not_ready_reasons if self._state is not None else ()
        if self.view in ("talking", "wrap_up") or not reasons:
            self._not_ready(NOT_READY_REASON if not reasons else reasons[0])
            return
        title = "Not ready: why?"
        self._cx_push(Choice(title, reasons), self._not_ready)

    def _not_ready(self, reason: str | None) -> None:
        if not reason:
            return
        if self.view in ("talking", "wrap_up"):
            self._after_call = True
            self.notify("You go Not ready after this call.", markup=False)
        command = SetNotReady(agent_id=self._agent_id, reason=reason)
        self.run_worker(self._send(command, awaits_answer=True), name="desk-not-ready")

    async def action_answer(self) -> None:
        if self._call_id is not None:
            await self._send(
                AcceptOffer(agent_id=self._agent_id, call_id=self._call_id), awaits_answer=True
            )

    async def action_reject(self) -> None:
        if self._call_id is not None:
            await self._send(
                RejectOffer(agent_id=self._agent_id, call_id=self._call_id), awaits_answer=True
            )

    async def action_hang_up(self) -> None:
        if self._call_id is not None:
            await self._send(
                HangUp(agent_id=self._agent_id, call_id=self._call_id), awaits_answer=True
            )

    def action_disposition(self, number: int) -> None:
        self.query_one(DispositionPicker).choose(number - 1)

    async def on_disposition_picker_chosen(self, event: DispositionPicker.Chosen) -> None:
        event.stop()
        if self.view != "wrap_up" or self._call_id is None or self._pending is not None:
            return
        reason = self.query_one(ScriptPanel).unfinished_reason()
        if reason is not None:
            message = f"Not yet: {reason}. Press s to go to the script."
            self.notify(message, title="Wrap-up", severity="warning", markup=False)
            self._draw_wrap_up_hint()
            return
        try:
            command = CompleteWrapUp(
                agent_id=self._agent_id,
                call_id=self._call_id,
                disposition=event.disposition,
                note=event.note,
                **self._script_fields(),
            )
        except ValidationError as exc:  # never keep the agent in wrap-up over the script
            self.notify(
                f"The script's answers could not be sent: {exc.errors()[0]['msg']}",
                severity="error",
                markup=False,
            )
            command = CompleteWrapUp(
                agent_id=self._agent_id,
                call_id=self._call_id,
                disposition=event.disposition,
                note=event.note,
            )
        for callback in self._callbacks_asked():
            await self._send(callback)
        await self._send(command, awaits_answer=True)

    async def action_quit(self) -> None:
        """Log out first unless a call is in hand, then leave."""
        state = self.agent_state
        if state is not None and state is not AgentState.LOGGED_OUT and state not in _BUSY:
            await self._send(Logout(agent_id=self._agent_id))
        self.exit()
