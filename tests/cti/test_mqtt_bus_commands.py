"""`cti serve` and `cti console`: what they say when the broker or the agents are missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from cti.app.cli import main


@pytest.fixture(autouse=True)
def _no_broker_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("CTI_BROKER_URL", "CTI_BROKER_USERNAME", "CTI_BROKER_PASSWORD"):
        monkeypatch.delenv(var, raising=False)


def test_serve_without_a_broker_says_how_to_give_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "--broker" in err
    assert "CTI_BROKER_URL" in err
    assert "cti demo" in err


def test_serve_without_agents_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "center.toml"
    config.write_text("")
    assert main(["serve", "--config", str(config), "--broker", "mqtt://127.0.0.1:1"]) == 2
    assert f"{config} has no [[agents]]" in capsys.readouterr().err


def test_serve_bad_broker_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--broker", "http://x:secret@h"]) == 2
    err = capsys.readouterr().err
    assert "scheme 'http'" in err
    assert "secret" not in err


def test_console_without_a_broker(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["console", "--agent", "1001"]) == 2
    assert "needs the engine's broker" in capsys.readouterr().err


def test_console_bad_agent_id(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["console", "--agent", "10/01", "--broker", "mqtt://h"]) == 2
    assert "'/'" in capsys.readouterr().err
