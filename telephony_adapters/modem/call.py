"""Sans-I/O call state machine and start-up negotiator for one modem line.

:class:`ModemCall` turns parser events (:mod:`telephony_adapters.modem.parser`) and
the current time into the engine's line events (:class:`~cti.protocol.CallArrived`,
:class:`~cti.protocol.CallerHungUp`), the AT commands to send (:class:`Send`) and the
outcomes of our requests (:class:`ModemResult`). It never reads a clock: the caller passes
``now`` and calls :meth:`ModemCall.tick` at :meth:`ModemCall.next_deadline`.

Incoming calls (see docs/modem.md): caller ID arrives between the first and second RING
(US), before the first RING (UK/ETSI), or never. The call is announced on the first
RING when caller ID came before it; else once caller ID after the first RING has been
quiet for ``caller_id_settle`` seconds (the fields come in one burst, with no end
marker), or on the second RING, or when ringing stops after a single RING (then at
once followed by its hang-up). Nothing says that ringing stopped:
no RING for ``ring_timeout`` seconds (about 7) ends the call with ``CallerHungUp``
unless we answered it.

Requests: ``ATA`` must end within ``answer_timeout`` and ``ATDT...;`` within
``dial_timeout``, else the call is given up (``ATH``, a ``ModemResult`` of ``timeout`` and
``CallerHungUp``). A dialled call that fails (BUSY, NO ANSWER, ...) ends with
``CallerHungUp`` too, so the engine never keeps an agent on a call that is not there.
While talking, NO CARRIER, BUSY (busy tone after the far end left, in voice mode) or
NO ANSWER mean the far end has gone. :meth:`ModemCall.line_lost` ends the live call
when the device goes away: it is announced first if it was not yet, then hung up, so
no call is ever lost.

:class:`StartupNegotiator` is the start-up sequence with its fallbacks, as data.
"""

from __future__ import annotations

import enum
import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from cti.errors import TelephonyError
from cti.protocol import CallArrived, CallerHungUp
from telephony_adapters.modem.parser import (
    CallerIdField,
    CallerIdMessage,
    ModemEvent,
    Result,
    Ring,
)

RING_TIMEOUT = 7.0
"""Seconds without RING after which ringing has stopped (RINGs come about 6 s apart)."""

CALLER_ID_SETTLE = 0.5
"""Seconds of quiet after a caller-ID field before the call is announced with it."""

CALLER_ID_STALE = 10.0
"""Caller ID that came this long before a first RING belongs to no call."""

ANSWER_TIMEOUT = 10.0
"""Seconds ATA may take to give VCON (or NO CARRIER) before the call is given up."""

DIAL_TIMEOUT = 60.0
"""Seconds ``ATDT...;`` may take to give its outcome before the call is given up."""

_DIALABLE = re.compile(r"[0-9*#+ABCDabcdPpTtWw,!@]{1,40}")


@dataclass(frozen=True, slots=True)
class Send:
    """An AT command to write to the modem (without the trailing CR)."""

    command: str


@dataclass(frozen=True, slots=True)
class ModemResult:
    """How a request ended or progressed.

    ``request`` is ``"answer"``, ``"dial"`` or ``"hang_up"``; ``outcome`` is one of
    ``connected`` (VCON/CONNECT/OK to ATA), ``dialled`` (OK to ``ATDT...;``: the
    handset may be picked up), ``ringing``, ``busy``, ``no_answer``, ``no_carrier``,
    ``no_dialtone``, ``error``, ``done`` (OK to ATH); ``result`` is the modem's text.
    """

    call_id: str
    request: str
    outcome: str
    result: str
    final: bool


ModemOutput = CallArrived | CallerHungUp | Send | ModemResult

_OUTCOMES: dict[str, tuple[str, bool]] = {
    "VCON": ("connected", True),
    "CONNECT": ("connected", True),
    "RINGING": ("ringing", False),
    "BUSY": ("busy", True),
    "NO ANSWER": ("no_answer", True),
    "NO CARRIER": ("no_carrier", True),
    "NO DIALTONE": ("no_dialtone", True),
    "ERROR": ("error", True),
    "DELAYED": ("error", True),
    "BLACKLISTED": ("error", True),
}


_FAR_END_GONE = frozenset({"NO CARRIER", "BUSY", "NO ANSWER"})
"""Results that, while talking, mean the far end has gone."""


class CallState(enum.Enum):
    IDLE = "idle"
    RINGING = "ringing"
    ANSWERING = "answering"
    DIALLING = "dialling"
    TALKING = "talking"
    REJECTED = "rejected"
    """We hung up a ringing call; an analogue line rings on until the caller gives up,
    so its RINGs are ignored until they stop."""


