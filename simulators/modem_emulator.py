"""A voice modem on a pty, for testers: answers AT commands like a chosen chipset and
rings with caller ID on demand, so a modem line can be tried with no modem and no
telephone line.

Two parts, as everywhere in this project:

* :class:`ModemEmulator`, the pure core: bytes from the line and ``now`` in, bytes to
  the line and :class:`Note` values (what happened, for the screen and for tests) out;
  :meth:`ModemEmulator.next_deadline` says when to call :meth:`ModemEmulator.tick`.
  It knows the commands a line sends (``ATZ``, ``ATE0V1Q0S0=0``, the caller-ID
  commands, ``ATA``, ``ATH``, ``ATD...``, ``ATI``, ``AT``), echo (``E``), verbose or
  numeric results (``V``), quiet (``Q``), and which caller-ID command its chipset
  accepts (:data:`CHIPSETS`). Incoming calls (:class:`CallSpec`) ring every
  ``ring_interval_s`` with caller ID between the rings, before the first ring or not
  at all, formatted (``NMBR = ...``) or as SDMF/MDMF hex, private (``P``), out of
  area (``O``), without a name; the caller gives up after ``rings`` rings or hangs up
  after being answered. Dialled calls (``ATDT...;``) end in the outcome a
  :class:`DialSpec` gives (VCON, OK, BUSY, NO ANSWER, NO CARRIER, NO DIALTONE, ERROR).
* :class:`PtyModem`, the shell: a pty whose slave a line opens (``--link`` makes a
  stable symlink to it), a timer, and :meth:`PtyModem.vanish` / :meth:`PtyModem.open`
  to pull the device out and plug it back in.

Call scripts are TOML (:func:`load_script`, validated with pydantic; see
``simulators/modem_scripts/``). ``cti modem-emulator`` runs it all from a terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import tomllib
import tty
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cti.errors import SimulationError

log = logging.getLogger(__name__)

LINE_ENDINGS: dict[str, bytes] = {"crlf": b"\r\n", "cr": b"\r", "lf": b"\n", "lfcr": b"\n\r"}

NUMERIC_RESULTS: dict[str, str] = {
    "OK": "0",
    "CONNECT": "1",
    "RING": "2",
    "NO CARRIER": "3",
    "ERROR": "4",
    "NO DIALTONE": "6",
    "BUSY": "7",
    "NO ANSWER": "8",
}
"""``V0`` codes; results without a number (VCON, RINGING) are sent as words."""

_CALLER_ID_TOKENS = ("+VCID", "#CID", "-STE")
_MAX_COMMAND = 256


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Chipset(_Model):
    """How one kind of modem behaves (an emulator profile)."""

    name: str
    description: str = ""
    caller_id_command: str | None = "AT+VCID=1"
    """The caller-ID command this chipset accepts (its ``=1`` form; ``=0`` and ``=2``
    work too). Any other caller-ID command gets ERROR. None: caller ID never works."""
    echo: bool = True
    """Echo after a reset (``E1``)."""
    verbose: bool = True
    """Verbal results after a reset (``V1``); False: numeric (``V0``)."""
    stubborn: bool = False
    """Ignores ``E`` and ``V``: echo and result format stay as after a reset."""
    line_ending: Literal["crlf", "cr", "lf", "lfcr"] = "crlf"
    caller_id_timing: Literal["between_rings", "before_first_ring"] = "between_rings"
    spaced: bool = True
    """``DATE = 0321`` (True) or ``DATE=0321``."""
    wrap_hex: int = Field(0, ge=0)
    """Unformatted caller ID wrapped after this many hex digits (0: one line)."""
    answer_result: Literal["VCON", "CONNECT", "OK"] = "VCON"
    identity: str = "CTI Desk modem emulator"


CHIPSETS: dict[str, Chipset] = {
    c.name: c
    for c in (
        Chipset(
            name="conexant",
            description="Conexant CX93001-style USB modem: AT+VCID=1, echo on, CRLF",
            identity="CX93001-EIS_V0.2013-V92",
        ),
        Chipset(
            name="rockwell",
            description="Rockwell RC/RCV-style: caller ID only with AT#CID=1",
            caller_id_command="AT#CID=1",
            identity="56000",
        ),
        Chipset(
            name="usr",
            description="US Robotics/3Com-style: AT#CID=1, unformatted hex wrapped after 60 digits",
            caller_id_command="AT#CID=1",
            wrap_hex=60,
            identity="U.S. Robotics 56K FAX EXT",
        ),
        Chipset(
            name="voice-class",
            description="caller ID only in voice class: AT+FCLASS=8;+VCID=1",
            caller_id_command="AT+FCLASS=8;+VCID=1",
        ),
        Chipset(
            name="etsi",
            description="UK/ETSI line: AT-STE=1;+VCID=1, caller ID before the first ring,"
            " no spaces around '='",
            caller_id_command="AT-STE=1;+VCID=1",
            caller_id_timing="before_first_ring",
            spaced=False,
        ),
        Chipset(
            name="stubborn",
            description="echo stays on and results stay numeric whatever ATE0V1 says; CR only",
            echo=True,
            verbose=False,
            stubborn=True,
            line_ending="cr",
        ),
        Chipset(
            name="no-caller-id",
            description="no caller-ID command works (no caller-ID circuit)",
            caller_id_command=None,
        ),
    )
}
"""The emulator's chipset profiles, by name."""


