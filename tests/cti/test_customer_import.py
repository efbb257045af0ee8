"""CSV import and export: bad rows by line, merges by number, orders, round trip, CLI."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from rich.cells import cell_len

import cti.customers.csv_files as customer_import
from cti.app.cli import main
from cti.customers.base import CustomerBase
from cti.customers.csv_export import export_customers, export_orders
from cti.customers.csv_files import (
    CsvImportError,
    ImportReport,
    check_header,
    import_customers,
    import_orders,
    read_csv,
)
from cti.models import PhoneType, Segment
from cti.store.database import Store

pytestmark = pytest.mark.customers

NOW = 1_767_600_000.0  # 2026-01-05 08:00 UTC
HEADER = "id,name,mobile,home_phone,email,company,language,time_zone\n"


@pytest.fixture
async def base(tmp_path: Path) -> AsyncIterator[CustomerBase]:
    async with await Store.open(tmp_path / "cti.db") as store:
        yield CustomerBase(store)


def write(tmp_path: Path, text: str, name: str = "in.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


async def load(base: CustomerBase, path: Path, encoding: str = "utf-8-sig") -> ImportReport:
    names, rows, _ = read_csv(path, encoding)
    kind = check_header(names, path)
    report = ImportReport(kind)
    if kind == "customers":
        await import_customers(
            base, rows, default_region="CN", time_zone="Asia/Shanghai", now=NOW, report=report
        )
    else:
        await import_orders(
            base,
            rows,
            default_region="CN",
            time_zone="Asia/Shanghai",
            now=NOW,
            report=report,
        )
    return report


async def test_every_bad_row_is_reported_by_line_and_the_rest_imported(
    base: CustomerBase, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        HEADER
        + ",张伟,138 1234 5678,,zhang.wei@example.com,,zh,\n"  # 2
        + ",Bad Phone,12345,,,,,\n"  # 3
        + ',"Two\nLines",139 0000 1111,,not-mail,,,Mars/Base\n'  # 4-5
        + "\n"  # 6: blank, skipped
        + ",Too Many,13700000000,,,,,,x\n"  # 7
        + ",,13600000000,,,,,\n"  # 8: a new customer needs a name
        + "abc,Bad Id,,,,,,\n"  # 9
        + ",José Núñez,+44 20 7946 0958,010-6234 5678 转 8,,Acme,en,Europe/London\n"  # 10
        + ",Bad Lang,,,,,中文,\n",  # 11
    )
    report = await load(base, path)
    errors = {e.line: e.reason for e in report.errors}
    assert sorted(errors) == [3, 4, 5, 7, 8, 9, 11]
    assert "mobile: '12345' is not a valid number of CN" in errors[3]
    assert errors[4].startswith("a quote opened on this line closes only on line 5")
    assert errors[5] == "a quote opened on this line is never closed"  # read again
    assert "9 fields, 1 more than the header's 8" in errors[7]
    assert "name is empty" in errors[8]
    assert "id 'abc'" in errors[9]
    assert "language '中文'" in errors[11]
    assert (report.rows, report.created, report.updated) == (9, 2, 0)  # blank line: no row
    jose = (await base.search("nunez"))[0]
    assert [(p.e164, p.kind, p.extension) for p in jose.phones] == [
        ("+442079460958", PhoneType.MOBILE, ""),
        ("+861062345678", PhoneType.HOME, "8"),
    ]
    assert (jose.company, jose.language, jose.time_zone) == ("Acme", "en", "Europe/London")
    zhang = (await base.search("张伟"))[0]
    assert zhang.time_zone == "Asia/Shanghai"  # the default for new customers


async def test_undecodable_bytes_and_nul_report_their_row(
    base: CustomerBase, tmp_path: Path
) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(
        HEADER.encode()
        + b",\xd5\xc5\xce\xb0,13812345678,,,,,\n"  # GBK bytes in a UTF-8 file
        + b",Nul\x00Name,13900001111,,,,,\n"
        + ",李静,13700000000,,,,,\n".encode()
    )
    report = await load(base, path)
    assert [e.line for e in report.errors] == [2, 3]
    assert "not text in this encoding" in report.errors[0].reason
    assert report.created == 1


async def test_bom_and_gb18030_files(base: CustomerBase, tmp_path: Path) -> None:
    bom = write(tmp_path, HEADER + ",张伟,13812345678,,,,zh,\n", "bom.csv", "utf-8-sig")
    assert (await load(base, bom)).created == 1
    gbk = write(tmp_path, HEADER + ",章伟,13912345678,,,,zh,\n", "gbk.csv", "gb18030")
    assert (await load(base, gbk, "gb18030")).created == 1
    assert [c.name for c in await base.search("伟")] == ["张伟", "章伟"]


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        ("name,mobil\n", "unknown columns ['mobil']"),
        ("mobile,email\n", "missing columns ['name']"),
        ("name,name\n", "columns given twice ['name']"),
        ("customer,amount\n", "missing columns ['ordered_at']"),
        ("", "is empty"),
    ],
)
def test_a_bad_header_stops_the_file_and_names_the_columns(
    tmp_path: Path, header: str, fragment: str
) -> None:
    path = write(tmp_path, header)

    def read_header() -> None:
        names, _, _ = read_csv(path)
        check_header(names, path)

    with pytest.raises(CsvImportError, match=re.escape(fragment)):
        read_header()


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CsvImportError, match="cannot read"):
        read_csv(tmp_path / "nope.csv")


async def test_duplicates_merge_by_normalised_number(base: CustomerBase, tmp_path: Path) -> None:
    first = write(tmp_path, HEADER + ",张伟,138 1234 5678,,a@example.com,,zh,\n", "1.csv")
    await load(base, first)
    again = write(
        tmp_path,
        HEADER
        + ",张伟,+86 138-1234-5678,010 6234 5678,b@example.com,华为,,\n"  # 2: same person
        + ",张伟,0086 10 6234 5678,,,,,Asia/Hong_Kong\n",  # 3: by the new home number
        "2.csv",
    )
    report = await load(base, again)
    assert (report.created, report.updated) == (0, 2)
    assert [(m.line, m.customer_id, m.by) for m in report.merges] == [
        (2, 1, "+8613812345678"),
        (3, 1, "+861062345678"),
    ]
    [zhang] = await base.search("张伟")
    assert [p.e164 for p in zhang.phones] == ["+8613812345678", "+861062345678"]
    assert (zhang.email, zhang.other_emails) == ("a@example.com", ("b@example.com",))
    assert (zhang.company, zhang.language, zhang.time_zone) == ("华为", "zh", "Asia/Hong_Kong")


async def test_a_number_shared_under_another_name_is_kept_apart(
    base: CustomerBase, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        HEADER
        + ",张伟,138 1234 5678,010 6234 5678,,,,\n"  # 2
        + ",章伟,,010-62345678,,,,\n"  # 3: sound-alike name, family phone: apart
        + ",,010-62345678,,x@example.com,,,\n",  # 4: no name: which of the two?
    )
    report = await load(base, path)
    assert [(n.line, n.customer_id, n.others) for n in report.kept_apart] == [(3, 2, (1,))]
    [error] = report.errors
    assert error.line == 4
    assert "the new customer of line 2 and the new customer of line 3" in error.reason
    by_id = await load(base, write(tmp_path, HEADER + "1,,010-62345678,,,国美,,\n", "id.csv"))
    assert [(m.line, m.customer_id, m.by) for m in by_id.merges] == [(2, 1, "id")]
    numbered = await load(base, write(tmp_path, HEADER + ",,010-62345678,,,,,\n", "n.csv"))
    assert "customer 1 and customer 2" in numbered.errors[0].reason
    assert sorted(c.name for c in await base.search("010 6234 5678")) == ["张伟", "章伟"]
    first = await base.get(1)
    assert first is not None
    assert first.company == "国美"


async def test_a_refused_row_is_no_customer_to_be_kept_apart_from(
    base: CustomerBase, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        HEADER
        + ",,138 1234 5678,,,,,\n"  # 2: no name, a new customer: refused
        + ",张伟,138 1234 5678,,,,,\n"  # 3: the same number: nobody else holds it
        + ",李娜,138 1234 5678,,,,,\n",  # 4: kept apart from 张伟 alone
    )
    report = await load(base, path)
    assert [e.line for e in report.errors] == [2]
    assert [(n.line, n.customer_id, n.others) for n in report.kept_apart] == [(4, 2, (1,))]


async def test_merges_across_batches(
    base: CustomerBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(customer_import, "BATCH_ROWS", 2)
    monkeypatch.setattr(customer_import, "YIELD_ROWS", 1)
    rows = "".join(f",客户{i},1380000000{i % 3},,,,,\n" for i in range(7))
    report = await load(base, write(tmp_path, HEADER + rows))
    # Same number, different names: kept apart across batches too.
    assert report.created == 7
    assert len(report.kept_apart) == 4
    again = "".join(f",客户{i},1380000000{i % 3},,,,,\n" for i in range(7))
    report = await load(base, write(tmp_path, HEADER + again, "again.csv"))
    assert (report.created, report.updated) == (0, 7)
    assert await base.store.customer_count() == 7


async def test_orders_import_by_id_number_and_email_and_rescore(
    base: CustomerBase, tmp_path: Path
) -> None:
    await load(
        base,
        write(
            tmp_path,
            HEADER
            + ",张伟,13812345678,,zw@example.com,,,\n"
            + ",李静,13912345678,010 6234 5678,,,,\n"
            + ",李婧,13712345678,010 6234 5678,,,,\n",
            "c.csv",
        ),
    )
    orders = write(
        tmp_path,
        "customer,ordered_at,amount,currency,reference\n"
        '1,2025-12-20,"¥1,234.50",CNY,SO-1\n'  # 2
        "#2,2025-12-30T10:00:00+08:00,300,CNY,SO-2\n"  # 3
        "138 1234 5678,2025-11-01,99.5,CNY,SO-3\n"  # 4
        "ZW@example.com,2025-10-01,10,,SO-4\n"  # 5
        "010 6234 5678,2025-10-01,10,,SO-5\n"  # 6: two customers have it
        "99,2025-10-01,10,,SO-6\n"  # 7
        "1,yesterday,10,,SO-7\n"  # 8
        "1,2025-10-01,ten,,SO-8\n"  # 9
        "李静,2025-10-01,10,,SO-9\n",  # 10: a name is not enough
        "o.csv",
    )
    report = await load(base, orders)
    errors = {e.line: e.reason for e in report.errors}
    assert sorted(errors) == [6, 7, 8, 9, 10]
    assert "ambiguous: customers 2, 3" in errors[6]
    assert "no customer '99'" in errors[7]
    assert "ordered_at 'yesterday'" in errors[8]
    assert "amount 'ten'" in errors[9]
    assert (report.created, report.rescored) == (4, 2)
    assert [o.amount for o in await base.orders(1)] == [1234.5, 99.5, 10.0]
    zhang = await base.get(1)
    assert zhang is not None
    assert zhang.value > 0
    assert zhang.segment is not Segment.PLATINUM
    explanation = await base.explain(1)
    assert explanation is not None
    assert explanation.factors[1].detail == "3 orders in 365 days"
    again = await load(base, orders)
    assert (again.created, again.updated) == (0, 4)  # same references: nothing new


async def test_export_import_round_trip_with_wide_characters(
    base: CustomerBase, tmp_path: Path
) -> None:
    source = write(
        tmp_path,
        HEADER + ',欧阳雨桐,138 1234 5678; 139 1234 5678,010-6234 5678 转 8,"y@example.com;'
        ' z@example.org",北京星辰科技,zh,Asia/Shanghai\n'
        + ',"[bold]Markup[/bold], ""Test""",+44 20 7946 0958,,,,en,Europe/London\n'
        + ",𠀋𠀌 Zoë Núñez,+1 212 555 0123,,,,en,America/New_York\n"
        + ",爱新觉罗启星,,,,,,\n",
        "source.csv",
    )
    await load(base, source)
    first = io.StringIO()
    assert await export_customers(base, first) == 4
    exported = tmp_path / "exported.csv"
    exported.write_text(first.getvalue(), encoding="utf-8-sig", newline="")
    async with await Store.open(tmp_path / "other.db") as other_store:
        other = CustomerBase(other_store)
        report = await load(other, exported)
        assert (report.created, report.errors) == (4, [])
        second = io.StringIO()
        await export_customers(other, second)
        assert second.getvalue() == first.getvalue()
        originals = [c async for batch in base.all_customers() for c in batch]
        copies = [c async for batch in other.all_customers() for c in batch]
        strip = {"phones"}
        assert [c.model_dump(exclude=strip) for c in copies] == [
            c.model_dump(exclude=strip) for c in originals
        ]
        assert [[(p.e164, p.kind, p.extension) for p in c.phones] for c in copies] == [
            [(p.e164, p.kind, p.extension) for p in c.phones] for c in originals
        ]
    assert "𠀋𠀌 Zoë Núñez" in first.getvalue()


