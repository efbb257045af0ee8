"""Call control in the real desktop against the real engine, in-process.

No fake: the engine service routes simulator-trunk calls over the in-memory bus to the
desk, with customers in a real SQLite store. Each agent action of REFERENCE §7 is
driven with keys and checked on the line (the trunk), in the router and on screen.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static

from agent_console.desktop import AgentDesktop
from agent_console.dialogs import ChoiceDialog, Prompt
from agent_console.widgets import CustomerCardView
from cti import topics
from cti.bus.memory import InMemoryBus
from cti.config import load_config
from cti.models import AgentState, CallDetailRecord, Customer, PhoneNumber, Segment
from cti.protocol import (
    AcceptOffer,
    AgentStateChanged,
    AnyCommand,
    CallOffered,
    CommandResult,
    CompleteConsult,
    CompleteWrapUp,
    ConsultCall,
    HangUp,
    Login,
    Message,
    SetReady,
)
from cti.store.database import Store
from cti.store.journal import Journal
from telephony_adapters.base import LineCapabilities
from telephony_adapters.sim import SimTrunk
from tests.harness import Center, center_config, engine_center, settle

pytestmark = [pytest.mark.console, pytest.mark.integration]

WANG = Customer(
    id=1,
    name="王小明",
    phones=(PhoneNumber(raw="+8613800000001", e164="+8613800000001"),),
    value=90.0,
    segment=Segment.GOLD,
)
SIZE = (100, 30)


@contextlib.asynccontextmanager
async def open_center(
    tmp_path: Path,
    trunk: SimTrunk | None = None,
    queues: list[dict[str, Any]] | None = None,
) -> AsyncIterator[Center]:
    queues = queues or [
        {"name": "general", "wrap_up_s": 600, "wrap_up_max_s": 900},
        {"name": "billing", "wrap_up_s": 600},
    ]
    config = center_config(queues, engine={"default_queue": queues[0]["name"]})
    names = [q.name for q in config.queues]
    async with engine_center(
        tmp_path / "cti.db",
        config=config,
        agents={"1001": names, "1002": names},
        lines=[trunk or SimTrunk()],
        customers=[WANG],
    ) as center:
        yield center


@pytest.fixture
async def center(tmp_path: Path) -> AsyncIterator[Center]:
    async with open_center(tmp_path) as opened:
        yield opened


@dataclass
class OtherAgent:
    """Agent 1002 driven straight on the bus (no second desk): its state and offers."""

    bus: InMemoryBus
    agent_id: str = "1002"
    state: AgentStateChanged | None = None
    offers: list[CallOffered] = field(default_factory=list)
    results: list[CommandResult] = field(default_factory=list)

    async def follow(self, attached: asyncio.Event) -> None:
        async with (
            self.bus.subscribe(topics.agent_events(self.agent_id)) as events,
            self.bus.subscribe(topics.agent_state(self.agent_id)) as states,
        ):
            attached.set()
            async with asyncio.TaskGroup() as group:
                group.create_task(self._pump(events))
                group.create_task(self._pump(states))

    async def _pump(self, subscription: Any) -> None:
        async for _topic, message in subscription:
            self._take(message)

    def _take(self, message: Message) -> None:
        if isinstance(message, AgentStateChanged):
            self.state = message
        elif isinstance(message, CallOffered):
            self.offers.append(message)
        elif isinstance(message, CommandResult):
            self.results.append(message)

    async def send(self, command: AnyCommand) -> None:
        await self.bus.publish(topics.agent_commands(self.agent_id), command)

    @property
    def current(self) -> AgentState | None:
        return self.state.state if self.state is not None else None


@contextlib.asynccontextmanager
async def other_agent(pilot: Pilot[Any], center: Center) -> AsyncIterator[OtherAgent]:
    """Agent 1002, logged in and Ready."""
    other = OtherAgent(center.bus)
    attached = asyncio.Event()
    task = asyncio.create_task(other.follow(attached))
    await attached.wait()
    await other.send(Login(agent_id="1002"))
    await settle(pilot, lambda: other.current is AgentState.NOT_READY)
    await other.send(SetReady(agent_id="1002"))
    await settle(pilot, lambda: other.current in (AgentState.READY, AgentState.RESERVED))
    try:
        yield other
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def talking(pilot: Pilot[Any], center: Center) -> tuple[AgentDesktop, str]:
    """Log in, go Ready, take a call from 王小明: the desk is talking on it."""
    app = pilot.app
    assert isinstance(app, AgentDesktop)
    await pilot.press("enter")
    await settle(pilot, lambda: app.agent_state is AgentState.NOT_READY)
    await pilot.press("r")
    await settle(pilot, lambda: app.agent_state is AgentState.READY)
    call_id = center.trunk.ring("+8613800000001")
    await settle(pilot, lambda: app.view == "offer" and app.offer is not None)
    await pilot.press("a")
    await settle(pilot, lambda: app.view == "talking" and app.agent_state is AgentState.TALKING)
    return app, call_id


def card_text(app: AgentDesktop) -> str:
    return str(app.query_one("#pop-card", CustomerCardView).render())


# --- CurrentCall: a desk restarted mid-call gets the card back -------------------------


async def test_a_desk_restarted_mid_call_gets_the_card_back_talking_then_in_wrap_up(
    center: Center,
) -> None:
    first = AgentDesktop(center.bus, "1001", queues=["general"])
    async with first.run_test(size=SIZE) as pilot:
        _, call_id = await talking(pilot, center)

    again = AgentDesktop(center.bus, "1001", queues=["general"])
    async with again.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await settle(pilot, lambda: again.offer is not None and again.view == "talking")
        assert again.current_call_id == call_id
        assert "王小明" in card_text(again)
        assert again.check_action("hang_up", ()) is True
        await pilot.press("h")
        await settle(pilot, lambda: again.view == "wrap_up")

    third = AgentDesktop(center.bus, "1001", queues=["general"])
    async with third.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await settle(pilot, lambda: third.offer is not None and third.view == "wrap_up")
        assert third.current_call_id == call_id
        assert third.agent_state is AgentState.WRAP_UP
        assert "王小明" in card_text(third)
        await pilot.press("3")  # the third configured disposition: "sale"
        await settle(pilot, lambda: third.agent_state is AgentState.READY)
    await center.service.flush()
    [record] = await center.store.calls.records()
    assert (record.call_id, record.disposition, record.agent_id) == (call_id, "sale", "1001")


def banner(app: AgentDesktop) -> str:
    return str(app.query_one("#call-banner", Static).render())


def notices(app: AgentDesktop) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def type_into_prompt(pilot: Pilot[Any], text: str) -> None:
    app = pilot.app
    await settle(pilot, lambda: isinstance(app.screen, Prompt))
    app.screen.query_one(Input).value = text
    await pilot.press("enter")
    await settle(pilot, lambda: not isinstance(app.screen, Prompt))


async def records(center: Center, count: int = 1) -> list[CallDetailRecord]:
    for _ in range(500):
        await center.service.flush()
        stored = await center.store.calls.records()
        if len(stored) >= count:
            return stored
        await asyncio.sleep(0)
    raise AssertionError("the call records did not come")


# --- hold, resume, mute ----------------------------------------------------------------


async def test_hold_resume_and_mute_reach_the_line_and_show_on_the_banner(
    center: Center,
) -> None:
    app = AgentDesktop(center.bus, "1001", queues=["general"])
    async with app.run_test(size=SIZE) as pilot:
        app, call_id = await talking(pilot, center)
        await pilot.press("o")
        await settle(pilot, lambda: center.trunk.held(call_id) and "ON HOLD" in banner(app))
        await pilot.press("o")
        await settle(pilot, lambda: not center.trunk.held(call_id) and "ON HOLD" not in banner(app))
        await pilot.press("m")
        await settle(pilot, lambda: center.trunk.muted(call_id) and "MUTED" in banner(app))
        await pilot.press("m")
        await settle(pilot, lambda: not center.trunk.muted(call_id))
        assert "MUTED" not in banner(app)


async def test_a_plain_line_shows_hold_and_consult_disabled_and_mutes_on_the_desk_only(
    tmp_path: Path,
) -> None:
    plain = SimTrunk(capabilities=LineCapabilities(can_dial=True))
    async with open_center(tmp_path, plain) as center:
        app = AgentDesktop(center.bus, "1001", queues=["general"])
        async with app.run_test(size=SIZE) as pilot:
            app, call_id = await talking(pilot, center)
            assert app.check_action("hold", ()) is None  # shown, disabled
            assert app.check_action("consult", ()) is None
            assert app.check_action("transfer", ()) is True  # the engine re-routes it
            await pilot.press("o")
            await pilot.pause()
            assert not center.trunk.held(call_id)
            await pilot.press("m")
            await settle(pilot, lambda: "MUTED here only (the line cannot mute)" in banner(app))
            assert any("headset" in note for note in notices(app))
            assert not center.trunk.muted(call_id)


# --- blind transfers ------------------------------------------------------------------


async def test_blind_transfer_to_a_queue_then_another_agent_takes_it(center: Center) -> None:
    app = AgentDesktop(center.bus, "1001", queues=["general"])
    async with app.run_test(size=SIZE) as pilot:
        app, call_id = await talking(pilot, center)
        await pilot.press("w")
        await type_into_prompt(pilot, "billing")
        await settle(pilot, lambda: app.view == "wrap_up")
        assert center.service.router.call_queue(call_id) == "billing"
        assert center.trunk.held(call_id)  # the caller waits on hold, still on the line
        assert any("handed on" in note for note in notices(app))
        async with other_agent(pilot, center) as other:
            await settle(pilot, lambda: bool(other.offers))
            assert other.offers[-1].pop.customer is not None
            assert other.offers[-1].pop.customer.name == "王小明"
            await other.send(AcceptOffer(agent_id="1002", call_id=call_id))
            await settle(pilot, lambda: other.current is AgentState.TALKING)
            await settle(pilot, lambda: not center.trunk.held(call_id))
            await pilot.press("2")  # 1001's part: "follow-up"
            await settle(pilot, lambda: app.agent_state is AgentState.READY)
            await other.send(HangUp(agent_id="1002", call_id=call_id))
            await settle(pilot, lambda: other.current is AgentState.WRAP_UP)
            await other.send(
                CompleteWrapUp(agent_id="1002", call_id=call_id, disposition="resolved")
            )
            [record] = await records(center)
    assert (record.agent_id, record.queue, record.outcome) == ("1002", "billing", "answered")
    assert record.note == "transferred by 1001 to queue billing · 1001: follow-up"
    assert record.call_id == call_id
    assert record.disposition == "resolved"


async def test_blind_transfer_to_an_agent_and_a_refused_one_says_why(center: Center) -> None:
    app = AgentDesktop(center.bus, "1001", queues=["general"])
    async with app.run_test(size=SIZE) as pilot:
        app, call_id = await talking(pilot, center)
        await pilot.press("w")
        await type_into_prompt(pilot, "9999")
        await settle(pilot, lambda: any("no agent with id '9999'" in n for n in notices(app)))
        assert app.view == "talking"
        assert app.agent_state is AgentState.TALKING
        async with other_agent(pilot, center) as other:
            await pilot.press("w")
            await type_into_prompt(pilot, "1002")
            await settle(pilot, lambda: app.view == "wrap_up" and bool(other.offers))
            assert other.offers[-1].pop.call_id == call_id
            assert other.current is AgentState.RESERVED


# --- consult transfer ----------------------------------------------------------------


async def test_consult_then_hand_over(center: Center) -> None:
    app = AgentDesktop(center.bus, "1001", queues=["general"])
    async with app.run_test(size=SIZE) as pilot:
        app, call_id = await talking(pilot, center)
        async with other_agent(pilot, center) as other:
            await pilot.press("k")
            await type_into_prompt(pilot, "1002")
            await settle(pilot, lambda: "consulting 1002 (ringing)" in banner(app))
            assert center.trunk.held(call_id)
            assert other.offers[-1].consult_from == "1001"
            assert app.check_action("hand_over", ()) is True
            assert app.check_action("transfer", ()) is False  # not during a consultation
            await other.send(AcceptOffer(agent_id="1002", call_id=call_id))
            await settle(pilot, lambda: "consulting 1002 (talking)" in banner(app))
            await pilot.press("y")
            await settle(pilot, lambda: app.view == "wrap_up")
            assert center.service.router.call_agent(call_id) == "1002"
            assert not center.trunk.held(call_id)  # the caller talks with 1002 now
            assert other.current is AgentState.TALKING


async def test_consult_then_cancel_and_the_caller_is_back(center: Center) -> None:
    app = AgentDesktop(center.bus, "1001", queues=["general"])
    async with app.run_test(size=SIZE) as pilot:
        app, call_id = await talking(pilot, center)
        async with other_agent(pilot, center) as other:
            await pilot.press("k")
            await type_into_prompt(pilot, "1002")
            await settle(pilot, lambda: other.current is AgentState.RESERVED)
            await other.send(AcceptOffer(agent_id="1002", call_id=call_id))
            await settle(pilot, lambda: "(talking)" in banner(app))
            await pilot.press("j")  # a conference first: the SimTrunk can
            await settle(pilot, lambda: center.trunk.conferenced(call_id))
            await settle(pilot, lambda: "(conference)" in banner(app))
            await pilot.press("g")
            await settle(pilot, lambda: other.current is AgentState.READY)
            await settle(pilot, lambda: "consulting" not in banner(app))
            assert app.view == "talking"
            assert app.agent_state is AgentState.TALKING
            assert not center.trunk.held(call_id)
            assert not center.trunk.conferenced(call_id)
            assert any("consultation ended" in n for n in notices(app))


# --- manual dial ----------------------------------------------------------------------


async def test_dial_a_number_then_dial_the_last_caller_from_the_card(center: Center) -> None:
    app = AgentDesktop(center.bus, "1001", queues=["general"])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await settle(pilot, lambda: app.agent_state is AgentState.NOT_READY)
        await pilot.press("d")
        await type_into_prompt(pilot, "138 0000 0001")
        await settle(pilot, lambda: app.view == "talking" and app.offer is not None)
        [(call_id, number)] = center.trunk.dialled
        assert number == "+8613800000001"
        assert app.current_call_id == call_id
        assert "王小明" in card_text(app)
        await pilot.press("h")
        await settle(pilot, lambda: app.view == "wrap_up")
        await pilot.press("3")
        await settle(pilot, lambda: app.view == "idle")
        await pilot.press("d")
        await settle(pilot, lambda: isinstance(app.screen, Prompt))
        assert app.screen.query_one(Input).value == "+8613800000001"  # from the card
        await pilot.press("escape")
    [record] = await records(center)
    assert (record.kind, record.agent_id, record.disposition) == ("manual", "1001", "sale")


# --- states: reasons, extend wrap-up, not ready after the call --------------------------


async def test_not_ready_reasons_extend_wrap_up_and_not_ready_after_the_call(
    center: Center,
) -> None:
    app = AgentDesktop(center.bus, "1001", queues=["general"])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await settle(pilot, lambda: app.agent_state is AgentState.NOT_READY)
        await pilot.press("r")
        await settle(pilot, lambda: app.agent_state is AgentState.READY)
        await pilot.press("n")
        await settle(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        assert isinstance(app.screen, ChoiceDialog)
        assert app.screen.options == ("break", "lunch", "meeting", "training", "coaching")
        await pilot.press("2")
        await settle(pilot, lambda: app.agent_state is AgentState.NOT_READY)
        assert "NOT READY (lunch)" in str(app.query_one("#state-bar").render())
        await pilot.press("r")
        await settle(pilot, lambda: app.agent_state is AgentState.READY)

        call_id = center.trunk.ring("+8613800000001")
        await settle(pilot, lambda: app.view == "offer" and app.offer is not None)
        await pilot.press("a")
        await settle(pilot, lambda: app.agent_state is AgentState.TALKING)
        await pilot.press("h")
        await settle(pilot, lambda: app.agent_state is AgentState.WRAP_UP)
        state = app.model.state
        assert state is not None
        assert state.wrap_up_deadline_wall is not None
        first = state.wrap_up_deadline_wall
        await pilot.press("e")
        await settle(
            pilot,
            lambda: (
                app.model.state is not None
                and (app.model.state.wrap_up_deadline_wall or 0) >= first + 29
            ),
        )
        await pilot.press("n")  # in wrap-up: not ready after this call
        await settle(pilot, lambda: "auto-not ready" in wrap_banner(app))
        await pilot.press("1")
        await settle(pilot, lambda: app.agent_state is AgentState.NOT_READY)
        assert app.model.state is not None
        assert app.model.state.reason == "not ready after call"
        assert app.current_call_id is None
        assert call_id


def wrap_banner(app: AgentDesktop) -> str:
    return str(app.query_one("#wrap-up-banner", Static).render())


# --- the script: its transfer action, its answers kept --------------------------------

TINY = """\
[script]
name = "Tiny"
version = "1"
direction = "inbound"
start = "ask"

