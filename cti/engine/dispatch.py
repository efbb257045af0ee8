"""Commands from the bus: each applied once per ``command_id`` (a repeat gets the same
answer, from :class:`~cti.protocol.CommandMemory`), answered on the sender's reply
topic, and handed to the part of the engine that carries it out. An agent's accept,
reject or hang-up applied is answered by the event it causes (:class:`Answers`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from cti import log_limits, topics
from cti.engine.built import built, event_line
from cti.engine.call_control import CallController
from cti.engine.callbacks import CallbackScheduler
from cti.engine.customer_desk import CustomerDesk
from cti.engine.script_runs import ScriptRuns
from cti.engine.voice import Voice
from cti.errors import CtiError
from cti.protocol import (
    AcceptOffer,
    AddServiceItem,
    AnyCommand,
    CallConnected,
    CallEnded,
    CancelConsult,
    ChangeCallPriority,
    ChooseCustomer,
    CommandMemory,
    CommandResult,
    CompleteConsult,
    CompleteWrapUp,
    ConferenceCall,
    ConsultCall,
    CreateCustomer,
    DialNumber,
    EscalateServiceItem,
    ExtendWrapUp,
    ForceLogout,
    ForceNotReady,
    HangUp,
    HoldCall,
    Login,
    Logout,
    Message,
    MoveWaitingCall,
    MuteCall,
    OfferWithdrawn,
    PauseRecording,
    RejectOffer,
    RequestSnapshot,
    ResumeCall,
    SaveScriptRun,
    ScheduleCallback,
    SearchCustomers,
    SetCampaignPacing,
    SetCampaignState,
    SetNotReady,
    SetReady,
    ShowCustomer,
    SupervisorCommand,
    TransferCall,
    is_command,
    is_supervisor_command,
)
from queue_engine import inputs as ri
from queue_engine.actions import ConnectCall, DisconnectCall, JoinCall, WithdrawOffer

log = logging.getLogger(__name__)

#: How many recent command ids are remembered to make repeats harmless.
COMMAND_MEMORY = 10_000
#: Command topics whose reply topic and sender are kept (one or two an agent); a bound.
TOPICS_KEPT = 4096

Command = AnyCommand | SupervisorCommand
CampaignControl = Callable[[SupervisorCommand], Awaitable[None]]


def router_input(message: Command) -> ri.AnyInput | None:
    """The router input a command is, for those that are one and nothing more. A call's
    accept and hang-up first, each made of the command's validated ids as they are
    (:mod:`cti.engine.built`: the input validation makes of them, issue 23)."""
    match message:
        case AcceptOffer(agent_id=a, call_id=call_id):
            return built(ri.AgentAccepts, {"kind": "agent_accepts", "agent_id": a,
                                           "call_id": call_id})  # fmt: skip
        case HangUp(agent_id=a, call_id=call_id):
            return built(ri.AgentHangsUp, {"kind": "agent_hangs_up", "agent_id": a,
                                           "call_id": call_id})  # fmt: skip
        case RejectOffer(agent_id=a, call_id=call_id):
            return built(ri.AgentRejects, {"kind": "agent_rejects", "agent_id": a,
                                           "call_id": call_id})  # fmt: skip
        case Login(agent_id=a):
            return ri.AgentLogsIn(agent_id=a)
        case Logout(agent_id=a) | ForceLogout(agent_id=a):
            return ri.AgentLogsOut(agent_id=a)
        case SetReady(agent_id=a):
            return ri.AgentGoesReady(agent_id=a)
        case SetNotReady(agent_id=a, reason=reason) | ForceNotReady(agent_id=a, reason=reason):
            return ri.AgentGoesNotReady(agent_id=a, reason=reason)
        case ExtendWrapUp(agent_id=a, call_id=call_id, seconds=seconds):
            return ri.AgentExtendsWrapUp(agent_id=a, call_id=call_id, seconds=seconds)
        case ChangeCallPriority(call_id=call_id, priority=priority):
            return ri.CallPriorityChanged(call_id=call_id, priority=priority)
        case MoveWaitingCall(call_id=call_id, queue=queue):
            return ri.CallMoved(call_id=call_id, queue=queue)
    return None


def applied(command_id: str) -> CommandResult:
    """The result of a command applied, made of its validated id as it is
    (:mod:`cti.engine.built`, issue 23)."""
    return built(CommandResult, {"type": "command_result", "command_id": command_id,
                                 "ok": True, "error": ""})  # fmt: skip


Answered = tuple[type[Message], str, str]
"""The event that answers a command: its type, agent and call."""


class Answers:
    """The agent's commands answered by the event they cause (:data:`cti.events.ANSWERS`)
    rather than by a :class:`CommandResult` of their own: an accept by its
    ``CallConnected``, a hang-up by its ``CallEnded``, a reject by its ``OfferWithdrawn``
    (two messages, and two acknowledgements, a call fewer over a broker: issue 23).

    A command is noted here (:meth:`expect`) once the router has applied it, before the
    effects task carries its actions out; the first event of its kind for its agent and
    call that the effects task builds then (:meth:`connected`, :meth:`ended`,
    :meth:`withdrawn`) names it. Its result is queued after those actions, as every
    command's is: :meth:`due` holds it back if an event answered the command, and lets it
    go if none did (a consultation's hang-up or reject, whose events are others; an
    effect that failed). So every command is answered, once, in order with its events;
    a repeat is answered by its remembered result. Nothing here is journaled: the
    answer is an effect, as before."""

    def __init__(self) -> None:
        self._awaited: dict[Answered, str] = {}
        """The event to answer a command -> the command's id, until it is built."""
        self._open: dict[str, Answered | None] = {}
        """Command id -> the event awaited (None: it answered), until the result's turn."""

    def expect(self, command: Command) -> None:
        """``command`` was applied: its event, if it is one that answers, names it."""
        match command:
            case AcceptOffer(agent_id=a, call_id=call_id):
                event: Answered = (CallConnected, a, call_id)
            case HangUp(agent_id=a, call_id=call_id):
                event = (CallEnded, a, call_id)
            case RejectOffer(agent_id=a, call_id=call_id):
                event = (OfferWithdrawn, a, call_id)
            case _:
                return
        if event not in self._awaited:  # else an earlier command's: this one gets its result
            self._awaited[event] = command.command_id
            self._open[command.command_id] = event

    def _answering(self, event: Answered) -> str:
        command_id = self._awaited.pop(event, "") if self._awaited else ""
        if command_id:
            self._open[command_id] = None
        return command_id

    # The events below are made of the router's values (ids and reasons it was given
    # validated) as they are: cti.engine.built (issue 23).

    def connected(self, action: ConnectCall | JoinCall) -> CallConnected:
        """The agent is connected to the call (its accept's answer, if one is awaited)."""
        a, call_id = action.agent_id, action.call_id
        command_id = self._answering((CallConnected, a, call_id))
        return built(CallConnected, {"type": "call_connected", "agent_id": a,
                                     "call_id": call_id, "command_id": command_id})  # fmt: skip

    def ended(self, action: DisconnectCall) -> CallEnded:
        """The call is over for the agent (its hang-up's answer, if one is awaited)."""
        a, call_id = action.agent_id, action.call_id
        command_id = self._answering((CallEnded, a, call_id))
        return built(CallEnded, {"type": "call_ended", "agent_id": a, "call_id": call_id,
                                 "by": action.by, "command_id": command_id})  # fmt: skip

    def withdrawn(self, action: WithdrawOffer) -> OfferWithdrawn:
        """The agent's offer is withdrawn (its reject's answer, if one is awaited)."""
        a, call_id = action.agent_id, action.call_id
        command_id = self._answering((OfferWithdrawn, a, call_id))
        return built(OfferWithdrawn, {"type": "offer_withdrawn", "agent_id": a, "call_id": call_id,
                                      "reason": event_line(action.reason),
                                      "command_id": command_id})  # fmt: skip

    def due(self, message: Message) -> bool:
        """Whether a message queued to be published is still to be sent: every one but
        the result of a command that its event answered already."""
        if not self._open or not isinstance(message, CommandResult):
            return True
        if message.command_id not in self._open:
            return True  # not awaited: a command of another kind, a repeat
        event = self._open.pop(message.command_id)
        if event is None:
            return False
        del self._awaited[event]  # no event answered it: its result does
        return True


