"""What the engine tells the wallboards and the desks of its state: each queue's live
figures and waiting calls (retained, every status interval), the engine's health
(retained, on change and refreshed while a trouble lasts), and an agent's state and
call in hand again when its console asks for a snapshot. An agent's state goes out
twice: whole (with its caller) for the supervisors and the agent's own desk, and as
:class:`~cti.protocol.ColleagueState` (no call, no caller) for the other agents."""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import Callable

from cti import topics
from cti.bus.memory import Bus
from cti.clock import wall_time
from cti.config import Config
from cti.engine.built import built, event_line, shown
from cti.engine.call_control import CallController
from cti.engine.records import RecordKeeper
from cti.engine.screen_pop import ScreenPops
from cti.errors import RoutingError
from cti.models import AgentState, Customer
from cti.protocol import (
    MAX_QUEUE_CALLS_BYTES,
    MAX_QUEUE_CALLS_SENT,
    AgentStateChanged,
    ColleagueState,
    CurrentCall,
    EngineHealth,
    QueueCalls,
    QueueStatus,
    WaitingCall,
    encode,
)
from cti.store.journal import Journal
from queue_engine.actions import ConsultChanged
from queue_engine.live_stats import LiveStats
from queue_engine.router import Router

log = logging.getLogger(__name__)

Send = Callable[..., None]
"""Publish in turn with the router's effects: ``send(topic, message, retain=False)``."""


async def publish_queues(
    bus: Bus, router: Router, stats: LiveStats, now: float, wall: float
) -> None:
    """Publish every queue's live figures and waiting calls (both retained)."""
    for name in router.queue_names:
        snap = router.snapshot(name, now)
        f = stats.snapshot(name, now)
        states = stats.agents_by_state(name, now)
        status = QueueStatus(
            queue=name,
            waiting=snap.waiting,
            longest_wait_s=snap.longest_wait_s,
            agents_ready=snap.agents_ready,
            agents_busy=snap.agents_busy,
            agents_logged_in=snap.agents_logged_in,
            offered=f.offered,
            answered=f.answered,
            abandoned=f.abandoned,
            short_abandoned=f.short_abandoned,
            service_level=f.service_level,
            service_level_of_answered=f.service_level_of_answered,
            asa_s=f.asa_s,
            aht_s=f.aht_s,
            abandon_rate=f.abandon_rate,
            occupancy=f.occupancy,
            agents_by_state={s.value: n for s, n in states.items()},
            at_wall=wall,
        )
        await bus.publish(topics.queue_status(name), status, retain=True)
        calls = waiting_calls(router, name, now, wall)
        await bus.publish(topics.queue_calls(name), calls, retain=True)


def waiting_calls(router: Router, queue: str, now: float, wall: float) -> QueueCalls:
    """The first waiting calls of ``queue`` in rank order, as many as one message
    takes (:data:`~cti.protocol.MAX_QUEUE_CALLS_SENT` and ``_BYTES``: a flood's whole
    queue would be refused by the broker), and how many wait."""
    estimates = router.estimated_waits(queue, now, MAX_QUEUE_CALLS_SENT)  # O(sent)
    calls = []
    size = 0
    for estimate in estimates:
        caller = router.call_caller(estimate.call_id)
        priority, own, rank = router.call_priority(estimate.call_id, now)
        call = WaitingCall(
            call_id=estimate.call_id,
            position=estimate.position,
            waited_s=now - router.call_arrived_at(estimate.call_id),
            estimated_wait_s=None if estimate.wait_s == float("inf") else estimate.wait_s,
            ani=caller.ani,
            customer=caller.customer.name if caller.customer else "",
            segment=caller.segment.value if caller.customer else "",
            kind=router.call_kind(estimate.call_id),
            priority=_on_wire(priority),
            own_priority=own,
            rank=_on_wire(rank),
        )
        size += len(encode(call)) + 1
        if size > MAX_QUEUE_CALLS_BYTES:
            break
        calls.append(call)
    return QueueCalls(queue=queue, calls=tuple(calls), at_wall=wall, total=router.waiting(queue))


def _on_wire(figure: float) -> float | None:
    """``figure`` if a message can carry it (finite, within WireFloat's range), else None."""
    return figure if math.isfinite(figure) and abs(figure) <= 1e15 else None


