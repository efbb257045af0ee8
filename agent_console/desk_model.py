"""What the agent's desk knows, built from the engine's messages alone: the agent's
state, the call in hand (offer, talking, wrap-up) with its card and line, hold, mute and
consultation, the call's script run, the command waiting for its answer, and the queues.

Pure: no Textual, no bus. :meth:`DeskModel.apply` takes one message and the time and
returns what the desk must do about it (:data:`Reaction`: tell the agent, send a
command, load or clear the script); the widgets of :mod:`agent_console.desktop` draw
the model. Events and state arrive on separate topics and may be seen in either order,
so the call in hand is reconciled from both; a state that names a call the desk has
already left behind is not allowed to bring that call back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from agent_console.desk_dial import dial_end_text, ringing
from agent_console.desk_script import (
    ScriptCache,
    callbacks_asked,
    outbox_refusals,
    script_context,
    script_fields,
)
from cti.models import AgentState, Customer
from cti.protocol import (
    AgentStateChanged,
    AnyCommand,
    CallConnected,
    CallControl,
    CallEnded,
    CallOffered,
    CommandResult,
    CompleteWrapUp,
    CurrentCall,
    DialNumber,
    DialProgress,
    LineFeatures,
    Message,
    OfferWithdrawn,
    PauseRecording,
    QueueStatus,
    RequestSnapshot,
    SaveScriptRun,
    ScreenPop,
    TransferCall,
    answer,
)
from scripts_engine.expr import Scalar
from scripts_engine.model import Script
from scripts_engine.runner import RunState

View = Literal["login", "idle", "offer", "talking", "wrap_up"]
"""What the desk shows: the login form, no call, an offer, a conversation, wrap-up."""

Phase = Literal["offer", "talking", "wrap_up"]
Severity = Literal["information", "warning", "error"]

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

BUSY = frozenset({AgentState.RESERVED, AgentState.TALKING, AgentState.WRAP_UP})
#: The view each desk action belongs to: elsewhere it is hidden from the footer (the
#: command palette still lists it, as "not now").
VIEW_OF: dict[str, tuple[View, ...]] = {
    "ready": ("idle",),
    "not_ready": ("idle", "talking", "wrap_up"),
    "answer": ("offer",),
    "reject": ("offer",),
    "hang_up": ("talking",),
    "disposition": ("wrap_up",),
    "extend_wrap_up": ("wrap_up",),
    "dial": ("idle",),
    "hold": ("talking",),
    "mute": ("talking",),
    "pause_recording": ("talking",),
    "transfer": ("talking",),
    "consult": ("talking",),
    "hand_over": ("talking",),
    "back_to_caller": ("talking",),
    "conference": ("talking",),
}
_CONSULT_ONLY = frozenset({"hand_over", "back_to_caller", "conference"})
_IN_CALL = frozenset(
    {"hold", "mute", "pause_recording", "transfer", "consult", "hand_over", "back_to_caller"}
)
_WHERE = {
    "idle": "with no call in hand",
    "offer": "while a call is offered",
    "talking": "during a call",
    "wrap_up": "in wrap-up",
}


def agent_id_problem(agent_id: str) -> str | None:
    """Why ``agent_id`` cannot be used in a topic, or ``None`` if it can."""
    if not agent_id:
        return "Agent id is empty: type the id you were given (letters and digits)."
    bad = sorted({ch for ch in agent_id if ch in "/+#" or ch.isspace()})
    if bad:
        shown = " ".join(repr(ch) for ch in bad)
        return f"Agent id {agent_id!r} contains {shown}: use letters, digits, '-' or '_'."
    return None


# --- what the desk must do -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Notify:
    """Tell the agent (a notification)."""

    text: str
    title: str = ""
    severity: Severity = "information"


@dataclass(frozen=True, slots=True)
class LoginStatus:
    """The line under the login form."""

    text: str


@dataclass(frozen=True, slots=True)
class Send:
    """Publish a command; ``awaits_answer`` keeps the desk's keys off until it comes."""

    command: AnyCommand
    awaits_answer: bool = False


@dataclass(frozen=True, slots=True)
class LoadScript:
    """Start the call's script (``script`` is ``None`` when it cannot run: ``problems``)."""

    title: str
    script: Script | None
    problems: tuple[str, ...]
    context: dict[str, Scalar] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ClearScript:
    """The call has no script (any more)."""