class CallSpec(_Model):
    """One incoming call."""

    at_s: float = Field(0.0, ge=0)
    """In a script: seconds after the emulator starts (a call due while another is on
    the line waits for it to end)."""
    number: str = ""
    """The caller's number; ``P`` private, ``O`` out of area, empty: no number sent."""
    name: str | None = None
    """The caller's name; ``P``/``O`` markers; None: no name sent (name missing)."""
    caller_id: Literal["chipset", "between_rings", "before_first_ring", "none"] = "chipset"
    format: Literal["auto", "formatted", "sdmf", "mdmf"] = "auto"
    """``auto``: what the line asked for (``=1`` formatted, ``=2`` MDMF hex)."""
    ddn: bool = False
    """Send ``DDN_NMBR`` instead of ``NMBR``."""
    date: str = Field("", pattern=r"^(\d{4})?$")
    """``MMDD``; empty: today."""
    time: str = Field("", pattern=r"^(\d{4})?$")
    """``HHMM``; empty: now."""
    rings: int = Field(5, ge=1, le=100)
    """The caller gives up after this many rings, unless answered."""
    hang_up_after_s: float | None = Field(None, gt=0)
    """After being answered the caller hangs up after this long; None: waits for ATH."""
    hang_up_result: Literal["NO CARRIER", "BUSY", ""] = "NO CARRIER"
    """What the modem says when the caller hangs up while talking (empty: nothing)."""
    raw: str = ""
    """Sent as is instead of the caller ID this call would make (odd modems, garbage)."""


class DialSpec(_Model):
    """How a dialled call (``ATD...``) ends."""

    number: str = ""
    """Only for this number (digits as dialled); empty: any number."""
    outcome: Literal["VCON", "OK", "BUSY", "NO ANSWER", "NO CARRIER", "NO DIALTONE", "ERROR"] = (
        "VCON"
    )
    ringing: int = Field(0, ge=0, le=20)
    """``RINGING`` results before the outcome."""
    after_s: float = Field(1.0, ge=0)
    hang_up_after_s: float | None = Field(None, gt=0)
    """After connecting, the far end hangs up after this long (``NO CARRIER``)."""


class Noise(_Model):
    """Bytes sent at a moment of the script: garbage, line noise, an odd modem's text."""

    at_s: float = Field(0.0, ge=0)
    text: str = ""
    hex: str = ""

    @field_validator("hex")
    @classmethod
    def _hex(cls, value: str) -> str:
        try:
            bytes.fromhex(value)
        except ValueError:
            raise ValueError(f"not hex digits: {value[:40]!r}") from None
        return value

    def data(self) -> bytes:
        return self.text.encode() + bytes.fromhex(self.hex)


