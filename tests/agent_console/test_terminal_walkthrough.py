"""One agent's hour at 80x24 in a real terminal (issue 21): an inbound call answered,
the caller identified during it, the call transferred, a number dialled, and quitting;
what the agent reads on the screen is checked at each step.

``cti demo`` runs in tmux (tests/agent_console/terminal.py) with no bots and no new
arrivals: of the two callers the demo starts with, the first waits in ``general`` for
agent 1001 and the second is sent on to ``billing`` (general's max_length exit), which
nobody serves: the transfer's target, where calls stay. So the desk is Ready with nothing
offered once the transfer is wrapped up, and the dial is the agent's own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent_console.terminal import (
    Terminal,
    box_lines,
    box_rows,
    column_of,
    demo_terminal,
    footer,
    region,
    status,
)

pytestmark = pytest.mark.console

#: The numbers an agent dials from general: a short script of their own.
OUTBOUND_SCRIPT = """
[script]
name = "回访"
version = "1.0"
language = "zh"
direction = "outbound"
start = "hello"

[nodes.hello]
kind = "end"
text = "您好，{customer.name}，我是{agent.name}，给您回个电话。"
"""

#: Every caller a known customer (a name on the card); timers far beyond the test.
CONFIG = """
[demo]
bots = 0
rate_per_hour = 0.0
mean_patience_s = 0.0
customers = 200
unknown_share = 0.0
private_share = 0.0
malformed_share = 0.0

[[queues]]
name = "general"
offer_timeout_s = 300.0
wrap_up_s = 600.0
outbound_script = "{outbound}"
exits.max_length = {{ calls = 1, action = "queue", queue = "billing" }}

[[queues]]
name = "billing"

[[agents]]
id = "1001"
name = "王伟"
queues = {{ general = 0 }}
"""


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    outbound = tmp_path / "outbound.toml"
    outbound.write_text(OUTBOUND_SCRIPT, encoding="utf-8")
    with demo_terminal(tmp_path, CONFIG.format(outbound=outbound)) as term:
        yield term


def _squeezed(text: str) -> str:
    """``text`` without whitespace (a line may wrap anywhere)."""
    return "".join(text.split())


def _script(screen: str, title: str) -> str:
    """The script panel's text (titled ``Script · {title}``), squeezed."""
    return _squeezed("".join(box_lines(screen, f"Script · {title}")))


def _sides(screen: str) -> list[str]:
    """The screen, and each side of the script panel (when shown) as one text."""
    for line in screen.splitlines():
        found = re.search(r"[╭╔][─═] Script · ", line)
        if found is not None:
            at = column_of(line, found.start())
            return [screen, region(screen, 0, at), region(screen, at)]
    return [screen]


def _shows(screen: str, *texts: str) -> None:
    """Each of ``texts`` is on ``screen``, maybe wrapped beside the script panel."""
    sides = [_squeezed(side) for side in _sides(screen)]
    missing = [t for t in texts if not any(_squeezed(t) in side for side in sides)]
    assert not missing, f"{missing} not on the screen:\n{screen}"


def _found(screen: str) -> list[tuple[str, str]]:
    """The search's results: (name, first number) of each row."""
    rows = screen.split(" found", 1)[1].split("╭─", 1)[0]
    return [
        (name, numbers.split(",")[0])
        for name, numbers in re.findall(r"▊ (\S.*?)\s{2,}\S+\s{2,}(\S.*?)\s*▎", rows)
    ]


