"""The write-ahead journal: round trip, bad rows, exact rebuild, and the engine's restart.

Everything here runs in one process: the engine's "crash" is its task cancelled (so
effects still queued are lost, like a kill), and its restart a new service on the same
journal. The test that kills a real engine process is ``tests/recovery``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cti import topics
from cti.bus.memory import InMemoryBus
from cti.clock import VIRTUAL_EPOCH, RetryBackoff, wall_time
from cti.config import load_config
from cti.engine.service import EngineService
from cti.errors import CtiError, RoutingError, StoreError
from cti.models import (
    AgentConfig,
    AgentState,
    CallerInfo,
    CallerKind,
    Customer,
    Interaction,
    PhoneNumber,
    QueueConfig,
    Segment,
    Strategy,
)
from cti.protocol import (
    AcceptOffer,
    AgentStateChanged,
    AnyCommand,
    CallOffered,
    CompleteWrapUp,
    HangUp,
    Login,
    Logout,
    SetNotReady,
    SetReady,
    answer,
)
from cti.store.database import Store
from cti.store.journal import Journal, is_configuration, journal_path_for
from queue_engine import inputs as ri
from queue_engine.actions import Action
from queue_engine.router import Router
from telephony_adapters.base import LineCapabilities, LineEvent, TelephonyAdapter
from telephony_adapters.sim import SimTrunk
from tests.harness import engine_center, engine_service, until, virtual

ALICE = Customer(
    id=1,
    name="王小明",
    phones=(PhoneNumber(raw="13812345678", e164="+8613812345678"),),
    value=95.0,
    segment=Segment.PLATINUM,
)


# --- the journal itself ------------------------------------------------------------


def _caller(value: float = 50.0, n: int = 1) -> CallerInfo:
    customer = Customer(id=n, name=f"客户 {n}", value=value)
    history = (Interaction(at=1.5, disposition="sale", note="[b]x[/b]"),)
    return CallerInfo(ani="138", kind=CallerKind.KNOWN, customer=customer, history=history)


def test_append_and_replay_round_trip_across_reopening(tmp_path: Path) -> None:
    path = journal_path_for(tmp_path / "cti.db")
    assert path.name == "cti.journal.db"
    inputs: list[tuple[float, ri.AnyInput]] = [
        (VIRTUAL_EPOCH + 0.1, ri.AgentLogsIn(agent_id="1001")),
        (VIRTUAL_EPOCH + 0.25, ri.CallArrives(call_id="c1", queue="general", caller=_caller())),
        (VIRTUAL_EPOCH + 1 / 3, ri.AgentGoesNotReady(agent_id="1001", reason="午饭")),
        (VIRTUAL_EPOCH + 2.0, ri.TimePasses()),
        (VIRTUAL_EPOCH + 2.0, ri.QueueConfigured(queue=QueueConfig(name="sales"))),
    ]
    with Journal.open(path) as journal:
        seqs = [journal.append(at, event) for at, event in inputs]
        assert seqs == [1, 2, 3, 4, 5]
        journal.remember_line("c1", "sim")
    with Journal.open(path) as journal:
        assert list(journal.replay()) == inputs  # times exact, to the last bit
        assert journal.bad_rows == []
        assert len(journal) == 5
        assert journal.last_at == VIRTUAL_EPOCH + 2.0
        assert journal.lines() == {"c1": "sim"}
        assert journal.append(VIRTUAL_EPOCH + 3, ri.TimePasses()) == 6


def test_bad_rows_are_skipped_logged_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "j.db"
    with Journal.open(path) as journal:
        journal.append(1.0, ri.AgentLogsIn(agent_id="a"))
        journal.append(2.0, ri.AgentGoesReady(agent_id="a"))
    raw = sqlite3.connect(path)
    with raw:
        raw.executemany(
            "INSERT INTO router_journal (seq, at, input) VALUES (?, ?, ?)",
            [
                (3, 3.0, '{"kind": "agent_logs_in", "agent_id": '),  # cut short
                (4, 4.0, '{"kind": "agent_teleports", "agent_id": "a"}'),  # unknown kind
                (5, 5.0, '{"kind": "agent_logs_out"}'),  # a field missing
                (6, "not a time", '{"kind": "time_passes"}'),
                (7, 7.0, '{"kind": "agent_logs_out", "agent_id": "a"}'),
            ],
        )
    raw.close()
    with caplog.at_level(logging.ERROR, logger="cti.store.journal"), Journal.open(path) as journal:
        replayed = list(journal.replay())
        assert [at for at, _ in replayed] == [1.0, 2.0, 7.0]
        assert replayed[-1][1] == ri.AgentLogsOut(agent_id="a")
        assert journal.bad_rows == [3, 4, 5, 6]
        # New rows go after the bad ones, never over them.
        assert journal.append(8.0, ri.TimePasses()) == 8
    for seq in (3, 4, 5, 6):
        assert f"row {seq} skipped" in caplog.text


def test_a_journal_from_a_newer_program_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    Journal.open(path).close()
    raw = sqlite3.connect(path)
    with raw:
        raw.execute("INSERT INTO schema_version (version) VALUES (99)")
    raw.close()
    with pytest.raises(StoreError, match="schema version 99, newer"):
        Journal.open(path)


def test_a_closed_journal_refuses_appends_with_a_store_error(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "j.db")
    journal.close()
    journal.close()  # twice is harmless
    with pytest.raises(StoreError, match="closed"):
        journal.append(1.0, ri.TimePasses())


def test_configuration_inputs_are_told_from_traffic_by_their_fields() -> None:
    assert is_configuration(ri.QueueConfigured(queue=QueueConfig(name="q")))
    assert is_configuration(ri.AgentConfigured(agent=AgentConfig(id="a", queues={"q": 0})))
    assert not is_configuration(ri.TimePasses())
    assert not is_configuration(ri.AgentLogsIn(agent_id="a"))
    assert not is_configuration(ri.CallArrives(call_id="c", queue="q", caller=_caller()))
    assert not is_configuration(ri.CallMoved(call_id="c", queue="q"))


def test_cut_keeps_configuration_and_numbering(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    sales = ri.QueueConfigured(queue=QueueConfig(name="sales", wrap_up_s=3))
    with Journal.open(path) as journal:
        journal.append(1.0, ri.AgentLogsIn(agent_id="a"))
        journal.append(2.0, sales)
        journal.append(3.0, ri.AgentLogsOut(agent_id="a"))
        journal.remember_line("c1", "sim")
        assert journal.has_uncut_rows
        assert journal.cut() == 2
        assert not journal.has_uncut_rows
        assert journal.lines() == {}
    with Journal.open(path) as journal:
        assert not journal.has_uncut_rows
        assert list(journal.replay()) == [(2.0, sales)]
        assert journal.append(4.0, ri.TimePasses()) == 4


# --- a journal that cannot be written (a full disk) --------------------------------


def _disk_full(journal: Journal, full: bool = True) -> None:
    """Make the journal's file unable to grow (SQLite's "database or disk is full")."""
    connection = journal._open()
    (pages,) = connection.execute("PRAGMA page_count").fetchone()
    connection.execute(f"PRAGMA max_page_count = {pages if full else 1_000_000_000}")


def _big(n: int) -> ri.AgentLogsIn:
    return ri.AgentLogsIn(agent_id=f"{'a' * 400}{n}")  # a page each, or near


@pytest.mark.recovery
def test_a_full_journal_holds_inputs_in_memory_and_writes_them_back_in_order(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "j.db"
    inputs = [_big(n) for n in range(300)]
    with caplog.at_level(logging.ERROR, logger="cti.store.journal"), Journal.open(path) as journal:
        journal.append(0.5, ri.TimePasses())
        _disk_full(journal)
        for n, event in enumerate(inputs):
            assert journal.append(1.0 + n, event) == n + 2  # no error: routing goes on
            if n == 150:
                journal.remember_line("c1", "sim")
        assert journal.spooled > 100  # the last pages of the file filled, then memory
        assert "database or disk is full" in journal.write_error
        assert journal.write_back() is False  # still full
        with pytest.raises(StoreError, match="inputs wait in memory"):
            journal.cut()
        _disk_full(journal, full=False)
        assert journal.write_back() is True
        assert (journal.spooled, journal.write_error, journal.lost.count) == (0, "", 0)
        assert journal.append(400.0, ri.TimePasses()) == 302  # and on, on disk
    # Logged when it began, and a rate-limited line per failed write back: not per input.
    assert len([r for r in caplog.records if r.name == "cti.store.journal"]) <= 2
    with Journal.open(path) as journal:
        replayed = list(journal.replay())
        assert [e for _, e in replayed] == [ri.TimePasses(), *inputs, ri.TimePasses()]
        assert [at for at, _ in replayed[1:-1]] == [1.0 + n for n in range(300)]
        assert journal.lines() == {"c1": "sim"}
        assert journal.stored_lost is None


@pytest.mark.recovery
def test_a_full_spool_loses_traffic_keeps_configuration_and_says_what(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "j.db"
    sales = ri.QueueConfigured(queue=QueueConfig(name="sales", wrap_up_s=3))
    with caplog.at_level(logging.ERROR, logger="cti.store.journal"), Journal.open(path) as journal:
        journal.spool_limit = 3
        _disk_full(journal)
        while not journal.spooled:  # fill the file's last pages
            seq = journal.append(0.5, _big(0))
        journal.append(1.0, ri.AgentLogsIn(agent_id="a"))  # held
        journal.append(2.0, ri.AgentGoesReady(agent_id="a"))  # held
        journal.append(3.0, ri.CallArrives(call_id="c7", queue="q", caller=_caller()))  # lost
        journal.append(4.0, sales)  # configuration: held all the same
        journal.append(5.0, ri.CallerHangsUp(call_id="c8"))  # lost
        assert journal.spooled == 4
        lost = journal.lost
        assert (lost.count, lost.first_seq, lost.last_seq) == (2, seq + 3, seq + 5)
        assert str(lost) == (
            f"2 inputs (seq {seq + 3} to {seq + 5}, engine time 3.000 to 5.000) of calls c7, c8"
        )
        _disk_full(journal, full=False)
        assert journal.write_back() is True
    assert f"no room for more: from seq {seq + 3} on" in caplog.text
    with Journal.open(path) as journal:
        assert [e.kind for _, e in journal.replay()][-4:] == [
            "agent_logs_in",
            "agent_logs_in",
            "agent_goes_ready",
            "queue_configured",
        ]
        assert journal.stored_lost is not None
        assert journal.stored_lost.calls == ["c7", "c8"]
        journal.cut()  # the center emptied: the journal tells the whole story again
        assert journal.stored_lost is None
    with Journal.open(path) as journal:
        assert journal.stored_lost is None


def test_retry_backoff_doubles_up_to_its_most_and_can_be_hurried() -> None:
    backoff = RetryBackoff(first_s=0.5, most_s=2.0)
    assert (backoff.failing, backoff.delay(0.0), backoff.due(0.0)) == (False, None, False)
    waits = []
    for now in (0.0, 10.0, 20.0, 30.0):
        backoff.failed(now)
        waits.append(backoff.delay(now))
    assert waits == [0.5, 1.0, 2.0, 2.0]
    assert not backoff.due(31.9)
    assert backoff.due(32.0)
    backoff.now_due()
    assert backoff.due(30.0)
    backoff.succeeded()
    assert (backoff.failing, backoff.delay(40.0)) == (False, None)


# --- a router rebuilt from its journal is the same router --------------------------

QUEUES = (
    QueueConfig(name="general", offer_timeout_s=8, wrap_up_s=5, strategy=Strategy.RANDOM),
    QueueConfig(name="sales", offer_timeout_s=6, wrap_up_s=3, strategy=Strategy.FEWEST_CALLS),
)
AGENTS = tuple(
    AgentConfig(id=f"a{i}", queues={"general": 0.0, "sales": float(i)} if i % 2 else {"general": 0})
    for i in range(5)
)


def _router() -> Router:
    return Router(QUEUES, agents=AGENTS, seed=11)


def _random_input(rng: random.Random, calls: list[str], n: int) -> ri.AnyInput:
    """A plausible input; many are refused by the router, which the journal must keep too."""
    agent = f"a{rng.randrange(5)}"
    call = rng.choice(calls) if calls else "none"
    match rng.randrange(12):
        case 0 | 1:
            calls.append(f"c{n}")
            queue = rng.choice(["general", "sales"])
            return ri.CallArrives(call_id=f"c{n}", queue=queue, caller=_caller(rng.random() * 100))
        case 2:
            return ri.AgentLogsIn(agent_id=agent)
        case 3:
            return ri.AgentGoesReady(agent_id=agent)
        case 4:
            return ri.AgentGoesNotReady(agent_id=agent, reason=rng.choice(["break", "lunch"]))
        case 5 | 6:
            return ri.AgentAccepts(agent_id=agent, call_id=call)
        case 7:
            return ri.AgentHangsUp(agent_id=agent, call_id=call)
        case 8:
            return ri.AgentFinishesWrapUp(agent_id=agent, call_id=call, disposition="sale")
        case 9:
            return ri.CallerHangsUp(call_id=call)
        case 10:
            return ri.AgentRejects(agent_id=agent, call_id=call)
        case _:
            return ri.TimePasses()


def _handle(router: Router, event: ri.AnyInput, at: float) -> list[Action] | str:
    try:
        return router.handle(event, at)
    except RoutingError as exc:
        return f"refused: {exc}"


def _picture(router: Router, now: float) -> dict[str, Any]:
    active = sorted(router.active_call_ids())
    return {
        "waiting": {q: router.waiting_in_order(q) for q in router.queue_names},
        "agents": {a: router.agent(a) for a in router.agent_ids()},
        "active": active,
        "calls": {
            c: (router.call_phase(c), router.call_queue(c), router.call_arrived_at(c))
            for c in active
        },
        "next_deadline": router.next_deadline(),
        "queues": {q: router.snapshot(q, now) for q in router.queue_names},
    }


@pytest.mark.parametrize("seed", range(6))
def test_a_router_rebuilt_from_the_journal_is_the_same_router(seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    live = _router()
    calls: list[str] = []
    now = VIRTUAL_EPOCH
    with Journal.open(tmp_path / "j.db") as journal:
        for n in range(400):
            now += rng.choice([0.0, 0.5, 1.0, 2.5, 7.0])
            event = _random_input(rng, calls, n)
            journal.append(now, event)  # before the router sees it
            _handle(live, event, now)
        assert live.active_call_ids(), "the run should end with calls in progress"
        rebuilt = _router()
        for at, event in journal.replay():
            _handle(rebuilt, event, at)
    assert _picture(rebuilt, now) == _picture(live, now)
    # Hidden state too (random choices, counters, heaps): from here on, both routers
    # answer every input alike.
    for n in range(400, 600):
        now += rng.choice([0.0, 1.0, 3.0])
        event = _random_input(rng, calls, n)
        assert _handle(rebuilt, event, now) == _handle(live, event, now)


# --- the engine's restart ----------------------------------------------------------


class Hand:
    """A test's hands on one agent's topics."""

    def __init__(self, bus: InMemoryBus, agent_id: str) -> None:
        self.bus = bus
        self.agent_id = agent_id

    async def send(self, *commands: AnyCommand) -> None:
        """Send each command in turn once the engine has answered the one before (its
        result, or the event that answers it: :func:`cti.protocol.answer`); return with
        the last one answered."""
        async with self.bus.subscribe(topics.agent_events(self.agent_id)) as events:
            for command in commands:
                await self.bus.publish(topics.agent_commands(self.agent_id), command)
                async with asyncio.timeout(60):  # a safety net
                    async for _, message in events:
                        result = answer(message)
                        if result is not None and result.command_id == command.command_id:
                            break


@dataclass
class Engine:
    service: EngineService
    bus: InMemoryBus

    def hand(self, agent_id: str) -> Hand:
        return Hand(self.bus, agent_id)


CONFIG = load_config(
    overrides={"queues": [{"name": "general", "offer_timeout_s": 60.0, "wrap_up_s": 60.0}]}
)


@asynccontextmanager
async def engine(
    journal: Journal,
    line: TelephonyAdapter,
    store: Store | None,
    agents: list[str],
    *,
    before_start: Callable[[InMemoryBus], Awaitable[None]] | None = None,
) -> AsyncIterator[Engine]:
    """The engine on ``line`` with its journal, records to ``store`` (none: they are
    lost); the block's end is a crash (what it had not carried out is lost)."""
    bus = InMemoryBus()
    if before_start is not None:
        await before_start(bus)
    async with engine_center(
        _Directory(), config=CONFIG, agents={a: ["general"] for a in agents}, lines=[line],
        bus=bus, journal=journal, recorder=store, crash=True,
    ) as center:  # fmt: skip
        yield Engine(center.service, bus)


