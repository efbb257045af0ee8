"""The validator: one test per kind of problem, each naming file, node and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from cti.app.cli import main
from scripts_engine.validate import Problem, load_script, node_lines, parse_script

EXAMPLES = sorted((Path(__file__).parents[2] / "scripts_engine" / "examples").glob("*.toml"))

HEAD = """\
[script]
name = "t"
version = "1"
direction = "inbound"
start = "a"
"""


def problems(body: str) -> list[Problem]:
    _, found = parse_script(HEAD + body, "t.toml")
    return found


def only(body: str) -> Problem:
    found = problems(body)
    assert len(found) == 1, found
    return found[0]


def test_examples_are_clean() -> None:
    assert len(EXAMPLES) == 3
    for path in EXAMPLES:
        script, found = load_script(path)
        assert found == [], found
        assert script is not None


def test_a_clean_script() -> None:
    assert (
        problems('[nodes.a]\nkind = "say"\ntext = "hi"\nnext = "b"\n[nodes.b]\nkind = "end"\n')
        == []
    )


def test_dangling_target() -> None:
    p = only('[nodes.a]\nkind = "say"\ntext = "hi"\nnext = "nowhere"\n')
    assert (p.file, p.node, p.line) == ("t.toml", "a", 6)
    assert "'nowhere'" in p.message
    assert "not a node" in p.message
    assert str(p).startswith("t.toml:6: node a: ")


def test_missing_start() -> None:
    found = problems('[nodes.b]\nkind = "end"\n')
    assert any("start node 'a' does not exist" in p.message for p in found)


def test_unreachable_node() -> None:
    p = only('[nodes.a]\nkind = "end"\n\n[nodes.lost]\nkind = "end"\n')
    assert (p.node, p.line) == ("lost", 9)
    assert "unreachable" in p.message


def test_loop_with_no_exit() -> None:
    body = (
        '[nodes.a]\nkind = "say"\ntext = "1"\nnext = "b"\n'
        '[nodes.b]\nkind = "question"\ntext = "again?"\n'
        'choices = [{ label = "x", next = "a" }, { label = "y", next = "b" }]\n'
    )
    p = only(body)
    assert p.node == "a"
    assert p.line == 6
    assert "loop with no exit" in p.message
    assert "a -> b" in p.message


def test_loop_with_an_exit_is_fine() -> None:
    body = (
        '[nodes.a]\nkind = "question"\ntext = "again?"\n'
        'choices = [{ label = "x", next = "a" }, { label = "y", next = "z" }]\n'
        '[nodes.z]\nkind = "end"\n'
    )
    assert problems(body) == []


def test_unknown_variable_in_text() -> None:
    p = only('[nodes.a]\nkind = "end"\ntext = "Hi {customer.nickname}"\n')
    assert p.node == "a"
    assert "unknown variable {customer.nickname}" in p.message


def test_unknown_answer_in_condition() -> None:
    body = (
        '[nodes.a]\nkind = "branch"\ncases = [{ when = "answers.age > 3", next = "z" }]\n'
        'default = "z"\n[nodes.z]\nkind = "end"\n'
    )
    p = only(body)
    assert p.node == "a"
    assert "unknown variable answers.age" in p.message
    assert "column 1" in p.message


def test_bad_expression() -> None:
    body = (
        '[nodes.a]\nkind = "branch"\ncases = [{ when = "customer.value >", next = "z" }]\n'
        'default = "z"\n[nodes.z]\nkind = "end"\n'
    )
    p = only(body)
    assert p.node == "a"
    assert p.line == 6
    assert "bad expression" in p.message
    assert "column 17" in p.message


def test_a_deeply_nested_condition_is_a_problem_not_a_crash() -> None:
    deep = "(" * 400 + "customer.value == 1" + ")" * 400  # was a RecursionError
    body = (
        f'[nodes.a]\nkind = "branch"\ncases = [{{ when = "{deep}", next = "z" }}]\n'
        'default = "z"\n[nodes.z]\nkind = "end"\n'
    )
    p = only(body)
    assert p.node == "a"
    assert p.line == 6
    assert "more than 40 parentheses" in p.message
    assert len(p.message) < 300  # the condition is shortened, not echoed whole


def test_bad_template() -> None:
    p = only('[nodes.a]\nkind = "end"\ntext = "Hi {customer.name"\n')
    assert "bad text" in p.message
    assert "never closed" in p.message


def test_schema_error_names_node_and_line() -> None:
    p = only('[nodes.a]\nkind = "end"\n\n[nodes.b]\nkind = "shout"\n')
    assert (p.node, p.line) == ("b", 9)


def test_bad_input_field() -> None:
    body = '[nodes.a]\nkind = "input"\ntext = "?"\ntype = "number"\nmin = 5\nmax = 1\nnext = "a"\n'
    p = only(body)
    assert p.node == "a"
    assert "min 5.0 is above max 1.0" in p.message


def test_action_missing_arguments() -> None:
    p = only('[nodes.a]\nkind = "action"\naction = "transfer_queue"\nnext = "a"\n')
    assert p.node == "a"
    assert "needs args queue" in p.message


def test_duplicate_answer_field() -> None:
    body = (
        '[nodes.a]\nkind = "input"\ntext = "?"\nfield = "x"\nnext = "b"\n'
        '[nodes.b]\nkind = "input"\ntext = "?"\nfield = "x"\nnext = "z"\n'
        '[nodes.z]\nkind = "end"\n'
    )
    p = only(body)
    assert p.node == "b"
    assert "also asked by node 'a'" in p.message


def test_not_toml() -> None:
    p = only("[nodes.a\n")
    assert p.line == 6
    assert "not TOML" in p.message


def test_metadata_error() -> None:
    _, found = parse_script('[script]\nname = "t"\nversion = "1"\nstart = "a"\n', "m.toml")
    assert any("direction" in p.message and p.line == 1 for p in found)


def test_node_lines_reads_headers() -> None:
    assert node_lines('x = 1\n[nodes.a]\n  [ nodes."b-2" ]\n') == {"a": 2, "b-2": 3}


def test_cli_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["script", "check", *map(str, EXAMPLES)]) == 0
    bad = tmp_path / "bad.toml"
    bad.write_text(HEAD + '[nodes.a]\nkind = "say"\ntext = "hi"\nnext = "zz"\n', encoding="utf-8")
    capsys.readouterr()
    assert main(["script", "check", str(EXAMPLES[0]), str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}:6: node a: goes to 'zz'" in out
    assert main(["script", "check", str(tmp_path / "absent.toml")]) == 1


def test_condition_on_a_choice_that_does_not_exist() -> None:
    body = """\
