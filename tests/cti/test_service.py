"""The engine service end to end on virtual time: trunk -> router -> bus -> agent -> trunk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from cti import topics
from cti.bus.memory import InMemoryBus
from cti.clock import VIRTUAL_EPOCH, wall_time
from cti.config import Config, load_config
from cti.engine.service import EngineService
from cti.errors import StoreError
from cti.models import (
    AgentConfig,
    AgentState,
    CallDetailRecord,
    CallerKind,
    Customer,
    Interaction,
    PhoneNumber,
    Segment,
)
from cti.protocol import (
    MAX_MESSAGE_BYTES,
    MAX_QUEUE_CALLS_BYTES,
    MAX_QUEUE_CALLS_SENT,
    MAX_SCRIPT_ANSWERS,
    AcceptOffer,
    AgentStateChanged,
    AnyCommand,
    CallConnected,
    CallEnded,
    CallOffered,
    ChangeCallPriority,
    ColleagueState,
    CommandResult,
    CompleteWrapUp,
    CurrentCall,
    EngineHealth,
    ForceLogout,
    ForceNotReady,
    HangUp,
    Login,
    Message,
    MoveWaitingCall,
    OfferWithdrawn,
    QueueCalls,
    QueueStatus,
    RequestSnapshot,
    ScheduleCallback,
    SetNotReady,
    SetReady,
    SupervisorCommand,
    answer,
    encode,
)
from telephony_adapters.sim import SimCallState, SimTrunk
from tests.cti.test_card_budget import worst_contacts
from tests.harness import engine_center, until, virtual

T = TypeVar("T")

#: deploy/mosquitto/mosquitto.conf's max_packet_size: a bigger message is refused.
BROKER_MAX_PACKET = 262144

ALICE = Customer(
    id=1,
    name="王小明",
    phones=(PhoneNumber(raw="13812345678", e164="+8613812345678"),),
    value=95.0,
    segment=Segment.PLATINUM,
)


@dataclass
class FakeStore:
    """The directory and recorder protocols, in memory."""

    customers: list[Customer] = field(default_factory=lambda: [ALICE])
    broken: bool = False
    full: bool = False
    """The store's disk is full: call records are refused."""
    records: list[CallDetailRecord] = field(default_factory=list)
    interactions: list[tuple[int, Interaction]] = field(default_factory=list)

    async def find_by_number(self, e164: str) -> list[Customer]:
        if self.broken:
            raise StoreError("reading customers: disk I/O error")
        return [c for c in self.customers if any(p.e164 == e164 for p in c.phones)]

    async def recent_interactions(
        self, customer_id: int, limit: int = 5
    ) -> tuple[Interaction, ...]:
        return tuple(i for cid, i in self.interactions if cid == customer_id)[:limit]

    @property
    def calls(self) -> FakeStore:
        """Its call records (the store keeps them in a repository of their own)."""
        return self

    async def record_call(self, cdr: CallDetailRecord) -> bool:
        if self.full:
            raise StoreError("storing a call record: database or disk is full")
        self.records.append(cdr)
        return True

    async def add_interaction(self, customer_id: int, interaction: Interaction) -> None:
        self.interactions.append((customer_id, interaction))


class Agent:
    """A test's hands on one agent's topics."""

    def __init__(self, bus: InMemoryBus, agent_id: str) -> None:
        self.bus = bus
        self.agent_id = agent_id
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()

    async def send(self, command: AnyCommand) -> None:
        await self.bus.publish(topics.agent_commands(self.agent_id), command)

    async def do(self, command: AnyCommand) -> CommandResult:
        """Send a command and wait for the engine's answer to it: its result, or the event
        that answers it (an accept's CallConnected...: :func:`cti.protocol.answer`)."""
        await self.send(command)
        async with asyncio.timeout(60):
            while True:
                result = answer(await self.inbox.get())
                if result is not None and result.command_id == command.command_id:
                    return result

    async def expect(self, kind: type[T]) -> T:
        """The next message of ``kind`` (others are skipped); a minute (a safety net) at
        most: a test that bounds the wait wraps it in ``asyncio.timeout``."""
        async with asyncio.timeout(60):
            while True:
                message = await self.inbox.get()
                if isinstance(message, kind):
                    return message

    async def state(self) -> AgentState:
        return (await self.expect(AgentStateChanged)).state


