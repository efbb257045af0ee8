"""Caller numbers: from whatever the line presents to E.164, for matching customers.

Lines present numbers in many shapes: national (``13812345678``, ``010-1234 5678``),
international (``+86 ...``, ``0086 ...``), with punctuation, extensions, or a marker
instead of a number (``P`` for private, ``O`` for out of area). These functions accept
any string and never raise. :func:`parse_phone` is stricter, for numbers a person
enters (a customer's, a lead's, a do-not-call entry): a number that cannot be dialled
is refused with the reason.
"""

from __future__ import annotations

import functools
import re

import phonenumbers
from phonenumbers.phonemetadata import PhoneMetadata

from cti.errors import CtiError
from cti.models import CallerKind, PhoneNumber, PhoneType

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
    number = _plain_national(text, default_region)
    if number is not None:
        return _possible_e164(number)
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return CallerKind.MALFORMED, None
    return _possible_e164(number)


def _possible_e164(number: phonenumbers.PhoneNumber) -> tuple[CallerKind, str | None]:
    if not phonenumbers.is_possible_number(number):
        return CallerKind.MALFORMED, None
    return CallerKind.UNKNOWN, phonenumbers.format_number(
        number, phonenumbers.PhoneNumberFormat.E164
    )


@functools.lru_cache(maxsize=64)
def _region_prefixes(region: str) -> tuple[int, str, list[re.Pattern[str]]] | None:
    """The region's country code, its digits, and the prefixes that make
    ``phonenumbers.parse`` read a national number as more than its digits (the
    international call prefix, the national prefix and carrier codes); None for a
    region it does not know."""
    metadata = PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.country_code is None or metadata.international_prefix is None:
        return None
    prefixes = [metadata.international_prefix, metadata.national_prefix_for_parsing]
    patterns = [re.compile(prefix) for prefix in prefixes if prefix]
    return metadata.country_code, str(metadata.country_code), patterns


def _plain_national(text: str, region: str) -> phonenumbers.PhoneNumber | None:
    """What ``phonenumbers.parse(text, region)`` gives for the commonest caller number,
    plain ASCII digits in national form, without its generic reading (~15 of
    ``classify``'s ~25 us warm, for every new caller: issue 23): the region's country
    code and the digits as they are, when nothing in them could be read as more (a
    leading zero, the region's country code, international or national prefix; a
    length outside 3-17). None: any other text, read by ``phonenumbers.parse``
    (tests/cti/test_phone.py checks both give the same)."""
    if not (text.isascii() and text.isdigit()) or text[0] == "0" or not 3 <= len(text) <= 17:
        return None
    known = _region_prefixes(region)
    if known is None:
        return None
    country_code, code_digits, patterns = known
    if text.startswith(code_digits) or any(p.match(text) for p in patterns):
        return None
    return phonenumbers.PhoneNumber(country_code=country_code, national_number=int(text))


def normalise(raw: str, default_region: str = "CN") -> str | None:
    """``raw`` in E.164 (``+8613812345678``), or None when it holds no usable number."""
    return classify(raw, default_region)[1]


# --- numbers as people enter them: every importer and form checks them here -----------


class PhoneError(CtiError):
    """A number entered (a customer's, a lead's) that cannot be used; the message says why."""


CHINESE_EXTENSION = re.compile(r"\s*(?:转|轉|分机|分機)\s*")
_DASHED_EXTENSION = re.compile(r"^(.*\d)\s*[-–]\s*(\d{1,6})$")
_REASONS = {
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "the country code is not valid",
    phonenumbers.ValidationResult.TOO_SHORT: "too few digits",
    phonenumbers.ValidationResult.TOO_LONG: "too many digits",
    phonenumbers.ValidationResult.INVALID_LENGTH: "the number of digits is not possible",
}


def parse_phone(raw: str, default_region: str, kind: PhoneType = PhoneType.MOBILE) -> PhoneNumber:
    """A customer's number as entered, checked and normalised to E.164.

    National forms are read as numbers of ``default_region``; ``+86``, ``0086`` and
    (for China) ``86`` prefixes, a trunk ``0`` and punctuation all give the same E.164.
    An extension (``ext. 12``, ``x12``, ``转12``, or ``-12`` after a complete number) is
    kept apart. Raises :class:`PhoneError` saying what is wrong.
    """
    text = raw.strip()
    if not text:
        raise PhoneError("empty number")
    if not any(ch.isdigit() for ch in text):
        raise PhoneError(f"{raw!r} has no digits")
    text = CHINESE_EXTENSION.sub(" ext. ", text)
    try:
        number = _parse(text, default_region)
    except PhoneError:
        dashed = _DASHED_EXTENSION.match(text)
        if dashed is None:
            raise
        number = _parse(dashed[1], default_region)
        number.extension = dashed[2]
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return PhoneNumber(raw=raw.strip(), e164=e164, kind=kind, extension=number.extension or "")


def _parse(text: str, default_region: str) -> phonenumbers.PhoneNumber:
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise PhoneError(f"{text!r} is not a phone number ({_parse_reason(exc)})") from None
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason in _REASONS:
        raise PhoneError(f"{text!r}: {_REASONS[reason]}")
    if not phonenumbers.is_valid_number(number):
        region = phonenumbers.region_code_for_country_code(number.country_code or 0)
        raise PhoneError(f"{text!r} is not a valid number of {region} (+{number.country_code})")
    return number


def _parse_reason(exc: phonenumbers.NumberParseException) -> str:
    return {
        phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
        phonenumbers.NumberParseException.TOO_SHORT_NSN: "too few digits",
        phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too few digits",
        phonenumbers.NumberParseException.TOO_LONG: "too many digits",
    }.get(exc.error_type, "not a number")
