"""The agent states and offers the engine makes without validating them again
(:mod:`cti.engine.built`, issue 23) are the messages validation makes of the same
values: equal field by field, and the same bytes on the wire, hostile text included."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cti.config import Config, load_config
from cti.engine.built import built, shown
from cti.engine.dispatch import Answers, CommandDispatcher, Parts, applied, router_input
from cti.engine.effects import arrives, offers_first
from cti.engine.line_book import LineBook
from cti.engine.records import started
from cti.engine.screen_pop import ScreenPops, identify
from cti.engine.status import AgentViews
from cti.errors import RoutingError, StoreError
from cti.fields import clean_text
from cti.models import (
    CALLER_NAME_MAX_CHARS,
    AgentState,
    CallDetailRecord,
    CallerInfo,
    CallerKind,
    Customer,
    Interaction,
    QueueConfig,
    Segment,
)
from cti.phone import classify
from cti.protocol import (
    AcceptOffer,
    AgentStateChanged,
    CallConnected,
    CallEnded,
    CallOffered,
    CommandResult,
    CompleteWrapUp,
    HangUp,
    OfferWithdrawn,
    RejectOffer,
    ScreenPop,
    encode,
)
from queue_engine import inputs as ri
from queue_engine.actions import (
    Action,
    AgentStateSet,
    ConnectCall,
    DisconnectCall,
    OfferCall,
    WithdrawOffer,
)
from queue_engine.inputs import INPUT
from queue_engine.priority import explain
from queue_engine.router_state import AgentSnapshot
from scripts_engine.catalog import ScriptCatalog
from telephony_adapters.sim import SimTrunk

HOSTILE = st.sampled_from(
    ["", "WANG JUN", "王小明", "a\u202eb\x00c\n", "x" * 300, "\x1b[31mred", "tab\there"]
) | st.text(max_size=80)
TIMES = st.floats(min_value=-1e9, max_value=2e9, allow_nan=False) | st.integers(0, 10**9)


@dataclass
class FakeRouter:
    snapshot: AgentSnapshot
    caller: CallerInfo | None
    arrived_at: float = 0.0
    queue: QueueConfig = field(default_factory=lambda: QueueConfig(name="general"))

    def agent(self, agent_id: str) -> AgentSnapshot:
        return self.snapshot

    def call_caller(self, call_id: str) -> CallerInfo:
        if self.caller is None:
            raise RoutingError(f"no call {call_id}")
        return self.caller

    def call_arrived_at(self, call_id: str) -> float:
        return self.arrived_at

    def queue_config(self, queue: str) -> QueueConfig:
        return self.queue


@dataclass
class FakePops:
    agent_names: dict[str, str]


def _config(reasons: tuple[str, ...] = ("lunch", "break")) -> Config:
    return load_config(None, {"engine": {"not_ready_reasons": list(reasons),
                                         "dispositions": ["ok", "later"]}})  # fmt: skip


def _same(made: Any, validated: Any) -> None:
    assert type(made) is type(validated)
    assert made == validated
    assert list(made.__dict__) == list(type(made).model_fields)
    assert encode(made) == encode(validated)


def _caller(ani: str, name: str, known: bool) -> CallerInfo:
    customer = Customer(id=7, name="Alice 李", value=81.25, segment=Segment.GOLD)
    history = (Interaction(at=1.5, channel="call", disposition="ok", note="n\x07ote"),)
    return CallerInfo(
        ani=ani, e164="+8613900001234" if ani else None, caller_name=name[:64],
        kind=CallerKind.KNOWN if known else CallerKind.UNKNOWN,
        customer=customer if known else None, matches=(customer,) if known else (),
        history=history if known else (),
    )  # fmt: skip


@settings(max_examples=300)
@given(
    state=st.sampled_from(list(AgentState)),
    reason=HOSTILE,
    agent_name=HOSTILE,
    ani=HOSTILE,
    name=HOSTILE,
    known=st.booleans(),
    on_call=st.sampled_from(["call-1", None, "gone"]),
    since=TIMES,
    deadline=st.none() | TIMES,
    now=TIMES,
    wall=TIMES,
    handled=st.integers(0, 10**6),
    reachable=st.sampled_from([None, True, False]),
)
def test_an_agents_state_is_what_validation_makes(
    state: AgentState, reason: str, agent_name: str, ani: str, name: str, known: bool,
    on_call: str | None, since: float, deadline: float | None, now: float, wall: float,
    handled: int, reachable: bool | None,
) -> None:  # fmt: skip
    config = _config()
    snapshot = AgentSnapshot("1001", state, reason, since, on_call, deadline, handled)
    caller = None if on_call == "gone" else _caller(ani, name, known)
    router = FakeRouter(snapshot, caller)
    views = AgentViews(router, lambda: config, FakePops({"1001": agent_name}), None, print,  # type: ignore[arg-type]
                       phone_reachable=lambda _agent_id: reachable)  # fmt: skip
    # What the engine sent before: the same values, validated.
    number = name_shown = ""
    if on_call is not None and caller is not None:
        name_shown = caller.customer.name if caller.customer is not None else ""
        number = caller.e164 or caller.ani
    validated = AgentStateChanged(
        agent_id="1001", state=state, reason=reason, since_wall=wall - (now - since),
        call_id=on_call,
        wrap_up_deadline_wall=None if deadline is None or state is not AgentState.WRAP_UP
        else wall + (deadline - now),
        calls_handled=handled, not_ready_reasons=config.engine.not_ready_reasons,
        phone_reachable=reachable, agent_name=agent_name, caller_name=name_shown,
        caller_number=number,
    )  # fmt: skip
    _same(views.state("1001", now, wall), validated)


@settings(max_examples=200)
@given(
    ani=HOSTILE,
    name=HOSTILE,
    known=st.booleans(),
    agent_name=HOSTILE,
    arrived=TIMES,
    now=TIMES,
    wall=TIMES,
    ring_s=st.floats(min_value=0, max_value=120) | st.integers(0, 120),
)
def test_an_offer_is_what_validation_makes(
    ani: str, name: str, known: bool, agent_name: str, arrived: float, now: float,
    wall: float, ring_s: float,
) -> None:  # fmt: skip
    config = _config()
    caller = _caller(ani, name, known)
    snapshot = AgentSnapshot("1001", AgentState.RESERVED, "", 0.0, "call-1", None, 0)
    router = FakeRouter(snapshot, caller, arrived_at=arrived)
    lines = LineBook([SimTrunk("sim")], None)
    lines["call-1"] = "sim"
    pops = ScreenPops(router, lambda: config, ScriptCatalog(), lines, {"1001": agent_name})  # type: ignore[arg-type]
    deadline = now + ring_s
    waited = now - arrived

    pop = ScreenPop(
        call_id="call-1", queue="general", ani=caller.ani, e164=caller.e164,
        caller_kind=caller.kind, customer=caller.customer, history=caller.history,
        waited_s=waited, priority_reason=explain(router.queue, caller.value, waited),
        caller_name=caller.caller_name, matches=caller.matches,
        service_items=caller.service_items, value_explanation=caller.value_explanation,
        script=None, line=lines.features("call-1"), message=None,
    )  # fmt: skip
    validated = CallOffered(
        agent_id="1001", pop=pop, timeout_s=deadline - now,
        deadline_wall=wall + (deadline - now), dispositions=config.engine.dispositions,
        agent_name=agent_name,
    )  # fmt: skip
    offer, payload = pops.offer_encoded("call-1", "1001", "general", deadline, now, wall)
    _same(offer.pop, validated.pop)
    _same(offer, validated)
    assert payload == encode(validated)
    consulted, payload = pops.offer_encoded(
        "call-1", "1001", "general", deadline, now, wall, consult_from="1002"
    )
    assert consulted == validated.model_copy(update={"consult_from": "1002"})
    assert payload == encode(consulted)


def test_a_built_message_copies_and_compares_as_a_validated_one() -> None:
    validated = CallConnected(agent_id="1001", call_id="c1")
    made = built(CallConnected, dict(validated.__dict__))  # every field, whatever they are
    assert made == validated
    assert encode(made) == encode(validated)
    assert made.model_copy(update={"call_id": "c2"}) == CallConnected(agent_id="1001", call_id="c2")
    assert hash(made) == hash(CallConnected(agent_id="1001", call_id="c1"))


class _NoOne:
    def __init__(self, fails: bool) -> None:
        self.fails = fails

    async def find_by_number(self, e164: str) -> list[Customer]:
        if self.fails:
            raise StoreError("down")
        return []

    async def recent_interactions(self, customer_id: int, limit: int = 5) -> tuple[()]:
        return ()


@settings(max_examples=200)
@given(ani=HOSTILE | st.sampled_from(["13900001234", "P", "+1 212 555 0143"]), name=HOSTILE,
       fails=st.booleans())  # fmt: skip
def test_a_caller_no_customer_matches_is_what_validation_makes(
    ani: str, name: str, fails: bool
) -> None:
    config = _config()
    kind, e164 = classify(ani, config.engine.default_region)
    validated = CallerInfo(ani=ani, e164=e164, kind=kind)
    shown_name = clean_text(name.strip(), max_length=CALLER_NAME_MAX_CHARS)
    if shown_name:
        validated = validated.model_copy(update={"caller_name": shown_name})
    made = asyncio.run(identify(_NoOne(fails), ani, config, name))
    assert made == validated
    assert list(made.__dict__) == list(CallerInfo.model_fields)
    assert made.model_dump_json() == validated.model_dump_json()


IDS = st.from_regex(r"[A-Za-z0-9_.:@~=\-]{1,40}", fullmatch=True)


@settings(max_examples=200)
@given(agent=IDS, call=IDS, command_id=IDS, reason=HOSTILE, by=st.sampled_from(
    ["agent", "caller", "transfer"]), disposition=HOSTILE, note=HOSTILE)  # fmt: skip
def test_the_commands_inputs_and_answers_are_what_validation_makes(
    agent: str, call: str, command_id: str, reason: str, by: str, disposition: str, note: str
) -> None:
    """The router inputs of a call's accept, reject and hang-up, the events that answer
    them and a command's result applied (cti.engine.dispatch, issue 23)."""
    accept = AcceptOffer(agent_id=agent, call_id=call, command_id=command_id)
    reject = RejectOffer(agent_id=agent, call_id=call, command_id=command_id)
    hang_up = HangUp(agent_id=agent, call_id=call, command_id=command_id)
    _same(router_input(accept), ri.AgentAccepts(agent_id=agent, call_id=call))
    _same(router_input(reject), ri.AgentRejects(agent_id=agent, call_id=call))
    _same(router_input(hang_up), ri.AgentHangsUp(agent_id=agent, call_id=call))
    _same(applied(command_id), CommandResult(command_id=command_id, ok=True))
    answers = Answers()
    for command in (accept, hang_up, reject):
        answers.expect(command)
    ended = DisconnectCall(call, agent, by)  # type: ignore[arg-type]
    withdrawn = WithdrawOffer(call, agent, reason)  # type: ignore[arg-type]
    for command_id_named in (command_id, ""):  # an accept's answer, then no command's
        _same(
            answers.connected(ConnectCall(call, agent)),
            CallConnected(agent_id=agent, call_id=call, command_id=command_id_named),
        )
        _same(
            answers.ended(ended),
            CallEnded(agent_id=agent, call_id=call, by=by, command_id=command_id_named),
        )
        _same(
            answers.withdrawn(withdrawn),
            OfferWithdrawn(
                agent_id=agent, call_id=call, reason=reason, command_id=command_id_named
            ),
        )
        answers = Answers()  # fmt: skip