@dataclass
class Center:
    bus: InMemoryBus
    trunk: SimTrunk
    store: FakeStore
    service: EngineService
    agents: dict[str, Agent]


@asynccontextmanager
async def center(
    agent_ids: list[str],
    extra_queues: list[dict[str, object]] | None = None,
    *,
    config: Config | None = None,
    **queue: Any,
) -> AsyncIterator[Center]:
    """The engine on a sim trunk with agents serving "general" (or ``config``'s agents)."""
    if config is None:
        queues = [{"name": "general", **queue}, *(extra_queues or [])]
        config = load_config(overrides={"queues": queues})
    agents_config = config.agents or [AgentConfig(id=a, queues={"general": 0.0}) for a in agent_ids]
    bus = InMemoryBus()
    trunk = SimTrunk()
    store = FakeStore()
    agents = {a: Agent(bus, a) for a in agent_ids}
    async with bus.subscribe("cti/v1/agents/+/+") as sub:

        async def route() -> None:
            async for topic, message in sub:
                agent_id = topics.agent_of(topic)
                if agent_id in agents and not topic.endswith("/commands"):
                    agents[agent_id].inbox.put_nowait(message)

        router_task = asyncio.create_task(route())
        try:
            async with engine_center(
                store, config=config, agents=agents_config, lines=[trunk], bus=bus, recorder=store
            ) as c:
                yield Center(bus, trunk, store, c.service, agents)
        finally:
            router_task.cancel()
            await asyncio.gather(router_task, return_exceptions=True)


async def ready(agent: Agent) -> None:
    await agent.send(Login(agent_id=agent.agent_id))
    assert await agent.state() is AgentState.NOT_READY
    await agent.send(SetReady(agent_id=agent.agent_id))
    assert await agent.state() is AgentState.READY


def test_known_caller_pops_answers_and_is_recorded_with_disposition() -> None:
    async def body() -> None:
        async with center(["1001"]) as c:
            a = c.agents["1001"]
            await ready(a)
            call_id = c.trunk.ring("138-1234-5678")
            offer = await a.expect(CallOffered)
            assert offer.pop.call_id == call_id
            assert offer.pop.caller_kind is CallerKind.KNOWN
            assert offer.pop.customer == ALICE
            assert "value 95" in offer.pop.priority_reason
            assert offer.dispositions[0] == "resolved"
            await a.send(AcceptOffer(agent_id="1001", call_id=call_id))
            await a.expect(CallConnected)
            assert c.trunk.state(call_id) is SimCallState.ANSWERED
            await asyncio.sleep(42)
            await a.send(HangUp(agent_id="1001", call_id=call_id))
            ended = await a.expect(CallEnded)
            assert ended.by == "agent"
            assert c.trunk.state(call_id) is None  # the line was hung up
            done = await a.do(
                CompleteWrapUp(
                    agent_id="1001", call_id=call_id, disposition="sale", note="回电 [b]周五[/b]"
                )
            )
            assert done.ok
            await c.service.flush()
            [cdr] = c.store.records
            assert (cdr.outcome, cdr.disposition, cdr.customer_id) == ("answered", "sale", 1)
            assert cdr.talk_s == pytest.approx(42, abs=0.1)
            assert cdr.note == "回电 [b]周五[/b]"
            assert c.store.interactions[0][1].disposition == "sale"
            assert c.store.interactions[0][1].note == "回电 [b]周五[/b]"

    virtual(body)


