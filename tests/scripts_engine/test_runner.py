"""The runner: answers, typed checks, branches, effects, back, resume; safe text."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError

from cti.errors import ScriptError
from cti.models import CallerInfo, CallerKind, Customer, PhoneNumber, Segment
from scripts_engine import runner
from scripts_engine.expr import Scalar
from scripts_engine.model import FieldType, InputNode, Script
from scripts_engine.runner import AnswerError, RunState, check_input
from scripts_engine.text import TemplateError, render, segments, template_variables
from scripts_engine.validate import parse_script, require_clean

EXAMPLES = Path(__file__).parents[2] / "scripts_engine" / "examples"


@pytest.fixture
def service() -> Script:
    return require_clean(EXAMPLES / "inbound_service_en.toml")


@pytest.fixture
def survey() -> Script:
    return require_clean(EXAMPLES / "outbound_survey.toml")


def gold_context() -> dict[str, Scalar]:
    customer = Customer(
        id=7,
        name="Ann",
        segment=Segment.GOLD,
        value=80,
        email="ann@example.com",
        phones=(PhoneNumber(raw="555", e164="+15550001"),),
    )
    caller = CallerInfo(ani="5550001", kind=CallerKind.KNOWN, customer=customer)
    return runner.context_for(caller=caller, agent_name="Bo", call_id="c1", queue="service")


def test_context_from_models() -> None:
    ctx = gold_context()
    assert ctx["customer.name"] == "Ann"
    assert ctx["customer.segment"] == "gold"
    assert ctx["customer.phone"] == "+15550001"
    assert ctx["call.ani"] == "5550001"
    assert "campaign.name" not in ctx


def test_walk_to_a_vip_transfer(service: Script) -> None:
    s = runner.start(service, gold_context())
    assert s.node_id == "greet"
    assert not s.finished
    assert render(service.nodes["greet"].text, s.values()).startswith(  # type: ignore[union-attr]
        "Thank you for calling, this is Bo. Am I speaking with Ann?"
    )
    s = runner.advance(s)
    s = runner.answer(s, "billing")
    with pytest.raises(AnswerError, match="does not match the pattern"):
        runner.answer(s, "12ab")
    s = runner.answer(s, " 1234567 ")
    assert s.finished
    assert s.node_id == "transferred"
    assert s.answers == {"reason": "billing", "account": "1234567"}
    assert [e.action for e in s.effects] == ["transfer_queue"]
    assert [st.node for st in s.path] == [
        "greet",
        "reason",
        "account",
        "billing_route",
        "vip_transfer",
        "transferred",
    ]
    with pytest.raises(ScriptError, match="ended"):
        runner.answer(s, 1)


def test_basic_customer_takes_the_default_branch(service: Script) -> None:
    s = runner.start(service, {"customer.segment": "basic"})
    s = runner.answer(runner.advance(s), 1)
    s = runner.answer(s, "1234567")
    assert s.node_id == "billing_done"
    assert [t.text for t in s.text()] == [
        "I have noted your billing question on account ",
        "1234567",
        ".",
    ]


def test_effects_fill_variables_and_back_undoes_them(service: Script) -> None:
    s = runner.advance(runner.start(service, gold_context()))
    s = runner.answer(s, "fault")
    s = runner.answer(s, "2024-02-29")
    s = runner.answer(s, "是")
    s = runner.answer(s, "(555) 123-4567")
    assert s.node_id == "resolved"
    assert s.answers["callback_phone"] == "5551234567"
    assert s.answers["wants_callback"] is True
    assert s.effects[0].args == {"after_minutes": 120, "phone": "5551234567"}
    b = runner.back(s)
    assert b.node_id == "callback_phone"
    assert b.effects == []
    assert "callback_phone" not in b.answers
    b = runner.back(b)
    assert b.node_id == "fault_callback"
    assert "wants_callback" not in b.answers
    s2 = runner.answer(b, "no")
    assert s2.node_id == "resolved"
    assert s2.effects == []
    s3 = runner.answer(s2, "no")
    assert s3.finished
    assert [e.action for e in s3.effects] == ["set_disposition", "send_email"]
    assert s3.effects[1].args["to"] == "ann@example.com"


def test_back_at_the_start_is_an_error(service: Script) -> None:
    s = runner.start(service)
    with pytest.raises(ScriptError, match="nothing to go back to"):
        runner.back(s)
    assert runner.back(runner.advance(s)).node_id == "greet"


def test_wrong_moves(service: Script) -> None:
    s = runner.start(service)
    with pytest.raises(ScriptError, match="takes no answer"):
        runner.answer(s, "x")
    s = runner.advance(s)
    with pytest.raises(ScriptError, match="needs an answer"):
        runner.advance(s)
    with pytest.raises(AnswerError, match=r"choose 1\.\.4"):
        runner.answer(s, 9)
    with pytest.raises(AnswerError, match="not one of the choices"):
        runner.answer(s, "pizza")


def test_resume_from_json_keeps_the_version(service: Script) -> None:
    s = runner.answer(runner.advance(runner.start(service, gold_context())), "cancel")
    saved = json.loads(json.dumps(s.to_dict(), ensure_ascii=False))
    # the file changes after the call started: the run keeps the version it began with
    changed = service.model_copy(
        update={"script": service.meta.model_copy(update={"version": "9"})}
    )
    assert changed.meta.version == "9"
    resumed = RunState.from_dict(saved)
    assert resumed == s
    assert resumed.version == "1.0"
    done = runner.answer(resumed, 3)
    assert done.finished
    assert done.effects[0].args == {"disposition": "cancel_requested"}
    with pytest.raises(ScriptError, match="not a saved script run"):
        RunState.from_dict({"path": []})
    bad = dict(saved, path=[{"node": "ghost", "answer": None, "answered": False, "effects": []}])
    with pytest.raises(ScriptError, match="does not have"):
        RunState.from_dict(bad)


def test_the_zh_twin_runs_the_same_way() -> None:
    zh = require_clean(EXAMPLES / "inbound_service_zh.toml")
    en = require_clean(EXAMPLES / "inbound_service_en.toml")
    assert zh.nodes.keys() == en.nodes.keys()
    s = runner.advance(runner.start(zh, {"customer.name": "王芳"}))
    assert render(zh.nodes["goodbye"].text, s.values()) == "感谢您的来电，王芳，再见。"  # type: ignore[union-attr]
    s = runner.answer(s, "取消服务")
    s = runner.answer(s, "8")
    assert s.node_id == "offer"  # no segment known: not basic


def inp(**kw: object) -> InputNode:
    return InputNode.model_validate({"kind": "input", "text": "?", "next": "x", **kw})


@pytest.mark.parametrize(
    ("node", "value", "expected"),
    [
        (inp(type="number", min=0, max=10), "7", 7),
        (inp(type="number"), 2.5, 2.5),
        (inp(type="number"), "1,000", 1000),
        (inp(type="date"), date(2024, 1, 2), "2024-01-02"),
        (inp(type="date", min="2020-01-01"), "2020-01-01", "2020-01-01"),
        (inp(type="phone"), "+86 138-0013-8000", "+8613800138000"),
        (inp(type="choice", options=["a", "b"]), "b", "b"),
        (inp(type="yes_no"), "Y", True),
        (inp(type="yes_no"), False, False),
        (inp(type="text", required=False), "", None),
        (inp(type="text", max=3), "abc", "abc"),
    ],
)
def test_inputs_accept(node: InputNode, value: object, expected: object) -> None:
    assert check_input(node, value) == expected


@pytest.mark.parametrize(
    ("node", "value", "words"),
    [
        (inp(), "  ", "required"),
        (inp(type="number", min=0, max=10), "11", "above the maximum"),
        (inp(type="number", min=0), -1, "below the minimum"),
        (inp(type="number"), "ten", "not a number"),
        (inp(type="number"), "nan", "not a finite number"),
        (inp(type="number"), True, "not yes/no"),
        (inp(type="date"), "31/01/2024", "not a date"),
        (inp(type="date", max="2020-01-01"), "2021-01-01", "above the maximum"),
        (inp(type="phone"), "call me", "not a phone number"),
        (inp(type="choice", options=["a"]), "c", "not one of a"),
        (inp(type="yes_no"), "maybe", "yes or no"),
        (inp(type="text", max=3), "abcd", "above the maximum"),
        (inp(type="text"), 5, "a text answer"),
        (inp(type="text", pattern="[A-Z]+"), "abc", "pattern"),
    ],
)
def test_inputs_refuse(node: InputNode, value: object, words: str) -> None:
    with pytest.raises(AnswerError, match=words):
        check_input(node, value)


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ({"type": "choice"}, "a choice field needs options"),
        ({"type": "text", "options": ["a"]}, "options are only for type = 'choice'"),
        ({"type": "number", "min": "2020-01-01"}, "min and max are dates only for type = 'date'"),
        ({"type": "date", "min": 3}, "a date field's min and max are dates"),
        ({"pattern": "("}, "is not a regular expression"),
    ],
)
def test_input_definitions_are_checked(bad: dict[str, object], words: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(words)):
        inp(**bad)


def test_a_date_field_takes_date_bounds() -> None:
    assert inp(type=FieldType.DATE, min="2020-01-01").min == date(2020, 1, 1)


# --- text -----------------------------------------------------------------------------


def test_missing_values_show_a_placeholder() -> None:
    assert render("Hi {customer.name}!", {}) == "Hi ‹customer.name?›!"
    assert render("Hi {customer.name}!", {"customer.name": ""}) == "Hi ‹customer.name?›!"
    assert [s.kind for s in segments("a{x.y}b", {})] == ["text", "missing", "text"]


def test_customer_text_is_never_interpreted() -> None:
    evil = "[bold red]{agent.name}{0.__class__}{{x}} %s <script>"
    values = {"customer.name": evil, "agent.name": "SECRET"}
    out = render("Hello {customer.name}", values)
    assert out == "Hello " + evil
    seg = segments("Hello {customer.name}", values)[1]
    assert seg.kind == "value"
    assert seg.text == evil
    assert seg.name == "customer.name"


def test_braces_and_values() -> None:
    assert render("{{literal}} {a.b} {c.d}", {"a.b": True, "c.d": 3.0}) == "{literal} yes 3"
    assert template_variables("x {a.b} {{ {c.d}") == [("a.b", 3), ("c.d", 12)]
    for bad, col in (("{a.b", 1), ("x }", 3), ("{0.__class__}", 1), ("{name}", 1)):
        with pytest.raises(TemplateError) as info:
            template_variables(bad)
        assert info.value.column == col


def test_run_loops_through_actions_are_caught() -> None:
    body = (
        '[script]\nname = "t"\nversion = "1"\ndirection = "inbound"\nstart = "a"\n'
        '[nodes.a]\nkind = "action"\naction = "add_to_dnc"\nnext = "b"\n'
        '[nodes.b]\nkind = "branch"\ndefault = "a"\n'
    )
    script, found = parse_script(body)
    assert script is not None
    assert any("loop with no exit" in p.message for p in found)
    with pytest.raises(ScriptError, match="loops"):
        runner.start(script)


MAIL_THEN_BYE = """\
[script]
name = "Mail"
version = "1"
direction = "inbound"
start = "hello"

