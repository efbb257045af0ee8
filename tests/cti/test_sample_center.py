"""The README's "Across terminals" works when followed literally (issue 21): the sample
``deploy/center.toml`` is valid, every ``cti`` command of that section parses, and
``cti broker-config`` on it makes the users the other commands connect as."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest

from cti.app.cli import _parser, main

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "deploy" / "center.toml"


def section_commands() -> list[list[str]]:
    """The ``cti`` command lines of the README's "Across terminals" section."""
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme.split("## Across terminals", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    lines = [shlex.split(line, comments=True) for line in block.splitlines()]
    return [words[1:] for words in lines if words and words[0].endswith("/cti")]


def test_the_sample_config_passes_config_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "--check", str(SAMPLE)]) == 0
    assert "valid (2 queues, 3 agents)" in capsys.readouterr().out


def test_the_readme_commands_parse_and_use_the_sample() -> None:
    commands = section_commands()
    assert [c[0] for c in commands] == ["broker-config", "serve", "console", "supervisor"]
    for argv in commands:
        args = _parser().parse_args(argv)  # an unknown option exits
        assert Path(args.config) == Path("deploy/center.toml")
    serve = _parser().parse_args(commands[1])
    assert serve.simulate > 0


def test_broker_config_on_the_sample_makes_every_user_of_the_readme(tmp_path: Path) -> None:
    commands = section_commands()
    out = tmp_path / "broker"
    argv = [*commands[0]]
    argv[argv.index("--out") + 1] = str(out)
    argv[argv.index("--config") + 1] = str(SAMPLE)
    assert main(argv) == 0
    users = tomllib.loads((out / "credentials.toml").read_text("utf-8"))["users"]
    for argv in commands[1:]:
        broker = argv[argv.index("--broker") + 1]
        user = re.match(r"mqtt://([^:]+):PW@127\.0\.0\.1:1883$", broker)
        assert user is not None, broker
        assert user[1] in users
    assert (out / "passwd").stat().st_mode & 0o077 == 0  # the README's chown step
    assert "listener 1883 127.0.0.1" in (out / "mosquitto.conf").read_text("utf-8")
