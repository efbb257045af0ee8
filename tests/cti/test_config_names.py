"""Names that become MQTT topic levels are refused where they are declared (issue 17):
agent ids, queue names (also an agent's queues) and campaigns follow the protocol's
rules, and the error names the entry; script action arguments are bounded by the model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from cti.app.cli import main
from cti.config import load_config
from cti.errors import ConfigError, ProtocolError, StoreError
from cti.models import AgentConfig, QueueConfig, ScriptAction
from cti.protocol import decode
from cti.store.campaigns import CampaignSettings, CampaignStore
from cti.store.database import Store

pytestmark = pytest.mark.security

BAD = [
    ("a/b", "'/' at character 2"),
    ("a+", "'+' at character 2"),
    ("#", "'#' at character 1"),
    ("a\x00b", "a NUL byte at character 2"),
    ("ab\x1b[2J", "U+001B at character 3"),
    ("x\u202eexe", "a bidirectional override (U+202E) at character 2"),
    ("q" * 300, "at most"),
]


def _toml(text: str) -> str:
    return json.dumps(text)  # a TOML basic string is a JSON string (escapes included)


@pytest.mark.parametrize(("bad", "said"), BAD, ids=repr)
def test_a_bad_agent_id_is_refused_at_load_naming_the_entry(
    tmp_path: Path, bad: str, said: str
) -> None:
    path = tmp_path / "cti.toml"
    path.write_text(f'[[agents]]\nid = "1001"\n[[agents]]\nid = {_toml(bad)}\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    assert "agents.1.id" in text
    assert said in text
    assert repr(bad[:80]) in text  # the bad value shown, escaped
    assert "\x00" not in text
    assert "\x1b" not in text
    assert "\u202e" not in text


@pytest.mark.parametrize(("bad", "said"), BAD, ids=repr)
def test_a_bad_queue_name_is_refused_at_load_naming_the_entry(
    tmp_path: Path, bad: str, said: str
) -> None:
    path = tmp_path / "cti.toml"
    path.write_text(f"[[queues]]\nname = {_toml(bad)}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"queues\.0\.name") as caught:
        load_config(path)
    assert said in str(caught.value)


def test_an_agents_queue_and_an_empty_name_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"queues\.sales/#"):
        AgentConfig(id="1001", queues={"sales/#": 0.0})
    with pytest.raises(ValidationError, match="at least 1 character"):
        QueueConfig(name="")
    with pytest.raises(ValidationError, match="control characters"):
        AgentConfig(id="1001", name="Li\x1b]8;;http://x\x07")
    # Names the protocol accepts stay accepted: spaces and CJK in names, ids as shipped.
    assert QueueConfig(name="售后 服务").name == "售后 服务"
    assert AgentConfig(id="agent.1001@site-a").id == "agent.1001@site-a"


def test_cti_config_check_names_the_bad_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text('[[agents]]\nid = "1001"\nqueues = { general = 0 }\n', encoding="utf-8")
    bad.write_text('[[agents]]\nid = "1001"\n[[agents]]\nid = "10/02"\n', encoding="utf-8")
    assert main(["config", "--check", str(good)]) == 0
    assert "valid (1 queues, 1 agents)" in capsys.readouterr().out
    assert main(["config", "--check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "agents.1.id" in err
    assert "'10/02'" in err
    assert "'/' at character 3" in err


@pytest.mark.parametrize(("bad", "said"), BAD[:6], ids=repr)
async def test_a_campaign_name_or_queue_that_cannot_be_a_topic_level_is_refused(
    tmp_path: Path, bad: str, said: str
) -> None:
    async with await Store.open(tmp_path / "cti.db") as store:
        campaigns = CampaignStore(store)
        with pytest.raises(StoreError, match="campaign name") as caught:
            await campaigns.create_campaign(CampaignSettings(name=bad), 0.0)
        assert said in str(caught.value)
        with pytest.raises(StoreError, match="campaign queue"):
            await campaigns.create_campaign(CampaignSettings(name="spring", queue=bad), 0.0)
        assert await campaigns.campaign_names() == []


def test_script_action_arguments_are_bounded_by_the_model() -> None:
    for value, said in (("x" * 5000, "too long"), ("a\x00b", "control characters")):
        with pytest.raises(ValidationError, match=f"argument 'to'.*{said}"):
            ScriptAction(node="n", action="send_email", args={"to": value})
        with pytest.raises(ValidationError, match="too long"):
            ScriptAction(node="n", action="x", args={"k" * 65: 1})
        # The protocol refuses the same through the model: no second check.
        action = {"node": "n", "action": "send_email", "args": {"to": value}}
        payload = {"type": "save_script_run", "agent_id": "1", "call_id": "c", "script": "s"}
        with pytest.raises(ProtocolError, match=r"script_actions\.0\.args"):
            decode(json.dumps({**payload, "script_actions": [action]}).encode())
    kept = ScriptAction(node="n", action="x", args={"note": "a\tb\nc", "n": 3, "ok": True})
    assert kept.args == {"note": "a\tb\nc", "n": 3, "ok": True}
