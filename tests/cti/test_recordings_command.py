"""`cti recordings list|export|delete|sweep` on a directory of recordings."""

from __future__ import annotations

import asyncio
import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from cti.app.cli import main
from cti.store.database import Store
from cti.store.recordings import CallRecording, RecordingRows
from telephony_adapters.media.recorder import Recorder, Side


def make(root: Path, day: date, call_id: str, seconds: float = 0.0) -> Path:
    recorder = Recorder(0.0)
    body = recorder.tick(0.0)
    for k in range(round(seconds / 0.02)):
        body += recorder.add(Side.AGENT, bytes(320), k * 0.02)
    summary = recorder.close(seconds)
    data = summary.header + (body + summary.tail)[len(summary.header) :]
    path = root / day.isoformat() / f"{call_id}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_list_export_delete(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "recordings"
    make(root, date(2026, 12, 5), "call-1", 2.0)
    make(root, date(2026, 12, 6), "call-2", 0.5)
    assert main(["recordings", "--dir", str(root), "list", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["call_id"], r["day"], r["duration_s"]) for r in rows] == [
        ("call-1", "2026-12-05", 2.0),
        ("call-2", "2026-12-06", 0.5),
    ]
    assert main(["recordings", "--dir", str(root), "list", "--day", "2026-12-06"]) == 0
    out = capsys.readouterr().out
    assert "call-2" in out
    assert "call-1" not in out
    assert main(["recordings", "--dir", str(root), "export", "call-1", str(tmp_path)]) == 0
    assert (tmp_path / "call-1.wav").read_bytes()[:4] == b"RIFF"
    assert main(["recordings", "--dir", str(root), "delete", "call-1"]) == 0
    assert "the call record stays" in capsys.readouterr().out
    assert not (root / "2026-12-05" / "call-1.wav").exists()
    assert (tmp_path / "call-1.wav").exists()
    assert main(["recordings", "--dir", str(root), "delete", "call-1"]) == 2
    assert "no recording of call 'call-1'" in capsys.readouterr().err


