"""The wallboard driven with Pilot against the real engine in-process, and its snapshots.

The engine service routes calls from the simulator trunk with customers looked up in a
real SQLite store, over the in-memory bus; the wallboard sees only the bus. Each
supervisor action is pressed on the keyboard and checked in the router's own state.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import DataTable, Input, RichLog, Static, TabbedContent, Tabs

from agent_console.dialogs import Prompt
from agent_console.wallboard import Wallboard
from agent_console.wallboard_model import ActionOutcome
from agent_console.wallboard_tiles import QueueTile
from cti import topics
from cti.bus.memory import InMemoryBus
from cti.config import WallboardSettings
from cti.models import AgentConfig, AgentState, Customer, PhoneNumber, Segment
from cti.protocol import (
    MAX_QUEUE_CALLS_SENT,
    AcceptOffer,
    AgentStateChanged,
    ChangeCallPriority,
    EngineHealth,
    Login,
    QueueCalls,
    QueueStatus,
    SetReady,
    WaitingCall,
)
from tests.harness import Center, center_config, engine_center, settle

pytestmark = pytest.mark.console

AGENT_NAMES = {"1001": "欧阳明月", "1002": "[bold]Markup[/bold] Agent"}
CUSTOMERS = {
    1: ("张伟", "+8613800000001", 90.0),
    2: ("Ada Lovelace", "+8613800000002", 10.0),
}


@pytest.fixture
async def center(tmp_path: Path) -> AsyncIterator[Center]:
    customers = [
        Customer(
            id=cid,
            name=name,
            phones=(PhoneNumber(raw=e164, e164=e164),),
            value=value,
            segment=Segment.GOLD,
        )
        for cid, (name, e164, value) in CUSTOMERS.items()
    ]
    config = center_config(
        [{"name": "general"}, {"name": "sales"}],
        # the board is refreshed by hand (publish_status) in these tests
        engine={"status_interval_s": 3600.0},
    )
    agents = {"1001": ["general", "sales"], "1002": ["general"]}
    async with engine_center(
        tmp_path / "cti.db", config=config, agents=agents, customers=customers
    ) as center:
        yield center


def board(center: Center) -> Wallboard:
    return Wallboard(center.bus, "sup1", agent_names=AGENT_NAMES, queues=["general", "sales"])


def tile_text(app: Wallboard, queue: str) -> str:
    for tile in app.query(QueueTile):
        if tile.queue == queue:
            return str(tile.render())
    return ""


async def log_text(pilot: Pilot[Any]) -> str:
    """The log as drawn (it draws only once its view has been shown)."""
    app = pilot.app
    app.query_one(TabbedContent).active = "log-pane"
    await pilot.pause()
    await pilot.pause()
    return "\n".join(line.text for line in app.query_one("#log", RichLog).lines)


def outcomes(app: Wallboard) -> list[ActionOutcome]:
    return [entry for entry in app.model.log if isinstance(entry, ActionOutcome)]


async def highlight(pilot: Pilot[Any], table_id: str, key: str) -> None:
    """Show the table's view and put its cursor on the row ``key``."""
    app = pilot.app
    assert isinstance(app, Wallboard)
    pane = "calls-pane" if table_id == "calls" else "agents-pane"
    table: DataTable[Any] = app.query_one(f"#{table_id}", DataTable)
    app.query_one(TabbedContent).active = pane
    table.focus()  # as the board shows a view: the focused pane is the active one
    await settle(pilot, lambda: key in {row.key.value for row in table.ordered_rows})
    table.move_cursor(row=table.get_row_index(key), animate=False)
    await pilot.pause()
    assert app.query_one(TabbedContent).active == pane


async def ready_agent(pilot: Pilot[Any], center: Center, agent_id: str) -> None:
    await center.send(Login(agent_id=agent_id))
    await center.send(SetReady(agent_id=agent_id))
    await settle(pilot, lambda: center.service.router.agent(agent_id).state is AgentState.READY)


async def test_tiles_show_calls_as_they_arrive(center: Center) -> None:
    app = board(center)
    async with app.run_test(size=(100, 30)) as pilot:
        await center.service.publish_status()
        await settle(pilot, lambda: "Waiting 0" in tile_text(app, "general"))
        assert "Waiting 0" in tile_text(app, "sales")

        center.trunk.ring("138 0000 0001")
        center.trunk.ring("138 0000 0002")
        await settle(pilot, lambda: center.service.router.waiting("general") == 2)
        await center.service.publish_status()
        await settle(pilot, lambda: "Waiting 2" in tile_text(app, "general"))
        assert "Waiting 0" in tile_text(app, "sales")

        await pilot.press("v")  # the waiting calls
        calls: DataTable[Any] = app.query_one("#calls", DataTable)
        await settle(pilot, lambda: calls.row_count == 2)
        callers = {str(calls.get_cell(row.key, "caller")) for row in calls.ordered_rows}
        assert callers == {"张伟", "Ada Lovelace"}


