"""The wire protocol: every message survives JSON, and bad payloads say what is wrong."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from pydantic import BaseModel

from cti.errors import ProtocolError
from cti.fields import MAX_TEXT_CHARS, clean_text
from cti.models import AgentState, CallerKind, Customer, Interaction, PhoneNumber, Segment
from cti.protocol import (
    COMMAND_TYPES,
    MAX_MESSAGE_BYTES,
    SUPERVISOR_COMMAND_TYPES,
    AcceptOffer,
    AgentPresence,
    AgentStateChanged,
    CallArrived,
    CallConnected,
    CallEnded,
    CallerHungUp,
    CallOffered,
    CommandMemory,
    CommandResult,
    CompleteWrapUp,
    CreateCustomer,
    HangUp,
    Login,
    Logout,
    MoveWaitingCall,
    OfferWithdrawn,
    QueueStatus,
    RejectOffer,
    RequestSnapshot,
    ScreenPop,
    SetNotReady,
    SetReady,
    answer,
    decode,
    encode,
    is_command,
    refusal,
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
    CallConnected(agent_id="1001", call_id="c", command_id="accept-1"),
    CallEnded(agent_id="1001", call_id="c", by="caller"),
    CallEnded(agent_id="1001", call_id="c", by="agent", command_id="hang-up-1"),
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
    assert data == message.model_dump_json().encode("utf-8")  # type: ignore[attr-defined]
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


def test_a_command_id_is_a_version_4_uuid_as_uuid4_hex_writes_it() -> None:
    ids = {SetReady(agent_id="1").command_id for _ in range(2000)}
    assert len(ids) == 2000
    for command_id in ids:
        made = uuid.UUID(command_id)
        assert (made.hex, made.version, made.variant) == (command_id, 4, uuid.RFC_4122)


def test_what_a_message_answers() -> None:
    result = CommandResult(command_id="x", ok=False, error="no")
    assert answer(result) is result
    applied = CommandResult(command_id="a", ok=True)
    assert answer(CallConnected(agent_id="1", call_id="c", command_id="a")) == applied
    assert answer(CallEnded(agent_id="1", call_id="c", by="agent", command_id="a")) == applied
    withdrawn = OfferWithdrawn(agent_id="1", call_id="c", reason="rejected", command_id="a")
    assert answer(withdrawn) == applied
    # An event that names no command answers none: an older engine's, as it comes on the
    # wire (its CommandResult follows), or one no command caused.
    older = decode(b'{"type": "call_connected", "agent_id": "1", "call_id": "c"}')
    assert older == CallConnected(agent_id="1", call_id="c")
    assert answer(older) is None
    assert answer(CallEnded(agent_id="1", call_id="c", by="caller")) is None
    assert answer(SetReady(agent_id="1")) is None  # a command is no answer


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


# --- hostile input: ids, text and sizes are bounded at the boundary (issue 17) ---------

HOSTILE_IDS = ["s\x00", "a+b", "a#", "a/b", "a b", "", "x" * 129, "\u202e1001"]


@pytest.mark.security
@pytest.mark.parametrize("bad", HOSTILE_IDS, ids=repr)
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"type": "force_logout", "agent_id": "1001"}, "supervisor_id"),
        ({"type": "force_logout", "supervisor_id": "sup1"}, "agent_id"),
        ({"type": "set_ready", "agent_id": "1001"}, "command_id"),
        ({"type": "accept_offer", "agent_id": "1001"}, "call_id"),
        ({"type": "consult_call", "agent_id": "1001", "call_id": "c"}, "to_agent"),
        ({"type": "agent_presence", "online": True}, "agent_id"),
    ],
)
def test_a_bad_id_is_refused_naming_its_field(
    bad: str, fields: dict[str, object], field: str
) -> None:
    payload = json.dumps({**fields, field: bad}).encode()
    with pytest.raises(ProtocolError) as err:
        decode(payload, where="cti/v1/agents/1001/commands")
    text = str(err.value)
    assert f".{field}:" in text
    assert "\x00" not in text
    assert "\u202e" not in text


@pytest.mark.security
@pytest.mark.parametrize("name", ["a+b", "a#", "a/b", "x\x00"])
def test_queue_and_campaign_names_in_commands_cannot_be_topic_levels(name: str) -> None:
    for payload in (
        {"type": "move_waiting_call", "supervisor_id": "sup1", "call_id": "c", "queue": name},
        {
            "type": "set_campaign_state",
            "supervisor_id": "sup1",
            "campaign": name,
            "state": "paused",
        },
    ):
        with pytest.raises(ProtocolError):
            decode(json.dumps(payload).encode())


@pytest.mark.security
@pytest.mark.parametrize(
    "char", ["\x00", "\x1b", "\x7f", "\x85", "\u202a", "\u202e", "\u2066", "\u2069"]
)
def test_text_fields_refuse_control_characters_and_bidi_overrides(char: str) -> None:
    cases = [
        {"type": "set_not_ready", "agent_id": "1001", "reason": f"lunch{char}"},
        {"type": "create_customer", "agent_id": "1001", "name": f"王{char}芳"},
        {
            "type": "schedule_callback",
            "agent_id": "1001",
            "number": f"+86{char}1",
            "local_time": "2026-01-01T10:00",
        },
        {"type": "dial_number", "agent_id": "1001", "number": f"{char}13800138000"},
        {
            "type": "complete_wrap_up",
            "agent_id": "1001",
            "call_id": "c",
            "disposition": "sale",
            "note": f"a{char}",
        },
        {
            "type": "add_service_item",
            "agent_id": "1001",
            "customer_id": 1,
            "title": "t",
            "detail": f"x{char}",
        },
    ]
    for fields in cases:
        with pytest.raises(ProtocolError, match="refused"):
            decode(json.dumps(fields).encode())


@pytest.mark.security
def test_legitimate_text_still_passes() -> None:
    for name in ("欧阳明月 [bold]x[/bold]", "José Núñez", "محمد علي", "Zoë O'Brien", "李\u200f四"):
        command = CreateCustomer(agent_id="1001", name=name, number="+86 138 0013 8000")
        assert decode(encode(command)) == command
    note = CompleteWrapUp(
        agent_id="工号7", call_id="sip-t3k2abcd-7", disposition="sale", note="第一行\n\t第二行\r\n"
    )
    assert decode(encode(note)) == note
    assert decode(encode(MoveWaitingCall(supervisor_id="sup1", call_id="c", queue="Sales EMEA")))


@pytest.mark.security
def test_numbers_are_bounded_and_finite() -> None:
    for fields in (
        {"type": "change_call_priority", "supervisor_id": "s", "call_id": "c", "priority": 1e300},
        {"type": "extend_wrap_up", "agent_id": "1", "call_id": "c", "seconds": 1e9},
        {"type": "show_customer", "agent_id": "1", "customer_id": 2**70},
        {"type": "show_customer", "agent_id": "1", "customer_id": 0},
    ):
        with pytest.raises(ProtocolError):
            decode(json.dumps(fields).encode())
    with pytest.raises(ProtocolError):
        decode(
            b'{"type": "change_call_priority", "supervisor_id": "s", "call_id": "c", '
            b'"priority": NaN}'
        )


def _unbounded(schema: dict[str, Any], defs: dict[str, Any], path: str) -> list[str]:
    """The places in a JSON schema where a string, list, object or number has no bound."""
    if "$ref" in schema:
        return _unbounded(defs[schema["$ref"].split("/")[-1]], defs, path)
    found: list[str] = []
    for key in ("anyOf", "oneOf", "allOf"):
        for i, part in enumerate(schema.get(key, ())):
            found += _unbounded(part, defs, f"{path}|{i}")
    kind = schema.get("type")
    if "enum" in schema or "const" in schema:
        return found
    if kind == "string" and "maxLength" not in schema:
        found.append(path)
    if kind == "array":
        if "maxItems" not in schema and "prefixItems" not in schema:
            found.append(path)
        found += _unbounded(schema.get("items", {}), defs, f"{path}[]")
    if kind in ("integer", "number") and not (
        ("maximum" in schema or "exclusiveMaximum" in schema)
        and ("minimum" in schema or "exclusiveMinimum" in schema)
    ):
        found.append(path)
    if kind == "object":
        props = schema.get("properties")
        if props is None and "maxProperties" not in schema:
            found.append(path)
        for name, sub in (props or {}).items():
            found += _unbounded(sub, defs, f"{path}.{name}")
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            found += _unbounded(extra, defs, f"{path}{{}}")
        names = schema.get("propertyNames")
        if isinstance(names, dict):
            found += _unbounded(names, defs, f"{path}{{key}}")
    return found


@pytest.mark.security
@pytest.mark.parametrize(
    "model", [*COMMAND_TYPES, *SUPERVISOR_COMMAND_TYPES, AgentPresence], ids=lambda m: m.__name__
)
def test_every_field_a_sender_chooses_is_bounded(model: type[BaseModel]) -> None:
    schema = model.model_json_schema()
    found = _unbounded(schema, schema.get("$defs", {}), model.__name__)
    # ScriptAction (cti.models) leaves its args' values open: protocol bounds them (below).
    assert [path for path in found if "script_actions[].args{}" not in path] == []


@pytest.mark.security
def test_script_action_arguments_are_bounded() -> None:
    for value in ("x" * 5000, "a\x00b"):
        action = {"node": "n", "action": "send_email", "args": {"to": value}}
        payload = {"type": "save_script_run", "agent_id": "1", "call_id": "c", "script": "s"}
        with pytest.raises(ProtocolError, match="argument 'to'"):
            decode(json.dumps({**payload, "script_actions": [action]}).encode())


@pytest.mark.security
def test_event_text_from_lines_is_neutralised_not_refused() -> None:
    arrived = CallArrived(call_id="c", caller_name="Bob\x00\u202egnp.exe", ani="1\x1b[2J")
    assert arrived.caller_name == "Bob\ufffdgnp.exe"
    assert arrived.ani == "1\ufffd[2J"
    long = CommandResult(command_id="x", ok=False, error="e" * 10_000)
    assert len(long.error) == MAX_TEXT_CHARS
    assert long.error.endswith("…")
    assert clean_text("a\nb\u2066c", multiline=True) == "a\nbc"


@pytest.mark.security
def test_a_message_too_big_is_refused_before_parsing() -> None:
    payload = json.dumps({"type": "set_ready", "agent_id": "1", "pad": "x" * MAX_MESSAGE_BYTES})
    with pytest.raises(ProtocolError, match="bytes, more than"):
        decode(payload.encode())


@pytest.mark.security
def test_300_commands_with_200_kb_ids_are_refused() -> None:
    memory = CommandMemory()
    for n in range(300):
        payload = json.dumps(
            {"type": "set_ready", "agent_id": "1001", "command_id": f"{n}" + "x" * 200_000}
        )
        with pytest.raises(ProtocolError, match="command_id"):
            decode(payload.encode())
    assert len(memory) == 0


@pytest.mark.security
def test_command_memory_is_bounded_in_count_and_bytes() -> None:
    memory = CommandMemory(max_count=100, max_bytes=50_000)
    for n in range(1000):
        command_id = f"{n:04d}" + "x" * 120
        memory.remember(
            command_id, CommandResult(command_id=command_id, ok=False, error="e" * 1000)
        )
        assert memory.bytes <= 50_000
        assert len(memory) <= 100
    newest = "0999" + "x" * 120
    assert memory.get(newest) is not None
    assert memory.get("0000" + "x" * 120) is None
    small = CommandMemory(max_count=3)
    for command_id in "abcd":
        small.remember(command_id, CommandResult(command_id=command_id, ok=True))
    assert [small.get(c) is not None for c in "abcd"] == [False, True, True, True]


@pytest.mark.security
def test_a_refusal_goes_only_to_the_topic_owner() -> None:
    bad = json.dumps(
        {"type": "force_logout", "supervisor_id": "x\x00/#", "agent_id": "1001", "command_id": "c1"}
    ).encode()
    reply, result = refusal("cti/v1/agents/1001/commands", bad, "no") or ("", None)
    assert reply == "cti/v1/agents/1001/events"
    assert result == CommandResult(command_id="c1", ok=False, error="no")
    assert refusal("cti/v1/agents/1001/events", bad, "no") is None
    assert refusal("cti/v1/lines/sim/events", bad, "no") is None
    no_id = json.dumps({"type": "set_ready", "command_id": "a/b"}).encode()
    assert refusal("cti/v1/agents/1001/commands", no_id, "no") is None
    assert refusal("cti/v1/agents/1001/commands", b"{not json", "no") is None
