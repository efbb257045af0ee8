"""The emulator's pure core: bytes from the line and ``now`` in, bytes to the line and
:class:`Note` values out (see the package's docstring)."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from simulators.modem_emulator.at_commands import (
    Basic,
    CommandError,
    Dial,
    SetRegister,
    read_commands,
)
from simulators.modem_emulator.caller_id import formatted_block, hex_block
from simulators.modem_emulator.chipsets import CHIPSETS, LINE_ENDINGS, NUMERIC_RESULTS, Chipset
from simulators.modem_emulator.script import CallSpec, DialSpec, Script

_CALLER_ID_TOKENS = ("+VCID", "#CID", "-STE")
_MAX_COMMAND = 256


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
        if fmt == "formatted":
            shown, data = formatted_block(
                call.stamp, spec, spaced=self.chipset.spaced, eol=self.eol
            )
        else:
            shown, data = hex_block(fmt, call.stamp, spec, wrap=self.chipset.wrap_hex, eol=self.eol)
        return [Note("caller_id", shown), data]

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
        except CommandError:
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
        for command in read_commands(body):
            if isinstance(command, Dial):
                return out + self._dial(command.dial_string, now)
            if isinstance(command, SetRegister):
                self.settings.registers[command.register] = command.value
            elif command.letter == "A":
                return out + self._answer(now)
            else:
                out += self._basic(command, now)
        out.append(self._result("OK"))
        return out

    def _basic(self, command: Basic, now: float) -> list[bytes | Note]:
        letter, on = command.letter, command.value == 1
        if letter == "Z":
            return self._reset(now)
        if letter == "H":
            return self._hang_up(now)
        if letter == "I":
            return [self.eol + self.chipset.identity.encode() + self.eol]
        if letter == "E" and not self.chipset.stubborn:
            self.settings.echo = on
        elif letter == "V" and not self.chipset.stubborn:
            self.settings.verbose = on
        elif letter == "Q":
            self.settings.quiet = on
        return []

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
