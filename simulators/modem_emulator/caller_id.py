"""Caller ID as a modem sends it between the rings: formatted (``NMBR = ...``) or as
SDMF/MDMF messages in hex."""

from __future__ import annotations

from simulators.modem_emulator.script import CallSpec


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


def hex_block(fmt: str, stamp: str, spec: CallSpec, *, wrap: int, eol: bytes) -> tuple[str, bytes]:
    """``fmt`` (``sdmf`` or ``mdmf``) as the modem sends it, wrapped after ``wrap`` hex
    digits (0: one line); with what to show of it."""
    text = (
        sdmf_hex(stamp, spec.number) if fmt == "sdmf" else mdmf_hex(stamp, spec.number, spec.name)
    )
    parts = [text[i : i + wrap] for i in range(0, len(text), wrap)] if wrap else [text]
    body = eol.join(p.encode("ascii") for p in parts)
    return f"{fmt.upper()} {text}", eol + body + eol


def formatted_block(stamp: str, spec: CallSpec, *, spaced: bool, eol: bytes) -> tuple[str, bytes]:
    """``DATE``, ``TIME``, ``NMBR`` (or ``DDN_NMBR``) and ``NAME`` lines, ``=`` spaced or
    not; with what to show of them."""
    eq = " = " if spaced else "="
    fields = [("DATE", stamp[:4]), ("TIME", stamp[4:8])]
    if spec.number:
        fields.append(("DDN_NMBR" if spec.ddn else "NMBR", spec.number))
    if spec.name is not None:
        fields.append(("NAME", spec.name))
    lines = [f"{k}{eq}{v}".encode() for k, v in fields]
    shown = ", ".join(f"{k}={v}" for k, v in fields[2:]) or "date and time only"
    return shown, eol + eol.join(lines) + eol
