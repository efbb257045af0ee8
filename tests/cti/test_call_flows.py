"""Call flows, opening hours and [caller] in the configuration: what a user can get wrong
is refused with its key, its line and what would be accepted."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from cti.app.cli import main
from cti.call_flows import (
    CallerSettings,
    CallFlow,
    Target,
    flow_for,
    language_for,
    parse_target,
)
from cti.config import load_config
from cti.errors import ConfigError

QUEUES = '[[queues]]\nname = "general"\n[[queues]]\nname = "sales"\n'

GOOD = (
    QUEUES
    + """
[caller]
time_zone = "Europe/London"

[[flows]]
dnis = ["4008001234", "sales"]
language = "zh"
queue = "general"
menu = "main"

[[flows.menus]]
name = "main"
prompt = "menu_main"
keys = { "1" = "queue:sales", "2" = "menu:more", "0" = "voicemail:general", "*" = "repeat" }

[[flows.menus]]
name = "more"
prompt = "menu_more"
after_retries = "hangup"
[flows.menus.keys]
9 = "menu:main"
"#" = "queue:general"

[[flows]]
dnis = ["100"]
greeting = ""
queue = "sales"

[[hours]]
queues = ["sales"]
week = { mon = "13:00-18:00, 09:00-12:00", sat = "" }
holidays = [2026-10-01, "2026-10-02"]
closed = "voicemail"
"""
)


def _load(tmp_path: Path, text: str) -> str:
    """The error message of loading ``text`` (which must fail)."""
    path = tmp_path / "cti.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return str(caught.value)


def test_a_good_file_loads_with_its_flows_hours_and_caller(tmp_path: Path) -> None:
    path = tmp_path / "cti.toml"
    path.write_text(GOOD, encoding="utf-8")
    config = load_config(path)
    first, second = config.flows
    assert first.menu_named("main").keys["*"] == "repeat"
    assert first.after_retries(first.menu_named("main")) == Target("queue", "general")
    assert first.after_retries(first.menu_named("more")) == Target("hangup")
    assert first.queues() == {"sales", "general"}
    assert second.queues() == {"sales"}
    hours = config.hours[0]
    assert hours.week["mon"] == ((540, 720), (780, 1080))  # sorted
    assert hours.week["sat"] == ()
    assert hours.holidays == (date(2026, 10, 1), date(2026, 10, 2))
    assert config.caller.time_zone == "Europe/London"
    assert config.caller.callback_key == "1"
    assert flow_for(config.flows, "sales") is first
    assert flow_for(config.flows, "999") is None


def _flow_file(menu_lines: str, flow_lines: str = "") -> str:
    return (
        QUEUES
        + '\n[[flows]]\ndnis = ["1"]\nqueue = "general"\nmenu = "main"\n'
        + flow_lines
        + '\n[[flows.menus]]\nname = "main"\nprompt = "menu_main"\n'
        + menu_lines
    )


@pytest.mark.parametrize(
    ("menu_lines", "line", "where", "message"),
    [
        ('keys = { "1" = "queue:sales", "2" = "room:x" }\n', 14, "flows.0.menus.0.keys.2",
         "unknown target 'room:x'"),
        ('[flows.menus.keys]\n1 = "queue:sales"\n"A" = "queue:sales"\n', 16,
         "flows.0.menus.0.keys.A", "not a phone key"),
        ('[flows.menus.keys]\n1 = "menu:nowhere"\n', 15, "flows.0.menus.0.keys.1",
         "names no menu"),
        ('[flows.menus.keys]\n4 = "queue:nowhere"\n', 15, "flows.0.menus.0.keys.4",
         "not among the [[queues]]"),
        ('[flows.menus.keys]\n4 = "voicemail:gone"\n', 15, "flows.0.menus.0.keys.4",
         "'gone'"),
        ('after_retries = "repeat"\n', 14, "flows.0.menus.0.after_retries", "never end"),
        ('after_retries = "hangup"\nkeys = { "1" = "repeat" }\n', 9, "flows.0.menu",
         "never reaches a queue"),
        ('after_retries = "menu:main"\nkeys = { "1" = "queue:sales" }\n', 14,
         "flows.0.menus.0.after_retries", "go round (main -> main)"),
        ('keys = { "1" = "queue:" }\n', 14, "flows.0.menus.0.keys.1", "is not a queue name"),
        ("timeout_s = 0\n", 14, "flows.0.menus.0.timeout_s", "greater than 0"),
        ('prompt2 = "x"\n', 14, "flows.0.menus.0.prompt2", "Extra inputs"),
    ],
)  # fmt: skip
def test_a_bad_menu_is_named_with_its_line(
    tmp_path: Path, menu_lines: str, line: int, where: str, message: str
) -> None:
    error = _load(tmp_path, _flow_file(menu_lines))
    assert f"line {line}: {where}: " in error
    assert message in error


@pytest.mark.parametrize(
    ("flow_lines", "line", "where", "message"),
    [
        ('greeting = "../etc/passwd"\n', 10, "flows.0.greeting", "should match pattern"),
        ('language = "fr"\n', 10, "flows.0.language", "'en', 'zh' or 'customer'"),
        ("", 0, "", ""),
    ],
)
def test_a_bad_flow_is_named_with_its_line(
    tmp_path: Path, flow_lines: str, line: int, where: str, message: str
) -> None:
    text = _flow_file('keys = { "1" = "queue:sales" }\n', flow_lines)
    if not flow_lines:
        (tmp_path / "ok.toml").write_text(text, encoding="utf-8")
        assert load_config(tmp_path / "ok.toml").flows[0].dnis == ("1",)
        return
    error = _load(tmp_path, text)
    assert f"line {line}: {where}: " in error
    assert message in error


def test_entry_menu_missing_and_menus_named_twice(tmp_path: Path) -> None:
    text = QUEUES + '[[flows]]\ndnis = ["1"]\nqueue = "general"\nmenu = "mian"\n'
    error = _load(tmp_path, text + '[[flows.menus]]\nname = "main"\nprompt = "p"\n')
    assert "line 8: flows.0.menu: " in error
    assert "'mian' is not among the menus" in error
    twice = '[[flows.menus]]\nname = "mian"\nprompt = "p"\n' * 2
    error = _load(tmp_path, text + twice)
    assert "line 13: flows.0.menus.1.name: " in error
    assert "two menus" in error


def test_dialled_number_in_two_flows_and_twice_in_one(tmp_path: Path) -> None:
    flow = '[[flows]]\ndnis = ["1", "2"]\nqueue = "general"\n'
    error = _load(tmp_path, QUEUES + flow + flow.replace('"1", ', ""))
    assert "line 9: flows.1.dnis.0: " in error
    assert "'2' is in flows 0 and 1" in error
    error = _load(tmp_path, QUEUES + flow.replace('"1"', '"2"'))
    assert "line 6: flows.0.dnis: " in error
    assert "listed twice" in error
    error = _load(tmp_path, QUEUES + '[[flows]]\ndnis = ["a b"]\nqueue = "general"\n')
    assert "flows.0.dnis.0: " in error
    error = _load(tmp_path, QUEUES + '[[flows]]\ndnis = []\nqueue = "general"\n')
    assert "flows.0.dnis: " in error


def test_flow_queue_must_exist(tmp_path: Path) -> None:
    error = _load(tmp_path, QUEUES + '\n[[flows]]\ndnis = ["1"]\nqueue = "genral"\n')
    assert "line 8: flows.0.queue: " in error
    assert "'genral'" in error


@pytest.mark.parametrize(
    ("hours_lines", "line", "where", "message"),
    [
        ('queues = ["nowhere"]\n', 6, "hours.0.queues.0", "not among the [[queues]]"),
        ('queues = ["sales"]\nweek = { mon = "09:00-12:00,11:00-13:00" }\n', 7,
         "hours.0.week.mon", "overlap"),
        ('queues = ["sales"]\nweek = { mon = "22:00-06:00" }\n', 7, "hours.0.week.mon",
         "across midnight"),
        ('queues = ["sales"]\nweek = { mon = "9-12" }\n', 7, "hours.0.week.mon",
         "not a range like"),
        ('queues = ["sales"]\nweek = { mon = "09:00-24:30" }\n', 7, "hours.0.week.mon",
         "24:00 ends a day"),
        ('queues = ["sales"]\n[hours.week]\nmon = "08:00-09:00"\nmonday = "09:00-12:00"\n', 9,
         "hours.0.week.monday.[key]", "'mon', 'tue'"),
        ('queues = ["sales"]\nholidays = ["October 1"]\n', 7, "hours.0.holidays.0",
         "valid date"),
        ('queues = ["sales"]\nclosed = "hangup"\n', 7, "hours.0.closed", "'message' or"),
        ('queues = ["sales", "general"]\n[[hours]]\nqueues = ["general"]\n', 8,
         "hours.1.queues.0", "two [[hours]]"),
    ],
)  # fmt: skip
def test_bad_hours_are_named_with_their_line(
    tmp_path: Path, hours_lines: str, line: int, where: str, message: str
) -> None:
    error = _load(tmp_path, QUEUES + "[[hours]]\n" + hours_lines)
    assert f"line {line}: {where}: " in error
    assert message in error


@pytest.mark.parametrize(
    ("caller_line", "where", "message"),
    [
        ('time_zone = "Mars/Olympus"', "caller.time_zone", "unknown time zone"),
        ('time_zone = "../../etc/passwd"', "caller.time_zone", "unknown time zone"),
        ('callback_key = "12"', "caller.callback_key", "at most 1 character"),
        ('callback_key = "A"', "caller.callback_key", "should match pattern"),
        ('language = "customer"', "caller.language", "'en' or 'zh'"),
        ("voicemail_max_s = 0", "caller.voicemail_max_s", "greater than 0"),
        ('voicemail_key = "1"', "caller.voicemail_key", "is the callback_key too"),
        ('voicemail_key = "99"', "caller.voicemail_key", "at most 1 character"),
    ],
)
def test_bad_caller_settings_are_named_with_their_line(
    tmp_path: Path, caller_line: str, where: str, message: str
) -> None:
    error = _load(tmp_path, f"# the caller\n[caller]\n{caller_line}\n")
    assert f"line 3: {where}: " in error
    assert message in error


def test_config_check_prints_the_line_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(_flow_file('[flows.menus.keys]\n1 = "queue:sales"\n7 = "voicemal:x"\n'))
    assert main(["config", "--check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"config from {bad} is not valid" in err
    assert "line 16: flows.0.menus.0.keys.7: " in err
    assert "unknown target 'voicemal:x'" in err
    good = tmp_path / "good.toml"
    good.write_text(GOOD, encoding="utf-8")
    assert main(["config", "--check", str(good)]) == 0
    assert "2 call flows, 1 opening hours" in capsys.readouterr().out


def test_targets_parse_or_say_what_is_accepted() -> None:
    assert parse_target("queue:sales") == Target("queue", "sales")
    assert parse_target("repeat") == Target("repeat")
    assert str(parse_target("voicemail:general")) == "voicemail:general"
    for bad in ("repeat:x", "queue", "Queue:sales", "", "menu:", "queue:a/b"):
        with pytest.raises(ValueError, match="target"):
            parse_target(bad)


@pytest.mark.parametrize(
    ("flow_language", "customer", "expected"),
    [
        ("customer", "zh-CN", "zh"),
        ("customer", "EN", "en"),
        ("customer", "fr", "zh"),
        ("customer", None, "zh"),
        ("en", "zh", "en"),
    ],
)
def test_language_of_a_call(flow_language: str, customer: str | None, expected: str) -> None:
    flow = CallFlow.model_validate({"dnis": ["1"], "queue": "q", "language": flow_language})
    assert language_for(flow, CallerSettings(language="zh"), customer) == expected


def test_a_queue_language_must_name_a_queue_and_its_line(tmp_path: Path) -> None:
    bad = 'queue_languages = { sales = "zh", nowhere = "en" }'
    text = GOOD.replace('time_zone = "Europe/London"\n', f'time_zone = "Europe/London"\n{bad}\n')
    error = _load(tmp_path, text)
    assert "queue_languages names queue 'nowhere'" in error
    line = text.splitlines().index(bad) + 1
    assert f"line {line}:" in error
