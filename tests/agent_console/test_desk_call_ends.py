"""A call that ends or leaves the agent before its script does: the caller hangs up, or
the agent hands the call on blind. The script ends where it was, wrap-up needs only the
disposition; a wrap-up whose time runs out still records one. Against the real engine."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from agent_console.desktop import AgentDesktop
from agent_console.script_panel import ScriptPanel
from agent_console.widgets import DispositionPicker
from cti.models import AgentState
from queue_engine.timers import WRAP_UP_TIMED_OUT
from tests.agent_console.test_desktop_call_control import (
    SIZE,
    TINY,
    notices,
    open_center,
    records,
    run_node,
    type_into_prompt,
)
from tests.harness import Center, settle

pytestmark = [pytest.mark.console, pytest.mark.integration]


async def mid_script(pilot: Pilot[Any], app: AgentDesktop, center: Center) -> str:
    """Ready, a call answered, the script's first answer given (it waits at 'more')."""
    await pilot.press("enter")
    await settle(pilot, lambda: app.agent_state is AgentState.NOT_READY)
    await pilot.press("r")
    await settle(pilot, lambda: app.agent_state is AgentState.READY)
    call_id = center.trunk.ring("+8613800000001")
    await settle(pilot, lambda: app.script_run is not None)
    await pilot.press("a")
    await settle(pilot, lambda: app.agent_state is AgentState.TALKING)
    await settle(pilot, lambda: app.focused is not None)
    await pilot.press("1")
    await settle(pilot, lambda: run_node(app) == "more")
    return call_id


def tiny_queues(tmp_path: Path, wrap_up_s: float = 600) -> list[dict[str, Any]]:
    script = tmp_path / "tiny.toml"
    script.write_text(TINY, encoding="utf-8")
    return [
        {"name": "general", "wrap_up_s": wrap_up_s, "script": str(script)},
        {"name": "billing", "wrap_up_s": 600},
    ]


async def wrap_up_with_the_first_disposition(pilot: Pilot[Any], app: AgentDesktop) -> str:
    """Key 1 in wrap-up, the script unfinished: accepted; the disposition chosen."""
    await settle(pilot, lambda: app.view == "wrap_up")
    picker = app.query_one(DispositionPicker)
    await settle(pilot, lambda: picker.has_focus_within)
    assert not app.query_one(ScriptPanel).active  # the script ended with the call
    chosen = picker.dispositions[0]
    await pilot.press("1")
    # Ready (and maybe offered the call handed on again: the agent is in both queues)
    await settle(pilot, lambda: app.agent_state in (AgentState.READY, AgentState.RESERVED))
    assert not [n for n in notices(app) if "script is not finished" in n]
    return chosen


async def test_the_caller_hangs_up_mid_script_and_the_disposition_is_enough(
    tmp_path: Path,
) -> None:
    async with open_center(tmp_path, queues=tiny_queues(tmp_path)) as center:
        app = AgentDesktop(center.bus, "1001", queues=["general"])
        async with app.run_test(size=SIZE) as pilot:
            call_id = await mid_script(pilot, app, center)
            center.trunk.caller_hangs_up(call_id)
            chosen = await wrap_up_with_the_first_disposition(pilot, app)
        [record] = await records(center)
        assert record.disposition == chosen
        stored = await center.store.script_runs.get(call_id)
        assert stored is not None
        assert stored.answers == {"happy": "yes"}  # the script as far as it went


async def test_a_blind_transfer_mid_script_and_the_disposition_is_enough(
    tmp_path: Path,
) -> None:
    async with open_center(tmp_path, queues=tiny_queues(tmp_path)) as center:
        app = AgentDesktop(center.bus, "1001", queues=["general", "billing"])
        async with app.run_test(size=SIZE) as pilot:
            call_id = await mid_script(pilot, app, center)
            app.screen.set_focus(None)
            await pilot.press("w")
            await type_into_prompt(pilot, "billing")
            await wrap_up_with_the_first_disposition(pilot, app)
        assert center.service.router.call_queue(call_id) == "billing"


async def test_the_agent_who_hangs_up_finishes_the_script_first(tmp_path: Path) -> None:
    async with open_center(tmp_path, queues=tiny_queues(tmp_path)) as center:
        app = AgentDesktop(center.bus, "1001", queues=["general"])
        async with app.run_test(size=SIZE) as pilot:
            await mid_script(pilot, app, center)
            app.screen.set_focus(None)
            await pilot.press("h")
            await settle(pilot, lambda: app.view == "wrap_up")
            app.query_one(DispositionPicker).choose(0)
            await settle(pilot, lambda: any("script is not finished" in n for n in notices(app)))
            assert app.agent_state is AgentState.WRAP_UP


async def test_a_wrap_up_that_runs_out_records_a_disposition(tmp_path: Path) -> None:
    async with open_center(tmp_path, queues=tiny_queues(tmp_path, wrap_up_s=0.2)) as center:
        done = asyncio.Event()
        center.service.record_listeners.append(lambda _record: done.set())
        app = AgentDesktop(center.bus, "1001", queues=["general"])
        async with app.run_test(size=SIZE) as pilot:
            call_id = await mid_script(pilot, app, center)
            center.trunk.caller_hangs_up(call_id)
            await asyncio.wait_for(done.wait(), timeout=10)  # the engine's 0.2 s: a net
        [record] = await records(center)
        assert (record.call_id, record.disposition) == (call_id, WRAP_UP_TIMED_OUT)
