"""The outbound dialer: runs a campaign against the engine service. The asyncio shell.

Every decision is made by the sans-I/O cores: :class:`queue_engine.pacing.Pacer` says how
many numbers to dial, :class:`queue_engine.campaign.Campaign` which leads (checking
do-not-call lists and calling hours before every dial) and what happens after each
outcome. :class:`CampaignRunner` only carries them out:

1. every ``tick_s`` (and whenever an agent frees up or a dial ends) it reads the
   campaign's agents from the router, asks the pacer how many to dial, takes that many
   leads from the campaign, notes each attempt in the store, and places the calls;
2. a dial ends as a person, a machine, busy, no answer or failed
   (:class:`~queue_engine.pacing.DialResult`). A person is routed like an arrival to the
   campaign's queue (:meth:`cti.engine.service.EngineService.route_answered_outbound`), whose
   agents get the screen-pop with the queue's script. If no agent is on the call within
   the answer window (2 s) the dialer hangs up (a real line would play the
   campaign's message first) and the call counts as abandoned;
3. the agent's disposition comes back with the call record and sets callbacks and
   do-not-call entries.

**Lines.** :class:`DialingLine` wraps any line that can dial (the simulator trunk, the
SIP line, the modem). Its ``answer()`` of a call it placed and a person answered is a
no-op (the call is up already); the far end leaving a dial that never reached the
engine (busy, unanswered, or gone before it was routed) is the dialer's business, not
the engine's, so that ``CallerHungUp`` is kept from the engine; everything else is the
wrapped line's. How a dial ends is decided by ``place``: :func:`dial_through_line` for
a real line (it waits for the line's own outcome,
:meth:`~telephony_adapters.base.TelephonyAdapter.dial_outcome`, when the line reports
one; else ``dial()`` returning is a person), or a simulated far end
(:mod:`simulators.dialer_sim`). A modem has one line and cannot dial while its call is
up: give it ``max_lines=1`` and preview or progressive mode only (:data:`MODEM_MODES`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cti import log_limits
from cti.clock import wall_time
from cti.engine.service import EngineService
from cti.errors import CtiError, TelephonyError
from cti.models import AgentState, CallDetailRecord
from cti.protocol import CallerHungUp
from cti.store.campaigns import CampaignSettings, CampaignStore
from queue_engine import inputs as ri
from queue_engine.campaign import Campaign, Dial, Lead, Outcome
from queue_engine.pacing import (
    Capacity,
    Decision,
    DialMode,
    DialResult,
    Pacer,
    PacingSettings,
    agents_for_service_level,
    dialer_agents,
)
from queue_engine.router import CallPhase
from telephony_adapters.base import (
    AudioPlan,
    DialEnd,
    DialOutcome,
    LineEvent,
    TelephonyAdapter,
    TransferResult,
)

log = logging.getLogger(__name__)

#: What a one-line modem can do: the agent is there before the number is dialled.
MODEM_MODES = frozenset({DialMode.PREVIEW, DialMode.PROGRESSIVE})

#: A line's dial outcome as the pacer's result. A call declined by the person or refused
#: by the network is retried later, like one nobody answered.
DIAL_RESULTS: dict[DialEnd, DialResult] = {
    DialEnd.ANSWERED: DialResult.HUMAN,
    DialEnd.MACHINE: DialResult.MACHINE,
    DialEnd.BUSY: DialResult.BUSY,
    DialEnd.NO_ANSWER: DialResult.NO_ANSWER,
    DialEnd.REJECTED: DialResult.NO_ANSWER,
    DialEnd.FAILED: DialResult.FAILED,
}
#: Calls a :class:`DialingLine` remembers after their dial (to keep their hang-ups).
_PLACED_KEPT = 10_000

Place = Callable[[TelephonyAdapter, str, str, float], Awaitable[DialResult]]
"""How a dial ends: ``place(line, number, call_id, ring_timeout_s)``. For a person or
a machine the call is then up on ``line`` under ``call_id``."""


async def dial_through_line(
    line: TelephonyAdapter, number: str, call_id: str, ring_timeout_s: float
) -> DialResult:
    """Dial on a real line and wait for how it ends.

    A line that reports its dials' outcomes (SIP, modem, simulator trunk) is asked for
    it (:data:`DIAL_RESULTS`); for another, ``dial()`` returning means answered by a
    person, and its :class:`~cti.errors.TelephonyError` is read for busy or no answer.
    Ringing past ``ring_timeout_s`` is no answer: the call is hung up (CANCEL on SIP).
    """
    try:
        async with asyncio.timeout(ring_timeout_s):
            await line.dial(number, call_id=call_id)
            if line.capabilities.reports_dial_outcomes:
                outcome = await line.dial_outcome(call_id)
                result = DIAL_RESULTS[outcome.end]
                if outcome.end in (DialEnd.REJECTED, DialEnd.FAILED):
                    log.info("dial of %s: %s (%s)", call_id, outcome.end.value, outcome.detail)
                return result
    except TimeoutError:
        with contextlib.suppress(TelephonyError):
            await line.hang_up(call_id)
        return DialResult.NO_ANSWER
    except TelephonyError as exc:
        text = str(exc).casefold()
        if "busy" in text:
            return DialResult.BUSY
        if "no answer" in text or "no carrier" in text or "timeout" in text:
            return DialResult.NO_ANSWER
        if "machine" in text:
            return DialResult.MACHINE
        log.info("dial of %s failed: %s", call_id, exc)
        return DialResult.FAILED
    return DialResult.HUMAN


class DialingLine(TelephonyAdapter):
    """A line that can dial, as the dialer uses it (module docstring)."""

    def __init__(
        self,
        line: TelephonyAdapter,
        *,
        place: Place = dial_through_line,
        max_lines: int | None = None,
        modes: frozenset[DialMode] = frozenset(DialMode),
    ) -> None:
        if not line.capabilities.can_dial:
            raise TelephonyError(f"line {line.name!r} cannot dial out: no campaign can use it")
        self.line = line
        self.name = line.name
        self.capabilities = line.capabilities
        self.max_lines = max_lines
        self.modes = modes
        self._place = place
        self._up: set[str] = set()
        """Calls placed here that are up (answered) and not yet answered by the engine."""
        self._placed: OrderedDict[str, str] = OrderedDict()
        """Dials the engine does not know (yet): ``dialling``, ``answered`` (up, not yet
        routed), ``gone`` (the far end left before it was routed) or ``over`` (it
        never connected). Their ``CallerHungUp`` is kept from the engine."""

    async def place(self, number: str, call_id: str, ring_timeout_s: float) -> DialResult:
        """Dial ``number`` as ``call_id`` and return how the dial ended. A person's call
        is then up here: hand it to the engine and tell :meth:`routed`."""
        self._note(call_id, "dialling")
        try:
            result = await self._place(self.line, number, call_id, ring_timeout_s)
        except BaseException:
            self._note(call_id, "over")
            raise
        if result in (DialResult.HUMAN, DialResult.MACHINE):
            if self._placed.get(call_id) == "dialling":
                self._note(call_id, "answered")
                self._up.add(call_id)
            # else: the far end left as it answered; ``routed`` says so
        else:
            self._note(call_id, "over")
        return result

    def routed(self, call_id: str) -> bool:
        """The engine has the answered call ``call_id`` now (or gave up on it): from
        here its hang-up goes to the engine. False if the far end left before."""
        state = self._placed.pop(call_id, None)
        if state == "gone":
            self._up.discard(call_id)
            return False
        return True

    def _note(self, call_id: str, state: str) -> None:
        self._placed[call_id] = state
        self._placed.move_to_end(call_id)
        while len(self._placed) > _PLACED_KEPT:
            self._placed.popitem(last=False)

    async def _events(self) -> AsyncIterator[LineEvent]:
        async for event in self.line.events():
            if isinstance(event, CallerHungUp) and event.call_id in self._placed:
                state = self._placed[event.call_id]
                if state == "over":
                    del self._placed[event.call_id]  # the dial's outcome said it all
                elif state in ("dialling", "answered"):
                    self._placed[event.call_id] = "gone"
                continue
            yield event

    def keep_state_beside(self, journal: Path) -> None:
        self.line.keep_state_beside(journal)

    async def start(self) -> None:
        await self.line.start()

    async def stop(self) -> None:
        await self.line.stop()

    def events(self) -> AsyncIterator[LineEvent]:
        return self._events()

    async def answer(self, call_id: str) -> None:
        if call_id in self._up:
            self._up.discard(call_id)  # the far end answered already: bridging is all
            return
        await self.line.answer(call_id)

    async def hang_up(self, call_id: str) -> None:
        self._up.discard(call_id)
        if call_id in self._placed:
            self._note(call_id, "over")
        await self.line.hang_up(call_id)

    async def adopt(self, call_ids: Sequence[str]) -> Sequence[str]:
        return await self.line.adopt(call_ids)

    async def dial(self, number: str, *, call_id: str | None = None) -> str:
        return await self.line.dial(number, call_id=call_id)

    async def dial_outcome(self, call_id: str) -> DialOutcome:
        return await self.line.dial_outcome(call_id)

    # The line's call control, as its capabilities (copied above) promise.

    async def hold(self, call_id: str) -> None:
        await self.line.hold(call_id)

    async def resume(self, call_id: str) -> None:
        await self.line.resume(call_id)

    async def transfer(self, call_id: str, target: str) -> None:
        await self.line.transfer(call_id, target)

    async def transfer_outcome(self, call_id: str) -> TransferResult:
        return await self.line.transfer_outcome(call_id)

    async def plan_audio(self, call_id: str, plan: AudioPlan) -> None:
        await self.line.plan_audio(call_id, plan)  # a voice line bridges its dials too

    async def keep_phone(self, agent_id: str, keep: bool) -> None:
        await self.line.keep_phone(agent_id, keep)

    async def mute(self, call_id: str, muted: bool) -> None:
        await self.line.mute(call_id, muted)

    async def conference(self, call_id: str) -> None:
        await self.line.conference(call_id)


@dataclass(frozen=True, slots=True)
class InboundDemand:
    """What inbound needs of blended agents: its rate, handle time and SL goal."""

    rate_per_hour: float
    aht_s: float
    sl_target_s: float = 20.0
    sl_goal: float = 0.8

    @property
    def agents(self) -> int:
        return agents_for_service_level(
            self.rate_per_hour, self.aht_s, self.sl_target_s, self.sl_goal
        )


@dataclass(slots=True)
class _Attempt:
    dial: Dial
    attempt_id: int
    dialled_at: float
    answered_at: float | None = None
    ended: bool = False
    """Its outcome is in the campaign."""


class CampaignRunner:
    """Runs one campaign until cancelled (module docstring)."""

    def __init__(
        self,
        service: EngineService,
        settings: CampaignSettings,
        campaign: Campaign,
        line: DialingLine,
        *,
        store: CampaignStore | None = None,
        campaign_id: int = 0,
        inbound: InboundDemand | None = None,
        tick_s: float = 1.0,
        state_every_s: float = 10.0,
    ) -> None:
        if settings.mode not in line.modes:
            raise CtiError(
                f"campaign {settings.name!r}: line {line.name!r} cannot dial in "
                f"{settings.mode.value} mode (it can: "
                f"{', '.join(sorted(m.value for m in line.modes))})"
            )
        if settings.queue not in service.router.queue_names:
            raise CtiError(
                f"campaign {settings.name!r}: no queue named {settings.queue!r} "
                f"(queues: {', '.join(service.router.queue_names)})"
            )
        self.service = service
        self.settings = settings
        self.campaign = campaign
        self.line = line
        self.store = store
        self.campaign_id = campaign_id
        self.inbound = inbound
        self.tick_s = tick_s
        self.state_every_s = state_every_s
        self.pacer = Pacer(self._pacing(settings))
        self.paused = False
        self.last_decision: Decision | None = None
        self.dials = 0
        self._attempts: dict[str, _Attempt] = {}
        """Call id -> its attempt, from the dial until the call record (or the end)."""
        self._ids = 0
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def _pacing(self, settings: CampaignSettings) -> PacingSettings:
        pacing = settings.pacing.model_copy(update={"mode": settings.mode})
        if self.line.max_lines is not None:
            limit = min(self.line.max_lines, pacing.max_lines or self.line.max_lines)
            pacing = pacing.model_copy(update={"max_lines": limit})
        return pacing

    def change_settings(self, settings: CampaignSettings) -> None:
        """Dial by new settings (mode, power ratio...) from now on; what the pacer has
        learned (contact rate, gain, talk time) stays. :class:`CtiError` for a mode the
        line cannot do (nothing changes)."""
        if settings.mode not in self.line.modes:
            raise CtiError(
                f"campaign {settings.name!r}: line {self.line.name!r} cannot dial in "
                f"{settings.mode.value} mode"
            )
        self.settings = settings
        self.pacer.settings = self._pacing(settings)
        self._wake.set()

    @property
    def under_way(self) -> int:
        """Dials ringing, and answered calls whose record (disposition) has not come."""
        return len(self._attempts)

    # --- running -------------------------------------------------------------------

    async def run(self) -> None:
        """Dial until cancelled; calls under way are left to finish on the line."""
        self.service.record_listeners.append(self._on_record)
        checked = -float("inf")
        try:
            while True:
                now = self.service.now()
                if self.store is not None and now - checked >= self.state_every_s:
                    checked = now
                    if await self._follow_state() == "stopped":
                        return
                if not self.paused:
                    try:
                        await self.pace()
                    except CtiError as exc:
                        log_limits.error(
                            log, "campaign %s: %s", self.settings.name, exc, key=self.settings.name
                        )
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.tick_s):
                        await self._wake.wait()
                self._wake.clear()
        finally:
            self.service.record_listeners.remove(self._on_record)
            for task in list(self._tasks):
                task.cancel()

    async def _follow_state(self) -> str:
        """Supervisor controls through the store: ``cti campaign pause`` sets the state
        the running dialer follows here (paused, running, or stopped)."""
        assert self.store is not None
        try:
            state = (await self.store.campaign(self.settings.name)).state
        except CtiError as exc:
            log_limits.error(
                log, "campaign %s: %s", self.settings.name, exc, key=self.settings.name
            )
            return "running"
        if state == "paused" and not self.paused:
            log.info("campaign %s paused", self.settings.name)
            self.pause()
        elif state == "running" and self.paused:
            log.info("campaign %s resumed", self.settings.name)
            self.resume()
        return state

    def pause(self) -> None:
        """Place no new dials (those under way finish)."""
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        self._wake.set()

    async def pace(self) -> int:
        """Ask the pacer, take the leads, place the dials; returns how many."""
        wall = wall_time()
        decision = self.pacer.decide(self.capacity(), self.campaign.abandon_figures(wall))
        self.last_decision = decision
        if decision.dials <= 0:
            return 0
        dials = self.campaign.next_dials(wall, decision.dials)
        for dial in dials:
            await self._start(dial, wall)
        return len(dials)

    def next_preview(self) -> Lead | None:
        """Preview: the next lead an agent may look at before asking to dial it."""
        wall = wall_time()
        for lead_id in sorted(self.campaign.leads, key=lambda i: self.campaign.leads[i].next_at):
            lead = self.campaign.leads[lead_id]
            if lead.next_at <= wall and self.campaign.may_dial(lead, wall) is None:
                return lead
        return None

    async def dial_preview(self, lead_id: int) -> str:
        """Preview: the agent asks to dial ``lead_id``; the rules are checked again now.

        Returns the call id; :class:`CtiError` says why the lead may not be dialled.
        """
        wall = wall_time()
        return await self._start(self.campaign.dial_now(lead_id, wall), wall)

    def capacity(self) -> Capacity:
        """The campaign's agents from the router's state (with blending)."""
        router, now, queue = self.service.router, self.service.now(), self.settings.queue
        ready_only = ready_blended = inbound_busy = talking = 0
        wraps: list[float] = []
        for agent_id in router.agent_ids():
            queues = router.agent_queues(agent_id)
            if queue not in queues:
                continue
            blended = len(queues) > 1
            a = router.agent(agent_id)
            on_campaign = a.call_id is not None and a.call_id in self._attempts
            if a.state is AgentState.READY:
                if blended:
                    ready_blended += 1
                else:
                    ready_only += 1
            elif a.state in (AgentState.RESERVED, AgentState.TALKING, AgentState.WRAP_UP):
                if not on_campaign:
                    inbound_busy += 1
                elif a.state is AgentState.TALKING:
                    talking += 1
                elif a.state is AgentState.WRAP_UP and a.deadline is not None:
                    wraps.append(a.deadline - now)
        if ready_blended:
            ready = self._blend(ready_only, ready_blended, inbound_busy, now)
        else:
            ready = ready_only
        in_flight = [a for a in self._attempts.values() if a.answered_at is None]
        waiting = sum(
            1
            for call_id, a in self._attempts.items()
            if a.answered_at is not None and self._phase(call_id) is CallPhase.QUEUED
        )
        return Capacity(
            ready=ready,
            talking=talking,
            wrap_up_ends_in=tuple(wraps),
            waiting=waiting,
            in_flight=len(in_flight),
            in_flight_ages=tuple(now - a.dialled_at for a in in_flight),
        )

    def status(self) -> dict[str, Any]:
        wall = wall_time()
        f = self.campaign.abandon_figures(wall)
        d = self.last_decision
        return {
            "campaign": self.settings.name,
            "mode": self.settings.mode.value,
            "paused": self.paused,
            "dials": self.dials,
            "in_flight": sum(a.answered_at is None for a in self._attempts.values()),
            "pending_leads": self.campaign.pending(),
            "contact_rate": round(self.pacer.contact_rate, 4),
            "machine_rate": round(self.pacer.machine_rate, 4),
            "mean_connect_s": round(self.pacer.mean_connect_s, 2),
            "gain": round(self.pacer.gain, 4),
            "guarded": self.pacer.guarded,
            "abandon_rate_today": round(f.today_rate, 5),
            "abandon_rate_30_days": round(f.rolling_rate, 5),
            "last_decision": None if d is None else {"dials": d.dials, "reason": d.reason},
        }

    # --- internals -----------------------------------------------------------------

    def _blend(self, ready_only: int, ready_blended: int, inbound_busy: int, now: float) -> int:
        router = self.service.router
        others = sorted(
            {
                q
                for a in router.agent_ids()
                if self.settings.queue in router.agent_queues(a)
                for q in router.agent_queues(a)
            }
            - {self.settings.queue}
        )
        waiting = sum(router.waiting(q) for q in others)
        demand = self.inbound or self._measured_inbound(others, now)
        return dialer_agents(
            ready_campaign_only=ready_only,
            ready_blended=ready_blended,
            inbound_busy=inbound_busy,
            ready_inbound_only=0,
            inbound_needed=demand.agents,
            inbound_waiting=waiting,
        )

    def _measured_inbound(self, queues: Sequence[str], now: float) -> InboundDemand:
        """Inbound demand from the live statistics: calls offered over the last two
        15-minute intervals, at their handle time (or the queue's expected one)."""
        offered = 0
        span = 0.0
        handle = 0.0
        target = 20.0
        for q in queues:
            config = self.service.router.queue_config(q)
            target = min(target, config.sl_target_s)
            intervals = self.service.stats.intervals(q, now, last=2)
            if intervals:
                offered += sum(i.figures.offered for i in intervals)
                span = max(span, now - intervals[0].start)
                aht = [i.figures.aht_s for i in intervals if i.figures.aht_s is not None]
                handle = max(handle, max(aht) if aht else config.expected_aht_s)
            else:
                handle = max(handle, config.expected_aht_s)
        rate = offered * 3600.0 / span if span > 0 else 0.0
        return InboundDemand(rate, handle or 180.0, target)

    def _phase(self, call_id: str) -> CallPhase | None:
        try:
            return self.service.router.call_phase(call_id)
        except CtiError:
            return None

    async def _start(self, dial: Dial, wall: float) -> str:
        self._ids += 1
        call_id = f"{self.settings.name}-{int(wall)}-{self._ids}"
        attempt_id = 0
        if self.store is not None:
            try:
                attempt_id = await self.store.start_attempt(
                    self.campaign_id, dial.lead, dial.attempt, call_id, wall
                )
            except CtiError as exc:
                # Not noted, not dialled: a dial the records would not show never happens.
                log_limits.error(log, "campaign %s: %s; lead %d not dialled", self.settings.name,
                                 exc, dial.lead.lead_id, key=self.settings.name)  # fmt: skip
                self.campaign.outcome(dial.lead.lead_id, Outcome.NO_ANSWER, wall)
                return call_id
        self._attempts[call_id] = _Attempt(dial, attempt_id, self.service.now())
        self.dials += 1
        self._spawn(self._dial(call_id), f"dial:{call_id}")
        return call_id

    async def _dial(self, call_id: str) -> None:
        attempt = self._attempts[call_id]
        lead = attempt.dial.lead
        rules = self.campaign.rules
        try:
            result = await self.line.place(lead.number, call_id, rules.ring_timeout_s)
        except Exception:
            log_limits.exception(
                log, "campaign %s: dialling %s failed", self.settings.name, call_id,
                key=self.settings.name,
            )  # fmt: skip
            result = DialResult.FAILED
        now = self.service.now()
        self.pacer.record_dial(result, now - attempt.dialled_at)
        if result is not DialResult.HUMAN:
            if result is DialResult.MACHINE:
                with contextlib.suppress(TelephonyError):
                    await self.line.hang_up(call_id)  # a message could be left here
            await self._end(call_id, Outcome.of(result))
            return
        attempt.answered_at = now
        try:
            await self.service.route_answered_outbound(
                call_id, self.line.name, lead.number, self.settings.queue,
                script=self.settings.script,
            )  # fmt: skip
        except CtiError as exc:
            log_limits.error(
                log, "campaign %s: routing %s: %s", self.settings.name, call_id, exc,
                key=self.settings.name,
            )  # fmt: skip
        if not self.line.routed(call_id):  # the person hung up as the call was routed
            with contextlib.suppress(CtiError):
                self.service.route(ri.CallerHangsUp(call_id=call_id))
        await asyncio.sleep(rules.answer_window_s)
        if attempt.ended:
            return  # the whole call was over within the window (its record came)
        if self._phase(call_id) in (CallPhase.QUEUED, CallPhase.OFFERED, None) or (
            not self.service.voice.audio_connected(call_id)
        ):
            # No agent on the call within the window (on a voice line: its phone
            # connected): abandoned (message, then hang-up).
            with contextlib.suppress(TelephonyError):
                await self.line.hang_up(call_id)
            with contextlib.suppress(CtiError):
                self.service.route(ri.CallerHangsUp(call_id=call_id))
            await self._end(call_id, Outcome.ABANDONED)
        else:
            await self._end(call_id, Outcome.CONNECTED)

    async def _end(self, call_id: str, outcome: Outcome) -> None:
        """The attempt's outcome into the pacer, the campaign and the store. A connected
        call stays in the book until its record brings the disposition."""
        attempt = self._attempts.get(call_id)
        if attempt is None or attempt.ended:
            return
        attempt.ended = True
        if outcome is not Outcome.CONNECTED:
            del self._attempts[call_id]
        if outcome in (Outcome.CONNECTED, Outcome.ABANDONED):
            self.pacer.record_live(abandoned=outcome is Outcome.ABANDONED)
        wall = wall_time()
        lead = self.campaign.outcome(attempt.dial.lead.lead_id, outcome, wall)
        await self._save(attempt, outcome.value, wall, lead)
        self._wake.set()

    def _on_record(self, cdr: CallDetailRecord) -> None:
        attempt = self._attempts.get(cdr.call_id)
        if attempt is None or attempt.answered_at is None or cdr.outcome != "answered":
            return
        self._spawn(self._finish(cdr, attempt), f"finish:{cdr.call_id}")

    async def _finish(self, cdr: CallDetailRecord, attempt: _Attempt) -> None:
        """The connected call's record: its handle time and disposition."""
        await self._end(cdr.call_id, Outcome.CONNECTED)  # if the window has not yet
        self._attempts.pop(cdr.call_id, None)
        assert cdr.answered_at is not None
        self.pacer.record_handle(cdr.ended_at - cdr.answered_at, cdr.wrap_up_s)
        wall = wall_time()
        lead = self.campaign.disposition(attempt.dial.lead.lead_id, cdr.disposition, wall)
        await self._save(attempt, Outcome.CONNECTED.value, wall, lead, cdr.agent_id or "")
        if self.store is not None and lead.number in self.campaign.dnc:
            try:
                await self.store.add_do_not_call(
                    [lead.number], wall, campaign=self.settings.name, reason="disposition"
                )
            except CtiError as exc:
                log_limits.error(
                    log, "campaign %s: %s", self.settings.name, exc, key=self.settings.name
                )
        self._wake.set()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _save(
        self, attempt: _Attempt, outcome: str, wall: float, lead: Lead, agent_id: str = ""
    ) -> None:
        if self.store is None:
            return
        try:
            await self.store.end_attempt(attempt.attempt_id, outcome, wall, lead, agent_id)
        except CtiError as exc:
            log_limits.error(
                log, "campaign %s: %s", self.settings.name, exc, key=self.settings.name
            )