async def test_agent_row_follows_the_engine(center: Center) -> None:
    app = board(center)
    async with app.run_test(size=(100, 30)) as pilot:
        table: DataTable[Any] = app.query_one("#agents", DataTable)
        assert str(table.get_cell("1001", "state")) == "not seen"
        assert str(table.get_cell("1002", "agent")) == "1002 [bold]Markup[/bold] Agent"

        await center.send(Login(agent_id="1001"))
        await settle(pilot, lambda: str(table.get_cell("1001", "state")) == "Not ready (logged in)")
        await center.send(SetReady(agent_id="1001"))
        await settle(pilot, lambda: str(table.get_cell("1001", "state")) == "Ready")

        call_id = center.trunk.ring("138 0000 0001")
        await settle(pilot, lambda: str(table.get_cell("1001", "state")) == "Reserved")
        # the caller, though the board never saw the call wait (it went straight to 1001)
        await settle(pilot, lambda: str(table.get_cell("1001", "call")) == "张伟 +8613800000001")
        assert center.service.router.call_agent(call_id) == "1001"


async def test_change_priority_reorders_the_queue(center: Center) -> None:
    app = board(center)
    async with app.run_test(size=(100, 30)) as pilot:
        first = center.trunk.ring("138 0000 0001")  # value 90: served first
        second = center.trunk.ring("138 0000 0002")  # value 10
        await settle(pilot, lambda: center.service.router.waiting("general") == 2)
        assert center.service.router.waiting_in_order("general") == [first, second]
        await center.service.publish_status()

        await highlight(pilot, "calls", second)
        await pilot.press("p")
        await pilot.press(*"500", "enter")
        await settle(pilot, lambda: len(outcomes(app)) == 1)
        [outcome] = outcomes(app)
        assert outcome.ok, outcome.error
        assert center.service.router.waiting_in_order("general") == [second, first]
        assert f"priority of call {second} (Ada Lovelace) set to 500" in await log_text(pilot)


async def test_a_bad_priority_is_refused_before_sending(center: Center) -> None:
    app = board(center)
    async with app.run_test(size=(100, 30)) as pilot:
        call_id = center.trunk.ring("138 0000 0001")
        await settle(pilot, lambda: center.service.router.waiting("general") == 1)
        await center.service.publish_status()
        await highlight(pilot, "calls", call_id)
        await pilot.press("p")
        await pilot.press(*"lots", "enter")
        await pilot.pause()
        assert app.screen.query_one("#prompt-problem").render() is not None
        assert "'lots' is not a number" in str(app.screen.query_one("#prompt-problem").render())
        await pilot.press("escape")
        await pilot.pause()
        assert app.model.pending_commands() == []


async def test_move_call_to_another_queue(center: Center) -> None:
    app = board(center)
    async with app.run_test(size=(100, 30)) as pilot:
        call_id = center.trunk.ring("138 0000 0002")
        await settle(pilot, lambda: center.service.router.waiting("general") == 1)
        await center.service.publish_status()

        await highlight(pilot, "calls", call_id)
        await pilot.press("m")
        await pilot.press("enter")  # the only other queue: sales
        await settle(pilot, lambda: len(outcomes(app)) == 1)
        assert outcomes(app)[0].ok, outcomes(app)[0].error
        assert center.service.router.call_queue(call_id) == "sales"

        await center.service.publish_status()
        await settle(pilot, lambda: "Waiting 1" in tile_text(app, "sales"))
        assert "Waiting 0" in tile_text(app, "general")


async def test_force_not_ready_with_a_reason(center: Center) -> None:
    app = board(center)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready_agent(pilot, center, "1001")
        await highlight(pilot, "agents", "1001")
        await pilot.press("n")
        await pilot.press(*"coaching 1:1", "enter")  # replaces the suggested reason
        await settle(pilot, lambda: len(outcomes(app)) == 1)
        assert outcomes(app)[0].ok, outcomes(app)[0].error
        agent = center.service.router.agent("1001")
        assert (agent.state, agent.reason) == (AgentState.NOT_READY, "coaching 1:1")
        table: DataTable[Any] = app.query_one("#agents", DataTable)
        await settle(
            pilot, lambda: str(table.get_cell("1001", "state")) == "Not ready (coaching 1:1)"
        )


