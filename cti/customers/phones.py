"""A customer's phone number as the customer base stores it: parsed in any format
(``138 0013 8000``, ``+86 10 6552 9988 转 123``) to E.164, with its extension and kind.
"""

from __future__ import annotations

import re

import phonenumbers

from cti.errors import CtiError
from cti.models import PhoneNumber, PhoneType


class PhoneError(CtiError):
    """A customer's phone number that cannot be stored; the message says why."""


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
