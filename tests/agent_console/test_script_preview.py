"""``cti script preview``: the script panel in a small app, without a call."""

from __future__ import annotations

import asyncio
import json
from argparse import Namespace
from pathlib import Path

import pytest

from agent_console.script_preview import ScriptPreview, answers_text, run_summary
from cti.app.cli import main
from cti.app.commands.script import preview_app
from cti.models import Customer, PhoneNumber, Segment
from cti.store.database import Store

pytestmark = pytest.mark.console


def args(file: str, customer: int | None = None, db: Path | None = None) -> Namespace:
    return Namespace(file=file, customer=customer, db=db, config=None)


def store_with(path: Path, customer: Customer) -> None:
    async def fill() -> None:
        store = await Store.open(path)
        try:
            await store.add_customers([customer])
        finally:
            await store.close()

    asyncio.run(fill())


def test_preview_walks_a_shipped_script_with_a_customer_from_the_store(tmp_path: Path) -> None:
    db = tmp_path / "cti.db"
    wang = Customer(
        id=5,
        name="王小明",
        phones=(PhoneNumber(raw="+8613800000005", e164="+8613800000005"),),
        value=95,
        segment=Segment.PLATINUM,
    )
    store_with(db, wang)
    app = preview_app(args("inbound_service_zh", customer=5, db=db))
    assert isinstance(app, ScriptPreview)

    async def drive() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            head = str(app.query_one("#preview-head").render())
            assert "客户服务 1.0" in head
            assert "customer 5 王小明" in head
            run = app.current_run
            assert run is not None
            greeting = "".join(s.text for s in run.text())
            assert "请问是王小明吗" in greeting
            assert "‹agent.name?›" in greeting
            await pilot.press("enter", "1")  # billing
            await pilot.press(*"12345678", "enter")  # a platinum customer goes to VIP
            run = app.current_run
            assert run is not None
            assert run.finished
            assert run.node_id == "transferred"
            recorded = str(app.query_one("#preview-answers").render())
            assert 'account: "12345678"' in recorded
            assert "transfer_queue" in recorded
            await pilot.press("ctrl+r")
            assert app.current_run is not None
            assert app.current_run.node_id == "greet"
            await pilot.press("enter", "4")  # do not call
            await pilot.press("q")
        assert app.return_value is not None
        summary = run_summary(app.return_value)
        assert summary["answers"] == {"reason": "dnc"}
        assert [a["action"] for a in summary["actions"]] == ["add_to_dnc"]
        assert json.loads(json.dumps(summary, ensure_ascii=False)) == summary

    asyncio.run(drive())


def test_preview_refuses_a_broken_script_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[script]\nname = "x"\n', encoding="utf-8")
    assert main(["script", "preview", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:1:" in out
    assert "version" in out


def test_preview_names_an_unknown_example_and_a_missing_customer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["script", "preview", "no_such_script"]) == 1
    assert "no shipped script named 'no_such_script'" in capsys.readouterr().out
    missing = tmp_path / "none.db"
    assert main(["script", "preview", "outbound_survey", "--customer", "3", "--db", str(missing)])
    assert f"no store at {missing}" in capsys.readouterr().out
    assert not missing.exists()  # never created by a preview
    db = tmp_path / "cti.db"
    store_with(db, Customer(id=1, name="Ann"))
    assert main(["script", "preview", "outbound_survey", "--customer", "3", "--db", str(db)])
    assert f"no customer 3 in the store at {db}" in capsys.readouterr().out


def test_answers_text_is_plain() -> None:
    assert "none yet" in answers_text(None).plain
