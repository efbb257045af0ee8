"""The conversation on lines that carry the voice: who hears whom, phones, recordings.

The router decides who talks with a caller; this room turns its state into the line's
:class:`~telephony_adapters.base.AudioPlan` after every input that touches a call
(ring the offered agent's phone, bridge caller and agent, music while held, the
consultation's rooms, the conference, mute, recording), and the phones' events back
into router inputs (a phone that answers accepts the offer, a phone that declines
rejects it, a phone that hangs up hangs up the call). Plans are whole and idempotent:
the line gets the plan again if anything changed, never a diff. Lines that do not
carry the voice (the simulator, a modem with its handset) are left alone.

Agents with ``phone_mode = "persistent"`` have a standing connection to their phone
(:meth:`Voice.agent_state`): the lines are asked to keep it at login and whenever the
agent goes Ready (idempotent on the line; a phone that dropped it is called again), and
to release it at logout. A call offered to such an agent is bridged into it and the line
says ``PhoneAnswered`` at once, which accepts the offer as a phone answering would.

A phone's own transfer key (:class:`~cti.events.TransferAsked`) goes to ``asked``: the
desk's transfer carries it out (:meth:`cti.engine.call_control.CallController.transfer_asked`).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from cti.config import RecordShare, VoiceSettings
from cti.engine.line_book import LineBook
from cti.errors import CtiError, RoutingError, TelephonyError
from cti.events import TransferAsked
from cti.models import AgentState
from cti.protocol import (
    PhoneAnswered,
    PhoneDisconnected,
    PhoneHungUp,
    PhoneReachability,
    PhoneRefused,
    RecordingFinished,
)
from queue_engine import inputs as ri
from queue_engine.router import CallPhase, Router
from telephony_adapters.base import CALLER, AudioPlan, Ring

if TYPE_CHECKING:
    from cti.engine.caller_flows import CallerAudio

log = logging.getLogger(__name__)

PhoneEvent = (
    PhoneAnswered
    | PhoneRefused
    | PhoneHungUp
    | PhoneDisconnected
    | PhoneReachability
    | RecordingFinished
    | TransferAsked
)

#: Longest caller name put on a phone's screen (the rest is cut).
_DISPLAY_NAME_CHARS = 40
#: Router call kinds the line dials out for the agent talking on them (a manual dial, a
#: callback): that agent's phone is rung to answer by itself, showing whom it called.
_DIALLED_KINDS = frozenset({"manual", "callback"})


class Voice:
    """Audio plans for the calls on voice lines, and the agents' phones (module docstring)."""

    def __init__(
        self,
        router: Router,
        lines: LineBook,
        settings: Callable[[], VoiceSettings],
        route: Callable[[ri.AnyInput], None],
        *,
        seed: int = 0,
        recording_closed: Callable[[RecordingFinished], None] | None = None,
        persistent: Collection[str] = (),
        caller_audio: Callable[[str], CallerAudio | None] = lambda call_id: None,
        asked: Callable[[TransferAsked], None] = lambda event: None,
    ) -> None:
        self._router = router
        self._lines = lines
        self._settings = settings
        self._route = route
        self._rings: dict[str, dict[str, Ring]] = {}
        self._plans: dict[str, AudioPlan] = {}
        self._recorded: dict[str, bool] = {}
        self._paused: set[str] = set()
        self._connected: set[str] = set()
        self._heard: set[str] = set()
        """Calls on which an agent's phone has answered (the audio is connected)."""
        """Calls whose caller has talked to an agent (its leg is answered)."""
        self.reachable: dict[str, bool] = {}
        """Agent id -> whether its phone can be rung, as the lines last said."""
        self._recording_closed = recording_closed
        """Takes each closed recording to the store (:mod:`cti.engine.recordings`)."""
        self._random = random.Random(seed)
        self._caller_audio = caller_audio
        self._asked = asked
        """Carries out a transfer a phone asked (the desk's transfer, :mod:`.call_control`)."""
        """What a caller in a flow hears while no agent talks with it (:mod:`.caller_flows`)."""
        self.persistent = set(persistent)
        """Agents whose phone is kept connected from login to logout (``phone_mode``)."""
        self._kept: set[str] = set()
        """Persistent agents logged in (their lines were asked to keep the phone)."""
        self.active = any(line.capabilities.carries_voice for line in lines.lines.values())
        """Whether any line carries the voice (if none, this room does nothing)."""

    # --- the router's side -----------------------------------------------------------

    def offered(self, call_id: str, agent_id: str) -> None:
        """The router offers ``call_id`` to ``agent_id``: ring its phone."""
        self._rings.setdefault(call_id, {})[agent_id] = Ring(agent_id, self._display(call_id))

    def offer_over(self, call_id: str, agent_id: str) -> None:
        """The offer was withdrawn, accepted or refused: stop ringing that phone."""
        rings = self._rings.get(call_id)
        if rings is not None:
            rings.pop(agent_id, None)
            if not rings:
                del self._rings[call_id]

    def pause_recording(self, call_id: str, paused: bool) -> None:
        """The desk paused (or resumed) the call's recording (card details being said)."""
        if paused:
            self._paused.add(call_id)
        else:
            self._paused.discard(call_id)

    def recording(self, call_id: str) -> bool:
        """Whether ``call_id`` is recorded now: on a line that carries the voice, in
        conversation, and chosen by its queue's share."""
        try:
            carries = self._lines.line_for(call_id).capabilities.carries_voice
        except CtiError:
            return False
        return carries and self.plan(call_id).record

    async def update(self, call_id: str) -> None:
        """Send the call's plan to its line if it changed (a call that is over gets the
        empty plan once, which ends its agents' legs, and is forgotten)."""
        try:
            line = self._lines.line_for(call_id)
        except CtiError:
            self._forget(call_id)
            return
        if not line.capabilities.carries_voice:
            return
        plan = self.plan(call_id)
        if self._plans.get(call_id) == plan:
            return
        self._plans[call_id] = plan
        try:
            await line.plan_audio(call_id, plan)
        except TelephonyError as exc:
            log.info("call %s: audio plan not carried out: %s", call_id, exc)
        if plan == AudioPlan():
            self._forget(call_id)

    def plan(self, call_id: str) -> AudioPlan:
        """Who should hear whom on ``call_id`` now, from the router's state."""
        heard = self._caller_audio(call_id)
        try:
            phase = self._router.call_phase(call_id)
            agent = self._router.call_agent(call_id)
        except RoutingError:
            if heard is None:
                return AudioPlan()  # over
            return AudioPlan(prompt=heard.prompt, message=heard.message)  # in the menu
        ring = tuple(self._rings.get(call_id, {}).values())
        queue = self._router.call_queue(call_id)
        music_file = self._settings().queue_music.get(queue, self._settings().hold_music)
        if phase is not CallPhase.TALKING or agent is None:
            # A caller who was talking and waits again (a transfer) hears the queue's music,
            # as does one answered by its flow; after the conversation (wrap-up) there is
            # no caller left to play to.
            waits = phase in (CallPhase.QUEUED, CallPhase.OFFERED)
            answered = call_id in self._connected or (heard is not None and heard.music)
            music = frozenset({CALLER}) if waits and answered else frozenset()
            if heard is None or not waits:
                return AudioPlan(ring=ring, music=music, music_file=music_file)
            return AudioPlan(ring=ring, music=music, music_file=music_file,
                             prompt=heard.prompt, message=heard.message)  # fmt: skip
        self._connected.add(call_id)
        if self._router.call_kind(call_id) in _DIALLED_KINDS and agent not in {
            r.agent_id for r in ring
        }:
            ring = (*ring, Ring(agent, self._display(call_id), auto_answer=True))
        rooms, music = self._rooms(call_id, agent)
        muted = frozenset({agent}) if self._router.agent(agent).muted else frozenset()
        record = self._records(call_id, queue)
        return AudioPlan(
            ring=ring, rooms=rooms, music=music, music_file=music_file, muted=muted,
            record=record, record_paused=record and call_id in self._paused,
        )  # fmt: skip

    def _rooms(self, call_id: str, agent: str) -> tuple[tuple[frozenset[str], ...], frozenset[str]]:
        """The rooms of a connected call and who hears music."""
        consulted, state = self._router.call_consult(call_id)
        if consulted is not None and state == "conference":
            return (frozenset({CALLER, agent, consulted}),), frozenset()
        if consulted is not None and state == "talking":
            return (frozenset({agent, consulted}),), frozenset({CALLER})
        if self._router.call_held(call_id):  # by the agent, or a consultation ringing
            return (frozenset({agent}),), frozenset({CALLER})
        return (frozenset({CALLER, agent}),), frozenset()

    def _records(self, call_id: str, queue: str) -> bool:
        """Whether the call is recorded: decided once per call, by its queue's share."""
        decided = self._recorded.get(call_id)
        if decided is None:
            share: RecordShare = self._settings().record_queues.get(queue, self._settings().record)
            if share == "all":
                decided = True
            elif share == "none":
                decided = False
            else:
                decided = self._random.random() * 100 < share
            self._recorded[call_id] = decided
        return decided

    def _display(self, call_id: str) -> str:
        """The caller as a phone's screen shows it: name and number."""
        try:
            caller = self._router.call_caller(call_id)
        except RoutingError:
            return ""
        number = caller.e164 or caller.ani or "unknown"
        name = caller.customer.name if caller.customer is not None else ""
        name = name[:_DISPLAY_NAME_CHARS]
        return f"{name} {number}" if name else number

    def _forget(self, call_id: str) -> None:
        self._plans.pop(call_id, None)
        self._rings.pop(call_id, None)
        self._recorded.pop(call_id, None)
        self._paused.discard(call_id)
        self._connected.discard(call_id)
        self._heard.discard(call_id)

    # --- standing connections (phone_mode = "persistent") ------------------------------

    async def agent_state(self, agent_id: str, state: AgentState) -> None:
        """``agent_id`` entered ``state``: a persistent agent's phone is kept connected
        from its login (and again on each Ready, in case it dropped) to its logout."""
        if not self.active or agent_id not in self.persistent:
            return
        if state is AgentState.LOGGED_OUT:
            if agent_id in self._kept:
                self._kept.discard(agent_id)
                await self._keep(agent_id, keep=False)
            return
        login = agent_id not in self._kept
        self._kept.add(agent_id)
        if login or state is AgentState.READY:
            await self._keep(agent_id, keep=True)

    async def _keep(self, agent_id: str, *, keep: bool) -> None:
        for line in self._lines.lines.values():
            if not line.capabilities.carries_voice:
                continue
            try:
                await line.keep_phone(agent_id, keep)
            except TelephonyError as exc:
                log.info("agent %s: line %s: standing connection not %s: %s", agent_id,
                         line.name, "kept" if keep else "released", exc)  # fmt: skip

    def _disconnected(self, agent_id: str, reason: str) -> None:
        """The phone ended its standing connection (or never took it): the agent cannot
        be offered calls without ringing, so it is made Not Ready until it goes Ready."""
        log.warning("agent %s: the phone's standing connection ended (%s)", agent_id,
                    reason or "no reason given")  # fmt: skip
        router = self._router
        if router.has_agent(agent_id) and router.agent(agent_id).state is AgentState.READY:
            self._route(ri.AgentGoesNotReady(agent_id=agent_id, reason="phone disconnected"))

    # --- the phones' side ------------------------------------------------------------

    def phone_event(self, event: PhoneEvent) -> None:
        """A phone answered, refused or hung up, became (un)reachable, or a recording
        closed. Raises CtiError when the router refuses what the phone did."""
        match event:
            case PhoneAnswered(call_id=call_id, agent_id=agent, auto=auto):
                self._heard.add(call_id)
                if not auto:  # an auto-answer follows an accept: nothing left to accept
                    self.offer_over(call_id, agent)
                    self._route(ri.AgentAccepts(agent_id=agent, call_id=call_id))
            case PhoneRefused(call_id=call_id, agent_id=agent, reason=reason):
                log.info("call %s: %s's phone did not take it (%s)", call_id, agent, reason)
                self.offer_over(call_id, agent)
                if self._offered_to(call_id, agent):
                    self._route(ri.AgentRejects(agent_id=agent, call_id=call_id))
            case PhoneHungUp(call_id=call_id, agent_id=agent, reason=reason, lost=True):
                self._phone_lost(call_id, agent, reason)
            case PhoneHungUp(call_id=call_id, agent_id=agent, reason=reason):
                log.info("call %s: %s's phone left (%s)", call_id, agent, reason or "hung up")
                self._route(ri.AgentHangsUp(agent_id=agent, call_id=call_id))
            case PhoneDisconnected(agent_id=agent, reason=reason):
                self._disconnected(agent, reason)
            case PhoneReachability(agent_id=agent, reachable=reachable, contact=contact):
                self._reachability(agent, reachable, contact)
            case TransferAsked():
                self._asked(event)
            case RecordingFinished():
                self._recording_over(event)

    def _recording_over(self, event: RecordingFinished) -> None:
        if self._recording_closed is not None:
            self._recording_closed(event)
        elif event.error:
            log.warning("call %s: recording failed: %s", event.call_id, event.error)

    def _phone_lost(self, call_id: str, agent: str, reason: str) -> None:
        """The phone went away mid-call: the caller goes back to its place in its queue
        (not dropped), and the agent, whose phone failed, is made Not Ready."""
        log.warning("call %s: %s's phone was lost (%s); the caller goes back to the queue",
                    call_id, agent, reason or "no reason given")  # fmt: skip
        try:
            queue = self._router.call_queue(call_id)
        except RoutingError:
            return  # over already
        if self._router.call_agent(call_id) == agent:
            self._route(ri.AgentTransfers(agent_id=agent, call_id=call_id, queue=queue))
        self.reachable[agent] = False
        if self._router.agent(agent).state is AgentState.READY:
            self._route(ri.AgentGoesNotReady(agent_id=agent, reason="phone lost"))

    def _offered_to(self, call_id: str, agent_id: str) -> bool:
        """Whether ``call_id`` rings ``agent_id`` (an offer, or a consultation)."""
        try:
            if self._router.call_consult(call_id) == (agent_id, "ringing"):
                return True
            return (
                self._router.call_phase(call_id) is CallPhase.OFFERED
                and self._router.call_agent(call_id) == agent_id
            )
        except RoutingError:
            return False

    def _reachability(self, agent_id: str, reachable: bool, contact: str) -> None:
        was = self.reachable.get(agent_id)
        self.reachable[agent_id] = reachable
        if was != reachable:
            log.info("agent %s: phone %s%s", agent_id,
                     "reachable" if reachable else "unreachable",
                     f" at {contact}" if contact else "")  # fmt: skip
        if reachable or not self._router.has_agent(agent_id):
            return
        if self._router.agent(agent_id).state is AgentState.READY:
            self._route(ri.AgentGoesNotReady(agent_id=agent_id, reason="phone unreachable"))

    def audio_connected(self, call_id: str) -> bool:
        """Whether an agent's phone is connected on ``call_id`` (always, on a line that
        carries no voice: the agent's own handset or the simulator)."""
        try:
            line = self._lines.line_for(call_id)
        except CtiError:
            return False
        return not line.capabilities.carries_voice or call_id in self._heard

    def phone_reachable(self, agent_id: str) -> bool | None:
        """For the agent's state: None when no line carries the voice."""
        return self.reachable.get(agent_id, False) if self.active else None

    def ready_refusal(self, agent_id: str) -> str | None:
        """Why ``agent_id`` may not go Ready now (None: it may)."""
        if not self.active or not self._settings().require_phone:
            return None
        if self.reachable.get(agent_id, False):
            return None
        return (
            f"agent {agent_id!r}: your phone is not reachable (register your softphone or "
            "check its address); a call offered now could not ring it"
        )
