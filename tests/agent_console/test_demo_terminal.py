"""``cti demo`` in a real terminal: tmux at 80x24, driven by keys, read off the screen.

This is the check a person makes by hand: the program starts in a terminal of the
smallest supported size, shows the login, takes keys, offers a call with the
customer's card and the demo's call script, and goes through answer, the script (to
its end), hang-up and disposition back to Ready.
tmux runs on a private socket and is killed by the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness import until_blocking

pytestmark = pytest.mark.console

CTI = Path(sys.executable).with_name("cti")
#: One caller every few seconds and no bots: every call comes to the human agent.
CONFIG = """
[demo]
bots = 0
rate_per_hour = 1800.0
mean_handle_s = 600.0
mean_patience_s = 600.0
customers = 200
"""


class Terminal:
    def __init__(self, socket: str) -> None:
        self.socket = socket

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=30
        )
        if done.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "demo")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "demo", *keys)

    def wait_for(self, what: str, test: Callable[[str], bool], limit_s: float = 60.0) -> str:
        """The screen once ``test`` holds for it; fails with the last screen after
        ``limit_s`` seconds (a safety net, not a measurement)."""
        screen = ""

        def shown() -> bool:
            nonlocal screen
            screen = self.screen()
            return test(screen)

        try:
            until_blocking(shown, limit_s, every_s=0.2, what=what)
        except AssertionError as failed:
            raise AssertionError(f"{failed}; the screen:\n{screen}") from None
        return screen


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed: run `make test` (deploy/system-deps.sh installs it)")
    config = tmp_path / "demo.toml"
    config.write_text(CONFIG, encoding="utf-8")
    term = Terminal(f"cti-test-{os.getpid()}")
    command = f"{CTI} demo --config {config} --db {tmp_path / 'demo.db'}"
    env = {"TERM": "xterm-256color", "LANG": "C.UTF-8"}
    term.tmux(
        "new-session", "-d", "-s", "demo", "-x", "80", "-y", "24",
        *[a for k, v in env.items() for a in ("-e", f"{k}={v}")],
        command,
    )  # fmt: skip
    try:
        yield term
    finally:
        subprocess.run(["tmux", "-L", term.socket, "kill-server"], capture_output=True)


def _status(screen: str) -> str:
    """The desktop's status line (agent, state, time in state), upper-cased."""
    return screen.splitlines()[0].upper() if screen.strip() else ""


def test_demo_in_a_real_terminal_from_login_to_ready_again(terminal: Terminal) -> None:
    screen = terminal.wait_for("the login screen", lambda s: "1001" in s and "log in" in s)
    assert len(screen.splitlines()) <= 24
    terminal.keys("Enter")
    terminal.wait_for("logged in, Not Ready", lambda s: "NOT READY" in _status(s))
    terminal.keys("r")
    offer = terminal.wait_for("an offered call", lambda s: "Incoming call" in s)
    assert "RESERVED" in _status(offer)
    assert "Caller" in offer
    assert "Number" in offer
    assert "客户服务" in offer  # the demo queue's script, beside the card
    terminal.keys("a")
    talking = terminal.wait_for("the call connected", lambda s: "TALKING" in _status(s))
    assert "我是客服王伟" in talking  # the greeting, with the agent's name
    terminal.keys("Enter")
    question = terminal.wait_for("the script's question", lambda s: "有什么可以帮您" in s)
    assert "请不要再给我打电话" in question  # its choices, numbered
    terminal.keys("4")  # "do not call me again": the script ends
    terminal.wait_for("the script's end", lambda s: "再见" in s)
    assert "q Quit" in terminal.screen()  # the footer fits in 80 columns
    terminal.keys("h")
    terminal.wait_for("wrap-up", lambda s: "WRAP" in _status(s))
    terminal.keys("1")
    terminal.wait_for(
        "Ready or a new offer",
        lambda s: any(f"{state} " in _status(s) for state in ("│  READY", "RESERVED")),
    )
    terminal.keys("q")
