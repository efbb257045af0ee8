"""``cti demo`` in a real terminal: tmux at 80x24, driven by keys, read off the screen.

This is the check a person makes by hand: the program starts in a terminal of the
smallest supported size, shows the login, takes keys, offers a call with the
customer's card and the demo's call script, and goes through answer, the script (to
its end), hang-up and disposition back to Ready.
tmux runs on a private socket and is killed by the test (tests/agent_console/terminal.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent_console.terminal import Terminal, demo_terminal, footer, status

pytestmark = pytest.mark.console

#: One caller every few seconds and no bots: every call comes to the human agent.
CONFIG = """
[demo]
bots = 0
rate_per_hour = 1800.0
mean_handle_s = 600.0
mean_patience_s = 600.0
customers = 200
"""


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    with demo_terminal(tmp_path, CONFIG) as term:
        yield term


def test_demo_in_a_real_terminal_from_login_to_ready_again(terminal: Terminal) -> None:
    screen = terminal.wait_for("the login screen", lambda s: "1001" in s and "log in" in s)
    assert len(screen.splitlines()) <= 24
    terminal.keys("Enter")
    terminal.wait_for("logged in, Not Ready", lambda s: "NOT READY" in status(s))
    terminal.keys("r")
    offer = terminal.wait_for("an offered call", lambda s: "Incoming call" in s)
    assert "RESERVED" in status(offer)
    assert "Caller" in offer
    assert "Number" in offer
    assert "客户服务" in offer  # the demo queue's script, beside the card
    terminal.keys("a")
    talking = terminal.wait_for("the call connected", lambda s: "TALKING" in status(s))
    assert "我是客服王伟" in talking  # the greeting, with the agent's name
    terminal.keys("Enter")
    question = terminal.wait_for("the script's question", lambda s: "有什么可以帮您" in s)
    assert "请不要再给我打电话" in question  # its choices, numbered
    terminal.keys("4")  # "do not call me again": the script ends
    terminal.wait_for("the script's end", lambda s: "再见" in s)
    # At 80 columns the footer keeps the call's keys and says where the rest are.
    keys = footer(terminal.screen())
    assert "h Hang up" in keys
    assert keys.rstrip().endswith("^p more keys")
    terminal.keys("h")
    terminal.wait_for("wrap-up", lambda s: "WRAP" in status(s))
    terminal.keys("1")
    terminal.wait_for(
        "Ready or a new offer",
        lambda s: any(f"{state} " in status(s) for state in ("│  READY", "RESERVED")),
    )
    terminal.keys("q")
