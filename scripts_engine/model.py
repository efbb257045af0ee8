"""The call-script file format (TOML), as pydantic models.

A script file has a ``[script]`` table of metadata and one ``[nodes.ID]`` table per node::

    [script]
    name = "Service"
    version = "1.0"
    language = "en"
    direction = "inbound"
    queues = ["service"]
    start = "greet"

    [nodes.greet]
    kind = "say"
    text = "Hello {customer.name}"
    next = "reason"

Node kinds: ``say``, ``question``, ``input``, ``branch``, ``action``, ``end``.
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from scripts_engine.expr import IDENT

#: Variables a script may read, by namespace. ``answers.X`` is any field an input or
#: question node of the script defines.
KNOWN_VARIABLES: dict[str, frozenset[str]] = {
    "customer": frozenset(
        {"id", "name", "segment", "value", "language", "time_zone", "email", "phone"}
    ),
    "call": frozenset({"id", "ani", "dnis", "queue", "direction", "wait_s", "caller_kind"}),
    "agent": frozenset({"id", "name"}),
    "campaign": frozenset({"id", "name", "product", "offer"}),
}

ID = Annotated[str, Field(pattern=rf"^{IDENT}$")]
"""A node id: a letter or ``_``, then letters, digits, ``_`` or ``-`` (``ask-reason``)."""
FieldName = Annotated[str, Field(pattern=rf"^({IDENT})?$")]
"""An answer's name (``answers.NAME``), spelled like a node id; empty means the node id."""


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class FieldType(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    DATE = "date"
    PHONE = "phone"
    CHOICE = "choice"
    YES_NO = "yes_no"


class ActionKind(StrEnum):
    SET_DISPOSITION = "set_disposition"
    SCHEDULE_CALLBACK = "schedule_callback"
    ADD_TO_DNC = "add_to_dnc"
    TRANSFER_QUEUE = "transfer_queue"
    SEND_EMAIL = "send_email"


#: Arguments each action needs.
ACTION_ARGS: dict[ActionKind, tuple[str, ...]] = {
    ActionKind.SET_DISPOSITION: ("disposition",),
    ActionKind.SCHEDULE_CALLBACK: ("after_minutes",),
    ActionKind.ADD_TO_DNC: (),
    ActionKind.TRANSFER_QUEUE: ("queue",),
    ActionKind.SEND_EMAIL: ("template",),
}

_STRICT = ConfigDict(frozen=True, extra="forbid")


class Meta(BaseModel):
    model_config = _STRICT

    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    language: str = "en"
    direction: Direction
    queues: tuple[str, ...] = ()
    campaigns: tuple[str, ...] = ()
    start: ID
    description: str = ""


class SayNode(BaseModel):
    model_config = _STRICT

    kind: Literal["say"]
    text: str
    next: ID


class Choice(BaseModel):
    model_config = _STRICT

    label: str = Field(min_length=1)
    next: ID
    value: str = ""
    """What is recorded as the answer; the label when empty."""

    @property
    def answer(self) -> str:
        return self.value or self.label


class QuestionNode(BaseModel):
    model_config = _STRICT

    kind: Literal["question"]
    text: str
    field: FieldName = ""
    """Name of the answer (``answers.FIELD``); the node id when empty."""
    choices: tuple[Choice, ...] = Field(min_length=1)


class InputNode(BaseModel):
    model_config = _STRICT

    kind: Literal["input"]
    text: str
    field: FieldName = ""
    type: FieldType = FieldType.TEXT
    required: bool = True
    pattern: str | None = None
    min: float | date | None = None
    max: float | date | None = None
    """Range: a number's value, a date's day, a text's length."""
    options: tuple[str, ...] = ()
    """The allowed values of a ``choice`` field."""
    next: ID

    @model_validator(mode="after")
    def _consistent(self) -> InputNode:
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(
                    f"pattern {self.pattern!r} is not a regular expression: {exc}"
                ) from None
        if self.type is FieldType.CHOICE and not self.options:
            raise ValueError("a choice field needs options")
        if self.type is not FieldType.CHOICE and self.options:
            raise ValueError("options are only for type = 'choice'")
        for bound in (self.min, self.max):
            if bound is None:
                continue
            if self.type is FieldType.DATE and not isinstance(bound, date):
                raise ValueError("a date field's min and max are dates (1990-01-31)")
            if self.type is not FieldType.DATE and isinstance(bound, date):
                raise ValueError("min and max are dates only for type = 'date'")
        if self.min is not None and self.max is not None and self.min > self.max:  # type: ignore[operator]
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class Case(BaseModel):
    model_config = _STRICT

    when: str = Field(min_length=1)
    next: ID


class BranchNode(BaseModel):
    model_config = _STRICT

    kind: Literal["branch"]
    cases: tuple[Case, ...] = ()
    """Tried in order; the first whose ``when`` holds is taken."""
    default: ID
    """Taken when no case holds."""


ArgValue = str | int | float | bool


class ActionNode(BaseModel):
    """Records an effect for the service to carry out; the runner never performs it."""

    model_config = _STRICT

    kind: Literal["action"]
    action: ActionKind
    args: dict[str, ArgValue] = Field(default_factory=dict)
    next: ID

    @model_validator(mode="after")
    def _args(self) -> ActionNode:
        missing = [a for a in ACTION_ARGS[self.action] if a not in self.args]
        if missing:
            raise ValueError(f"action {self.action.value} needs args {', '.join(missing)}")
        return self


class EndNode(BaseModel):
    model_config = _STRICT

    kind: Literal["end"]
    text: str = ""


ScriptNode = Annotated[
    SayNode | QuestionNode | InputNode | BranchNode | ActionNode | EndNode,
    Field(discriminator="kind"),
]


class Script(BaseModel):
    model_config = _STRICT

    script: Meta
    nodes: dict[ID, ScriptNode] = Field(min_length=1)

    @property
    def meta(self) -> Meta:
        return self.script

    def answer_fields(self) -> dict[str, str]:
        """Answer name -> id of the node that asks it."""
        out: dict[str, str] = {}
        for node_id, node in self.nodes.items():
            if isinstance(node, QuestionNode | InputNode):
                out[node.field or node_id] = node_id
        return out


def field_name(node_id: str, node: QuestionNode | InputNode) -> str:
    return node.field or node_id


def targets(
    node: SayNode | QuestionNode | InputNode | BranchNode | ActionNode | EndNode,
) -> list[str]:
    """The ids a node may go to next, in order."""
    match node:
        case SayNode() | InputNode() | ActionNode():
            return [node.next]
        case QuestionNode():
            return [c.next for c in node.choices]
        case BranchNode():
            return [c.next for c in node.cases] + [node.default]
    return []