@pytest.mark.parametrize(
    ("ani", "kind"),
    [
        ("19912345678", CallerKind.UNKNOWN),
        ("P", CallerKind.PRIVATE),
        ("", CallerKind.PRIVATE),
        ("☎#*garbage", CallerKind.MALFORMED),
        ("1" * 40, CallerKind.MALFORMED),
    ],
)
def test_unknown_private_and_malformed_numbers_pop_a_new_caller(ani: str, kind: CallerKind) -> None:
    async def body() -> None:
        async with center(["1001"]) as c:
            a = c.agents["1001"]
            await ready(a)
            c.trunk.ring(ani)
            offer = await a.expect(CallOffered)
            assert offer.pop.caller_kind is kind
            assert offer.pop.customer is None
            assert offer.pop.ani == ani

    virtual(body)


def test_caller_who_gives_up_is_recorded_abandoned_and_leaves_the_queue() -> None:
    async def body() -> None:
        async with center(["1001"]) as c:
            call_id = c.trunk.ring("13812345678")
            await asyncio.sleep(2)
            status = c.bus.retained(topics.queue_status("general"))
            assert isinstance(status, QueueStatus)
            assert status.waiting == 1
            await asyncio.sleep(30)
            c.trunk.caller_hangs_up(call_id)
            await asyncio.sleep(2)
            await c.service.flush()
            [cdr] = c.store.records
            assert cdr.outcome == "abandoned"
            assert cdr.wait_s == pytest.approx(32, abs=0.01)
            status = c.bus.retained(topics.queue_status("general"))
            assert isinstance(status, QueueStatus)
            assert (status.waiting, status.abandoned) == (0, 1)

    virtual(body)


def test_unanswered_offer_goes_to_the_next_agent_and_the_first_goes_not_ready() -> None:
    async def body() -> None:
        async with center(["1001", "1002"], offer_timeout_s=10.0) as c:
            first, second = c.agents["1001"], c.agents["1002"]
            await ready(first)
            await ready(second)
            call_id = c.trunk.ring("13812345678")
            assert (await first.expect(CallOffered)).pop.call_id == call_id
            withdrawn = await first.expect(OfferWithdrawn)
            assert withdrawn.reason == "timeout"
            state = await first.expect(AgentStateChanged)
            while state.state is not AgentState.NOT_READY:
                state = await first.expect(AgentStateChanged)
            assert state.reason == "missed offer"
            offer = await second.expect(CallOffered)
            assert offer.pop.call_id == call_id
            assert offer.pop.waited_s == pytest.approx(10.0)

    virtual(body)


def test_offers_time_out_on_time_whether_the_timer_slept_to_an_earlier_or_later_moment() -> None:
    # The timer task is woken only for a deadline earlier than the one it sleeps to; a
    # later one is read when it wakes (issue 23). Here it first sleeps to an offer's
    # deadline that goes away (accepted), then to a wrap-up's 60 s away when an offer
    # due in 10 s comes.
    async def body() -> None:
        async with center(["1001", "1002"], offer_timeout_s=10.0, wrap_up_s=60.0) as c:
            first, second = c.agents["1001"], c.agents["1002"]
            await ready(first)
            await ready(second)
            loop = asyncio.get_running_loop()
            call_id = c.trunk.ring("13812345678")
            offer = await first.expect(CallOffered)
            assert (await first.do(AcceptOffer(agent_id="1001", call_id=call_id))).ok
            assert (await first.do(HangUp(agent_id="1001", call_id=call_id))).ok
            await asyncio.sleep(20)  # past the accepted offer's deadline: nothing due
            rung = loop.time()
            later = c.trunk.ring("13812345679")
            assert (await second.expect(CallOffered)).pop.call_id == later
            withdrawn = await second.expect(OfferWithdrawn)
            assert withdrawn.reason == "timeout"
            assert loop.time() - rung == pytest.approx(10.0, abs=0.01)
            assert offer.pop.call_id == call_id

    virtual(body)


