"""Every board watches the same centre (issue 21): `cti demo` shares its in-memory bus on
a local socket beside its database (:mod:`cti.bus.local`) and `cti supervisor` watches it;
without one running it says so instead of starting a centre of its own."""

from __future__ import annotations

import asyncio
import json
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, RichLog, TabbedContent

from agent_console.wallboard import Wallboard
from agent_console.wallboard_model import WallboardModel
from cti import topics
from cti.app.demo import DemoCenter, running_demo
from cti.bus import local
from cti.config import Config, load_config
from cti.errors import CtiError
from tests.harness import settle, until_async

pytestmark = pytest.mark.console


def demo_config() -> Config:
    # One bot that keeps its call: the grid and the queue hold still while compared.
    return load_config(
        overrides={
            "queues": [{"name": "general"}],
            "demo": {"customers": 30, "bots": 1, "mean_handle_s": 36_000.0},
            "engine": {"status_interval_s": 3600.0},
        }
    )


@pytest.fixture
async def centre(tmp_path: Path) -> AsyncIterator[DemoCenter]:
    async with running_demo(
        demo_config(), tmp_path / "cti.db", bots=1, human=None, share=True
    ) as center:
        yield center


async def follow(bus: local.LocalBus, model: WallboardModel) -> None:
    async with (
        bus.subscribe(topics.ALL_AGENT_STATES) as agents,
        bus.subscribe(topics.ALL_QUEUE_CALLS) as calls,
    ):

        async def pump(subscription: Any) -> None:
            async for _topic, message in subscription:
                model.apply(message, 0.0)

        await asyncio.gather(pump(agents), pump(calls))


async def test_two_boards_on_the_demo_centre_see_the_same_agents_and_calls(
    centre: DemoCenter, tmp_path: Path
) -> None:
    db = tmp_path / "cti.db"
    assert stat.S_IMODE(local.socket_path(db).stat().st_mode) == 0o600
    assert stat.S_IMODE(local.token_path(db).stat().st_mode) == 0o600
    router = centre.service.router
    calls = [centre.trunk.ring(f"138 0000 000{i}") for i in range(1, 4)]
    await until_async(lambda: _true(router.waiting("general") == 2), 30.0, what="two calls waiting")
    await centre.service.publish_status()
    waiting = router.waiting_in_order("general")
    [talking] = [c for c in calls if c not in waiting]
    [bot] = router.agent_ids()

    async with local.connect(db) as first, local.connect(db) as second:
        other = WallboardModel()
        follower = asyncio.create_task(follow(second, other))
        board = Wallboard(first, "sup1", watching=f"the demo centre of {db}")
        async with board.run_test(size=(120, 30)) as pilot:
            table: DataTable[Any] = board.query_one("#agents", DataTable)
            await settle(pilot, lambda: table.row_count == 1 and len(other.agents) == 1)
            for model in (board.model, other):
                row = model.agents[bot]
                await settle(pilot, lambda row=row: row.call_id == talking)  # type: ignore[misc]
                assert row.name  # the demo's agents have names, sent by the engine
                assert [c.call_id for _, c in model.waiting_calls()] == waiting
            assert board.model.agents[bot] == other.agents[bot]
            board.query_one(TabbedContent).active = "log-pane"
            log: RichLog = board.query_one("#log", RichLog)
            await settle(pilot, lambda: any("Watching the demo centre of" in line.text
                                            for line in log.lines))  # fmt: skip
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)


async def _true(value: bool) -> bool | None:
    return True if value else None


async def test_a_second_centre_on_the_same_database_is_refused(
    centre: DemoCenter, tmp_path: Path
) -> None:
    with pytest.raises(CtiError, match="already runs"):
        async with running_demo(demo_config(), tmp_path / "cti.db", bots=0, human=None, share=True):
            pass
    assert await local.centre_answers(tmp_path / "cti.db")  # the first still serves


@pytest.mark.security
async def test_the_socket_wants_the_token_and_survives_bad_lines(
    centre: DemoCenter, tmp_path: Path
) -> None:
    db = tmp_path / "cti.db"
    where = str(local.socket_path(db))
    reader, writer = await asyncio.open_unix_connection(where)
    writer.write(b"not the token\n" + json.dumps({"op": "sub", "id": 1, "pattern": "#"}).encode())
    writer.write(b"\n")
    await writer.drain()
    assert await reader.read() == b""  # disconnected, nothing sent
    writer.close()

    async with local.connect(db) as bus:
        bus._writer.write(b"{not json\n" + b'{"op": "pub", "topic": "cti/v1/x", "payload": "1"}\n')
        async with bus.subscribe(topics.ALL_AGENT_STATES) as states:
            topic, _message = await asyncio.wait_for(anext(aiter(states)), 30.0)
            assert topic == topics.agent_state(centre.service.router.agent_ids()[0])
    assert centre.bus.dropped == 1  # the payload that did not decode


def test_cti_supervisor_without_a_centre_says_so(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cti.app.cli", "supervisor", "--db", str(tmp_path / "cti.db")],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        check=False,
    )
    assert done.returncode == 2
    assert "no demo centre runs on" in done.stderr
    assert "--own-demo" in done.stderr
    assert not (tmp_path / "cti.db").exists()  # no centre was started
