"""``cti demo`` in a real terminal: tmux on a private socket at 80x24, driven by keys and
read off the screen (``capture-pane``), as a person would check it by hand.

:func:`demo_terminal` starts the demo with a test's configuration and kills tmux after
the ``with`` block, however it ends; the pane stays after the program exits, so a test
can read how it ended (:meth:`Terminal.exit_status`). :func:`box_lines` and
:func:`box_rows` read one bordered box of the screen (a card, the script) by its
title, counting a wide (CJK) character as the two columns it takes.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import subprocess
import sys
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness import until_blocking

CTI = Path(sys.executable).with_name("cti")
#: The smallest terminal the desk supports.
COLUMNS, LINES = 80, 24
#: A limit for each wait on a loaded 2-core machine: a safety net, never a measurement.
WAIT_S = 60.0
_sockets = itertools.count()
#: The left edge of the focused field or list (Textual's default theme in 256 colours,
#: which the pane is pinned to): reversed, in the accent colour.
FOCUSED_EDGE = "\x1b[7m\x1b[38;5;32m▊"
_ESCAPES = re.compile(r"\x1b\[[0-9;]*m")


class Terminal:
    """The demo's tmux pane: keys in, the screen out."""

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
        """Send tmux key names (``Enter``, ``Escape``, ``C-u``) or words."""
        self.tmux("send-keys", "-t", "demo", *keys)

    def text(self, text: str) -> None:
        """Type ``text`` literally (no key names)."""
        self.tmux("send-keys", "-t", "demo", "-l", text)

    def focused(self) -> str:
        """The lines holding the focused field or list (its left edge is drawn in the
        focus colour), as plain text: a key typed is for it only once it shows here."""
        lines = self.tmux("capture-pane", "-p", "-e", "-t", "demo").splitlines()
        return "\n".join(_ESCAPES.sub("", line) for line in lines if FOCUSED_EDGE in line)

    def wait_focus(self, what: str, test: Callable[[str], bool]) -> None:
        """Wait until the focused field (:meth:`focused`) is the one ``test`` accepts:
        a dialog is drawn before its field takes the focus, and keys sent in between go
        to the desk behind it."""
        focused = ""

        def shown() -> bool:
            nonlocal focused
            focused = self.focused()
            return test(focused)

        try:
            until_blocking(shown, WAIT_S, every_s=0.2, what=f"{what} focused")
        except AssertionError as failed:
            raise AssertionError(
                f"{failed}; focused:\n{focused}\nthe screen:\n{self.screen()}"
            ) from None

    def exit_status(self) -> int | None:
        """The program's exit status once it has ended, ``None`` while it runs."""
        dead, status = self.tmux(
            "display-message", "-p", "-t", "demo", "#{pane_dead} #{pane_dead_status}"
        ).split(" ", 1)
        return int(status) if dead == "1" and status.strip() else None

    def wait_for(self, what: str, test: Callable[[str], bool], limit_s: float = WAIT_S) -> str:
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


@contextlib.contextmanager
def demo_terminal(tmp_path: Path, config: str) -> Iterator[Terminal]:
    """``cti demo`` with ``config`` (TOML text) and its own store under ``tmp_path``, in
    tmux at 80x24; tmux is killed after the block."""
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed: run `make test` (deploy/system-deps.sh installs it)")
    config_file = tmp_path / "demo.toml"
    config_file.write_text(config, encoding="utf-8")
    term = Terminal(f"cti-test-{os.getpid()}-{next(_sockets)}")
    # 256 colours whatever the test's own terminal (FOCUSED_EDGE).
    command = (
        f"env -u NO_COLOR -u COLORTERM {CTI} demo --config {config_file}"
        f" --db {tmp_path / 'demo.db'}"
    )
    env = {"TERM": "xterm-256color", "LANG": "C.UTF-8"}
    try:
        term.tmux(
            "set-option", "-g", "remain-on-exit", "on", ";",  # the exit status stays
            "new-session", "-d", "-s", "demo", "-x", str(COLUMNS), "-y", str(LINES),
            *[a for k, v in env.items() for a in ("-e", f"{k}={v}")],
            command,
        )  # fmt: skip
        yield term
    finally:
        subprocess.run(["tmux", "-L", term.socket, "kill-server"], capture_output=True)


def status(screen: str) -> str:
    """The desktop's status line (agent, state, time in state), upper-cased."""
    return screen.splitlines()[0].upper() if screen.strip() else ""


def footer(screen: str) -> str:
    """The desktop's key line (the screen's last)."""
    lines = screen.rstrip("\n").splitlines()
    return lines[-1] if lines else ""


def _width(char: str) -> int:
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def cells(line: str, first: int, last: int | None = None) -> str:
    """What ``line`` shows in columns ``first`` to ``last`` (excluded)."""
    out: list[str] = []
    column = 0
    for char in line:
        if column >= first and (last is None or column + _width(char) <= last):
            out.append(char)
        column += _width(char)
    return "".join(out)


def column_of(line: str, index: int) -> int:
    """The column where ``line[index]`` is shown."""
    return sum(_width(char) for char in line[:index])


def region(screen: str, first: int, last: int | None = None) -> str:
    """What the screen shows in columns ``first`` to ``last`` (excluded), line by line."""
    return "\n".join(cells(line, first, last) for line in screen.splitlines())


def box_lines(screen: str, title: str) -> list[str]:
    """The lines inside the box whose top border carries ``title`` (``Caller``,
    ``Script · 回访``), without the borders and the padding; fails when there is none."""
    lines = screen.splitlines()
    for top, line in enumerate(lines):
        found = re.search(rf"[╭╔][─═]+ {re.escape(title)}", line)
        if found is None:
            continue
        left = column_of(line, found.start())
        right = left + column_of(re.split("[╮╗]", line[found.start() :])[0], 10**6)
        inside: list[str] = []
        for below in lines[top + 1 :]:
            if cells(below, left, left + 1) in ("╰", "╚"):
                return inside
            inside.append(cells(below, left + 1, right).removeprefix(" ").rstrip())
        return inside
    raise AssertionError(f"no box titled {title!r} on the screen:\n{screen}")


def box_rows(screen: str, title: str) -> dict[str, str]:
    """A card's rows (``Name``, ``Number``, ``Priority``...): label -> value, a value
    wrapped under itself joined with spaces."""
    rows: dict[str, str] = {}
    label = ""
    for line in box_lines(screen, title):
        if line[:1].strip():  # a label at the left: a new row
            label, *value = re.split(r"\s{2,}", line.strip(), maxsplit=1)
            rows[label] = value[0] if value else ""
        elif label and line.strip():
            rows[label] = f"{rows[label]} {line.strip()}".strip()
    return rows