[nodes.ask]
kind = "question"
text = "满意吗？"
field = "happy"
choices = [
    { label = "是", value = "yes", next = "more" },
    { label = "否", value = "no", next = "more" },
]

[nodes.more]
kind = "question"
text = "还有别的问题吗？"
field = "more"
choices = [{ label = "没有", value = "no", next = "bye" }]

[nodes.bye]
kind = "end"
"""


async def test_the_scripts_transfer_action_transfers_the_call(tmp_path: Path) -> None:
    queues = [
        {"name": "service", "wrap_up_s": 600, "script": "inbound_service_zh"},
        {"name": "billing_vip", "wrap_up_s": 600},
    ]
    async with open_center(tmp_path, queues=queues) as center:
        app = AgentDesktop(center.bus, "1001", queues=["service"])
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("enter")
            await settle(pilot, lambda: app.agent_state is AgentState.NOT_READY)
            await pilot.press("r")
            await settle(pilot, lambda: app.agent_state is AgentState.READY)
            call_id = center.trunk.ring("+8613800000001")
            await settle(pilot, lambda: app.script_run is not None)
            await pilot.press("a")
            await settle(pilot, lambda: app.agent_state is AgentState.TALKING)
            await settle(pilot, lambda: app.focused is not None)
            await pilot.press("enter")  # greet -> reason
            await settle(pilot, lambda: run_node(app) == "reason")
            await pilot.press("1")  # billing
            await settle(pilot, lambda: run_node(app) == "account")
            await pilot.press(*"12345678", "enter")  # a gold customer: to the VIP line
            await settle(pilot, lambda: app.view == "wrap_up")
            assert center.service.router.call_queue(call_id) == "billing_vip"
            assert center.trunk.held(call_id)


async def test_script_answers_are_kept_when_the_wrap_up_timer_ends_first(
    tmp_path: Path,
) -> None:
    script = tmp_path / "tiny.toml"
    script.write_text(TINY, encoding="utf-8")
    queues = [{"name": "general", "wrap_up_s": 0.2, "script": str(script)}]
    async with open_center(tmp_path, queues=queues) as center:
        done = asyncio.Event()
        center.service.record_listeners.append(lambda _record: done.set())
        app = AgentDesktop(center.bus, "1001", queues=["general"])
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("enter")
            await settle(pilot, lambda: app.agent_state is AgentState.NOT_READY)
            await pilot.press("r")
            await settle(pilot, lambda: app.agent_state is AgentState.READY)
            call_id = center.trunk.ring("+8613800000001")
            await settle(pilot, lambda: app.script_run is not None)
            await pilot.press("a")
            await settle(pilot, lambda: app.agent_state is AgentState.TALKING)
            await settle(pilot, lambda: app.focused is not None)
            await pilot.press("1")  # happy: yes; the script is not finished
            await settle(pilot, lambda: run_node(app) == "more")
            app.screen.set_focus(None)
            await pilot.press("h")
            # The queue's wrap-up (0.2 s) ends before the agent finishes the script.
            await asyncio.wait_for(done.wait(), timeout=10)
        [record] = await records(center)
        assert (record.call_id, record.disposition) == (call_id, "wrap-up timed out")
        stored = await center.store.script_runs.get(call_id)
        assert stored is not None
        assert stored.answers == {"happy": "yes"}
        assert stored.path == ("ask", "more")
        interactions = await center.store.recent_interactions(1)
        assert interactions[0].script_answers == {"happy": "yes"}


def run_node(app: AgentDesktop) -> str | None:
    run = app.script_run
    return run.node_id if run is not None else None


# --- the command palette ---------------------------------------------------------------


async def test_the_palette_lists_every_action_with_its_key_and_says_why_not(
    center: Center,
) -> None:
    plain_pop_app = AgentDesktop(center.bus, "1001", queues=["general"])
    async with plain_pop_app.run_test(size=SIZE) as pilot:
        app, _ = await talking(pilot, center)
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        for title in ("Hold / resume (o)", "Mute / unmute (m)", "Transfer (w)", "Consult (k)"):
            assert title in commands, sorted(commands)
        assert "Hand over (y) · not now" in commands  # no consultation under way
        assert "Dial (d) · not now" in commands
        assert commands["Dial (d) · not now"].help == "Only with no call in hand."
        commands["Hold / resume (o)"].callback()
        await settle(pilot, lambda: app.model.control is not None and app.model.control.held)


# --- a restart with a transfer in the journal -----------------------------------------


async def test_an_engine_restart_keeps_the_wrap_up_of_a_call_handed_on_and_over(
    tmp_path: Path,
) -> None:
    """The agent who transferred a call wraps up its part; the caller hung up meanwhile
    and the engine restarted: the journal brings the agent back in wrap-up, and the
    leg's disposition can still be given."""
    journal_path = tmp_path / "journal.db"
    ledger = tmp_path / "ledger.jsonl"
    config = load_config(
        overrides={"queues": [{"name": "general", "wrap_up_s": 600}, {"name": "billing"}]}
    )
    store = await Store.open(tmp_path / "cti.db")
    await store.add_customers([WANG])
    agents = {"1001": ["general"]}
    try:
        trunk = SimTrunk(ledger=ledger)
        with Journal.open(journal_path) as journal:
            async with engine_center(
                store, config=config, agents=agents, lines=[trunk], journal=journal
            ) as center:
                app = AgentDesktop(center.bus, "1001", queues=["general"])
                async with app.run_test(size=SIZE) as pilot:
                    app, call_id = await talking(pilot, center)
                    await pilot.press("w")
                    await type_into_prompt(pilot, "billing")
                    await settle(pilot, lambda: app.view == "wrap_up")
                    trunk.caller_hangs_up(call_id)
                    await records(center)  # the call is over: answered, by 1001
            await trunk.stop()

        with Journal.open(journal_path) as journal:
            async with engine_center(
                store, config=config, agents=agents, lines=[SimTrunk(ledger=ledger)],
                journal=journal,
            ) as center:  # fmt: skip
                service = center.service
                assert service.recovery is not None
                assert service.recovery.failed == 0
                assert service.router.agent("1001").state is AgentState.WRAP_UP
                app = AgentDesktop(center.bus, "1001", queues=["general"])
                async with app.run_test(size=SIZE) as pilot:
                    await pilot.press("enter")
                    await settle(pilot, lambda: app.view == "wrap_up")
                    # The call is over: no card comes back, the desk offers its own "done".
                    await pilot.press("1")
                    await settle(pilot, lambda: app.agent_state is AgentState.READY)
        [record] = await store.calls.records()
        assert (record.call_id, record.outcome, record.agent_id) == (call_id, "answered", "1001")
        history = await store.recent_interactions(WANG.id)
        # 1001's part (given after the restart), and the call, whose caller hung up
        # while it waited in billing.
        assert sorted((i.call_id, i.disposition) for i in history) == [
            (call_id, ""),
            (call_id, "done"),
        ]
    finally:
        await store.close()


