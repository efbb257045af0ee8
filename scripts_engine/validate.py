"""The script validator: each problem names the file, the node and the line.

Finds TOML and schema errors, a missing start, dangling targets, unreachable nodes, loops
with no exit, unknown variables, bad templates and bad expressions.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from cti.errors import ScriptError
from scripts_engine import expr
from scripts_engine.model import (
    KNOWN_VARIABLES,
    ActionNode,
    BranchNode,
    EndNode,
    InputNode,
    QuestionNode,
    SayNode,
    Script,
    targets,
)
from scripts_engine.text import TemplateError, template_variables


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    node: str
    message: str

    def __str__(self) -> str:
        where = f"node {self.node}: " if self.node else ""
        return f"{self.file}:{self.line}: {where}{self.message}"


def node_lines(text: str) -> dict[str, int]:
    """Line (1-based) of each node's table header ``[nodes.ID]``."""
    out: dict[str, int] = {}
    header = re.compile(r"""^\s*\[\s*nodes\s*\.\s*["']?([A-Za-z0-9_-]+)["']?\s*\]""")
    for n, line in enumerate(text.splitlines(), start=1):
        m = header.match(line)
        if m:
            out.setdefault(m.group(1), n)
    return out


def _script_line(text: str) -> int:
    for n, line in enumerate(text.splitlines(), start=1):
        if re.match(r"^\s*\[\s*script\s*\]", line):
            return n
    return 1


def known_variable(name: str, answers: set[str]) -> bool:
    namespace, _, rest = name.partition(".")
    if namespace == "answers":
        return rest in answers
    return rest in KNOWN_VARIABLES.get(namespace, frozenset())


def load_script(path: Path | str) -> tuple[Script | None, list[Problem]]:
    """Read and validate a script file: the script (None if unreadable) and its problems."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(str(path), 0, "", f"cannot read the file: {exc}")]
    return parse_script(text, str(path))


def parse_script(text: str, file: str = "<script>") -> tuple[Script | None, list[Problem]]:
    """Parse and validate script TOML text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        return None, [Problem(file, int(m.group(1)) if m else 1, "", f"not TOML: {exc}")]
    lines = node_lines(text)
    try:
        script = Script.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = [str(p) for p in err["loc"]]
            node = loc[1] if len(loc) > 1 and loc[0] == "nodes" else ""
            line = lines.get(node, 1)
            if not node:
                line = _script_line(text)
            field = ".".join(loc[2:] if node else loc)
            problems.append(Problem(file, line, node, f"{field}: {err['msg']}"))
        return None, problems
    return script, check_script(script, file, lines)


def check_script(script: Script, file: str, lines: dict[str, int] | None = None) -> list[Problem]:
    """Every problem of a well-formed script, ordered by line."""
    return _Checker(script, file, lines or {}).problems()


class _Checker:
    """The checks of :func:`check_script`, each adding the problems it finds."""

    def __init__(self, script: Script, file: str, lines: dict[str, int]) -> None:
        self.script = script
        self.file = file
        self.lines = lines
        self.found: list[Problem] = []
        self.answers = set(script.answer_fields())

    def add(self, node: str, message: str) -> None:
        self.found.append(Problem(self.file, self.lines.get(node, 1), node, message))

    def problems(self) -> list[Problem]:
        nodes, start = self.script.nodes, self.script.meta.start
        if start not in nodes:
            self.add("", f"the start node {start!r} does not exist")
        choices = _choices(self.script)
        seen_fields: dict[str, str] = {}
        for node_id, node in nodes.items():
            if isinstance(node, QuestionNode | InputNode):
                field = node.field or node_id
                if field in seen_fields:
                    self.add(
                        node_id, f"answer {field!r} is also asked by node {seen_fields[field]!r}"
                    )
                seen_fields[field] = node_id
            for target in targets(node):
                if target not in nodes:
                    self.add(node_id, f"goes to {target!r}, which is not a node")
            self._check_texts(node_id, node)
            if isinstance(node, BranchNode):
                for i, case in enumerate(node.cases):
                    self._check_case(node_id, i, case.when, choices)
        reachable = _reachable(self.script, start)
        self._check_asked_before_shown(start, reachable)
        for node_id in nodes:
            if start in nodes and node_id not in reachable:
                self.add(node_id, f"unreachable from the start node {start!r}")
        for loop in _closed_loops(self.script, reachable):
            first = min(loop, key=lambda n: self.lines.get(n, 0))
            self.add(first, f"loop with no exit: {' -> '.join(sorted(loop))} never reaches an end")
        return sorted(self.found, key=lambda p: (p.line, p.message))

    def _check_texts(self, node_id: str, node: object) -> None:
        for template in _templates(node):
            try:
                names = template_variables(template)
            except TemplateError as exc:
                self.add(node_id, f"bad text: {exc}")
                continue
            for name, col in names:
                if not known_variable(name, self.answers):
                    self.add(node_id, f"unknown variable {{{name}}} (text column {col})")

    def _check_case(
        self, node_id: str, i: int, when: str, choices: dict[str, tuple[str, ...]]
    ) -> None:
        try:
            tree = expr.parse(when)
        except expr.ExprError as exc:
            shown = when if len(when) <= 80 else when[:77] + "..."
            self.add(node_id, f"cases[{i}] bad expression {shown!r}: {exc}")
            return
        for var in expr.variables(tree):
            if not known_variable(var.name, self.answers):
                self.add(
                    node_id,
                    f"cases[{i}] unknown variable {var.name} (expression column {var.column})",
                )
        for var, value in _compared_literals(tree):
            allowed = choices.get(var.name.removeprefix("answers."))
            if var.name.startswith("answers.") and allowed and value not in allowed:
                self.add(
                    node_id,
                    f"cases[{i}] {var.name} is never {value!r} (expression column "
                    f"{var.column}); its values are {', '.join(map(repr, allowed))}",
                )

    def _check_asked_before_shown(self, start: str, reachable: set[str]) -> None:
        """An answer shown in a text must be asked on every path to it."""
        asked = _asked_before(self.script, start, reachable)
        for node_id in sorted(reachable):
            for template in _templates(self.script.nodes[node_id]):
                try:
                    names = template_variables(template)
                except TemplateError:
                    continue
                for name, _ in names:
                    field = name.removeprefix("answers.")
                    if not name.startswith("answers.") or field not in self.answers:
                        continue
                    if field not in asked[node_id]:
                        asker = self.script.answer_fields()[field]
                        self.add(
                            node_id,
                            f"{{{name}}} may be shown before it is asked (some path from the "
                            f"start reaches this node without node {asker!r})",
                        )


