"""The ``cti`` command line: every subcommand is registered and its help renders."""

from __future__ import annotations

import pytest

from cti.app.cli import _parser, main
from cti.app.commands import command_modules


def _subcommands() -> list[str]:
    parser = _parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert sub.choices is not None
    return sorted(sub.choices)


def test_every_command_module_registers_a_subcommand() -> None:
    names = _subcommands()
    assert len(names) >= len(command_modules())
    for expected in ("demo", "simulate", "erlang", "script", "config"):
        assert expected in names


@pytest.mark.parametrize("argv", [["--help"]] + [[name, "--help"] for name in _subcommands()])
def test_help_renders(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    assert "usage: cti" in capsys.readouterr().out


def test_config_prints_the_default_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config"]) == 0
    assert "[engine]" in capsys.readouterr().out
