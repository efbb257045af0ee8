"""The call records the router makes, whole: every field as the class's own constructor
makes it (the router builds them by ``__new__`` and ``__init__`` apart, and reads the
caller's value and segment without the model's properties)."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest

from cti.models import (
    CallDetailRecord,
    CallerInfo,
    CallerKind,
    Customer,
    Segment,
    new_call_record,
)
from queue_engine import inputs as ri
from tests.queue_engine.test_router import make_router, only_record, ready

GOLD = Customer(id=9, name="Gold", value=88.0, segment=Segment.PLATINUM)
ANONYMOUS = CallerInfo(ani="P", kind=CallerKind.PRIVATE)


@pytest.mark.parametrize(
    "caller",
    [CallerInfo(ani="+442070000009", kind=CallerKind.KNOWN, customer=GOLD), ANONYMOUS],
    ids=["customer", "no-customer"],
)
def test_an_answered_calls_record_has_every_field_as_the_constructor_makes_it(
    caller: CallerInfo,
) -> None:
    router = make_router()
    ready(router, "a1", 0.0)
    router.handle(ri.CallArrives(call_id="c1", queue="sales", caller=caller), 1.0)
    router.handle(ri.AgentAccepts(agent_id="a1", call_id="c1"), 3.0)
    router.handle(ri.AgentHangsUp(agent_id="a1", call_id="c1"), 60.0)
    done = ri.AgentFinishesWrapUp(agent_id="a1", call_id="c1", disposition="sale", note="n")

    cdr = only_record(router.handle(done, 72.0)).cdr

    customer = caller.customer
    expected = CallDetailRecord(
        call_id="c1",
        queue="sales",
        ani=caller.ani,
        caller_kind=caller.kind,
        customer_id=customer.id if customer else None,
        segment=caller.segment,
        value=caller.value,
        arrived_at=1.0,
        offered_at=1.0,
        answered_at=3.0,
        ended_at=60.0,
        agent_id="a1",
        outcome="answered",
        disposition="sale",
        wrap_up_s=12.0,
        offers=1,
        note="n",
    )
    assert dataclasses.asdict(cdr) == dataclasses.asdict(expected)
    assert type(cdr.segment) is Segment
    assert type(cdr.value) is float


def test_the_routers_record_maker_sets_every_field_the_constructor_does() -> None:
    """``new_call_record`` takes every field but ``started_wall`` (0), in the fields'
    order: a field added to the class and not to it fails here."""
    names = [f.name for f in dataclasses.fields(CallDetailRecord) if f.name != "started_wall"]
    assert list(inspect.signature(new_call_record).parameters) == names
    values: dict[str, Any] = dict(
        call_id="c7", queue="q", ani="+4420", caller_kind=CallerKind.PRIVATE, customer_id=3,
        segment=Segment.GOLD, value=9.5, arrived_at=1.0, offered_at=2.0, answered_at=None,
        ended_at=4.0, agent_id=None, outcome="exited", disposition="d", wrap_up_s=0.5,
        offers=2, note="x", kind="callback", exit_action="voicemail: max wait",
        callback_requested_at=3.0,
    )  # fmt: skip
    made = new_call_record(*values.values())
    expected = CallDetailRecord(**values)
    assert dataclasses.asdict(made) == dataclasses.asdict(expected)
    assert made == expected