async def test_force_logout_then_a_refusal_is_shown(center: Center) -> None:
    app = board(center)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready_agent(pilot, center, "1001")
        await highlight(pilot, "agents", "1001")
        await pilot.press("o")
        await pilot.press("enter")  # "Yes, log out" is highlighted
        await settle(pilot, lambda: len(outcomes(app)) == 1)
        assert outcomes(app)[0].ok, outcomes(app)[0].error
        assert center.service.router.agent("1001").state is AgentState.LOGGED_OUT

        # Not ready for a logged-out agent: the engine refuses, the board says why.
        table: DataTable[Any] = app.query_one("#agents", DataTable)
        await settle(pilot, lambda: str(table.get_cell("1001", "state")) == "Logged out")
        await pilot.press("n", "enter")  # the suggested reason: supervisor
        await settle(pilot, lambda: len(outcomes(app)) == 2)
        refused = outcomes(app)[1]
        assert not refused.ok
        assert "logged out" in refused.error
        assert "REFUSED" in await log_text(pilot)


async def test_actions_ask_for_a_selection_in_the_right_view(center: Center) -> None:
    app = board(center)
    async with app.run_test(size=(100, 30)) as pilot:
        call_id = center.trunk.ring("138 0000 0001")
        await settle(pilot, lambda: center.service.router.waiting("general") == 1)
        await center.service.publish_status()
        await settle(pilot, lambda: app.model.find_call(call_id) is not None)
        assert app.query_one(TabbedContent).active == "agents-pane"
        await pilot.press("p")  # not on the calls view: it is shown, nothing is sent
        await pilot.pause()
        assert app.query_one(TabbedContent).active == "calls-pane"
        assert app.model.pending_commands() == []
        assert len(app.screen_stack) == 1


async def test_a_view_shown_while_a_focus_is_on_its_way_stays_shown() -> None:
    """Showing a view while a table of another view is still being focused (as at
    start) shows that view, and it stays: a late activation of the other view must not
    take focus back to it (its pane then activates again, and the two views took turns
    for ever, so keys and redraws went to whichever was shown at the moment)."""
    app = Wallboard(InMemoryBus(), "sup1")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        tabs = app.query_one(TabbedContent)
        shown: list[str] = []
        app.watch(tabs, "active", lambda pane: shown.append(pane), init=False)
        app.query_one("#calls", DataTable).focus()  # on its way...
        tabs.active = "campaigns-pane"  # ...as another view is shown
        await pilot.pause()
        campaigns = app.query_one("#campaigns", DataTable)
        campaigns.focus()
        for _ in range(5):
            await pilot.pause()
        settled = len(shown)
        for _ in range(20):
            await pilot.pause()
        assert shown[settled:] == []  # not flipping between views
        assert tabs.active == "campaigns-pane"
        assert app.focused is campaigns


async def test_a_view_chosen_on_the_tab_bar_takes_the_focus() -> None:
    app = Wallboard(InMemoryBus(), "sup1")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app.query_one(Tabs).focus()
        await pilot.pause()
        await pilot.press("right")  # Agents -> Waiting calls
        for _ in range(5):
            await pilot.pause()
        assert app.query_one(TabbedContent).active == "calls-pane"
        assert app.focused is app.query_one("#calls", DataTable)


# --- snapshots -----------------------------------------------------------------------

T0 = 1767603600.0  # 2026-01-05 09:00:00 UTC


def _status(queue: str, waiting: int, longest: float, sl: float, at: float) -> QueueStatus:
    return QueueStatus(
        queue=queue,
        waiting=waiting,
        longest_wait_s=longest,
        agents_ready=1,
        agents_busy=2,
        agents_logged_in=4,
        offered=40,
        answered=36,
        abandoned=4,
        short_abandoned=1,
        service_level=sl,
        asa_s=14.0,
        at_wall=at,
        agents_by_state={"ready": 1, "talking": 1, "wrap_up": 1, "not_ready": 1},
    )


