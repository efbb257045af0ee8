"""The agent desktop driven with Pilot against the scripted fake engine on the in-memory bus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from rich.cells import cell_len
from textual.pilot import Pilot
from textual.widgets import Static

from agent_console.desktop import AgentDesktop
from agent_console.widgets import CustomerCardView, screen_pop_text
from cti import topics
from cti.bus.memory import InMemoryBus
from cti.models import AgentState, CallerKind, Customer, Interaction, PhoneNumber, Segment
from cti.protocol import (
    AcceptOffer,
    AgentStateChanged,
    CallEnded,
    CallOffered,
    CompleteWrapUp,
    HangUp,
    Login,
    Logout,
    OfferWithdrawn,
    RejectOffer,
    ScreenPop,
    SetNotReady,
    SetReady,
)
from tests.agent_console.fake_engine import FakeEngine
from tests.harness import settle

pytestmark = pytest.mark.console

AGENT = "1001"
#: 2026-01-05 09:00:00 UTC; every test that fixes the clock uses this.
T0 = 1767603600.0
SIZE = (100, 30)
MARKUP_NAME = "[bold]Markup[/bold] Test"
CHINESE_NAME = "欧阳明月"


class FixedClock:
    """A wall clock that moves only when told to."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def known_pop(call_id: str = "c1", name: str = "Ada Lovelace") -> ScreenPop:
    customer = Customer(
        id=7,
        name=name,
        phones=(PhoneNumber(raw="0171 555 0101", e164="+441715550101"),),
        value=82.0,
        segment=Segment.GOLD,
    )
    history = (
        Interaction(at=T0 - 2 * 86400, disposition="callback", note="Bought the premium plan"),
        Interaction(at=T0 - 9 * 86400, disposition="投诉", note="账单错误 [red]x[/red]"),
    )
    return ScreenPop(
        call_id=call_id,
        queue="sales",
        ani="0171 555 0101",
        e164="+441715550101",
        caller_kind=CallerKind.KNOWN,
        customer=customer,
        history=history,
        waited_s=42.0,
        priority_reason="gold customer, waited 00:42",
    )


def new_caller_pop(kind: CallerKind, ani: str, call_id: str = "c9") -> ScreenPop:
    return ScreenPop(call_id=call_id, queue="support", ani=ani, caller_kind=kind, waited_s=3.0)


@pytest.fixture
def bus() -> InMemoryBus:
    return InMemoryBus()


@pytest.fixture
async def engine(bus: InMemoryBus) -> AsyncIterator[FakeEngine]:
    async with FakeEngine(bus) as fake:
        yield fake


async def log_in(pilot: Pilot[Any]) -> AgentDesktop:
    app = pilot.app
    assert isinstance(app, AgentDesktop)
    await pilot.press("enter")
    await settle(pilot, lambda: app.agent_state is AgentState.NOT_READY)
    return app


async def ready(pilot: Pilot[Any]) -> AgentDesktop:
    app = await log_in(pilot)
    await pilot.press("r")
    await settle(pilot, lambda: app.agent_state is AgentState.READY)
    return app


def card_lines(app: AgentDesktop) -> list[str]:
    """The pop card's lines as drawn on screen (border and padding included)."""
    card = app.query_one("#pop-card", CustomerCardView)
    return [card.render_line(y).text for y in range(card.size.height + 2)]


def column_of(line: str, value: str) -> int:
    """The terminal cell column where ``value`` starts in ``line``."""
    return cell_len(line[: line.index(value)])


def view(app: AgentDesktop) -> str:
    """What the desk shows (a call, so that type checkers do not narrow it)."""
    return app.view