class _Directory:
    async def find_by_number(self, e164: str) -> list[Customer]:
        return [ALICE] if e164 == "+8613812345678" else []

    async def recent_interactions(
        self, customer_id: int, limit: int = 5
    ) -> tuple[Interaction, ...]:
        return ()


async def _busy_center(e: Engine, trunk: SimTrunk) -> dict[str, str]:
    """Agents 1001 talking, 1002 in wrap-up, 1003 offered a call, 1004 on a break; two
    callers waiting; one call finished. Returns the call ids by role."""
    for a in ("1001", "1002", "1003", "1004"):
        await e.hand(a).send(Login(agent_id=a))
    await e.hand("1004").send(SetNotReady(agent_id="1004", reason="break"))
    one, two = e.hand("1001"), e.hand("1002")
    await one.send(SetReady(agent_id="1001"))
    done = trunk.ring("13812345678")
    await asyncio.sleep(1)
    await one.send(AcceptOffer(agent_id="1001", call_id=done))
    await asyncio.sleep(20)
    await one.send(HangUp(agent_id="1001", call_id=done))
    await one.send(CompleteWrapUp(agent_id="1001", call_id=done, disposition="sale"))
    talking = trunk.ring("13812345678")
    await asyncio.sleep(1)
    await one.send(AcceptOffer(agent_id="1001", call_id=talking))
    await two.send(SetReady(agent_id="1002"))
    wrapping = trunk.ring("19900000001")
    await asyncio.sleep(1)
    await two.send(AcceptOffer(agent_id="1002", call_id=wrapping))
    await asyncio.sleep(5)
    await two.send(HangUp(agent_id="1002", call_id=wrapping))
    await e.hand("1003").send(SetReady(agent_id="1003"))
    offered = trunk.ring("19900000002")
    await asyncio.sleep(2)
    first_waiting = trunk.ring("19900000003")
    await asyncio.sleep(3)
    second_waiting = trunk.ring("13812345678")  # more valuable: ahead of the first
    await asyncio.sleep(4)
    assert e.service.router.agent("1003").call_id == offered
    return {
        "done": done,
        "talking": talking,
        "wrapping": wrapping,
        "offered": offered,
        "first_waiting": first_waiting,
        "second_waiting": second_waiting,
    }


