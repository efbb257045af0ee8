"""Nothing a person needs is cut at 80x24 or 120x40 (issue 21): the card's "why this
priority" wraps whole beside the script, and every key the footer has no room for is one
visible key away (the palette's "more keys" at the right of the footer)."""

from __future__ import annotations

from typing import Any

import pytest
from textual.app import App

from agent_console.desk_palette import PALETTE
from agent_console.desktop import AgentDesktop
from agent_console.dialogs import CustomerInfoScreen
from agent_console.widgets import CustomerCardView
from cti.bus.memory import InMemoryBus
from cti.models import Segment, ValueExplanation, ValueFactor
from cti.protocol import CustomerDetails
from tests.agent_console.fake_engine import FakeEngine
from tests.agent_console.test_desktop import AGENT, known_pop, ready
from tests.agent_console.test_script_panel import call_script
from tests.harness import settle

pytestmark = pytest.mark.console

WHY = ValueExplanation(
    value=82.4,
    segment=Segment.GOLD,
    segment_label="gold",
    factors=tuple(
        ValueFactor(name=name, detail="measured", score=50.0, points=points)
        for name, points in (
            ("monetary", 35.1), ("recency", 27.0), ("frequency", 12.3), ("engagement", 8.0)
        )
    ),
)  # fmt: skip
RANK = "rank 1234 = queue 10 + value 82 x 12.5 + waited 42s x 2.5"


def screen_lines(app: App[Any]) -> list[str]:
    return [strip.text for strip in app.screen._compositor.render_strips()]


def card_words(app: AgentDesktop) -> str:
    """The card's text as drawn, its borders and wrapping undone (words in order)."""
    card = app.query_one("#pop-card", CustomerCardView)
    lines = [card.render_line(y).text for y in range(card.size.height)]
    return " ".join(" ".join(lines).split())


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_why_this_priority_is_whole_and_every_key_is_reachable(
    size: tuple[int, int],
) -> None:
    bus = InMemoryBus()
    app = AgentDesktop(bus, AGENT)
    pop = known_pop("c1").model_copy(
        update={
            "value_explanation": WHY,
            "priority_reason": RANK,
            "script": call_script("inbound_service_en"),
        }
    )
    async with FakeEngine(bus) as engine, app.run_test(size=size) as pilot:
        await ready(pilot)
        await engine.offer("c1", pop)
        await settle(pilot, lambda: app.view == "offer")
        await pilot.press("a")
        await settle(pilot, lambda: app.view == "talking")
        await pilot.pause()
        words = card_words(app)
        assert WHY.summary in words, words
        assert RANK in words, words
        if "…" in words:  # a history note cut at this width: the card says where it is
            assert "i: all details" in " ".join(screen_lines(app))
        footer = screen_lines(app)[-1]
        # The keys the footer shows, and a visible way to the rest.
        assert footer.rstrip().endswith("^p more keys"), footer
        shown = {key for _action, key, _title, _help in PALETTE if f" {key} " in f" {footer}"}
        missing = {key for _a, key, _t, _h in PALETTE} - shown
        assert missing, "the footer cannot hold every key at this width: test the hint"
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.screen_stack[0]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_customer_in_full_wraps_its_rows(size: tuple[int, int]) -> None:
    pop = known_pop("c1")
    assert pop.customer is not None
    email = "ada.lovelace.analytical.engine@difference-engines.example.co.uk"
    customer = pop.customer.model_copy(
        update={"email": email, "address": "12 St James's Square, London SW1Y 4JH, England"}
    )
    details = CustomerDetails(
        agent_id=AGENT, command_id="x1", call_id="c1", customer=customer, value_explanation=WHY
    )

    class Host(App[None]):
        def on_mount(self) -> None:
            self.push_screen(CustomerInfoScreen(details))

    app = Host()
    async with app.run_test(size=size) as pilot:
        await settle(pilot, lambda: isinstance(app.screen, CustomerInfoScreen))
        await pilot.pause()
        words = " ".join(" ".join(screen_lines(app)).replace("│", " ").split())
    assert WHY.summary in words
    assert email in words.replace(" ", "") or email in words
    assert "…" not in words
