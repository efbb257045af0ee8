"""A transfer asked by an agent's phone (telephony_adapters/sipline/phone_refer.py): a real
line with the trunk and the phone as UDP sockets of the test (test_voice_restart's).

The phone's REFER on its leg gets 202 and becomes ``TransferAsked`` for the engine (the
caller's call, the agent, what the phone dialled, the agent whose extension it is); the
engine's answer reaches the phone as the NOTIFY's sipfrag (480 with the reason); the plan
taking the agent off the call tells the phone 200 before its leg's BYE. A Replaces
naming the consulted agent's leg asks for that agent; one naming no dialog of ours is
481, one naming the caller's own dialog 501. The trunk's REFER is refused (603 with a
Warning)."""

from __future__ import annotations

from urllib.parse import quote

from cti.events import TransferAsked
from telephony_adapters.base import CALLER, AudioPlan
from telephony_adapters.sipline.effects import Replaces, TransferOutcome, TransferRequested
from telephony_adapters.sipline.line import SipLine
from telephony_adapters.sipline.message import Request, Response
from telephony_adapters.sipline.phone_refer import (
    PhoneRefers,
    Refusal,
    dialled,
    extensions,
    left_by_transfer,
)
from tests.harness import until
from tests.telephony_adapters.sipline import test_voice_restart as restart
from tests.telephony_adapters.sipline.test_voice_restart import (
    Center,
    Peer,
    answer_of,
    line_of,
    oks,
    talking,
)

center = restart.center  # the fixture: the trunk, the phone and the line's settings

CONSULT = AudioPlan(rooms=(frozenset({"1001", "1002"}),), music=frozenset({CALLER}))


