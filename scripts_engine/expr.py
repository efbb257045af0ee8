"""A small safe expression language for script conditions (no ``eval``).

Grammar, loosest binding first::

    expr    := or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | compare
    compare := atom (("==" | "!=" | "<" | "<=" | ">" | ">=") atom
                    | "not"? "in" list)?
    atom    := NUMBER | STRING | "true" | "false" | "null" | NAME | "(" expr ")"
    list    := "[" (atom ("," atom)*)? "]"

``NAME`` is a dotted variable such as ``answers.age``, ``answers.ask-reason`` (a node id
with ``-``) or ``customer.segment``. It is only
a key into a flat mapping of scalar values: there is no attribute access, no call and no
indexing, so an expression cannot reach any Python object. Errors name the column (1-based).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from cti.errors import ScriptError

Scalar = str | int | float | bool | None
_T = TypeVar("_T", float, str)


class ExprError(ScriptError):
    """An expression could not be read; ``column`` is 1-based."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"column {column}: {message}")
        self.column = column
        self.reason = message


@dataclass(frozen=True)
class Token:
    kind: str  # num, str, name, op, kw, eof
    text: str
    value: Scalar
    column: int


@dataclass(frozen=True)
class Literal:
    value: Scalar


@dataclass(frozen=True)
class Var:
    name: str
    column: int


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" | "or"
    left: Node
    right: Node


@dataclass(frozen=True)
class Compare:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class In:
    item: Node
    options: tuple[Node, ...]
    negated: bool


Node = Literal | Var | Not | BoolOp | Compare | In

_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}
#: A node id or answer name: a letter or ``_``, then letters, digits, ``_`` or ``-``
#: (``ask-reason``). The language has no subtraction, so ``-`` inside a name is unambiguous.
IDENT = r"[A-Za-z_][A-Za-z0-9_-]*"
#: A dotted variable: a namespace (``answers``, ``customer``...) and one or more names.
VARIABLE = rf"[A-Za-z_][A-Za-z0-9_]*(?:\.{IDENT})+"
_NAME = re.compile(rf"[A-Za-z_][A-Za-z0-9_]*(?:\.{IDENT})*")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
MAX_LENGTH = 2000
"""Characters in one expression: a condition, not a program."""
MAX_DEPTH = 40
"""Parentheses, ``not`` and ``and``/``or`` in one expression, all counted together: the
parser and the evaluator recurse at most that deep, never into Python's recursion limit."""
_MAX_DIGITS = 30
_OPS = ("==", "!=", "<=", ">=", "<", ">", "(", ")", "[", "]", ",")


def tokenize(source: str) -> list[Token]:
    """The tokens of ``source``, ending with an ``eof`` token."""
    if len(source) > MAX_LENGTH:
        raise ExprError(f"longer than {MAX_LENGTH} characters", MAX_LENGTH + 1)
    tokens: list[Token] = []
    i = 0
    while i < len(source):
        if source[i].isspace():
            i += 1
            continue
        token, i = _token_at(source, i)
        tokens.append(token)
    tokens.append(Token("eof", "", None, len(source) + 1))
    return tokens


def _token_at(source: str, i: int) -> tuple[Token, int]:
    """The token starting at ``source[i]`` (not a space) and where the next one may start."""
    ch = source[i]
    col = i + 1
    if ch in "\"'":
        return _string(source, i)
    m = _NUMBER.match(source, i)
    if m:
        text = m.group()
        if len(text) > _MAX_DIGITS:
            raise ExprError(f"number longer than {_MAX_DIGITS} digits", col)
        value: Scalar = float(text) if "." in text else int(text)
        return Token("num", text, value, col), m.end()
    m = _NAME.match(source, i)
    if m:
        text = m.group()
        if text in _KEYWORDS:
            return Token("kw", text, None, col), m.end()
        if "." not in text:
            raise ExprError(
                f"unknown name {text!r}: variables are namespaced, like answers.{text}", col
            )
        return Token("name", text, None, col), m.end()
    for op in _OPS:
        if source.startswith(op, i):
            return Token("op", op, None, col), i + len(op)
    raise ExprError(f"unexpected character {ch!r}", col)


def _string(source: str, i: int) -> tuple[Token, int]:
    """A string quoted with ``source[i]``; a backslash takes the next character as is."""
    quote = source[i]
    j = i + 1
    buf: list[str] = []
    while j < len(source) and source[j] != quote:
        if source[j] == "\\" and j + 1 < len(source):
            j += 1
        buf.append(source[j])
        j += 1
    if j >= len(source):
        raise ExprError("unterminated string", i + 1)
    return Token("str", source[i : j + 1], "".join(buf), i + 1), j + 1


