"""One modem line's whole life, sans-I/O: link up and down, start-up, calls, health.

:class:`ModemSession` joins the parser (:mod:`.parser`), the start-up negotiator and
the call machine (:mod:`.call`) and adds what only a long-running line needs:

* **Link.** :meth:`~ModemSession.connected` when the port opened (the start-up
  begins: ``ATZ``...), :meth:`~ModemSession.disconnected` when it closed or failed:
  a live call ends with ``CallerHungUp`` (announced first if it was not yet), so a
  device that goes away mid-call never loses the call. :meth:`~ModemSession.open_failed`
  when the port would not open.
* **Reconnect with backoff.** :meth:`~ModemSession.reconnect_delay` doubles from
  ``backoff_min`` to ``backoff_max`` with each failure in a row (open failed, start-up
  failed, modem silent) and starts again from ``backoff_min`` once a start-up succeeds.
* **Health.** When the line is idle and the modem has said nothing for
  ``probe_interval`` seconds, the session sends a probe: the caller-ID command that
  worked (so caller ID is armed again after a silent reset of the modem),
  or ``AT``. No result within ``reply_timeout``, ``tries`` times over: the modem has
  stopped answering, and the session asks for a :class:`Restart`.
* During start-up RING and caller ID are not calls yet (the modem is being reset); the
  next RING after the start-up makes the call.

Outputs: :class:`~cti.protocol.CallArrived` / :class:`~cti.protocol.CallerHungUp` for
the engine, :class:`~.call.Send` to write, :class:`~.call.ModemResult` of our requests,
:class:`Restart` (close the port and open it again after the backoff) and
:class:`Notice` (something for the log). Time is always a parameter.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from cti.errors import TelephonyError
from cti.protocol import CallArrived, CallerHungUp
from telephony_adapters.modem.call import (
    ANSWER_TIMEOUT,
    CALLER_ID_COMMANDS,
    DIAL_TIMEOUT,
    RING_TIMEOUT,
    CallState,
    ModemCall,
    ModemResult,
    Send,
    StartupNegotiator,
    StartupState,
)
from telephony_adapters.modem.parser import Garbage, ModemParser

PROBE_INTERVAL = 60.0
"""Seconds of silence on an idle line before the modem is asked whether it is there."""


@dataclass(frozen=True, slots=True)
class Restart:
    """Close the port and open it again after :meth:`ModemSession.reconnect_delay`."""

    reason: str


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the log should say. ``level`` is ``debug``, ``info``, ``warning`` or
    ``error``."""

    level: str
    text: str


SessionOutput = CallArrived | CallerHungUp | Send | ModemResult | Restart | Notice


class LinkState(enum.Enum):
    DOWN = "down"
    STARTING = "starting"
    READY = "ready"