def test_after_a_crash_calls_agents_and_records_come_back(tmp_path: Path) -> None:
    async def body() -> None:
        agents = ["1001", "1002", "1003", "1004"]
        trunk = SimTrunk()  # the far end: it keeps its calls while the engine is down
        store = await Store.open(tmp_path / "cti.db")
        await store.add_customers([ALICE])
        journal = Journal.open(journal_path_for(tmp_path / "cti.db"))
        try:
            # The first engine stores no records: every one it decided is "lost".
            async with engine(journal, trunk, None, agents) as first:
                ids = await _busy_center(first, trunk)
                before = _picture(first.service.router, first.service.now())
                crashed_at = first.service.now()
            assert await store.calls.records() == []
            await asyncio.sleep(30)  # down for 30 s

            offers: list[CallOffered] = []

            async def listen(bus: InMemoryBus) -> None:
                listening = asyncio.Event()

                async def collect() -> None:
                    async with bus.subscribe(topics.agent_events("1003")) as sub:
                        listening.set()
                        async for _, message in sub:
                            if isinstance(message, CallOffered):
                                offers.append(message)

                asyncio.get_running_loop().create_task(collect())
                await listening.wait()

            async with engine(journal, trunk, store, agents, before_start=listen) as second:
                service = second.service
                report = service.recovery
                assert report is not None
                assert (report.bad_rows, report.failed, report.dropped) == ([], 0, 0)
                assert report.adopted == 4  # talking, offered, two waiting
                assert report.records_restored == 1
                assert service.now() >= crashed_at + 30
                after = _picture(service.router, crashed_at)
                assert after == before
                assert service.router.waiting_in_order("general") == [
                    ids["second_waiting"],
                    ids["first_waiting"],
                ]
                # Every agent's state is out again (retained); the offer is sent again.
                for agent_id, state in [
                    ("1001", AgentState.TALKING),
                    ("1002", AgentState.WRAP_UP),
                    ("1003", AgentState.RESERVED),
                    ("1004", AgentState.NOT_READY),
                ]:
                    retained = second.bus.retained(topics.agent_state(agent_id))
                    assert isinstance(retained, AgentStateChanged)
                    assert retained.state is state
                await until(lambda: bool(offers), what="the offer sent again")
                assert [o.pop.call_id for o in offers] == [ids["offered"]]
                assert offers[0].pop.waited_s == pytest.approx(9 + 30, abs=0.1)
                # The calls go on: the talking agent hangs up, the one in wrap-up finishes
                # it, a waiting caller gives up.
                await second.hand("1001").send(HangUp(agent_id="1001", call_id=ids["talking"]))
                await second.hand("1002").send(
                    CompleteWrapUp(agent_id="1002", call_id=ids["wrapping"], disposition="x")
                )
                trunk.caller_hangs_up(ids["first_waiting"])
                await asyncio.sleep(1)
                await service.flush()
                assert service.router.agent("1001").state is AgentState.WRAP_UP
            records = {r.call_id: r for r in await store.calls.records()}
            assert ids["done"] in records  # decided before the crash, stored after it
            assert records[ids["done"]].disposition == "sale"
            gone = records[ids["first_waiting"]]
            assert gone.outcome == "abandoned"
            # Its wait runs from its arrival before the crash, through the downtime.
            assert gone.arrived_at == before["calls"][ids["first_waiting"]][2]
            assert gone.wait_s == pytest.approx(7 + 30, abs=0.01)  # given up at once
            finished = records[ids["wrapping"]]
            assert (finished.outcome, finished.agent_id, finished.disposition) == (
                "answered",
                "1002",
                "x",
            )
        finally:
            journal.close()
            await store.close()

    virtual(body)