async def test_the_desk_consulted_sees_who_asks_then_gets_the_caller(center: Center) -> None:
    """The other side of a consultation: this desk is agent 1002; 1001 is on the bus."""
    first = OtherAgent(center.bus, "1001")
    attached = asyncio.Event()
    follower = asyncio.create_task(first.follow(attached))
    await attached.wait()
    app = AgentDesktop(center.bus, "1002", queues=["general"])
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("enter")
            await settle(pilot, lambda: app.agent_state is AgentState.NOT_READY)
            await first.send(Login(agent_id="1001"))
            await settle(pilot, lambda: first.current is AgentState.NOT_READY)
            await first.send(SetReady(agent_id="1001"))
            await settle(pilot, lambda: first.current is AgentState.READY)
            call_id = center.trunk.ring("+8613800000001")
            await settle(pilot, lambda: bool(first.offers))
            await first.send(AcceptOffer(agent_id="1001", call_id=call_id))
            await settle(pilot, lambda: first.current is AgentState.TALKING)
            await pilot.press("r")
            await settle(pilot, lambda: app.agent_state is AgentState.READY)

            await first.send(ConsultCall(agent_id="1001", call_id=call_id, to_agent="1002"))
            await settle(pilot, lambda: app.view == "offer" and app.offer is not None)
            assert "1001 consults you" in banner(app)
            assert "王小明" in card_text(app)
            await pilot.press("a")
            await settle(pilot, lambda: app.view == "talking")
            await settle(pilot, lambda: "consulted by 1001" in banner(app))
            assert app.check_action("hold", ()) is None  # not this desk's caller yet
            assert app.check_action("transfer", ()) is None
            await first.send(CompleteConsult(agent_id="1001", call_id=call_id))
            await settle(
                pilot, lambda: any("1001 handed you the caller" in n for n in notices(app))
            )
            assert "consulted by" not in banner(app)
            assert app.check_action("hold", ()) is True  # the caller is this desk's now
            await pilot.press("o")
            await settle(pilot, lambda: center.trunk.held(call_id))
    finally:
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