class HealthWatch:
    """The engine's troubles (journal or store not written, spools full, record id
    conflicts), published on the engine's health topic and logged when they change."""

    def __init__(self, journal: Journal | None, records: RecordKeeper, send: Send) -> None:
        self._journal = journal
        self._records = records
        self._send = send
        self.alerts: tuple[str, ...] = ()
        """The kinds of trouble last published."""
        self._since: float | None = None
        """Wall-clock time the current trouble began (None: all well)."""

    def health(self) -> EngineHealth:
        """The engine's troubles now (what :meth:`check` publishes on change)."""
        alerts = self._alert_texts()
        journal = self._journal
        return EngineHealth(
            ok=not alerts,
            alerts=tuple(alerts.values()),
            journal_held=journal.spooled if journal is not None else 0,
            records_held=len(self._records.held),
            inputs_lost=journal.lost.count if journal is not None else 0,
            records_lost=self._records.lost,
            record_conflicts=self._records.conflicts,
            at_wall=wall_time(),
            since_wall=self._since if alerts else None,
            kinds=tuple(alerts),
        )

    def _alert_texts(self) -> dict[str, str]:
        alerts: dict[str, str] = {}
        journal, records = self._journal, self._records
        if journal is not None and journal.spooled:
            alerts["journal"] = (
                f"journal {journal.path} not written ({journal.write_error}): routing goes on,"
                f" {journal.spooled} inputs held in memory"
            )
        if journal is not None and journal.lost.count:
            alerts["journal_lost"] = f"journal spool full: {journal.lost} not journaled"
        if records.held:
            alerts["records"] = (
                f"call records not stored ({records.error}): {len(records.held)} held in memory"
            )
        if records.lost:
            alerts["records_lost"] = (
                f"{records.lost} call records not held (memory spool full): in the log"
                " and the journal only"
            )
        if records.conflicts:
            alerts["record_conflicts"] = (
                f"{records.conflicts} call records had a call id already used:"
                " kept as <call id>.conflict<n>"
            )
        return alerts

    def check(self, *, refresh: bool = False) -> None:
        """Publish the engine's health (retained) and log it when a trouble starts, changes
        kind or ends; with ``refresh`` (each status interval), publish it again while a
        trouble lasts, so the counts shown stay current (not once per call)."""
        kinds = tuple(self._alert_texts())
        if kinds == self.alerts:
            if refresh and kinds:
                self._send(topics.engine_health(), self.health(), retain=True)
            return
        if not kinds or not self.alerts:  # a trouble begins or ends (not a change of kind)
            self._since = wall_time() if kinds else None
        self.alerts = kinds
        health = self.health()
        if health.ok:
            log.warning("engine health: all written again")
        else:
            log.error("engine health: %s", "; ".join(health.alerts))
        self._send(topics.engine_health(), health, retain=True)


#: Colleague views kept at most (agents x states x Not Ready reasons in use).
MAX_COLLEAGUE_VIEWS = 4096
#: How long an agent's colleague view waits for the next of its changes (issue 23).
COLLEAGUE_TICK_S = 0.2


def colleague_view(state: AgentStateChanged) -> ColleagueState:
    """What other agents may see of ``state``: who, and whether free (not with whom)."""
    return ColleagueState(agent_id=state.agent_id, agent_name=state.agent_name,
                          state=state.state, reason=state.reason)  # fmt: skip


