"""The call's script on the desk, pure: the script sent with an offer checked again
(parsed once per version), the variables it reads, and what the wrap-up carries of its
run (answers, path, actions, the callbacks it scheduled)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from cti.models import CallerKind, Customer, ScriptAction
from cti.protocol import (
    MAX_SCRIPT_ACTIONS,
    MAX_SCRIPT_ANSWERS,
    MAX_SCRIPT_STEPS,
    CallOffered,
    CallScript,
    ScheduleCallback,
    ScreenPop,
)
from scripts_engine import runner
from scripts_engine.catalog import text_sha256
from scripts_engine.expr import Scalar
from scripts_engine.model import Script
from scripts_engine.runner import RunState
from scripts_engine.text import has_placeholder
from scripts_engine.validate import parse_script

#: How many parsed scripts (by SHA-256 of their text) are kept for the next offers.
SCRIPTS_KEPT = 16
#: Longest text answer sent with a wrap-up (the wire protocol's bound).
ANSWER_CHARS = 4000

Parsed = tuple[Script | None, list[str]]
"""A script, or ``None`` and why it cannot run."""


class ScriptCache:
    """Scripts sent with offers, parsed once per version (the last :data:`SCRIPTS_KEPT`)."""

    def __init__(self) -> None:
        self._scripts: OrderedDict[str, Parsed] = OrderedDict()

    def parse(self, sent: CallScript) -> Parsed:
        cached = self._scripts.get(sent.sha256)
        if cached is not None:
            self._scripts.move_to_end(sent.sha256)
            return cached
        result: Parsed
        if text_sha256(sent.text) != sent.sha256:
            result = (
                None,
                ["its text does not match the SHA-256 it came with (damaged on the way?)"],
            )
        else:
            script, problems = parse_script(sent.text, sent.file or sent.name)
            result = (script if not problems else None, [str(p) for p in problems])
        self._scripts[sent.sha256] = result
        while len(self._scripts) > SCRIPTS_KEPT:
            self._scripts.popitem(last=False)
        return result


def script_context(
    offer: CallOffered, agent_id: str, caller: Customer | None = None
) -> dict[str, Scalar]:
    """The variables a script reads, from the offer (what the engine knows) and the
    customer the agent identified the caller as (``caller``), if any."""
    pop = offer.pop
    customer = pop.customer if pop.caller_kind is CallerKind.KNOWN else None
    customer = caller if caller is not None else customer
    context = runner.context_for(
        customer,
        agent_id=agent_id,
        agent_name=offer.agent_name or agent_id,  # never ‹agent.name?› read aloud
        call_id=pop.call_id,
        queue=pop.queue,
    )
    context["call.ani"] = pop.ani
    # The number to call back on (a phone field starts with it): never a withheld one.
    known = pop.caller_kind in (CallerKind.KNOWN, CallerKind.UNKNOWN)
    context["call.number"] = pop.e164 or (pop.ani if known else "")
    context["call.caller_kind"] = pop.caller_kind.value
    context["call.wait_s"] = round(pop.waited_s)
    return {k: v for k, v in context.items() if v != ""}


def script_fields(state: RunState | None, sent: CallScript | None) -> dict[str, Any]:
    """What the wrap-up (and a saved run) carries of the call's script: answers, path,
    actions, cut to the wire protocol's bounds; empty without a run."""
    if state is None or sent is None:
        return {}
    answers = {
        name: value[:ANSWER_CHARS] if isinstance(value, str) else value
        for name, value in list(state.answers.items())[:MAX_SCRIPT_ANSWERS]
    }
    actions = tuple(
        ScriptAction(
            node=effect.node,
            action=effect.action,
            args={k: v for k, v in effect.args.items() if v is not None},
        )
        for effect in state.effects[:MAX_SCRIPT_ACTIONS]
    )
    return {
        "script": sent.name,
        "script_version": sent.version,
        "script_sha256": sent.sha256,
        "answers": answers,
        "script_path": tuple(step.node for step in state.path)[-MAX_SCRIPT_STEPS:],
        "script_actions": actions,
    }


def outbox_refusals(effects: Sequence[runner.Effect]) -> list[str]:
    """Why each outbox action among ``effects`` (mail, do-not-call) will not be carried
    out: an argument has no value. Such an action is never sent or queued."""
    out = []
    for effect in effects:
        missing = runner.unfilled(effect)
        if effect.action in runner.OUTBOX_ACTIONS and missing:
            shown = ", ".join(f"{name} = {value}" for name, value in missing.items())
            out.append(
                f"The script's {effect.action} is not queued: {shown} has no value. "
                "Identify the caller (c or f) and it is filled in."
            )
    return out


def callbacks_asked(
    state: RunState, pop: ScreenPop, agent_id: str, now: float
) -> list[ScheduleCallback]:
    """The callbacks the script scheduled, as commands to the engine (the caller's number
    unless the script named another; the time in UTC)."""
    out = []
    for effect in state.effects:
        if effect.action != "schedule_callback":
            continue
        phone = effect.args.get("phone")
        number = str(phone) if phone and not has_placeholder(str(phone)) else ""
        try:
            minutes = float(effect.args.get("after_minutes") or 0)
        except (TypeError, ValueError):
            minutes = 0.0
        at = datetime.fromtimestamp(now + max(0.0, minutes) * 60, UTC)
        out.append(
            ScheduleCallback(
                agent_id=agent_id,
                number=number or pop.e164 or pop.ani,
                local_time=at.strftime("%Y-%m-%dT%H:%M"),
                time_zone="UTC",
                queue=pop.queue,
            )
        )
    return out