def test_a_wrap_up_is_routed_as_validation_makes_its_input() -> None:
    routed: list[ri.AnyInput] = []
    parts = Parts(routed.append, None, None, _Runs(), None, lambda _a: None)  # type: ignore[arg-type]
    done = CompleteWrapUp(agent_id="1001", call_id="c1", disposition="ok", note="a\tnote")
    result = asyncio.run(CommandDispatcher(parts, lambda *_: None).execute(done))
    assert result.ok
    _same(routed[0], ri.AgentFinishesWrapUp(agent_id="1001", call_id="c1", disposition="ok",
                                            note="a\tnote"))  # fmt: skip


class _Runs:
    async def keep_wrap_up(self, message: CompleteWrapUp) -> None:
        pass


@settings(max_examples=100)
@given(text=HOSTILE)
def test_a_shown_text_kept_is_what_validation_makes(text: str) -> None:
    validated = AgentStateChanged(agent_id="1001", state=AgentState.READY, since_wall=0.0,
                                  agent_name=text).agent_name  # fmt: skip
    assert shown(text) == validated
    assert shown(text) == validated  # kept, the same


def test_an_arrival_is_the_input_validation_makes() -> None:
    for caller in (_caller("13900001234", "", known=False), _caller("", "王", known=True)):
        _same(arrives("sim-1", "general", caller),
              ri.CallArrives(call_id="sim-1", queue="general", caller=caller))  # fmt: skip
        assert INPUT.dump_json(arrives("c", "q", caller)) == INPUT.dump_json(
            ri.CallArrives(call_id="c", queue="q", caller=caller))  # fmt: skip


