"""What a call's script recorded: the run saved during the call (``SaveScriptRun``),
replaced by the one the wrap-up brings, stored with the call's customer; the
do-not-call and e-mail actions left in the outbox for other systems to carry out."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable

from cti.clock import wall_time
from cti.engine.directory import CallRecorder, ScriptRunRecorder
from cti.errors import CtiError, RoutingError, StoreError
from cti.models import AgentState, Customer, OutboxItem, Scalar, ScriptAction, ScriptRun
from cti.protocol import CompleteWrapUp, SaveScriptRun
from queue_engine.router import Router
from scripts_engine.model import ActionKind
from scripts_engine.runner import OUTBOX_ACTIONS
from scripts_engine.text import has_placeholder

log = logging.getLogger(__name__)

#: Calls whose last saved run is kept in memory at most (oldest forgotten first).
MAX_PARTIAL_RUNS = 10_000


class ScriptRuns:
    """Keeps the script runs of the calls (module docstring). ``chosen``: the customer
    the agent chose for a call, if any (the run goes to that customer)."""

    def __init__(
        self,
        router: Router,
        recorder: CallRecorder | None,
        chosen: Callable[[str], Customer | None],
    ) -> None:
        self._router = router
        self._recorder = recorder
        self._chosen = chosen
        self.partial: OrderedDict[str, SaveScriptRun] = OrderedDict()
        """The script run saved last for each call not yet wrapped up (SaveScriptRun)."""
        self.answers: dict[str, dict[str, Scalar]] = {}
        """Answers a wrap-up brought, until the call's interaction is written."""

    async def keep_wrap_up(self, wrap_up: CompleteWrapUp) -> None:
        """Store what the call's script recorded, before the wrap-up is applied.

        Only for the call the agent is wrapping up; if the store fails, the wrap-up is
        refused (:class:`StoreError`) so the agent can send it again: nothing is lost.
        An agent who handed the call on keeps its run under ``<call id>/<agent id>``
        (the call's own id is for the agent who finishes it).
        """
        if not wrap_up.script or not self._router.has_agent(wrap_up.agent_id):
            return
        agent = self._router.agent(wrap_up.agent_id)
        if agent.state is not AgentState.WRAP_UP or agent.call_id != wrap_up.call_id:
            return  # the router refuses the wrap-up itself, with its reason
        self.partial.pop(wrap_up.call_id, None)  # the wrap-up's run replaces it
        leg = self._leg_of(wrap_up.agent_id, wrap_up.call_id)
        if not leg:
            self.answers[wrap_up.call_id] = dict(wrap_up.answers)
        try:
            await self.store(wrap_up, outbox=True, leg=leg)
        except StoreError as exc:
            self.answers.pop(wrap_up.call_id, None)
            raise StoreError(
                f"the script's answers were not saved, send the wrap-up again: {exc}"
            ) from exc

    async def keep_partial(self, save: SaveScriptRun) -> None:
        """Store the script run so far (replacing the last one saved): the answers are
        kept even if the wrap-up timer ends the call first. Its actions go to the outbox
        only when the call's record is written without a wrap-up of its own."""
        agent = self._router.agent(save.agent_id)
        if agent.call_id != save.call_id or agent.state not in (
            AgentState.TALKING,
            AgentState.WRAP_UP,
        ):
            raise CtiError(f"agent {save.agent_id!r} is not on call {save.call_id!r}")
        leg = self._leg_of(save.agent_id, save.call_id)
        if not leg:
            self.partial[save.call_id] = save
            self.partial.move_to_end(save.call_id)
            while len(self.partial) > MAX_PARTIAL_RUNS:
                self.partial.popitem(last=False)
            self.answers[save.call_id] = dict(save.answers)
        await self.store(save, outbox=False, leg=leg)

    def _leg_of(self, agent_id: str, call_id: str) -> bool:
        """Whether ``agent_id`` handed ``call_id`` on (its run is its part only)."""
        try:
            return self._router.call_agent(call_id) != agent_id
        except RoutingError:
            return True  # over already: only an agent who handed it on is still on it

    async def store(
        self,
        source: CompleteWrapUp | SaveScriptRun,
        *,
        outbox: bool,
        leg: bool = False,
        customer_id: int | None = None,
    ) -> None:
        """Keep a script run (``leg``: under ``<call id>/<agent id>``); ``customer_id``
        when the call is over and the router no longer knows its caller."""
        if not isinstance(self._recorder, ScriptRunRecorder):
            return
        call_id = source.call_id
        try:
            info = self._router.call_caller(call_id)
            caller: Customer | None = info.customer
            number = info.e164 or ""
        except RoutingError:
            caller, number = None, ""
        chosen = self._chosen(call_id)
        customer = chosen if chosen is not None else caller
        customer_id = customer.id if customer is not None else customer_id
        wall = wall_time()
        run = ScriptRun(
            call_id=f"{call_id}/{source.agent_id}" if leg else call_id,
            agent_id=source.agent_id,
            customer_id=customer_id,
            script=source.script,
            version=source.script_version,
            sha256=source.script_sha256,
            answers=dict(source.answers),
            path=source.script_path,
            actions=source.script_actions,
            recorded_wall=wall,
        )
        items = [
            OutboxItem(
                call_id=run.call_id,
                customer_id=customer_id,
                action=action.action,
                args=_with_number(action, number),
                created_wall=wall,
            )
            for action in source.script_actions
            if outbox and action.action in OUTBOX_ACTIONS and _filled(run.call_id, action)
        ]
        await self._recorder.script_runs.record(run, items)


def _with_number(action: ScriptAction, number: str) -> dict[str, str | int | float | bool]:
    """A do-not-call request keeps the number the call came from (the outbox is carried
    out after the router has forgotten the call: :mod:`cti.engine.do_not_call`)."""
    if action.action == ActionKind.ADD_TO_DNC and number and "number" not in action.args:
        return {**action.args, "number": number}
    return dict(action.args)


def _filled(call_id: str, action: ScriptAction) -> bool:
    """Whether every argument of an outbox action has its value: one that reads
    ``‹customer.email?›`` is never queued (the desk told the agent why)."""
    missing = [k for k, v in action.args.items() if isinstance(v, str) and has_placeholder(v)]
    if missing:
        log.warning(
            "call %s: the script's %s is not queued: %s has no value",
            call_id,
            action.action,
            ", ".join(missing),
        )
    return not missing