def _choices(script: Script) -> dict[str, tuple[str, ...]]:
    """The answers a question or an input with options can give, by its field."""
    choices: dict[str, tuple[str, ...]] = {}
    for node_id, node in script.nodes.items():
        if isinstance(node, QuestionNode):
            choices[node.field or node_id] = tuple(c.answer for c in node.choices)
        elif isinstance(node, InputNode) and node.options:
            choices[node.field or node_id] = node.options
    return choices


def _compared_literals(tree: expr.Node) -> list[tuple[expr.Var, str]]:
    """(variable, string) pairs the expression tests for equality or membership."""
    out: list[tuple[expr.Var, str]] = []
    match tree:
        case expr.Compare("==" | "!=", expr.Var() as v, expr.Literal(str() as lit)):
            out.append((v, lit))
        case expr.Compare("==" | "!=", expr.Literal(str() as lit), expr.Var() as v):
            out.append((v, lit))
        case expr.In(expr.Var() as v, options, _):
            out += [
                (v, o.value)
                for o in options
                if isinstance(o, expr.Literal) and isinstance(o.value, str)
            ]
        case expr.Not(operand):
            out += _compared_literals(operand)
        case expr.BoolOp(_, left, right):
            out += _compared_literals(left) + _compared_literals(right)
    return out


def _templates(node: object) -> list[str]:
    if isinstance(node, SayNode | QuestionNode | InputNode | EndNode):
        out = [node.text]
        if isinstance(node, QuestionNode):
            out += [c.label for c in node.choices]
        return out
    if isinstance(node, ActionNode):
        return [v for v in node.args.values() if isinstance(v, str)]
    return []


def _asked_before(script: Script, start: str, reachable: set[str]) -> dict[str, set[str]]:
    """For each reachable node, the answers given on every path from the start to it."""
    fields = script.answer_fields()
    everything = set(fields)
    asked: dict[str, set[str]] = {n: set(everything) for n in reachable}
    if start in asked:
        asked[start] = set()
    changed = True
    while changed:
        changed = False
        for n in sorted(reachable):
            node = script.nodes[n]
            out = set(asked[n])
            if isinstance(node, QuestionNode | InputNode):
                out.add(node.field or n)
            for t in targets(node):
                if t in asked and t != start and not asked[t] <= out:
                    asked[t] &= out
                    changed = True
    return asked


def _reachable(script: Script, start: str) -> set[str]:
    seen: set[str] = set()
    stack = [start] if start in script.nodes else []
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        stack.extend(t for t in targets(script.nodes[n]) if t in script.nodes)
    return seen


def _closed_loops(script: Script, within: set[str]) -> list[set[str]]:
    """Strongly connected components with a cycle and no edge leaving them."""
    graph = {n: [t for t in targets(script.nodes[n]) if t in within] for n in within}
    out = []
    for comp in _components(graph):
        cyclic = len(comp) > 1 or any(n in graph[n] for n in comp)
        exits = any(t not in comp for n in comp for t in graph[n])
        dangling = any(t not in script.nodes for n in comp for t in targets(script.nodes[n]))
        if cyclic and not exits and not dangling:
            out.append(comp)
    return out


def _components(graph: dict[str, list[str]]) -> list[set[str]]:
    """The strongly connected components of ``graph`` (Tarjan's, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    comps: list[set[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = len(index)
                stack.append(v)
                on_stack.add(v)
            if i < len(graph[v]):
                work.append((v, i + 1))
                w = graph[v][i]
                if w not in index:
                    work.append((w, 0))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            if low[v] == index[v]:
                comps.append(_pop_component(v, stack, on_stack))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return comps


def _pop_component(root: str, stack: list[str], on_stack: set[str]) -> set[str]:
    comp: set[str] = set()
    while True:
        w = stack.pop()
        on_stack.discard(w)
        comp.add(w)
        if w == root:
            return comp


def require_clean(path: Path | str) -> Script:
    """Load a script, raising :class:`ScriptError` listing every problem."""
    script, problems = load_script(path)
    if problems or script is None:
        raise ScriptError("\n".join(str(p) for p in problems))
    return script