class ModemSettings(_Model):
    """``[modem]`` in a script: the chipset and what to change in it."""

    chipset: str = "conexant"
    echo: bool | None = None
    verbose: bool | None = None
    line_ending: Literal["crlf", "cr", "lf", "lfcr"] | None = None
    caller_id_command: str | None = None
    ring_interval_s: float = Field(6.0, gt=0)
    caller_id_delay_s: float = Field(1.5, ge=0)

    @field_validator("chipset")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in CHIPSETS:
            raise ValueError(f"unknown chipset {value!r}; known: {', '.join(CHIPSETS)}")
        return value

    def chipset_profile(self) -> Chipset:
        changes: dict[str, object] = {}
        for key in ("echo", "verbose", "line_ending", "caller_id_command"):
            value = getattr(self, key)
            if value is not None:
                changes[key] = value
        return CHIPSETS[self.chipset].model_copy(update=changes)


class Script(_Model):
    """A call script: ``[modem]``, ``[[calls]]``, ``[[dials]]``, ``[[noise]]``."""

    modem: ModemSettings = ModemSettings()
    calls: tuple[CallSpec, ...] = ()
    dials: tuple[DialSpec, ...] = ()
    noise: tuple[Noise, ...] = ()


def load_script(path: str | Path) -> Script:
    """Read and check a call script; errors name the file and the key."""
    try:
        data = tomllib.loads(Path(path).read_text("utf-8"))
    except FileNotFoundError:
        raise SimulationError(f"modem script {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SimulationError(f"modem script {path} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SimulationError(f"modem script {path} is not valid TOML: {exc}") from None
    try:
        return Script.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            lines.append(f"  {key}: {err['msg']}")
        raise SimulationError(f"modem script {path} is not valid:\n" + "\n".join(lines)) from None


# --- caller-ID messages ------------------------------------------------------------


def _with_checksum(msg: bytes) -> bytes:
    return msg + bytes([(-sum(msg)) % 256])


def sdmf_hex(stamp: str, number: str) -> str:
    """SDMF (type 0x04) as hex: ``MMDDHHMM`` then the number, or ``P``/``O``."""
    body = (stamp + (number or "O")).encode("utf-8")[:255]
    return _with_checksum(bytes([0x04, len(body)]) + body).hex().upper()


def mdmf_hex(stamp: str, number: str, name: str | None) -> str:
    """MDMF (type 0x80) as hex: date (01), number (02) or its absence (04), name (07)
    or its absence (08)."""
    params: list[tuple[int, bytes]] = [(0x01, stamp.encode("ascii"))]
    if number in ("P", "O", ""):
        params.append((0x04, (number or "O").encode("ascii")))
    else:
        params.append((0x02, number.encode("utf-8")[:20]))
    if name in ("P", "O"):
        params.append((0x08, name.encode("ascii")))
    elif name:
        params.append((0x07, name.encode("utf-8")[:50]))
    body = b"".join(bytes([t, len(v)]) + v for t, v in params)
    return _with_checksum(bytes([0x80, len(body)]) + body).hex().upper()


# --- the core ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Note:
    """Something that happened, for the screen and for tests.

    ``what``: ``command`` (a command heard), ``ring``, ``caller_id``, ``answered`` (ATA
    while ringing), ``hung_up`` (ATH on a call), ``rejected`` (ATH while ringing),
    ``caller_left`` (gave up ringing), ``caller_hung_up`` (after being answered),
    ``dialled``, ``dial_outcome``, ``reset``, ``noise``, ``waiting`` (a call waits for
    the line to be free).
    """

    what: str
    detail: str = ""


@dataclass(slots=True)
class _Incoming:
    spec: CallSpec
    stamp: str
    timeline: deque[tuple[float, str]]
    rings: int = 0
    answered: bool = False
    hang_up_at: float | None = None


@dataclass(slots=True)
class _Outgoing:
    number: str
    spec: DialSpec
    timeline: deque[tuple[float, str]]
    connected: bool = False
    hang_up_at: float | None = None


@dataclass(slots=True)
class _Pending:
    due: float
    spec: CallSpec
    stamp: str = ""


@dataclass(slots=True)
class _Settings:
    echo: bool
    verbose: bool
    quiet: bool = False
    caller_id_mode: int = 0
    registers: dict[int, int] = field(default_factory=dict)


class ModemEmulator:
    """What a voice modem replies to what, and when it rings. Pure; see the module
    docstring."""

    def __init__(
        self,
        chipset: Chipset | str = "conexant",
        *,
        ring_interval_s: float = 6.0,
        caller_id_delay_s: float = 1.5,
        quiet_gap_s: float = 10.0,
        dials: Sequence[DialSpec] = (),
        default_dial: DialSpec | None = None,
    ) -> None:
        self.chipset = CHIPSETS[chipset] if isinstance(chipset, str) else chipset
        self.ring_interval_s = ring_interval_s
        self.caller_id_delay_s = caller_id_delay_s
        self.quiet_gap_s = quiet_gap_s
        """A waiting call rings no sooner than this after the last call ended: a line
        cannot tell two calls apart when one rings right after the other stopped."""
        self._free_at = -float("inf")
        self.dials = list(dials)
        self.default_dial = default_dial or DialSpec()
        self.eol = LINE_ENDINGS[self.chipset.line_ending]
        self.settings = self._reset_settings()
        self.call: _Incoming | _Outgoing | None = None
        self.heard: list[str] = []
        """Every command heard, in order."""
        self._buf = bytearray()
        self._overflow = False
        self._pending: list[_Pending] = []
        self._noise: list[tuple[float, bytes]] = []

    # --- inputs ----------------------------------------------------------------------

    def received(self, data: bytes, now: float) -> list[bytes | Note]:
        """Bytes the line wrote. Commands end in CR; LF is ignored."""
        out: list[bytes | Note] = self.tick(now)
        for byte in data:
            if byte == 0x0D:
                line = bytes(self._buf)
                self._buf.clear()
                if self._overflow:
                    self._overflow = False
                    out += [self._result("ERROR")]
                    continue
                out += self._command(line.decode("latin-1"), now)
            elif byte == 0x0A:
                continue
            elif len(self._buf) >= _MAX_COMMAND:
                self._overflow = True
            else:
                self._buf.append(byte)
        return [o for o in out if o != b""]

    def ring(self, spec: CallSpec, now: float, *, stamp: str = "01010000") -> list[bytes | Note]:
        """A caller rings now (or as soon as the line is free). ``stamp`` is ``MMDDHHMM``
        for caller ID when the call gives no date or time."""
        self._pending.append(_Pending(now, spec, stamp))
        return self.tick(now)

    def schedule(self, script: Script, start: float, *, stamp: str = "01010000") -> None:
        """Put a script's calls and noise on the timeline from ``start``."""
        self.dials = list(script.dials) + self.dials
        for spec in script.calls:
            self._pending.append(_Pending(start + spec.at_s, spec, stamp))
        for noise in script.noise:
            self._noise.append((start + noise.at_s, noise.data()))

    def send_noise(self, data: bytes) -> list[bytes | Note]:
        return [Note("noise", f"{len(data)} bytes"), data]

    def caller_hangs_up(self, now: float) -> list[bytes | Note]:
        """The far end leaves now: rings stop, or NO CARRIER on a call in progress."""
        call = self.call
        self._end_call(now)
        if isinstance(call, _Incoming) and not call.answered:
            return [Note("caller_left", f"after {call.rings} rings")]
        if isinstance(call, _Incoming):
            return [Note("caller_hung_up"), self._text_result(call.spec.hang_up_result)]
        if isinstance(call, _Outgoing):
            return [Note("caller_hung_up"), self._result("NO CARRIER")]
        return []

    def tick(self, now: float) -> list[bytes | Note]:
        out: list[bytes | Note] = []
        while True:
            due = [(t, d) for t, d in self._noise if t <= now]
            for item in due:
                self._noise.remove(item)
                out += self.send_noise(item[1])
            if self.call is None and now >= self._free_at:
                ready = sorted((p for p in self._pending if p.due <= now), key=lambda p: p.due)
                if ready:
                    self._pending.remove(ready[0])
                    self.call = self._incoming(ready[0], now)
            step = self._next_step()
            if step is None or step > now:
                return out
            out += self._step(step)

    def next_deadline(self) -> float | None:
        times = [t for t, _ in self._noise]
        step = self._next_step()
        if step is not None:
            times.append(step)
        if self.call is None:
            times += [max(p.due, self._free_at) for p in self._pending]
        return min(times, default=None)

    # --- call timelines --------------------------------------------------------------

    def _incoming(self, pending: _Pending, now: float) -> _Incoming:
        spec = pending.spec
        stamp = (spec.date or pending.stamp[:4]) + (spec.time or pending.stamp[4:8])
        timing = self.chipset.caller_id_timing if spec.caller_id == "chipset" else spec.caller_id
        interval = self.ring_interval_s
        timeline: deque[tuple[float, str]] = deque()
        first = now
        if timing == "before_first_ring":
            timeline.append((now, "caller_id"))
            first = now + min(0.5, interval / 4)
        for k in range(spec.rings):
            timeline.append((first + k * interval, "ring"))
            if k == 0 and timing == "between_rings":
                timeline.append((first + min(self.caller_id_delay_s, interval / 2), "caller_id"))
        timeline.append((first + spec.rings * interval, "give_up"))
        return _Incoming(spec, stamp, timeline)

    def _next_step(self) -> float | None:
        call = self.call
        if call is None:
            return None
        if call.hang_up_at is not None:
            return call.hang_up_at
        return call.timeline[0][0] if call.timeline else None

    def _step(self, at: float) -> list[bytes | Note]:
        call = self.call
        assert call is not None
        if call.hang_up_at is not None and call.hang_up_at <= at:
            return self.caller_hangs_up(at)
        _, what = call.timeline.popleft()
        if isinstance(call, _Outgoing):
            if what == "RINGING":
                return [self._text_result("RINGING")]
            return self._dial_outcome(call, at)
        if what == "ring":
            call.rings += 1
            return [Note("ring", str(call.rings)), self._result("RING")]
        if what == "caller_id":
            return self._caller_id(call)
        self._end_call(at)
        return [Note("caller_left", f"after {call.rings} rings")]

    def _caller_id(self, call: _Incoming) -> list[bytes | Note]:
        spec = call.spec
        if spec.raw:
            return [Note("caller_id", "raw"), spec.raw.encode("utf-8")]
        mode = self.settings.caller_id_mode
        if mode == 0:
            return [Note("caller_id", "not sent: caller ID is off on the modem")]
        fmt = spec.format
        if fmt == "auto":
            fmt = "mdmf" if mode == 2 else "formatted"
        eol = self.eol
        if fmt in ("sdmf", "mdmf"):
            text = (
                sdmf_hex(call.stamp, spec.number)
                if fmt == "sdmf"
                else mdmf_hex(call.stamp, spec.number, spec.name)
            )
            width = self.chipset.wrap_hex
            parts = [text[i : i + width] for i in range(0, len(text), width)] if width else [text]
            body = eol.join(p.encode("ascii") for p in parts)
            return [Note("caller_id", f"{fmt.upper()} {text}"), eol + body + eol]
        eq = " = " if self.chipset.spaced else "="
        fields = [("DATE", call.stamp[:4]), ("TIME", call.stamp[4:8])]
        if spec.number:
            fields.append(("DDN_NMBR" if spec.ddn else "NMBR", spec.number))
        if spec.name is not None:
            fields.append(("NAME", spec.name))
        lines = [f"{k}{eq}{v}".encode() for k, v in fields]
        shown = ", ".join(f"{k}={v}" for k, v in fields[2:]) or "date and time only"
        return [Note("caller_id", shown), eol + eol.join(lines) + eol]

    def _dial(self, dial_string: str, now: float) -> list[bytes | Note]:
        number = dial_string.strip().rstrip(";")
        if number[:1] in ("T", "P"):
            number = number[1:]
        if self.call is not None:
            return [Note("dialled", f"{number}: the line is busy"), self._result("ERROR")]
        spec = next((d for d in self.dials if d.number in ("", number)), None)
        if spec is None:
            spec = self.default_dial
        else:
            self.dials.remove(spec)  # a script's outcomes are used once each, in order
        timeline: deque[tuple[float, str]] = deque()
        for k in range(spec.ringing):
            timeline.append((now + spec.after_s * (k + 1) / (spec.ringing + 1), "RINGING"))
        timeline.append((now + spec.after_s, spec.outcome))
        self.call = _Outgoing(number, spec, timeline)
        return [Note("dialled", number)]

    def _dial_outcome(self, call: _Outgoing, at: float) -> list[bytes | Note]:
        outcome = call.spec.outcome
        out: list[bytes | Note] = [Note("dial_outcome", f"{call.number}: {outcome}")]
        out.append(self._text_result(outcome))
        if outcome in ("VCON", "OK"):
            call.connected = True
            if call.spec.hang_up_after_s is not None:
                call.hang_up_at = at + call.spec.hang_up_after_s
        else:
            self._end_call(at)
        return out

    # --- commands --------------------------------------------------------------------

    def _command(self, line: str, now: float) -> list[bytes | Note]:
        text = line.strip()
        start = text.upper().find("AT")
        if start < 0:
            return []  # a modem ignores what is not a command
        text = text[start:]
        self.heard.append(text)
        out: list[bytes | Note] = [Note("command", text)]
        if self.settings.echo:
            out.append(text.encode("latin-1") + b"\r")
        body = text[2:]
        compact = body.replace(" ", "").upper()
        if any(token in compact for token in _CALLER_ID_TOKENS):
            return [*out, self._caller_id_command("AT" + compact)]
        try:
            return out + self._execute(body, now)
        except _CommandError:
            return [*out, self._result("ERROR")]

    def _caller_id_command(self, command: str) -> bytes:
        accepted = self.chipset.caller_id_command
        match = re.fullmatch(r"(.*[=])([0-2])", command)
        if accepted is None or match is None or match.group(1) != accepted[:-1].upper():
            return self._result("ERROR")
        self.settings.caller_id_mode = int(match.group(2))
        return self._result("OK")

    def _execute(self, body: str, now: float) -> list[bytes | Note]:
        out: list[bytes | Note] = []
        i = 0
        upper = body.upper()
        while i < len(body):
            c = upper[i]
            if c == " ":
                i += 1
                continue
            if c == "D":
                return out + self._dial(body[i + 1 :], now)
            if c in "+#-":
                end = upper.find(";", i)
                end = len(body) if end < 0 else end
                i = end + 1  # extended commands: accepted as given
                continue
            if c in "&\\%":
                m = re.match(r"[&\\%][A-Z]\d*", upper[i:])
                if m is None:
                    raise _CommandError
                i += m.end()
                continue
            if c == "S":
                m = re.match(r"S(\d+)(=(\d*)|\?)?", upper[i:])
                if m is None:
                    raise _CommandError
                if m.group(3):
                    self.settings.registers[int(m.group(1))] = int(m.group(3))
                i += m.end()
                continue
            m = re.match(r"([A-Z])(\d*)", upper[i:])
            if m is None:
                raise _CommandError
            i += m.end()
            letter, digits = m.group(1), m.group(2)
            value = int(digits) if digits else 0
            if letter == "Z":
                out += self._reset(now)
            elif letter == "E" and not self.chipset.stubborn:
                self.settings.echo = value == 1
            elif letter == "V" and not self.chipset.stubborn:
                self.settings.verbose = value == 1
            elif letter == "Q":
                self.settings.quiet = value == 1
            elif letter == "H":
                out += self._hang_up(now)
            elif letter == "A":
                return out + self._answer(now)
            elif letter == "I":
                out.append(self.eol + self.chipset.identity.encode() + self.eol)
        out.append(self._result("OK"))
        return out

    def _reset(self, now: float) -> list[bytes | Note]:
        out: list[bytes | Note] = [Note("reset")]
        if isinstance(self.call, _Outgoing) or (
            isinstance(self.call, _Incoming) and self.call.answered
        ):
            out += self._hang_up(now)
        self.settings = self._reset_settings()
        return out

    def _answer(self, now: float) -> list[bytes | Note]:
        call = self.call
        if not isinstance(call, _Incoming) or call.answered:
            return [Note("answered", "nobody calling"), self._result("NO CARRIER")]
        call.answered = True
        call.timeline.clear()
        if call.spec.hang_up_after_s is not None:
            call.hang_up_at = now + call.spec.hang_up_after_s
        number = call.spec.number or "no number"
        return [
            Note("answered", f"{number} after {call.rings} rings"),
            self._text_result(self.chipset.answer_result),
        ]

    def _end_call(self, now: float) -> None:
        self.call = None
        self._free_at = now + self.quiet_gap_s

    def _hang_up(self, now: float) -> list[bytes | Note]:
        call = self.call
        if isinstance(call, _Incoming) and not call.answered:
            return [Note("rejected", call.spec.number)]  # on hook already: it rings on
        if call is None:
            return []
        self._end_call(now)
        return [Note("hung_up", call.spec.number if isinstance(call, _Incoming) else call.number)]

    # --- results ---------------------------------------------------------------------

    def _reset_settings(self) -> _Settings:
        return _Settings(echo=self.chipset.echo, verbose=self.chipset.verbose)

    def _result(self, code: str) -> bytes:
        if self.settings.quiet:
            return b""
        if not self.settings.verbose and code in NUMERIC_RESULTS:
            return NUMERIC_RESULTS[code].encode() + b"\r"
        return self.eol + code.encode() + self.eol

    def _text_result(self, code: str) -> bytes:
        return self._result(code) if code else b""


class _CommandError(Exception):
    """A command the emulator cannot parse: the modem says ERROR."""


# --- keys --------------------------------------------------------------------------

KEYS: dict[str, str] = {
    "r": "ring with caller ID as the chipset sends it",
    "b": "ring with caller ID before the first ring",
    "n": "ring with no caller ID",
    "p": "ring from a private number (NMBR = P)",
    "o": "ring from out of area (NMBR = O)",
    "m": "ring with the number but no name",
    "s": "ring with SDMF hex caller ID",
    "x": "ring with MDMF hex caller ID",
    "h": "the caller hangs up now",
    "g": "send garbage bytes",
    "q": "quit",
}
"""Keys the ``cti modem-emulator`` terminal understands."""

GARBAGE = b"\x00\xff\x1b[2J~~\x07NMBR\r\n+++ATH\xfe\r\n" + bytes(range(0x80, 0x90)) + b"\r\n"


def call_for_key(key: str, number: str, name: str) -> CallSpec | None:
    """The incoming call a key stands for, or None if the key is not a call."""
    calls = {
        "r": CallSpec(number=number, name=name),
        "\r": CallSpec(number=number, name=name),
        "\n": CallSpec(number=number, name=name),
        "b": CallSpec(number=number, name=name, caller_id="before_first_ring"),
        "n": CallSpec(number=number, name=name, caller_id="none"),
        "p": CallSpec(number="P", name="P"),
        "o": CallSpec(number="O"),
        "m": CallSpec(number=number),
        "s": CallSpec(number=number, format="sdmf"),
        "x": CallSpec(number=number, name=name, format="mdmf"),
    }
    return calls.get(key.lower() if key.strip() else key)


# --- the pty shell -----------------------------------------------------------------


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

    async def wait_for(self, what: str, *, after: int = 0, timeout: float = 10.0) -> Note:
        """The first note of kind ``what`` from index ``after`` of :attr:`notes` on,
        waiting for it (``timeout`` is a safety net, not a measurement)."""
        async with asyncio.timeout(timeout), self._changed:
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
    from datetime import datetime

    return datetime.now().strftime("%m%d%H%M")