@given(
    offered=st.none() | TIMES,
    answered=st.none() | TIMES,
    agent=st.none() | IDS,
    customer=st.none() | st.integers(1, 2**63 - 1),
    wall=TIMES,
)
def test_a_records_copy_with_its_start_is_what_replace_makes(
    offered: float | None, answered: float | None, agent: str | None, customer: int | None,
    wall: float,
) -> None:  # fmt: skip
    cdr = CallDetailRecord(
        call_id="c1", queue="general", ani="139", caller_kind=CallerKind.KNOWN,
        customer_id=customer, segment=Segment.GOLD, value=3.5, arrived_at=1.0,
        offered_at=offered, answered_at=answered, ended_at=9.0, agent_id=agent,
        outcome="answered", disposition="ok", note="n", callback_requested_at=offered,
    )  # fmt: skip
    copy = started(cdr, wall)
    assert copy == replace(cdr, started_wall=wall)
    assert copy is not cdr
    assert cdr.started_wall == 0.0


def test_an_offer_goes_ahead_of_its_agents_state_alone() -> None:
    state, offer = AgentStateSet("1001", AgentState.RESERVED), OfferCall("c1", "1001", "q", 5.0)
    other = AgentStateSet("1002", AgentState.READY)
    none_moved: list[Action] = [other, state]
    assert offers_first(none_moved) is none_moved  # nothing moved: not copied
    actions: list[Action] = [other, state, offer]
    assert offers_first(actions) == [other, offer, state]
    assert actions == [other, state, offer]  # the router's list as it was
