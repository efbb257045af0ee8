"""Property tests: random walks over the example scripts and over generated scripts.

A walk never stands on a node the script does not have; on a script without loops every
walk ends within as many moves as the script has nodes.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cti.errors import ScriptError
from scripts_engine import runner
from scripts_engine.model import FieldType, InputNode, QuestionNode, SayNode, Script
from scripts_engine.validate import check_script, require_clean

EXAMPLES = {
    p.name: require_clean(p)
    for p in sorted((Path(__file__).parents[2] / "scripts_engine" / "examples").glob("*.toml"))
}
CONTEXTS = st.fixed_dictionaries(
    {
        "customer.name": st.text(max_size=12),
        "customer.segment": st.sampled_from(["platinum", "gold", "silver", "bronze", "basic"]),
        "customer.value": st.floats(0, 100),
    }
)


def valid_input(node: InputNode) -> st.SearchStrategy[Any]:
    lo, hi = node.min, node.max
    if node.type is FieldType.NUMBER:
        assert not isinstance(lo, date)
        assert not isinstance(hi, date)
        return st.integers(
            int(lo) if lo is not None else -(10**6), int(hi) if hi is not None else 10**6
        )
    if node.type is FieldType.DATE:
        return st.dates(lo or date(1900, 1, 1), hi or date(2100, 1, 1))  # type: ignore[arg-type]
    if node.type is FieldType.PHONE:
        return st.from_regex(r"\+?[0-9]{3,15}", fullmatch=True)
    if node.type is FieldType.CHOICE:
        return st.sampled_from(node.options)
    if node.type is FieldType.YES_NO:
        return st.booleans() | st.sampled_from(["yes", "no", "是", "否"])
    if node.pattern is not None:
        return st.from_regex(node.pattern, fullmatch=True).filter(lambda s: s == s.strip())
    return (
        st.text("abc xyz", min_size=1, max_size=int(hi) if isinstance(hi, float | int) else 20)
        .filter(str.strip)
        .map(str.strip)
    )


def step(state: runner.RunState, data: st.DataObject, allow_back: bool) -> runner.RunState:
    node = state.node
    if allow_back and len(state.path) > 1 and data.draw(st.integers(0, 9)) == 0:
        try:
            return runner.back(state)
        except ScriptError:
            pass
    if isinstance(node, SayNode):
        return runner.advance(state)
    if isinstance(node, QuestionNode):
        return runner.answer(state, data.draw(st.integers(1, len(node.choices))))
    assert isinstance(node, InputNode), node
    if not node.required and data.draw(st.booleans()):
        return runner.answer(state, None)
    return runner.answer(state, data.draw(valid_input(node)))


def assert_sound(state: runner.RunState) -> None:
    assert all(s.node in state.script.nodes for s in state.path)
    assert state.finished == (state.node.kind == "end")
    # whatever stands still waits for the agent
    assert state.finished or state.node.kind in ("say", "question", "input")
    assert runner.RunState.from_dict(state.to_dict()) == state


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(sorted(EXAMPLES)), context=CONTEXTS, data=st.data())
def test_random_walks_over_the_examples(
    name: str, context: dict[str, Any], data: st.DataObject
) -> None:
    state = runner.start(EXAMPLES[name], context)
    for _ in range(40):
        assert_sound(state)
        if state.finished:
            break
        state = step(state, data, allow_back=True)
    assert_sound(state)


@st.composite
def acyclic_scripts(draw: st.DrawFn) -> Script:
    """Scripts whose every edge goes forward: no loops, so every walk must end."""
    n = draw(st.integers(1, 12))
    ids = [f"n{i}" for i in range(n)]
    nodes: dict[str, dict[str, Any]] = {}
    numbers: list[str] = []
    for i in range(n - 1):
        later = st.sampled_from(ids[i + 1 :])
        kind = draw(st.sampled_from(["say", "question", "input", "branch", "action"]))
        if kind == "say":
            nodes[ids[i]] = {"kind": "say", "text": "{customer.name}", "next": draw(later)}
        elif kind == "question":
            k = draw(st.integers(1, 3))
            choices = [{"label": f"c{j}", "next": draw(later)} for j in range(k)]
            nodes[ids[i]] = {"kind": "question", "text": "?", "choices": choices}
        elif kind == "input":
            nodes[ids[i]] = {
                "kind": "input",
                "text": "?",
                "type": "number",
                "min": 0,
                "max": 10,
                "next": draw(later),
            }
            numbers.append(ids[i])
        elif kind == "branch":
            var = st.sampled_from(["customer.value", *(f"answers.{f}" for f in numbers)])
            cases = [
                {"when": f"{draw(var)} > {draw(st.integers(0, 10))}", "next": draw(later)}
                for _ in range(draw(st.integers(0, 3)))
            ]
            nodes[ids[i]] = {"kind": "branch", "cases": cases, "default": draw(later)}
        else:
            nodes[ids[i]] = {
                "kind": "action",
                "action": "set_disposition",
                "args": {"disposition": "{answers.x}" if numbers else "done"},
                "next": draw(later),
            }
    nodes[ids[-1]] = {"kind": "end"}
    meta = {"name": "g", "version": "1", "direction": "outbound", "start": "n0"}
    return Script.model_validate({"script": meta, "nodes": nodes})


@settings(max_examples=200, deadline=None)
@given(script=acyclic_scripts(), context=CONTEXTS, data=st.data())
def test_random_walks_over_generated_scripts_always_end(
    script: Script, context: dict[str, Any], data: st.DataObject
) -> None:
    problems = check_script(script, "gen.toml")
    assert not [p for p in problems if "loop" in p.message or "not a node" in p.message]
    state = runner.start(script, context)
    for _ in range(len(script.nodes)):
        assert_sound(state)
        if state.finished:
            break
        state = step(state, data, allow_back=False)
    assert state.finished
    assert_sound(state)
    visited = [s.node for s in state.path]
    assert len(visited) == len(set(visited))
    assert visited[-1] == f"n{len(script.nodes) - 1}"
