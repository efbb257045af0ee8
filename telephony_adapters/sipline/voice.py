"""The voice of a SIP line with agent phones: every RTP stream through one media relay.

:class:`SipVoice` holds the line's :class:`~telephony_adapters.media.relay.MediaRelay`
(a port per leg: the caller's on answer or dial, each agent phone's on ring) and, per
call, the caller's leg, its :class:`~.phone_legs.PhoneLeg` s, the engine's last
:class:`~telephony_adapters.base.AudioPlan`, the last
:class:`~telephony_adapters.media.wiring.Wiring` and the caller as phones show it.

- :meth:`SipVoice.plan_audio`: :func:`~.phone_legs.phone_steps` rings phones and
  withdraws legs, then the wiring over the legs that are up (the caller answered with
  media, agent legs answered) is applied to the relay. Every leg that comes up or goes
  wires the call again.
- The user agent's effects come in from the line: ``MediaStart`` / ``MediaStop`` set a
  leg's remote and codec or close it (the caller's stop ends the call's agent legs and
  its recording); :class:`AgentLegProgress` becomes ``PhoneAnswered`` (a phone picked up
  on its own, not auto-answered), ``PhoneRefused`` (declined, rang out, failed: a leg we
  did not withdraw) or ``PhoneHungUp`` (the phone hung up).
- The relay's reports: the caller's DTMF goes to the line as today (the relay also
  passes it to the agent's phone); an answered phone silent for ``phone_silence_s`` is
  hung up and reported lost (``PhoneHungUp(lost=True)``).
- What a caller hears when no one talks to it (music, a prompt, the recording
  announcement): :mod:`.caller_sources`.
- Recordings (:mod:`.voice_recordings`): from the first plan with ``record``, fed by
  the call's taps (tap id = call id), closed at the call's end with a
  ``RecordingFinished`` event; the caller's message (``plan.message``, a tap on the
  caller's leg alone) likewise, with ``kind="message"``.
- Standing legs (:mod:`.standing`, :meth:`SipVoice.keep_phone`): a plan that rings an
  agent whose standing leg is up bridges the call into it and says ``PhoneAnswered`` at
  once; withdrawing that agent gives the leg back (silence); the phone ending it is
  ``PhoneDisconnected`` (and ``PhoneHungUp`` for the call it was in).
- A transfer to a number the trunk will not take by REFER: the caller bridged to a second
  trunk leg (:attr:`SipVoice.outs`, :mod:`.transfer_out`), out of the engine's plans.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cti import log_limits
from cti.errors import TelephonyError
from cti.protocol import (
    CallerHungUp,
    PhoneAnswered,
    PhoneDisconnected,
    PhoneHungUp,
    PhoneRefused,
)
from telephony_adapters.base import CALLER, AudioPlan
from telephony_adapters.media.bridge import DtmfHeard, LegSilent, PlayFinished, RecordFrame
from telephony_adapters.media.relay import MediaRelay, RelayHooks
from telephony_adapters.media.srtp import CryptoError, keyed
from telephony_adapters.media.wiring import Wiring, apply, leg_tap, wiring
from telephony_adapters.sipline.caller_sources import CallerHears, CallerSources
from telephony_adapters.sipline.effects import AgentLegProgress, MediaStart, MediaStop
from telephony_adapters.sipline.params import SipLineParams
from telephony_adapters.sipline.phone_legs import PhoneLeg, RingPhone, WithdrawLeg, phone_steps
from telephony_adapters.sipline.rtp import DtmfEvent
from telephony_adapters.sipline.sdp import MediaPlan, is_ip
from telephony_adapters.sipline.standing import StandingLeg, StandingLegs, StandingLine
from telephony_adapters.sipline.transfer_out import OutLegs
from telephony_adapters.sipline.useragent import leg_id
from telephony_adapters.sipline.voice_recordings import REASON_CHARS as _REASON_CHARS
from telephony_adapters.sipline.voice_recordings import VoiceRecordings
from telephony_adapters.sipline.voicemail import MESSAGE_LEG

log = logging.getLogger(__name__)

_PCMU = 0
_G711 = frozenset({(0, "PCMU"), (8, "PCMA")})
_NOT_ACCEPTABLE = 488


class LineSide(StandingLine, Protocol):
    """What the voice asks of its line: what standing legs ask (ring an agent's phone,
    end a leg, emit a line event), its name, and the caller's keys."""

    name: str

    def heard_dtmf(self, call_id: str, event: DtmfEvent) -> None:
        """A caller's key."""