def test_colleague_states_follow_each_state_and_reason_the_agent_goes_through() -> None:
    # Colleague views are kept by what they say and used again (issue 23): each change,
    # back to one already seen too, is published as it is.
    async def body() -> None:
        async with center(["1001"]) as c:
            a = c.agents["1001"]
            await ready(a)
            topic = topics.colleague_state("1001")
            seen = []
            for command in (
                SetNotReady(agent_id="1001", reason="lunch"),
                SetReady(agent_id="1001"),
                SetNotReady(agent_id="1001", reason="break"),
                SetNotReady(agent_id="1001", reason="lunch"),
                SetReady(agent_id="1001"),
            ):
                assert (await a.do(command)).ok
                await c.service.flush()
                view = c.bus.retained(topic)
                assert isinstance(view, ColleagueState)
                seen.append((view.state, view.reason))
            assert seen == [
                (AgentState.NOT_READY, "lunch"),
                (AgentState.READY, ""),
                (AgentState.NOT_READY, "break"),
                (AgentState.NOT_READY, "lunch"),
                (AgentState.READY, ""),
            ]

    virtual(body)


def test_repeated_command_is_applied_once_and_a_foreign_one_refused() -> None:
    async def body() -> None:
        async with center(["1001"]) as c:
            a = c.agents["1001"]
            await ready(a)
            call_id = c.trunk.ring("13812345678")
            await a.expect(CallOffered)
            accept = AcceptOffer(agent_id="1001", call_id=call_id)
            await a.send(accept)
            await a.send(accept)  # a retry with the same id
            await asyncio.sleep(1)
            seen = _drain(a)
            # Answered alike: first by the CallConnected it caused, then, the repeat, by
            # the result the engine remembered; applied once.
            answers = [result for result in map(answer, seen) if result is not None]
            assert answers == [CommandResult(command_id=accept.command_id, ok=True)] * 2
            connected = [m for m in seen if isinstance(m, CallConnected)]
            assert [m.command_id for m in connected] == [accept.command_id]
            assert seen.index(connected[0]) < seen.index(answers[1])
            # A command for 1001 sent on 1002's topic is refused.
            await c.bus.publish(
                topics.agent_commands("1002"), HangUp(agent_id="1001", call_id=call_id)
            )
            await asyncio.sleep(1)
            assert c.trunk.state(call_id) is SimCallState.ANSWERED

    virtual(body)


def test_bad_payloads_and_bad_commands_do_not_stop_the_engine() -> None:
    async def body() -> None:
        async with center(["1001"]) as c:
            a = c.agents["1001"]
            c.bus.publish_payload(topics.agent_commands("1001"), b"\xff\xfe not json")
            await a.send(AcceptOffer(agent_id="1001", call_id="no-such-call"))
            refused = await a.expect(CommandResult)
            assert not refused.ok
            assert "no-such-call" in refused.error
            await c.bus.publish(topics.agent_commands("9999"), Login(agent_id="9999"))
            await asyncio.sleep(1)
            await ready(a)  # the engine still works
            c.trunk.ring("13812345678")
            assert (await a.expect(CallOffered)).pop.customer == ALICE

    virtual(body)


def _drain(agent: Agent) -> list[Message]:
    out = []
    while not agent.inbox.empty():
        out.append(agent.inbox.get_nowait())
    return out


def test_a_failing_customer_lookup_still_routes_the_call_as_unknown() -> None:
    async def body() -> None:
        async with center(["1001"]) as c:
            a = c.agents["1001"]
            await ready(a)
            c.store.broken = True
            call_id = c.trunk.ring("13812345678")
            offer = await a.expect(CallOffered)
            assert offer.pop.call_id == call_id
            assert offer.pop.caller_kind is CallerKind.UNKNOWN
            assert offer.pop.e164 == "+8613812345678"

    virtual(body)


class Supervisor:
    def __init__(self, bus: InMemoryBus, supervisor_id: str = "s1") -> None:
        self.bus = bus
        self.supervisor_id = supervisor_id

    async def do(self, command: SupervisorCommand) -> CommandResult:
        async with self.bus.subscribe(topics.supervisor_events(self.supervisor_id)) as sub:
            await self.bus.publish(topics.supervisor_commands(self.supervisor_id), command)
            async with asyncio.timeout(60):
                async for _topic, message in sub:
                    if (
                        isinstance(message, CommandResult)
                        and message.command_id == command.command_id
                    ):
                        return message
        raise AssertionError("no result")  # pragma: no cover