def test_sweep_uses_the_configured_retention(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "recordings"
    today = date.today()
    old = make(root, today - timedelta(days=10), "old")
    new = make(root, today - timedelta(days=3), "new")
    config = tmp_path / "cti.toml"
    config.write_text(f'[voice]\nrecordings_dir = "{root}"\nretention_days = 5\n')
    assert main(["recordings", "--config", str(config), "sweep"]) == 0
    assert "deleted 1 recordings older than 5 days" in capsys.readouterr().out
    assert not old.exists()
    assert new.exists()
    assert main(["recordings", "--dir", str(root), "sweep", "--keep-days", "1"]) == 0
    assert not new.exists()


def test_a_missing_directory_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recordings", "--dir", str(tmp_path / "nowhere"), "list"]) == 2
    assert "nowhere: no such recordings directory" in capsys.readouterr().err


def stored_center(tmp_path: Path) -> tuple[Path, Path]:
    """A config naming a store holding two calls' records and recordings (one paused,
    one failed) and the recordings directory; (config, recordings root)."""
    from tests.cti.test_recording_store import cdr

    root, db = tmp_path / "recordings", tmp_path / "cti.db"
    make(root, date.today(), "call-1", 2.0)
    make(root, date.today(), "call-2", 0.0)

    async def fill() -> None:
        async with await Store.open(db) as store:
            await store.calls.record_call(cdr("call-1"))
            rows = RecordingRows(store)
            await rows.save(CallRecording("call-1", "call-1.wav", 2.0,
                                          ((0.5, 1.0),), finished_wall=1.0))  # fmt: skip
            await rows.save(CallRecording("call-2", error="disk full", finished_wall=2.0))

    asyncio.run(fill())
    config = tmp_path / "cti.toml"
    config.write_text(f'[voice]\nrecordings_dir = "{root}"\n[store]\npath = "{db}"\n')
    return config, root


def test_list_joins_the_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, _root = stored_center(tmp_path)
    assert main(["recordings", "--config", str(config), "list", "--json"]) == 0
    rows = {r["call_id"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["call-1"]["store"]["paused"] == [[0.5, 1.0]]
    assert rows["call-2"]["store"]["status"] == "failed"
    assert main(["recordings", "--config", str(config), "list"]) == 0
    out = capsys.readouterr().out
    assert "[paused 0.5-1.0 s]" in out
    assert "[failed: disk full]" in out


def test_delete_marks_the_store_and_the_record_stays(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, root = stored_center(tmp_path)
    assert main(["recordings", "--config", str(config), "delete", "call-1"]) == 0
    assert "the call record stays; 1 marked deleted" in capsys.readouterr().out
    assert not (root / date.today().isoformat() / "call-1.wav").exists()
    assert main(["recordings", "--config", str(config), "show", "call-1"]) == 0
    out = capsys.readouterr().out
    assert "outcome                answered" in out  # the call record, in full
    assert "agent_id               1001" in out
    assert "recording              2.0 s, paused 0.5-1.0 s; deleted (cti recordings delete)" in out
    assert main(["recordings", "--config", str(config), "show", "call-1", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["record"]["outcome"] == "answered"
    assert shown["recording"]["status"] == "deleted"
    assert main(["recordings", "--config", str(config), "show", "nobody"]) == 2
    assert "has no call 'nobody'" in capsys.readouterr().err


def test_without_a_store_delete_says_nothing_is_marked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _config, root = stored_center(tmp_path)
    assert main(["recordings", "--dir", str(root), "delete", "call-2"]) == 0
    assert "no store given, so none is marked deleted" in capsys.readouterr().out
    assert main(["recordings", "--dir", str(root), "show", "call-1"]) == 2
    assert "show needs the store" in capsys.readouterr().err


def test_sweep_marks_the_swept_deleted_in_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, root = stored_center(tmp_path)
    make(root, date.today() - timedelta(days=10), "call-3")

    async def save() -> None:
        async with await Store.open(tmp_path / "cti.db") as store:
            await RecordingRows(store).save(CallRecording("call-3", finished_wall=3.0))

    asyncio.run(save())
    assert main(["recordings", "--config", str(config), "sweep", "--keep-days", "5"]) == 0
    assert "; 1 marked deleted in" in capsys.readouterr().out

    async def read() -> CallRecording | None:
        async with await Store.open(tmp_path / "cti.db") as store:
            return await RecordingRows(store).get("call-3")

    kept = asyncio.run(read())
    assert kept is not None
    assert kept.deleted_by == "retention"


def test_messages_are_listed_by_kind_exported_and_shown_with_their_callback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, root = stored_center(tmp_path)
    make(root, date.today(), "call-1.message", 3.0)  # call-1 has both
    make(root, date.today(), "call-3.message", 1.0)  # a file the store has no row of

    async def fill() -> None:
        async with await Store.open(tmp_path / "cti.db") as store:
            rows = RecordingRows(store)
            await rows.save(CallRecording("call-1", "call-1.message.wav", 3.0,
                                          finished_wall=3.0, kind="message"))  # fmt: skip
            await rows.attach_message("cb-7", "call-1.message", 4.0)

    asyncio.run(fill())
    assert main(["recordings", "--config", str(config), "list", "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["recording_id"], r["call_id"], r["kind"], r["callback"]) for r in listed] == [
        ("call-1.message", "call-1", "message", "cb-7"),  # by file name
        ("call-1", "call-1", "call", None),
        ("call-2", "call-2", "call", None),
        ("call-3.message", "call-3", "message", None),
    ]
    assert main(["recordings", "--config", str(config), "list", "--kind", "message"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert all("  message " in line for line in lines)
    assert lines[0].endswith("[for callback cb-7]")
    assert main(["recordings", "--dir", str(root), "list", "--kind", "call"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1:3] for line in lines] == [["call", "call-1"], ["call", "call-2"]]
    out = tmp_path / "out"
    out.mkdir()
    args = ["recordings", "--dir", str(root), "export"]
    assert main([*args, "call-1", str(out), "--kind", "message"]) == 0
    assert main([*args, "call-3.message", str(out / "three.wav")]) == 0
    assert main([*args, "call-3.message", str(out / "again.wav"), "--kind", "message"]) == 0
    assert "exported" in capsys.readouterr().out
    assert (out / "call-1.message.wav").read_bytes() == (
        root / date.today().isoformat() / "call-1.message.wav").read_bytes()  # fmt: skip
    assert (out / "three.wav").read_bytes()[:4] == b"RIFF"
    assert main([*args, "call-2", str(out), "--kind", "message"]) == 2
    assert "no recording of call 'call-2.message'" in capsys.readouterr().err
    assert main(["recordings", "--config", str(config), "show", "call-1"]) == 0
    shown = capsys.readouterr().out
    assert "recording              2.0 s, paused 0.5-1.0 s" in shown
    assert "message                3.0 s; [for callback cb-7]" in shown
    assert "message file" in shown
    assert main(["recordings", "--config", str(config), "delete", "call-1", "--kind",
                 "message"]) == 0  # fmt: skip
    assert "1 marked deleted" in capsys.readouterr().out
    assert (root / date.today().isoformat() / "call-1.wav").exists()  # the call's stays
    assert main(["recordings", "--config", str(config), "show", "call-1", "--json"]) == 0
    both = json.loads(capsys.readouterr().out)
    assert both["recording"]["status"] == "recorded"
    assert (both["message"]["status"], both["message"]["callback"]) == ("deleted", "cb-7")
