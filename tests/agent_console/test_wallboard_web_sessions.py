"""`cti supervisor --web` ends each browser's session when its browser goes (issue 21).

A browser that closed within a moment of opening the page left its session process
behind (a `cti supervisor` child spinning in Textual's compositor, deaf to SIGTERM,
outliving the server). Here an aiohttp client opens the page's WebSocket and drops it
again and again, some at once, some once the board has drawn; then no session process
may be left, neither while the server runs nor after it stops.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from cti.bus import local
from tests.agent_console.test_wallboard_web import free_port, served, stop
from tests.harness import until_async

pytestmark = [pytest.mark.console, pytest.mark.integration]

#: Safety net for the server and its sessions (a loaded machine), never a measurement.
LIMIT_S = 60.0


def processes_naming(marker: str) -> dict[int, str]:
    """Live processes whose command line holds ``marker``: pid -> command line."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        command = raw.replace(b"\0", b" ").decode(errors="replace")
        if marker in command and state != "Z":
            found[int(entry.name)] = command
    return found


def children_of(pid: int) -> list[int]:
    """The processes whose parent is ``pid``, zombies left out."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def drop(socket: aiohttp.ClientWebSocketResponse) -> None:
    """Break the connection under ``socket``, as a browser killed or a network lost."""
    connection = socket._response.connection  # aiohttp has no abort()
    assert connection is not None
    assert connection.transport is not None
    connection.transport.abort()


@pytest.fixture
def web_server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    config = tmp_path / "cti.toml"
    config.write_text(
        '[demo]\ncustomers = 30\nbots = 2\n[[queues]]\nname = "general"\n', encoding="utf-8"
    )
    port = free_port()
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cti.app.cli",
            "supervisor",
            "--web",
            "--own-demo",
            "--port",
            str(port),
            "--config",
            str(config),
            "--db",
            str(tmp_path / "cti.db"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield server, f"http://127.0.0.1:{port}/"
    finally:
        stop(server)
        log.close()
        for pid in processes_naming(str(tmp_path)):  # what the test found left, ended
            os.kill(pid, 9)


async def test_dropped_browsers_leave_no_session(
    web_server: tuple[subprocess.Popen[bytes], str], tmp_path: Path
) -> None:
    server, url = web_server
    await until_async(lambda: served(url), LIMIT_S, every_s=0.2, what="the page served")
    marker = str(tmp_path / "cti.db")
    ws_url = url.replace("http:", "ws:") + "ws?width=100&height=30"
    async with aiohttp.ClientSession() as http:
        for visit in range(8):
            socket = await http.ws_connect(ws_url)
            if visit % 4 >= 2:  # this one stays until the board has drawn something
                message = await socket.receive(timeout=LIMIT_S)
                assert message.type == aiohttp.WSMsgType.BINARY
            if visit % 2:
                await socket.close()  # the browser closes the page
            else:
                drop(socket)  # the connection breaks (no closing handshake)

    async def sessions_gone() -> bool:
        return not children_of(server.pid)

    await until_async(sessions_gone, LIMIT_S, every_s=0.2, what="no session left")
    assert server.poll() is None  # the server still serves
    assert await served(url)

    # a session open when the server stops ends with it
    async with aiohttp.ClientSession() as http, http.ws_connect(ws_url) as socket:
        message = await socket.receive(timeout=LIMIT_S)
        assert message.type == aiohttp.WSMsgType.BINARY
        sessions = children_of(server.pid)
        assert sessions
        # the sessions watch the server's one centre (--own-demo), never start their own
        assert await local.centre_answers(tmp_path / "cti.db")
        commands = processes_naming(marker)
        for pid in sessions:
            assert " supervisor " in commands[pid]
            assert "--own-demo" not in commands[pid]
        server.send_signal(signal.SIGTERM)  # to the server alone, as a service manager may
        assert server.wait(timeout=LIMIT_S) == 0
    assert not local.socket_path(tmp_path / "cti.db").exists()  # the centre stopped with it

    await nothing_left(marker)


async def test_a_killed_server_leaves_no_session(
    web_server: tuple[subprocess.Popen[bytes], str], tmp_path: Path
) -> None:
    server, url = web_server
    await until_async(lambda: served(url), LIMIT_S, every_s=0.2, what="the page served")
    ws_url = url.replace("http:", "ws:") + "ws?width=100&height=30"
    async with aiohttp.ClientSession() as http, http.ws_connect(ws_url) as socket:
        message = await socket.receive(timeout=LIMIT_S)
        assert message.type == aiohttp.WSMsgType.BINARY
        server.kill()  # the server crashes: its sessions' input ends
        server.wait(timeout=LIMIT_S)
    await nothing_left(str(tmp_path / "cti.db"))


async def nothing_left(marker: str) -> None:
    async def gone() -> bool:
        return not processes_naming(marker)

    await until_async(gone, LIMIT_S, every_s=0.2, what=f"no process naming {marker} left")