def test_virtual_hold_releases_the_line_keeps_the_place_and_dials_back() -> None:
    async def body() -> None:
        async with center(["1001"]) as c:
            a = c.agents["1001"]
            first = c.trunk.ring("13812345678")
            second = c.trunk.ring("19900000002")
            await asyncio.sleep(5)
            assert c.trunk.request_callback(first)
            await asyncio.sleep(1)
            assert c.trunk.state(first) is None  # the caller's line was released
            await c.service.publish_status()
            calls = c.bus.retained(topics.queue_calls("general"))
            assert isinstance(calls, QueueCalls)
            assert [w.call_id for w in calls.calls] == [first, second]  # kept its place
            assert calls.calls[0].kind == "callback"
            await a.send(Login(agent_id="1001"))
            await a.send(SetReady(agent_id="1001"))
            offer = await a.expect(CallOffered)
            assert offer.pop.call_id == first
            await a.send(AcceptOffer(agent_id="1001", call_id=first))
            await a.expect(CallConnected)
            assert c.trunk.dialled == [(first, "+8613812345678")]
            await a.send(HangUp(agent_id="1001", call_id=first))
            await a.do(CompleteWrapUp(agent_id="1001", call_id=first, disposition="resolved"))
            await c.service.flush()
            cdr = next(r for r in c.store.records if r.call_id == first)
            assert (cdr.kind, cdr.outcome) == ("callback", "answered")
            assert cdr.callback_requested_at is not None

    virtual(body)


def test_scheduled_callback_enters_the_queue_at_the_customers_local_time() -> None:
    async def body() -> None:
        async with center(["1001"]) as c:
            a = c.agents["1001"]
            await ready(a)
            # Virtual time starts 2026-01-05 08:00 UTC = 16:00 in Shanghai.
            result = await a.do(
                ScheduleCallback(
                    agent_id="1001",
                    number="138 1234 5678",
                    local_time="2026-01-05T16:30",
                    time_zone="Asia/Shanghai",
                )
            )
            assert result.ok, result.error
            await asyncio.sleep(29 * 60)
            assert a.inbox.empty() or not any(isinstance(m, CallOffered) for m in _drain(a))
            await asyncio.sleep(30)
            offer = await a.expect(CallOffered)  # within the next minute
            assert offer.pop.customer == ALICE
            assert wall_time() == pytest.approx(VIRTUAL_EPOCH + 30 * 60, abs=0.01)
            bad = await a.do(
                ScheduleCallback(agent_id="1001", number="12#", local_time="2026-01-05T17:00")
            )
            assert not bad.ok
            assert "12#" in bad.error
            bad = await a.do(
                ScheduleCallback(
                    agent_id="1001", number="13812345678", local_time="tomorrow", time_zone="UTC"
                )
            )
            assert not bad.ok
            assert "ISO 8601" in bad.error

    virtual(body)


def test_supervisor_moves_and_reprioritises_waiting_calls_and_forces_agents() -> None:
    async def body() -> None:
        config_queues: list[dict[str, object]] = [
            {"name": "general"},
            {"name": "vip", "priority": 500},
        ]
        async with center(["1001"], extra_queues=config_queues[1:]) as c:
            boss = Supervisor(c.bus)
            old = c.trunk.ring("19900000001")
            await asyncio.sleep(10)
            new = c.trunk.ring("19900000002")
            await asyncio.sleep(1)
            r = await boss.do(ChangeCallPriority(supervisor_id="s1", call_id=new, priority=1000))
            assert r.ok
            assert c.service.router.waiting_in_order("general") == [new, old]
            r = await boss.do(MoveWaitingCall(supervisor_id="s1", call_id=old, queue="vip"))
            assert r.ok
            assert c.service.router.call_queue(old) == "vip"
            assert c.service.router.call_arrived_at(old) < c.service.router.call_arrived_at(new)
            r = await boss.do(MoveWaitingCall(supervisor_id="s1", call_id=old, queue="nowhere"))
            assert not r.ok
            assert "nowhere" in r.error
            a = c.agents["1001"]
            await a.send(Login(agent_id="1001"))
            await a.send(SetReady(agent_id="1001"))
            await a.expect(CallOffered)
            r = await boss.do(ForceNotReady(supervisor_id="s1", agent_id="1001"))
            assert r.ok  # reserved: the offer is given back and the agent goes Not Ready
            assert c.service.router.agent("1001").state is AgentState.NOT_READY
            r = await boss.do(ForceLogout(supervisor_id="s1", agent_id="1001"))
            assert r.ok
            assert c.service.router.agent("1001").state is AgentState.LOGGED_OUT
            # A supervisor command on another supervisor's topic is refused.
            forged = ForceLogout(supervisor_id="s2", agent_id="1001")
            await c.bus.publish(topics.supervisor_commands("s1"), forged)

    virtual(body)


