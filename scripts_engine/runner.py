"""The script runner: a pure state machine.

:func:`start` gives the first :class:`RunState`; :func:`answer` (question and input nodes),
:func:`advance` (say nodes) and :func:`back` each return a new state and never change the
old one. Branch and action nodes are passed through at once: a branch picks its target, an
action is recorded as an :class:`Effect` for the service to carry out (the runner performs
nothing). The state holds the script it started with, so a call keeps that version even if
the file changes; :meth:`RunState.to_dict` / :meth:`RunState.from_dict` save and resume.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from cti.errors import ScriptError
from cti.models import CallerInfo, Customer
from scripts_engine import expr
from scripts_engine.expr import Scalar
from scripts_engine.model import (
    ActionKind,
    ActionNode,
    BranchNode,
    Choice,
    EndNode,
    FieldType,
    InputNode,
    QuestionNode,
    SayNode,
    Script,
)
from scripts_engine.text import TextSpan, has_placeholder, render, segments

_PHONE = re.compile(r"^\+?[0-9]{3,15}$")
_YES = {"yes", "y", "true", "1", "是", "是的", "对"}
_NO = {"no", "n", "false", "0", "否", "不", "不是"}
#: Actions left in the outbox for other systems to carry out (mail, the do-not-call list):
#: never with an argument missing its value (:func:`unfilled`).
OUTBOX_ACTIONS = frozenset({ActionKind.ADD_TO_DNC.value, ActionKind.SEND_EMAIL.value})
#: Passes through branch/action nodes at most this many times in one move (a loop guard).
_MAX_AUTO_STEPS = 1000


class AnswerError(ScriptError):
    """An answer does not fit the node's field; the message says what would."""


@dataclass(frozen=True)
class Effect:
    """An action the script asks for, for the service to perform."""

    node: str
    action: str
    args: dict[str, Scalar]


@dataclass(frozen=True)
class Step:
    """One node on the path taken, with the answer given there and the effects it caused."""

    node: str
    answer: Scalar = None
    answered: bool = False
    effects: tuple[Effect, ...] = ()


