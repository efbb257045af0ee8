"""`cti phone-credentials`: per-agent SIP passwords in clear for handing out, the HA1
file the line reads (no password in it), kept passwords; the line factory reading it;
`[[agents]] phone`."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from cti.app.cli import main
from cti.app.commands.broker_config import read_credentials
from cti.config import SipLineSettings
from cti.engine.lines import build_line
from cti.errors import ConfigError
from cti.models import AgentConfig
from telephony_adapters.sipline.line import SipLine
from telephony_adapters.sipline.phone_auth import ha1, read_phone_ha1

CONFIG = (
    '[[agents]]\nid = "1001"\nqueues = { general = 0 }\n'
    '[[agents]]\nid = "王芳"\nqueues = { general = 0 }\nphone = "sip:wf@10.0.0.5:5062"\n'
)


def test_command_writes_passwords_and_hashes_and_keeps_passwords(tmp_path: Path) -> None:
    config = tmp_path / "center.toml"
    config.write_text(CONFIG)
    out = tmp_path / "phones"
    assert main(["phone-credentials", "--config", str(config), "--out", str(out)]) == 0
    passwords = read_credentials(out / "phone-credentials.toml")
    assert set(passwords) == {"1001", "王芳"}
    realm, hashes = read_phone_ha1(out / "phone-ha1.toml")
    assert realm == "cti-desk"
    for agent, password in passwords.items():
        for alg in ("MD5", "SHA-256"):
            assert hashes[agent][alg] == ha1(agent, realm, password, alg)
    ha1_text = (out / "phone-ha1.toml").read_text()
    assert all(password not in ha1_text for password in passwords.values())
    for name in ("phone-credentials.toml", "phone-ha1.toml"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600
    # again, another realm and one more agent: passwords kept, hashes follow the realm
    args = ["phone-credentials", "--config", str(config), "--out", str(out), "--agent", "a9"]
    assert main([*args, "--realm", "center.example"]) == 0
    again = read_credentials(out / "phone-credentials.toml")
    assert {k: again[k] for k in passwords} == passwords
    realm, hashes = read_phone_ha1(out / "phone-ha1.toml")
    assert realm == "center.example"
    assert hashes["1001"]["MD5"] == ha1("1001", realm, passwords["1001"], "MD5")
    users = tomllib.loads((out / "phone-credentials.toml").read_text())["users"]
    assert users["a9"]["realm"] == "center.example"


def test_command_refuses_ids_that_cannot_be_sip_users(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["phone-credentials", "--out", str(tmp_path), "--agent", "a@b"]) == 2
    assert "'a@b'" in capsys.readouterr().err
    assert main(["phone-credentials", "--out", str(tmp_path)]) == 2
    assert "no agents" in capsys.readouterr().err


def test_the_line_factory_reads_the_ha1_file_and_fixed_phones(tmp_path: Path) -> None:
    assert main(["phone-credentials", "--out", str(tmp_path), "--agent", "1001"]) == 0
    path = tmp_path / "phone-ha1.toml"
    settings = SipLineSettings(name="sip", bind_port=0, phone_credentials=str(path))
    line = build_line(settings, phones={"a2": "sip:a2@10.0.0.5"})
    assert isinstance(line, SipLine)
    assert set(line.settings.phone_ha1) == {"1001"}
    assert line.settings.phone_realm == "cti-desk"
    assert line.settings.phones == {"a2": "sip:a2@10.0.0.5"}
    path.write_text('realm = "r"\n[agents.x]\nMD5 = "12"\n')
    with pytest.raises(ConfigError, match=r"line 'sip': phone_credentials: .*not an MD5 hash"):
        build_line(settings)
    missing = SipLineSettings(name="sip", phone_credentials=str(tmp_path / "none.toml"))
    with pytest.raises(ConfigError, match="cannot be read"):
        build_line(missing)


def test_agent_phone_must_be_a_sip_uri() -> None:
    assert AgentConfig(id="a1", phone="sip:a1@10.0.0.5:5060").phone == "sip:a1@10.0.0.5:5060"
    for bad in ("tel:123", "sip:a b@host", 'sip:"x"@h', "sip:" + "x" * 300, "sip:a\n@h"):
        with pytest.raises(ValidationError):
            AgentConfig(id="a1", phone=bad)
