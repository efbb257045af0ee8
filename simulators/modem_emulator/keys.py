"""The keys of the ``cti modem-emulator`` terminal and the calls they ring."""

from __future__ import annotations

from simulators.modem_emulator.script import CallSpec

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