@dataclass(frozen=True, slots=True)
class Recontext:
    """The running script reads these variables from now on (the caller identified)."""

    context: dict[str, Scalar]


Reaction = Notify | LoginStatus | Send | LoadScript | ClearScript | Recontext


# --- the model -----------------------------------------------------------------------


class DeskModel:
    """The desk of one agent (see the module docstring). Its attributes are read by the
    widgets; only its methods change them."""

    def __init__(self, agent_id: str = "") -> None:
        self.agent_id = agent_id
        self.state: AgentStateChanged | None = None
        self.phase: Phase | None = None
        self.call_id: str | None = None
        self.offer: CallOffered | None = None
        """The offer of the call in hand (kept through talking and wrap-up)."""
        self.caller: Customer | None = None
        self.ended_by: str | None = None
        """Who ended the conversation (``CallEnded.by``), once it ended."""
        """The customer the agent identified the caller as during this call, if any."""
        self.card_version = 0
        """Counts the offers the desk took in: a new one brings its own dispositions."""
        self.control: CallControl | None = None
        """Hold, mute and consultation of the call in hand, as the engine last said."""
        self.local_mute = False
        """Muted on this desk only (the line cannot mute)."""
        self.recording_paused = False
        """The call's recording paused (the engine accepted the pause)."""
        self._pause_asked: tuple[str, bool] | None = None
        """(command id, paused) of the pause or resume waiting for its answer."""
        self.after_call = False
        """Not ready after this call was asked."""
        self.notice = ""
        self.dial: DialProgress | None = None
        self._dialled_from: AgentState | None = None
        self.last_pop: ScreenPop | None = None
        """The card of the last call (dial from the card)."""
        self.pending: str | None = None
        """The command id whose answer the desk waits for."""
        self.pending_since = 0.0
        self.queue_statuses: dict[str, QueueStatus] = {}
        self.run: RunState | None = None
        """The call's script run, as the script panel last reported it."""
        self._left_calls: dict[str, None] = {}
        self._card_asked: str | None = None
        self._script_key: tuple[str, str] | None = None
        """(call id, script SHA-256) of the run loaded."""
        self._effects_seen = 0
        self._run_sent: dict[str, Any] | None = None
        """The script run last saved to the engine, to send only changes."""
        self._scripts = ScriptCache()
        self._handlers: dict[type[Message], Callable[[Any, float, list[Reaction]], None]] = {
            AgentStateChanged: self._on_state,
            CallOffered: self._on_offered,
            CurrentCall: self._on_current,
            CallControl: self._on_control,
            OfferWithdrawn: self._on_withdrawn,
            CallConnected: self._on_connected,
            CallEnded: self._on_ended,
            CommandResult: self._on_result,
            QueueStatus: self._on_queue,
            DialProgress: self._on_dial,
        }

    # --- what the desk shows -------------------------------------------------------

    @property
    def agent_state(self) -> AgentState | None:
        """The agent's state as the engine last published it; ``None`` before any."""
        return self.state.state if self.state is not None else None

    @property
    def view(self) -> View:
        if self.agent_state is None or self.agent_state is AgentState.LOGGED_OUT:
            return "login"
        return self.phase or "idle"

    @property
    def pop(self) -> ScreenPop | None:
        """The card of the call in hand."""
        pop = self.offer.pop if self.offer is not None else None
        return pop if pop is not None and pop.call_id == self.call_id else None

    @property
    def dispositions(self) -> tuple[str, ...]:
        """What wrap-up offers: the offer's dispositions (or the default), then those
        the script suggested that are not among them, numbered in that order."""
        offered = self.offer.dispositions if self.offer is not None else ()
        shown = list(offered or DEFAULT_DISPOSITIONS)
        shown.extend(d for d in dict.fromkeys(self._suggested()) if d and d not in shown)
        return tuple(shown)

    def _suggested(self) -> list[str]:
        if self.run is None:
            return []
        effects = self.run.effects
        return [
            str(e.args.get("disposition", "")) for e in effects if e.action == "set_disposition"
        ]

    @property
    def line(self) -> LineFeatures:
        """What the line of the call in hand can do (all, when the engine did not say)."""
        features = self.offer.pop.line if self.offer is not None else None
        return features or LineFeatures(hold=True, mute=True, conference=True, dial=True)

    @property
    def voice(self) -> bool:
        """Whether the center's lines carry the voice (the state tells the phone's reach)."""
        return self.state is not None and self.state.phone_reachable is not None

    @property
    def consulting(self) -> bool:
        return self.control is not None and bool(self.control.consult_state)

    @property
    def owner(self) -> bool:
        """Whether this agent has the caller (not only consulted about the call)."""
        if self.offer is None or not self.offer.consult_from:
            return True
        return self.control is not None and not self.control.consult_state

    # --- what the agent does -------------------------------------------------------

    def log_in(self, agent_id: str) -> list[Reaction]:
        """Another agent id forgets what the desk knew of the last one."""
        out: list[Reaction] = []
        if agent_id != self.agent_id:
            self.state = None
            self._end_call(out)
        self.agent_id = agent_id
        return out

    def sent(self, command: AnyCommand, now: float) -> None:
        """``command`` is on the bus and its answer awaited."""
        self.pending = command.command_id
        self.pending_since = now
        if isinstance(command, PauseRecording):
            self._pause_asked = (command.command_id, command.paused)
        if isinstance(command, DialNumber):  # the engine puts it back after the call
            self._dialled_from = self.agent_state

    def answer_overdue(self, now: float) -> bool:
        """Give up waiting for an answer after :data:`ANSWER_TIMEOUT_S`; whether it did."""
        if self.pending is not None and now - self.pending_since > ANSWER_TIMEOUT_S:
            self.pending = None
            return True
        return False

    def not_ready_after_call(self) -> None:
        self.after_call = True

    def toggle_local_mute(self) -> bool:
        """Mute on this desk only (the line cannot); whether it is muted now."""
        self.local_mute = not self.local_mute
        return self.local_mute

    # --- which keys apply ----------------------------------------------------------

    def allows(self, action: str, parameters: tuple[object, ...] = ()) -> bool | None:
        """For one of :data:`VIEW_OF`'s actions: ``True`` usable, ``None`` shown disabled
        (not now), ``False`` hidden (another view's)."""
        view = self.view
        if view == "login":
            return None if action == "ready" else False  # log in first
        if view not in VIEW_OF[action]:
            return False
        if action in _CONSULT_ONLY and not self.consulting:
            return False
        if action in ("transfer", "consult", "hold") and self.consulting:
            return False  # the caller is held for the consultation
        if action == "pause_recording" and not self.voice:
            return False  # no line records calls
        return True if self.applies(action, parameters) else None

    def applies(self, action: str, parameters: tuple[object, ...] = ()) -> bool:
        """Whether ``action`` can be carried out now."""
        if self.pending is not None:
            return False
        state, view = self.agent_state, self.view
        if action in ("ready", "not_ready", "dial", "extend_wrap_up"):
            return self._state_action_applies(action, state, view)
        if action in _IN_CALL:
            usable = view == "talking" and self.call_id is not None and self.owner
            usable = usable and not ringing(self.dial, self.call_id)
            if action == "hold":
                return usable and self.line.hold and not self.consulting
            if action == "consult":
                return usable and self.line.hold
            return usable
        if action == "conference":
            control = self.control
            return (
                self.line.conference and control is not None and control.consult_state == "talking"
            )
        if action in ("answer", "reject"):
            return view == "offer" and self.call_id is not None
        if action == "hang_up":
            return view == "talking" and self.call_id is not None
        if action == "disposition":
            number = parameters[0] if parameters else 0
            in_range = isinstance(number, int) and 1 <= number <= len(self.dispositions)
            return view == "wrap_up" and in_range
        return False

    def _state_action_applies(self, action: str, state: AgentState | None, view: View) -> bool:
        if action == "ready":
            return state is AgentState.NOT_READY
        if action == "not_ready":
            if view in ("talking", "wrap_up"):
                return not self.after_call
            return state is AgentState.READY and view == "idle"
        if action == "dial":
            return view == "idle" and state in (AgentState.READY, AgentState.NOT_READY)
        return view == "wrap_up" and state is AgentState.WRAP_UP  # extend_wrap_up

    def why_not(self, action: str) -> str:
        """Why ``action`` cannot be used now, in the agent's words."""
        line = self.line
        if self.pending is not None:
            return "Waiting for the engine's answer to your last action."
        if action in _IN_CALL and ringing(self.dial, self.call_id):
            return "The number you dialled is still ringing."
        if action == "hold" and not line.hold and self.view == "talking":
            return "This call's line cannot hold calls."
        if action == "consult" and not line.hold and self.view == "talking":
            return "This call's line cannot hold the caller while you consult."
        if action == "conference" and not line.conference and self.consulting:
            return "This call's line cannot hold a conference."
        if action == "pause_recording" and not self.voice:
            return "No line of this center carries the voice: calls are not recorded."
        views = VIEW_OF.get(action, ())
        return "Only " + " or ".join(_WHERE[v] for v in views if v in _WHERE) + "."

    # --- what the engine says ------------------------------------------------------

    def apply(self, message: Message, now: float) -> list[Reaction]:
        """Bring the desk up to date with one message from the engine."""
        out: list[Reaction] = []
        handler = self._handlers.get(type(message))
        if handler is None:
            return out
        # Results and queue figures name no agent; everything else must be this one's.
        if getattr(message, "agent_id", self.agent_id) == self.agent_id:
            handler(message, now, out)
            if not isinstance(message, CommandResult) and (result := answer(message)) is not None:
                self._on_result(result, now, out)  # an event that answers the agent's command
        return out

    def _on_state(self, message: AgentStateChanged, now: float, out: list[Reaction]) -> None:
        previous = self.agent_state
        self.state = message
        self.pending = None
        state, call_id = message.state, message.call_id
        if state is AgentState.LOGGED_OUT:
            self._end_call(out)
            if previous is not None and previous is not AgentState.LOGGED_OUT:
                out.append(LoginStatus("Logged out. Enter to log in again."))
        elif state in (AgentState.READY, AgentState.NOT_READY):
            # An offer is only cleared by its withdrawal or expiry: its state may
            # arrive after the offer itself.
            if self.phase in ("talking", "wrap_up") or self._offer_expired(now):
                self._end_call(out)
        elif call_id is not None and call_id in self._left_calls:
            pass  # stale news about a call already left behind
        elif state is AgentState.RESERVED:
            if self.phase is None:
                self._start_call(call_id, "offer", out)
        elif state is AgentState.TALKING:
            if self.phase in (None, "offer"):
                self._start_call(call_id or self.call_id, "talking", out)
            self._ask_for_the_card(call_id, out)
        elif state is AgentState.WRAP_UP:
            self._start_call(call_id or self.call_id, "wrap_up", out)
            self._ask_for_the_card(call_id, out)

    def _on_offered(self, message: CallOffered, now: float, out: list[Reaction]) -> None:
        self._left_calls.pop(message.pop.call_id, None)
        self._start_call(message.pop.call_id, "offer", out)
        self.offer = message
        self.card_version += 1
        self.notice = ""
        self._load_script(message, out)

    def _ask_for_the_card(self, call_id: str | None, out: list[Reaction]) -> None:
        """On a call with no card (the desk restarted mid-call): ask the engine for a
        snapshot, which brings the card back as :class:`CurrentCall`. Once per call."""
        if call_id is None or call_id == self._card_asked:
            return
        if self.offer is not None and self.offer.pop.call_id == call_id:
            return
        self._card_asked = call_id
        out.append(Send(RequestSnapshot(agent_id=self.agent_id)))

    def _on_current(self, message: CurrentCall, now: float, out: list[Reaction]) -> None:
        """The call the agent is on, sent again after a restart or a reconnection: the
        card and the script come back, in the view the retained state says (talking
        unless the state says wrap-up of this very call)."""
        if message.call_id in self._left_calls:
            return
        state = self.state
        in_wrap_up = (
            state is not None
            and state.state is AgentState.WRAP_UP
            and state.call_id in (None, message.call_id)
        ) or (self.phase == "wrap_up" and self.call_id == message.call_id)
        self._start_call(message.call_id, "wrap_up" if in_wrap_up else "talking", out)
        if self.offer is None or self.offer.pop.call_id != message.call_id:
            self.offer = CallOffered(
                agent_id=message.agent_id,
                pop=message.pop,
                timeout_s=0.0,
                deadline_wall=0.0,
                dispositions=message.dispositions,
                agent_name=message.agent_name,
            )
            self.card_version += 1  # the dispositions came with it: offer them
        self._load_script(self.offer, out)

    def _on_control(self, message: CallControl, now: float, out: list[Reaction]) -> None:
        if message.call_id != self.call_id:
            return
        self.control = message
        if message.note:
            out.append(Notify(message.note, title="Call"))

    def _on_withdrawn(self, message: OfferWithdrawn, now: float, out: list[Reaction]) -> None:
        if message.call_id == self.call_id and self.phase == "offer":
            self._end_call(out)
            self.notice = f"The offered call was withdrawn: {message.reason}."
            out.append(Notify(self.notice, severity="warning"))
        else:
            self._remember_left(message.call_id)

    def _on_connected(self, message: CallConnected, now: float, out: list[Reaction]) -> None:
        if message.call_id not in self._left_calls:
            self._start_call(message.call_id, "talking", out)

    def _on_ended(self, message: CallEnded, now: float, out: list[Reaction]) -> None:
        if message.call_id in self._left_calls:
            return
        if message.call_id == self.call_id and ringing(self.dial, self.call_id):
            self._dial_over("You hung up before anyone answered.", message.call_id, out)
            return
        self._start_call(message.call_id, "wrap_up", out)
        self.ended_by = message.by
        self.recording_paused = False  # the recording closed with the conversation
        if message.by == "caller":
            out.append(Notify("The caller hung up."))
        elif message.by == "transfer":
            out.append(Notify("The call is handed on. Wrap up your part."))

    def _on_result(self, message: CommandResult, now: float, out: list[Reaction]) -> None:
        if message.command_id == self.pending:
            self.pending = None
        asked = self._pause_asked
        if asked is not None and asked[0] == message.command_id:
            self._pause_asked = None
            self.recording_paused = asked[1] if message.ok else self.recording_paused
        if not message.ok:
            error = message.error or "the engine refused the command"
            out.append(Notify(error, title="Refused", severity="error"))
            if self.view == "login":
                out.append(LoginStatus(f"Login refused: {error}"))

    def _on_dial(self, message: DialProgress, now: float, out: list[Reaction]) -> None:
        text = dial_end_text(message)  # None: under way, or answered
        if text is None and message.call_id in self._left_calls:
            return  # stale news of a dial left behind
        self.dial = message
        if message.state == "dialling":
            self.after_call = self._dialled_from is AgentState.NOT_READY
        if text is not None:  # its end may come after the state it put the agent back in
            self._dial_over(text, message.call_id, out)

    def _dial_over(self, text: str, call_id: str, out: list[Reaction]) -> None:
        if self.call_id in (None, call_id):  # nobody answered: no wrap-up
            self._end_call(out)
        self.notice = text
        out.append(Notify(text, title="Dial", severity="warning"))

    def _on_queue(self, message: QueueStatus, now: float, out: list[Reaction]) -> None:
        self.queue_statuses[message.queue] = message

    def _start_call(self, call_id: str | None, phase: Phase, out: list[Reaction]) -> None:
        if self.call_id is not None and call_id is not None and call_id != self.call_id:
            self._end_call(out)
        self.call_id = call_id if call_id is not None else self.call_id
        self.phase = phase

    def _end_call(self, out: list[Reaction]) -> None:
        if self.call_id is not None:
            self._remember_left(self.call_id)
        if self.offer is not None:
            self.last_pop = self.offer.pop
        self.call_id = None
        self.phase = None
        self.offer = None
        self.card_version += 1
        self._script_key = None
        self.control = None
        self.local_mute = False
        self.recording_paused = False
        self._pause_asked = None
        self.after_call = False
        self._run_sent = None
        self.run = None
        self.caller = None
        self.ended_by = None
        out.append(ClearScript())

    def _remember_left(self, call_id: str) -> None:
        self._left_calls[call_id] = None
        while len(self._left_calls) > _LEFT_CALLS_KEPT:
            del self._left_calls[next(iter(self._left_calls))]

    def _offer_expired(self, now: float) -> bool:
        return self.phase == "offer" and self.offer is not None and now > self.offer.deadline_wall

    # --- the call's script -------------------------------------------------------

    def _load_script(self, offer: CallOffered, out: list[Reaction]) -> None:
        """Start the offered call's script (shown, not yet answerable). The same offer
        sent again (after a reconnect) keeps the run where it is."""
        sent = offer.pop.script
        if sent is None:
            self._script_key = None
            self.run = None
            out.append(ClearScript())
            return
        key = (offer.pop.call_id, sent.sha256)
        if key == self._script_key:
            return
        self._script_key = key
        self._effects_seen = 0
        self.run = None
        script, problems = self._scripts.parse(sent)
        context = script_context(offer, self.agent_id, self.caller) if script is not None else {}
        out.append(LoadScript(f"{sent.name} {sent.version}", script, tuple(problems), context))

    @property
    def script_ended(self) -> bool:
        """The call ended or left the agent before the agent did (the caller hung up, or
        it was handed on): its script ends where it was, and wrap-up needs only the
        disposition. An agent who hung up finishes the script first."""
        return self.ended_by is not None and self.ended_by != "agent"

    def caller_identified(self, customer: Customer) -> list[Reaction]:
        """The agent chose or created the caller's customer: the script reads it now."""
        if self.offer is None or self.call_id is None:
            return []
        self.caller = customer
        if self.run is None:
            return []
        return [Recontext(script_context(self.offer, self.agent_id, customer))]

    def script_moved(self, state: RunState) -> list[Reaction]:
        """The run moved (an answer, a step): carry out what it asks of the call, and
        save it to the engine (so the answers are kept even if the wrap-up timer ends the
        call before the agent finishes)."""
        out: list[Reaction] = []
        self.run = state
        new = state.effects[self._effects_seen :]
        for effect in new:
            if effect.action == "transfer_queue":
                self._script_transfer(str(effect.args.get("queue") or ""), out)
        out.extend(Notify(why, title="Script", severity="warning") for why in outbox_refusals(new))
        self._effects_seen = len(state.effects)
        self._save_run(out)
        return out

    def _script_transfer(self, queue: str, out: list[Reaction]) -> None:
        """The script asked to transfer the call to ``queue``: done, if it can be now."""
        if self.view != "talking" or self.call_id is None or not queue or not self.owner:
            text = (
                f"The script asks to transfer the call to queue {queue!r}; that is only "
                "possible while you talk with the caller (press w to transfer)."
            )
            out.append(Notify(text, title="Transfer", severity="warning"))
            return
        self._save_run(out)
        command = TransferCall(agent_id=self.agent_id, call_id=self.call_id, queue=queue)
        out.append(Send(command, awaits_answer=True))

    def _save_run(self, out: list[Reaction]) -> None:
        if self.call_id is None or self.view not in ("talking", "wrap_up"):
            return
        fields = self.script_fields()
        if not fields or fields == self._run_sent:
            return
        try:
            command = SaveScriptRun(agent_id=self.agent_id, call_id=self.call_id, **fields)
        except ValidationError:
            return  # too big for the wire: the wrap-up says so when it is sent
        self._run_sent = fields
        out.append(Send(command))

    def preselected_disposition(self) -> str | None:
        """The disposition the script set last, if it set one."""
        suggested = self._suggested()
        return suggested[-1] if suggested and suggested[-1] else None

    def wrap_up(self, disposition: str, note: str, now: float) -> list[Reaction]:
        """The commands that end the wrap-up: the callbacks the script scheduled, then
        the wrap-up with the script's answers (without them if they do not fit: the
        agent is never kept in wrap-up over the script)."""
        if self.view != "wrap_up" or self.call_id is None or self.pending is not None:
            return []
        out: list[Reaction] = []
        try:
            command = CompleteWrapUp(
                agent_id=self.agent_id,
                call_id=self.call_id,
                disposition=disposition,
                note=note,
                **self.script_fields(),
            )
        except ValidationError as exc:
            error = exc.errors()[0]["msg"]
            out.append(Notify(f"The script's answers could not be sent: {error}", severity="error"))
            command = CompleteWrapUp(
                agent_id=self.agent_id, call_id=self.call_id, disposition=disposition, note=note
            )
        if self.run is not None and self.offer is not None:
            asked = callbacks_asked(self.run, self.offer.pop, self.agent_id, now)
            out.extend(Send(callback) for callback in asked)
        out.append(Send(command, awaits_answer=True))
        return out

    def script_fields(self) -> dict[str, Any]:
        """What the wrap-up carries of the call's script: answers, path, actions."""
        sent = self.offer.pop.script if self.offer is not None else None
        return script_fields(self.run, sent)
