"""The demo ends once its desk has closed, whatever hangs in its stop: the hang is
logged with every thread's stack (for the next person) and the process exits."""

from __future__ import annotations

import subprocess
import sys

PROGRAM = """
import logging, threading
from cti.app.demo import ends_within
logging.basicConfig()
ends_within(0.5)
threading.Event().wait()  # a stop that never ends (a thread the interpreter waits for)
"""


def test_a_stop_that_hangs_is_logged_with_its_stacks_and_the_process_ends() -> None:
    done = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0
    assert "did not stop within 0.5 s of its desk closing" in done.stderr
    assert "Thread 0x" in done.stderr  # faulthandler's stacks
    assert "threading.py" in done.stderr