def static_text(app: AgentDesktop, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


# --- the whole call ------------------------------------------------------------------


async def test_full_call_flow_publishes_each_command_with_the_call(
    bus: InMemoryBus, engine: FakeEngine
) -> None:
    app = AgentDesktop(bus, AGENT)
    async with app.run_test(size=SIZE) as pilot:
        assert view(app) == "login"
        await ready(pilot)
        assert view(app) == "idle"

        await engine.offer("c1", known_pop("c1"))
        await settle(pilot, lambda: app.view == "offer" and app.agent_state is AgentState.RESERVED)
        assert app.current_call_id == "c1"

        await pilot.press("a")
        await settle(pilot, lambda: app.agent_state is AgentState.TALKING)
        assert view(app) == "talking"

        await pilot.press("h")
        await settle(pilot, lambda: app.agent_state is AgentState.WRAP_UP)
        assert view(app) == "wrap_up"

        await pilot.press("1")
        await settle(pilot, lambda: app.agent_state is AgentState.READY)
        assert view(app) == "idle"
        assert app.current_call_id is None

    kinds = [type(command) for command in engine.commands]
    assert kinds == [Login, SetReady, AcceptOffer, HangUp, CompleteWrapUp]
    accept, hang_up, complete = engine.commands[2:]
    assert isinstance(accept, AcceptOffer)
    assert accept.call_id == "c1"
    assert isinstance(hang_up, HangUp)
    assert hang_up.call_id == "c1"
    assert isinstance(complete, CompleteWrapUp)
    assert (complete.call_id, complete.disposition, complete.note) == ("c1", "sale", "")
    assert all(command.agent_id == AGENT for command in engine.commands)


async def test_enter_in_the_note_completes_with_the_highlighted_disposition(
    bus: InMemoryBus, engine: FakeEngine
) -> None:
    app = AgentDesktop(bus, AGENT)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await engine.offer("c2", known_pop("c2"))
        await settle(pilot, lambda: app.view == "offer")
        await pilot.press("a")
        await settle(pilot, lambda: app.view == "talking")
        await engine.caller_hangs_up("c2")
        await settle(pilot, lambda: app.view == "wrap_up")

        await pilot.press("down", "down", "tab", *"rang 2x", "enter")
        await settle(pilot, lambda: app.agent_state is AgentState.READY)

    (complete,) = engine.commands_of(CompleteWrapUp)
    assert isinstance(complete, CompleteWrapUp)
    assert (complete.call_id, complete.disposition, complete.note) == ("c2", "callback", "rang 2x")
    assert not engine.commands_of(HangUp)


async def test_enter_on_the_list_chooses_the_highlighted_disposition(
    bus: InMemoryBus, engine: FakeEngine
) -> None:
    app = AgentDesktop(bus, AGENT)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await engine.offer("c3", known_pop("c3"), dispositions=("resolved", "escalated"))
        await settle(pilot, lambda: app.view == "offer")
        await pilot.press("a")
        await settle(pilot, lambda: app.view == "talking")
        await pilot.press("h")
        await settle(pilot, lambda: app.view == "wrap_up")
        assert app.check_action("disposition", (2,)) is True
        assert app.check_action("disposition", (3,)) is None  # only two offered

        await pilot.press("down", "enter")
        await settle(pilot, lambda: app.agent_state is AgentState.READY)

    (complete,) = engine.commands_of(CompleteWrapUp)
    assert isinstance(complete, CompleteWrapUp)
    assert complete.disposition == "escalated"


async def test_reject_sends_the_call_id_and_clears_the_offer(
    bus: InMemoryBus, engine: FakeEngine
) -> None:
    app = AgentDesktop(bus, AGENT)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await engine.offer("c4", known_pop("c4"))
        await settle(pilot, lambda: app.view == "offer")
        await pilot.press("x")
        await settle(pilot, lambda: app.view == "idle" and app.agent_state is AgentState.READY)
        assert app.current_call_id is None
        assert "withdrawn: rejected" in static_text(app, "#idle")

    (reject,) = engine.commands_of(RejectOffer)
    assert isinstance(reject, RejectOffer)
    assert reject.call_id == "c4"


async def test_withdrawn_offer_is_cleared_with_its_reason(
    bus: InMemoryBus, engine: FakeEngine
) -> None:
    app = AgentDesktop(bus, AGENT)
    notes: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        app.notify = lambda message, **_: notes.append(message)  # type: ignore[method-assign]
        await ready(pilot)
        await engine.offer("c5", known_pop("c5"))
        await settle(pilot, lambda: app.view == "offer")
        await engine.withdraw("c5", "caller hung up")
        await settle(pilot, lambda: app.view == "idle")
        assert app.current_call_id is None
        assert app.offer is None
        assert "withdrawn: caller hung up" in static_text(app, "#idle")
        assert app.check_action("answer", ()) is False  # an offer's key: not in the footer now
    assert any("caller hung up" in note for note in notes)


# --- disabled actions ----------------------------------------------------------------


async def test_answer_without_an_offer_does_nothing(bus: InMemoryBus, engine: FakeEngine) -> None:
    app = AgentDesktop(bus, AGENT)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        for action in ("answer", "reject", "hang_up"):
            assert app.check_action(action, ()) is False, action  # another view's: hidden
        assert app.check_action("ready", ()) is None  # this view's, not now: disabled
        assert app.check_action("not_ready", ()) is True
        await pilot.press("a", "x", "h", "1")
        await pilot.pause()
        await pilot.pause()
        assert view(app) == "idle"
        assert app.agent_state is AgentState.READY
    assert [type(command) for command in engine.commands] == [Login, SetReady]


async def test_keys_before_login_publish_nothing(bus: InMemoryBus, engine: FakeEngine) -> None:
    app = AgentDesktop(bus, "")
    async with app.run_test(size=SIZE) as pilot:
        app.screen.set_focus(None)
        await pilot.press("r", "n", "a")
        await pilot.pause()
        assert view(app) == "login"
        assert app.check_action("ready", ()) is None
    assert engine.commands == []


async def test_not_ready_sends_break_and_ready_comes_back(
    bus: InMemoryBus, engine: FakeEngine
) -> None:
    app = AgentDesktop(bus, AGENT)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("n")
        await settle(pilot, lambda: app.agent_state is AgentState.NOT_READY)
        assert "NOT READY (break)" in str(app.query_one("#state-bar").render())
        assert app.check_action("not_ready", ()) is None
        assert app.check_action("ready", ()) is True
    (not_ready,) = engine.commands_of(SetNotReady)
    assert isinstance(not_ready, SetNotReady)
    assert not_ready.reason == "break"


# --- login ---------------------------------------------------------------------------


async def test_login_typed_in_the_form(bus: InMemoryBus, engine: FakeEngine) -> None:
    app = AgentDesktop(bus)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"2002", "enter")
        await settle(pilot, lambda: app.agent_state is AgentState.NOT_READY)
        assert app.agent_id == "2002"
        assert "2002" in str(app.query_one("#state-bar").render())
    (login,) = engine.commands
    assert isinstance(login, Login)
    assert login.agent_id == "2002"
    assert isinstance(bus.retained(topics.agent_state("2002")), AgentStateChanged)


