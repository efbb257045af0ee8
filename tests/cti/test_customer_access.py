"""Who may read which customer (config [access]) and the audit trail, through the real
engine on a real store: an agent reads the customers of their current and recent
calls; searching and reading any other customer needs a role with the search right;
every look, search, change and refusal is kept (issue 17)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cti.app.cli import main
from cti.customers.base import AuditEntry, CustomerBase
from cti.models import AgentState
from cti.protocol import (
    AddServiceItem,
    ChooseCustomer,
    CompleteWrapUp,
    CustomerDetails,
    CustomerSearchResults,
    EscalateServiceItem,
    HangUp,
    SearchCustomers,
    ShowCustomer,
)
from tests.cti.test_customer_commands import AGENT, FAMILY, ring_and_answer, start_engine

pytestmark = [pytest.mark.customers, pytest.mark.security]


async def test_an_agent_may_not_search_nor_read_customers_not_on_their_calls(
    tmp_path: Path,
) -> None:
    async with start_engine(tmp_path, supervisor=False) as engine:
        result, seen = await engine.send(SearchCustomers(agent_id=AGENT, query="王"))
        assert not result.ok
        assert seen == []
        assert result.error.startswith("search: your role (agent) may not search")
        result, seen = await engine.send(ShowCustomer(agent_id=AGENT, customer_id=3))
        assert not result.ok
        assert seen == []
        assert result.error == (
            "customer #3 is not one of your calls' customers, and your role (agent) may not"
            " read others; ask a supervisor"
        )
        result, _ = await engine.send(ShowCustomer(agent_id=AGENT, customer_id=999))
        assert "customer #999 is not one of your calls'" in result.error  # no probing
        trail = await CustomerBase(engine.store).audit_trail(agent_id=AGENT)
        assert [(e.action, e.customer_id, e.allowed) for e in trail] == [
            ("search", None, False),
            ("show", 3, False),
            ("show", 999, False),
        ]
        assert trail[0].detail == "'王'"


async def test_an_agent_reads_the_customers_of_their_call_and_recent_calls(
    tmp_path: Path,
) -> None:
    async with start_engine(tmp_path, supervisor=False) as engine:
        call_id = await ring_and_answer(engine, FAMILY)  # held by customers 1 and 2
        for customer_id in (1, 2):
            result, seen = await engine.send(ShowCustomer(agent_id=AGENT, customer_id=customer_id))
            assert result.ok, result.error
            assert isinstance(seen[-1], CustomerDetails)
        result, _ = await engine.send(
            ChooseCustomer(agent_id=AGENT, call_id=call_id, customer_id=2)
        )
        assert result.ok, result.error
        result, _ = await engine.send(
            ChooseCustomer(agent_id=AGENT, call_id=call_id, customer_id=3)
        )
        assert not result.ok
        assert "customer #3 is not one of your calls'" in result.error
        result, _ = await engine.send(AddServiceItem(agent_id=AGENT, customer_id=3, title="x"))
        assert not result.ok
        assert "customer #3" in result.error
        item = await CustomerBase(engine.store).open_service_item(3, "theirs", now=1.7e9)
        result, _ = await engine.send(EscalateServiceItem(agent_id=AGENT, item_id=item.id, to="x"))
        assert not result.ok
        assert "customer #3" in result.error
        assert (await CustomerBase(engine.store).service_item(item.id)).escalation_level == 0

        await engine.send(HangUp(agent_id=AGENT, call_id=call_id))
        await engine.send(CompleteWrapUp(agent_id=AGENT, call_id=call_id, disposition="sale"))
        await engine.service.flush()
        result, _ = await engine.send(ShowCustomer(agent_id=AGENT, customer_id=2))
        assert result.ok, result.error  # the chosen customer of a recent call
        trail = await CustomerBase(engine.store).audit_trail(customer_id=2)
        assert [(e.agent_id, e.action, e.allowed) for e in trail] == [
            (AGENT, "offer", True),  # the card on the offer showed them
            (AGENT, "show", True),
            (AGENT, "choose", True),
            (AGENT, "show", True),
        ]
        assert trail[2].detail == f"for call {call_id}"


async def test_the_card_offered_goes_to_the_audit_trail_without_holding_up_the_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every customer on an offered card (a family phone: both) is a look, kept in the
    trail; the store is written off the routing path, so an audit write that hangs
    neither delays the offer nor the call."""
    release = asyncio.Event()
    original = CustomerBase.audit

    async def slow_audit(self: CustomerBase, entry: AuditEntry) -> None:
        if entry.action == "offer":
            await release.wait()
        await original(self, entry)

    monkeypatch.setattr(CustomerBase, "audit", slow_audit)
    async with start_engine(tmp_path, supervisor=False) as engine:
        call_id = await ring_and_answer(engine, FAMILY)  # offered and accepted meanwhile
        await engine.until_state(AgentState.TALKING)
        base = CustomerBase(engine.store)
        assert [e.action for e in await base.audit_trail(agent_id=AGENT)] == []
        release.set()
        await engine.service.flush()
        trail = await base.audit_trail(agent_id=AGENT)
        assert [(e.action, e.customer_id, e.allowed) for e in trail] == [
            ("offer", 1, True),
            ("offer", 2, True),
        ]
        assert trail[0].detail == f"offered call {call_id}"