@dataclass(slots=True)
class _Call:
    call_id: str
    caller_up: bool = False
    legs: dict[str, PhoneLeg] = field(default_factory=dict)
    """By agent id: the legs not over."""
    plan: AudioPlan = field(default_factory=AudioPlan)
    wiring: Wiring | None = None
    display: str = ""
    rung: dict[str, int] = field(default_factory=dict)
    """By agent id: its phone's legs so far (each gets an id of its own)."""
    hears: CallerHears = field(default_factory=CallerHears)


def caller_of(display: str) -> tuple[str, str]:
    """(name, number) of a ring's display, ``"name number"`` or ``"number"``."""
    name, _, number = display.strip().rpartition(" ")
    return name.strip(), number


def codec_refusal(plan: MediaPlan | None) -> str | None:
    """Why the relay cannot carry a phone's agreed media (None: it can, G.711)."""
    if plan is None or (plan.payload_type, plan.codec.upper()) in _G711:
        return None
    return f"no common codec (phone offered {plan.codec or '?'}/{plan.payload_type})"


def _said(effect: AgentLegProgress) -> str:
    """A refusal's reason as the desk shows it."""
    if effect.status == _NOT_ACCEPTABLE:
        return f"{effect.status} no common codec (the phone takes neither PCMU nor PCMA)"
    return f"{effect.status} {effect.outcome}" if effect.status else effect.outcome


