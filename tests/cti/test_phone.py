"""Caller numbers to E.164: the forms lines present, the markers, and garbage."""

from __future__ import annotations

import random
from unittest import mock

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cti.models import CallerKind
from cti.phone import classify, normalise


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("13812345678", "+8613812345678"),
        ("138 1234 5678", "+8613812345678"),
        ("138-1234-5678", "+8613812345678"),
        ("138.1234.5678", "+8613812345678"),
        ("+86 138 1234 5678", "+8613812345678"),
        ("+8613812345678", "+8613812345678"),
        ("0086 138 1234 5678", "+8613812345678"),
        ("  (+86) 138-1234-5678  ", "+8613812345678"),
        ("１３８１２３４５６７８", "+8613812345678"),  # full-width digits
        ("010-12345678", "+861012345678"),
        ("(010) 1234.5678", "+861012345678"),
        ("+86 (0)10 1234 5678", "+861012345678"),
        ("0755 1234 5678", "+8675512345678"),
        ("021-6234-5678", "+862162345678"),
        ("+1 (212) 555-0143", "+12125550143"),
        ("0044 7911 123456", "+447911123456"),
    ],
)
def test_normalise_reads_national_and_international_forms(raw: str, e164: str) -> None:
    assert normalise(raw) == e164
    assert classify(raw) == (CallerKind.UNKNOWN, e164)


@pytest.mark.parametrize(
    "raw",
    ["010-12345678 ext. 99", "010-12345678 x99", "010-12345678#99", "+86 10 1234 5678 ext 7"],
)
def test_extension_is_dropped_for_matching(raw: str) -> None:
    assert normalise(raw) == "+861012345678"


def test_default_region_decides_how_a_national_number_is_read() -> None:
    assert normalise("(212) 555-0143", "US") == "+12125550143"
    assert normalise("020 7946 0123", "GB") == "+442079460123"
    assert normalise("+8613812345678", "US") == "+8613812345678"


@pytest.mark.parametrize(
    "raw", ["", "   ", "P", "p", "Private", "PRIVATE", "anonymous", "Withheld", " O ", "o"]
)
def test_no_number_markers_give_private_and_none(raw: str) -> None:
    assert normalise(raw) is None
    assert classify(raw) == (CallerKind.PRIVATE, None)


@pytest.mark.parametrize("raw", ["hello", "12", "+", "call me", "138123456789012345", "--", "NaN"])
def test_text_that_is_no_number_is_malformed(raw: str) -> None:
    assert normalise(raw) is None
    assert classify(raw) == (CallerKind.MALFORMED, None)


def test_unknown_default_region_is_malformed_not_an_error() -> None:
    assert classify("13812345678", "XX") == (CallerKind.MALFORMED, None)
    assert normalise("+8613812345678", "XX") == "+8613812345678"


@given(st.text())
def test_arbitrary_text_never_raises_and_kinds_agree(raw: str) -> None:
    kind, e164 = classify(raw)
    assert normalise(raw) == e164
    assert (e164 is not None) == (kind is CallerKind.UNKNOWN)
    if e164 is not None:
        assert e164.startswith("+")
        assert e164[1:].isdigit()


@given(st.text(alphabet="0123456789+-.() x#P", max_size=40), st.sampled_from(["CN", "US", "GB"]))
def test_number_like_text_never_raises(raw: str, region: str) -> None:
    kind, e164 = classify(raw, region)
    assert kind in {CallerKind.PRIVATE, CallerKind.MALFORMED, CallerKind.UNKNOWN}
    assert normalise(raw, region) == e164


@given(st.lists(st.sampled_from(["", " ", "-", ".", "  "]), min_size=11, max_size=11))
def test_separators_between_digits_do_not_change_the_number(separators: list[str]) -> None:
    raw = "".join(digit + sep for digit, sep in zip("13812345678", separators, strict=True))
    assert normalise(raw) == "+8613812345678"


def _read_by_phonenumbers(raw: str, region: str) -> tuple[CallerKind, str | None]:
    """What classify gave before its plain-digits path (issue 23): parse, then check."""
    try:
        number = phonenumbers.parse(raw.strip(), region)
    except phonenumbers.NumberParseException:
        return CallerKind.MALFORMED, None
    if not phonenumbers.is_possible_number(number):
        return CallerKind.MALFORMED, None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return CallerKind.UNKNOWN, e164


_REGIONS = ("CN", "US", "GB", "DE", "IT", "FR", "RU", "JP", "HK", "BR", "AR", "AU", "XX", "cn")


@pytest.mark.parametrize("region", _REGIONS)
def test_plain_digits_read_as_phonenumbers_reads_them(region: str) -> None:
    """Every three-digit start (the country codes, the international, national and
    carrier prefixes all lie there) at every length around the possible ones."""
    rng = random.Random(region)
    for start in range(1000):
        for length in (1, 2, 3, 4, 7, 8, 10, 11, 12, 13, 17, 18, 19):
            digits = f"{start:03d}{rng.randrange(10**17):017d}"[:length]
            assert classify(digits, region) == _read_by_phonenumbers(digits, region), digits


@given(st.from_regex(r"\A[0-9]{1,20}\Z"), st.sampled_from(_REGIONS))
def test_any_digits_read_as_phonenumbers_reads_them(digits: str, region: str) -> None:
    assert classify(digits, region) == _read_by_phonenumbers(digits, region)


def test_a_plain_mobile_number_is_not_parsed_generically() -> None:
    # The commonest caller number takes the short path (~4 us warm, not ~25: issue 23).
    with mock.patch.object(phonenumbers, "parse", side_effect=AssertionError("parsed")):
        assert classify("13900001234", "CN") == (CallerKind.UNKNOWN, "+8613900001234")
        assert classify("2125550143", "US") == (CallerKind.UNKNOWN, "+12125550143")
