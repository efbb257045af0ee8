"""`cti recordings list|export|delete|sweep` on a directory of recordings."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from cti.app.cli import main
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