def test_an_agent_at_80x24_inbound_identify_transfer_dial_quit(terminal: Terminal) -> None:
    # 1. Log in, Ready: the first caller is offered with a card that reads whole.
    login = terminal.wait_for("the login", lambda s: "agent login" in s and "1001" in s)
    _shows(login, "Enter to log in.")
    terminal.keys("Enter")
    # The footer's keys come a frame after the status bar (a loaded CI caught the bar
    # alone): waited for like every later step's keys.
    terminal.wait_for(
        "logged in, Not Ready, a caller in each queue, the Ready key",  # billing's: general's exit
        lambda s: (
            "NOT READY" in status(s)
            and "general 1 waiting" in s
            and "billing 1" in s
            and "r Ready" in footer(s)
        ),
    )
    terminal.keys("r")
    offer = terminal.wait_for(
        "the offer and its keys",
        lambda s: "Incoming call" in s and "a Answer  x Reject" in footer(s),
    )
    assert "RESERVED" in status(offer)
    _shows(offer, "a: answer  x: reject")
    card = box_rows(offer, "Caller")
    caller = card["Name"]
    number = card["Number"]
    assert caller
    assert caller != "New caller"
    assert re.search(r"\(\+\d{7,}\)", number), number  # as dialled and in E.164
    assert re.fullmatch(r"general · waited \d\d:\d\d", card["Queue"]), card
    # Why this priority, whole at 80 columns: the rank's sum with every term.
    assert re.fullmatch(
        r"rank \d+ = queue 0 \+ value \d+ x 1 \+ waited \d+s x 1", card["Priority"]
    ), card
    assert f"问是{_squeezed(caller)}吗" in _script(offer, "客户服务")  # greets by name

    terminal.keys("a")
    talking = terminal.wait_for(
        "talking and its keys", lambda s: "TALKING" in status(s) and "h Hang up" in footer(s)
    )
    assert box_rows(talking, "Caller")["Name"] == caller
    keys = footer(talking)
    assert "w Transfer" in keys
    assert keys.rstrip().endswith("^p more keys")  # the rest (c, f, i...) in the palette

    # 2. The caller says who they are: find them, attach; card and script follow.
    terminal.keys("f")
    terminal.wait_for("the search", lambda s: "#id or e-mail" in s and "esc Back" in s)
    terminal.wait_focus("the search field", lambda f: "#id or e-mail" in f)
    terminal.text("王")
    terminal.keys("Enter")
    results = terminal.wait_for("the results", lambda s: " found" in s and "▊ 王" in s)
    found = _found(results)
    pick = next(i for i, (name, _) in enumerate(found) if name != caller)
    chosen, chosen_number = found[pick]
    terminal.wait_focus("the results", lambda f: found[0][0] in f)
    terminal.keys(*["Down"] * pick, "Enter")
    details = terminal.wait_for(
        "the customer's details, attach",
        lambda s: f"─ {chosen} ─" in s and "a Is the caller" in footer(s),
    )
    assert box_rows(details, chosen)["Name"].startswith(f"{chosen}  (#")
    terminal.keys("a")
    terminal.wait_for("the caller attached", lambda s: f"The caller is {chosen}." in s)
    terminal.keys("Escape")
    # The focus back on the script (its double border) before the next dialog: one
    # opened sooner loses its field's focus (open_dialog refocuses whatever screen is on top).
    identified = terminal.wait_for(
        "the card of the customer chosen, the script focused",
        lambda s: (
            "TALKING" in status(s)
            and box_rows(s, "Caller")["Name"] == chosen
            and "╔═ Script · " in s
        ),
    )
    assert box_rows(identified, "Caller")["Number"] == number  # the line's number stays
    script = _script(identified, "客户服务")
    assert f"问是{chosen}吗" in script  # the running script reads the new customer
    assert _squeezed(caller) not in script

    # 3. Blind transfer to billing: the call leaves; wrap-up, a disposition, Ready.
    terminal.keys("w")
    prompt = terminal.wait_for("the transfer prompt", lambda s: "Transfer to (blind)" in s)
    dialog = "".join(box_lines(prompt, "Transfer to (blind)"))
    assert "billing" in dialog, prompt  # the queues it can go to, named
    assert "general" in dialog, prompt
    terminal.wait_focus("the transfer target", lambda f: "│ ▊" in f)
    terminal.text("billing")
    terminal.keys("Enter")
    wrap_up = terminal.wait_for(
        "wrap-up, the call in billing",
        lambda s: (
            "WRAP UP" in status(s) and "billing 2 waiting" in s and "1-9 Disposition" in footer(s)
        ),
    )
    # The call left before its script's end: the disposition is all wrap-up needs.
    _shows(wrap_up, "auto-ready in", "1 resolved", "The call ended before its script")
    terminal.keys("1")
    ready = terminal.wait_for(
        "Ready, nothing waiting in general",
        lambda s: "│  READY" in status(s) and "general 0 waiting" in s and "d Dial" in footer(s),
    )
    _shows(ready, "Ready. Waiting for a call.")

    # 4. Not ready (break), then dial the customer: the outbound card and script, the
    # quit question on the way, hang up, wrap-up, back to Not Ready.
    terminal.keys("n")
    terminal.wait_for("the reasons", lambda s: "Not ready: why?" in s and "1 break" in s)
    terminal.wait_focus("the reasons", lambda f: "1 break" in f)
    terminal.keys("1")
    shown = terminal.wait_for("Not Ready (break)", lambda s: "NOT READY (BREAK)" in status(s))
    # Once the desk has drawn again (its clock), the closed dialog's focus is restored.
    terminal.wait_for("the desk's next second", lambda s: status(s) != status(shown))
    terminal.keys("d")
    e164 = re.search(r"\((\+\d+)\)", number)
    assert e164 is not None
    dial = terminal.wait_for("the dial prompt", lambda s: "─ Dial ─" in s and e164[1] in s)
    _shows(dial, "Enter: dial")  # filled with the last card's number
    terminal.wait_focus("the number to dial", lambda f: e164[1] in f)
    terminal.keys("C-u")
    terminal.wait_for("the number cleared", lambda s: "─ Dial ─" in s and e164[1] not in s)
    terminal.text(chosen_number)
    terminal.wait_for("the number typed", lambda s: f"▊  {chosen_number} " in s)
    terminal.keys("Enter")
    # The demo's line answers at once: dialling and ringing pass too fast to be read.
    dialled = terminal.wait_for(
        "the dialled call answered", lambda s: "TALKING" in status(s) and "Dialled" in s
    )
    card = box_rows(dialled, "Caller")
    assert card["Name"] == chosen
    assert card["Number"].startswith(chosen_number)
    assert re.fullmatch(r"\d\d:\d\d · queue general", card["Dialled"]), card
    assert "Queue" not in card  # no wait, no rank: the agent called
    assert "Priority" not in card
    _shows(dialled, "not ready after this call")
    assert f"您好，{chosen}，我是王伟" in _script(dialled, "回访")  # the outbound script
    assert "客户服务" not in dialled  # never the inbound one

    terminal.keys("q")
    asked = terminal.wait_for("the quit question", lambda s: "Quit with a call in hand?" in s)
    _shows(asked, "You are on a call.", "Stay (Esc)", "Log out and quit")
    terminal.keys("Escape")
    stayed = terminal.wait_for("the dialog gone", lambda s: "Quit with a call" not in s)
    assert "TALKING" in status(stayed)
    assert box_rows(stayed, "Caller")["Name"] == chosen
    assert terminal.exit_status() is None

    terminal.keys("h")
    after = terminal.wait_for("wrap-up of the dial", lambda s: "WRAP UP" in status(s))
    _shows(after, f"Wrap-up · {chosen} · auto-not ready in")
    terminal.keys("1")
    terminal.wait_for("back to Not Ready", lambda s: "NOT READY (BREAK)" in status(s))

    # 5. Idle: q logs out and quits at once: the desk leaves the screen. Its exit status
    # is checked only when tmux has one: in a fresh clone tmux 3.3a shows the pane dead
    # with no #{pane_dead_status} (the process gone; session 5's note).
    terminal.keys("q")
    terminal.wait_for("the desk closed", lambda s: "NOT READY" not in status(s))
    ended = terminal.exit_status()
    assert ended in (None, 0)