async def test_bad_agent_id_is_refused_locally(bus: InMemoryBus, engine: FakeEngine) -> None:
    app = AgentDesktop(bus, "sales/1")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await pilot.pause()
        assert view(app) == "login"
        assert "'/'" in static_text(app, "#login-status")
    assert engine.commands == []


async def test_refused_command_is_shown_as_a_notification(
    bus: InMemoryBus, engine: FakeEngine
) -> None:
    app = AgentDesktop(bus, AGENT)
    notes: list[tuple[str, str]] = []

    def record(message: str, *, severity: str = "information", **_: object) -> None:
        notes.append((message, severity))

    async with app.run_test(size=SIZE) as pilot:
        app.notify = record  # type: ignore[method-assign]
        await log_in(pilot)
        engine.refuse_next(SetReady, "queue [sales] is closed")
        await pilot.press("r")
        await settle(pilot, lambda: bool(notes))
        assert app.agent_state is AgentState.NOT_READY
        assert app.check_action("ready", ()) is True  # may try again
    assert notes == [("queue [sales] is closed", "error")]


async def test_quit_logs_out_when_not_busy(bus: InMemoryBus, engine: FakeEngine) -> None:
    app = AgentDesktop(bus, AGENT)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("q")
    for _ in range(10):
        await asyncio.sleep(0)
    assert isinstance(engine.commands[-1], Logout)
    assert engine.states[AGENT] is AgentState.LOGGED_OUT


async def test_quit_while_talking_does_not_log_out(bus: InMemoryBus, engine: FakeEngine) -> None:
    app = AgentDesktop(bus, AGENT)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await engine.offer("c6", known_pop("c6"))
        await settle(pilot, lambda: app.view == "offer")
        await pilot.press("a")
        await settle(pilot, lambda: app.view == "talking")
        await pilot.press("q")
    for _ in range(10):
        await asyncio.sleep(0)
    assert not engine.commands_of(Logout)
    assert engine.states[AGENT] is AgentState.TALKING


# --- the screen-pop card -------------------------------------------------------------