def refer_of(invite: Request, end: Peer, refer_to: str, *, cseq: int = 7) -> bytes:
    """``end``'s REFER in the dialog of our ``invite`` that it answered (its tag ph1)."""
    return (
        f"REFER sip:sip@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{end.port};branch=z9hG4bKref{cseq};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: {invite.headers.get('To')};tag=ph1\r\n"
        f"To: {invite.headers.get('From')}\r\nCall-ID: {invite.call_id}\r\n"
        f"CSeq: {cseq} REFER\r\nContact: <sip:phone@127.0.0.1:{end.port}>\r\n"
        f"Refer-To: {refer_to}\r\nReferred-By: <sip:1001@127.0.0.1>\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


def replaces_of(call_id: str, to_tag: str, from_tag: str) -> str:
    value = quote(f"{call_id};to-tag={to_tag};from-tag={from_tag}", safe="")
    return f"<sip:1002@127.0.0.1?Replaces={value}>"


def frags(end: Peer) -> list[tuple[str, str]]:
    """(sipfrag, subscription state) of each NOTIFY ``end`` got, in order (once each:
    the phone of the test answers none, so they are sent again)."""
    seen = {n.cseq: n for n in end.requests("NOTIFY")}
    return [
        (n.body.decode().strip(), (n.headers.get("Subscription-State") or "").split(";")[0])
        for n in seen.values()
    ]


def responses(end: Peer, status: int) -> list[Response]:
    return [m for m in end.messages() if isinstance(m, Response) and m.status == status]


def by_1001(call_id: str, target: str, to_agent: str = "") -> TransferAsked:
    return TransferAsked(call_id=call_id, agent_id="1001", target=target, to_agent=to_agent,
                         line="sip")  # fmt: skip


def asked(center: Center) -> list[TransferAsked]:
    return [e for e in center.events if isinstance(e, TransferAsked)]


def test_a_refer_target_is_its_user_part_and_an_extension_names_its_agent() -> None:
    assert dialled("tel:+8613800000001") == "+8613800000001"
    assert dialled("sip:%32%30%30%32@pbx;user=phone") == "2002"
    assert dialled("sip:pbx.example") == Refusal(603, "the Refer-To names no number or user "
                                                 "to transfer to")  # fmt: skip
    assert isinstance(dialled("sip:%0d%0a@pbx"), Refusal)  # control characters
    assert extensions({"alice": "sip:2002@10.0.0.5", "bob": "sip:bob@10.0.0.6"}) == {
        "2002": "alice",
        "bob": "bob",
    }
    refers = PhoneRefers("sip", {"alice": "sip:2002@10.0.0.5"})
    blind = TransferRequested("c1~bob", "sip:2002@127.0.0.1", None, "")
    assert refers.asked(blind, ("c1", "bob"), lambda r: None) == TransferAsked(
        call_id="c1", agent_id="bob", target="2002", to_agent="alice", line="sip"
    )
    assert "c1~bob" in refers
    assert refers.outcome_leg("c1", "bob") == "c1~bob"
    assert refers.outcome_leg("c1", "bob") is None  # answered once
    assert refers.asked(blind, None, lambda r: None) == Refusal(
        603, "this phone's connection is in no call to transfer"
    )
    attended = TransferRequested("c1~bob", "sip:2002@x", Replaces("d", "a", "b"), "")
    not_joined = Refusal(501, "the Replaces names another call: two calls are not joined here")
    assert refers.asked(attended, ("c1", "bob"), lambda r: ("c2", "alice")) == not_joined
    assert refers.asked(attended, ("c1", "bob"), lambda r: ("c1", "bob")) == not_joined
    assert refers.asked(attended, ("c1", "bob"), lambda r: "c1") == not_joined


def test_a_leg_ended_before_the_engine_answered_says_whether_the_caller_was_handed_on() -> None:
    assert left_by_transfer(True, []) is None  # the caller stays: the agent left it
    assert left_by_transfer(False, [TransferOutcome("c1", 202, False),
                                    TransferOutcome("c1", 200, True)]) is None  # fmt: skip
    assert left_by_transfer(False, []) == Refusal(487, "the call ended before the transfer")


async def phone_leg(center: Center, line: SipLine) -> tuple[str, Request]:
    """A talking call and the INVITE that rang agent 1001's phone."""
    call_id = await talking(center, line)
    [ring] = center.phone.requests("INVITE")
    return call_id, ring


async def test_the_phone_s_blind_transfer_goes_to_the_engine_and_its_refusal_back(
    center: Center,
) -> None:
    async with line_of(center) as line:
        call_id, ring = await phone_leg(center, line)
        center.phone.send(refer_of(ring, center.phone, "<sip:1002@127.0.0.1>"),
                          line.local_address[1])  # fmt: skip
        await until(lambda: bool(asked(center)))
        assert asked(center) == [by_1001(call_id, "1002", "1002")]
        assert responses(center.phone, 202)
        await until(lambda: len(frags(center.phone)) == 1)
        assert frags(center.phone) == [("SIP/2.0 100 Trying", "active")]
        await line.transfer_asked_outcome(call_id, "1001", 480, "agent '1002' is not ready")
        await until(lambda: len(frags(center.phone)) == 2)
        assert frags(center.phone)[1] == ("SIP/2.0 480 agent '1002' is not ready", "terminated")
        assert line.ua.call_state(f"{call_id}~1001") == "confirmed"  # still with the caller
        assert center.phone.requests("BYE") == []


async def test_the_plan_taking_the_agent_off_tells_the_phone_200_before_the_bye(
    center: Center,
) -> None:
    async with line_of(center) as line:
        call_id, ring = await phone_leg(center, line)
        center.phone.send(refer_of(ring, center.phone, "<tel:+8613800000001>"),
                          line.local_address[1])  # fmt: skip
        await until(lambda: bool(asked(center)))
        assert asked(center) == [by_1001(call_id, "+8613800000001")]
        # The engine transferred the caller to a queue: it waits with music, no agent.
        await line.plan_audio(call_id, AudioPlan(music=frozenset({CALLER})))
        await until(lambda: bool(center.phone.requests("BYE")))
        await until(lambda: len(frags(center.phone)) == 2)
        assert frags(center.phone)[1] == ("SIP/2.0 200 OK", "terminated")
        said = [m.body if m.method == "NOTIFY" else m.method.encode()
                for m in center.phone.messages() if isinstance(m, Request)]  # fmt: skip
        assert said.index(b"SIP/2.0 200 OK\r\n") < said.index(b"BYE")
        assert line.ua.live(call_id)  # the caller is still on the line
        await line.transfer_asked_outcome(call_id, "1001", 200)  # late: nothing more sent
        assert len(frags(center.phone)) == 2


async def test_an_attended_transfer_names_the_consulted_agent_or_is_refused(
    center: Center,
) -> None:
    async with line_of(center) as line:
        sip = line.local_address[1]
        call_id, ring = await phone_leg(center, line)
        await line.plan_audio(call_id, CONSULT)  # 1002 consulted: its phone answers by itself
        await until(lambda: len(center.phone.requests("INVITE")) == 2)
        consult = center.phone.requests("INVITE")[1]
        center.phone.send(answer_of(consult, center.phone.port, center.phone_rtp.port), sip)
        await until(lambda: len(center.phone.requests("ACK")) == 2)
        # A Replaces naming no dialog of ours: 481.
        center.phone.send(refer_of(ring, center.phone, replaces_of("nope", "x", "y")), sip)
        await until(lambda: ("SIP/2.0 481 no dialog of ours matches the Replaces",
                             "terminated") in frags(center.phone))  # fmt: skip
        # One naming the caller's own dialog (a call, not a phone's leg): 501.
        trunk_ok = oks(center.trunk)[0]
        assert trunk_ok.to.tag
        caller_dialog = replaces_of(trunk_ok.call_id, trunk_ok.to.tag, "tr1")
        center.phone.send(refer_of(ring, center.phone, caller_dialog, cseq=8), sip)
        await until(lambda: any(f.startswith("SIP/2.0 501 ") for f, _ in frags(center.phone)))
        # One naming the consulted agent's leg (our tag is its From's): that agent.
        ours = consult.headers.get("From") or ""
        our_tag = ours.split("tag=")[1].split(";")[0]
        named = replaces_of(consult.call_id, our_tag, "ph1")
        center.phone.send(refer_of(ring, center.phone, named, cseq=9), sip)
        await until(lambda: bool(asked(center)))
        assert asked(center) == [by_1001(call_id, "1002", "1002")]


async def test_the_trunk_s_refer_is_refused_with_a_warning(center: Center) -> None:
    async with line_of(center) as line:
        await phone_leg(center, line)
        trunk_ok = oks(center.trunk)[0]
        refer = (
            f"REFER sip:sip@127.0.0.1 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{center.trunk.port};branch=z9hG4bKtref;rport\r\n"
            f"Max-Forwards: 70\r\nFrom: {trunk_ok.headers.get('From')}\r\n"
            f"To: {trunk_ok.headers.get('To')}\r\nCall-ID: {trunk_ok.call_id}\r\n"
            f"CSeq: 5 REFER\r\nContact: <sip:trunk@127.0.0.1:{center.trunk.port}>\r\n"
            f"Refer-To: <sip:+8613800000002@carrier.example>\r\nContent-Length: 0\r\n\r\n"
        ).encode()
        center.trunk.send(refer, line.local_address[1])
        await until(lambda: bool(responses(center.trunk, 603)))
        [refused] = responses(center.trunk, 603)
        assert "only agents' phones ask" in (refused.headers.get("Warning") or "")
        assert asked(center) == []
