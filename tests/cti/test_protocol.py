"""The wire protocol: every message survives JSON, and bad payloads say what is wrong."""

from __future__ import annotations

import pytest

from cti.errors import ProtocolError
from cti.models import AgentState, CallerKind, Customer, Interaction, PhoneNumber, Segment
from cti.protocol import (
    AcceptOffer,
    AgentStateChanged,
    CallArrived,
    CallConnected,
    CallEnded,
    CallerHungUp,
    CallOffered,
    CommandResult,
    CompleteWrapUp,
    HangUp,
    Login,
    Logout,
    OfferWithdrawn,
    QueueStatus,
    RejectOffer,
    RequestSnapshot,
    ScreenPop,
    SetNotReady,
    SetReady,
    decode,
    encode,
    is_command,
)

CUSTOMER = Customer(
    id=42,
    name="欧阳明月 [bold]x[/bold]",
    phones=(PhoneNumber(raw="138 1234 5678", e164="+8613812345678"),),
    value=91.5,
    segment=Segment.PLATINUM,
)
POP = ScreenPop(
    call_id="sim-1",
    queue="general",
    ani="13812345678",
    e164="+8613812345678",
    caller_kind=CallerKind.KNOWN,
    customer=CUSTOMER,
    history=(Interaction(at=1.0, disposition="sale", note="回访"),),
    waited_s=3.5,
)

EVERY_MESSAGE = [
    CallArrived(call_id="c", ani="P", dnis="800", line="sim"),
    CallerHungUp(call_id="c"),
    AgentStateChanged(agent_id="1001", state=AgentState.WRAP_UP, since_wall=5.0, call_id="c"),
    CallOffered(agent_id="1001", pop=POP, timeout_s=15, deadline_wall=20.0, dispositions=("a",)),
    OfferWithdrawn(agent_id="1001", call_id="c", reason="timeout"),
    CallConnected(agent_id="1001", call_id="c"),
    CallEnded(agent_id="1001", call_id="c", by="caller"),
    QueueStatus(
        queue="general",
        waiting=3,
        longest_wait_s=12.0,
        agents_ready=1,
        agents_busy=2,
        agents_logged_in=4,
        offered=10,
        answered=8,
        abandoned=1,
        service_level=None,
        asa_s=4.2,
        at_wall=1.0,
    ),
    CommandResult(command_id="x", ok=False, error="no"),
    Login(agent_id="1001"),
    Logout(agent_id="1001"),
    SetReady(agent_id="1001"),
    SetNotReady(agent_id="1001", reason="lunch"),
    AcceptOffer(agent_id="1001", call_id="c"),
    RejectOffer(agent_id="1001", call_id="c"),
    HangUp(agent_id="1001", call_id="c"),
    CompleteWrapUp(agent_id="1001", call_id="c", disposition="sale", note="备注"),
    RequestSnapshot(agent_id="1001"),
]


@pytest.mark.parametrize("message", EVERY_MESSAGE, ids=lambda m: m.type)
def test_every_message_round_trips_through_json(message: object) -> None:
    data = encode(message)  # type: ignore[arg-type]
    back = decode(data)
    assert back == message
    assert type(back) is type(message)


def test_non_ascii_text_is_sent_as_is_not_escaped() -> None:
    data = encode(EVERY_MESSAGE[3])
    assert "欧阳明月".encode() in data


def test_commands_carry_distinct_ids_and_are_recognised() -> None:
    a, b = SetReady(agent_id="1"), SetReady(agent_id="1")
    assert a.command_id != b.command_id
    assert is_command(a)
    assert not is_command(CallConnected(agent_id="1", call_id="c"))


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"{not json", "Invalid JSON"),
        (b'{"type": "teleport", "agent_id": "1"}', "type"),
        (b'{"type": "set_ready"}', "agent_id"),
        (b'{"type": "set_ready", "agent_id": "1", "extra": 1}', "extra"),
        (b'{"type": "agent_state", "agent_id": "1", "state": "dancing", "since_wall": 0}', "state"),
    ],
)
def test_bad_payloads_raise_protocol_error_naming_the_fault(payload: bytes, fragment: str) -> None:
    with pytest.raises(ProtocolError) as err:
        decode(payload, where="cti/v1/agents/1/commands")
    assert "cti/v1/agents/1/commands" in str(err.value)
    assert fragment in str(err.value)
