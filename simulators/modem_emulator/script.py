"""Call scripts (TOML, see ``simulators/modem_scripts/``): the calls that ring, how
dialled calls end and the noise sent, with the chipset to play."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator

from cti.errors import SimulationError
from simulators.modem_emulator.chipsets import CHIPSETS, Chipset, SpecModel


class CallSpec(SpecModel):
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


class DialSpec(SpecModel):
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


class Noise(SpecModel):
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


class ModemSettings(SpecModel):
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


class Script(SpecModel):
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