@dataclass(frozen=True)
class RunState:
    script: Script
    context: Mapping[str, Scalar]
    path: tuple[Step, ...]
    """Every node visited, the current one last."""
    finished: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def node_id(self) -> str:
        return self.path[-1].node

    @property
    def node(self) -> SayNode | QuestionNode | InputNode | BranchNode | ActionNode | EndNode:
        return self.script.nodes[self.node_id]

    @property
    def version(self) -> str:
        return self.script.meta.version

    @property
    def answers(self) -> dict[str, Scalar]:
        out: dict[str, Scalar] = {}
        for step in self.path:
            if step.answered:
                node = self.script.nodes[step.node]
                if isinstance(node, QuestionNode | InputNode):
                    out[node.field or step.node] = step.answer
        return out

    @property
    def effects(self) -> list[Effect]:
        return [e for s in self.path for e in s.effects]

    def values(self) -> dict[str, Scalar]:
        """Context and answers as one flat mapping for expressions and text."""
        out = dict(self.context)
        out.update({f"answers.{k}": v for k, v in self.answers.items()})
        return out

    def text(self) -> list[TextSpan]:
        """The current node's text, variables filled safely."""
        node = self.node
        if isinstance(node, SayNode | QuestionNode | InputNode | EndNode):
            return segments(node.text, self.values())
        return []

    def to_dict(self) -> dict[str, Any]:
        return {
            "script": self.script.model_dump(mode="json"),
            "context": dict(self.context),
            "path": [
                {
                    "node": s.node,
                    "answer": s.answer,
                    "answered": s.answered,
                    "effects": [
                        {"node": e.node, "action": e.action, "args": e.args} for e in s.effects
                    ],
                }
                for s in self.path
            ],
            "finished": self.finished,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunState:
        try:
            script = Script.model_validate(data["script"])
            path = tuple(
                Step(
                    node=str(s["node"]),
                    answer=s["answer"],
                    answered=bool(s["answered"]),
                    effects=tuple(
                        Effect(str(e["node"]), str(e["action"]), dict(e["args"]))
                        for e in s["effects"]
                    ),
                )
                for s in data["path"]
            )
            state = cls(script, dict(data["context"]), path, bool(data["finished"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ScriptError(f"not a saved script run: {exc}") from None
        if not path or any(s.node not in script.nodes for s in path):
            raise ScriptError("a saved script run names a node its script does not have")
        return state


def context_for(
    customer: Customer | None = None,
    caller: CallerInfo | None = None,
    *,
    agent_id: str = "",
    agent_name: str = "",
    call_id: str = "",
    queue: str = "",
    direction: str = "inbound",
    campaign: Mapping[str, Scalar] | None = None,
) -> dict[str, Scalar]:
    """The flat variable mapping for a call, from the ``cti`` models."""
    if customer is None and caller is not None:
        customer = caller.customer
    out: dict[str, Scalar] = {
        "call.id": call_id,
        "call.queue": queue,
        "call.direction": direction,
        "agent.id": agent_id,
        "agent.name": agent_name,
    }
    if caller is not None:
        out["call.ani"] = caller.ani
        out["call.caller_kind"] = caller.kind.value
    if customer is not None:
        out.update(
            {
                "customer.id": customer.id,
                "customer.name": customer.name,
                "customer.segment": customer.segment.value,
                "customer.value": customer.value,
                "customer.language": customer.language,
                "customer.time_zone": customer.time_zone,
                "customer.email": customer.email,
                "customer.phone": customer.phones[0].e164 if customer.phones else "",
            }
        )
    for k, v in (campaign or {}).items():
        out[f"campaign.{k}"] = v
    return {k: v for k, v in out.items() if v != ""}


def start(script: Script, context: Mapping[str, Scalar] | None = None) -> RunState:
    """A run of ``script`` at its start node."""
    if script.meta.start not in script.nodes:
        raise ScriptError(f"script {script.meta.name!r}: no start node {script.meta.start!r}")
    state = RunState(script, dict(context or {}), (Step(script.meta.start),))
    return _settle(state)


def with_context(state: RunState, context: Mapping[str, Scalar]) -> RunState:
    """The run with the call's variables as they are now (the caller identified during
    the call): its text reads them from here on, and an action passed while a value it
    needs was missing is filled again (the path taken stays as it was)."""
    state = replace(state, context=dict(context))
    values = state.values()
    path = tuple(_refilled(state.script, step, values) for step in state.path)
    return replace(state, path=path)


def unfilled(effect: Effect) -> dict[str, str]:
    """The arguments of ``effect`` that show a missing value (``‹customer.email?›``)."""
    return {k: v for k, v in effect.args.items() if isinstance(v, str) and has_placeholder(v)}


def _action_args(node: ActionNode, values: Mapping[str, Scalar]) -> dict[str, Scalar]:
    return {k: render(v, values) if isinstance(v, str) else v for k, v in node.args.items()}


def _refilled(script: Script, step: Step, values: Mapping[str, Scalar]) -> Step:
    node = script.nodes[step.node]
    if not isinstance(node, ActionNode) or not any(unfilled(e) for e in step.effects):
        return step
    args = _action_args(node, values)
    return replace(step, effects=tuple(replace(e, args=args) for e in step.effects))


def _goto(state: RunState, target: str) -> RunState:
    if target not in state.script.nodes:
        raise ScriptError(f"node {state.node_id!r} goes to {target!r}, which is not a node")
    return replace(state, path=(*state.path, Step(target)))


def _settle(state: RunState) -> RunState:
    """Pass through branch and action nodes until a node needs the agent, or the end."""
    for _ in range(_MAX_AUTO_STEPS):
        node = state.node
        if isinstance(node, EndNode):
            return replace(state, finished=True)
        if isinstance(node, BranchNode):
            values = state.values()
            target = node.default
            for case in node.cases:
                if expr.check(case.when, values):
                    target = case.next
                    break
            state = _goto(state, target)
        elif isinstance(node, ActionNode):
            effect = Effect(state.node_id, node.action.value, _action_args(node, state.values()))
            last = replace(state.path[-1], effects=(effect,))
            state = replace(state, path=(*state.path[:-1], last))
            state = _goto(state, node.next)
        else:
            return state
    raise ScriptError(f"script {state.script.meta.name!r} loops through branches and actions")


def advance(state: RunState) -> RunState:
    """Move on from a say node."""
    node = state.node
    if state.finished:
        raise ScriptError("the script has ended")
    if not isinstance(node, SayNode):
        raise ScriptError(f"node {state.node_id!r} is a {node.kind}: it needs an answer")
    return _settle(_goto(state, node.next))


def answer(state: RunState, value: object) -> RunState:
    """Answer the current question or input node; :class:`AnswerError` if it does not fit."""
    node = state.node
    if state.finished:
        raise ScriptError("the script has ended")
    if isinstance(node, QuestionNode):
        choice = _choose(node, value)
        recorded: Scalar = choice.answer
        target = choice.next
    elif isinstance(node, InputNode):
        recorded = check_input(node, value)
        target = node.next
    else:
        raise ScriptError(f"node {state.node_id!r} is a {node.kind}: it takes no answer")
    last = replace(state.path[-1], answer=recorded, answered=True)
    state = replace(state, path=(*state.path[:-1], last))
    return _settle(_goto(state, target))


def back(state: RunState) -> RunState:
    """Return to the last node that waited for the agent, forgetting what came after."""
    path = list(state.path[:-1])
    while path and isinstance(state.script.nodes[path[-1].node], BranchNode | ActionNode):
        path.pop()
    if not path:
        raise ScriptError("already at the first step: nothing to go back to")
    path[-1] = Step(path[-1].node)
    return replace(state, path=tuple(path), finished=False)


def _choose(node: QuestionNode, value: object) -> Choice:
    if isinstance(value, int) and not isinstance(value, bool):
        if 1 <= value <= len(node.choices):
            return node.choices[value - 1]
        raise AnswerError(f"choose 1..{len(node.choices)}, not {value}")
    if isinstance(value, str):
        for c in node.choices:
            if value in (c.answer, c.label):
                return c
    options = ", ".join(repr(c.answer) for c in node.choices)
    raise AnswerError(f"{value!r} is not one of the choices ({options})")


def check_input(node: InputNode, value: object) -> Scalar:
    """The value to record for an input field, or :class:`AnswerError`."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if node.required:
            raise AnswerError("an answer is required")
        return None
    kind = node.type
    if kind is FieldType.YES_NO:
        return _yes_no(value)
    if kind is FieldType.NUMBER:
        return _number(node, value)
    if kind is FieldType.DATE:
        return _date(node, value)
    if not isinstance(value, str):
        raise AnswerError(f"a text answer is needed, not {type(value).__name__}")
    return _text(node, value)


def _yes_no(value: object) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in _YES:
        return True
    if word in _NO:
        return False
    raise AnswerError(f"answer yes or no, not {value!r}")


def _number(node: InputNode, value: object) -> int | float:
    number: float
    if isinstance(value, bool):
        raise AnswerError("a number is needed, not yes/no")
    if isinstance(value, int | float):
        number = float(value)
    else:
        try:
            number = float(str(value).strip().replace(",", ""))
        except ValueError:
            raise AnswerError(f"{value!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise AnswerError(f"{value!r} is not a finite number")
    _range(node, number, f"{number:g}")
    return int(number) if number.is_integer() else number


def _date(node: InputNode, value: object) -> str:
    if isinstance(value, date):
        day = value
    else:
        try:
            day = date.fromisoformat(str(value).strip())
        except ValueError:
            raise AnswerError(f"{value!r} is not a date like 2024-03-31") from None
    _range(node, day, day.isoformat())
    return day.isoformat()


def _text(node: InputNode, value: str) -> str:
    """A text, choice or phone answer."""
    text = value.strip()
    kind = node.type
    if kind is FieldType.CHOICE:
        if text not in node.options:
            raise AnswerError(f"{text!r} is not one of {', '.join(node.options)}")
        return text
    if kind is FieldType.PHONE:
        text = re.sub(r"[\s().-]", "", text)
        if not _PHONE.fullmatch(text):
            raise AnswerError(f"{value!r} is not a phone number")
    if node.pattern is not None and not re.fullmatch(node.pattern, text):
        raise AnswerError(f"{text!r} does not match the pattern {node.pattern}")
    if kind is FieldType.TEXT:
        _range(node, float(len(text)), f"{len(text)} characters")
    return text


def _range(node: InputNode, value: float | date, shown: str) -> None:
    if node.min is not None and value < node.min:  # type: ignore[operator]
        raise AnswerError(f"{shown} is below the minimum {node.min}")
    if node.max is not None and value > node.max:  # type: ignore[operator]
        raise AnswerError(f"{shown} is above the maximum {node.max}")