class _ForgetfulLine(TelephonyAdapter):
    """A line whose calls dropped with the engine (the default ``adopt``)."""

    name = "sim"
    capabilities = LineCapabilities()

    async def events(self) -> AsyncIterator[LineEvent]:
        await asyncio.Event().wait()
        return
        yield  # pragma: no cover (an async generator that never yields)

    async def answer(self, call_id: str) -> None:
        pass

    async def hang_up(self, call_id: str) -> None:
        pass


def test_calls_a_line_no_longer_has_end_as_hung_up_by_the_caller(tmp_path: Path) -> None:
    async def body() -> None:
        agents = ["1001", "1002", "1003", "1004"]
        trunk = SimTrunk()
        store = await Store.open(tmp_path / "cti.db")
        await store.add_customers([ALICE])
        journal = Journal.open(tmp_path / "cti.journal.db")
        try:
            async with engine(journal, trunk, store, agents) as first:
                ids = await _busy_center(first, trunk)
                await first.service.flush()
            async with engine(journal, _ForgetfulLine(), store, agents) as second:
                service = second.service
                assert service.recovery is not None
                assert service.recovery.adopted == 0
                assert service.recovery.dropped == 4  # all but the one in wrap-up
                # Nothing waits or rings any more; the talking agent is in wrap-up.
                assert service.router.waiting_in_order("general") == []
                assert service.router.agent("1001").state is AgentState.WRAP_UP
                assert service.router.agent("1003").state is AgentState.READY
                await asyncio.sleep(61)  # wrap-ups time out
                await service.flush()
                assert service.router.active_call_ids() == []
            records = {r.call_id: r for r in await store.calls.records()}
            assert set(records) == set(ids.values())
            for role in ("offered", "first_waiting", "second_waiting"):
                assert records[ids[role]].outcome == "abandoned"
            for role in ("done", "talking", "wrapping"):
                assert records[ids[role]].outcome == "answered"
        finally:
            journal.close()
            await store.close()

    virtual(body)


