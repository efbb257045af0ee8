"""The emulator on a pty: the device a modem line opens, with a timer driving the core,
and :meth:`PtyModem.vanish` / :meth:`PtyModem.open` to pull it out and plug it back in."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tty
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from cti.errors import SimulationError
from simulators.modem_emulator.core import ModemEmulator, Note
from simulators.modem_emulator.script import CallSpec, Script

log = logging.getLogger(__name__)


class PtyModem:
    """The emulator on a pty. ``link``: a symlink made to the pty's slave (replaced
    atomically whenever the device is plugged in again). ``stamp``: gives ``MMDDHHMM``
    for caller ID (the shell's clock; tests pass a fixed one)."""

    def __init__(
        self,
        core: ModemEmulator,
        link: str | Path | None = None,
        *,
        on_note: Callable[[Note], None] | None = None,
        stamp: Callable[[], str] | None = None,
    ) -> None:
        self.core = core
        self.link = Path(link) if link is not None else None
        self.on_note = on_note
        self.stamp = stamp or _wall_stamp
        self.notes: list[Note] = []
        self.path = ""
        self._master: int | None = None
        self._slave: int | None = None
        self._changed = asyncio.Condition()
        self._timer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._notifying: set[asyncio.Task[None]] = set()
        """Notifications under way (held: the loop keeps only weak references to tasks)."""

    @property
    def plugged_in(self) -> bool:
        return self._master is not None

    async def open(self) -> str:
        """Plug the device in: a new pty (and the link pointing at it). Returns its path."""
        if self._master is not None:
            return self.path
        master, slave = os.openpty()
        try:
            tty.setraw(slave)  # no echo, no line discipline until the line sets its own
            os.set_blocking(master, False)
            path = os.ttyname(slave)
            if self.link is not None:
                self._link_to(path)
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        self._master, self._slave = master, slave
        self.path = path
        loop = asyncio.get_running_loop()
        loop.add_reader(master, self._readable)
        if self._timer is None:
            self._timer = asyncio.create_task(self._run_timer(), name="modem-emulator:timer")
        return self.path

    def _link_to(self, path: str) -> None:
        """Point :attr:`link` at ``path`` atomically (a new symlink renamed over it)."""
        assert self.link is not None
        tmp = self.link.with_name(f".{self.link.name}.{os.getpid()}.tmp")
        try:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(path)
            tmp.replace(self.link)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise SimulationError(
                f"cannot link the modem's pty at {self.link}: {exc.strerror or exc}"
            ) from None

    def vanish(self) -> None:
        """Pull the device out: the pty goes away (the line reading it gets an error)."""
        master, slave = self._master, self._slave
        self._master = self._slave = None
        if master is not None:
            asyncio.get_running_loop().remove_reader(master)
            os.close(master)
        if slave is not None:
            os.close(slave)
        if self.core.call is not None:
            self._apply(self.core.caller_hangs_up(asyncio.get_running_loop().time()))

    async def close(self) -> None:
        """Stop: the device goes away, the timer stops, the link is removed."""
        self.vanish()
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
        if self.link is not None and self.link.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()

    # --- driving ---------------------------------------------------------------------

    def ring(self, spec: CallSpec) -> None:
        self._apply(self.core.ring(spec, self._now(), stamp=self.stamp()))

    def caller_hangs_up(self) -> None:
        self._apply(self.core.caller_hangs_up(self._now()))

    def send(self, data: bytes) -> None:
        """Raw bytes to the line (garbage, odd transcripts)."""
        self._apply(self.core.send_noise(data))

    def run_script(self, script: Script) -> None:
        self.core.schedule(script, self._now(), stamp=self.stamp())
        self._wake.set()

    async def wait_for(self, what: str, *, after: int = 0) -> Note:
        """The first note of kind ``what`` from index ``after`` of :attr:`notes` on,
        waiting for it (the caller bounds the wait, as a safety net)."""
        async with self._changed:
            while True:
                for note in self.notes[after:]:
                    if note.what == what:
                        return note
                await self._changed.wait()

    # --- internals -------------------------------------------------------------------

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _readable(self) -> None:
        master = self._master
        if master is None:
            return
        try:
            data = os.read(master, 4096)
        except BlockingIOError:
            return
        except OSError as exc:  # the slave side went away entirely
            log.debug("modem emulator: read failed: %s", exc)
            return
        self._apply(self.core.received(data, self._now()))

    def _apply(self, outputs: list[bytes | Note]) -> None:
        for output in outputs:
            if isinstance(output, Note):
                self.notes.append(output)
                if self.on_note is not None:
                    self.on_note(output)
            else:
                self._write(output)
        self._wake.set()
        task = asyncio.get_running_loop().create_task(self._notify())
        self._notifying.add(task)
        task.add_done_callback(self._notifying.discard)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _write(self, data: bytes) -> None:
        master = self._master
        if master is None:
            return  # unplugged: nobody hears it
        view = memoryview(data)
        while view:
            try:
                n = os.write(master, view)
            except BlockingIOError:
                log.warning("modem emulator: the line is not reading; %d bytes dropped", len(view))
                return
            except OSError as exc:
                log.debug("modem emulator: write failed: %s", exc)
                return
            view = view[n:]

    async def _run_timer(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            deadline = self.core.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            self._apply_tick(loop.time())

    def _apply_tick(self, now: float) -> None:
        outputs = self.core.tick(now)
        if outputs:
            self._apply(outputs)


def _wall_stamp() -> str:
    return datetime.now().strftime("%m%d%H%M")