def test_queue_status_carries_occupancy_and_calls_carry_estimated_waits() -> None:
    async def body() -> None:
        async with center(["1001"]) as c:
            a = c.agents["1001"]
            await ready(a)
            call_id = c.trunk.ring("13812345678")
            await a.expect(CallOffered)
            await a.send(AcceptOffer(agent_id="1001", call_id=call_id))
            waiting = [c.trunk.ring(f"1990000000{i}") for i in range(3)]
            await asyncio.sleep(100)
            await c.service.publish_status()
            status = c.bus.retained(topics.queue_status("general"))
            calls = c.bus.retained(topics.queue_calls("general"))
            assert isinstance(status, QueueStatus)
            assert isinstance(calls, QueueCalls)
            assert status.occupancy is not None
            assert status.occupancy > 0.9
            assert status.agents_by_state["talking"] == 1
            assert [w.call_id for w in calls.calls] == waiting
            estimates = [w.estimated_wait_s for w in calls.calls]
            assert None not in estimates
            known = [e for e in estimates if e is not None]
            assert known == sorted(known)
            assert known[0] > 0  # nobody Ready: the first waits for the agent

    virtual(body)


def test_configuration_reload_changes_routing_without_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "cti.toml"
    path.write_text(
        '[[queues]]\nname = "general"\nskills = { mandarin = 3 }\n'
        '[[agents]]\nid = "1001"\nskills = { english = 5 }\nqueues = { general = 0 }\n',
        encoding="utf-8",
    )

    async def body() -> None:
        async with center(["1001"], config=load_config(path)) as c:
            a = c.agents["1001"]
            follow = asyncio.create_task(c.service.follow_config(path, interval_s=1.0))
            await ready(a)
            call_id = c.trunk.ring("13812345678")
            await asyncio.sleep(30)
            assert c.service.router.call_phase(call_id).value == "queued"  # lacks mandarin
            # A broken edit is refused and changes nothing.
            path.write_text("[[queues]]\nname = 1\n", encoding="utf-8")
            await asyncio.sleep(3)
            assert c.service.router.call_phase(call_id).value == "queued"
            # The supervisor gives 1001 mandarin: the waiting call is offered at once.
            path.write_text(
                '[[queues]]\nname = "general"\nskills = { mandarin = 3 }\n'
                '[[agents]]\nid = "1001"\nskills = { mandarin = 4 }\n'
                "queues = { general = 0 }\n",
                encoding="utf-8",
            )
            async with asyncio.timeout(10):  # at once, not after its wait
                offer = await a.expect(CallOffered)
            assert offer.pop.call_id == call_id
            assert offer.pop.waited_s > 30  # it kept its age
            follow.cancel()

    virtual(body)


def test_a_call_goes_to_its_dnis_queue_else_its_lines_queue_else_the_default() -> None:
    async def body() -> None:
        config = load_config(
            overrides={
                "engine": {"dnis_queues": {"4008001234": "vip"}},
                "queues": [{"name": "general"}, {"name": "sales"}, {"name": "vip"}],
                "lines": [{"kind": "sim", "name": "sim", "queue": "sales"}],
            }
        )
        async with center([], config=config) as c:
            by_line = c.trunk.ring("138-1234-5678")
            c.trunk._dnis = "4008001234"  # the trunk now answers for the VIP number
            by_dnis = c.trunk.ring("138-1234-5678")
            router = c.service.router
            await until(lambda: router.waiting("sales") + router.waiting("vip") == 2)
            assert router.call_queue(by_line) == "sales"
            assert router.call_queue(by_dnis) == "vip"
            assert router.waiting("general") == 0

    virtual(body)