@dataclass(slots=True)
class _CallerId:
    number: str = ""
    ddn_number: str = ""
    name: str = ""
    seen: bool = False
    at: float = 0.0
    fields: dict[str, str] = field(default_factory=dict)

    def ani(self) -> str:
        return self.number or self.ddn_number

    def add_field(self, f: CallerIdField) -> None:
        self.seen, self.at = True, f.at
        self.fields[f.key] = f.value
        if f.key == "NMBR":
            self.number = f.value
        elif f.key == "DDN_NMBR":
            self.ddn_number = f.value
        elif f.key == "NAME":
            self.name = "" if f.value in ("P", "O") else f.value

    def add_message(self, m: CallerIdMessage) -> None:
        self.seen, self.at = True, m.at
        self.number = m.number or m.number_absent
        self.name = m.name


class ModemCall:
    """One modem line's calls. Pure: feed it events and ``now``; it returns outputs."""

    def __init__(
        self,
        line: str,
        *,
        dnis: str = "",
        ring_timeout: float = RING_TIMEOUT,
        caller_id_settle: float = CALLER_ID_SETTLE,
        answer_timeout: float = ANSWER_TIMEOUT,
        dial_timeout: float = DIAL_TIMEOUT,
        call_ids: Sequence[str] | Iterator[str] | None = None,
    ) -> None:
        self.line = line
        self.dnis = dnis
        self.ring_timeout = ring_timeout
        self.caller_id_settle = caller_id_settle
        self.answer_timeout = answer_timeout
        self.dial_timeout = dial_timeout
        self._ids = iter(call_ids) if call_ids is not None else None
        self._counter = itertools.count(1)
        self.state = CallState.IDLE
        self.call_id: str | None = None
        self.rings = 0
        self.announced = False
        self._last_ring = 0.0
        self._cid = _CallerId()
        self._request: str | None = None
        self._request_deadline = 0.0

    # --- inputs -------------------------------------------------------------------

    def handle(self, event: ModemEvent) -> list[ModemOutput]:
        """One parser event (its ``at`` is the time)."""
        out = self.tick(event.at)
        if isinstance(event, Ring):
            out += self._on_ring(event.at)
        elif isinstance(event, CallerIdField):
            if self.state in (CallState.IDLE, CallState.RINGING) and not self.announced:
                self._cid.add_field(event)
        elif isinstance(event, CallerIdMessage):
            if self.state in (CallState.IDLE, CallState.RINGING) and not self.announced:
                self._cid.add_message(event)
        elif isinstance(event, Result):
            out += self._on_result(event)
        return out

    def tick(self, now: float) -> list[ModemOutput]:
        """Let time pass: announces a call whose caller ID has settled, ends ringing
        that stopped, gives up a request that took too long."""
        if self._request is not None and now >= self._request_deadline:
            return self._request_timed_out()
        early: list[ModemOutput] = []
        settled = self._settled_at()
        if settled is not None and now >= settled:
            early = self._announce()
        deadline = self._ring_deadline()
        if deadline is None or now < deadline:
            if (
                self.state is CallState.IDLE
                and self._cid.seen
                and now - self._cid.at > CALLER_ID_STALE
            ):
                self._cid = _CallerId()
            return early
        if self.state is CallState.REJECTED:
            self._reset()
            return early
        out = early + self._announce()
        assert self.call_id is not None
        out.append(CallerHungUp(call_id=self.call_id, line=self.line))
        self._reset()
        return out

    def next_deadline(self) -> float | None:
        """When :meth:`tick` next has something to do, or ``None``."""
        request = self._request_deadline if self._request is not None else None
        times = [t for t in (self._settled_at(), self._ring_deadline(), request) if t is not None]
        return min(times, default=None)

    def _ring_deadline(self) -> float | None:
        if self.state in (CallState.RINGING, CallState.REJECTED):
            return self._last_ring + self.ring_timeout
        return None

    def _settled_at(self) -> float | None:
        if self.state is CallState.RINGING and not self.announced and self._cid.seen:
            return self._cid.at + self.caller_id_settle
        return None

    # --- requests -----------------------------------------------------------------

    def answer(self, call_id: str, now: float) -> list[ModemOutput]:
        self._check(call_id, CallState.RINGING, "answer")
        self.state = CallState.ANSWERING
        self._request = "answer"
        self._request_deadline = now + self.answer_timeout
        return [Send("ATA")]

    def hang_up(self, call_id: str, now: float) -> list[ModemOutput]:
        """End a call from our side: ATH, and no CallerHungUp. A ringing call is
        rejected: the rest of its RINGs make no new call."""
        if call_id != self.call_id or self.state is CallState.IDLE:
            raise TelephonyError(
                f"line {self.line!r} has no call {call_id!r} to hang up"
                f" (current: {self.call_id or 'none'})"
            )
        ringing = self.state is CallState.RINGING
        self._reset()
        if ringing:
            self.state = CallState.REJECTED
        return [Send("ATH")]

    def dial(self, number: str, now: float, *, call_id: str | None = None) -> list[ModemOutput]:
        """Dial out for the agent's handset: ``ATDT<number>;``. The call id is
        :attr:`call_id` afterwards."""
        if self.state is not CallState.IDLE:
            raise TelephonyError(
                f"line {self.line!r} is busy ({self.state.value}); cannot dial {number!r}"
            )
        if not _DIALABLE.fullmatch(number):
            raise TelephonyError(
                f"cannot dial {number!r} on line {self.line!r}: expected 1-40 of"
                " 0-9 * # + A-D , W P T ! @"
            )
        self.call_id = call_id or self._next_id()
        self.state = CallState.DIALLING
        self._request = "dial"
        self._request_deadline = now + self.dial_timeout
        self.announced = True
        return [Send(f"ATDT{number};")]

    # --- internals ----------------------------------------------------------------

    def _check(self, call_id: str, state: CallState, what: str) -> None:
        if call_id != self.call_id or self.state is not state:
            raise TelephonyError(
                f"line {self.line!r} cannot {what} call {call_id!r}: the line is"
                f" {self.state.value} with call {self.call_id or 'none'}"
            )

    def _next_id(self) -> str:
        if self._ids is not None:
            try:
                return next(self._ids)
            except StopIteration:
                self._ids = None
        return f"{self.line}-{next(self._counter)}"

    def _on_ring(self, now: float) -> list[ModemOutput]:
        if self.state is CallState.IDLE:
            self.state = CallState.RINGING
            self.call_id = self._next_id()
            self.rings = 0
        if self.state is CallState.REJECTED:
            self._last_ring = now
        if self.state is not CallState.RINGING:
            return []
        self.rings += 1
        self._last_ring = now
        if self.rings >= 2 or self._cid.seen:
            return self._announce()
        return []

    def _announce(self) -> list[ModemOutput]:
        if self.announced or self.call_id is None:
            return []
        self.announced = True
        return [
            CallArrived(
                call_id=self.call_id,
                ani=self._cid.ani(),
                dnis=self.dnis,
                line=self.line,
                caller_name=self._cid.name,
            )
        ]

    def line_lost(self, now: float) -> list[ModemOutput]:
        """The device went away (unplugged, port closed): whatever call the line had is
        over. A call not yet announced is announced first, so it is never lost; a call
        we had already ended (rejected, still ringing) just ends."""
        if self.state is CallState.REJECTED or self.call_id is None:
            self._reset()
            return []
        out = self._announce()
        out.append(CallerHungUp(call_id=self.call_id, line=self.line))
        self._reset()
        return out

    def _request_timed_out(self) -> list[ModemOutput]:
        assert self.call_id is not None
        assert self._request is not None
        call_id, request = self.call_id, self._request
        self._reset()
        return [
            ModemResult(call_id, request, "timeout", "", True),
            Send("ATH"),
            CallerHungUp(call_id=call_id, line=self.line),
        ]

    def _on_result(self, event: Result) -> list[ModemOutput]:
        if self.call_id is None or self._request is None:
            if event.code in _FAR_END_GONE and self.state is CallState.TALKING:
                return self._far_end_left()
            return []
        request = self._request
        call_id = self.call_id
        if event.code == "OK":
            outcome, final = ("dialled" if request == "dial" else "connected"), True
        elif event.code in _OUTCOMES:
            outcome, final = _OUTCOMES[event.code]
        else:
            return []
        out: list[ModemOutput] = [ModemResult(call_id, request, outcome, event.text, final)]
        if final:
            self._request = None
            if outcome in ("connected", "dialled"):
                self.state = CallState.TALKING
            else:
                out.append(CallerHungUp(call_id=call_id, line=self.line))
                self._reset()
        return out

    def _far_end_left(self) -> list[ModemOutput]:
        assert self.call_id is not None
        out: list[ModemOutput] = [CallerHungUp(call_id=self.call_id, line=self.line)]
        self._reset()
        return out

    def _reset(self) -> None:
        self.state = CallState.IDLE
        self.call_id = None
        self.rings = 0
        self.announced = False
        self._request = None
        self._cid = _CallerId()


