"""Node ids with '-' (``ask-reason``) work everywhere a name appears: as targets, as the
default answer name, in conditions and in text."""

from __future__ import annotations

import pytest

from scripts_engine import expr, runner
from scripts_engine.text import render, template_variables
from scripts_engine.validate import parse_script

SCRIPT = """\
[script]
name = "t"
version = "1"
direction = "inbound"
start = "ask-reason"

[nodes.ask-reason]
kind = "question"
text = "Why do you call?"
choices = [
    { label = "Bill", value = "bill", next = "bill-route" },
    { label = "Other", value = "other", next = "bill-route" },
]

[nodes.bill-route]
kind = "branch"
cases = [{ when = "answers.ask-reason == 'bill'", next = "say-bill" }]
default = "the-end"

[nodes.say-bill]
kind = "say"
text = "You said {answers.ask-reason}."
next = "the-end"

[nodes.the-end]
kind = "end"
"""


def test_a_script_with_hyphenated_ids_is_clean_and_branches_on_them() -> None:
    script, problems = parse_script(SCRIPT, "hyphen.toml")
    assert problems == []
    assert script is not None
    state = runner.answer(runner.start(script), "bill")
    assert state.node_id == "say-bill"
    assert state.answers == {"ask-reason": "bill"}
    assert "".join(s.text for s in state.text()) == "You said bill."
    other = runner.answer(runner.start(script), "other")
    assert other.node_id == "the-end"
    assert other.finished


def test_expressions_and_text_read_hyphenated_names() -> None:
    assert expr.check("answers.call-reason == 'x'", {"answers.call-reason": "x"})
    assert not expr.check("answers.call-reason == 'x'", {"answers.call": "x"})
    assert template_variables("{answers.call-reason}!") == [("answers.call-reason", 1)]
    assert render("{answers.a-b}", {}) == "‹answers.a-b?›"


def test_a_misspelt_hyphenated_answer_is_an_unknown_variable() -> None:
    misspelt = SCRIPT.replace("answers.ask-reason ==", "answers.ask-reasons ==")
    _, problems = parse_script(misspelt, "hyphen.toml")
    [problem] = problems
    assert problem.node == "bill-route"
    assert "unknown variable answers.ask-reasons" in problem.message


@pytest.mark.parametrize("field", ["call-reason", "reason_2"])
def test_field_names_are_spelled_like_node_ids(field: str) -> None:
    body = SCRIPT.replace('text = "Why do you call?"', f'text = "Why?"\nfield = "{field}"')
    body = body.replace("answers.ask-reason", f"answers.{field}")
    script, problems = parse_script(body, "hyphen.toml")
    assert problems == []
    assert script is not None


def test_a_namespace_may_not_hold_a_hyphen() -> None:
    with pytest.raises(expr.ExprError, match="column 1: unknown name 'answers'"):
        expr.parse("answers-x.y == 1")