@dataclass(slots=True)
class Parts:
    """The parts of the engine that carry commands out."""

    route: Callable[[ri.AnyInput], None]
    calls: CallController
    desk: CustomerDesk
    runs: ScriptRuns
    callbacks: CallbackScheduler
    resend: Callable[[str], None]
    """Send an agent's state, offer and call in hand again (RequestSnapshot)."""
    ready_refusal: Callable[[str], str | None] = lambda _agent_id: None
    """Why an agent may not go Ready now (its phone unreachable), or None."""
    voice: Voice | None = None
    """The calls' audio (recording paused); None: no line carries the voice."""
    voice_update: Callable[[str], None] = lambda _call_id: None
    """Queue a call's audio plan to be sent again, in turn with the effects."""


class CommandDispatcher:
    """Applies commands once each and answers them (module docstring)."""

    def __init__(self, parts: Parts, send: Callable[[str, Message], None]) -> None:
        self._parts = parts
        self._send = send
        self.memory = CommandMemory(COMMAND_MEMORY)
        self._topics: dict[str, tuple[str | None, str | None, str | None]] = {}
        """Command topic -> its reply topic, and the agent or supervisor it names."""
        self.answers = Answers()
        """The commands answered by their events, and the events that answer them."""
        self.campaign_control: CampaignControl | None = None
        """Carries out the supervisor's campaign commands (``SetCampaignState``,
        ``SetCampaignPacing``): the dialer's, when one runs in this engine
        (:mod:`cti.engine.campaigns`). It raises :class:`CtiError` to refuse one."""

    async def handle(self, topic: str, message: Message) -> None:
        """Apply one command from ``topic``, once per ``command_id``, and answer it."""
        # The answer goes to the topic's owner (the broker let only them publish there),
        # never to an id the sender wrote in the payload.
        known = self._topics.get(topic)
        if known is None:  # read once a topic: every agent sends on its own (issue 23)
            if len(self._topics) >= TOPICS_KEPT:
                self._topics.clear()
            known = self._topics[topic] = (
                topics.reply_topic(topic),
                topics.agent_of(topic),
                topics.supervisor_of(topic),
            )
        reply, agent, supervisor = known
        if is_command(message):
            sender, claimed = message.agent_id, agent
        elif is_supervisor_command(message):
            sender, claimed = message.supervisor_id, supervisor
        else:
            log_limits.warning(log, "%s: %s is not a command; ignored", topic, message.type)
            return
        if reply is None:
            log_limits.error(
                log, "%s: a command on a topic that is not a command topic; ignored", topic
            )
            return
        result = self.memory.get(message.command_id)
        if result is None:
            if claimed != sender:
                result = CommandResult(
                    command_id=message.command_id,
                    ok=False,
                    error=f"command from {sender!r} arrived on the topic of {claimed!r}",
                )
            else:
                result = await self.execute(message)
            self.memory.remember(message.command_id, result)
        self._send(reply, result)

    async def execute(self, message: Command) -> CommandResult:
        """Carry one command out; its result says what was wrong, if anything. The result
        is to be sent (:meth:`handle` does): an accept, reject or hang-up applied is noted
        in :attr:`answers`, which holds the result back at its turn if the event answered."""
        try:
            simple = router_input(message)
            if isinstance(simple, ri.AgentGoesReady):
                refusal = self._parts.ready_refusal(simple.agent_id)
                if refusal is not None:
                    raise CtiError(refusal)
            if simple is not None:
                self._parts.route(simple)
                self.answers.expect(message)  # before the effects task builds its event
            else:
                await self._carry_out(message)
        except CtiError as exc:
            return CommandResult(command_id=message.command_id, ok=False, error=str(exc))
        return applied(message.command_id)

    async def _carry_out(self, message: Command) -> None:
        parts = self._parts
        match message:
            case CompleteWrapUp(agent_id=a, call_id=call_id, disposition=d, note=note):
                await parts.runs.keep_wrap_up(message)
                parts.route(built(ri.AgentFinishesWrapUp, {
                    "kind": "agent_finishes_wrap_up", "agent_id": a, "call_id": call_id,
                    "disposition": d, "note": note,
                }))  # fmt: skip
            case (
                HoldCall()
                | ResumeCall()
                | MuteCall()
                | TransferCall()
                | ConsultCall()
                | CompleteConsult()
                | CancelConsult()
                | ConferenceCall()
            ):
                await parts.calls.control(message)
            case PauseRecording():
                self._pause_recording(message)
            case DialNumber(agent_id=a, number=number, queue=queue):
                await parts.calls.dial(a, number, queue, message.command_id)
            case SaveScriptRun():
                await parts.runs.keep_partial(message)
            case ScheduleCallback(
                number=number, local_time=at, time_zone=tz, queue=queue, for_agent=fa
            ):
                await parts.callbacks.schedule(number, at, tz, queue, for_agent=fa)
            case RequestSnapshot(agent_id=a):
                parts.resend(a)
            case (
                ChooseCustomer()
                | CreateCustomer()
                | SearchCustomers()
                | ShowCustomer()
                | AddServiceItem()
                | EscalateServiceItem()
            ):
                await parts.desk.run(message)
            case SetCampaignState() | SetCampaignPacing():
                if self.campaign_control is None:
                    raise CtiError("no dialer runs in this engine: campaigns run under `cti serve`")
                await self.campaign_control(message)

    def _pause_recording(self, message: PauseRecording) -> None:
        """Pause or resume the recording of the agent's call. Not a router input (not
        journaled): after an engine restart the recording goes on unpaused."""
        a, call_id, voice = message.agent_id, message.call_id, self._parts.voice
        if self._parts.calls.talking_on(call_id) != a:
            raise CtiError(
                f"agent {a!r} is not talking on call {call_id!r}: "
                "a recording is paused or resumed during the call"
            )
        if voice is None or not voice.recording(call_id):
            raise CtiError(f"call {call_id!r} is not being recorded: nothing to pause")
        voice.pause_recording(call_id, message.paused)
        self._parts.voice_update(call_id)
