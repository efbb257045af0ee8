"""The import worker's quick check of a plain customer row (cti.customers.csv_quick)
gives the message the full check (parse_customer_row, then the worker's tuple) gives,
or leaves the row to it: for plain rows, hostile rows and any mix of their cells."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cti.customers import csv_quick
from cti.customers.csv_files import RowError, parse_customer_row
from cti.customers.csv_quick import quick_checker
from cti.customers.merge import alone_columns

pytestmark = pytest.mark.customers

ZONE = "Asia/Shanghai"
NAMES = [
    "id", "name", "mobile", "home_phone", "work_phone", "other_phone", "email", "company",
    "address", "language", "time_zone", "owner",
]  # fmt: skip
CELLS: dict[str, list[str]] = {
    "id": ["", "", "", "42", "#7", "x", "0"],
    "name": [
        "",
        "欧阳雨桐",
        "王伟",
        "José Núñez",
        "ZOË  Smith",
        "Ａｎｎ",
        "O'Brien",
        "=HYPERLINK(1)",
        "Eve\u202egnp.exe",
        "Ni\x00l",
        "a\tb",
        "\u0301",
        "x" * 501,
        "李" * 300,
        "Bad \udcff",
        "김민준",
        "Ἀθηνᾶ",
    ],
    "mobile": [
        "",
        "13812345678",
        "138 1234 5678",
        "138-1234-5678",
        "+86 138 1234 5678",
        "0086 138 1234 5678",
        "86 13812345678",
        "861062345678",
        "12345",
        "+44 20 7946 0958",
        "138 1234 5678; 139 1234 5678",
        "１３８１２３４５６７８",
        "13812345678 转 8",
        "+",
        "-",
        "00 86 138",
        "11812345678",
        "+8613812345678",
    ],
    "home_phone": ["", "010-6234 5678", "01062345678", "13812345678", "62345678", "0"],
    "email": [
        "",
        "c1@example.com",
        "C1@Example.COM",
        "bad",
        "a@b.c; d@e.f",
        " x@y.z",
        "a@b.c；A@B.C",
    ],
    "company": ["", "北京星辰科技", "Acme Ltd", "Café Müller", "'+SUM(1)", "王伟"],
    "address": ["", "Main St 1", "1 Road\nTown"],
    "language": ["", "zh", "en", "zh-CN", "z", "english", "zh_Hans"],
    "time_zone": ["", "Asia/Shanghai", "Europe/London", "Mars/Base", "../etc", "UTC"],
    "owner": ["", "1003", "\x07"],
}


def full(line: int, cells: dict[str, str]) -> Any:
    """What the worker sends for a row checked in full."""
    row = parse_customer_row(line, cells, "CN")
    if isinstance(row, RowError):
        return row
    columns = None if row.id is not None else alone_columns(row, ZONE)
    return (row.line, row.id, tuple(row.phones), tuple(row.emails), row.fields, row.name_key,
            columns)  # fmt: skip


CELLS["work_phone"] = CELLS["other_phone"] = CELLS["home_phone"]
CHECKERS: dict[tuple[str, ...], Any] = {}


def cells_of(picks: dict[str, int], names: list[str]) -> dict[str, str]:
    return {n: CELLS[n][picks[n] % len(CELLS[n])] for n in names}


@settings(max_examples=3000, deadline=None)
@given(
    picks=st.fixed_dictionaries({n: st.integers(0, 40) for n in NAMES}),
    columns=st.lists(st.sampled_from(NAMES), min_size=1, max_size=len(NAMES), unique=True),
)
def test_the_quick_check_gives_the_full_checks_message_or_none(
    picks: dict[str, int], columns: list[str]
) -> None:
    names = sorted(set(columns) | {"name"}, key=NAMES.index)
    cells = cells_of(picks, names)
    # One check per header, kept across examples: its caches (zones, names) grow.
    checker = CHECKERS.setdefault(tuple(names), quick_checker(names, "CN", ZONE))
    quick = checker(3, cells)
    assert quick is None or quick == full(3, cells)


def test_plain_rows_are_checked_quickly_and_others_left_to_the_full_check() -> None:
    names = ["name", "mobile", "home_phone", "email", "company", "language", "time_zone"]
    quick = quick_checker(names, "CN", ZONE)
    plain = dict(zip(names, ["王伟", "138 1234 5678", "861062345678", "w@example.com",
                             "", "zh", ""], strict=True))  # fmt: skip
    checked = quick(2, plain)
    assert checked == full(2, plain)
    assert checked is not None
    assert checked[2] == (
        ("138 1234 5678", "+8613812345678", "mobile", ""),
        ("861062345678", "+861062345678", "home", ""),
    )
    for column, cell in [("mobile", "12345"), ("email", "a@b.c; d@e.f"), ("name", "a\tb"),
                         ("time_zone", "Mars/Base"), ("mobile", "+44 20 7946 0958")]:  # fmt: skip
        assert quick(2, plain | {column: cell}) is None
    assert quick_checker(names, "GB", ZONE)(2, plain) is None  # the shortcut is China's


def test_the_codes_known_good_are_checked_once_and_kept_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(csv_quick, "_MAX_CODES", 2)
    checked: list[str] = []
    codes_ok = csv_quick._codes_ok

    def spy(cells: dict[str, str], zones: set[str]) -> bool:
        checked.append(cells["language"])
        return codes_ok(cells, zones)

    monkeypatch.setattr(csv_quick, "_codes_ok", spy)
    quick = quick_checker(["name", "language"], "CN", ZONE)
    for language in ["zh", "en", "de", "zh", "en", "de", "x"]:
        row = quick(2, {"name": "Ann", "language": language})
        assert (row is None) == (language == "x")
    assert checked == ["zh", "en", "de", "de", "x"]  # a third pair is not kept (a bound)
