"""The wallboard's driver in a browser session of ``cti supervisor --web``.

textual-serve runs one wallboard process per browser and talks to it over its stdin and
stdout. Textual's own :class:`WebDriver` carries on when that server goes (its input
just ends, its writes fail), so a session could outlive its browser and its server.
:class:`SessionDriver` ends the session instead: when its input ends, a write to the
server fails, or a SIGTERM/SIGINT comes, the app is asked to exit, and if it has not
within :data:`EXIT_GRACE_S` the process ends all the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading

from textual import messages
from textual.drivers.web_driver import WebDriver

#: How long the app has to exit by itself once its server is gone or it was told to.
EXIT_GRACE_S = 5.0
#: The exit status of a session ended because it did not exit in time.
FORCED_EXIT_STATUS = 3


class SessionDriver(WebDriver):
    """:class:`WebDriver` that ends the process with its server (see the module)."""

    _leaving = False

    def start_application_mode(self) -> None:
        super().start_application_mode()
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._loop.add_signal_handler(signum, self.leave)

    def run_input_thread(self) -> None:
        super().run_input_thread()
        if not self.exit_event.is_set():  # the input ended: the server is gone
            self.leave()

    def write(self, data: str) -> None:
        try:
            super().write(data)
        except OSError:  # the server no longer reads (a broken or closed pipe)
            self.leave()

    def write_meta(self, data: dict[str, object]) -> None:
        try:
            super().write_meta(data)
        except OSError:
            self.leave()

    def leave(self) -> None:
        """Ask the app to exit; end the process if it has not within the grace time.

        Safe from any thread and more than once."""
        if self._leaving:
            return
        self._leaving = True
        timer = threading.Timer(EXIT_GRACE_S, os._exit, (FORCED_EXIT_STATUS,))
        timer.daemon = True
        timer.start()
        loop = self._loop
        if not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                asyncio.run_coroutine_threadsafe(
                    self._app._post_message(messages.ExitApp()),
                    loop,
                )
