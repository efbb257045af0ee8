"""Configuration: documented defaults, overrides, and errors that name file and key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from cti.config import Config, default_config_text, load_config
from cti.errors import ConfigError


def test_shipped_defaults_file_equals_the_model_defaults() -> None:
    # The commented defaults file is the documentation: it must say what the code does.
    assert Config.model_validate(tomllib.loads(default_config_text())) == Config()
    assert load_config() == Config()


def test_user_file_overrides_key_by_key(tmp_path: Path) -> None:
    path = tmp_path / "cti.toml"
    path.write_text('[engine]\ndefault_region = "GB"\n[demo]\nbots = 3\n', encoding="utf-8")
    config = load_config(path)
    assert config.engine.default_region == "GB"
    assert config.engine.dispositions == Config().engine.dispositions
    assert config.demo.bots == 3
    assert config.demo.rate_per_hour == Config().demo.rate_per_hour


def test_several_queues_and_dnis_routing(tmp_path: Path) -> None:
    path = tmp_path / "cti.toml"
    path.write_text(
        '[engine.dnis_queues]\n"4008001234" = "vip"\n'
        '[[queues]]\nname = "general"\n[[queues]]\nname = "vip"\npriority = 50\n',
        encoding="utf-8",
    )
    config = load_config(path)
    assert [q.name for q in config.queues] == ["general", "vip"]
    assert config.queue("vip").priority == 50


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("[engine]\nmax_missed_offers = 0\n", ["engine.max_missed_offers", "greater than"]),
        ("[demo]\nbotz = 3\n", ["demo.botz", "Extra inputs"]),
        ('[[queues]]\nname = "a"\naging_rate = 0\n', ["queues.0.aging_rate"]),
        ('[[queues]]\nname = "a"\n', ["undefined queues", "general"]),
        ("[engine\n", ["not valid TOML"]),
        (
            '[[lines]]\nkind = "sip"\nname = "trunk"\ncodecs = ["PCMU", "G729", "opus"]\n',
            ["lines.0.sip.codecs", "'G729', 'opus'", "PCMU and PCMA"],
        ),
        (
            '[[lines]]\nkind = "sip"\nname = "trunk"\ncodecs = []\n',
            ["lines.0.sip.codecs", "no codec"],
        ),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, text: str, fragments: list[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_sip_codecs_are_read_in_any_case_and_kept_in_order(tmp_path: Path) -> None:
    path = tmp_path / "cti.toml"
    text = '[[lines]]\nkind = "sip"\nname = "trunk"\ncodecs = ["pcma", " PCMU", "PCMA"]\n'
    path.write_text(text, encoding="utf-8")
    [line] = load_config(path).lines
    assert line.kind == "sip"
    assert line.codecs == ("PCMA", "PCMU")