async def test_customer_names_show_literally_and_stay_aligned(
    bus: InMemoryBus, engine: FakeEngine, utc: None
) -> None:
    app = AgentDesktop(bus, AGENT)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await engine.offer("c7", known_pop("c7", name=CHINESE_NAME))
        await settle(pilot, lambda: app.view == "offer")
        await pilot.pause()
        lines = card_lines(app)
        name = next(line for line in lines if CHINESE_NAME in line)
        number = next(line for line in lines if "+441715550101" in line)
        segment = next(line for line in lines if "gold · value 82" in line)
        assert column_of(name, CHINESE_NAME) == column_of(number, "0171 555 0101")
        assert column_of(name, CHINESE_NAME) == column_of(segment, "gold")
        # History: the note column lines up after a wide (Chinese) disposition too.
        latin = next(line for line in lines if "Bought the premium plan" in line)
        wide = next(line for line in lines if "账单错误" in line)
        assert column_of(latin, "Bought") == column_of(wide, "账单错误")
        assert "[red]x[/red]" in wide
        assert "2026-01-03" in latin
        assert "2025-12-27" in wide

        await pilot.press("x")
        await settle(pilot, lambda: app.view == "idle")
        await engine.offer("c8", known_pop("c8", name=MARKUP_NAME))
        await settle(pilot, lambda: app.view == "offer")
        await pilot.pause()
        card = app.query_one("#pop-card", CustomerCardView)
        assert MARKUP_NAME in card.render().plain
        lines = card_lines(app)
        drawn = next(line for line in lines if MARKUP_NAME in line)
        number = next(line for line in lines if "+441715550101" in line)
        assert column_of(drawn, MARKUP_NAME) == column_of(number, "0171 555 0101")


def test_card_text_is_plain_and_cell_padded(utc: None) -> None:
    text = screen_pop_text(known_pop(name=MARKUP_NAME))
    assert not text.spans or all(span.style == "bold" for span in text.spans)
    first = text.plain.splitlines()[0]
    assert first == f"Name      {MARKUP_NAME}"


@pytest.mark.parametrize(
    ("kind", "ani", "shown"),
    [
        (CallerKind.UNKNOWN, "+49 30 1234567", "+49 30 1234567"),
        (CallerKind.PRIVATE, "P", "private number"),
        (CallerKind.MALFORMED, "[x]12ab", "number not recognised ([x]12ab)"),
    ],
)
async def test_unknown_callers_get_the_new_caller_card(
    bus: InMemoryBus, engine: FakeEngine, kind: CallerKind, ani: str, shown: str
) -> None:
    app = AgentDesktop(bus, AGENT)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await engine.offer("c9", new_caller_pop(kind, ani))
        await settle(pilot, lambda: app.view == "offer")
        await pilot.pause()
        plain = app.query_one("#pop-card", CustomerCardView).render().plain
        assert plain.splitlines()[0] == "New caller"
        assert f"Number    {shown}" in plain
        assert "Segment" not in plain
        assert any(shown in line for line in card_lines(app))


# --- what the engine says, in either order --------------------------------------------


def _state(state: AgentState, call_id: str | None = None, at: float = T0) -> AgentStateChanged:
    return AgentStateChanged(agent_id=AGENT, state=state, since_wall=at, call_id=call_id)


async def test_state_before_event_and_stale_state_after_are_reconciled(bus: InMemoryBus) -> None:
    app = AgentDesktop(bus, AGENT, clock=FixedClock())
    async with app.run_test(size=SIZE) as pilot:
        app.apply(_state(AgentState.READY))
        # The state names the call before the offer itself arrives.
        app.apply(_state(AgentState.RESERVED, "c1"))
        assert (app.view, app.current_call_id) == ("offer", "c1")
        assert app.check_action("answer", ()) is True
        offered = CallOffered(
            agent_id=AGENT, pop=known_pop("c1"), timeout_s=15, deadline_wall=T0 + 15
        )
        app.apply(offered)
        assert app.offer == offered
        # Events ahead of state: the call ended, then a stale "talking" arrives.
        app.apply(CallEnded(agent_id=AGENT, call_id="c1", by="caller"))
        app.apply(_state(AgentState.TALKING, "c1"))
        assert view(app) == "wrap_up"
        app.apply(_state(AgentState.READY))
        assert (app.view, app.current_call_id) == ("idle", None)
        # Messages for another agent are ignored.
        app.apply(AgentStateChanged(agent_id="2002", state=AgentState.TALKING, since_wall=T0))
        assert app.agent_state is AgentState.READY
        # The next offer is withdrawn before its "reserved" state is seen: the late
        # state does not bring the call back.
        app.apply(
            CallOffered(agent_id=AGENT, pop=known_pop("c2"), timeout_s=15, deadline_wall=T0 + 15)
        )
        app.apply(OfferWithdrawn(agent_id=AGENT, call_id="c2", reason="timeout"))
        app.apply(_state(AgentState.RESERVED, "c2"))
        assert (app.view, app.current_call_id) == ("idle", None)
        app.apply(_state(AgentState.READY))
        assert (app.view, app.current_call_id) == ("idle", None)
        await pilot.pause()