async def _fill(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, Wallboard)
    bus = app.bus
    assert isinstance(bus, InMemoryBus)
    at = T0 - 1
    for minutes_ago, waiting in ((40, 1), (30, 4), (20, 2), (10, 6), (0, 3)):
        moment = at - 60 * minutes_ago
        await bus.publish(
            topics.queue_status("general"),
            _status("general", waiting, 75, 0.62, moment),
            retain=True,
        )
    await bus.publish(topics.queue_status("sales"), _status("sales", 0, 0, 0.86, at), retain=True)
    await bus.publish(
        topics.queue_status("售后服务"), _status("售后服务", 1, 35, 0.75, at), retain=True
    )
    await bus.publish(
        topics.queue_calls("general"),
        QueueCalls(
            queue="general",
            calls=(
                WaitingCall(
                    call_id="sim-7",
                    position=1,
                    waited_s=75,
                    estimated_wait_s=20,
                    ani="+8613800000001",
                    customer="张伟",
                    segment="gold",
                    priority=500.0,
                    own_priority=True,
                    rank=665.0,
                ),
            ),
            at_wall=at,
        ),
        retain=True,
    )
    states = (
        ("1001", AgentState.TALKING, "", "sim-7", 12, True),
        ("1002", AgentState.NOT_READY, "lunch", None, 3, False),
        ("1003", AgentState.READY, "", None, 7, True),
    )
    for agent_id, state, reason, call_id, handled, phone in states:
        await bus.publish(
            topics.agent_state(agent_id),
            AgentStateChanged(
                agent_id=agent_id,
                state=state,
                reason=reason,
                since_wall=T0 - 95,
                call_id=call_id,
                calls_handled=handled,
                phone_reachable=phone,
            ),
            retain=True,
        )
    await settle(pilot, lambda: len(app.model.agents) == 4 and len(app.model.queues) == 3)
    await pilot.pause()
    app.clear_notifications()
    app.tick()
    await pilot.pause()


def drawn(widget: Widget) -> str:
    """What ``widget`` shows on the screen, line by line (empty when hidden)."""
    if not widget.display:
        return ""
    return "\n".join(strip.text for strip in widget.render_lines(widget.size.region))


@pytest.mark.security
async def test_the_engine_trouble_banner_shows_while_it_lasts_and_clears() -> None:
    """The engine publishes its health retained when a trouble starts, changes and ends;
    its text (paths, errors) is shown as text, never markup."""
    bus = InMemoryBus()
    clock = [T0]
    app = Wallboard(bus, "sup1", queues=["general"], clock=lambda: clock[0])
    alert = "journal /srv/[/bold]/[link=http://x]j.db not written (disk full): 12 inputs held"
    async with app.run_test(size=(100, 30)) as pilot:
        banner = app.query_one("#health-banner", Static)
        assert drawn(banner) == ""
        await bus.publish(
            topics.engine_health(),
            EngineHealth(
                ok=False, alerts=(alert,), journal_held=12, records_held=3, at_wall=T0 - 125
            ),
            retain=True,
        )
        await settle(pilot, lambda: "ENGINE" in drawn(banner))
        summary, line = drawn(banner).splitlines()
        since = time.strftime("%H:%M:%S", time.localtime(T0 - 125))
        assert f"since {since} (for 02:05)" in summary
        assert "held in memory: 12 router inputs, 3 call records" in summary
        assert "lost" not in summary
        assert line.strip() == alert  # the brackets as they are: no markup, no link

        clock[0] = T0 + 60
        await bus.publish(
            topics.engine_health(),
            EngineHealth(ok=False, alerts=(alert,), journal_held=900, inputs_lost=7, at_wall=T0),
            retain=True,
        )
        await settle(pilot, lambda: "lost: 7 inputs not journaled" in drawn(banner))
        assert f"since {since} (for 03:05)" in drawn(banner)  # it began before this one

        await bus.publish(
            topics.engine_health(), EngineHealth(ok=True, at_wall=T0 + 61), retain=True
        )
        await settle(pilot, lambda: drawn(banner) == "")
        log = await log_text(pilot)
        assert log.count("ENGINE") == 2
        assert "engine: all written again" in log
        assert "[/bold]/[link=http://x]" in log


