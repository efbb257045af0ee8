"""A restarted engine picks its calls up again from the journal (docs/durability.md):
the router's state replayed, records lost on the way stored again, the lines asked
which calls they still hold, the configuration made the file's again, offers and
states sent again. And the journal tended while the engine runs: cut when the center
is empty, its WAL checkpointed now and then."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace

from cti import log_limits
from cti.clock import wall_time
from cti.config import Config
from cti.engine.line_book import LineBook
from cti.engine.records import HeldRecord, RecordKeeper
from cti.engine.screen_pop import ScreenPops
from cti.errors import CtiError, RoutingError, StoreError, TelephonyError
from cti.models import AgentState, CallDetailRecord
from cti.store.journal import Journal, RecoveryReport
from queue_engine import inputs as ri
from queue_engine.actions import RecordCall
from queue_engine.live_stats import LiveStats
from queue_engine.router import CallPhase, Router

log = logging.getLogger(__name__)

#: Journal appends between checkpoints of its WAL (each about a page).
CHECKPOINT_EVERY = 1000


class Recovery:
    """Brings back what the journal holds, before the engine serves anything."""

    def __init__(
        self,
        journal: Journal,
        router: Router,
        stats: LiveStats,
        records: RecordKeeper,
        lines: LineBook,
        pops: ScreenPops,
        *,
        route: Callable[[ri.AnyInput], None],
        config: Callable[[], Config],
        resend: Callable[[str, float], None],
    ) -> None:
        self._journal = journal
        self._router = router
        self._stats = stats
        self._records = records
        self._lines = lines
        self._pops = pops
        self._route = route
        self._config = config
        self._resend = resend

    def replay(self, report: RecoveryReport) -> list[CallDetailRecord]:
        """Every journaled input into the router at its journaled time; the actions go
        to the live statistics. Returns the call records decided on the way."""
        records: list[CallDetailRecord] = []
        for at, event in self._journal.replay():
            report.inputs += 1
            try:
                actions = self._router.handle(event, at)
            except RoutingError:
                report.refused += 1  # refused live too: the router's state allowed it not
                continue
            except Exception:
                report.failed += 1
                log_limits.exception(log, "journal: replaying %r failed; going on", event)
                continue
            for action in actions:
                self._stats.observe(action, at)  # live figures come back as they were
                if isinstance(action, RecordCall):
                    records.append(action.cdr)
        report.bad_rows = list(self._journal.bad_rows)
        return records

    def reconcile_config(self) -> None:
        """After a replay, make the router's queues and agents those configured now.

        The journal may hold an older reload's configuration, and the file may have
        changed while the engine was down: the file wins, as in a reload.
        """
        config = self._config()
        for queue in config.queues:
            if queue.name not in self._router.queue_names or (
                self._router.queue_config(queue.name) != queue
            ):
                self._route(ri.QueueConfigured(queue=queue))
        for agent in config.agents:
            if not self._router.has_agent(agent.id) or (
                sorted(self._router.agent_queues(agent.id)) != sorted(agent.queues)
            ):
                self._route(ri.AgentConfigured(agent=agent))

    async def restore_records(
        self, records: list[CallDetailRecord], now: float, report: RecoveryReport
    ) -> None:
        """Store each replayed call record again (the store ignores one it has, so a
        record lost between the router and the store comes back)."""
        keeper, wall = self._records, wall_time()
        conflicts = keeper.conflicts
        for cdr in records:
            record = replace(cdr, started_wall=wall - (now - cdr.arrived_at))
            if keeper.recorder is None:
                continue
            try:
                if await keeper.recorder.calls.record_call(record) is True:
                    report.records_restored += 1
                    await keeper.add_interaction(record)
            except CtiError as exc:
                keeper.unstored += 1  # keep the journal that can still tell of it
                log_limits.error(log, "journal: call record %s not stored again: %s",
                                 record.call_id, exc)  # fmt: skip
                if isinstance(exc, StoreError):  # written back when the store can take it
                    keeper.hold(HeldRecord(record, restored=True), str(exc))
        report.record_conflicts = keeper.conflicts - conflicts
        if self._journal.stored_lost is not None:
            report.lost_inputs = str(self._journal.stored_lost)
            log.error("journal %s: a run before lost %s; they are not replayed",
                      self._journal.path, report.lost_inputs)  # fmt: skip

    async def adopt_calls(self, report: RecoveryReport) -> None:
        """Ask each line which of the router's unfinished calls it still has.

        Every line is asked, also one with no call in the journal: it may hold calls the
        engine never heard of (they arrived as it died), which it announces or ends."""
        line_of = self._journal.lines()
        by_line: dict[str, list[str]] = {name: [] for name in self._lines.lines}
        for call_id in self._router.active_call_ids():
            if call_id in line_of:  # a call without a line (a callback) is not the line's
                by_line.setdefault(line_of[call_id], []).append(call_id)
        for name, call_ids in by_line.items():
            line = self._lines.lines.get(name)
            kept = set(await line.adopt(call_ids)) if line is not None else set()
            for call_id in call_ids:
                # In wrap-up (or a callback not yet dialled) the call has no line leg.
                phase = self._router.call_phase(call_id)
                over = phase in (CallPhase.WRAP_UP, CallPhase.SCHEDULED)
                if call_id in kept and over and line is not None:
                    # The leg was to be hung up, but that was lost with the process.
                    with contextlib.suppress(TelephonyError):
                        await line.hang_up(call_id)
                elif call_id in kept:
                    report.adopted += 1
                    self._lines.restore(call_id, name)
                elif not over:
                    report.dropped += 1
                    self._route(ri.CallerHangsUp(call_id=call_id))

    def tell_agents(self, now: float) -> None:
        """Offers still running are sent again, with each agent's state and call in hand."""
        wall = wall_time()
        for agent_id in self._router.agent_ids():
            agent = self._router.agent(agent_id)
            if agent.state is AgentState.LOGGED_OUT and agent.since == 0.0:
                continue  # never logged in: nothing to say
            call_id = agent.call_id
            if call_id is None:
                pass
            elif agent.state is AgentState.RESERVED:
                if agent.deadline is not None and agent.deadline > now:
                    queue = self._router.call_queue(call_id)
                    self._pops.offers[agent_id] = self._pops.offer(
                        call_id, agent_id, queue, agent.deadline, now, wall
                    )
            elif agent.state in (AgentState.TALKING, AgentState.WRAP_UP):
                with contextlib.suppress(RoutingError):  # wrap-up of a call handed on, over
                    queue = self._router.call_queue(call_id)
                    self._pops.current[agent_id] = self._pops.offer(
                        call_id, agent_id, queue, now, now, wall
                    )
            self._resend(agent_id, now)


class JournalTending:
    """Cuts the journal when the center is empty; checkpoints its WAL now and then."""

    def __init__(self, journal: Journal, router: Router, records: RecordKeeper) -> None:
        self._journal = journal
        self._router = router
        self._records = records

    def _center_empty(self) -> bool:
        router = self._router
        return not router.active_call_ids() and all(
            router.agent(a).state is AgentState.LOGGED_OUT for a in router.agent_ids()
        )

    async def tend(self, report: RecoveryReport | None) -> None:
        journal = self._journal
        if (
            journal.has_uncut_rows
            and self._records.unstored == 0
            and not journal.spooled
            and self._center_empty()
        ):
            try:
                removed = journal.cut()
                log.info("journal %s: the center is empty; %d rows cut", journal.path, removed)
                if report is not None:
                    report.cut += removed
            except CtiError as exc:
                log_limits.error(log, "journal %s: not cut: %s", journal.path, exc)
        if journal.appended_since_checkpoint >= CHECKPOINT_EVERY and not journal.spooled:
            try:
                await journal.checkpoint()
            except CtiError as exc:
                log_limits.error(log, "%s", exc)
