"""The customer import's phone shortcut (cti.customers.phones.parse_customer_phone) gives
what libphonenumber's parser gives (cti.phone.parse_phone), on many shapes."""

from __future__ import annotations

import random

import pytest

from cti.customers.phones import PhoneError, parse_customer_phone, parse_phone
from cti.models import PhoneNumber, PhoneType

pytestmark = pytest.mark.customers

PREFIXES = ("", "", "+86", "+86 ", "0086", "0086 ", "86", "86 ", "0", "00", "+", "+1", "+44",
            "17951", "12593", "11", "179", "086", "8686", "+860", "+86 0", "0086 0")  # fmt: skip
LEADS = ("13", "14", "15", "16", "17", "18", "19", "10", "11", "12", "2", "20", "21", "3", "4",
         "400", "5", "6", "7", "8", "80", "86", "9", "0", "1")  # fmt: skip


def shapes(rng: random.Random, n: int) -> list[str]:
    """Numbers as people and files write them, valid or not, with spaces and hyphens."""
    found = []
    for _ in range(n):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(2, 12)))
        body = rng.choice(LEADS) + digits
        text = rng.choice(PREFIXES) + body
        if rng.random() < 0.4:
            cut = sorted(rng.sample(range(1, len(text)), min(2, len(text) - 1)))
            sep = rng.choice(" -")
            text = sep.join((text[: cut[0]], text[cut[0] : cut[-1]], text[cut[-1] :]))
        found.append(rng.choice(("", " ")) + text)
    return found


def reference(raw: str, region: str) -> PhoneNumber | str:
    try:
        return parse_phone(raw, region, PhoneType.HOME)
    except PhoneError as exc:
        return f"error: {exc}"


def shortcut(raw: str, region: str) -> PhoneNumber | str:
    try:
        return parse_customer_phone(raw, region, PhoneType.HOME)
    except PhoneError as exc:
        return f"error: {exc}"


@pytest.mark.parametrize("seed", range(4))
def test_the_shortcut_answers_as_libphonenumber_does(seed: int) -> None:
    rng = random.Random(seed)
    numbers = shapes(rng, 5000) + [
        f"{p}{m}" for p in ("", "+86", "0086", "86", "+86 ", "+86-")
        for m in (f"1{rng.randint(3, 9)}{rng.randrange(10**9):09d}" for _ in range(200))
    ]  # fmt: skip
    numbers += [  # an 86 before a national number of any length (86 10 6234 5678)
        f"86{lead}{rng.randrange(10**9):09d}"[: rng.randint(7, 14)]
        for lead in LEADS
        for _ in range(40)
    ]
    wrong = [(n, shortcut(n, "CN"), reference(n, "CN")) for n in numbers
             if shortcut(n, "CN") != reference(n, "CN")]  # fmt: skip
    assert wrong == []


def test_the_common_shapes_take_the_shortcut(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(raw: str, region: str, kind: PhoneType = PhoneType.MOBILE) -> PhoneNumber:
        raise AssertionError(f"{raw!r} went to libphonenumber")

    monkeypatch.setattr("cti.customers.phones.parse_phone", refused)
    for raw in ("13812345678", "138 1234 5678", "138-1234-5678", "+86 138 1234 5678",
                "+8613812345678", "0086 138 1234 5678", "8613812345678", "010-6234 5678",
                "01062345678", "+86 10 6234 5678", "861062345678", "86 10 6234 5678"):  # fmt: skip
        phone = parse_customer_phone(raw, "CN")
        assert phone.e164 in ("+8613812345678", "+861062345678")
        assert (phone.raw, phone.extension) == (raw, "")


def test_other_regions_and_shapes_go_to_libphonenumber() -> None:
    assert parse_customer_phone("(415) 555-2671", "US").e164 == "+14155552671"
    assert parse_customer_phone("１３８１２３４５６７８", "CN").e164 == "+8613812345678"
    assert parse_customer_phone("010-62345678 转 12", "CN").extension == "12"
    with pytest.raises(PhoneError, match="not a valid number of CN"):
        parse_customer_phone("12345", "CN")