def test_a_console_that_asks_for_a_snapshot_mid_call_gets_the_card_back() -> None:
    async def body() -> None:
        async with center(["1001"]) as c:
            a = c.agents["1001"]
            await ready(a)
            call_id = c.trunk.ring("138-1234-5678")
            await a.expect(CallOffered)
            await a.send(AcceptOffer(agent_id="1001", call_id=call_id))
            await a.expect(CallConnected)
            await a.send(RequestSnapshot(agent_id="1001"))  # the console restarted
            current = await a.expect(CurrentCall)
            assert current.call_id == call_id
            assert current.pop.customer == ALICE
            assert current.dispositions[0] == "resolved"
            await a.send(HangUp(agent_id="1001", call_id=call_id))
            await a.expect(CallEnded)
            await a.send(RequestSnapshot(agent_id="1001"))  # in wrap-up: still its call
            assert (await a.expect(CurrentCall)).call_id == call_id
            await a.do(CompleteWrapUp(agent_id="1001", call_id=call_id, disposition="resolved"))
            await a.send(RequestSnapshot(agent_id="1001"))  # the call is over: no card
            assert await a.state() is AgentState.READY
            await c.service.flush()
            assert not any(isinstance(m, CurrentCall) for m in drain(a))

    virtual(body)


def drain(agent: Agent) -> list[Message]:
    """The messages an agent has received and not yet read."""
    out: list[Message] = []
    while not agent.inbox.empty():
        out.append(agent.inbox.get_nowait())
    return out


@pytest.mark.security
def test_a_flood_of_waiting_calls_is_sent_in_part_with_its_total() -> None:
    """2,013 waiting calls made a 346 KB snapshot that the broker refused: the wallboard
    lost the list exactly during a flood. The engine sends the first in rank order."""

    async def body() -> None:
        async with center([]) as c:
            calls = [c.trunk.ring(f"1990000{n:04d}") for n in range(2013)]
            await asyncio.sleep(1)
            await c.service.publish_status()
            snapshot = c.bus.retained(topics.queue_calls("general"))
            assert isinstance(snapshot, QueueCalls)
            assert snapshot.total == 2013
            assert len(snapshot.calls) == MAX_QUEUE_CALLS_SENT
            assert [w.call_id for w in snapshot.calls] == calls[:MAX_QUEUE_CALLS_SENT]
            assert [w.position for w in snapshot.calls] == list(range(1, 201))
            assert len(encode(snapshot)) < BROKER_MAX_PACKET

    virtual(body)


@pytest.mark.security
def test_waiting_calls_with_long_names_are_cut_to_fit_one_message() -> None:
    """Long customer names (wide characters, three bytes each) fill the message before
    the count does: fewer calls are sent, still a prefix in rank order, with the total."""

    async def body() -> None:
        async with center([]) as c:
            c.store.customers = [ALICE.model_copy(update={"name": "王" * 2000})]
            calls = [c.trunk.ring("13812345678") for _ in range(250)]
            await asyncio.sleep(1)
            await c.service.publish_status()
            snapshot = c.bus.retained(topics.queue_calls("general"))
            assert isinstance(snapshot, QueueCalls)
            assert snapshot.total == 250
            assert 0 < len(snapshot.calls) < MAX_QUEUE_CALLS_SENT
            assert [w.call_id for w in snapshot.calls] == calls[: len(snapshot.calls)]
            assert len(encode(snapshot)) <= MAX_QUEUE_CALLS_BYTES + 1024  # + the envelope

    virtual(body)


