"""`cti customers show/search/audit` never send stored text raw to the terminal (issue
17): an old row or a direct database write with ESC, CSI, OSC, BEL or bidi overrides
is printed escaped, so it cannot clear the screen, retitle the window or plant a link."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from cti.app.cli import main

pytestmark = [pytest.mark.security, pytest.mark.customers]

HOSTILE = "Eve\x1b[2J\x1b]0;pwned\x07\x1b]8;;http://evil.example\x1b\\link\x9b31m\u202egnp.exe\n"
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.fixture
def db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    path = str(tmp_path / "cti.db")
    csv = tmp_path / "c.csv"
    csv.write_text("name,mobile\n欧阳雨桐,13812345678\n", encoding="utf-8")
    assert main(["customers", "import", str(csv), "--db", path]) == 0
    with sqlite3.connect(path) as c:  # what an old version or a direct write could leave
        c.execute("UPDATE customers SET name = ?, email = ? WHERE id = 1", (HOSTILE, HOSTILE))
        c.execute(
            "INSERT INTO customer_audit (at, agent_id, action, customer_id, allowed, detail) "
            "VALUES (0, ?, 'show', 1, 1, ?)",
            ("10\x1b[1m01", HOSTILE),
        )
    capsys.readouterr()
    return path


def _no_raw_controls(out: str) -> None:
    found = RAW.search(out)
    assert found is None, f"raw {found.group()!r} at {found.start()} of {out!r}"


@pytest.mark.parametrize(
    "argv",
    [
        ["customers", "show", "1"],
        ["customers", "search", "13812345678"],
        ["customers", "audit"],
        ["customers", "audit", "--customer", "1"],
    ],
    ids=" ".join,
)
def test_stored_text_is_printed_escaped(
    db: str, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--db", db]) == 0
    out, err = capsys.readouterr()
    _no_raw_controls(out)
    _no_raw_controls(err)
    assert r"Eve\x1b[2J\x1b]0;pwned\x07" in out  # shown, escaped: the operator sees it
    assert r"\u202egnp.exe\n" in out


@pytest.mark.parametrize("argv", [["customers", "show", "1", "--json"],
                                  ["customers", "search", "13812345678", "--json"]])  # fmt: skip
def test_json_output_escapes_them_and_reads_back_the_same(
    db: str, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--db", db]) == 0
    out, _ = capsys.readouterr()
    _no_raw_controls(out)
    data = json.loads(out.splitlines()[0])
    customer = data.get("customer", data)
    assert customer["name"] == HOSTILE  # the same value, only written safely
