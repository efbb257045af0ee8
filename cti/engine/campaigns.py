"""The engine's dialer: every running campaign of the store, dialled on the engine's lines.

:class:`CampaignDesk` runs inside ``cti serve`` beside the engine service. It keeps one
:class:`~cti.engine.dialer.CampaignRunner` per campaign that is running or paused, and follows
what people decide from elsewhere:

* **The store is the truth.** ``cti campaign start|pause|stop NAME`` in another
  terminal only writes the campaign's state in the store; the desk reads every
  campaign's state (one query) every ``poll_s`` (3 s) and follows: a running campaign
  without a runner gets one (its leads loaded afresh), a paused one places no new dials
  (those under way finish), a stopped one is paused and its runner ends once its calls
  under way have their records (dispositions are not lost).
* **The supervisor's commands** (``SetCampaignState``, ``SetCampaignPacing`` from the
  wallboard, through :attr:`cti.engine.service.EngineService.campaign_control`) write the
  store the same way and are applied at once, then answered with ``CommandResult``; a
  new mode or power ratio takes effect on the next pacing decision, keeping what the
  pacer has learned.
* **Status.** Every ``status_s`` it publishes each campaign's
  :class:`~cti.protocol.CampaignStatus`, retained, on
  ``cti/v1/campaigns/{name}/status``: state, mode, today's dials and contacts, abandon
  rate today and over 30 days against the cap (counted from the stored attempts), the
  campaign queue's agents, and why it cannot dial if it cannot.

**Lines.** A campaign dials on the line its settings name (``line``), else the first
line that can dial. Lines are :class:`~cti.engine.dialer.DialingLine` wrappers the engine
service was built with (``cti serve`` wraps every line that can dial; a modem with one
line and preview/progressive only). A campaign whose mode the line cannot do, or with
no line at all, is not dialled: the status says why, and it is tried again at the next
poll (a fixed mode, another line in the configuration).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from cti import log_limits, topics
from cti.clock import wall_time
from cti.engine.dialer import MODEM_MODES, CampaignRunner, DialingLine
from cti.engine.service import EngineService
from cti.errors import CtiError
from cti.protocol import CampaignStatus, SetCampaignPacing, SetCampaignState, SupervisorCommand
from cti.store.campaigns import CampaignRecord, CampaignStore
from queue_engine.pacing import DialMode
from telephony_adapters.base import TelephonyAdapter

log = logging.getLogger(__name__)


def dialling_lines(lines: Sequence[TelephonyAdapter]) -> dict[str, DialingLine]:
    """Every line that can dial, wrapped for the dialer (a modem: one line, preview or
    progressive only), by name, in the configuration's order."""
    from telephony_adapters.modem.line import ModemLine  # only when a line can dial

    wrapped: dict[str, DialingLine] = {}
    for line in lines:
        if not line.capabilities.can_dial:
            continue
        if isinstance(line, ModemLine):
            wrapped[line.name] = DialingLine(line, max_lines=1, modes=MODEM_MODES)
        else:
            wrapped[line.name] = DialingLine(line)
    return wrapped


@dataclass(slots=True)
class _Running:
    runner: CampaignRunner
    task: asyncio.Task[None]
    stopping: bool = False


@dataclass(slots=True)
class _Seen:
    """What the desk last knew of a campaign (for its status)."""

    state: str = "stopped"
    problem: str = ""
    problems_logged: set[str] = field(default_factory=set)