@pytest.mark.recovery
async def test_a_board_started_mid_trouble_shows_the_real_start_and_current_counts() -> None:
    """The engine's retained health says when the trouble began, not when it was last
    published; its refreshes (each status interval) keep the counts current."""
    bus = InMemoryBus()
    start = T0 - 3725
    health = EngineHealth(
        ok=False,
        alerts=("call records not stored (disk full): 3 held in memory",),
        kinds=("records",),
        records_held=3,
        at_wall=T0 - 1,
        since_wall=start,
    )
    await bus.publish(topics.engine_health(), health, retain=True)
    app = Wallboard(bus, "sup1", queues=["general"], clock=lambda: T0)
    async with app.run_test(size=(100, 30)) as pilot:
        banner = app.query_one("#health-banner", Static)
        await settle(pilot, lambda: "ENGINE" in drawn(banner))
        since = time.strftime("%H:%M:%S", time.localtime(start))
        assert f"since {since} (for 1:02:05)" in drawn(banner)
        assert "held in memory: 3 call records" in drawn(banner)
        refresh = health.model_copy(update={"records_held": 250, "at_wall": T0})
        await bus.publish(topics.engine_health(), refresh, retain=True)
        await settle(pilot, lambda: "held in memory: 250 call records" in drawn(banner))
        assert f"since {since} (for 1:02:05)" in drawn(banner)
        assert (await log_text(pilot)).count("ENGINE") == 1  # the refresh is not news


@pytest.mark.security
async def test_a_flood_shows_the_first_calls_and_how_many_wait(center: Center) -> None:
    app = board(center)
    async with app.run_test(size=(100, 30)) as pilot:
        for n in range(MAX_QUEUE_CALLS_SENT + 50):
            center.trunk.ring(f"199 {n:08d}")
        await settle(pilot, lambda: center.service.router.waiting("general") == 250)
        await center.service.publish_status()
        await pilot.press("v")  # the waiting calls
        calls: DataTable[Any] = app.query_one("#calls", DataTable)
        await settle(pilot, lambda: calls.row_count == MAX_QUEUE_CALLS_SENT)
        note = drawn(app.query_one("#calls-note", Static))
        assert note.startswith("general: showing 200 of 250 waiting calls")

        for call_id in center.service.router.waiting_in_order("general")[:100]:
            center.trunk.caller_hangs_up(call_id)
        await settle(pilot, lambda: center.service.router.waiting("general") == 150)
        await center.service.publish_status()
        await settle(pilot, lambda: calls.row_count == 150)
        assert drawn(app.query_one("#calls-note", Static)) == ""


def _snapshot_board() -> Wallboard:
    names = {"1001": "欧阳明月", "1002": "王伟", "1003": "[bold]Ada[/bold]", "1004": "李娜"}
    return Wallboard(
        InMemoryBus(),
        "sup1",
        settings=WallboardSettings(),
        agent_names=names,
        queues=["general", "sales"],
        clock=lambda: T0,
    )


def test_wallboard_snapshot_80x24(snap_compare: Callable[..., bool], utc: None) -> None:
    assert snap_compare(_snapshot_board(), terminal_size=(80, 24), run_before=_fill)


def test_wallboard_snapshot_120x40(snap_compare: Callable[..., bool], utc: None) -> None:
    assert snap_compare(_snapshot_board(), terminal_size=(120, 40), run_before=_fill)


# --- the agent grid names agents and callers (issue 21) ------------------------------


async def test_the_grid_names_the_agent_and_the_caller_of_a_call_never_seen_waiting(
    tmp_path: Path,
) -> None:
    """The board has no names configured and never saw the call wait (offered at once to
    a Ready agent): the engine's state messages name the agent and the caller."""
    customers = [
        Customer(
            id=1,
            name="[red]欧阳[/red] 娜娜",
            phones=(PhoneNumber(raw="+8613800000001", e164="+8613800000001"),),
            value=50.0,
            segment=Segment.GOLD,
        )
    ]
    agents = [
        AgentConfig(id="1001", name="王伟", queues={"general": 0.0}),
        AgentConfig(id="1002", name="Ada", queues={"general": 0.0}),
    ]
    async with engine_center(tmp_path / "cti.db", agents=agents, customers=customers) as center:
        app = Wallboard(center.bus, "sup1")
        async with app.run_test(size=(120, 30)) as pilot:
            table: DataTable[Any] = app.query_one("#agents", DataTable)
            await ready_agent(pilot, center, "1001")
            await ready_agent(pilot, center, "1002")
            call_id = center.trunk.ring("138 0000 0001")
            router = center.service.router
            await settle(
                pilot,
                lambda: call_id in router.active_call_ids() and bool(router.call_agent(call_id)),
            )
            agent = router.call_agent(call_id)
            assert agent is not None
            other = "1002" if agent == "1001" else "1001"
            await settle(pilot, lambda: "Reserved" in str(table.get_cell(agent, "state")))
            await settle(pilot, lambda: "+8613800000001" in str(table.get_cell(agent, "call")))
            call = table.get_cell(agent, "call")
            assert call.plain.startswith("[red]欧阳[/red] 娜娜")  # as stored: never markup
            assert call_id not in call.plain
            assert str(table.get_cell("1001", "agent")) == "1001 王伟"
            assert str(table.get_cell("1002", "agent")) == "1002 Ada"
            assert str(table.get_cell(other, "call")) == ""
            # wide names take two cells each: the columns after them stay aligned
            rows = {line.split()[0]: line for line in drawn(table).splitlines()[1:3]}
            states = {agent: "Reserved", other: "Ready"}
            starts = {cell_len(rows[a][: rows[a].index(states[a])]) for a in states}
            assert len(starts) == 1, rows
            await center.send(AcceptOffer(agent_id=agent, call_id=call_id))
            await settle(pilot, lambda: "Talking" in str(table.get_cell(agent, "state")))
            assert "+8613800000001" in str(table.get_cell(agent, "call"))