[nodes.hello]
kind = "say"
text = "Hello {customer.name}"
next = "mail"

[nodes.mail]
kind = "action"
action = "send_email"
args = { template = "summary", to = "{customer.email}" }
next = "bye"

[nodes.bye]
kind = "say"
text = "Goodbye {customer.name}"
next = "end"

[nodes.end]
kind = "end"
"""


def test_a_caller_identified_during_the_run_is_read_and_fills_the_actions_missing_it() -> None:
    script, problems = parse_script(MAIL_THEN_BYE, "mail.toml")
    assert script is not None, problems
    unknown = {"call.id": "c1"}
    s = runner.advance(runner.start(script, unknown))  # hello -> mail -> bye
    [mail] = s.effects
    assert runner.unfilled(mail) == {"to": "‹customer.email?›"}
    assert render_text(s) == "Goodbye ‹customer.name?›"
    s = runner.with_context(s, gold_context())
    assert render_text(s) == "Goodbye Ann"
    [mail] = s.effects
    assert mail.args == {"template": "summary", "to": "ann@example.com"}
    assert runner.unfilled(mail) == {}
    assert [step.node for step in s.path] == ["hello", "mail", "bye"]  # the path stays


def render_text(state: RunState) -> str:
    return "".join(span.text for span in state.text())