async def test_an_unknown_callers_card_names_no_customer_in_the_trail(tmp_path: Path) -> None:
    async with start_engine(tmp_path, supervisor=False) as engine:
        await ring_and_answer(engine, "+8613900000099")
        await engine.service.flush()
        assert await CustomerBase(engine.store).audit_trail(agent_id=AGENT) == []


async def test_recent_calls_zero_leaves_only_the_call_in_hand(tmp_path: Path) -> None:
    async with start_engine(tmp_path, supervisor=False, recent=0) as engine:
        call_id = await ring_and_answer(engine, FAMILY)
        result, _ = await engine.send(ShowCustomer(agent_id=AGENT, customer_id=1))
        assert result.ok, result.error
        await engine.send(HangUp(agent_id=AGENT, call_id=call_id))
        await engine.send(CompleteWrapUp(agent_id=AGENT, call_id=call_id, disposition="sale"))
        await engine.service.flush()
        result, _ = await engine.send(ShowCustomer(agent_id=AGENT, customer_id=1))
        assert not result.ok
        assert "customer #1" in result.error


async def test_a_supervisor_searches_and_the_trail_names_what_was_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with start_engine(tmp_path, supervisor=True) as engine:
        result, seen = await engine.send(SearchCustomers(agent_id=AGENT, query="王"))
        assert result.ok
        assert isinstance(seen[0], CustomerSearchResults)
        result, _ = await engine.send(ShowCustomer(agent_id=AGENT, customer_id=3))
        assert result.ok
        [search, show] = await CustomerBase(engine.store).audit_trail()
        assert (search.action, search.detail, search.allowed) == (
            "search",
            "'王' found [2, 1]",
            True,
        )
        assert (show.action, show.customer_id) == ("show", 3)
    db = str(tmp_path / "cti.db")
    assert await asyncio.to_thread(main, ["customers", "audit", "--db", db]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[2:] == [AGENT, "search", "-", "allowed", "'王'", "found", "[2,", "1]"]
    assert await asyncio.to_thread(main, ["customers", "audit", "--customer", "3", "--db", db]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2  # the header and the show


async def test_hostile_text_in_desk_commands_is_refused_naming_the_field(tmp_path: Path) -> None:
    """The wire protocol refuses these already (the bus drops them); the engine's own
    check holds for commands built in-process (model_construct skips validation)."""
    async with start_engine(tmp_path, supervisor=True) as engine:
        run = engine.service.dispatch.execute
        result = await run(
            AddServiceItem.model_construct(agent_id=AGENT, customer_id=1, title="Re\u202egnp.exe")
        )
        assert (
            result.error == "title: holds a bidirectional control (U+202E) that disguises the text"
        )
        result = await run(
            AddServiceItem.model_construct(
                agent_id=AGENT, customer_id=1, title="ok", detail="a\x00b\u202ec\nd"
            )
        )
        assert result.ok, result.error
        [item] = await CustomerBase(engine.store).service_items(1)
        assert item.detail == "abc\nd"
        result = await run(
            EscalateServiceItem.model_construct(agent_id=AGENT, item_id=item.id, to="\x00")
        )
        assert result.error == "to: holds a NUL byte"
