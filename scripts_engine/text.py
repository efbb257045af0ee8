"""Safe variable substitution in script text.

``{customer.name}`` is replaced by the value of that variable, inserted as plain text and
never scanned again: customer text cannot inject markup or further placeholders. ``{{``
and ``}}`` stand for literal braces. A missing value shows as ``‹customer.name?›``.
Substitution is done here by hand, never with ``str.format``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from cti.errors import ScriptError
from scripts_engine.expr import VARIABLE, Scalar

_VAR = re.compile(VARIABLE)


class TemplateError(ScriptError):
    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"column {column}: {message}")
        self.column = column


@dataclass(frozen=True)
class TextSpan:
    """A piece of rendered text: literal script text, a filled variable, or a missing one."""

    kind: Literal["text", "value", "missing"]
    text: str
    name: str = ""


def placeholder(name: str) -> str:
    return f"‹{name}?›"


_PLACEHOLDER = re.compile(f"‹{VARIABLE}\\?›")


def has_placeholder(text: str) -> bool:
    """Whether rendered text shows a missing value (``‹customer.email?›``): an action's
    argument that does not hold a usable value."""
    return _PLACEHOLDER.search(text) is not None


def _parse(template: str) -> list[tuple[str, str, int]]:
    """(kind, text-or-name, column) pieces, kind "text" or "var"."""
    out: list[tuple[str, str, int]] = []
    buf: list[str] = []
    i = 0
    while i < len(template):
        ch = template[i]
        if ch == "{" and template.startswith("{{", i):
            buf.append("{")
            i += 2
        elif ch == "}" and template.startswith("}}", i):
            buf.append("}")
            i += 2
        elif ch == "{":
            end = template.find("}", i + 1)
            if end < 0:
                raise TemplateError("'{' is never closed (write '{{' for a brace)", i + 1)
            name = template[i + 1 : end].strip()
            if not _VAR.fullmatch(name):
                raise TemplateError(f"{{{name}}} is not a variable like {{customer.name}}", i + 1)
            if buf:
                out.append(("text", "".join(buf), 0))
                buf = []
            out.append(("var", name, i + 1))
            i = end + 1
        elif ch == "}":
            raise TemplateError("a lone '}' (write '}}' for a brace)", i + 1)
        else:
            buf.append(ch)
            i += 1
    if buf:
        out.append(("text", "".join(buf), 0))
    return out


def template_variables(template: str) -> list[tuple[str, int]]:
    """(name, column) of each variable in ``template``; :class:`TemplateError` if malformed."""
    return [(name, col) for kind, name, col in _parse(template) if kind == "var"]


def _show(value: Scalar) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def segments(template: str, values: Mapping[str, Scalar]) -> list[TextSpan]:
    """The template split into plain-text segments with variables filled."""
    out: list[TextSpan] = []
    for kind, text, _ in _parse(template):
        if kind == "text":
            out.append(TextSpan("text", text))
            continue
        value = values.get(text)
        if value is None or value == "":
            out.append(TextSpan("missing", placeholder(text), text))
        else:
            out.append(TextSpan("value", _show(value), text))
    return out


def render(template: str, values: Mapping[str, Scalar]) -> str:
    """The template as one plain string with variables filled."""
    return "".join(s.text for s in segments(template, values))
