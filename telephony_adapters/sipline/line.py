"""The SIP line: :class:`SipLine`, the asyncio shell around the sans-I/O user agent.

It owns a UDP socket, passes every datagram to :class:`~.useragent.UserAgent` with the
loop's time, sleeps until the agent's next deadline, and carries out the agent's
effects: datagrams out, line events to the engine, RTP streams (:mod:`.media`), and the
outcomes of dials and transfers (kept in :attr:`SipLine.outcomes` and
:attr:`SipLine.transfers`, and logged). Nothing a peer sends can stop it.

DTMF keys (RFC 4733 telephone-events on an answered call's RTP stream) become
:class:`~cti.protocol.DtmfReceived` line events, and also go to ``on_dtmf``, the log
and :attr:`SipLine.dtmf`. Beyond the adapter contract it offers :meth:`SipLine.hold`,
:meth:`SipLine.resume` and :meth:`SipLine.transfer` (capabilities ``can_hold`` and
``can_transfer``).

A line with agent phones (HA1 credentials or fixed phone URIs) carries the voice
(``carries_voice``): its RTP goes through one media relay, and the engine's audio plans,
the phones' answers and refusals, music and recordings are :mod:`.voice`'s; hold, mute
and conference are then the plans' (no re-INVITE to the trunk).

A REFER from an agent's phone (its transfer key) becomes a ``TransferAsked`` line event
(:mod:`.phone_refer`); the engine's :meth:`SipLine.transfer_asked_outcome` is told to the
phone. A REFER from the trunk is refused (603 with a Warning, docs/sip.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

from cti import log_limits, protocol
from cti.clock import RetryBackoff, wait_for_timer
from cti.errors import TelephonyError
from cti.protocol import CallArrived, CallerHungUp, DtmfReceived
from telephony_adapters.base import (
    AudioPlan,
    DialEnd,
    DialOutcome,
    LineCapabilities,
    LineEvent,
    TelephonyAdapter,
    TransferResult,
)
from telephony_adapters.changes import Changes
from telephony_adapters.media.srtp import SrtpLeg
from telephony_adapters.sipline.dialog_store import DialogStore, dialogs_path_for
from telephony_adapters.sipline.media import DtmfListener, MediaPorts
from telephony_adapters.sipline.message import REASONS
from telephony_adapters.sipline.params import SipLineParams
from telephony_adapters.sipline.phone_auth import PhoneSettings
from telephony_adapters.sipline.phone_refer import (
    PhoneRefers,
    Refusal,
    dialog_named,
    left_by_transfer,
)
from telephony_adapters.sipline.rtp import DTMF_EVENTS, DtmfEvent
from telephony_adapters.sipline.transaction import Addr, Timers
from telephony_adapters.sipline.transfer_out import bridge_out, refer_refused
from telephony_adapters.sipline.transports import SipTransports, advertised
from telephony_adapters.sipline.useragent import (
    AgentLegProgress,
    Datagram,
    DialProgress,
    Effect,
    MediaStart,
    MediaStop,
    PhoneReachability,
    TransferOutcome,
    TransferRequested,
    UaSettings,
    UserAgent,
    leg_id,
)
from telephony_adapters.sipline.voice import SipVoice
from telephony_adapters.sipline.voice_adopt import RestoredLegs, restored_legs, take_up_legs

log = logging.getLogger(__name__)

#: The user agent's final dial outcomes as the line contract's :class:`DialEnd`.
#: ``cancelled``: we hung up (gave up ringing) before an answer.
_DIAL_ENDS = {
    "answered": DialEnd.ANSWERED,
    "busy": DialEnd.BUSY,
    "no_answer": DialEnd.NO_ANSWER,
    "cancelled": DialEnd.NO_ANSWER,
    "rejected": DialEnd.REJECTED,
    "unauthorized": DialEnd.FAILED,
    "failed": DialEnd.FAILED,
}
#: Our dials whose end :meth:`SipLine.dial_outcome` can still tell.
_DIALS_KEPT = 10_000
_PhoneEffect = PhoneReachability | AgentLegProgress | TransferRequested
_UP = frozenset({"connecting", "confirmed"})
"""Call states of an answered call (a second ``answer`` is a no-op)."""


class SipLine(TelephonyAdapter):
    """A SIP trunk or PBX connection over UDP (see the module docstring).

    ``media``: open RTP ports and send silence (off only for load tests whose peer
    sends no media). ``timers``: RFC 3261 T1/T2/T4 (tests shorten them).
    ``dial_timeout_s``: an outbound call ringing this long is cancelled (no answer).
    ``transfer_timeout_s``: a transfer with no final NOTIFY by then has failed.
    """

    def __init__(
        self,
        settings: SipLineParams,
        *,
        media: bool = True,
        timers: Timers | None = None,
        dial_timeout_s: float = 60.0,
        on_dtmf: DtmfListener | None = None,
        transfer_timeout_s: float = 60.0,
    ) -> None:
        self.name = settings.name
        voice = media and bool(settings.phone_ha1 or settings.phones)
        self.capabilities = LineCapabilities(
            can_dial=True, can_transfer=True, can_hold=True, reports_dial_outcomes=True,
            can_mute=voice, can_conference=voice, carries_voice=voice,
        )  # fmt: skip
        self.settings = settings
        self._timers = timers or Timers()
        self._dial_timeout_s = dial_timeout_s
        self._on_dtmf = on_dtmf
        self._media_enabled = media
        self._events: asyncio.Queue[LineEvent] = asyncio.Queue()
        self._ua: UserAgent | None = None
        self._net: SipTransports | None = None
        self._media: MediaPorts | None = None
        self._voice: SipVoice | None = None
        """The media relay and the calls' audio (``carries_voice``), else ``_media``."""
        self._wake = asyncio.Event()
        self._timer_retry = RetryBackoff(first_s=0.1, most_s=5.0)
        self._timer_task: asyncio.Task[None] | None = None
        self.outcomes: dict[str, DialProgress] = {}
        """The latest outcome of each outbound call (``ringing``, then the final one)."""
        self.transfers: dict[str, list[TransferOutcome]] = {}
        self._transfer_timeout_s = transfer_timeout_s
        self._transfer_from: dict[str, int] = {}
        """Call id -> where its transfer under way starts in :attr:`transfers`."""
        self._transferred: dict[str, None] = {}
        """Calls that left by a transfer (the last 1,000): hanging one up is no error."""
        self.phones: dict[str, PhoneReachability] = {}
        """The last reachability reported of each agent's phone (see :mod:`.registrar`)."""
        self.agent_legs: dict[str, AgentLegProgress] = {}
        """The latest progress of each agent leg (:meth:`ring_agent`), by leg id."""
        self.dtmf: list[tuple[str, str]] = []
        """(call id, key) of every DTMF key received, in order (the last 1,000)."""
        self._changes = Changes()
        self._dials: dict[str, DialOutcome | None] = {}
        """Our dials: None while under way, then how each ended (the last 10,000)."""
        self._dialogs_path: Path | None = None
        self._dialogs: DialogStore | None = None
        self._refers = PhoneRefers(settings.name, settings.phones)
        """The agents' phones' REFERs the engine has not answered yet."""

    # --- life ----------------------------------------------------------------------

    @property
    def ua(self) -> UserAgent:
        if self._ua is None:
            raise TelephonyError(f"line {self.name!r} is not started")
        return self._ua

    @property
    def local_address(self) -> Addr:
        """Where the line listens (the port is the real one when configured as 0)."""
        if self._net is None:
            raise TelephonyError(f"line {self.name!r} is not started")
        return self._net.local_address

    def address(self, transport: str) -> Addr:
        """Where the line listens for ``udp``, ``tcp`` or ``tls``."""
        if self._net is None:
            raise TelephonyError(f"line {self.name!r} is not started")
        return self._net.address(transport)

    async def start(self) -> None:
        if self._net is not None:
            return
        s = self.settings
        loop = asyncio.get_running_loop()
        net = SipTransports(s, self._received)
        try:
            await net.open()
        except TelephonyError:
            await net.close()
            raise
        self._net = net
        host, port = self.local_address
        public = s.public_host or advertised(host)
        if self.capabilities.carries_voice:
            self._voice = SipVoice(self, s)
            self._voice.start()
        else:
            self._media = MediaPorts(
                s.bind_host,
                s.rtp_port_min,
                s.rtp_port_max,
                enabled=self._media_enabled,
                on_dtmf=self.heard_dtmf,
            )
        for name in (s.registrar, s.outbound_proxy):
            await net.resolve_later(name)
        self._ua = UserAgent(
            UaSettings(
                line=s.name,
                host=public,
                port=port,
                username=s.username,
                password=s.password,
                registrar=s.registrar,
                register_expires_s=s.register_expires_s,
                outbound_proxy=s.outbound_proxy,
                codecs=s.codecs,
                keepalive_s=s.keepalive_s,
                dial_timeout_s=self._dial_timeout_s,
                timers=self._timers,
                phones=_phone_settings(s),
                accept_refer=True,
                refer_from_trunk=False,
                srtp=s.srtp,
                phone_srtp=s.phone_srtp,
            )
        )
        net.host = self.ua.core.host
        self.ua.core.table.stamp = net.stamp
        self.ua.core.table.failover = net.failover
        net.unsent = self._unsent
        if self._dialogs_path is not None:
            self._dialogs = DialogStore(self._dialogs_path)
            bad = self.ua.restore(self._dialogs.load(), loop.time())
            self._dialogs.write({}, bad)
        self._timer_task = loop.create_task(self._run_timers(), name=f"sip:{self.name}:timers")
        log.info("line %s: SIP on %s %s (advertised as %s)", self.name, host,
                 ", ".join(f"{t} {p}" for t, p in net.ports.items()), public)  # fmt: skip
        self._apply(self.ua.start(loop.time()))

    async def stop(self) -> None:
        if self._net is None:
            return
        loop = asyncio.get_running_loop()
        with contextlib.suppress(Exception):
            self._apply(self.ua.stop(loop.time()))
        if self._timer_task is not None:
            self._timer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer_task
        if self._media is not None:
            await self._media.close_all()
        if self._voice is not None:
            await self._voice.stop()
        net, self._net = self._net, None
        await net.close()
        dialogs, self._dialogs = self._dialogs, None
        if dialogs is not None:
            dialogs.close()

    # --- the adapter contract ------------------------------------------------------

    async def events(self) -> AsyncIterator[LineEvent]:
        while True:
            yield await self._events.get()

    async def answer(self, call_id: str) -> None:
        ua = self.ua
        if ua.call_state(call_id) in _UP:
            return  # answered already (for the caller's flow): the agent's accept joins it
        if ua.call_state(call_id) != "ringing":
            state = ua.call_state(call_id) or "not live"
            raise TelephonyError(
                f"line {self.name!r}: cannot answer call {call_id!r}: it is {state}"
            )
        port = await self._open_media(call_id)
        try:
            effects = ua.answer(call_id, port, self._now())
        except TelephonyError:
            self._close_media(call_id)
            raise
        self._apply(effects)

    async def hang_up(self, call_id: str) -> None:
        bridged = self._voice is not None and self._voice.outs.bridged(call_id)
        if call_id in self._transferred and (bridged or not self.ua.live(call_id)):
            return  # gone by the transfer: the engine ends its side after it
        self._apply(self.ua.hang_up(call_id, self._now()))

    async def dial(self, number: str, *, call_id: str | None = None) -> str:
        """Send the INVITE and return; the outcome follows in :attr:`outcomes` (a failed
        call also ends with ``CallerHungUp``)."""
        call_id = call_id or self.ua.next_call_id()
        if self.ua.live(call_id):
            raise TelephonyError(f"line {self.name!r}: call {call_id!r} is already live")
        port = await self._open_media(call_id)
        try:
            effects = self.ua.dial(number, call_id, port, self._now())
        except TelephonyError:
            self._close_media(call_id)
            raise
        self._dials[call_id] = None
        while len(self._dials) > _DIALS_KEPT:
            del self._dials[next(iter(self._dials))]
        self._apply(effects)
        return call_id

    async def ring_agent(
        self,
        call_id: str,
        agent_id: str,
        *,
        caller: tuple[str, str] = ("", ""),
        auto_answer: bool = False,
        timeout_s: float | None = None,
        leg: str = "",
    ) -> str:
        """Ring the agent's phone for call ``call_id``; returns the leg's call id (``leg``,
        or ``<call_id>~<agent_id>``). Its progress follows in :attr:`agent_legs`;
        :meth:`hang_up` of the leg withdraws or ends it. Raises :class:`TelephonyError`
        if the phone is unreachable."""
        leg = leg or leg_id(call_id, agent_id)
        if self._voice is not None:
            self._voice.own_leg(leg, call_id, agent_id)
        port = await self._open_media(leg)
        try:
            effects = self.ua.ring_agent(
                call_id,
                agent_id,
                port,
                self._now(),
                caller=caller,
                auto_answer=auto_answer,
                timeout_s=timeout_s,
                leg=leg,
            )
        except TelephonyError:
            self._close_media(leg)
            raise
        self._apply(effects)
        return leg

    async def dial_outcome(self, call_id: str) -> DialOutcome:
        """Wait for the final response to our INVITE: 2xx answered; 486/600 busy;
        408/480, or our CANCEL (after ``dial_timeout_s``, or :meth:`hang_up` while it
        rings) no answer; 403/603 rejected; refused credentials, any other status or no
        response at all failed. ``detail`` is the status and the user agent's word."""
        if call_id not in self._dials:
            raise TelephonyError(f"line {self.name!r} did not dial {call_id!r} (or long ago)")
        while (outcome := self._dials.get(call_id)) is None:
            if call_id not in self._dials:
                raise TelephonyError(f"line {self.name!r}: dial {call_id!r} was forgotten")
            await self._changes.next()
        return outcome

    async def hold(self, call_id: str) -> None:
        """Put a connected call on hold (re-INVITE with ``a=sendonly``); on a line that
        carries the voice the audio plan holds it (music), the trunk is not asked."""
        if self._voice is None:
            self._apply(self.ua.hold(call_id, self._now(), hold=True))
        else:
            self._live(call_id, "hold")

    async def resume(self, call_id: str) -> None:
        """Take a call off hold (re-INVITE with ``a=sendrecv``; see :meth:`hold`)."""
        if self._voice is None:
            self._apply(self.ua.hold(call_id, self._now(), hold=False))
        else:
            self._live(call_id, "resume")

    async def mute(self, call_id: str, muted: bool) -> None:
        """The audio plan mutes the agent (``can_mute`` with the voice only)."""
        if self._voice is None:
            await super().mute(call_id, muted)
        self._live(call_id, "mute")

    async def conference(self, call_id: str) -> None:
        """The audio plan mixes the three (``can_conference`` with the voice only)."""
        if self._voice is None:
            await super().conference(call_id)
        self._live(call_id, "conference")

    async def plan_audio(self, call_id: str, plan: AudioPlan) -> None:
        """Ring, bridge, hold, mix and record the call as ``plan`` says (see :mod:`.voice`)."""
        if self._voice is None:
            await super().plan_audio(call_id, plan)
            return
        await self._voice.plan_audio(call_id, plan, live=self.ua.live(call_id))

    async def keep_phone(self, agent_id: str, keep: bool) -> None:
        """Keep or release the agent's standing leg (``carries_voice``; :mod:`.standing`)."""
        if self._voice is None:
            await super().keep_phone(agent_id, keep)
            return
        await self._voice.keep_phone(agent_id, keep)

    def _live(self, call_id: str, action: str) -> None:
        if not self.ua.live(call_id):
            raise TelephonyError(f"line {self.name!r}: no live call {call_id!r} to {action}")

    async def transfer(self, call_id: str, target: str) -> None:
        """Blind transfer by REFER; progress in :attr:`transfers`, the end from
        :meth:`transfer_outcome`. When the far end reports success our leg ends (no
        ``CallerHungUp``, as for :meth:`hang_up`)."""
        effects = self.ua.transfer(call_id, target, self._now())
        if self._voice is not None:  # for a second leg, if the trunk will not (.transfer_out)
            self._voice.outs.asked(call_id, self.ua.transfer_uri(call_id, target))
        self._transfer_from[call_id] = len(self.transfers.get(call_id, []))
        self._apply(effects)

    async def transfer_outcome(self, call_id: str) -> TransferResult:
        """The end of the REFER asked last: a final NOTIFY (2xx: transferred), the REFER
        refused (405, 501, 603...), our leg ended by the far end after accepting it
        (transferred), or nothing final within ``transfer_timeout_s`` (failed; with the
        voice, a refused or unfinished REFER is tried as a second leg, :mod:`.transfer_out`)."""
        start = self._transfer_from.get(call_id)
        if start is None:
            raise TelephonyError(f"line {self.name!r}: no transfer of {call_id!r} under way")
        try:
            async with asyncio.timeout(self._transfer_timeout_s):
                await self.wait_for(lambda: self._transfer_end(call_id, start) is not None)
        except TimeoutError:
            if (call := self.ua.calls.get(call_id)) is not None:
                call.transferring = False  # a late NOTIFY no longer ends our leg
            result = TransferResult(call_id, False, f"no final NOTIFY within "
                                    f"{self._transfer_timeout_s:g} s")  # fmt: skip
        else:
            result = self._transfer_end(call_id, start) or TransferResult(call_id, False)
        if self._transfer_from.get(call_id) == start:
            del self._transfer_from[call_id]
        progress = self.transfers.get(call_id, [])[start:]
        if not result.transferred and self._voice is not None and refer_refused(progress):
            result = await bridge_out(self, self._voice, call_id, result.detail)
        if result.transferred:
            self._transferred[call_id] = None
            while len(self._transferred) > 1000:
                del self._transferred[next(iter(self._transferred))]
        return result

    def _transfer_end(self, call_id: str, start: int) -> TransferResult | None:
        progress = self.transfers.get(call_id, [])[start:]
        final = next((t for t in progress if t.final), None)
        if final is not None:
            said = f"{final.status} {REASONS.get(final.status, '')}".strip()
            if final.status == 0:
                said = "the far end ended the transfer without a status"
            return TransferResult(call_id, 200 <= final.status < 300, said)
        if not self.ua.live(call_id):  # the far end took the call and ended our leg
            return TransferResult(call_id, True, "our leg ended by the far end")
        return None

    def keep_state_beside(self, journal: Path) -> None:
        """Save the line's calls in a file beside the engine's journal (see
        :mod:`.dialog_store`), so that after a crash :meth:`adopt` can take them up."""
        self._dialogs_path = dialogs_path_for(journal, self.name)

    async def adopt(self, call_ids: Sequence[str]) -> Sequence[str]:
        """Take up the calls an earlier process saved (see :meth:`UserAgent.adopt`):
        named callers still ringing ring on, named calls that are up stay up (their RTP
        restarts on its port), callers the engine never heard of are announced again;
        everything else is ended cleanly (BYE, CANCEL or 480), and the engine ends its
        side. With the voice, the answered legs to phones in kept calls are kept too
        (:mod:`.voice_adopt`). Returns the callers' calls kept."""
        ua = self.ua
        legs = restored_legs(ua) if self._voice is not None else RestoredLegs()
        kept, effects = ua.adopt(legs.named(call_ids), self._now())
        self._apply(effects)
        callers, taken = list(kept), list[str]()
        if self._voice is not None:
            callers, taken = take_up_legs(self._voice, self, legs, kept)
        for call_id in (*callers, *taken):
            if ua.call_state(call_id) == "confirmed":
                await self._resume_media(call_id)
        if callers:
            log.info("line %s: %d calls taken up after a restart", self.name, len(callers))
        return callers

    async def _resume_media(self, call_id: str) -> None:
        """An adopted call's RTP on the port it had (a re-INVITE tells the peer of
        another one when that port is taken)."""
        try:
            port = await self._open_media(call_id, prefer=self.ua.calls[call_id].rtp_port)
        except TelephonyError as exc:
            log_limits.warning(log, "line %s: call %s kept without media: %s", self.name,
                               call_id, exc, key=self.name)  # fmt: skip
            return
        self._apply(self.ua.resume_media(call_id, port, self._now()))

    # --- waiting (for tests and tools) --------------------------------------------

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` holds (checked after every effect; see
        :meth:`~telephony_adapters.changes.Changes.until`)."""
        await self._changes.until(predicate)

    # --- internals -------------------------------------------------------------------

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _received(self, data: bytes, source: Addr) -> None:
        ua = self._ua
        if ua is None:
            return
        self._apply(ua.receive(data, source, self._now()))

    def _unsent(self, data: bytes) -> None:
        if self._ua is not None:
            self._apply(self._ua.transport_failed(data, self._now()))

    def _apply(self, effects: list[Effect]) -> None:
        if self._dialogs is not None and self._ua is not None:
            # Saved before the engine hears of a call: it can always be taken up.
            self._dialogs.write(*self._ua.saved_changes())
        for effect in effects:
            try:
                self._carry_out(effect)
            except Exception:
                log_limits.exception(
                    log,
                    "line %s: could not carry out %r; going on",
                    self.name,
                    effect,
                    key=self.name,
                )
        self._wake.set()
        self._changes.notify()

    def _carry_out(self, effect: Effect) -> None:
        if isinstance(effect, Datagram):
            self._send(effect)
        elif isinstance(effect, CallArrived):
            self._events.put_nowait(effect)
        elif isinstance(effect, CallerHungUp):
            if self._voice is None or self._voice.caller_left(effect.call_id):
                self._events.put_nowait(effect)  # not a second trunk leg's (.transfer_out)
        elif isinstance(effect, MediaStart | MediaStop):
            self._media_effect(effect)
        elif isinstance(effect, DialProgress):
            self._dial_progress(effect)
        elif isinstance(effect, TransferOutcome):
            self.transfers.setdefault(effect.call_id, []).append(effect)
            log.info("line %s: call %s transfer: %d", self.name, effect.call_id, effect.status)
        elif isinstance(effect, _PhoneEffect):
            self._phone_effect(effect)

    def _phone_effect(self, effect: _PhoneEffect) -> None:
        """What the agents' phones did: reachable or not, a leg's progress, a REFER."""
        if isinstance(effect, PhoneReachability):
            self.phones[effect.agent_id] = effect
            self._events.put_nowait(protocol.PhoneReachability(
                agent_id=effect.agent_id, reachable=effect.reachable,
                contact=effect.contact[:200], line=self.name,
            ))  # fmt: skip
        elif isinstance(effect, TransferRequested):
            self._phone_refer(effect)
        else:
            if effect.final:
                self._refers.over(effect.call_id)
            self.agent_legs[effect.call_id] = effect
            while len(self.agent_legs) > _DIALS_KEPT:
                del self.agent_legs[next(iter(self.agent_legs))]
            if self._voice is not None:
                self._voice.leg_progress(effect)

    def _phone_refer(self, effect: TransferRequested) -> None:
        """An agent's phone asks to transfer its call: the engine is told, or the phone
        is refused at once (:mod:`.phone_refer`)."""
        voice, core = self._voice, self.ua.core
        owner_of = voice.owner if voice is not None else lambda leg: None
        asked = self._refers.asked(effect, owner_of(effect.call_id),
                                   lambda r: dialog_named(core.by_dialog, r, owner_of))  # fmt: skip
        if isinstance(asked, Refusal):
            log.info("line %s: leg %s: the phone's transfer to %s refused: %d %s", self.name,
                     effect.call_id, effect.target, asked.status, asked.reason)  # fmt: skip
            self._apply(self.ua.refer_outcome(effect.call_id, asked.status, self._now(),
                                              asked.reason))  # fmt: skip
        else:
            self._events.put_nowait(asked)

    async def transfer_asked_outcome(
        self, call_id: str, agent_id: str, status: int, reason: str = ""
    ) -> None:
        """The engine's answer to a ``TransferAsked``: told to the phone (NOTIFY)."""
        leg = self._refers.outcome_leg(call_id, agent_id)
        if leg is not None and self._ua is not None:
            self._apply(self._ua.refer_outcome(leg, status, self._now(), reason))

    def _media_effect(self, effect: MediaStart | MediaStop) -> None:
        if isinstance(effect, MediaStop):
            if self._voice is not None:
                self._voice.media_stop(effect)
            self._close_media(effect.call_id)
        elif self._voice is not None:
            self._voice.media_start(effect)
        elif self._media is not None:
            self._media.start(effect.call_id, effect.plan)

    def _dial_progress(self, effect: DialProgress) -> None:
        self.outcomes[effect.call_id] = effect
        if effect.final and effect.call_id in self._dials and not self._dials[effect.call_id]:
            said = f"{effect.status} {effect.outcome}" if effect.status else "no response"
            end = _DIAL_ENDS.get(effect.outcome, DialEnd.FAILED)
            self._dials[effect.call_id] = DialOutcome(effect.call_id, end, said)
        if len(self.outcomes) > 10_000:
            del self.outcomes[next(iter(self.outcomes))]

    def _send(self, datagram: Datagram) -> None:
        if self._net is not None:
            self._net.send(datagram.data, datagram.dest)

    async def _open_media(self, call_id: str, prefer: int = 0) -> int:
        if self._voice is not None:
            return await self._voice.open(call_id, prefer=prefer)
        assert self._media is not None
        return await self._media.open(call_id, prefer=prefer)

    def srtp_of(self, call_id: str) -> SrtpLeg | None:
        """The SRTP transform of a leg's RTP (its counters), None for plain RTP."""
        if self._voice is not None:
            return self._voice.relay.srtp_of(call_id)
        return None if self._media is None else self._media.srtp_of(call_id)

    def _close_media(self, call_id: str) -> None:
        if self._voice is not None:
            self._voice.close(call_id)
        elif self._media is not None:
            self._media.close(call_id)

    # --- what the voice asks of the line (:class:`.voice.LineSide`) -------------------

    def emit(self, event: LineEvent) -> None:
        self._events.put_nowait(event)
        self._changes.notify()

    def end_leg(self, leg: str) -> None:
        """CANCEL or BYE an agent leg; one that is over already is no error. A phone
        whose REFER the engine has not answered hears first how it ended."""
        if (owner := self._refers.ending(leg)) is not None and self._ua is not None:
            caller = owner[0]
            said = left_by_transfer(self._ua.live(caller), self.transfers.get(caller, []))
            status, reason = (200, "") if said is None else (said.status, said.reason)
            self._apply(self._ua.refer_outcome(leg, status, self._now(), reason))
        if self._ua is not None and self._ua.live(leg):
            self._apply(self._ua.hang_up(leg, self._now()))

    def heard_dtmf(self, call_id: str, event: DtmfEvent) -> None:
        log.info(
            "line %s: call %s: DTMF %r (%d ms)", self.name, call_id, event.key, event.duration_ms
        )
        self.dtmf.append((call_id, event.key))
        del self.dtmf[:-1000]
        if len(event.key) == 1 and event.key in DTMF_EVENTS:  # not "flash" or unknown ones
            self._events.put_nowait(DtmfReceived(call_id=call_id, key=event.key, line=self.name))
        self._changes.notify()
        if self._on_dtmf is not None:
            self._on_dtmf(call_id, event)

    async def _run_timers(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            deadline = self.ua.next_deadline()
            delay = None if deadline is None else max(0.0, deadline - loop.time())
            await wait_for_timer(self._wake, delay, self._timer_retry, loop.time())
            try:
                effects = self.ua.advance(loop.time())
                self._timer_retry.succeeded()
            except Exception:
                self._timer_retry.failed(loop.time())
                log_limits.exception(
                    log, "line %s: timers failed; going on", self.name, key=self.name
                )
                continue
            if effects:
                self._apply(effects)
                self._wake.clear()


def _phone_settings(params: SipLineParams) -> PhoneSettings | None:
    """The registrar's settings, if the line has phone credentials or fixed phones."""
    if not params.phone_ha1 and not params.phones:
        return None
    return PhoneSettings(
        realm=params.phone_realm or "cti-desk",
        ha1=params.phone_ha1,
        phones=params.phones,
        qualify_s=params.phone_qualify_s,
        algorithms=params.phone_algorithms,
    )