# --- start-up ---------------------------------------------------------------------

CALLER_ID_COMMANDS: tuple[str, ...] = (
    "AT+VCID=1",
    "AT#CID=1",
    "AT+FCLASS=8;+VCID=1",
    "AT-STE=1;+VCID=1",
)


class StartupState(enum.Enum):
    RESETTING = "resetting"
    SETTLING = "settling"
    CONFIGURING = "configuring"
    CALLER_ID = "caller_id"
    INIT = "init"
    READY = "ready"
    FAILED = "failed"


class StartupNegotiator:
    """The start-up sequence with its fallbacks (docs/modem.md), sans-I/O.

    ``ATZ``; on OK wait ``settle`` seconds; ``ATE0V1Q0S0=0``; then the caller-ID
    commands in order until one answers OK; then the site's own ``init`` commands (from
    the line's configuration), each once: one that fails is noted in :attr:`warnings`
    and the start-up goes on. A command with no answer within ``reply_timeout`` is sent
    again, up to ``tries`` times. The line is READY with :attr:`caller_id_command` set,
    or READY without caller ID when every caller-ID command failed, or FAILED when ATZ
    or the configuration never got OK. Call :meth:`start` again after any reset of the
    modem.
    """

    def __init__(
        self,
        *,
        caller_id_commands: Sequence[str] = CALLER_ID_COMMANDS,
        init: Sequence[str] = (),
        settle: float = 1.0,
        reply_timeout: float = 3.0,
        tries: int = 3,
    ) -> None:
        self.caller_id_commands = tuple(caller_id_commands)
        self.init = tuple(init)
        self.warnings: list[str] = []
        self.settle = settle
        self.reply_timeout = reply_timeout
        self.tries = tries
        self.state = StartupState.FAILED
        self.caller_id_command: str | None = None
        self.reason = "not started"
        self._command = ""
        self._sent_at = 0.0
        self._tries = 0
        self._cid_index = 0
        self._init_index = 0

    @property
    def done(self) -> bool:
        return self.state in (StartupState.READY, StartupState.FAILED)

    def start(self, now: float) -> list[Send]:
        self.caller_id_command = None
        self.reason = ""
        self._cid_index = 0
        self._init_index = 0
        self.warnings = []
        self.state = StartupState.RESETTING
        return self._send("ATZ", now)

    def next_deadline(self) -> float | None:
        if self.done:
            return None
        if self.state is StartupState.SETTLING:
            return self._sent_at + self.settle
        return self._sent_at + self.reply_timeout

    def tick(self, now: float) -> list[Send]:
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return []
        if self.state is StartupState.SETTLING:
            self.state = StartupState.CONFIGURING
            return self._send("ATE0V1Q0S0=0", now)
        if self._tries < self.tries:
            return self._resend(now)
        return self._failed_step(now, "no reply")

    def handle(self, event: ModemEvent) -> list[Send]:
        now = event.at
        out = self.tick(now)
        if not isinstance(event, Result) or self.done or self.state is StartupState.SETTLING:
            return out
        if event.code == "OK":
            return out + self._ok(now)
        if event.code == "ERROR":
            return out + self._failed_step(now, "ERROR")
        return out

    def _send(self, command: str, now: float) -> list[Send]:
        self._command, self._sent_at, self._tries = command, now, 1
        return [Send(command)]

    def _resend(self, now: float) -> list[Send]:
        self._sent_at = now
        self._tries += 1
        return [Send(self._command)]

    def _ok(self, now: float) -> list[Send]:
        if self.state is StartupState.RESETTING:
            self.state = StartupState.SETTLING
            self._sent_at = now
            return []
        if self.state is StartupState.CONFIGURING:
            return self._next_caller_id(now)
        if self.state is StartupState.CALLER_ID:
            self.caller_id_command = self._command
            return self._next_init(now)
        if self.state is StartupState.INIT:
            return self._next_init(now)
        return []

    def _failed_step(self, now: float, why: str) -> list[Send]:
        if self.state is StartupState.CALLER_ID:
            return self._next_caller_id(now)
        if self.state is StartupState.INIT:
            self.warnings.append(f"init command {self._command} got {why}")
            return self._next_init(now)
        if self._tries < self.tries:
            return self._resend(now)
        self.state = StartupState.FAILED
        self.reason = f"{self._command} got {why} after {self._tries} tries"
        return []

    def _next_caller_id(self, now: float) -> list[Send]:
        if self._cid_index >= len(self.caller_id_commands):
            self.reason = "no caller-ID command was accepted"
            return self._next_init(now)
        self.state = StartupState.CALLER_ID
        command = self.caller_id_commands[self._cid_index]
        self._cid_index += 1
        return self._send(command, now)

    def _next_init(self, now: float) -> list[Send]:
        if self._init_index >= len(self.init):
            self.state = StartupState.READY
            return []
        self.state = StartupState.INIT
        command = self.init[self._init_index]
        self._init_index += 1
        return self._send(command, now)
