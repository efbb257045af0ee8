"""The safe expression language: precedence, values, errors with columns, no Python."""

from __future__ import annotations

import pytest

from scripts_engine.expr import (
    BoolOp,
    Compare,
    ExprError,
    In,
    Literal,
    Not,
    Scalar,
    Var,
    check,
    evaluate,
    parse,
    tokenize,
    variables,
)

CTX: dict[str, Scalar] = {
    "answers.age": 42,
    "customer.segment": "gold",
    "answers.ok": True,
    "answers.s": "b",
}


def test_and_binds_tighter_than_or() -> None:
    tree = parse("answers.a == 1 or answers.b == 2 and answers.c == 3")
    assert isinstance(tree, BoolOp)
    assert tree.op == "or"
    assert isinstance(tree.right, BoolOp)
    assert tree.right.op == "and"


def test_not_binds_tighter_than_and_and_looser_than_compare() -> None:
    tree = parse("not answers.a == 1 and answers.ok")
    assert isinstance(tree, BoolOp)
    assert tree.op == "and"
    assert isinstance(tree.left, Not)
    assert isinstance(tree.left.operand, Compare)


def test_parentheses_override_precedence() -> None:
    assert check("(answers.age > 50 or answers.ok) and customer.segment == 'gold'", CTX)
    assert not check("answers.age > 50 or answers.ok and customer.segment == 'basic'", CTX)
    assert check("(answers.age > 50 or answers.ok) and not customer.segment == 'basic'", CTX)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("answers.age == 42", True),
        ("answers.age == 42.0", True),
        ("answers.age != 42", False),
        ("answers.age < 43", True),
        ("answers.age <= 42", True),
        ("answers.age > 42", False),
        ("answers.age >= 42.5", False),
        ("customer.segment in ['gold', 'platinum']", True),
        ('customer.segment not in ["gold"]', False),
        ("answers.age in [1, 2, 42]", True),
        ("answers.s < 'c'", True),
        ("answers.ok == true", True),
        ("answers.ok", True),
        ("answers.missing == null", True),
        ("answers.missing > 1", False),
        ("answers.missing < 1", False),
        ("answers.s > 1", False),
        ("answers.ok == 1", False),
        ("not answers.missing", True),
        ("'x' == 'x' and 1 < 2", True),
        ("'it\\'s' == \"it's\"", True),
    ],
)
def test_values(source: str, expected: bool) -> None:
    assert check(source, CTX) is expected


def test_variables_are_listed_with_columns() -> None:
    names = [(v.name, v.column) for v in variables(parse("answers.a == 1 or customer.b in [x.y]"))]
    assert names == [("answers.a", 1), ("customer.b", 19), ("x.y", 34)]


@pytest.mark.parametrize(
    ("source", "column", "words"),
    [
        ("answers.age ==", 15, "expected a value"),
        ("answers.age == 1 )", 18, "unexpected ')'"),
        ("(answers.age == 1", 18, "expected ')'"),
        ("answers.age = 1", 13, "unexpected character '='"),
        ("answers.s == 'abc", 14, "unterminated string"),
        ("age > 1", 1, "unknown name 'age'"),
        ("answers.s in 'abc'", 14, "expected '['"),
        ("answers.s not 1", 11, "unexpected 'not'"),
        ("answers.a and", 14, "expected a value"),
        ("", 1, "expected a value"),
        ("answers.a == 1 answers.b", 16, "unexpected 'answers.b'"),
    ],
)
def test_errors_name_the_column(source: str, column: int, words: str) -> None:
    with pytest.raises(ExprError) as info:
        parse(source)
    assert info.value.column == column
    assert words in str(info.value)
    assert f"column {column}" in str(info.value)


@pytest.mark.parametrize(
    "source",
    [
        "__import__('os').system('echo hi')",
        "answers.x.__class__()",
        "().__class__",
        "answers.s[0]",
        "answers.s + 1",
        "open('f')",
        "lambda: 1",
    ],
)
def test_no_python_is_reachable(source: str) -> None:
    with pytest.raises(ExprError):
        parse(source)


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("(" * 500 + "true" + ")" * 500, "more than 40 parentheses"),
        ("not " * 100 + "true", "more than 40 parentheses"),
        (" or ".join(["answers.ok"] * 100), "more than 40 parentheses"),
        ("answers.age in [" + ",".join(["1"] * 5000) + "]", "longer than 2000 characters"),
        ("answers.age == " + "9" * 5000, "longer than 2000 characters"),
        ("answers.age == " + "9" * 100, "number longer than 30 digits"),
    ],
    ids=["parentheses", "nots", "ors", "long-list", "long-number", "many-digits"],
)
def test_deep_long_or_huge_expressions_are_refused_not_a_crash(source: str, words: str) -> None:
    # without bounds these were RecursionError or int()'s digit limit, not ExprError
    with pytest.raises(ExprError, match=words):
        parse(source)


def test_forty_operators_are_still_a_condition() -> None:
    source = " or ".join(["answers.age == 1"] * 40) + " or answers.ok"
    assert check(source, CTX) is True


def test_dotted_dunder_names_are_only_keys() -> None:
    # a name is a key into the flat mapping, never an attribute lookup
    assert evaluate(parse("answers.__class__ == null"), CTX) is True
    assert evaluate(Var("customer.__dict__", 1), {"customer.__dict__": 3}) == 3


def test_in_with_variables_in_the_list() -> None:
    tree = parse("answers.s in [answers.t, 'b']")
    assert isinstance(tree, In)
    assert isinstance(tree.options[1], Literal)
    assert check("answers.s in [answers.t, 'b']", CTX)
    assert not check("answers.s in []", CTX)


def test_tokens() -> None:
    kinds = [t.kind for t in tokenize("not answers.a <= 1.5 'x'")]
    assert kinds == ["kw", "name", "op", "num", "str", "eof"]
