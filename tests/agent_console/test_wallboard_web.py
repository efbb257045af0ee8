"""`cti supervisor --web` in a real browser: Debian's headless Chromium loads the page,
the wallboard starts behind it, and the queue tiles reach the browser's terminal.

The page draws the terminal on a canvas (xterm.js), so its DOM holds no text to search.
The test drives Chromium over the DevTools protocol instead: before the page loads it
listens on the page's WebSocket, so it reads exactly the terminal output the browser
was given, checks the tiles there and that the terminal received it, and saves a PNG
screenshot of what the browser shows (``CTI_SCREENSHOT_DIR`` keeps a copy).

Chromium is a real peer: without it the test fails (deploy/system-deps.sh installs it).
Everything listens on 127.0.0.1 and is stopped by the test.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from tests.harness import until_async

T = TypeVar("T")

pytestmark = [pytest.mark.console, pytest.mark.integration]

#: Bounds on waiting for the server, the browser and the wallboard (safety nets only).
START_TIMEOUT_S = 60.0
#: Chromium's own flags: no sandbox (root in a container), no GPU, nothing fetched.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    "--window-size=1280,800",
)
#: Runs in the page before its own scripts: keeps every byte the terminal is sent.
LISTEN_TO_TERMINAL = """
(() => {
  const Native = window.WebSocket;
  const decoder = new TextDecoder();
  window.__ctiTerminal = "";
  function Listening(url, protocols) {
    const socket = protocols === undefined ? new Native(url) : new Native(url, protocols);
    socket.addEventListener("message", (event) => {
      if (typeof event.data !== "string") {
        window.__ctiTerminal += decoder.decode(new Uint8Array(event.data), {stream: true});
      }
    });
    return socket;
  }
  Listening.prototype = Native.prototype;
  for (const name of ["CONNECTING", "OPEN", "CLOSING", "CLOSED"]) Listening[name] = Native[name];
  window.WebSocket = Listening;
})();
"""
_ANSI = re.compile(
    r"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78])"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail(
            "chromium is not installed: the web wallboard test needs Debian's chromium "
            "(deploy/system-deps.sh installs it; or apt-get install chromium)"
        )
    return path


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a process this test started, with the processes it started (its group)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture
def web_wallboard(tmp_path: Path) -> Iterator[str]:
    """``cti supervisor --web`` on an embedded demo center; yields its URL."""
    config = tmp_path / "cti.toml"
    config.write_text(
        "[demo]\ncustomers = 50\nbots = 3\n"
        '[[queues]]\nname = "general"\n[[queues]]\nname = "sales"\n',
        encoding="utf-8",
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
            "--host",
            "127.0.0.1",
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
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop(server)
        log.close()


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Path]:
    """Headless Chromium with a fresh profile; yields the profile (DevToolsActivePort)."""
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    browser = subprocess.Popen(
        [chromium_path(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "chromium.log").open("wb"),
        start_new_session=True,
    )
    try:
        yield profile
    finally:
        stop(browser)


class DevTools:
    """A minimal DevTools protocol client on one page."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket
        self._ids = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._ids += 1
        ask = self._ids
        await self._socket.send_json({"id": ask, "method": method, "params": params})
        while True:
            reply = json.loads((await self._socket.receive()).data)
            if reply.get("id") == ask:
                if "error" in reply:
                    raise AssertionError(f"DevTools {method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")


async def browser_state(check: Callable[[], Awaitable[T | None]], what: str) -> T:
    """``check()``'s first true value: Chromium and the server are peer processes."""
    return await until_async(check, START_TIMEOUT_S, every_s=0.2, what=what)


def read_port(port_file: Path) -> int | None:
    text = port_file.read_text() if port_file.exists() else ""
    return int(text.split()[0]) if text.strip() else None


def keep_screenshot(png: bytes, tmp_path: Path) -> None:
    (tmp_path / "wallboard-web.png").write_bytes(png)
    keep = os.environ.get("CTI_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        (Path(keep) / "wallboard-web.png").write_bytes(png)


@pytest.fixture
async def page(chromium: Path) -> AsyncIterator[DevTools]:
    port_file = chromium / "DevToolsActivePort"

    async def devtools_port() -> int | None:
        return read_port(port_file)

    port = await browser_state(devtools_port, "Chromium's DevTools port")
    async with aiohttp.ClientSession() as http:

        async def page_target() -> str | None:
            try:
                async with http.get(f"http://127.0.0.1:{port}/json/list") as response:
                    targets = await response.json()
            except aiohttp.ClientError:
                return None
            pages = [t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page"]
            return pages[0] if pages else None

        target = await browser_state(page_target, "a page in Chromium")
        async with http.ws_connect(target, max_msg_size=0) as socket:
            yield DevTools(socket)


async def served(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


def screen_text(raw: str) -> str:
    return _ANSI.sub(" ", raw)


async def test_web_wallboard_shows_the_queue_tiles(
    web_wallboard: str, page: DevTools, tmp_path: Path
) -> None:
    await browser_state(lambda: served(web_wallboard), "cti supervisor --web serving its page")
    await page.call("Page.enable")
    await page.call("Page.addScriptToEvaluateOnNewDocument", source=LISTEN_TO_TERMINAL)
    await page.call("Page.navigate", url=web_wallboard)

    async def tiles_shown() -> str | None:
        text = screen_text(await page.evaluate("window.__ctiTerminal || ''") or "")
        return text if all(word in text for word in wanted) else None

    # the two queue tiles with their figures, the agent grid's tab and the footer's keys
    wanted = (
        "general",
        "sales",
        "Waiting",
        "SL",
        "ASA",
        "Abandoned",
        "Ready",
        "Agents",
        "Priority",
    )
    text = await browser_state(tiles_shown, "the wallboard's queue tiles in the browser")
    assert text.index("general") < text.index("sales")  # in the configured order
    # the terminal took it: xterm.js marks the page once it has drawn output
    assert await page.evaluate("document.body.classList.contains('-first-byte')")
    assert await page.evaluate("document.querySelector('.xterm-screen canvas') !== null")

    shot = await page.call("Page.captureScreenshot", format="png")
    png = base64.b64decode(shot["data"])
    assert png.startswith(b"\x89PNG")
    assert len(png) > 10_000
    keep_screenshot(png, tmp_path)