def test_the_journal_is_cut_only_when_the_center_is_empty(tmp_path: Path) -> None:
    async def body() -> None:
        trunk = SimTrunk()
        store = await Store.open(tmp_path / "cti.db")
        await store.add_customers([ALICE])
        journal = Journal.open(tmp_path / "cti.journal.db")
        try:
            async with engine(journal, trunk, store, ["1001"]) as e:
                a = e.hand("1001")
                await a.send(Login(agent_id="1001"), SetReady(agent_id="1001"))
                call_id = trunk.ring("13812345678")
                await asyncio.sleep(1)
                await a.send(AcceptOffer(agent_id="1001", call_id=call_id))
                await a.send(HangUp(agent_id="1001", call_id=call_id))
                await a.send(CompleteWrapUp(agent_id="1001", call_id=call_id, disposition="sale"))
                await asyncio.sleep(3)
                assert len(journal) > 5  # an agent is still logged in: nothing is cut
                await a.send(SetNotReady(agent_id="1001"))
                await a.send(Logout(agent_id="1001"))
                await asyncio.sleep(3)
                assert len(journal) == 0
                assert [r.call_id for r in await store.calls.records()] == [call_id]
            async with engine(journal, trunk, store, ["1001"]) as again:
                assert again.service.recovery is not None
                assert again.service.recovery.inputs == 0
                assert again.service.router.agent("1001").state is AgentState.LOGGED_OUT
        finally:
            journal.close()
            await store.close()

    virtual(body)