@pytest.mark.security
def test_a_caller_with_worst_case_history_still_gets_the_card_offered_and_back() -> None:
    """Five contacts with 4,000-character notes and 500 long script answers each made a
    33 MB offer that the bus dropped: the call was offered with no card, none reached
    the desk (issue 17). The card is cut to fit, newest history first."""

    async def body() -> None:
        async with center(["1001"]) as c:
            contacts = worst_contacts(5, answers=MAX_SCRIPT_ANSWERS)
            c.store.interactions = [(ALICE.id, row) for row in reversed(contacts)]
            a = c.agents["1001"]
            await ready(a)
            call_id = c.trunk.ring("138-1234-5678")
            offer = await a.expect(CallOffered)
            assert offer.pop.call_id == call_id
            assert offer.pop.customer == ALICE
            assert len(encode(offer)) <= MAX_MESSAGE_BYTES
            history = offer.pop.history
            assert history
            assert history[0].call_id == "call-4"
            assert len(history) + offer.pop.history_left_out == 5
            assert "more characters not shown]" in history[0].note
            await a.send(AcceptOffer(agent_id="1001", call_id=call_id))
            await a.expect(CallConnected)
            await a.send(RequestSnapshot(agent_id="1001"))  # the console restarted
            current = await a.expect(CurrentCall)
            assert current.pop == offer.pop
            assert c.bus.dropped == 0

    virtual(body)


@pytest.mark.recovery
def test_engine_health_is_refreshed_while_a_trouble_lasts_and_says_since_when() -> None:
    """A wallboard started mid-trouble saw the time of the last change as its start, and
    the counts stood still between changes: the engine now says since when (kept across
    changes of kind) and publishes its health again each status interval, only while a
    trouble lasts."""

    async def body() -> None:
        async with center(["1001"]) as c:
            healths: list[EngineHealth] = []

            async def collect() -> None:
                async with c.bus.subscribe(topics.engine_health()) as sub:
                    async for _, message in sub:
                        assert isinstance(message, EngineHealth)
                        healths.append(message)

            listener = asyncio.create_task(collect())
            a = c.agents["1001"]
            await ready(a)

            async def one_call() -> None:
                call_id = c.trunk.ring("138-1234-5678")
                await a.expect(CallOffered)
                await a.send(AcceptOffer(agent_id="1001", call_id=call_id))
                await a.expect(CallConnected)
                await a.send(HangUp(agent_id="1001", call_id=call_id))
                await a.expect(CallEnded)
                await a.do(CompleteWrapUp(agent_id="1001", call_id=call_id, disposition="ok"))
                await asyncio.sleep(0.1)  # virtual: the record is tried

            c.store.full = True
            await one_call()
            [began] = healths
            assert began.kinds == ("records",)
            assert began.records_held == 1
            assert began.since_wall is not None
            assert began.since_wall <= began.at_wall
            await asyncio.sleep(3)  # three status intervals: the same trouble again
            assert len(healths) >= 3
            assert {(h.kinds, h.since_wall) for h in healths} == {(("records",), began.since_wall)}
            assert [h.at_wall for h in healths] == sorted({h.at_wall for h in healths})
            await one_call()  # the count moves: the next refresh says so
            await asyncio.sleep(1)
            assert healths[-1].records_held == 2

            c.store.full = False  # space came back: all written, and then quiet
            c.service.retry_writes()
            await asyncio.sleep(1)
            assert healths[-1].ok
            assert healths[-1].since_wall is None
            quiet = len(healths)
            await asyncio.sleep(5)
            assert len(healths) == quiet  # no publication while all is well
            assert len(c.store.records) == 2

            c.store.full = True  # a new trouble: a new start, kept when a kind is added
            c.service.max_held_records = 1
            await one_call()
            again = healths[-1]
            assert again.since_wall is not None
            assert again.since_wall > began.since_wall + 5
            await one_call()  # the memory spool is full: a record is lost
            await asyncio.sleep(1)
            assert healths[-1].kinds == ("records", "records_lost")
            assert healths[-1].since_wall == again.since_wall
            listener.cancel()

    virtual(body)
