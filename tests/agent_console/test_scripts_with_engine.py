"""Call scripts through the real engine: chosen by the call's queue, sent with the offer,
walked in the desk to the disposition, the answers stored with the call.

No fake: the engine service routes simulator-trunk calls over the in-memory bus, with
customers in a real SQLite store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, OptionList

from agent_console.desktop import AgentDesktop
from agent_console.script_panel import ScriptPanel
from agent_console.widgets import DispositionPicker
from cti import topics
from cti.bus.memory import InMemoryBus
from cti.engine.service import EngineService
from cti.models import AgentConfig, AgentState, Customer, PhoneNumber, Segment
from cti.protocol import CallArrived, CallOffered, Login, SetReady
from cti.store.database import Store
from scripts_engine.catalog import read_script_text, text_sha256
from telephony_adapters.sim import SimTrunk
from tests.harness import center_config, engine_center, settle, until

pytestmark = [pytest.mark.console, pytest.mark.integration]

ANN = Customer(
    id=1,
    name="Ann Lee",
    phones=(PhoneNumber(raw="+8613800000001", e164="+8613800000001"),),
    value=40.0,
    segment=Segment.BRONZE,
    email="ann@example.com",
)
WANG = Customer(
    id=2,
    name="王小明",
    phones=(PhoneNumber(raw="+8613800000002", e164="+8613800000002"),),
    value=95.0,
    segment=Segment.PLATINUM,
)

GOOD = """\
[script]
name = "Tiny"
version = "{version}"
direction = "inbound"
start = "hello"

[nodes.hello]
kind = "say"
text = "Hello {{customer.name}}"
next = "bye"