class CampaignDesk:
    """Runs the store's campaigns on ``lines`` for ``service`` (module docstring)."""

    def __init__(
        self,
        service: EngineService,
        store: CampaignStore,
        lines: Sequence[DialingLine],
        *,
        poll_s: float = 3.0,
        status_s: float | None = None,
        tick_s: float = 1.0,
    ) -> None:
        self.service = service
        self.store = store
        self.lines = list(lines)
        self.poll_s = poll_s
        self.status_s = (
            status_s if status_s is not None else service.config.engine.status_interval_s
        )
        self.tick_s = tick_s
        self.running: dict[str, _Running] = {}
        """Campaign name -> its runner (running or paused, or stopping)."""
        self._seen: dict[str, _Seen] = {}
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()

    # --- running -------------------------------------------------------------------

    async def run(self) -> None:
        """Follow the store and publish statuses until cancelled; the runners end with it."""
        published = -float("inf")
        try:
            while True:
                try:
                    await self.sync()
                except CtiError as exc:
                    log_limits.error(log, "campaigns: %s", exc)
                now = self.service.now()
                if now - published >= self.status_s:
                    published = now
                    await self.publish_status()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(self.poll_s, self.status_s)):
                        await self._wake.wait()
                self._wake.clear()
        finally:
            for running in self.running.values():
                running.task.cancel()
            await asyncio.gather(*(r.task for r in self.running.values()), return_exceptions=True)

    async def sync(self) -> None:
        """Bring the runners in line with the states in the store."""
        async with self._lock:
            states = dict(await self.store.campaign_states())
            for name, state in states.items():
                self._seen.setdefault(name, _Seen()).state = state
                running = self.running.get(name)
                if running is not None and running.task.done():
                    self._reap(name, running)
                    running = None
                if state in ("running", "paused"):
                    if running is None:
                        if state == "running":
                            await self._start(name)
                        continue
                    running.stopping = False
                    if state == "running" and running.runner.paused:
                        running.runner.resume()
                    elif state == "paused" and not running.runner.paused:
                        running.runner.pause()
                elif running is not None:  # stopped: no new dials; ends once calls are done
                    running.runner.pause()
                    running.stopping = True
            for name, running in list(self.running.items()):
                if name not in states:  # deleted from the store: stop dialling it
                    running.runner.pause()
                    running.stopping = True
                if running.stopping and running.runner.under_way == 0:
                    running.task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await running.task
                    self._reap(name, running)

    async def control(self, command: SupervisorCommand) -> None:
        """A supervisor's campaign command: into the store, then applied at once.
        :class:`CtiError` (the reason) refuses it."""
        if isinstance(command, SetCampaignState):
            await self.store.set_campaign_state(command.campaign, command.state)
            log.info(
                "campaign %s set %s by supervisor %s",
                command.campaign,
                command.state,
                command.supervisor_id,
            )
        elif isinstance(command, SetCampaignPacing):
            record = await self.store.campaign(command.campaign)
            settings = record.settings
            if command.mode is not None:
                settings = settings.model_copy(update={"mode": DialMode(command.mode)})
            if command.power_ratio is not None:
                pacing = settings.pacing.model_copy(update={"power_ratio": command.power_ratio})
                settings = settings.model_copy(update={"pacing": pacing})
            running = self.running.get(command.campaign)
            if running is not None:
                running.runner.change_settings(settings)  # refuses a mode the line lacks
            elif settings.mode not in self._line_for(settings.line).modes:
                raise CtiError(
                    f"campaign {settings.name!r}: line {self._line_for(settings.line).name!r} "
                    f"cannot dial in {settings.mode.value} mode"
                )
            await self.store.update_settings(settings)
            log.info(
                "campaign %s: %s mode, power ratio %g (supervisor %s)",
                settings.name,
                settings.mode.value,
                settings.pacing.power_ratio,
                command.supervisor_id,
            )
        else:
            raise CtiError(f"{command.type} is not a campaign command")
        await self.sync()
        self._wake.set()  # publish the new status now
        await self.publish_status()

    async def publish_status(self) -> None:
        """Every campaign's status, retained."""
        wall = wall_time()
        for name in sorted(self._seen):
            try:
                record = await self.store.campaign(name)
                message = await self._status(record, wall)
            except CtiError as exc:
                log_limits.error(log, "campaign %s: status not published: %s", name, exc, key=name)
                continue
            await self.service.bus.publish(topics.campaign_status(name), message, retain=True)

    # --- internals -----------------------------------------------------------------

    def _line_for(self, name: str) -> DialingLine:
        for line in self.lines:
            if not name or line.name == name:
                return line
        known = ", ".join(line.name for line in self.lines) or "none"
        if name:
            raise CtiError(f"no line named {name!r} can dial (lines that can dial: {known})")
        raise CtiError("no configured line can dial out")

    async def _start(self, name: str) -> None:
        seen = self._seen.setdefault(name, _Seen())
        try:
            record, core = await self.store.load(name, wall_time())
            line = self._line_for(record.settings.line)
            runner = CampaignRunner(
                self.service,
                record.settings,
                core,
                line,
                store=self.store,
                campaign_id=record.campaign_id,
                tick_s=self.tick_s,
                state_every_s=float("inf"),  # the desk follows the store for it
            )
        except CtiError as exc:
            seen.problem = str(exc)
            if seen.problem not in seen.problems_logged:  # once per reason, not every poll
                seen.problems_logged.add(seen.problem)
                log.error("campaign %s is running but not dialled: %s", name, exc)
            return
        seen.problem = ""
        seen.problems_logged.clear()
        task = asyncio.create_task(runner.run(), name=f"campaign:{name}")
        self.running[name] = _Running(runner, task)
        log.info(
            "campaign %s: dialling on line %s in %s mode (%d leads pending)",
            name,
            line.name,
            record.settings.mode.value,
            core.pending(),
        )

    def _reap(self, name: str, running: _Running) -> None:
        del self.running[name]
        if running.task.cancelled():
            log.info("campaign %s: dialer stopped", name)
            return
        exc = running.task.exception()
        if exc is not None:
            try:
                raise exc  # log_limits takes the traceback being handled
            except BaseException:
                log_limits.exception(
                    log,
                    "campaign %s: dialer failed; started again at the next poll",
                    name,
                    key=name,
                )

    async def _status(self, record: CampaignRecord, wall: float) -> CampaignStatus:
        s = record.settings
        today = await self.store.today(record, wall)
        running = self.running.get(s.name)
        seen = self._seen.get(s.name, _Seen())
        agents = (0, 0, 0)
        if s.queue in self.service.router.queue_names:
            snap = self.service.router.snapshot(s.queue, self.service.now())
            agents = (snap.agents_logged_in, snap.agents_ready, snap.agents_busy)
        status = running.runner.status() if running is not None else None
        return CampaignStatus(
            campaign=s.name,
            state=record.state,
            mode=s.mode.value,
            power_ratio=s.pacing.power_ratio,
            queue=s.queue,
            line=running.runner.line.name if running is not None else "",
            dialling=running is not None and not running.stopping,
            dials_today=today.dials,
            contacts_today=today.contacts,
            live_answers_today=today.live,
            abandoned_today=today.abandoned,
            abandon_rate_today=round(today.abandon_rate, 5),
            abandon_rate_30_days=round(today.rolling_rate, 5),
            abandon_cap=s.rules.abandon_cap,
            in_flight=int(status["in_flight"]) if status else 0,
            pending_leads=int(status["pending_leads"]) if status else 0,
            agents_logged_in=agents[0],
            agents_ready=agents[1],
            agents_busy=agents[2],
            problem=seen.problem if record.state == "running" else "",
            at_wall=wall,
        )