class SipVoice:
    """The relay and the calls' audio of one SIP line (module docstring)."""

    def __init__(
        self, line: LineSide, params: SipLineParams, *, relay: MediaRelay | None = None
    ) -> None:
        self._line = line
        self.sources = CallerSources(line.name, params)
        self._silence_s = params.phone_silence_s
        hooks = RelayHooks(on_dtmf=self._dtmf, on_silent=self._silent, on_record=self._record,
                           on_play_finished=self._play_finished)  # fmt: skip
        self.relay = relay or MediaRelay(
            params.bind_host, params.rtp_port_min, params.rtp_port_max, hooks=hooks
        )
        if relay is not None:
            relay.hooks = hooks
        self.recordings = VoiceRecordings(line, Path(params.recordings_dir),
                                          params.recording_format)  # fmt: skip
        self.files = self.recordings.files
        self._calls: dict[str, _Call] = {}
        self._agent_legs: dict[str, tuple[str, str]] = {}
        """Leg id -> (call id, agent id), until the leg's media stops."""
        self._up: set[str] = set()
        """Agent legs whose media started."""
        self._withdrawn: set[str] = set()
        self.standing = StandingLegs(line, self.relay, silence_s=self._silence_s,
                                     withdrawn=self._withdrawn)  # fmt: skip
        self.outs = OutLegs()
        """Second trunk legs of transfers to a number (:mod:`.transfer_out`)."""

    # --- life ----------------------------------------------------------------------

    def start(self) -> None:
        self.relay.start()
        self.recordings.start()

    async def stop(self) -> None:
        self.recordings.close_all()
        self._calls.clear()
        self.standing.clear()
        await self.relay.close()
        await self.recordings.stop()

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._calls

    # --- ports ---------------------------------------------------------------------

    async def open(self, leg: str, *, prefer: int = 0) -> int:
        """A relay leg (its port: ``prefer`` if free) for a caller's call or an agent leg,
        hearing silence until the user agent's ``MediaStart`` and the call's wiring. Raises
        TelephonyError when the port range is exhausted: a phone's ring is then refused
        (by :meth:`_ring`); a caller being answered is refused (480) and reported gone."""
        try:
            return await self.relay.open_leg(leg, payload_type=_PCMU, prefer=prefer)
        except TelephonyError as exc:
            if leg not in self._agent_legs and leg in self._calls:
                self._refuse_caller(leg, str(exc))
            raise

    def _refuse_caller(self, call_id: str, reason: str) -> None:
        """No media for the caller we answer: the call is refused and over for the engine."""
        log.error("line %s: call %s cannot be answered: %s; refusing it", self._line.name,
                  call_id, reason)  # fmt: skip
        self.call_over(call_id)
        self._line.end_leg(call_id)
        self._line.emit(CallerHungUp(call_id=call_id, line=self._line.name))

    def close(self, leg: str) -> None:
        self.relay.close_leg(leg)

    def own_leg(self, leg: str, call_id: str, agent_id: str) -> None:
        """``leg`` is ``agent_id``'s phone on ``call_id`` (rung by the line)."""
        if leg not in self.standing:
            self._agent_legs[leg] = (call_id, agent_id)

    def owner(self, leg: str) -> tuple[str, str] | None:
        """(call id, agent id) of an agent leg in a call now; None: not one (a caller's
        leg, a withdrawn leg, a standing leg between calls)."""
        found = self._agent_legs.get(leg)
        if found is None or leg in self._withdrawn or found[0] not in self._calls:
            return None
        return found

    def take_up(self, leg_id: str, call_id: str, agent_id: str, n: int) -> None:
        """An answered leg to the agent's phone kept across a restart (:mod:`.voice_adopt`,
        its ``n``-th leg to that phone): the call's answered leg, up once its media
        starts, so that the engine's next plan bridges it without ringing."""
        call = self._calls.setdefault(call_id, _Call(call_id))
        call.legs[agent_id] = PhoneLeg(agent_id, leg_id, answered=True)
        call.rung[agent_id] = max(n, call.rung.get(agent_id, 0))
        self._agent_legs[leg_id] = (call_id, agent_id)

    # --- the engine's plans --------------------------------------------------------

    async def plan_audio(self, call_id: str, plan: AudioPlan, *, live: bool) -> None:
        """Make ``call_id`` sound as ``plan`` says (``live``: the caller is still on the
        line; a call that is not gets its agent legs ended)."""
        call = self._calls.get(call_id)
        if not live:
            self.call_over(call_id)
            if plan == AudioPlan():
                return
            raise TelephonyError(f"line {self._line.name!r}: no live call {call_id!r} to wire")
        if call is None:
            call = self._calls[call_id] = _Call(call_id)
        elif self.outs.bridged(call_id):
            return  # it talks to its second trunk leg: no agents' plans any more
        prompt = await self.sources.load(plan)
        call.plan = plan
        self.sources.take(call.hears, plan, prompt)
        call.display = next((r.display for r in plan.ring if r.display), call.display)
        for step in phone_steps(plan, call.legs, call.display):
            if isinstance(step, WithdrawLeg):
                self._withdraw(call, step.agent_id)
            elif self._calls.get(call_id) is call and not self._take_standing(call, step):
                await self._ring(call, step)
        if self._calls.get(call_id) is call:
            self._rewire(call)

    async def _ring(self, call: _Call, step: RingPhone) -> None:
        agent = step.agent_id
        n = call.rung[agent] = call.rung.get(agent, 0) + 1
        leg_name = leg_id(call.call_id, agent)
        leg = PhoneLeg(agent, leg_name if n == 1 else f"{leg_name}~{n}",
                       auto_answer=step.auto_answer)  # fmt: skip
        call.legs[agent] = leg
        self.own_leg(leg.leg_id, call.call_id, agent)
        try:
            await self._line.ring_agent(
                call.call_id, agent, caller=caller_of(step.display),
                auto_answer=step.auto_answer, leg=leg.leg_id,
            )  # fmt: skip
        except TelephonyError as exc:
            if call.legs.get(agent) is leg:
                del call.legs[agent]
            self._agent_legs.pop(leg.leg_id, None)
            log.warning("line %s: call %s: %s's phone not rung: %s", self._line.name,
                        call.call_id, agent, exc)  # fmt: skip
            self._line.emit(self._refused(call.call_id, agent, str(exc)))
            return
        if self._calls.get(call.call_id) is not call or call.legs.get(agent) is not leg:
            self._withdrawn.add(leg.leg_id)  # the call or the plan moved on meanwhile
            self._line.end_leg(leg.leg_id)

    def _withdraw(self, call: _Call, agent: str) -> None:
        leg = call.legs.pop(agent, None)
        if leg is None:
            return
        if self.standing.give_back(leg.leg_id):  # kept up between calls, never hung up
            self._agent_legs.pop(leg.leg_id, None)
            return
        self._withdrawn.add(leg.leg_id)
        self._up.discard(leg.leg_id)
        self.relay.close_leg(leg.leg_id)
        self._line.end_leg(leg.leg_id)

    def call_over(self, call_id: str) -> None:
        """The caller is gone: the call's phones are hung up, its recording closed."""
        call = self._calls.pop(call_id, None)
        if call is None:
            return
        for agent in list(call.legs):
            self._withdraw(call, agent)
        if (out := self.outs.drop(call_id)) is not None:
            self._line.end_leg(out)
        self.relay.close_leg(call_id)
        self.recordings.close(call_id)

    def _rewire(self, call: _Call) -> None:
        up = {CALLER: call.call_id} if call.caller_up else {}
        for agent, leg in call.legs.items():
            if leg.answered and leg.leg_id in self._up:
                up[agent] = leg.leg_id
        caller, sources = call.call_id, self.sources
        new = sources.aside(call.hears, caller, call.plan, wiring(call.plan, up))
        new = self.outs.rewired(caller, new)
        music = sources.players(call.hears, caller, call.plan)
        old = sources.restarted(call.hears, caller, new, call.wiring)
        try:
            apply(self.relay, new, old, music, tap=caller)
        except TelephonyError as exc:  # a leg that went meanwhile: wired again when told
            log.info("line %s: call %s not wired: %s", self._line.name, caller, exc)
        call.wiring = new
        self.recordings.follow(caller, call.plan)
        self._keep_message(call)

    def _keep_message(self, call: _Call) -> None:
        """The caller's message recorded while the plan names one (a tap on its leg)."""
        tap = leg_tap(call.call_id, MESSAGE_LEG)
        try:
            if self.recordings.message(call.call_id, call.plan.message) and call.caller_up:
                self.relay.tap(call.call_id, tap, "caller")
            else:
                self.relay.untap(call.call_id, tap)
        except TelephonyError as exc:  # the caller's leg went meanwhile
            log.info("line %s: call %s: message not tapped: %s", self._line.name,
                     call.call_id, exc)  # fmt: skip

    def _play_finished(self, done: PlayFinished) -> None:
        """The prompt or the announcement ended: the caller hears its music or silence,
        or joins its room."""
        call = self._calls.get(done.leg_id)
        if call is not None and self.sources.finished(call.hears):
            self._rewire(call)

    # --- the user agent's effects --------------------------------------------------

    def media_start(self, effect: MediaStart) -> None:
        """A leg's media was agreed (answer, re-INVITE): where to send and which codec."""
        leg, plan = effect.call_id, effect.plan
        if leg in self._withdrawn:
            return
        refusal = codec_refusal(plan)
        try:
            if refusal is not None:
                raise TelephonyError(refusal)
            self.relay.set_codec(leg, plan.payload_type, plan.telephone_event)
            self._keep_srtp(leg, plan)
        except TelephonyError as exc:
            if leg in self.standing:
                self._standing_over(leg, str(exc), end=True)
            elif not self._phone_failed(leg, str(exc)):
                log_limits.warning(log, "line %s: call %s: %s", self._line.name, leg, exc,
                                   key=self._line.name)  # fmt: skip
            return
        if plan.sends and not is_ip(plan.remote_host):
            log_limits.warning(log, "line %s: leg %s: RTP address %r is not an IP address; "
                               "sending no audio", self._line.name, leg, plan.remote_host[:60],
                               key=self._line.name)  # fmt: skip
        remote = (plan.remote_host, plan.remote_port) if plan.sends else None
        self.relay.set_remote(leg, remote if remote and is_ip(remote[0]) else None)
        expects = plan.direction in ("sendrecv", "recvonly") and plan.remote_port > 0
        standing = self.standing.media_started(leg, expects_audio=expects)
        owner = self._agent_legs.get(leg)
        if standing is not None:
            self._up.add(leg)
            found = self._calls.get(standing.call_id)
            if found is None:
                return
            call = found
        elif owner is None:
            if self.outs.call_of(leg) is not None:
                return  # a second trunk leg: wired when it answers
            call = self._calls.setdefault(leg, _Call(leg))
            call.caller_up = True
        else:
            self.relay.set_timeout(leg, self._silence_s if expects else None)
            self._up.add(leg)
            found = self._calls.get(owner[0])
            if found is None:
                return
            call = found
        self._rewire(call)

    def _keep_srtp(self, leg: str, plan: MediaPlan) -> None:
        """The leg's SRTP transform as agreed (:func:`~telephony_adapters.media.srtp.keyed`:
        kept when its keys did not change, new when the peer re-keyed). Raises
        TelephonyError for keys the transform cannot take."""
        try:
            srtp = keyed(plan.srtp_suite, plan.srtp_send_key, plan.srtp_recv_key,
                         self.relay.srtp_of(leg))  # fmt: skip
        except CryptoError as exc:
            raise TelephonyError(f"SRTP keys not usable: {exc}") from None
        self.relay.set_srtp(leg, srtp)

    def media_stop(self, effect: MediaStop) -> None:
        """A leg is over: an agent's (its call is wired again) or the caller's (the call
        is over)."""
        leg = effect.call_id
        self.relay.close_leg(leg)
        if leg in self.standing:
            self._standing_over(leg, "hung up on the phone")
            return
        owner = self._agent_legs.pop(leg, None)
        if owner is None:
            self.call_over(leg)
            return
        self._withdrawn.discard(leg)
        self._up.discard(leg)
        call = self._calls.get(owner[0])
        if call is not None:
            self._rewire(call)

    def caller_left(self, call_id: str) -> bool:
        """The far end of ``call_id`` hung up. False: it was a second trunk leg, not the
        engine's call; the caller bridged to it is hung up and the engine told."""
        out, partner = self.outs.left(call_id)
        if partner:
            self._line.end_leg(partner)
            self._line.emit(CallerHungUp(call_id=partner, line=self._line.name))
        elif not out:
            self.call_over(call_id)
        return not out

    def out_leg(self, call_id: str, *, bridged: bool = False) -> bool:
        """The call's second trunk leg rings or failed: wired again; ``bridged``: also the
        agents' legs end, the recording closes, the engine's plan is no longer the call's
        (:mod:`.transfer_out`). False: no such call."""
        call = self._calls.get(call_id)
        if call is not None and bridged:
            for agent in list(call.legs):
                self._withdraw(call, agent)
            self.recordings.close(call_id)
            call.plan = AudioPlan()
        if call is not None:
            self._rewire(call)
        return call is not None

    def leg_progress(self, effect: AgentLegProgress) -> None:
        """A phone answered, refused or hung up: for the engine, and the wiring."""
        if effect.call_id in self.standing:
            self._standing_progress(effect)
            return
        owner = self._agent_legs.get(effect.call_id)
        if owner is None or effect.call_id in self._withdrawn:
            return
        call_id, agent = owner
        call = self._calls.get(call_id)
        leg = call.legs.get(agent) if call is not None else None
        if call is None or leg is None or leg.leg_id != effect.call_id:
            return
        if effect.outcome == "answered":
            refusal = codec_refusal(effect.plan)
            if refusal is not None:
                self._phone_failed(leg.leg_id, refusal)
                return
            leg.answered = True
            self._line.emit(PhoneAnswered(call_id=call_id, agent_id=agent,
                                          auto=leg.auto_answer, line=self._line.name))  # fmt: skip
        elif effect.final:
            del call.legs[agent]
            self._up.discard(leg.leg_id)
            self.relay.close_leg(leg.leg_id)
            if effect.outcome == "ended":
                self._line.emit(PhoneHungUp(call_id=call_id, agent_id=agent,
                                            reason="hung up on the phone",
                                            line=self._line.name))  # fmt: skip
            elif effect.outcome != "cancelled":
                self._line.emit(self._refused(call_id, agent, _said(effect)))
        else:
            return
        self._rewire(call)

    def _phone_failed(self, leg_id: str, reason: str) -> bool:
        """The phone's leg cannot carry the call (its codec): logged, ended, and reported,
        refused if the engine has not taken it as answered, else lost (the caller goes
        back to its place). False: not a live agent leg."""
        owner = self._agent_legs.get(leg_id)
        call = self._calls.get(owner[0]) if owner is not None else None
        leg = call.legs.get(owner[1]) if call is not None and owner is not None else None
        if call is None or leg is None or leg.leg_id != leg_id:
            return False
        agent = leg.agent_id
        log.warning("line %s: call %s: %s's phone: %s; hanging it up", self._line.name,
                    call.call_id, agent, reason)  # fmt: skip
        self._withdraw(call, agent)
        if leg.answered or leg.auto_answer:  # the engine took it as answered
            self._line.emit(PhoneHungUp(call_id=call.call_id, agent_id=agent, reason=reason,
                                        lost=True, line=self._line.name))  # fmt: skip
        else:
            self._line.emit(self._refused(call.call_id, agent, reason))
        self._rewire(call)
        return True

    def _refused(self, call_id: str, agent: str, reason: str) -> PhoneRefused:
        return PhoneRefused(call_id=call_id, agent_id=agent, reason=reason[:_REASON_CHARS],
                            line=self._line.name)  # fmt: skip

    # --- the relay's reports -------------------------------------------------------

    def _dtmf(self, heard: DtmfHeard) -> None:
        if heard.leg_id in self._calls:  # the caller's key (an agent's goes to the caller)
            self._line.heard_dtmf(heard.leg_id, DtmfEvent(heard.key, heard.duration_ms, 0))

    def _silent(self, silent: LegSilent) -> None:
        if silent.leg_id in self.standing:  # only in a call: lost, the caller goes back
            reason = f"no audio from the phone for {self._silence_s:g} s"
            self._standing_over(silent.leg_id, reason, end=True, lost=True)
            return
        owner = self._agent_legs.get(silent.leg_id)
        if owner is None or silent.leg_id in self._withdrawn:
            return
        call = self._calls.get(owner[0])
        if call is None or owner[1] not in call.legs:
            return
        reason = f"no audio from the phone for {self._silence_s:g} s"
        log.warning("line %s: call %s: %s's phone: %s; hanging it up", self._line.name,
                    owner[0], owner[1], reason)  # fmt: skip
        self._withdraw(call, owner[1])
        self._line.emit(PhoneHungUp(call_id=owner[0], agent_id=owner[1], reason=reason,
                                    lost=True, line=self._line.name))  # fmt: skip
        self._rewire(call)

    def _record(self, frame: RecordFrame) -> None:
        self.recordings.add(frame)

    # --- standing legs (phone_mode = "persistent") -----------------------------------

    async def keep_phone(self, agent_id: str, keep: bool) -> None:
        """Keep (call the phone once, auto-answer) or release (BYE) the agent's standing
        leg (:mod:`.standing`). Raises TelephonyError when the phone cannot be called."""
        if keep:
            await self.standing.keep(agent_id)
            return
        standing = self.standing.release(agent_id)
        if standing is not None:
            self._up.discard(standing.leg_id)
            call = self._leave_call(standing)
            if call is not None:
                self._rewire(call)

    def _take_standing(self, call: _Call, step: RingPhone) -> bool:
        """Bridge the call into the agent's standing leg instead of ringing (answered
        at once, unless the ring answers by itself anyway). False: no leg up to take."""
        agent = step.agent_id
        leg_id = self.standing.take(agent, call.call_id)
        if leg_id is None:
            return False
        call.legs[agent] = PhoneLeg(agent, leg_id, auto_answer=step.auto_answer,
                                    answered=True)  # fmt: skip
        self._agent_legs[leg_id] = (call.call_id, agent)
        if not step.auto_answer:
            self._line.emit(PhoneAnswered(call_id=call.call_id, agent_id=agent,
                                          line=self._line.name))  # fmt: skip
        return True

    def _standing_progress(self, effect: AgentLegProgress) -> None:
        if effect.outcome == "answered":
            refusal = codec_refusal(effect.plan)
            if refusal is not None:
                self._standing_over(effect.call_id, refusal, end=True)
            else:
                self.standing.answered(effect.call_id)
        elif effect.final:
            ended = effect.outcome == "ended"
            self._standing_over(effect.call_id, "hung up on the phone" if ended else _said(effect))

    def _standing_over(
        self, leg_id: str, reason: str, *, end: bool = False, lost: bool = False
    ) -> None:
        """The standing leg is gone (``end``: we hang it up): the call it was in hears
        the phone hang up (``lost``: went silent), and the engine is told."""
        standing = self.standing.over(leg_id)
        if standing is None:
            return
        self._up.discard(leg_id)
        if end:
            self._withdrawn.add(leg_id)
            self._line.end_leg(leg_id)
        log.warning("line %s: agent %s: standing connection ended: %s", self._line.name,
                    standing.agent_id, reason)  # fmt: skip
        call = self._leave_call(standing)
        if call is not None:
            self._line.emit(PhoneHungUp(call_id=call.call_id, agent_id=standing.agent_id,
                                        reason=reason[:_REASON_CHARS], lost=lost,
                                        line=self._line.name))  # fmt: skip
            self._rewire(call)
        if not lost:
            self._line.emit(PhoneDisconnected(agent_id=standing.agent_id,
                                              reason=reason[:_REASON_CHARS],
                                              line=self._line.name))  # fmt: skip

    def _leave_call(self, standing: StandingLeg) -> _Call | None:
        """Take the standing leg out of the call it was in: that call, if it had it."""
        call = self._calls.get(standing.call_id) if standing.call_id else None
        standing.call_id = ""
        self._agent_legs.pop(standing.leg_id, None)
        leg = call.legs.get(standing.agent_id) if call is not None else None
        if call is None or leg is None or leg.leg_id != standing.leg_id:
            return None
        del call.legs[standing.agent_id]
        return call