[nodes.bye]
kind = "end"
"""


@asynccontextmanager
async def center(
    tmp_path: Path,
    queues: list[dict[str, Any]],
    agents: Sequence[AgentConfig],
    dnis: dict[str, str] | None = None,
) -> AsyncIterator[tuple[EngineService, InMemoryBus, SimTrunk, Store]]:
    config = center_config(
        queues, engine={"default_queue": queues[0]["name"], "dnis_queues": dnis or {}}
    )
    async with engine_center(
        tmp_path / "cti.db", config=config, agents=agents, customers=[ANN, WANG]
    ) as c:
        yield c.service, c.bus, c.trunk, c.store


def focused_id(app: AgentDesktop) -> str | None:
    return app.focused.id if app.focused is not None else None


def notices(app: AgentDesktop) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_walk_the_inbound_script_to_the_disposition(tmp_path: Path) -> None:
    """The shipped English inbound script, fault branch: the wrap-up is refused while the
    script waits for an answer, then the answers, the path and the actions are stored."""
    queues = [{"name": "general", "wrap_up_s": 600, "script": "inbound_service_en"}]
    agent = AgentConfig(id="1001", name="Bo", queues={"general": 0})
    async with center(tmp_path, queues, [agent]) as (service, bus, trunk, store):
        app = AgentDesktop(bus, "1001", queues=["general"])
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("enter")
            await settle(pilot, lambda: app.agent_state is AgentState.NOT_READY)
            await pilot.press("r")
            await settle(pilot, lambda: app.agent_state is AgentState.READY)

            call_id = trunk.ring("138 0000 0001")
            await settle(pilot, lambda: app.script_run is not None)
            panel = app.query_one(ScriptPanel)
            assert panel.display
            assert not panel.active
            run = app.script_run
            assert run is not None
            assert run.node_id == "greet"
            greeting = "".join(s.text for s in run.text())
            assert greeting == "Thank you for calling, this is Bo. Am I speaking with Ann Lee?"

            await pilot.press("a")
            await settle(pilot, lambda: app.agent_state is AgentState.TALKING)
            await settle(pilot, lambda: panel.has_focus_within)
            await pilot.press("enter")  # greet -> reason
            await settle(pilot, lambda: node(app) == "reason")
            await pilot.press("2")  # a fault
            await settle(pilot, lambda: node(app) == "fault_since")
            assert focused_id(app) == "script-input"
            await pilot.press(*"2026-02-30", "enter")
            await settle(pilot, lambda: "not a date" in message(app))
            assert node(app) == "fault_since"
            field = app.query_one("#script-input", Input)
            field.value = ""
            await pilot.press(*"2026-01-05", "enter")
            await settle(pilot, lambda: node(app) == "fault_callback")

            # The caller must go; the agent hangs up with the script half done.
            app.screen.set_focus(None)
            await pilot.press("h")
            await settle(pilot, lambda: app.agent_state is AgentState.WRAP_UP)
            await settle(pilot, lambda: panel.has_focus_within)  # the script is first
            assert "Finish the script first" in hint(app)

            app.query_one(DispositionPicker).focus_list()
            # A digit while the script waits answers the script, whatever has focus: yes,
            # call me back (no disposition is taken yet).
            await pilot.press("1")
            await settle(pilot, lambda: node(app) == "callback_phone")
            await service.flush()
            assert app.agent_state is AgentState.WRAP_UP
            assert await store.calls.records() == []

            field = app.query_one("#script-input", Input)
            assert field.value  # the caller's number, prefilled
            field.value = ""
            field.focus()
            await pilot.press(*"138 0000 0009", "enter")
            await settle(pilot, lambda: node(app) == "resolved")
            await pilot.press("2")  # nothing else
            await settle(pilot, lambda: app.script_run is not None and app.script_run.finished)
            picker = app.query_one(DispositionPicker)
            assert focused_id(app) == "dispositions"
            assert picker.dispositions[picker.query_one(OptionList).highlighted or 0] == "resolved"

            await pilot.press("enter")  # the preselected disposition
            await settle(pilot, lambda: app.agent_state is AgentState.READY)
        await service.flush()

        [record] = await store.calls.records()
        assert (record.call_id, record.disposition) == (call_id, "resolved")
        stored = await store.script_runs.get(call_id)
        assert stored is not None
        assert (stored.script, stored.version, stored.agent_id) == (
            "Customer service",
            "1.0",
            "1001",
        )
        assert stored.sha256 == text_sha256(_shipped("inbound_service_en"))
        assert stored.answers == {
            "reason": "fault",
            "fault_since": "2026-01-05",
            "wants_callback": True,
            "callback_phone": "13800000009",
            "anything_else": "no",
        }
        assert stored.path[:3] == ("greet", "reason", "fault_since")
        assert stored.path[-1] == "goodbye"
        assert [a.action for a in stored.actions] == [
            "schedule_callback",
            "set_disposition",
            "send_email",
        ]
        assert stored.customer_id == 1
        [email] = await store.script_runs.outbox()
        assert (email.action, email.call_id, email.customer_id) == ("send_email", call_id, 1)
        assert email.args == {"template": "service_summary", "to": "ann@example.com"}
        callbacks = [c for c in service.router.active_call_ids() if c.startswith("cb-")]
        assert len(callbacks) == 1  # the script's callback, two hours on
        [contact] = await store.recent_interactions(1)
        assert contact.script_answers == stored.answers


def node(app: AgentDesktop) -> str:
    run = app.script_run
    return run.node_id if run is not None else ""


def message(app: AgentDesktop) -> str:
    return str(app.query_one("#script-message").render())


def hint(app: AgentDesktop) -> str:
    return str(app.query_one("#wrap-up-hint").render())


def _shipped(name: str) -> str:
    loaded, problems = read_script_text(name)
    assert loaded is not None, problems
    return loaded.text


async def _ready(service: EngineService, *agents: str) -> None:
    for agent in agents:
        for command in (Login(agent_id=agent), SetReady(agent_id=agent)):
            await service.handle_command(topics.agent_commands(agent), command)


async def test_each_queue_offers_its_own_script(tmp_path: Path) -> None:
    queues = [
        {"name": "general"},
        {"name": "service", "script": "inbound_service_zh"},
    ]
    agents = [
        AgentConfig(id="1001", queues={"general": 0}),
        AgentConfig(id="1002", name="王伟", queues={"service": 0}),
    ]
    async with center(tmp_path, queues, agents, dnis={"4008001234": "service"}) as (
        service,
        bus,
        trunk,
        _,
    ):
        offers: dict[str, CallOffered] = {}

        async def follow(agent: str) -> None:
            async with bus.subscribe(topics.agent_events(agent)) as events:
                async for _, message in events:
                    if isinstance(message, CallOffered):
                        offers[agent] = message

        followers = [asyncio.create_task(follow(a)) for a in ("1001", "1002")]
        await asyncio.sleep(0)
        await _ready(service, "1001", "1002")
        for call_id, dnis in (("g1", "110"), ("s1", "4008001234")):
            event = CallArrived(call_id=call_id, ani="+8613800000002", dnis=dnis, line=trunk.name)
            await service.handle_line_event(event)
        await until(lambda: len(offers) == 2)
        for task in followers:
            task.cancel()

        assert offers["1001"].pop.queue == "general"
        assert offers["1001"].pop.script is None
        sent = offers["1002"].pop.script
        assert offers["1002"].pop.queue == "service"
        assert sent is not None
        assert (sent.name, sent.version) == ("客户服务", "1.0")
        assert sent.text == _shipped("inbound_service_zh")
        assert sent.sha256 == text_sha256(sent.text)
        assert offers["1002"].agent_name == "王伟"


async def test_a_broken_script_file_is_logged_and_the_call_offered_without_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "service.toml"
    broken = GOOD.format(version="1").replace('next = "bye"', 'next = "nowhere"')
    path.write_text(broken, encoding="utf-8")
    queues = [{"name": "general", "wrap_up_s": 600, "script": str(path)}]
    agent = AgentConfig(id="1001", queues={"general": 0})
    caplog.set_level(logging.ERROR, logger="scripts_engine.catalog")
    async with center(tmp_path, queues, [agent]) as (service, bus, trunk, store):
        # Logged at start-up with the file and the line, once.
        assert f"{path}:7: node hello: goes to 'nowhere'" in caplog.text
        app = AgentDesktop(bus, "1001", queues=["general"])
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("enter")
            await settle(pilot, lambda: app.agent_state is AgentState.NOT_READY)
            await pilot.press("r")
            await settle(pilot, lambda: app.agent_state is AgentState.READY)

            first = trunk.ring("138 0000 0001")
            await settle(pilot, lambda: app.offer is not None)
            assert app.offer is not None
            assert app.offer.pop.script is None
            assert not app.query_one(ScriptPanel).display
            await pilot.press("a")
            await settle(pilot, lambda: app.agent_state is AgentState.TALKING)
            await pilot.press("h")
            await settle(pilot, lambda: app.agent_state is AgentState.WRAP_UP)
            await pilot.press("1")  # no script: nothing to wait for
            await settle(pilot, lambda: app.agent_state is AgentState.READY)
            assert caplog.text.count("goes to 'nowhere'") == 1  # not again per call

            # Fixed while the engine runs: the next call has it.
            path.write_text(GOOD.format(version="2"), encoding="utf-8")
            trunk.ring("138 0000 0001")
            await settle(pilot, lambda: app.script_run is not None)
            run = app.script_run
            assert run is not None
            assert run.version == "2"
            assert "".join(s.text for s in run.text()) == "Hello Ann Lee"
        await service.flush()
        [record] = await store.calls.records()
        assert record.call_id == first
        assert await store.script_runs.get(first) is None


async def test_a_call_keeps_the_script_version_it_started_with(tmp_path: Path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(GOOD.format(version="1"), encoding="utf-8")
    queues = [{"name": "general", "wrap_up_s": 600, "script": str(path)}]
    agents = [AgentConfig(id="1001", queues={"general": 0})]
    async with center(tmp_path, queues, agents) as (service, bus, trunk, store):
        app = AgentDesktop(bus, "1001", queues=["general"])
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("enter")
            await settle(pilot, lambda: app.agent_state is AgentState.NOT_READY)
            await pilot.press("r")
            await settle(pilot, lambda: app.agent_state is AgentState.READY)
            call_id = trunk.ring("138 0000 0002")
            await settle(pilot, lambda: app.script_run is not None)
            await pilot.press("a")
            await settle(pilot, lambda: app.agent_state is AgentState.TALKING)

            # A supervisor edits the script during the call.
            path.write_text(GOOD.format(version="2").replace("Hello", "Hi"), encoding="utf-8")
            await pilot.press("enter")  # hello -> bye, on version 1
            await settle(pilot, lambda: app.script_run is not None and app.script_run.finished)
            run = app.script_run
            assert run is not None
            assert run.version == "1"
            await pilot.press("h")
            await settle(pilot, lambda: app.agent_state is AgentState.WRAP_UP)
            await pilot.press("1")
            await settle(pilot, lambda: app.agent_state is AgentState.READY)

            trunk.ring("138 0000 0002")  # the next call gets the new version
            await settle(pilot, lambda: app.script_run is not None)
            run = app.script_run
            assert run is not None
            assert run.version == "2"
            assert "".join(s.text for s in run.text()) == "Hi 王小明"
        await service.flush()
        stored = await store.script_runs.get(call_id)
        assert stored is not None
        assert stored.version == "1"
        assert stored.sha256 == text_sha256(GOOD.format(version="1"))
        assert stored.answers == {}
        assert stored.path == ("hello", "bye")


MAILING = """\
[script]
name = "Mailing"
version = "1"
direction = "inbound"
start = "hello"

