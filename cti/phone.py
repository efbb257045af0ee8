"""Caller numbers: from whatever the line presents to E.164, for matching customers.

Lines present numbers in many shapes: national (``13812345678``, ``010-1234 5678``),
international (``+86 ...``, ``0086 ...``), with punctuation, extensions, or a marker
instead of a number (``P`` for private, ``O`` for out of area). These functions accept
any string and never raise.
"""

from __future__ import annotations

import phonenumbers

from cti.models import CallerKind

#: What a line gives instead of a number when the caller's number is not available:
#: withheld by the caller ("P", "Private", ...) or unavailable ("O", out of area).
NO_NUMBER_MARKERS: frozenset[str] = frozenset(
    {
        "p",
        "private",
        "anonymous",
        "withheld",
        "restricted",
        "o",
        "out of area",
        "unavailable",
    }
)


def classify(raw: str, default_region: str = "CN") -> tuple[CallerKind, str | None]:
    """What kind of caller number ``raw`` is, and its E.164 form if it has one.

    Empty input and the markers of :data:`NO_NUMBER_MARKERS` give ``PRIVATE``; other
    input that is not a possible phone number gives ``MALFORMED``; a number gives
    ``UNKNOWN`` with its E.164 form (the caller sets ``KNOWN`` after a lookup).
    National forms are read as numbers of ``default_region``; an extension is dropped.
    """
    text = raw.strip()
    if not text or text.casefold() in NO_NUMBER_MARKERS:
        return CallerKind.PRIVATE, None
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return CallerKind.MALFORMED, None
    if not phonenumbers.is_possible_number(number):
        return CallerKind.MALFORMED, None
    return CallerKind.UNKNOWN, phonenumbers.format_number(
        number, phonenumbers.PhoneNumberFormat.E164
    )


def normalise(raw: str, default_region: str = "CN") -> str | None:
    """``raw`` in E.164 (``+8613812345678``), or None when it holds no usable number."""
    return classify(raw, default_region)[1]
