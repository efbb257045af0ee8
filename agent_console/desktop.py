"""The agent desktop: log in, go ready, take an offered call with its screen-pop and its
call script, hang up, wrap up with a disposition.

The app talks to the engine only through the bus and the wire protocol
(:mod:`cti.protocol`): it publishes commands on ``topics.agent_commands(id)`` and
follows ``topics.agent_events(id)``, ``topics.agent_state(id)`` and
``topics.ALL_QUEUE_STATUS`` (and, for the transfer and consult dialogs,
``topics.ALL_COLLEAGUE_STATES``: :mod:`agent_console.colleagues`). What the desk knows is the
:class:`~agent_console.desk_model.DeskModel`, built from those messages alone; this
module draws it and turns the agent's keys into commands.

The call's script (sent whole with the offer, so the call keeps that version) runs in
the :class:`~agent_console.script_panel.ScriptPanel` beside the card: shown at the offer,
answered during the call and in wrap-up. The number keys choose script answers while
the script has the focus (during the call) and dispositions while the disposition list
has it (in wrap-up); the footer says which. Wrap-up cannot finish before the script has
reached its end; the answers, the path and the script's actions go with the wrap-up.
The call keys are :class:`~agent_console.desk_calls.CallKeys`', the customer keys
:class:`~agent_console.customer_actions.CustomerActions`', the palette's entries
:mod:`agent_console.desk_palette`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Input, Label, Static

from agent_console.customer_actions import CUSTOMER_ACTIONS, CUSTOMER_BINDINGS, CustomerActions
from agent_console.customer_search import CustomerSearchScreen
from agent_console.desk_banners import call_banner_text, idle_text, wrap_up_banner_text
from agent_console.desk_calls import CallKeys
from agent_console.desk_footer import DeskFooter
from agent_console.desk_model import (
    NOT_READY_REASON,
    VIEW_OF,
    ClearScript,
    DeskModel,
    LoadScript,
    LoginStatus,
    Notify,
    Reaction,
    Recontext,
    Send,
    View,
    agent_id_problem,
)
from agent_console.desk_palette import desk_commands
from agent_console.dialogs import (
    ChoiceDialog,
    open_dialog,
    quit_dialog,
    quit_question,
)
from agent_console.script_panel import ScriptPanel
from agent_console.widgets import (
    CustomerCardView,
    DispositionPicker,
    QueueStatusLine,
    StateBar,
)
from cti import topics
from cti.bus.memory import Bus, Subscription
from cti.clock import wall_time
from cti.models import AgentState
from cti.protocol import (
    AcceptOffer,
    AnyCommand,
    CallOffered,
    CancelConsult,
    CompleteConsult,
    ConferenceCall,
    HangUp,
    Login,
    Logout,
    Message,
    QueueStatus,
    RejectOffer,
    SetNotReady,
    SetReady,
)
from scripts_engine.runner import RunState

__all__ = ["AgentDesktop", "agent_id_problem"]

_SWITCHER_CHILD: dict[View, str] = {
    "login": "login",
    "idle": "idle",
    "offer": "call",
    "talking": "call",
    "wrap_up": "wrap-up",
}


class AgentDesktop(App[None]):
    """The agent's desk. Read-only for tests and embedding: :attr:`model` (what the desk
    knows), and from it :attr:`agent_id`, :attr:`agent_state`, :attr:`current_call_id`,
    :attr:`offer`, :attr:`view`, :attr:`queue_statuses`."""

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
        Binding("p", "pause_recording", "Pause rec"),
        Binding("w", "transfer", "Transfer"),
        Binding("k", "consult", "Consult"),
        Binding("y", "hand_over", "Hand over"),
        Binding("g", "back_to_caller", "Cancel"),
        Binding("j", "conference", "Join"),
        Binding("d", "dial", "Dial"),
        Binding("s", "focus_script", "Script"),
        # Priority: in wrap-up the digits go to one place whatever has the focus (a text
        # field keeps them; check_action).
        Binding("1", "disposition(1)", "Disposition", key_display="1-9", priority=True),
        *(
            Binding(
                str(number),
                f"disposition({number})",
                f"Disposition {number}",
                show=False,
                priority=True,
            )
            for number in range(2, 10)
        ),
        Binding("e", "extend_wrap_up", "More time"),
        Binding("q", "quit", "Quit"),
        *CUSTOMER_BINDINGS,
        # At the right of the footer whatever its width: every key is in the palette.
        Binding("ctrl+p", "command_palette", "more keys", show=False, priority=True),
    ]

    def __init__(
        self,
        bus: Bus,
        agent_id: str = "",
        *,
        queues: Sequence[str] = (),
        clock: Callable[[], float] = wall_time,
        on_leave: Callable[[], None] = lambda: None,
    ) -> None:
        """``queues`` limits the status line to those queues (all when empty);
        ``clock`` gives wall-clock epoch seconds for the timers (fix it for snapshots);
        ``on_leave`` is called as the agent quits (the demo bounds its stop from then)."""
        super().__init__()
        self._on_leave = on_leave
        self.bus = bus
        self.queues = tuple(queues)
        self._clock = clock
        self.model = DeskModel(agent_id)
        self.calls = CallKeys(self, bus, self.model, clock=clock)
        self.customers = CustomerActions(
            self,
            bus,
            self.model,
            clock=clock,
            dial=self.dial_number,
            identified=lambda customer: self._carry_out(self.model.caller_identified(customer)),
        )
        self._shown_view: View | None = None
        self._picker_key: tuple[str | None, int] | None = None
        """(call, card version) the disposition list was filled for."""

    # --- read-only state ---------------------------------------------------------

    @property
    def agent_id(self) -> str:
        """The agent logged in (or typed in the login form before logging in)."""
        return self.model.agent_id

    @property
    def agent_state(self) -> AgentState | None:
        """The agent's state as the engine last published it; ``None`` before any."""
        return self.model.agent_state

    @property
    def current_call_id(self) -> str | None:
        """The call offered, in conversation or in wrap-up; ``None`` when idle."""
        return self.model.call_id

    @property
    def offer(self) -> CallOffered | None:
        """The offer of the call in hand (kept through talking and wrap-up)."""
        return self.model.offer

    @property
    def view(self) -> View:
        return self.model.view

    @property
    def queue_statuses(self) -> dict[str, QueueStatus]:
        return dict(self.model.queue_statuses)

    @property
    def script_run(self) -> RunState | None:
        """The run of the call's script, or ``None`` when the call has none."""
        return self.query_one(ScriptPanel).state

    # --- layout ------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield StateBar(id="state-bar")
        yield QueueStatusLine(self.model.queue_statuses, self.queues, id="queue-status")
        with Horizontal(id="desk"):
            with ContentSwitcher(initial="login", id="views"):
                with Vertical(id="login"), Vertical(id="login-box"):
                    yield Label("Agent id", id="login-label")
                    yield Input(self.agent_id, placeholder="e.g. 1001", id="agent-id")
                    yield Static(Text("Enter to log in."), id="login-status")
                yield Static(id="idle")
                with Vertical(id="call"):
                    yield Static(id="call-banner")
                    yield CustomerCardView(id="pop-card")
                with Vertical(id="wrap-up"):
                    yield Static(id="wrap-up-banner")
                    yield DispositionPicker(id="disposition-picker")
                    yield Static(id="wrap-up-hint")
            yield ScriptPanel(id="script")
        yield DeskFooter()

    def on_mount(self) -> None:
        self.query_one("#login-box").border_title = "CTI Desk · agent login"
        self.query_one(StateBar).agent_id = self.agent_id
        self.query_one(CustomerCardView).clock = self._clock
        self.query_one("#agent-id", Input).focus()
        self._follow_queues()
        self.calls.follow_colleagues()
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
        self._carry_out(self.model.log_in(agent_id))
        self.query_one(StateBar).agent_id = agent_id
        self._login_status(f"Logging in as {agent_id}…")
        self._follow_agent(agent_id)

    def _login_status(self, text: str) -> None:
        self.query_one("#login-status", Static).update(Text(text))

    # --- the bus -----------------------------------------------------------------

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

    @work(group="queues", name="queue-follow")
    async def _follow_queues(self) -> None:
        async with self.bus.subscribe(topics.ALL_QUEUE_STATUS) as statuses:
            await self._pump(statuses)

    async def _pump(self, subscription: Subscription) -> None:
        async for _topic, message in subscription:
            self.apply(message)

    async def _send(self, command: AnyCommand, *, awaits_answer: bool = False) -> None:
        await self.calls.send(command, awaits_answer=awaits_answer)

    async def _send_all(self, sends: list[Send]) -> None:
        await self.calls.send_all(sends)

    def _command(self, command: AnyCommand, name: str) -> None:
        """Send ``command`` and wait for its answer before the keys work again."""
        self.calls.command(command, name)

    # --- what the engine says ----------------------------------------------------

    def apply(self, message: Message) -> None:
        """Bring the desk up to date with one message from the engine."""
        self._carry_out(self.model.apply(message, self._clock()))
        self._refresh()

    def _carry_out(self, reactions: list[Reaction]) -> None:
        """Do what the model asks: tell the agent, load the script, send commands (in
        one worker, in order)."""
        sends: list[Send] = []
        handlers: dict[type[Any], Callable[[Any], None]] = {
            Notify: self._notify,
            LoginStatus: lambda r: self._login_status(r.text),
            LoadScript: self._show_script,
            ClearScript: self._show_script,
            Recontext: lambda r: self.query_one(ScriptPanel).recontext(r.context),
            Send: sends.append,
        }
        with contextlib.suppress(NoMatches):  # as the app shuts down: no screen
            for reaction in reactions:
                handlers[type(reaction)](reaction)
        if sends:
            self.run_worker(self._send_all(sends), name="desk-send")

    def _notify(self, reaction: Notify) -> None:
        self.notify(reaction.text, title=reaction.title, severity=reaction.severity, markup=False)

    def _show_script(self, reaction: LoadScript | ClearScript) -> None:
        panel = self.query_one(ScriptPanel)
        if isinstance(reaction, ClearScript):
            panel.clear()
        elif reaction.script is None:
            panel.show_problems(reaction.title, list(reaction.problems))
            first = reaction.problems[0] if reaction.problems else "?"
            self.notify(
                f"The script {reaction.title!r} cannot be used: {first}",
                severity="warning",
                markup=False,
            )
        else:
            panel.start(reaction.script, reaction.context, title=reaction.title)

    def on_script_panel_moved(self, event: ScriptPanel.Moved) -> None:
        event.stop()
        panel = self.query_one(ScriptPanel)
        if event.state is not panel.state:
            return  # an older move (or a cleared run): the last one carries all effects
        self._carry_out(self.model.script_moved(event.state))
        if self.view == "wrap_up":
            self._draw_dispositions()
            if event.state.finished and panel.has_focus_within:
                self.query_one(DispositionPicker).focus_list()
            self._draw_wrap_up_hint()
        self.refresh_bindings()

    # --- drawing -----------------------------------------------------------------

    def _refresh(self) -> None:
        with contextlib.suppress(NoMatches):  # a message as the app shuts down: no screen
            self._draw()

    def _draw(self) -> None:
        model, view = self.model, self.view
        self.query_one(StateBar).state = model.state
        self.query_one(QueueStatusLine).refresh()
        self.query_one(CustomerCardView).pop = model.pop
        if view == "wrap_up":
            self._draw_dispositions()
        panel = self.query_one(ScriptPanel)
        panel.display = view in ("offer", "talking", "wrap_up") and (
            panel.has_script or bool(panel.problems)
        )
        panel.active = view == "talking" or (view == "wrap_up" and not model.script_ended)
        self.query_one(ContentSwitcher).current = _SWITCHER_CHILD[view]
        if view != self._shown_view:
            self._shown_view = view
            self._focus_for(view)
            # Again after a dialog closing now has put the focus back where it was.
            self.call_after_refresh(self._refocus_for, view)
        if view == "wrap_up":
            self._draw_wrap_up_hint()
        self.refresh_clock()
        self.refresh_bindings()

    def _draw_dispositions(self) -> None:
        """Fill the list once per call (the note typed stays), add what the script
        suggests and highlight its last suggestion."""
        picker = self.query_one(DispositionPicker)
        key = (self.model.call_id, self.model.card_version)
        if key != self._picker_key:
            self._picker_key = key
            picker.set_dispositions(self.model.dispositions)
        for disposition in self.model.dispositions[len(picker.dispositions) :]:
            picker.preselect(disposition)
        chosen = self.model.preselected_disposition()
        if chosen is not None:
            picker.preselect(chosen)

    def _focus_for(self, view: View) -> None:
        panel = self.query_one(ScriptPanel)
        if view == "login":
            self.query_one("#agent-id", Input).focus()
        elif view == "wrap_up":
            if panel.display and self.script_unfinished() is not None:
                panel.focus_script()  # finish the script first
            else:
                self.query_one(DispositionPicker).focus_list()
        elif view == "talking" and panel.display and panel.has_script:
            panel.focus_script()
        else:
            self.screen.set_focus(None)

    def _refocus_for(self, view: View) -> None:
        with contextlib.suppress(NoMatches):
            if view == self.view and self.focused is None:
                self._focus_for(view)

    def _draw_wrap_up_hint(self) -> None:
        hint = Text()
        reason = self.script_unfinished()
        if reason is not None:
            hint.append("Finish the script first (s): ", style="bold")
            hint.append(reason.removeprefix("the script is not finished: "))
        elif self.model.script_ended and self.query_one(ScriptPanel).unfinished_reason():
            hint.append("The call ended before its script: ", style="bold")
            hint.append("1-9 or ↑↓ Enter: choose the disposition · Tab: type a note first")
        else:
            hint.append("1-9 or ↑↓ Enter: choose · Tab: type a note first")
        self.query_one("#wrap-up-hint", Static).update(hint)

    def script_unfinished(self) -> str | None:
        """Why wrap-up must wait for the script, or ``None`` (it ended, or the call ended
        or left the agent before it: then the disposition is all wrap-up needs)."""
        if self.model.script_ended:
            return None
        return self.query_one(ScriptPanel).unfinished_reason()

    def refresh_clock(self) -> None:
        """Redraw what counts with the clock (time in state, countdowns); runs every second."""
        with contextlib.suppress(NoMatches):  # a tick as the app shuts down: no screen
            self._tick(self._clock())

    def _tick(self, now: float) -> None:
        self.query_one(StateBar).now = now
        if self.model.answer_overdue(now):
            self.refresh_bindings()
        view = self.view
        if view == "idle":
            self.query_one("#idle", Static).update(idle_text(self.model))
        elif view in ("offer", "talking"):
            self.query_one("#call-banner", Static).update(call_banner_text(self.model, now))
        elif view == "wrap_up":
            self.query_one("#wrap-up-banner", Static).update(wrap_up_banner_text(self.model, now))

    # --- which keys apply --------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Actions that do not apply now are shown disabled (``None``); another view's
        are hidden (``False``)."""
        if action == "disposition":
            allowed = self.model.allows(action, parameters)
            return None if allowed and not self._digits_are_keys() else allowed
        if action == "focus_script":
            panel = self.query_one(ScriptPanel)
            return (
                self.view in ("talking", "wrap_up")
                and panel.has_script
                and not panel.has_focus_within
            )
        if action in VIEW_OF:
            return self.model.allows(action, parameters)
        if action in CUSTOMER_ACTIONS:
            return True if self.customers.enabled(action) else None
        return True

    def _digits_are_keys(self) -> bool:
        """Whether 1-9 are the desk's keys now: not while a text field has the focus or
        a dialog is open (they type, or choose in it)."""
        return self.screen is self.screen_stack[0] and not isinstance(self.focused, Input)

    def get_system_commands(self, screen: Screen[Any]) -> Iterator[SystemCommand]:
        """Every desk action with its key; one that cannot be used now says why (the
        desk's own Quit replaces Textual's)."""
        yield from (c for c in super().get_system_commands(screen) if c.title != "Quit")
        yield from desk_commands(self)

    def has_call_script(self) -> bool:
        """Whether the call in hand has a script running in the panel."""
        return self.query_one(ScriptPanel).has_script

    # --- the agent's state -------------------------------------------------------

    async def action_ready(self) -> None:
        await self._send(SetReady(agent_id=self.agent_id), awaits_answer=True)

    def action_not_ready(self) -> None:
        reasons = self.model.state.not_ready_reasons if self.model.state is not None else ()
        if self.view in ("talking", "wrap_up") or not reasons:
            self._not_ready(NOT_READY_REASON if not reasons else reasons[0])
            return
        open_dialog(
            self, ChoiceDialog("Not ready: why?", [(r, r) for r in reasons]), self._not_ready
        )

    def _not_ready(self, reason: str | None) -> None:
        if not reason:
            return
        if self.view in ("talking", "wrap_up"):
            self.model.not_ready_after_call()
            self.notify("You go Not ready after this call.", markup=False)
        self._command(SetNotReady(agent_id=self.agent_id, reason=reason), "desk-not-ready")

    async def action_quit(self) -> None:
        """Log out and leave; with a call in hand, ask first, saying what happens to it."""
        question = quit_question(self.view, self.model.offer)
        if question is None:
            await self._log_out_and_leave()
        else:
            open_dialog(self, quit_dialog(question), self._quit_answered)

    def _quit_answered(self, leave: bool | None) -> None:
        if leave:
            self.run_worker(self._log_out_and_leave(), name="desk-quit", group="quit")

    async def _log_out_and_leave(self) -> None:
        """The engine hands the call back by its queue's rule (docs/acd.md)."""
        if self.agent_state not in (None, AgentState.LOGGED_OUT):
            await self._send(Logout(agent_id=self.agent_id))
        self._on_leave()
        self.exit()

    # --- the call ----------------------------------------------------------------

    async def action_answer(self) -> None:
        await self.calls.call_command(AcceptOffer)

    async def action_reject(self) -> None:
        await self.calls.call_command(RejectOffer)

    async def action_hang_up(self) -> None:
        await self.calls.call_command(HangUp)

    async def action_hold(self) -> None:
        await self.calls.hold()

    async def action_mute(self) -> None:
        await self.calls.mute()
        self._refresh()

    async def action_pause_recording(self) -> None:
        await self.calls.pause_recording()

    def action_transfer(self) -> None:
        self.calls.transfer()

    def action_consult(self) -> None:
        self.calls.consult()

    async def action_hand_over(self) -> None:
        await self.calls.call_command(CompleteConsult)

    async def action_back_to_caller(self) -> None:
        await self.calls.call_command(CancelConsult)

    async def action_conference(self) -> None:
        await self.calls.call_command(ConferenceCall)

    async def action_extend_wrap_up(self) -> None:
        await self.calls.extend_wrap_up()

    def action_dial(self) -> None:
        self.calls.dial()

    def dial_number(self, number: str | None) -> None:
        """Call ``number`` for this agent (Ready or Not Ready); a customer card may use it."""
        self.calls.dial_number(number)

    # --- wrap-up and the script --------------------------------------------------

    def action_disposition(self, number: int) -> None:
        """1-9 in wrap-up: the script's answer while the script must be finished first,
        then the disposition, whatever has the focus."""
        if self.script_unfinished() is None:
            self.query_one(DispositionPicker).choose(number - 1)
        elif not self.query_one(ScriptPanel).choose(number):
            self.notify(
                f"Not yet: {self.script_unfinished()}. Press s to go to the script.",
                title="Wrap-up",
                severity="warning",
                markup=False,
            )

    async def on_disposition_picker_chosen(self, event: DispositionPicker.Chosen) -> None:
        event.stop()
        if self.view != "wrap_up" or self.model.call_id is None or self.model.pending is not None:
            return
        reason = self.script_unfinished()
        if reason is not None:
            message = f"Not yet: {reason}. Press s to go to the script."
            self.notify(message, title="Wrap-up", severity="warning", markup=False)
            self._draw_wrap_up_hint()
            return
        reactions = self.model.wrap_up(event.disposition, event.note, self._clock())
        self._carry_out([r for r in reactions if not isinstance(r, Send)])
        await self._send_all([r for r in reactions if isinstance(r, Send)])

    def action_focus_script(self) -> None:
        self.query_one(ScriptPanel).focus_script()

    # --- the customer keys (CustomerActions) -------------------------------------

    def action_customer(self) -> None:
        self.customers.customer()

    def action_find_customer(self, query: str = "") -> None:
        self.customers.find(query)

    def action_customer_info(self) -> None:
        self.customers.info()

    def action_service_item(self) -> None:
        self.customers.service_item()

    def action_escalate_item(self) -> None:
        self.customers.escalate_item()

    def action_callback(self) -> None:
        self.customers.callback()

    def on_customer_search_screen_act(self, event: CustomerSearchScreen.Act) -> None:
        event.stop()
        self.customers.act(event)
