"""The emulator's modem profiles (chipsets): how each kind of voice modem answers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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


class SpecModel(BaseModel):
    """A profile or a script entry: unknown keys refused, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Chipset(SpecModel):
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