def test_engine_time_reads_as_the_wall_clock_and_never_runs_behind_the_journal(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        journal = Journal.open(tmp_path / "cti.journal.db")
        try:
            async with engine(journal, SimTrunk(), None, ["1001"]) as first:
                assert first.service.now() == wall_time()
                await first.hand("1001").send(Login(agent_id="1001"))
                logged_in = first.service.router.agent("1001").since
            assert journal.last_at == logged_in
            # The wall clock is set back an hour while the engine is down.
            ahead = wall_time() + 3600
            journal.append(ahead, ri.AgentGoesNotReady(agent_id="1001", reason="lunch"))
            async with engine(journal, SimTrunk(), None, ["1001"]) as second:
                assert second.service.now() >= ahead
                agent = second.service.router.agent("1001")
                assert (agent.state, agent.reason, agent.since) == (
                    AgentState.NOT_READY,
                    "lunch",
                    ahead,
                )
        finally:
            journal.close()

    virtual(body)


def test_inputs_wait_for_the_journal_to_be_replayed(tmp_path: Path) -> None:
    async def body() -> None:
        with Journal.open(tmp_path / "cti.journal.db") as journal:
            service = engine_service(_Directory(), config=CONFIG, journal=journal)
            with pytest.raises(CtiError, match="replayed its journal"):
                service.route(ri.AgentLogsIn(agent_id="1001"))
            assert len(journal) == 0

    virtual(body)


def test_after_a_replay_the_configuration_of_now_wins(tmp_path: Path) -> None:
    async def body() -> None:
        with Journal.open(tmp_path / "cti.journal.db") as journal:
            # A reload journaled long ago: the file has changed since.
            old = QueueConfig(name="general", wrap_up_s=5.0)
            journal.append(wall_time() - 60, ri.QueueConfigured(queue=old))
            async with engine(journal, SimTrunk(), None, ["1001"]) as e:
                assert e.service.router.queue_config("general") == CONFIG.queue("general")
            configured = [ev for _, ev in journal.replay() if isinstance(ev, ri.QueueConfigured)]
            assert [c.queue for c in configured] == [old, CONFIG.queue("general")]

    virtual(body)
