"""Sans-I/O line parser for a Hayes AT voice modem.

Feed it byte chunks exactly as they came off the serial port, split anywhere, with the
current monotonic time; it returns typed events. It never reads a clock and never
raises on what the modem sends: bytes it cannot make sense of come back as
:class:`Garbage`.

Lines end in CR, LF, CRLF or LFCR (any run of CR and LF ends a line; empty lines are
skipped). A line is one of:

* an echoed command (starts with ``AT``): :class:`Echo`;
* ``RING`` (or ``2`` in numeric mode): :class:`Ring`;
* a result code, verbal or numeric (``V0``): :class:`Result`;
* a formatted caller-ID field ``KEY = value`` (split on the first ``=``, spacing
  tolerated): :class:`CallerIdField`;
* an unformatted caller-ID message (hex, SDMF type 0x04 or MDMF type 0x80, checksum
  verified): :class:`CallerIdMessage`. Some modems wrap a long message over several
  lines (a US Robotics manual shows one cut after 60 hex digits): a hex line shorter
  than the length it declares is joined with the hex lines that follow until it is
  whole; anything else in between makes it :class:`Garbage`;
* other printable text (``ATI`` replies and the like): :class:`TextLine`;
* anything else, a bad hex message, or a line longer than ``max_line`` bytes:
  :class:`Garbage`.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

MAX_LINE = 512

RESULT_CODES: tuple[str, ...] = (
    "OK",
    "CONNECT",
    "NO CARRIER",
    "ERROR",
    "NO DIALTONE",
    "NO DIAL TONE",
    "BUSY",
    "NO ANSWER",
    "VCON",
    "RINGING",
    "DELAYED",
    "BLACKLISTED",
)
"""Verbal result codes other than RING. ``CONNECT`` may carry a rate after a space."""

NUMERIC_CODES: dict[str, str] = {
    "0": "OK",
    "1": "CONNECT",
    "3": "NO CARRIER",
    "4": "ERROR",
    "6": "NO DIALTONE",
    "7": "BUSY",
    "8": "NO ANSWER",
}
"""``V0`` numeric result codes (``2`` is RING). Other numbers are CONNECT rates."""

CALLER_ID_KEYS = frozenset({"DATE", "TIME", "NMBR", "NAME", "DDN_NMBR", "MESG"})

_HEX = frozenset(string.hexdigits)
_PRINTABLE = frozenset(range(0x20, 0x7F)) | frozenset(range(0x80, 0x100)) | {0x09}


@dataclass(frozen=True, slots=True)
class Ring:
    at: float


@dataclass(frozen=True, slots=True)
class Result:
    """A result code. ``code`` is canonical (``NO DIALTONE`` for both spellings,
    ``CONNECT`` with any rate); ``text`` is the line as received."""

    code: str
    text: str
    at: float


@dataclass(frozen=True, slots=True)
class Echo:
    """A command the modem echoed back (echo on, ``E1``)."""

    command: str
    at: float


@dataclass(frozen=True, slots=True)
class CallerIdField:
    """One formatted caller-ID field: ``key`` upper-cased (DATE, TIME, NMBR, NAME,
    DDN_NMBR, MESG), ``value`` stripped of padding."""

    key: str
    value: str
    at: float


@dataclass(frozen=True, slots=True)
class CallerIdMessage:
    """An unformatted (hex) caller-ID message, SDMF or MDMF, checksum verified.

    ``number_absent``/``name_absent`` are the reason codes (``P`` private, ``O`` out of
    area) when the number or name was withheld. ``date`` is ``MMDD``, ``time`` ``HHMM``.
    """

    kind: str  # "SDMF" or "MDMF"
    date: str
    time: str
    number: str
    number_absent: str
    name: str
    name_absent: str
    at: float


@dataclass(frozen=True, slots=True)
class TextLine:
    """A printable line that is none of the above (an ``ATI`` reply, a banner)."""

    text: str
    at: float


@dataclass(frozen=True, slots=True)
class Garbage:
    """Bytes that made no sense; ``reason`` says why."""

    data: bytes
    reason: str
    at: float


ModemEvent = Ring | Result | Echo | CallerIdField | CallerIdMessage | TextLine | Garbage


def decode_text(raw: bytes) -> str:
    """Decode leniently: UTF-8 if it is valid, else Latin-1 (never fails)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