async def test_waiting_calls_show_their_rank_and_priority(center: Center) -> None:
    """Each waiting call shows its place, its priority (its own, marked, once a supervisor
    set it) and its rank in points, as the router ranks it."""
    app = board(center)
    async with app.run_test(size=(80, 24)) as pilot:
        router = center.service.router
        first = center.trunk.ring("138 0000 0001")  # value 90
        second = center.trunk.ring("138 0000 0002")  # value 10
        await settle(pilot, lambda: router.waiting("general") == 2)
        change = ChangeCallPriority(supervisor_id="sup1", call_id=second, priority=500.0)
        await center.bus.publish(topics.supervisor_commands("sup1"), change)
        await settle(pilot, lambda: router.waiting_in_order("general") == [second, first])
        await center.service.publish_status()
        await settle(pilot, lambda: len(app.model.waiting_calls()) == 2)
        calls = {call.call_id: call for _, call in app.model.waiting_calls()}
        queue_priority = router.queue_config("general").priority
        assert (calls[second].priority, calls[second].own_priority) == (500.0, True)
        assert (calls[first].priority, calls[first].own_priority) == (queue_priority, False)
        ranks = [calls[second].rank, calls[first].rank]
        assert None not in ranks
        assert ranks == sorted(ranks, reverse=True)  # type: ignore[type-var]
        assert ranks[0] != ranks[1]
        assert (calls[second].position, calls[first].position) == (1, 2)

        await pilot.press("v")
        table: DataTable[Any] = app.query_one("#calls", DataTable)
        await settle(pilot, lambda: table.row_count == 2)
        assert str(table.get_cell(second, "priority")) == "500*"
        assert str(table.get_cell(first, "priority")) == f"{queue_priority:g}"
        assert str(table.get_cell(second, "rank")) == f"{calls[second].rank:.0f}"
        assert str(table.get_cell(second, "position")) == "1"
        header = drawn(table).splitlines()[0]
        assert {"#", "Prio", "Rank", "Caller"} <= set(header.split()), header


async def test_the_priority_dialog_shows_the_current_priority(center: Center) -> None:
    """The dialog opens with the call's priority in the line (typing replaces it) and says
    whose it is: the queue's, then the supervisor's once one was set."""
    app = board(center)
    async with app.run_test(size=(100, 30)) as pilot:
        router = center.service.router
        call_id = center.trunk.ring("138 0000 0002")
        await settle(pilot, lambda: router.waiting("general") == 1)
        await center.service.publish_status()
        await highlight(pilot, "calls", call_id)
        await pilot.press("p")
        await settle(pilot, lambda: isinstance(app.screen, Prompt))
        line = app.screen.query_one(Input)
        queue_priority = router.queue_config("general").priority
        assert line.value == f"{queue_priority:g}"
        intro = drawn(app.screen.query_one(".hint"))
        assert f"priority now {queue_priority:g} (the queue's)" in intro, intro

        await pilot.press(*"250", "enter")  # typed over the value shown
        await settle(pilot, lambda: len(outcomes(app)) == 1)
        assert outcomes(app)[0].ok
        assert router.call_priority(call_id, 0.0)[:2] == (250.0, True)
        await center.service.publish_status()
        await settle(pilot, lambda: app.model.waiting_calls()[0][1].own_priority)
        await highlight(pilot, "calls", call_id)
        await pilot.press("p")
        await settle(pilot, lambda: isinstance(app.screen, Prompt))
        assert app.screen.query_one(Input).value == "250"
        assert "priority now 250 (set by a supervisor)" in drawn(app.screen.query_one(".hint"))
