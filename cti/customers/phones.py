"""A customer's phone number as the customer base stores it: :func:`cti.phone.parse_phone`
(any format to E.164, with its extension and kind), the one check of every importer.

:func:`parse_customer_phone` answers the common Chinese shapes (``13812345678``,
``+86 138 1234 5678``, ``0086...``, ``86...``, ``010-6234 5678``) from libphonenumber's
own metadata without its general parser, which costs some 70 us a number (most of a
customer import); anything else, and any number the shortcut is not sure of, goes to
:func:`parse_phone`. Its answer is :func:`parse_phone`'s (tests/cti/test_customer_phones.py
compares them on many shapes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import phonenumbers

from cti.models import PhoneNumber, PhoneType
from cti.phone import CHINESE_EXTENSION, PhoneError, parse_phone

__all__ = [
    "CHINESE_EXTENSION",
    "Phone",
    "PhoneError",
    "cn_shortcut",
    "customer_phone",
    "parse_customer_phone",
    "parse_phone",
]

Phone = tuple[str, str, str, str]
"""A number as the import carries it (no model per number): raw, E.164, kind, extension."""

#: Digits with spaces or hyphens between, after an optional ``+`` (ASCII digits only:
#: other digits are libphonenumber's to read).
_SIMPLE = re.compile(r"\+?[0-9][0-9 \-]*")
#: A carrier-selection or international prefix of China (``1[12]xx``, ``179xx``):
#: libphonenumber strips it, so these are left to it.
_CN_CARRIER = re.compile(r"1(?:[12][0-9]|79)")
_KIND_VALUES = {kind: kind.value for kind in PhoneType}  # an enum's .value is a lookup


@dataclass(frozen=True, slots=True)
class _Desc:
    pattern: re.Pattern[str]
    lengths: frozenset[int]


@cache
def _cn_valid() -> dict[int, re.Pattern[str]]:
    """By length, one pattern a Chinese national significant number (trunk prefix
    dropped) matches when libphonenumber finds it valid and reads it as this shortcut
    does: not a second trunk ``0`` nor a carrier prefix (:data:`_CN_CARRIER`), China's
    general description (a lookahead), and any number type that allows the length."""
    general, types = _cn_descs()
    patterns = {}
    for length in general.lengths or range(1, 18):
        allowed = [t.pattern.pattern for t in types if not t.lengths or length in t.lengths]
        if allowed:
            alternatives = "|".join(f"(?:{pattern})" for pattern in allowed)
            patterns[length] = re.compile(
                f"(?!0|{_CN_CARRIER.pattern})(?=(?:{general.pattern.pattern})\\Z)(?:{alternatives})"
            )
    return patterns


@cache
def _cn_descs() -> tuple[_Desc, tuple[_Desc, ...]]:
    """China's general description and the descriptions of its number types."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("CN")
    assert metadata is not None

    def desc(found: phonenumbers.PhoneNumberDesc | None) -> _Desc | None:
        if found is None or found.national_number_pattern is None:
            return None
        lengths = frozenset(found.possible_length or ())
        return _Desc(re.compile(found.national_number_pattern), lengths)

    kinds = (
        "mobile",
        "fixed_line",
        "premium_rate",
        "toll_free",
        "shared_cost",
        "voip",
        "personal_number",
        "pager",
        "uan",
        "voicemail",
    )  # fmt: skip (valid: any of them)
    general = desc(metadata.general_desc)
    assert general is not None
    types = tuple(d for kind in kinds if (d := desc(getattr(metadata, kind))) is not None)
    return general, types


def _cn_national(digits: str, plus: bool) -> str | None:
    """The national significant number of a Chinese number in a simple shape, or None
    when libphonenumber would read it by a rule this shortcut leaves to it."""
    if plus:
        national = digits[2:] if digits.startswith("86") else None
    elif digits.startswith("0086"):
        national = digits[4:]
    elif digits.startswith("86"):
        national = _cn_after_86(digits)
    elif digits.startswith("00"):
        national = None  # another country's international prefix
    else:
        national = digits
    if national is None:
        return None
    if national.startswith("0"):  # the trunk prefix
        national = national[1:]
    valid = _cn_valid().get(len(national))
    return national if valid is not None and valid.fullmatch(national) else None


def _cn_after_86(digits: str) -> str | None:
    """The rest of a number written ``86...`` without ``+`` when libphonenumber reads
    the 86 as China's country code, or None when it may not: it does when the whole is
    too long for China, or when the whole does not fit China's general pattern and the
    rest does (``861062345678``). A rest that starts with a trunk ``0`` or a carrier
    prefix, which libphonenumber would strip first, is left to it."""
    rest = digits[2:]
    if len(digits) == 13:
        return rest
    if rest.startswith("0") or _CN_CARRIER.match(rest):
        return None
    general = _cn_descs()[0].pattern
    return rest if general.fullmatch(rest) and not general.fullmatch(digits) else None


def parse_customer_phone(
    raw: str, default_region: str, kind: PhoneType = PhoneType.MOBILE
) -> PhoneNumber:
    """:func:`cti.phone.parse_phone`'s answer, sooner for the common shapes (module
    docstring). Raises :class:`PhoneError` saying what is wrong."""
    text, e164, kind_value, extension = customer_phone(raw, default_region, kind)
    return PhoneNumber(raw=text, e164=e164, kind=PhoneType(kind_value), extension=extension)


def customer_phone(raw: str, default_region: str, kind: PhoneType = PhoneType.MOBILE) -> Phone:
    """:func:`parse_customer_phone`'s answer as a :data:`Phone`."""
    text = raw.strip()
    if default_region == "CN" and (e164 := cn_shortcut(text)) is not None:
        return text, e164, _KIND_VALUES[kind], ""
    phone = parse_phone(raw, default_region, kind)
    return phone.raw, phone.e164, phone.kind.value, phone.extension


def cn_shortcut(text: str) -> str | None:
    """The E.164 form of ``text`` (stripped), a number of default region CN without an
    extension, when the shortcut answers it (module docstring); else None: then
    :func:`parse_phone` must (a valid number in another shape, or an invalid one)."""
    if text.isdigit() and text.isascii():  # most: digits alone
        national = _cn_national(text, False)
    elif _SIMPLE.fullmatch(text):
        digits = text.replace(" ", "").replace("-", "")
        national = _cn_national(digits.lstrip("+"), text[0] == "+")
    else:
        return None
    return None if national is None else "+86" + national
