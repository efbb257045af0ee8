"""Bounded field types shared by the wire protocol and the configuration.

Ids and names become MQTT topic levels (``cti/v1/agents/<id>/events``,
``cti/v1/queues/<name>/status``): a ``/``, ``+``, ``#``, NUL or other control character in
one makes the broker refuse the publish or disconnect the engine. So an agent id or a
queue name is checked the same way whether a command carries it (:mod:`cti.protocol`) or
the configuration declares it (:mod:`cti.models`): one definition, here.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

from cti import topics

#: Longest id: agent, supervisor, command, call, client ids.
MAX_ID_CHARS = topics.MAX_ID_CHARS
#: Longest name of a queue or campaign.
MAX_NAME_CHARS = 128
#: Longest one-line text (a reason, a disposition, a number) and multi-line text (a note).
MAX_LINE_CHARS = 200
MAX_TEXT_CHARS = 4000

BIDI = "\u202a-\u202e\u2066-\u2069"
"""Bidirectional embeddings, overrides and isolates (a character class body)."""
CONTROL = re.compile(f"[\x00-\x1f\x7f-\x9f{BIDI}]")
"""Refused in one line of text: C0 and C1 controls (ESC, CSI...) and bidi overrides."""
CONTROL_MULTILINE = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{BIDI}]")
"""As :data:`CONTROL` but tab, line feed and carriage return pass."""
_TOPIC_CHARS = re.compile(r"[/+#]")


def _char(ch: str) -> str:
    if ch == "\x00":
        return "a NUL byte"
    if "\u202a" <= ch <= "\u202e" or "\u2066" <= ch <= "\u2069":
        return f"a bidirectional override (U+{ord(ch):04X})"
    if ch.isprintable() and not ch.isspace():
        return f"{ch!r}"
    return f"U+{ord(ch):04X}"


def _check_id(value: str) -> str:
    if topics.ID_CHARS.fullmatch(value) is None:
        at, ch = next((i, c) for i, c in enumerate(value) if topics.ID_CHARS.fullmatch(c) is None)
        raise ValueError(
            f"{_char(ch)} at character {at + 1}: an id takes letters, digits and _ . : @ ~ = -"
        )
    return value


def _refuse_controls(pattern: re.Pattern[str]) -> AfterValidator:
    def check(value: str) -> str:
        found = pattern.search(value)
        if found is not None:
            raise ValueError(
                f"{_char(found.group())} at character {found.start() + 1}: control "
                "characters and bidirectional overrides are refused"
            )
        return value

    return AfterValidator(check)


def _check_name(value: str) -> str:
    found = _TOPIC_CHARS.search(value)
    if found is not None:
        raise ValueError(f"{found.group()!r} at character {found.start() + 1}: not in a name")
    return value


Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS), AfterValidator(_check_id)]
"""A required id (``1001``, ``sup1``, a uuid, ``sim-t3k2abcd-7``)."""
OptionalId = Annotated[str, Field(max_length=MAX_ID_CHARS), AfterValidator(_check_id)]
"""An id, or empty for none."""
# The length limit comes after the validator: pydantic drops a field's own smaller
# ``Field(max_length=...)`` when the type's constraints come before a validator.
OneLine = Annotated[str, _refuse_controls(CONTROL), Field(max_length=MAX_LINE_CHARS)]
"""One line of text: no control characters (tab and newline included), no bidi overrides.
A field may set a smaller ``max_length``."""
MultiLine = Annotated[str, _refuse_controls(CONTROL_MULTILINE), Field(max_length=MAX_TEXT_CHARS)]
"""Text that may hold tabs and line breaks (a note, a detail); nothing else of control."""
Name = Annotated[OneLine, Field(max_length=MAX_NAME_CHARS), AfterValidator(_check_name)]
"""A queue or campaign name (empty: the default or none): one line, without ``/``, ``+``
or ``#`` (names are topic levels)."""
RequiredName = Annotated[
    str,
    Field(min_length=1, max_length=MAX_NAME_CHARS),
    _refuse_controls(CONTROL),
    AfterValidator(_check_name),
]
"""A name that must be given (a configured queue, a campaign)."""
WireInt = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
WireFloat = Annotated[float, Field(allow_inf_nan=False, ge=-1e15, le=1e15)]
RecordId = Annotated[int, Field(ge=1, le=2**63 - 1)]
"""A row id of the store (customer, service item)."""


# --- text the engine writes ------------------------------------------------------------
# What a sender chooses (commands, an agent's presence) is refused whole when it does not
# fit the types above, the field named (docs/mqtt.md, "Hostile input"). Events the engine
# writes carry text from lines and the store: that text is neutralised and clipped
# instead (:func:`clean_text`), so a hostile caller name never stops an offer.


def clean_text(text: str, *, multiline: bool = False, max_length: int = MAX_TEXT_CHARS) -> str:
    """``text`` made safe to show: bidirectional overrides removed, other control
    characters (but tab and line breaks when ``multiline``) replaced by U+FFFD, cut to
    ``max_length`` characters (the last one then ``…``)."""
    pattern = CONTROL_MULTILINE if multiline else CONTROL
    if pattern.search(text) is not None:
        text = re.sub(f"[{BIDI}]", "", text)
        text = pattern.sub("\ufffd", text)
    if len(text) > max_length:
        text = text[: max_length - 1] + "…"
    return text


def _clean(max_length: int, *, multiline: bool = False) -> BeforeValidator:
    return BeforeValidator(
        lambda v: (
            clean_text(v, multiline=multiline, max_length=max_length) if isinstance(v, str) else v
        )
    )


EventLine = Annotated[str, _clean(MAX_LINE_CHARS)]
"""One line of text in an event the engine writes (a reason, a caller's name): cleaned
and clipped, never refused (:func:`clean_text`)."""
EventText = Annotated[str, _clean(MAX_TEXT_CHARS, multiline=True)]