[nodes.a]
kind = "question"
text = "?"
field = "reason"
choices = [{ label = "Billing", value = "billing", next = "b" }]

[nodes.b]
kind = "input"
text = "?"
type = "choice"
options = ["x", "y"]
next = "c"

[nodes.c]
kind = "branch"
default = "z"
cases = [
  { when = "answers.reason == 'bilin'", next = "z" },
  { when = "not answers.b in ['x', 'q'] or 'billing' == answers.reason", next = "z" },
]

[nodes.z]
kind = "end"
"""
    found = problems(body)
    assert [(p.node, p.message.split(" (")[0]) for p in found] == [
        ("c", "cases[0] answers.reason is never 'bilin'"),
        ("c", "cases[1] answers.b is never 'q'"),
    ]
    assert "its values are 'billing'" in found[0].message


def test_answer_shown_before_it_is_asked() -> None:
    body = """\
[nodes.a]
kind = "question"
text = "Card or cash?"
choices = [{ label = "card", next = "num" }, { label = "cash", next = "thanks" }]

[nodes.num]
kind = "input"
text = "Card number?"
field = "card"
next = "thanks"

[nodes.thanks]
kind = "end"
text = "Paid by {answers.a} with {answers.card}"
"""
    p = only(body)
    assert p.node == "thanks"
    assert p.line == 17
    assert "{answers.card} may be shown before it is asked" in p.message
    assert "without node 'num'" in p.message
