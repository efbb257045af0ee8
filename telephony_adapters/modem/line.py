"""A serial voice modem as a telephony line: the asyncio shell around
:class:`~telephony_adapters.modem.session.ModemSession`.

The shell only moves bytes and time: it opens the port (pyserial-asyncio-fast), hands
the session every chunk it reads with ``loop.time()``, writes the commands the session
returns, wakes the session at its deadline, and opens the port again after the
session's backoff when the device goes away or the session asks for a restart. Every
decision (start-up and its fallbacks, caller ID, ring counting, ring stop, timeouts,
probes, backoff) is the session's. One :class:`ModemLine` per port; several run side
by side, each in its own task.

Call ids come from :func:`~telephony_adapters.call_ids.boot_call_ids` (unique across
restarts of the engine, whose journal and call records remember the old ones).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence

import serial  # type: ignore[import-untyped]  # pyserial ships no type hints
import serial_asyncio_fast

from cti import log_limits
from cti.errors import TelephonyError
from cti.protocol import CallArrived, CallerHungUp
from telephony_adapters.base import (
    DialEnd,
    DialOutcome,
    LineCapabilities,
    LineEvent,
    TelephonyAdapter,
)
from telephony_adapters.call_ids import boot_call_ids
from telephony_adapters.changes import Changes
from telephony_adapters.modem.call import CallState, ModemResult, Send
from telephony_adapters.modem.session import (
    PROBE_INTERVAL,
    LinkState,
    ModemSession,
    Notice,
    Restart,
    SessionOutput,
)

log = logging.getLogger(__name__)

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
#: How long closing the port may take before the line goes on without waiting.
_CLOSE_WAIT_S = 5.0
#: A dial's final modem outcome as the line contract's :class:`DialEnd`. ``dialled`` is
#: the OK to ``ATDT...;``: the modem cannot tell who picked up; the agent's handset hears.
_DIAL_ENDS = {
    "connected": DialEnd.ANSWERED,
    "dialled": DialEnd.ANSWERED,
    "busy": DialEnd.BUSY,
    "no_answer": DialEnd.NO_ANSWER,
    "no_carrier": DialEnd.NO_ANSWER,
    "timeout": DialEnd.NO_ANSWER,
    "no_dialtone": DialEnd.FAILED,
    "error": DialEnd.FAILED,
}
#: Dial outcomes kept for :meth:`ModemLine.dial_outcome`.
_DIALS_KEPT = 100


class ModemLine(TelephonyAdapter):
    """One voice modem on one analogue line. See the module docstring.

    ``ready`` is set while the modem is started up and taking calls; ``outcomes`` keeps
    the last outcomes of our requests (answer, dial) for whoever wants to look.
    """

    def __init__(
        self,
        name: str,
        port: str,
        *,
        baud: int = 115200,
        dnis: str = "",
        init: Sequence[str] = (),
        ring_timeout_s: float = 8.0,
        answer_timeout_s: float = 10.0,
        dial_timeout_s: float = 60.0,
        probe_interval_s: float = PROBE_INTERVAL,
        settle_s: float = 1.0,
        reply_timeout_s: float = 3.0,
        backoff_min_s: float = 0.5,
        backoff_max_s: float = 30.0,
        call_ids: Iterator[str] | None = None,
    ) -> None:
        self.name = name
        self.port = port
        self.baud = baud
        self.capabilities = LineCapabilities(can_dial=True, reports_dial_outcomes=True)
        self.session = ModemSession(
            name,
            dnis=dnis,
            init=init,
            ring_timeout=ring_timeout_s,
            answer_timeout=answer_timeout_s,
            dial_timeout=dial_timeout_s,
            settle=settle_s,
            reply_timeout=reply_timeout_s,
            tries=3,
            probe_interval=probe_interval_s,
            backoff_min=backoff_min_s,
            backoff_max=backoff_max_s,
            call_ids=call_ids if call_ids is not None else boot_call_ids(name),
        )
        self.ready = asyncio.Event()
        self.outcomes: deque[ModemResult] = deque(maxlen=100)
        self.connections = 0
        """How many times the port has been opened (reconnects show here)."""
        self._events: asyncio.Queue[LineEvent] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._transport: asyncio.Transport | None = None
        self._lost: asyncio.Future[object] | None = None
        self._closed: asyncio.Event | None = None
        self._dials: dict[str, DialOutcome | None] = {}
        """Our dials: None while under way, then how each ended (the last 100)."""
        self._changes = Changes()

    @property
    def status(self) -> str:
        """``down``, ``starting`` or ``ready``."""
        return self.session.state.value

    # --- the adapter contract --------------------------------------------------------

    async def start(self) -> None:
        """Start opening the port in the background (a modem that is not there yet does
        not hold up the engine: the line keeps trying with backoff)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"modem:{self.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        if self._transport is not None and self.session.call.state in (
            CallState.ANSWERING,
            CallState.DIALLING,
            CallState.TALKING,
        ):
            self._write(Send("ATH"))  # leave the line on hook
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def events(self) -> AsyncIterator[LineEvent]:
        while True:
            yield await self._events.get()

    async def answer(self, call_id: str) -> None:
        self._apply(self.session.answer(call_id, self._now()))

    async def hang_up(self, call_id: str) -> None:
        self._apply(self.session.hang_up(call_id, self._now()))

    async def dial(self, number: str, *, call_id: str | None = None) -> str:
        """Dial ``ATDT<number>;`` for the agent's handset and return at once; a failed
        dial (busy, no answer, no dial tone, timeout) ends with ``CallerHungUp``."""
        self._apply(self.session.dial(number, self._now(), call_id=call_id))
        placed = self.session.call.call_id
        assert placed is not None
        if placed not in self._dials:
            self._dials[placed] = None
            while len(self._dials) > _DIALS_KEPT:
                del self._dials[next(iter(self._dials))]
        return placed

    async def dial_outcome(self, call_id: str) -> DialOutcome:
        """Wait for the modem's final word on our dial: ``VCON`` (or the ``OK`` of
        ``ATDT...;``) is answered, ``BUSY`` busy, ``NO ANSWER`` / ``NO CARRIER`` / no
        outcome within ``dial_timeout_s`` no answer, ``NO DIALTONE`` / ``ERROR`` failed;
        the device going away mid-dial is failed too."""
        if call_id not in self._dials:
            raise TelephonyError(f"line {self.name!r} did not dial {call_id!r} (or long ago)")
        while (outcome := self._dials.get(call_id)) is None:
            if call_id not in self._dials:
                raise TelephonyError(f"line {self.name!r}: dial {call_id!r} was forgotten")
            await self._changes.next()
        return outcome

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` holds (checked after every output of the session;
        see :meth:`~telephony_adapters.changes.Changes.until`)."""
        await self._changes.until(predicate)

    # --- the shell -------------------------------------------------------------------

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    transport, _ = await serial_asyncio_fast.create_serial_connection(
                        loop, lambda: _PortProtocol(self), self.port, baudrate=self.baud
                    )
                except (serial.SerialException, OSError, ValueError) as exc:
                    reason = str(exc) if self.port in str(exc) else f"{self.port}: {exc}"
                    self._apply(self.session.open_failed(reason))
                    await asyncio.sleep(self.session.reconnect_delay())
                    continue
                self.connections += 1
                reason = await self._serve(transport)
                self._apply(self.session.disconnected(loop.time(), reason))
                await asyncio.sleep(self.session.reconnect_delay())
        finally:
            if self._transport is not None:
                await self._close()
            self.ready.clear()

    async def _serve(self, transport: asyncio.Transport) -> str:
        """Run the session on an open port until it is lost; returns why."""
        loop = asyncio.get_running_loop()
        self._transport = transport
        lost: asyncio.Future[object] = loop.create_future()
        self._lost = lost
        self._closed = asyncio.Event()
        log.info("line %s: opened %s at %d baud", self.name, self.port, self.baud)
        self._apply(self.session.connected(loop.time()))
        while not lost.done():
            deadline = self.session.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            self._wake.clear()
            waker: asyncio.Future[object] = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait(
                    [lost, waker], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                waker.cancel()
            if not lost.done():
                self._apply(self.session.tick(loop.time()))
        await self._close()
        return str(lost.result())

    async def _close(self) -> None:
        transport, self._transport = self._transport, None
        closed = self._closed
        if transport is None:
            return
        if not transport.is_closing():  # closing already when the device went away
            transport.abort()  # no drain: a wedged device must not hold the line up
        if closed is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_CLOSE_WAIT_S):
                    await closed.wait()

    def _received(self, data: bytes) -> None:
        self._apply(self.session.received(data, self._now()))

    def _connection_lost(self, exc: Exception | None) -> None:
        if self._closed is not None:
            self._closed.set()
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(str(exc) if exc else "the port was closed")
        self._wake.set()

    def _apply(self, outputs: list[SessionOutput]) -> None:
        for output in outputs:
            if isinstance(output, Send):
                self._write(output)
            elif isinstance(output, CallArrived | CallerHungUp):
                log.info("line %s: %s", self.name, output)
                if isinstance(output, CallerHungUp):
                    self._dial_ended(output.call_id, DialEnd.FAILED, "the line went away")
                self._events.put_nowait(output)
            elif isinstance(output, ModemResult):
                log.info(
                    "line %s: %s of %s: %s (%s)",
                    self.name,
                    output.request,
                    output.call_id,
                    output.outcome,
                    output.result or "no reply",
                )
                self.outcomes.append(output)
                if output.request == "dial" and output.final:
                    end = _DIAL_ENDS.get(output.outcome, DialEnd.FAILED)
                    self._dial_ended(output.call_id, end, output.result or output.outcome)
            elif isinstance(output, Restart):
                log.warning("line %s: restarting the modem: %s", self.name, output.reason)
                if self._lost is not None and not self._lost.done():
                    self._lost.set_result(output.reason)
            elif isinstance(output, Notice):
                log.log(_LEVELS.get(output.level, logging.INFO), "%s", output.text)
        if self.session.state is LinkState.READY:
            self.ready.set()
        else:
            self.ready.clear()
        self._wake.set()
        self._changes.notify()

    def _dial_ended(self, call_id: str, end: DialEnd, detail: str) -> None:
        """Note how our dial ``call_id`` ended (the first word counts) and wake waiters."""
        if call_id in self._dials and self._dials[call_id] is None:
            self._dials[call_id] = DialOutcome(call_id, end, detail)
            self._changes.notify()

    def _write(self, send: Send) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            log.debug("line %s: port closed, %s not sent", self.name, send.command)
            return
        log.debug("line %s: -> %s", self.name, send.command)
        transport.write(send.command.encode("ascii", "replace") + b"\r")


class _PortProtocol(asyncio.Protocol):
    def __init__(self, line: ModemLine) -> None:
        self._line = line

    def data_received(self, data: bytes) -> None:
        try:
            self._line._received(data)
        except Exception:  # the session never raises on input; keep the line if it did
            log_limits.exception(log, "line %s: input %r not handled", self._line.name, data[:80])

    def connection_lost(self, exc: Exception | None) -> None:
        self._line._connection_lost(exc)