[nodes.hello]
kind = "say"
text = "Hello {customer.name}"
next = "mail"

[nodes.mail]
kind = "action"
action = "send_email"
args = { template = "summary", to = "{customer.email}" }
next = "bye"

[nodes.bye]
kind = "say"
text = "Goodbye {customer.name}"
next = "end"

[nodes.end]
kind = "end"
"""


async def mailing_call(tmp_path: Path, *, identify: bool) -> tuple[list[str], list[Any], str]:
    """An unknown number calls; the script passes its send_email before the caller is
    known; with ``identify`` the agent finds Ann (f) and attaches her (a). What the
    script read last, the outbox and the desk's notices."""
    from agent_console.customer_search import CustomerSearchScreen

    path = tmp_path / "mailing.toml"
    path.write_text(MAILING, encoding="utf-8")
    config = center_config(
        [{"name": "general", "wrap_up_s": 600, "script": str(path)}],
        access={"roles": {"supervisor": {"members": ["1001"]}}},
    )
    agents = [AgentConfig(id="1001", queues={"general": 0})]
    async with engine_center(
        tmp_path / "cti.db", config=config, agents=agents, customers=[ANN, WANG]
    ) as c:
        app = AgentDesktop(c.bus, "1001", queues=["general"])
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("enter")
            await settle(pilot, lambda: app.agent_state is AgentState.NOT_READY)
            await pilot.press("r")
            await settle(pilot, lambda: app.agent_state is AgentState.READY)
            c.trunk.ring("139 0000 0009")  # nobody's number
            await settle(pilot, lambda: app.script_run is not None)
            await pilot.press("a")
            await settle(pilot, lambda: app.agent_state is AgentState.TALKING)
            await settle(pilot, lambda: node(app) == "hello")
            await pilot.press("enter")  # hello -> mail (unfilled) -> bye
            await settle(pilot, lambda: node(app) == "bye")
            # Read the notice while it shows (notifications expire).
            await settle(pilot, lambda: any("is not queued" in n for n in notices(app)))
            shown = notices(app)
            if identify:
                await pilot.press("f")
                await settle(pilot, lambda: isinstance(app.screen, CustomerSearchScreen))
                app.screen.query_one("#search-query", Input).value = "Ann"
                await pilot.press("enter")
                results = app.screen.query_one("#search-results", OptionList)
                await settle(pilot, lambda: results.option_count == 1)
                await pilot.press("enter")  # show her
                screen = app.screen
                await settle(pilot, lambda: getattr(screen, "details", None) is not None)
                await pilot.press("a")  # she is the caller
                await settle(pilot, lambda: "Ann" in read(app))
                await pilot.press("escape")
                await settle(pilot, lambda: not isinstance(app.screen, CustomerSearchScreen))
            said = read(app)
            await pilot.press("enter")  # bye -> end
            await pilot.press("h")
            await settle(pilot, lambda: app.agent_state is AgentState.WRAP_UP)
            await settle(pilot, lambda: app.query_one(DispositionPicker).has_focus_within)
            await pilot.press("1")
            await settle(pilot, lambda: app.agent_state is AgentState.READY)
        await c.service.flush()
        return shown, await c.store.script_runs.outbox(), said


def read(app: AgentDesktop) -> str:
    run = app.script_run
    return "".join(s.text for s in run.text()) if run is not None else ""


async def test_an_unfilled_mail_is_refused_on_the_desk_and_never_queued(tmp_path: Path) -> None:
    shown, outbox, said = await mailing_call(tmp_path, identify=False)
    assert said == "Goodbye ‹customer.name?›"
    assert outbox == []
    assert any("send_email is not queued: to = ‹customer.email?› has no value" in n for n in shown)


async def test_the_caller_identified_during_the_call_is_what_the_script_reads_and_mails(
    tmp_path: Path,
) -> None:
    shown, outbox, said = await mailing_call(tmp_path, identify=True)
    assert any("send_email is not queued" in n for n in shown)  # until she was known
    assert said == "Goodbye Ann Lee"
    [mail] = outbox
    assert (mail.action, mail.args["to"], mail.customer_id) == ("send_email", "ann@example.com", 1)
