"""``cti voice-demo`` without phones: its work folder, configuration and printout (the
softphone registering and talking is tests/media/test_voice_demo.py)."""

from __future__ import annotations

import asyncio
import io
import tomllib
from pathlib import Path

import pytest

from cti.app.cli import main
from cti.app.commands.phone_credentials import CREDENTIALS, HA1_FILE
from cti.app.voice_demo import CONFIG_FILE, VoiceDemoOptions, run_voice_demo, write_config
from cti.config import SipLineSettings
from telephony_adapters.sipline.phone_auth import ha1, read_phone_ha1
from tests.harness import until
from tests.media.test_voice_demo import printed


def test_the_config_has_one_sip_line_with_the_agent_as_its_md5_phone(tmp_path: Path) -> None:
    options = VoiceDemoOptions(tmp_path / "work", host="127.0.0.2", port=5070, agent="2001")
    config = write_config(options)
    (line,) = config.lines
    assert isinstance(line, SipLineSettings)
    assert (line.bind_host, line.bind_port, line.phone_algorithms) == ("127.0.0.2", 5070, ("MD5",))
    assert Path(line.phone_credentials) == (tmp_path / "work" / HA1_FILE).absolute()
    assert [a.id for a in config.agents] == ["2001"]
    (flow,) = config.flows  # the demo flow: greeting, then the menu
    assert (flow.dnis, flow.greeting, flow.menu_named(flow.menu).prompt) == (
        ("support",), "greeting", "menu_main")  # fmt: skip
    assert flow.queues() == {"general", "sales", "support"}  # general: no key at all
    assert config.voice.recordings_dir == str((tmp_path / "work" / "recordings").absolute())
    assert (tmp_path / "work" / CONFIG_FILE).is_file()


def test_it_prints_the_account_and_keeps_the_password_from_run_to_run(tmp_path: Path) -> None:
    options = VoiceDemoOptions(tmp_path / "work", port=0)

    async def once() -> dict[str, str]:
        out = io.StringIO()
        task = asyncio.create_task(run_voice_demo(options, out, desk=False))
        await until(lambda: "call " in out.getvalue() or task.done())
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return printed(out.getvalue())

    first = asyncio.run(once())
    assert first["user"] == "1001"
    assert first["registrar"].startswith("127.0.0.1:")
    assert first["call"] == f"sip:support@{first['registrar']}"
    realm, hashes = read_phone_ha1(tmp_path / "work" / HA1_FILE)
    assert hashes["1001"]["MD5"] == ha1("1001", realm, first["password"], "MD5")
    second = asyncio.run(once())
    assert second["password"] == first["password"]
    kept = tomllib.loads((tmp_path / "work" / CREDENTIALS).read_text("utf-8"))
    assert kept["users"]["1001"]["password"] == first["password"]


@pytest.mark.parametrize(
    ("args", "said"),
    [(["--agent", "a b"], "cannot be a SIP user"), (["--port", "70000"], "--port")],
)
def test_bad_arguments_are_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], said: str
) -> None:
    assert main(["voice-demo", "--dir", str(tmp_path), "--no-desk", *args]) != 0
    assert said in capsys.readouterr().err
