"""`cti broker-config`: Mosquitto password hashes, the ACL model, kept passwords."""

from __future__ import annotations

import base64
import shutil
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest

from cti import topics
from cti.app.cli import main
from cti.app.commands.broker_config import (
    BrokerUser,
    acl_rules,
    check_password,
    hash_password,
    mosquitto_conf_text,
    parse_listener,
    plan_users,
    read_credentials,
)
from cti.errors import ConfigError


def test_hash_has_mosquitto_2_format_and_checks() -> None:
    hashed = hash_password("s3cret 密码", salt=b"0123456789ab", iterations=101)
    _, seven, iterations, salt, digest = hashed.split("$")
    assert (seven, iterations) == ("7", "101")
    assert base64.b64decode(salt) == b"0123456789ab"
    assert len(base64.b64decode(digest)) == 64
    assert check_password(hashed, "s3cret 密码")
    assert not check_password(hashed, "s3cret")
    assert hash_password("x", iterations=101) != hash_password("x", iterations=101)  # salted


def test_hash_agrees_with_mosquitto_passwd(tmp_path: Path) -> None:
    program = shutil.which("mosquitto_passwd")
    if program is None:
        pytest.fail("mosquitto_passwd is missing: install mosquitto (deploy/system-deps.sh)")
    path = tmp_path / "pw"
    subprocess.run([program, "-c", "-b", str(path), "alice", "pa ss"], check=True)
    hashed = path.read_text().strip().split(":", 1)[1]
    assert hashed.startswith("$7$")
    assert check_password(hashed, "pa ss")
    assert not check_password(hashed, "pass")


def test_check_password_refuses_garbage() -> None:
    assert not check_password("$7$x$y$z", "a")
    assert not check_password("plain", "plain")


def test_acl_model() -> None:
    rules = acl_rules(BrokerUser("1001", "agent", "p"))
    assert ("write", "cti/v1/agents/1001/commands") in rules
    assert ("read", "cti/v1/agents/1001/events") in rules
    assert ("read", "cti/v1/agents/1001/state") in rules
    # Another agent's state names its caller: an agent reads only its colleague view.
    assert not any(topics.matches(pattern, "cti/v1/agents/1002/state") for _, pattern in rules)
    assert ("read", "cti/v1/colleagues/+") in rules  # the transfer and consult dialogs
    assert all("1002" not in pattern for _, pattern in rules)
    assert all(access == "read" or "1001" in pattern for access, pattern in rules)
    sup = acl_rules(BrokerUser("sup1", "supervisor", "p"))
    writes = [pattern for access, pattern in sup if access != "read"]
    assert writes == ["cti/v1/supervisors/sup1/commands"]
    assert ("read", "cti/v1/campaigns/+/status") in sup  # the wallboard's campaigns view
    assert ("read", "cti/v1/engine/health") in sup  # the wallboard's engine alert banner
    assert acl_rules(BrokerUser("e", "engine", "p")) == [("readwrite", "cti/v1/#")]


@pytest.mark.parametrize("bad", ["", "a/b", "a+", "#", "a b", "a:b"])
def test_bad_ids_are_named(bad: str) -> None:
    with pytest.raises(ConfigError, match="agent id"):
        plan_users("cti-engine", [bad], [], {})


def test_one_name_one_role() -> None:
    with pytest.raises(ConfigError, match="both agent and supervisor"):
        plan_users("cti-engine", ["1001"], ["1001"], {})


def test_command_writes_files_and_keeps_passwords(tmp_path: Path) -> None:
    config = tmp_path / "center.toml"
    config.write_text(
        '[[agents]]\nid = "1001"\nqueues = { general = 0 }\n'
        '[[agents]]\nid = "王芳"\nqueues = { general = 0 }\n'
    )
    out = tmp_path / "broker"
    assert (
        main(["broker-config", "--config", str(config), "--out", str(out), "--iterations", "101"])
        == 0
    )
    first = read_credentials(out / "credentials.toml")
    assert set(first) == {"cti-engine", "1001", "王芳"}
    passwd = dict(line.split(":", 1) for line in (out / "passwd").read_text().splitlines())
    assert all(check_password(passwd[user], pw) for user, pw in first.items())
    acl = (out / "acl").read_text()
    assert "user 王芳\ntopic write cti/v1/agents/王芳/commands" in acl
    for name in ("passwd", "acl", "credentials.toml"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600
    roles = tomllib.loads((out / "credentials.toml").read_text())["users"]
    assert roles["王芳"]["role"] == "agent"
    # again, with a supervisor: everyone's password kept, the new user gets one
    args = ["broker-config", "--config", str(config), "--out", str(out), "--supervisor", "sup1"]
    assert main([*args, "--iterations", "101"]) == 0
    second = read_credentials(out / "credentials.toml")
    assert {k: second[k] for k in first} == first
    assert "sup1" in second


def test_command_without_agents_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["broker-config", "--out", str(tmp_path)]) == 2
    assert "no agents" in capsys.readouterr().err


@pytest.mark.security
def test_every_listener_ties_client_ids_to_users(tmp_path: Path) -> None:
    """Generated and shipped configs: `use_username_as_clientid true` right after each
    `listener` (a listener's setting; before any listener it opens a default one)."""
    generated = mosquitto_conf_text(
        tmp_path / "passwd", tmp_path / "acl", [("127.0.0.1", 1883), ("", 8883)]
    )
    shipped = (Path(__file__).parents[2] / "deploy/mosquitto/mosquitto.conf").read_text()
    for text in (generated, shipped):
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and ln[0] != "#"]
        listeners = [i for i, ln in enumerate(lines) if ln.startswith("listener ")]
        assert listeners
        assert all(lines[i + 1] == "use_username_as_clientid true" for i in listeners)
        assert lines.index("use_username_as_clientid true") > listeners[0]
        assert "allow_anonymous false" in lines
    assert parse_listener(":8883") == ("", 8883)
    with pytest.raises(ConfigError, match="--listener"):
        parse_listener("localhost")
