"""What an agent types into the customer base: the check every stored line of text
passes (:func:`text_problem`, :func:`safe_text`) and a new customer from the desk's form
(:func:`new_customer`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_zones

from cti.customers.phones import PhoneError, parse_phone
from cti.customers.search import EMAIL_QUERY
from cti.errors import CtiError
from cti.models import Customer, PhoneNumber

#: What no stored customer text may hold: C0 and C1 controls (NUL, line breaks and
#: escape sequences included), DEL, the bidirectional embeddings, overrides and isolates
#: that make text read other than it is stored ("Trojan Source"), lone surrogates, and
#: U+FFFD (bytes that were not text in the file's encoding).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufffd\ud800-\udfff]")
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def text_problem(text: str) -> str | None:
    """What makes ``text`` unfit to store as one line of customer text (a name, a
    title, a number as entered...), worded to follow the field's name; None if nothing."""
    found = _UNSAFE.search(text)
    if found is None:
        return None
    ch = found[0]
    if ch == "\x00":
        return "holds a NUL byte"
    if ch in "\r\n":
        return "holds a line break (it must be one line)"
    if ch in _BIDI:
        return f"holds a bidirectional control (U+{ord(ch):04X}) that disguises the text"
    if ch == "\ufffd" or "\ud800" <= ch <= "\udfff":
        return "holds bytes that are not text in this encoding"
    return f"holds a control character (U+{ord(ch):04X})"


def safe_text(text: str) -> str:
    """Free text that must be kept (a note, a detail) with the unsafe characters of
    :func:`text_problem` removed; line breaks and tabs stay."""
    return _UNSAFE.sub(lambda m: m[0] if m[0] in "\n\t" else "", text.replace("\r\n", "\n"))


# --- a new customer from the desk ----------------------------------------------------


class CustomerFormError(CtiError):
    """A new customer that cannot be stored as given; the message starts with the field
    (``name: ...``, ``number: ...``, ``e-mail: ...``, ``language: ...``, ``time zone: ...``)."""


#: The longest name, company or address the desk's form accepts.
MAX_FIELD_CHARS = 200
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")
_CHINESE_REGIONS = frozenset({"CN", "HK", "MO", "TW", "SG"})


def new_customer(
    *,
    name: str,
    number: str = "",
    email: str = "",
    company: str = "",
    language: str = "",
    time_zone: str = "",
    default_region: str = "CN",
    default_time_zone: str = "UTC",
) -> Customer:
    """A new customer (id 0) from a form, checked; raises :class:`CustomerFormError`
    naming the first field that is wrong and what would be accepted.

    An empty time zone is the number's (when its country has one zone), else
    ``default_time_zone``; an empty language is ``zh`` for a Chinese-speaking region's
    number, else ``en``.
    """
    shown = " ".join(name.split())
    if not shown:
        raise CustomerFormError("name: empty; type the customer's name")
    if len(shown) > MAX_FIELD_CHARS or len(company) > MAX_FIELD_CHARS:
        field = "name" if len(shown) > MAX_FIELD_CHARS else "company"
        raise CustomerFormError(f"{field}: longer than {MAX_FIELD_CHARS} characters")
    for field, text in (("name", name), ("company", company), ("e-mail", email)):
        problem = text_problem(text)
        if problem is not None:
            raise CustomerFormError(f"{field}: {problem}")
    phones: tuple[PhoneNumber, ...] = ()
    region = ""
    if number.strip():
        try:
            phone = parse_phone(number, default_region)
        except PhoneError as exc:
            raise CustomerFormError(f"number: {exc}") from None
        phones = (phone,)
        region = phonenumbers.region_code_for_number(phonenumbers.parse(phone.e164)) or ""
    address = email.strip()
    if address and not EMAIL_QUERY.match(address):
        raise CustomerFormError(f"e-mail: {address!r} is not an address like name@example.com")
    lang = language.strip()
    if lang and not _LANGUAGE.match(lang):
        raise CustomerFormError(f"language: {lang!r} is not a language code such as zh, en, zh-CN")
    zone = time_zone.strip() or _zone_of(phones) or default_time_zone
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CustomerFormError(
            f"time zone: {zone!r} is not a time zone such as Asia/Shanghai or Europe/London"
        ) from None
    return Customer(
        id=0,
        name=shown,
        phones=phones,
        email=address,
        company=company.strip(),
        language=lang or ("zh" if region in _CHINESE_REGIONS else "en"),
        time_zone=zone,
    )


def _zone_of(phones: Sequence[PhoneNumber]) -> str:
    """The time zone of the first number, when its country or area has exactly one."""
    if not phones:
        return ""
    zones = phone_zones.time_zones_for_number(phonenumbers.parse(phones[0].e164))
    return zones[0] if len(zones) == 1 and zones[0] != "Etc/Unknown" else ""
