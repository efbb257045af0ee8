"""Call control from the desk: hold, mute, transfers, consultations, conferences and
the manual dial, carried out on the call's line and in the router.

The line acts first where it can refuse (hold, mute, conference: a
:class:`~cti.errors.TelephonyError` refuses the command, nothing changed); the router
next, and if it refuses, the line is put back as it was. Hold and mute are router
inputs once the line has done them (journaled: they survive a restart); whether a call
is held or its agent muted is the router's to say.

A transfer to a number is the line's (REFER on a SIP trunk): the command is answered
once the line has sent it, the caller stays with the agent meanwhile, and a task waits
for the line's outcome: transferred, the call ends for the agent (wrap-up); failed, the
agent's desk gets the reason (a :class:`CallControl` note) and the call goes on.

An agent's phone may ask a transfer itself (its transfer key, :class:`TransferAsked`):
it is carried out as the desk's :class:`TransferCall` by that agent, to the agent the
target names (its id, or the phone's extension the line knew; the agent consulted and
talking: the consultation completes), else to the queue of that name, else to the
number; the line hears how it went (200; 480 the target cannot take it now; 603
refused) and tells the phone, and the desk gets a refusal's reason as for its own.

A manual dial puts the agent on the call as the line places it, with the dialled
customer's card (outbound: when it was dialled, no wait or rank) and the queue's
``outbound_script``; the agent is told how it goes (:class:`DialProgress`: dialling,
ringing, then answered, no answer, busy or failed). A line that reports how its dials
end rings until it says (a task waits); the router then has the agent talk, or ends the
call at once and puts the agent back as it dialled (:class:`~queue_engine.inputs.DialEnds`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from cti import topics
from cti.clock import wall_time
from cti.engine.line_book import LineBook
from cti.engine.screen_pop import ScreenPops
from cti.errors import CtiError, RoutingError, TelephonyError
from cti.events import DialState, TransferAsked
from cti.models import AgentState, CallerInfo
from cti.protocol import (
    CallConnected,
    CallControl,
    CancelConsult,
    CompleteConsult,
    ConferenceCall,
    ConsultCall,
    CurrentCall,
    DialProgress,
    HoldCall,
    Message,
    MuteCall,
    ResumeCall,
    TransferCall,
)
from queue_engine import inputs as ri
from queue_engine.actions import ConsultChanged
from queue_engine.router import CallPhase, Router
from telephony_adapters.base import DialEnd, DialOutcome, TelephonyAdapter, TransferResult

log = logging.getLogger(__name__)

#: Longest wait for a line to say how a manual dial ended: its own ring time-out comes
#: first; this only ends a dial the line never reports (as no answer, hung up).
DIAL_OUTCOME_LIMIT_S = 300.0
#: The line's end of a dial as the agent and the router know it.
DIAL_ENDS: dict[DialEnd, ri.DialEndName] = {
    DialEnd.ANSWERED: "answered",
    DialEnd.MACHINE: "answered",  # the agent hears it and may leave a message
    DialEnd.BUSY: "busy",
    DialEnd.NO_ANSWER: "no_answer",
    DialEnd.REJECTED: "no_answer",  # declined: the detail says so
    DialEnd.FAILED: "failed",
}

ControlCommand = (
    HoldCall
    | ResumeCall
    | MuteCall
    | TransferCall
    | ConsultCall
    | CompleteConsult
    | CancelConsult
    | ConferenceCall
)


class CallController:
    """The desk's call-control commands (module docstring)."""

    def __init__(
        self,
        router: Router,
        route: Callable[[ri.AnyInput], None],
        send: Callable[[str, Message], None],
        lines: LineBook,
        pops: ScreenPops,
        identify: Callable[[str], Awaitable[CallerInfo]],
        now: Callable[[], float],
    ) -> None:
        self._router = router
        self._route = route
        self._send = send
        self._lines = lines
        self._pops = pops
        self._identify = identify
        self._now = now
        self._transfers_out: dict[str, asyncio.Task[TransferResult | None]] = {}
        """Call id -> the task waiting for its transfer to a number (one at a time)."""
        self._dials: dict[str, asyncio.Task[None]] = {}
        """Call id -> the task waiting for how the agent's dial ends."""
        self._asked: dict[str, asyncio.Task[None]] = {}
        """Call id -> the task carrying out a transfer an agent's phone asked."""

    def talking_on(self, call_id: str) -> str | None:
        """The agent talking on ``call_id``, if any."""
        try:
            if self._router.call_phase(call_id) is not CallPhase.TALKING:
                return None
        except RoutingError:
            return None  # not (or no longer) a call of the engine's
        return self._router.call_agent(call_id)

    def message(self, change: ConsultChanged) -> CallControl:
        """What the agent's desk shows of the call's control state."""
        return CallControl(
            agent_id=change.agent_id,
            call_id=change.call_id,
            held=self.is_held(change.call_id),
            muted=self.is_muted(change.call_id),
            consult_agent=change.target if change.state else "",
            consult_state=change.state,
            note=change.note,
        )

    def is_held(self, call_id: str) -> bool:
        """Whether the caller is on hold (by the agent, a consultation or a transfer)."""
        try:
            return self._router.call_held(call_id)
        except RoutingError:
            return False  # over (or never the engine's)

    def is_muted(self, call_id: str) -> bool:
        """Whether the line keeps the voice of the agent talking on the call from the caller."""
        agent = self.talking_on(call_id)
        return agent is not None and self._router.agent(agent).muted

    async def resume_if_held(self, call_id: str, line: TelephonyAdapter) -> None:
        """A transferred caller connected to its new agent: off hold."""
        agent = self.talking_on(call_id)
        if agent is not None and self.is_held(call_id):
            await line.resume(call_id)
            self._route(ri.AgentResumesCall(agent_id=agent, call_id=call_id))

    async def control(self, command: ControlCommand) -> None:
        """Carry out one call-control command (the agent must be talking on the call:
        its owner, not an agent consulted). Raises CtiError saying what was wrong."""
        a, call_id = command.agent_id, command.call_id
        self._check_in_hand(a, call_id)
        line = self._lines.line_for(call_id)
        consult, state = self._router.call_consult(call_id)
        match command:
            case HoldCall() | ResumeCall():
                held = isinstance(command, HoldCall)
                if consult is not None and not held:
                    raise CtiError(f"call {call_id!r}: end the consultation to take it off hold")
                await (line.hold if held else line.resume)(call_id)
                if held:
                    self._route(ri.AgentHoldsCall(agent_id=a, call_id=call_id))
                else:
                    self._route(ri.AgentResumesCall(agent_id=a, call_id=call_id))
            case MuteCall(muted=muted):
                await line.mute(call_id, muted)
                self._route(ri.AgentMutes(agent_id=a, call_id=call_id, muted=muted))
            case TransferCall(number=number) if number:
                await self._transfer_out(a, call_id, number, line)
                return
            case TransferCall():
                await self._transfer(command, line)
                return
            case ConsultCall(to_agent=to_agent):
                await self._consult(a, call_id, to_agent, line)
                return  # the router's ConsultChanged tells the agent
            case ConferenceCall():
                if state != "talking":
                    raise CtiError(f"call {call_id!r}: no agent consulted is talking to join")
                await line.conference(call_id)
                self._route(ri.AgentConferences(agent_id=a, call_id=call_id))
                return
            case CompleteConsult() | CancelConsult():
                await self._end_consult(command, state, line)
                return
        self._send(
            topics.agent_events(a), self.message(ConsultChanged(call_id, a, consult or "", state))
        )

    def _check_in_hand(self, agent_id: str, call_id: str) -> None:
        """Refuse unless ``agent_id`` talks on ``call_id`` (a dial answered): before the
        line is asked anything."""
        if self.talking_on(call_id) != agent_id:
            raise CtiError(f"agent {agent_id!r} is not talking on call {call_id!r}")
        if self._router.call_dialling(call_id):
            raise CtiError(f"call {call_id!r} is still ringing: wait for an answer")

    async def _transfer(self, command: TransferCall, line: TelephonyAdapter) -> None:
        a, call_id = command.agent_id, command.call_id
        held_here = False  # music for the wait, if the line can: held before it is handed on
        if line.capabilities.can_hold and not self.is_held(call_id):
            with contextlib.suppress(TelephonyError):
                await line.hold(call_id)
                self._route(ri.AgentHoldsCall(agent_id=a, call_id=call_id))
                held_here = True
        try:
            self._route(ri.AgentTransfers(agent_id=a, call_id=call_id, queue=command.queue,
                                          to_agent=command.to_agent))  # fmt: skip
        except CtiError:
            if held_here:
                await line.resume(call_id)
                self._route(ri.AgentResumesCall(agent_id=a, call_id=call_id))
            raise

    async def _transfer_out(
        self, agent_id: str, call_id: str, number: str, line: TelephonyAdapter
    ) -> None:
        """Send the caller out to ``number`` by the line (module docstring)."""
        if call_id in self._transfers_out:
            raise CtiError(f"call {call_id!r}: a transfer to a number is under way already")
        e164 = (await self._identify(number)).e164
        if e164 is None:
            raise CtiError(f"cannot transfer to {number!r}: not a phone number "
                           "(e.g. +86 138 0000 0001)")  # fmt: skip
        if not line.capabilities.can_transfer:
            raise CtiError(
                f"call {call_id!r}: line {line.name!r} cannot transfer to a number (it can "
                "neither REFER nor bridge a second leg out, docs/voice.md)"
            )
        await line.transfer(call_id, e164)  # TelephonyError: refused, nothing changed
        log.info("call %s: transfer to %s asked of line %s", call_id, e164, line.name)
        task = asyncio.create_task(self._transfer_ends(agent_id, call_id, e164, line),
                                   name=f"transfer:{call_id}")  # fmt: skip
        self._transfers_out[call_id] = task
        task.add_done_callback(lambda _t: self._transfers_out.pop(call_id, None))

    async def _transfer_ends(
        self, agent_id: str, call_id: str, e164: str, line: TelephonyAdapter
    ) -> TransferResult | None:
        try:
            result = await line.transfer_outcome(call_id)
        except TelephonyError as exc:
            result = TransferResult(call_id, False, str(exc))
        log.info("call %s: transfer to %s %s (%s)", call_id, e164,
                 "done" if result.transferred else "failed", result.detail)  # fmt: skip
        if self.talking_on(call_id) != agent_id:
            return None  # the call ended, or moved on meanwhile
        if result.transferred:
            with contextlib.suppress(CtiError):
                self._route(ri.AgentHangsUp(agent_id=agent_id, call_id=call_id))
            return result
        why = result.detail or "no reason given"
        self._note(agent_id, call_id,
                   f"transfer to {e164} failed ({why}); the caller is still with you")  # fmt: skip
        return result

    def _note(self, agent_id: str, call_id: str, note: str) -> None:
        consult, state = self._router.call_consult(call_id)
        told = self.message(ConsultChanged(call_id, agent_id, consult or "", state, note))
        self._send(topics.agent_events(agent_id), told)

    def transfer_asked(self, event: TransferAsked) -> None:
        """An agent's phone asked to transfer its call (module docstring): carried out
        in a task of its own (a transfer to a number waits for the line)."""
        if event.call_id in self._asked:
            log.info("call %s: a transfer from the phone is under way already", event.call_id)
            return
        task = asyncio.create_task(self._phone_transfer(event),
                                   name=f"phone-transfer:{event.call_id}")  # fmt: skip
        self._asked[event.call_id] = task
        task.add_done_callback(lambda _t: self._asked.pop(event.call_id, None))

    async def _phone_transfer(self, event: TransferAsked) -> None:
        a, call_id = event.agent_id, event.call_id
        try:
            line = self._lines.line_for(call_id)
        except CtiError as exc:
            log.info("call %s: transfer from %s's phone: %s", call_id, a, exc)
            return
        status, reason = await self._carry_out_asked(event)
        log.info("call %s: transfer from %s's phone to %r: %d %s", call_id, a, event.target,
                 status, reason)  # fmt: skip
        try:
            await line.transfer_asked_outcome(call_id, a, status, reason)
        except TelephonyError as exc:
            log.info("call %s: the phone not told how its transfer went: %s", call_id, exc)

    async def _carry_out_asked(self, event: TransferAsked) -> tuple[int, str]:
        """The desk's transfer for the phone's: (200, "") or (480 or 603, why)."""
        a, call_id = event.agent_id, event.call_id
        try:
            command = self._asked_command(event)
            await self.control(command)
        except CtiError as exc:
            agent = event.to_agent or event.target
            busy = isinstance(exc, RoutingError) and self._router.has_agent(agent)
            if self.talking_on(call_id) == a:
                self._note(a, call_id, f"transfer from your phone to {event.target!r} "
                           f"refused: {exc}")  # fmt: skip
            return (480 if busy else 603), str(exc)
        if isinstance(command, TransferCall) and command.number:
            waiting = self._transfers_out.get(call_id)
            result = await waiting if waiting is not None else None
            if result is None or not result.transferred:
                return 480, result.detail if result is not None else "the call moved on"
        return 200, ""

    def _asked_command(self, event: TransferAsked) -> TransferCall | CompleteConsult:
        a, call_id, target = event.agent_id, event.call_id, event.target
        agent = event.to_agent or (target if self._router.has_agent(target) else "")
        if agent == a:
            raise CtiError(f"{target!r} is your own phone: a call is not transferred to itself")
        if agent:
            consult, state = self._router.call_consult(call_id)
            if consult == agent and state in ("talking", "conference"):
                return CompleteConsult(agent_id=a, call_id=call_id)
            return TransferCall(agent_id=a, call_id=call_id, to_agent=agent)
        if target in self._router.queue_names:
            return TransferCall(agent_id=a, call_id=call_id, queue=target)
        try:
            return TransferCall(agent_id=a, call_id=call_id, number=target)
        except ValueError:  # not even the text of a number
            raise CtiError(f"{target!r} is no agent, queue or phone number") from None

    def cancel_transfers(self) -> None:
        """The engine stops: stop waiting for transfers' and dials' outcomes."""
        for task in [*self._transfers_out.values(), *self._dials.values(),
                     *self._asked.values()]:  # fmt: skip
            task.cancel()

    async def _consult(
        self, agent_id: str, call_id: str, to_agent: str, line: TelephonyAdapter
    ) -> None:
        was_held = self.is_held(call_id)
        await line.hold(call_id)
        try:  # the router holds the caller for the consultation
            self._route(ri.AgentConsults(agent_id=agent_id, call_id=call_id, to_agent=to_agent))
        except CtiError:
            if not was_held:
                await line.resume(call_id)
            raise

    async def _end_consult(
        self, command: CompleteConsult | CancelConsult, state: str, line: TelephonyAdapter
    ) -> None:
        a, call_id = command.agent_id, command.call_id
        was_held = self.is_held(call_id)  # the router takes the caller off hold
        if isinstance(command, CompleteConsult):
            self._route(ri.AgentCompletesConsult(agent_id=a, call_id=call_id))
        else:
            self._route(ri.AgentCancelsConsult(agent_id=a, call_id=call_id))
        if was_held or state == "conference":
            with contextlib.suppress(TelephonyError):  # the caller may have just left
                await line.resume(call_id)

    async def dial(self, agent_id: str, number: str, queue: str, command_id: str) -> None:
        """Manual dial (module docstring): the line places the call and the agent is on
        it with its outbound card (:class:`CurrentCall`) and script; the agent is told
        how it goes (:class:`DialProgress`). A line that cannot place it: ``failed``."""
        agent = self._router.agent(agent_id)
        if agent.state not in (AgentState.READY, AgentState.NOT_READY):
            raise CtiError(
                f"agent {agent_id!r} is {agent.state.value}: dial when Ready or Not Ready"
            )
        caller = await self._identify(number)
        e164 = caller.e164
        if e164 is None:
            raise CtiError(f"cannot dial {number!r}: not a phone number (e.g. +86 138 0000 0001)")
        call_id = f"dial-{command_id[:16]}"
        line = self._lines.dialling_line(call_id)
        self._progress(agent_id, call_id, e164, "dialling")
        try:
            await line.dial(e164, call_id=call_id)
        except TelephonyError as exc:
            self._progress(agent_id, call_id, e164, "failed", str(exc))
            return  # the agent stays as it was, told why
        self._lines[call_id] = line.name
        ringing = line.capabilities.reports_dial_outcomes
        try:
            self._route(ri.AgentDials(agent_id=agent_id, call_id=call_id, number=e164,
                                      caller=caller, queue=queue, ringing=ringing))  # fmt: skip
        except CtiError:
            with contextlib.suppress(TelephonyError):
                await line.hang_up(call_id)
            raise
        self._outbound_card(agent_id, call_id)
        if not ringing:  # all the line says is that it placed the call
            self._answered(agent_id, call_id, e164, "")
            return
        self._progress(agent_id, call_id, e164, "ringing")
        task = asyncio.create_task(self._dial_ends(agent_id, call_id, e164, line),
                                   name=f"dial:{call_id}")  # fmt: skip
        self._dials[call_id] = task
        task.add_done_callback(lambda _t: self._dials.pop(call_id, None))

    def _outbound_card(self, agent_id: str, call_id: str) -> None:
        """The dialled customer's card, with the queue's outbound script: when it was
        dialled instead of a wait and a rank."""
        now, wall = self._now(), wall_time()
        queue = self._router.call_queue(call_id)
        self._pops.call_scripts[call_id] = self._router.queue_config(queue).outbound_script
        placed = self._pops.offer(call_id, agent_id, queue, now, now, wall)
        pop = placed.pop.model_copy(update={"direction": "outbound", "dialled_wall": wall,
                                            "waited_s": 0.0, "priority_reason": ""})  # fmt: skip
        placed = placed.model_copy(update={"pop": pop})
        self._pops.current[agent_id] = placed
        self._send(topics.agent_events(agent_id),
                   CurrentCall(agent_id=agent_id, call_id=call_id, pop=pop,
                               dispositions=placed.dispositions,
                               agent_name=placed.agent_name))  # fmt: skip

    async def _dial_ends(
        self, agent_id: str, call_id: str, e164: str, line: TelephonyAdapter
    ) -> None:
        """Wait for the line to say how the dial ended, and carry it out."""
        try:
            async with asyncio.timeout(DIAL_OUTCOME_LIMIT_S):
                outcome = await line.dial_outcome(call_id)
        except TelephonyError as exc:
            outcome = DialOutcome(call_id, DialEnd.FAILED, str(exc))
        except TimeoutError:
            outcome = DialOutcome(call_id, DialEnd.NO_ANSWER, "the line never said how it ended")
            with contextlib.suppress(TelephonyError):
                await line.hang_up(call_id)
        end = DIAL_ENDS[outcome.end]
        log.info("call %s: dial to %s: %s (%s)", call_id, e164, end, outcome.detail)
        try:
            if not self._router.call_dialling(call_id):
                return  # the agent hung up while it rang: over already
        except CtiError:
            return  # over, and forgotten
        if end == "answered":  # the agent hears of it before its state changes
            self._answered(agent_id, call_id, e164, outcome.detail)
        else:
            self._progress(agent_id, call_id, e164, end, outcome.detail)
        self._route(ri.DialEnds(call_id=call_id, end=end))

    def _answered(self, agent_id: str, call_id: str, e164: str, detail: str) -> None:
        self._send(topics.agent_events(agent_id), CallConnected(agent_id=agent_id, call_id=call_id))
        self._progress(agent_id, call_id, e164, "answered", detail)

    def _progress(
        self, agent_id: str, call_id: str, number: str, state: DialState, detail: str = ""
    ) -> None:
        told = DialProgress(
            agent_id=agent_id, call_id=call_id, number=number, state=state, detail=detail
        )
        self._send(topics.agent_events(agent_id), told)
