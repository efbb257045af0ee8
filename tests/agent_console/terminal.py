"""``cti demo`` in a real terminal: tmux on a private socket at 80x24, driven by keys and
read off the screen (``capture-pane``), as a person would check it by hand.

:func:`demo_terminal` starts the demo with a test's configuration and kills tmux after
the ``with`` block, however it ends; the pane stays after the program exits, so a test
can read how it ended (:meth:`Terminal.exit_status`).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import sys
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
    command = f"{CTI} demo --config {config_file} --db {tmp_path / 'demo.db'}"
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