class ModemParser:
    """Turns byte chunks into :data:`ModemEvent` values. Pure; keeps only the partial
    line between calls."""

    def __init__(self, *, max_line: int = MAX_LINE) -> None:
        self._max_line = max_line
        self._buf = bytearray()
        self._discarding = False
        self._hex = ""
        """The first part of a caller-ID hex message wrapped over several lines."""

    def reset(self) -> None:
        """Forget any partial line (the port was closed and opened again)."""
        self._buf.clear()
        self._discarding = False
        self._hex = ""

    def feed(self, data: bytes, now: float) -> list[ModemEvent]:
        events: list[ModemEvent] = []
        for byte in data:
            if byte in (0x0D, 0x0A):
                if self._discarding:
                    self._discarding = False
                elif self._buf:
                    events += self._line(bytes(self._buf), now)
                self._buf.clear()
                continue
            if self._discarding:
                continue
            self._buf.append(byte)
            if len(self._buf) > self._max_line:
                events += self._flush_hex(now)
                events.append(
                    Garbage(
                        bytes(self._buf[: self._max_line]),
                        f"line longer than {self._max_line} bytes",
                        now,
                    )
                )
                self._buf.clear()
                self._discarding = True
        return events

    def _line(self, raw: bytes, now: float) -> list[ModemEvent]:
        """One whole line, joining a caller-ID hex message wrapped over several."""
        if not raw.replace(b"\x00", b"").strip():
            return []  # blank lines (and NUL padding) never cut a wrapped message
        compact = _compact_hex(raw)
        if self._hex:
            if compact is not None and len(compact) % 2 == 0:
                joined = self._hex + compact
                missing = _hex_missing(joined)
                if missing > 0:
                    self._hex = joined
                    return []
                if missing == 0:
                    self._hex = ""
                    return [parse_hex_caller_id(joined, now)]
            events = self._flush_hex(now)
        else:
            events = []
        if compact is not None and len(compact) >= 6 and _hex_missing(compact) > 0:
            self._hex = compact
            return events
        event = parse_line(raw, now)
        return events if event is None else [*events, event]

    def _flush_hex(self, now: float) -> list[ModemEvent]:
        if not self._hex:
            return []
        part, self._hex = self._hex, ""
        return [Garbage(part.encode("ascii"), "caller-ID hex message cut short", now)]


def _compact_hex(raw: bytes) -> str | None:
    """The line's hex digits without spaces, or None if it is not all hex."""
    text = "".join(raw.replace(b"\x00", b"").decode("latin-1").split())
    return text if text and all(c in _HEX for c in text) else None


def _hex_missing(hex_text: str) -> int:
    """Hex digits still missing from an SDMF/MDMF message that starts ``hex_text``
    (negative: too many); 0 for anything that is not the start of one."""
    if len(hex_text) < 4 or len(hex_text) % 2 or hex_text[:2] not in ("04", "80"):
        return 0
    return (int(hex_text[2:4], 16) + 3) * 2 - len(hex_text)


def parse_line(raw: bytes, now: float) -> ModemEvent | None:
    """Classify one line (without its line ending). ``None`` for a blank line."""
    raw = raw.replace(b"\x00", b"")
    stripped = raw.strip()
    if not stripped:
        return None
    if any(b not in _PRINTABLE for b in stripped):
        return Garbage(raw, "control bytes in line", now)
    text = decode_text(stripped)
    upper = text.upper()
    if upper.startswith("AT"):
        return Echo(text, now)
    if upper == "RING" or upper.startswith("RING ") or upper == "2":
        return Ring(now)
    if text.isascii() and text.isdigit() and len(text) <= 3:
        code = NUMERIC_CODES.get(text, "CONNECT")
        return Result(code, text, now)
    for code in RESULT_CODES:
        if upper == code or (code == "CONNECT" and upper.startswith("CONNECT ")):
            return Result("NO DIALTONE" if code == "NO DIAL TONE" else code, text, now)
    if "=" in text:
        key, _, value = text.partition("=")
        key = key.strip().upper().replace(" ", "_")
        if key in CALLER_ID_KEYS:
            return CallerIdField(key, value.strip(), now)
    compact = "".join(text.split())
    if len(compact) >= 6 and all(c in _HEX for c in compact):
        if len(compact) % 2 == 0 and compact[:2] in ("04", "80"):
            return parse_hex_caller_id(compact, now)
        return Garbage(raw, "hex line that is not SDMF or MDMF", now)
    return TextLine(text, now)


def parse_hex_caller_id(hex_text: str, now: float) -> CallerIdMessage | Garbage:
    """Decode an SDMF (0x04) or MDMF (0x80) message from its hex text."""
    raw = hex_text.encode("ascii", "replace")
    try:
        msg = bytes.fromhex(hex_text)
    except ValueError:
        return Garbage(raw, "bad hex", now)
    if len(msg) < 3:
        return Garbage(raw, "caller-ID message too short", now)
    kind, length = msg[0], msg[1]
    if len(msg) != length + 3:
        return Garbage(raw, f"caller-ID length {length} does not match {len(msg) - 3}", now)
    if sum(msg) % 256 != 0:
        return Garbage(raw, "caller-ID checksum does not match", now)
    body = msg[2:-1]
    if kind == 0x04:
        if len(body) < 8:
            return Garbage(raw, "SDMF message shorter than its date and time", now)
        stamp = decode_text(body[:8])
        rest = decode_text(body[8:]).strip()
        number, absent = ("", rest) if rest in ("P", "O") else (rest, "")
        return CallerIdMessage("SDMF", stamp[:4], stamp[4:], number, absent, "", "", now)
    if kind != 0x80:
        return Garbage(raw, f"unknown caller-ID message type 0x{kind:02x}", now)
    params: dict[int, str] = {}
    i = 0
    while i < len(body):
        if i + 2 > len(body):
            return Garbage(raw, "MDMF parameter header cut short", now)
        ptype, plen = body[i], body[i + 1]
        value = body[i + 2 : i + 2 + plen]
        if len(value) != plen:
            return Garbage(raw, f"MDMF parameter 0x{ptype:02x} cut short", now)
        params.setdefault(ptype, decode_text(value).strip())
        i += 2 + plen
    stamp = params.get(0x01, "")
    return CallerIdMessage(
        "MDMF",
        stamp[:4],
        stamp[4:8],
        params.get(0x02, ""),
        params.get(0x04, ""),
        params.get(0x07, ""),
        params.get(0x08, ""),
        now,
    )