async def test_orders_export(base: CustomerBase, tmp_path: Path) -> None:
    await load(base, write(tmp_path, HEADER + ",张伟,13812345678,,,,,\n", "c.csv"))
    await load(
        base,
        write(tmp_path, "customer,ordered_at,amount,reference\n1,2025-12-20,12.5,SO-1\n", "o.csv"),
    )
    out = io.StringIO()
    assert await export_orders(base, out, "Asia/Shanghai") == 1
    assert out.getvalue().splitlines() == [
        "customer,ordered_at,amount,currency,reference",
        "#1,2025-12-20T00:00:00+08:00,12.50,,SO-1",
    ]


def test_cli_import_search_show_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "cli.db")
    good = write(tmp_path, HEADER + ",欧阳雨桐,13812345678,,,,zh,\n,Bad,12345,,,,,\n")
    assert main(["customers", "import", str(good), "--db", db]) == 1
    out, err = capsys.readouterr()
    assert "1 new customers" in out
    assert f"{good}: line 3: mobile: '12345'" in err
    assert main(["customers", "search", "雨桐", "--db", db]) == 0
    out, _ = capsys.readouterr()
    header, row = out.splitlines()
    assert row.startswith("1   欧阳雨桐  +8613812345678")
    assert header.index("numbers") == row.index("+86") + 4  # 4 wide characters, 8 cells
    assert main(["customers", "search", "nobody", "--db", db]) == 1
    assert main(["customers", "show", "1", "--db", db]) == 0
    out, _ = capsys.readouterr()
    assert out.startswith("#1  欧阳雨桐\n")
    assert main(["customers", "show", "9", "--db", db]) == 2
    assert "no customer 9" in capsys.readouterr().err
    assert main(["customers", "rescore", "--db", db]) == 0
    assert "1 customers scored" in capsys.readouterr().out
    exported = tmp_path / "out.csv"
    assert main(["customers", "export", str(exported), "--db", db]) == 0
    assert exported.read_bytes().startswith(b"\xef\xbb\xbfid,name,")
    assert main(["customers", "import", str(tmp_path / "missing.csv"), "--db", db]) == 2