class ColleagueViews:
    """The agents' colleague views, published in a batch per tick (issue 23).

    An agent's own state goes out at once (its desk, the wallboards); what its
    colleagues see of it (a dialog's list, advisory, QoS 0) goes out
    :data:`COLLEAGUE_TICK_S` after the first change not yet sent, the last view of each
    agent once, and not at all if it is back to what was last sent: a call's Reserved,
    Talking, Wrap-up and Ready, four messages when each state is sent, are as many as
    its changes a tick apart and none when it is all over within one."""

    def __init__(self, send: Send, tick_s: float = COLLEAGUE_TICK_S) -> None:
        self._send = send
        self._tick_s = tick_s
        self._views: dict[tuple[str, str, AgentState, str], ColleagueState] = {}
        """Views made, by what they say: an agent goes round the same few (~6 us of
        validation each)."""
        self._due: dict[str, ColleagueState] = {}
        """Agent -> its view to send at the tick."""
        self._sent: dict[str, ColleagueState] = {}
        """Agent -> its view last sent."""
        self._timer: asyncio.TimerHandle | None = None

    def view(self, state: AgentStateChanged) -> ColleagueState:
        """``state``'s colleague view (one made before, if it said the same)."""
        key = (state.agent_id, state.agent_name, state.state, state.reason)
        view = self._views.get(key)
        if view is None:
            if len(self._views) >= MAX_COLLEAGUE_VIEWS:
                self._views.clear()
            view = self._views[key] = colleague_view(state)
        return view

    def changed(self, state: AgentStateChanged) -> None:
        """The agent's state was published: its view goes out at the next tick."""
        self._due[state.agent_id] = self.view(state)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._tick_s, self.send_due)

    def sent(self, agent_id: str, view: ColleagueState) -> None:
        """The agent's view was sent now (a snapshot): nothing of it waits for the tick."""
        self._due.pop(agent_id, None)
        self._sent[agent_id] = view

    def send_due(self) -> None:
        """Send the views waiting for the tick now (the tick, or a flush)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        due, self._due = self._due, {}
        for agent_id, view in due.items():
            if self._sent.get(agent_id) is not view:
                self._sent[agent_id] = view
                self._send(topics.colleague_state(agent_id), view, retain=True)


class AgentViews:
    """An agent's state message, and all its desk shows sent again on a snapshot."""

    def __init__(
        self,
        router: Router,
        config: Callable[[], Config],
        pops: ScreenPops,
        calls: CallController,
        send: Send,
        *,
        phone_reachable: Callable[[str], bool | None] = lambda _agent_id: None,
        call_customer: Callable[[str], Customer | None] = lambda _call_id: None,
    ) -> None:
        """``call_customer``: the customer an agent chose for a call (else its caller's)."""
        self._router = router
        self._call_customer = call_customer
        self._config = config
        self._pops = pops
        self._calls = calls
        self._send = send
        self._phone_reachable = phone_reachable
        self._due: Counter[str] = Counter()
        """Agent -> its state publications queued and not yet made (:meth:`queued`)."""
        self.colleagues = ColleagueViews(send)
        """What the other agents see of each, sent a tick after it changes."""

    def state(self, agent_id: str, now: float, wall: float) -> AgentStateChanged:
        """The agent's state message, made of the router's and the configuration's
        values without validating them again (:mod:`cti.engine.built`: four a call)."""
        a = self._router.agent(agent_id)
        deadline = a.deadline if a.state is AgentState.WRAP_UP else None
        caller_name, caller_number = self._caller(a.call_id)
        return built(AgentStateChanged, {
            "type": "agent_state",
            "agent_id": agent_id,
            "state": a.state,
            "reason": event_line(a.reason),
            "since_wall": float(wall - (now - a.since)),
            "call_id": a.call_id,
            "wrap_up_deadline_wall": None if deadline is None else float(wall + (deadline - now)),
            "calls_handled": a.calls_handled,
            "not_ready_reasons": self._config().engine.not_ready_reasons,
            "phone_reachable": self._phone_reachable(agent_id),
            "agent_name": shown(self._pops.agent_names.get(agent_id, "")),
            "caller_name": shown(caller_name),
            "caller_number": shown(caller_number),
        })  # fmt: skip

    def retained(
        self, agent_id: str, now: float, wall: float
    ) -> list[tuple[str, AgentStateChanged | ColleagueState]]:
        """The agent's state messages, each with its topic (both published retained)."""
        state = self.state(agent_id, now, wall)
        return [(topics.agent_state(agent_id), state),
                (topics.colleague_state(agent_id), self.colleagues.view(state))]  # fmt: skip

    async def publish_state(self, bus: Bus, agent_id: str, now: float, wall: float) -> None:
        """Publish the agent's state on ``bus`` (retained) now, its colleague view at the
        next tick (:class:`ColleagueViews`)."""
        state = self.state(agent_id, now, wall)
        await bus.publish(topics.agent_state(agent_id), state, retain=True)
        self.colleagues.changed(state)

    def queued(self, agent_id: str) -> None:
        """A state publication of the agent was queued (the router changed its state)."""
        self._due[agent_id] += 1

    def queued_state(self, agent_id: str, now: float, wall: float) -> AgentStateChanged | None:
        """The agent's state for its queued publication, its colleague view due at the
        next tick; None if another is queued behind it. The state is read from the router
        when published, so both would send the same: when the engine is behind, an
        agent's state goes out once, not once per change. The caller publishes it (no
        coroutine of its own: four a call, issue 23)."""
        left = self._due.pop(agent_id, 0) - 1
        if left > 0:
            self._due[agent_id] = left
            return None
        state = self.state(agent_id, now, wall)
        self.colleagues.changed(state)  # sent at the tick, after the state in any case
        return state

    def _caller(self, call_id: str | None) -> tuple[str, str]:
        """The name and number of the caller on ``call_id``, for wallboards."""
        if call_id is None:
            return "", ""
        try:
            caller = self._router.call_caller(call_id)
        except RoutingError:  # over already
            return "", ""
        customer = self._call_customer(call_id) or caller.customer
        return (customer.name if customer is not None else "", caller.e164 or caller.ani)

    def resend(self, agent_id: str, now: float) -> None:
        """The agent's state (retained), offer, call in hand and its control state."""
        wall = wall_time()
        for topic, message in self.retained(agent_id, now, wall):
            self._send(topic, message, retain=True)
            if isinstance(message, ColleagueState):
                self.colleagues.sent(agent_id, message)
        events = topics.agent_events(agent_id)
        offer = self._pops.offers.get(agent_id)
        if offer is not None:
            self._send(events, offer)
        current = self._pops.current.get(agent_id)
        if current is None or self._router.agent(agent_id).call_id != current.pop.call_id:
            return
        call_id = current.pop.call_id
        self._send(events, CurrentCall(agent_id=agent_id, call_id=call_id, pop=current.pop,
                                       dispositions=current.dispositions,
                                       agent_name=current.agent_name))  # fmt: skip
        try:
            consult, state = self._router.call_consult(call_id)
        except RoutingError:  # a call this agent handed on, over since
            consult, state = None, ""
        if self._calls.is_held(call_id) or self._calls.is_muted(call_id) or consult is not None:
            change = ConsultChanged(call_id, agent_id, consult or "", state)
            self._send(events, self._calls.message(change))