class ModemSession:
    """One line's link, start-up, calls and health. Pure: inputs and ``now`` in,
    outputs back; :meth:`next_deadline` says when to call :meth:`tick`."""

    def __init__(
        self,
        line: str,
        *,
        dnis: str = "",
        init: Sequence[str] = (),
        caller_id_commands: Sequence[str] = CALLER_ID_COMMANDS,
        ring_timeout: float = RING_TIMEOUT,
        answer_timeout: float = ANSWER_TIMEOUT,
        dial_timeout: float = DIAL_TIMEOUT,
        settle: float = 1.0,
        reply_timeout: float = 3.0,
        tries: int = 3,
        probe_interval: float = PROBE_INTERVAL,
        backoff_min: float = 0.5,
        backoff_max: float = 30.0,
        call_ids: Iterator[str] | None = None,
    ) -> None:
        self.line = line
        self.parser = ModemParser()
        self.startup = StartupNegotiator(
            caller_id_commands=caller_id_commands,
            init=init,
            settle=settle,
            reply_timeout=reply_timeout,
            tries=tries,
        )
        self.call = ModemCall(
            line,
            dnis=dnis,
            ring_timeout=ring_timeout,
            answer_timeout=answer_timeout,
            dial_timeout=dial_timeout,
            call_ids=call_ids,
        )
        self.state = LinkState.DOWN
        self.reply_timeout = reply_timeout
        self.tries = tries
        self.probe_interval = probe_interval
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.failures = 0
        """Failures in a row since the last good start-up (sets the backoff)."""
        self.garbage = 0
        """Lines of garbage seen since the process started."""
        self._heard_at = 0.0
        self._probe_sent_at: float | None = None
        self._open_failure = ""
        """Why the port last failed to open ("" once it opened): said once, not per try."""
        self._probe_tries = 0

    # --- link ----------------------------------------------------------------------

    def connected(self, now: float) -> list[SessionOutput]:
        """The port is open: start the modem up."""
        self.parser.reset()
        self._open_failure = ""
        self.state = LinkState.STARTING
        self._heard_at = now
        self._probe_sent_at = None
        return [*self.startup.start(now)]

    def disconnected(self, now: float, reason: str) -> list[SessionOutput]:
        """The port closed or failed. Ends a live call; idempotent."""
        if self.state is LinkState.DOWN:
            return []
        was_ready = self.state is LinkState.READY
        self.state = LinkState.DOWN
        self._probe_sent_at = None
        if not was_ready:
            self.failures += 1
        out: list[SessionOutput] = [Notice("error", f"line {self.line}: modem lost: {reason}")]
        out += self.call.line_lost(now)
        return out

    def open_failed(self, reason: str) -> list[SessionOutput]:
        """The port would not open. Said as an error the first time for each reason;
        the same reason again, try after try through a long outage, only as debug."""
        self.failures += 1
        level = "debug" if reason == self._open_failure else "error"
        self._open_failure = reason
        return [
            Notice(
                level,
                f"line {self.line}: cannot open the modem: {reason};"
                f" trying again in {self.reconnect_delay():g} s",
            )
        ]

    def reconnect_delay(self) -> float:
        """Seconds to wait before opening the port again."""
        steps = max(0, self.failures - 1)
        return float(min(self.backoff_max, self.backoff_min * 2 ** min(steps, 30)))

    # --- input ---------------------------------------------------------------------

    def received(self, data: bytes, now: float) -> list[SessionOutput]:
        """Bytes from the modem, as they came."""
        out: list[SessionOutput] = []
        if self.state is LinkState.DOWN:
            return out
        for event in self.parser.feed(data, now):
            if isinstance(event, Garbage):
                self.garbage += 1  # bytes, but no sign that the modem is well
                continue
            self._heard_at = now
            if self.state is LinkState.STARTING:
                out += self._startup_outputs(self.startup.handle(event), now)
                continue
            self._probe_sent_at = None  # anything sensible answers a probe
            self._probe_tries = 0
            out += self.call.handle(event)
        return out + self.tick(now)

    def tick(self, now: float) -> list[SessionOutput]:
        """Let time pass: start-up steps, call timers, probes."""
        if self.state is LinkState.STARTING:
            return self._startup_outputs(self.startup.tick(now), now)
        if self.state is not LinkState.READY:
            return []
        out: list[SessionOutput] = [*self.call.tick(now)]
        if self._probe_sent_at is not None:
            if now >= self._probe_sent_at + self.reply_timeout:
                if self._probe_tries >= self.tries:
                    self.failures += 1
                    return [
                        *out,
                        Restart(
                            f"the modem stopped answering ({self._probe()} got no reply"
                            f" after {self._probe_tries} tries)"
                        ),
                    ]
                out += self._send_probe(now)
        elif self._idle() and now >= self._heard_at + self.probe_interval:
            self._probe_tries = 0
            out += self._send_probe(now)
        return out

    def next_deadline(self) -> float | None:
        if self.state is LinkState.STARTING:
            return self.startup.next_deadline()
        if self.state is not LinkState.READY:
            return None
        times = [self.call.next_deadline()]
        if self._probe_sent_at is not None:
            times.append(self._probe_sent_at + self.reply_timeout)
        elif self._idle():
            times.append(self._heard_at + self.probe_interval)
        return min((t for t in times if t is not None), default=None)

    # --- requests ------------------------------------------------------------------

    def answer(self, call_id: str, now: float) -> list[SessionOutput]:
        self._check_ready(f"answer call {call_id!r}")
        return [*self.call.answer(call_id, now)]

    def hang_up(self, call_id: str, now: float) -> list[SessionOutput]:
        self._check_ready(f"hang up call {call_id!r}")
        return [*self.call.hang_up(call_id, now)]

    def dial(self, number: str, now: float, *, call_id: str | None = None) -> list[SessionOutput]:
        self._check_ready(f"dial {number!r}")
        self._probe_sent_at = None  # the dial's own result shows the modem is there
        return [*self.call.dial(number, now, call_id=call_id)]

    # --- internals -----------------------------------------------------------------

    def _check_ready(self, what: str) -> None:
        if self.state is not LinkState.READY:
            raise TelephonyError(
                f"line {self.line!r} cannot {what}: the modem is {self.state.value}"
            )

    def _idle(self) -> bool:
        return self.call.state is CallState.IDLE

    def _probe(self) -> str:
        return self.startup.caller_id_command or "AT"

    def _send_probe(self, now: float) -> list[SessionOutput]:
        self._probe_sent_at = now
        self._probe_tries += 1
        return [Send(self._probe())]

    def _startup_outputs(self, sends: list[Send], now: float) -> list[SessionOutput]:
        out: list[SessionOutput] = [*sends]
        if self.startup.state is StartupState.FAILED:
            self.failures += 1
            out.append(Restart(f"the modem start-up failed: {self.startup.reason}"))
        elif self.startup.state is StartupState.READY:
            self.state = LinkState.READY
            self.failures = 0
            self._heard_at = now
            cid = self.startup.caller_id_command
            out.append(
                Notice("info", f"line {self.line}: ready, caller ID on with {cid}")
                if cid
                else Notice(
                    "warning",
                    f"line {self.line}: ready WITHOUT caller ID ({self.startup.reason});"
                    " calls come with no number",
                )
            )
            out += [Notice("warning", f"line {self.line}: {w}") for w in self.startup.warnings]
        return out