async def test_ready_state_arriving_after_the_offer_keeps_the_offer(bus: InMemoryBus) -> None:
    app = AgentDesktop(bus, AGENT, clock=FixedClock())
    async with app.run_test(size=SIZE) as pilot:
        app.apply(_state(AgentState.NOT_READY))
        offered = CallOffered(
            agent_id=AGENT, pop=known_pop("c2"), timeout_s=15, deadline_wall=T0 + 15
        )
        app.apply(offered)
        app.apply(_state(AgentState.READY))
        assert (app.view, app.current_call_id) == ("offer", "c2")
        await pilot.pause()


# --- clocks: time in state, countdowns, queue figures --------------------------------


async def test_timers_count_from_the_engine_wall_times(
    bus: InMemoryBus, engine: FakeEngine
) -> None:
    clock = FixedClock()
    engine.clock = clock
    app = AgentDesktop(bus, AGENT, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        clock.now += 83
        app.refresh_clock()
        await pilot.pause()
        assert "READY  │  01:23" in str(app.query_one("#state-bar").render())

        await engine.offer("c1", known_pop("c1"))
        await settle(pilot, lambda: app.view == "offer")
        clock.now += 4
        app.refresh_clock()
        assert "answer within 11 s" in static_text(app, "#call-banner")

        await pilot.press("a")
        await settle(pilot, lambda: app.view == "talking")
        clock.now += 65
        app.refresh_clock()
        assert "Talking · 01:05" in static_text(app, "#call-banner")

        await pilot.press("h")
        await settle(pilot, lambda: app.view == "wrap_up")
        clock.now += 12
        app.refresh_clock()
        banner = static_text(app, "#wrap-up-banner")
        assert "Ada Lovelace" in banner
        assert "auto-ready in 00:18" in banner


async def test_queue_status_line_shows_waiting_and_longest_wait(
    bus: InMemoryBus, engine: FakeEngine
) -> None:
    await engine.queue_status("support", waiting=0, longest_wait_s=0)
    app = AgentDesktop(bus, AGENT, queues=("sales", "support"))
    async with app.run_test(size=SIZE) as pilot:
        await engine.queue_status("sales", waiting=3, longest_wait_s=85.4)
        await engine.queue_status("billing", waiting=9, longest_wait_s=600)
        await settle(pilot, lambda: "sales" in app.queue_statuses)
        line = str(app.query_one("#queue-status").render())
        assert "sales 3 waiting, longest 01:25" in line
        assert "support 0 waiting" in line
        assert "billing" not in line  # not one of this desk's queues
        assert line.index("sales") < line.index("support")


# --- snapshot ------------------------------------------------------------------------


def test_offer_screen_snapshot(snap_compare: Callable[..., bool], utc: None) -> None:
    """The offer screen at 80x24 with a frozen clock, so every timer reads the same."""
    clock = FixedClock()
    bus = InMemoryBus()
    app = AgentDesktop(bus, AGENT, queues=("sales",), clock=clock)
    engines: list[FakeEngine] = []

    async def offer_a_call(pilot: Pilot[Any]) -> None:
        engine = await FakeEngine(bus, clock=clock).__aenter__()
        engines.append(engine)
        await engine.queue_status("sales", waiting=2, longest_wait_s=75)
        await ready(pilot)
        clock.now += 5
        await engine.offer("c1", known_pop("c1", name=CHINESE_NAME))
        await settle(pilot, lambda: app.view == "offer")
        app.refresh_clock()

    assert snap_compare(app, terminal_size=(80, 24), run_before=offer_a_call)
    assert engines
    assert engines[0].commands_of(SetReady)