def test_cli_rescore_aligns_wide_segment_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "cli.db")
    config = tmp_path / "cti.toml"
    config.write_text(
        '[customers]\nsegment_names = ["白金", "gold", "银卡客户", "bronze", "普通"]\n',
        encoding="utf-8",
    )
    good = write(tmp_path, HEADER + ",王小明,13812345678,,,,zh,\n")
    assert main(["customers", "import", str(good), "--db", db, "--config", str(config)]) == 0
    capsys.readouterr()
    assert main(["customers", "rescore", "--db", db, "--config", str(config)]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert [row.split()[0] for row in rows] == ["白金", "gold", "银卡客户", "bronze", "普通"]
    # the counts line up in terminal cells: a Chinese character takes two
    ends = {cell_len(row[: row.index("%") + 1]) for row in rows}
    assert len(ends) == 1, rows


def test_cli_search_says_when_more_match_than_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``customers search`` stopped at 20 silently (issue 21): it says more match and how
    to see them; ``--limit`` shows more."""
    db = str(tmp_path / "cli.db")
    rows = "".join(f",王小{i},1381234{i:04d},,,,zh,\n" for i in range(25))
    assert main(["customers", "import", str(write(tmp_path, HEADER + rows)), "--db", db]) == 0
    capsys.readouterr()
    assert main(["customers", "search", "王小", "--db", db]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1 + 20
    assert "the first 20 shown: more match (--limit to see more)" in err
    assert main(["customers", "search", "王小", "--db", db, "--limit", "30"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1 + 25
    assert not err
    assert main(["customers", "search", "王小", "--db", db, "--json", "--limit", "5"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 5
    assert "the first 5 shown: more match" in err


async def test_new_customers_in_bulk_are_searchable_and_scored_as_a_rescore_would(
    base: CustomerBase, tmp_path: Path
) -> None:
    rows = "".join(f",欧阳明月{i},1390000000{i},,m{i}@example.com,星辰科技,,\n" for i in range(5))
    report = await load(base, write(tmp_path, HEADER + rows))
    assert (report.created, report.rescored) == (5, 5)
    assert len(await base.search("明月")) == 5  # the 1-2 character index
    assert len(await base.search("欧阳明")) == 5  # the trigram index
    assert len(await base.search("星辰科")) == 5  # the company
    assert [c.id for c in await base.search("m3@example.com")] == [4]
    imported = await base.get_many([1, 2, 3, 4, 5])
    await base.rescore(NOW)
    assert await base.get_many([1, 2, 3, 4, 5]) == imported
    inputs = await base.stored_value_inputs(1)
    assert inputs is not None
    assert inputs.scored_at == NOW