class _Parser:
    def __init__(self, source: str) -> None:
        self.tokens = tokenize(source)
        self.pos = 0
        self.depth = 0

    def _deeper(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError(
                f"more than {MAX_DEPTH} parentheses, 'not', 'and' and 'or': split the condition",
                self.tok.column,
            )

    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def _is(self, kind: str, text: str) -> bool:
        return self.tok.kind == kind and self.tok.text == text

    def _expect(self, kind: str, text: str) -> Token:
        if not self._is(kind, text):
            raise ExprError(f"expected {text!r}, found {self._describe()}", self.tok.column)
        t = self.tok
        self.pos += 1
        return t

    def _describe(self) -> str:
        return "end of expression" if self.tok.kind == "eof" else repr(self.tok.text)

    def parse(self) -> Node:
        node = self._or()
        if self.tok.kind != "eof":
            raise ExprError(f"unexpected {self._describe()}", self.tok.column)
        return node

    def _or(self) -> Node:
        node = self._and()
        while self._is("kw", "or"):
            self._deeper()  # the tree leans left: each operator is one level more
            self.pos += 1
            node = BoolOp("or", node, self._and())
        return node

    def _and(self) -> Node:
        node = self._not()
        while self._is("kw", "and"):
            self._deeper()
            self.pos += 1
            node = BoolOp("and", node, self._not())
        return node

    def _not(self) -> Node:
        if self._is("kw", "not"):
            self._deeper()
            self.pos += 1
            return Not(self._not())
        return self._compare()

    def _compare(self) -> Node:
        left = self._atom()
        if self.tok.kind == "op" and self.tok.text in ("==", "!=", "<", "<=", ">", ">="):
            op = self.tok.text
            self.pos += 1
            return Compare(op, left, self._atom())
        negated = False
        if self._is("kw", "not") and self.tokens[self.pos + 1].text == "in":
            negated = True
            self.pos += 1
        if self._is("kw", "in"):
            self.pos += 1
            return In(left, self._list(), negated)
        if negated:
            raise ExprError("expected 'in' after 'not'", self.tok.column)
        return left

    def _list(self) -> tuple[Node, ...]:
        self._expect("op", "[")
        items: list[Node] = []
        if not self._is("op", "]"):
            items.append(self._atom())
            while self._is("op", ","):
                self.pos += 1
                items.append(self._atom())
        self._expect("op", "]")
        return tuple(items)

    def _atom(self) -> Node:
        t = self.tok
        if t.kind in ("num", "str"):
            self.pos += 1
            return Literal(t.value)
        if t.kind == "name":
            self.pos += 1
            return Var(t.text, t.column)
        if t.kind == "kw" and t.text in ("true", "false", "null"):
            self.pos += 1
            return Literal({"true": True, "false": False, "null": None}[t.text])
        if self._is("op", "("):
            self._deeper()
            self.pos += 1
            node = self._or()
            self._expect("op", ")")
            return node
        raise ExprError(f"expected a value, found {self._describe()}", t.column)


def parse(source: str) -> Node:
    """The syntax tree of ``source``; :class:`ExprError` names the column of a mistake."""
    return _Parser(source).parse()


def variables(node: Node) -> list[Var]:
    """Every variable the expression reads, in order."""
    match node:
        case Var():
            return [node]
        case Literal():
            return []
        case Not(operand):
            return variables(operand)
        case BoolOp(_, left, right) | Compare(_, left, right):
            return variables(left) + variables(right)
        case In(item, options, _):
            return variables(item) + [v for o in options for v in variables(o)]
    return []  # pragma: no cover


def _number(v: Scalar) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


def _order(op: str, a: Scalar, b: Scalar) -> bool:
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None:
        return _cmp(op, na, nb)
    if isinstance(a, str) and isinstance(b, str):
        return _cmp(op, a, b)
    return False  # a missing value or mixed types never orders


def _cmp(op: str, x: _T, y: _T) -> bool:
    if op == "<":
        return x < y
    if op == "<=":
        return x <= y
    if op == ">":
        return x > y
    return x >= y


def _equal(a: Scalar, b: Scalar) -> bool:
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None:
        return na == nb
    return type(a) is type(b) and a == b


def evaluate(node: Node, context: Mapping[str, Scalar]) -> Scalar:
    """The value of ``node``; a variable missing from ``context`` is ``null``."""
    match node:
        case Literal(value):
            return value
        case Var(name):
            return context.get(name)
        case Not(operand):
            return not truthy(evaluate(operand, context))
        case BoolOp("and", left, right):
            return truthy(evaluate(left, context)) and truthy(evaluate(right, context))
        case BoolOp(_, left, right):
            return truthy(evaluate(left, context)) or truthy(evaluate(right, context))
        case Compare(op, left, right):
            a, b = evaluate(left, context), evaluate(right, context)
            if op == "==":
                return _equal(a, b)
            if op == "!=":
                return not _equal(a, b)
            return _order(op, a, b)
        case In(item, options, negated):
            v = evaluate(item, context)
            found = any(_equal(v, evaluate(o, context)) for o in options)
            return found != negated
    raise ScriptError(f"not an expression node: {node!r}")  # pragma: no cover


def truthy(value: Scalar) -> bool:
    return value not in (None, False, 0, 0.0, "")


def check(source: str, context: Mapping[str, Scalar]) -> bool:
    """Parse and evaluate ``source`` as a condition."""
    return truthy(evaluate(parse(source), context))
