"""Agent legs: the line rings an agent's phone (a fixed URI or its registration) with the
caller on its display, and reports ringing, answer, decline, no answer, withdrawal and
the phone's BYE as AgentLegProgress, never as the caller hanging up."""

from __future__ import annotations

import pytest

from cti.errors import TelephonyError
from cti.protocol import CallerHungUp
from telephony_adapters.sipline.message import Request, parse_address
from telephony_adapters.sipline.phone_auth import PhoneSettings
from telephony_adapters.sipline.sdp import parse_sdp
from telephony_adapters.sipline.uac import caller_display
from telephony_adapters.sipline.useragent import (
    AgentLegProgress,
    Effect,
    MediaStart,
    UserAgent,
    leg_id,
)
from tests.telephony_adapters.sipline.peer import (
    OFFER,
    PEER,
    make_ua,
    of_type,
    reply,
    request,
    sent,
)
from tests.telephony_adapters.sipline.test_registrar import Phone, register, registrar_ua

FIXED = f"sip:a3@{PEER[0]}:{PEER[1]}"
LEG = leg_id("c-1", "a3")


def phone_ua() -> UserAgent:
    return make_ua(phones=PhoneSettings(realm="r", phones={"a3": FIXED}), dial_timeout_s=20.0)


def ring(ua: UserAgent, now: float = 0.0, **kw: object) -> Request:
    """Ring a3's phone for call c-1; returns the INVITE."""
    out = ua.ring_agent("c-1", "a3", 12000, now, **kw)  # type: ignore[arg-type]
    [invite] = sent(out)
    assert isinstance(invite, Request)
    assert out[0].dest == PEER  # type: ignore[union-attr]
    return invite


def legs(out: list[Effect]) -> list[tuple[str, int, bool]]:
    return [(e.outcome, e.status, e.final) for e in of_type(out, AgentLegProgress)]


def answer(ua: UserAgent, invite: Request, now: float = 1.0) -> list[Effect]:
    ua.receive(reply(invite, 180), PEER, now)
    return ua.receive(reply(invite, 200, body=OFFER), PEER, now)


def test_the_invite_shows_the_caller_and_asks_for_auto_answer() -> None:
    ua = phone_ua()
    name = '张三 "Boss"\\\r\nX'
    invite = ring(ua, caller=(name, "+8613912345678"), auto_answer=True)
    assert invite.uri == FIXED
    sender = parse_address(invite.headers.get("From") or "")
    assert sender.display == '张三 "Boss"\\ X <+8613912345678>'
    assert sender.uri.user == "+8613912345678"
    assert sender.tag
    assert invite.headers.get("Call-Info") == "<sip:10.0.0.1>;answer-after=0"
    assert "\r\nX" not in bytes(invite).decode()
    offer = parse_sdp(invite.body)
    assert offer.media[0].port == 12000
    assert invite.call_id != "c-1"


def test_no_call_info_without_auto_answer_and_the_display_is_bounded() -> None:
    ua = phone_ua()
    invite = ring(ua, caller=("王" * 500, "1" * 200))
    assert invite.headers.get("Call-Info") is None
    display = parse_address(invite.headers.get("From") or "").display
    assert display == "王" * 64 + " <" + "1" * 32 + ">"
    assert caller_display("", "") == ""
    assert caller_display("", "123") == "123"


def test_ringing_then_answer_reports_the_phones_media_plan() -> None:
    ua = phone_ua()
    invite = ring(ua)
    assert legs(ua.receive(reply(invite, 180), PEER, 0.5)) == [("ringing", 180, False)]
    out = ua.receive(reply(invite, 200, body=OFFER), PEER, 1.0)
    [ack] = sent(out)
    assert isinstance(ack, Request)
    assert ack.method == "ACK"
    [answered] = of_type(out, AgentLegProgress)
    assert (answered.call_id, answered.agent_id, answered.outcome) == (LEG, "a3", "answered")
    assert answered.plan is not None
    assert (answered.plan.remote_host, answered.plan.remote_port) == ("10.0.0.2", 4000)
    assert answered.plan.codec == "PCMU"
    assert of_type(out, MediaStart) == [MediaStart(LEG, 12000, answered.plan)]
    assert ua.call_state(LEG) == "confirmed"


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(486, "declined"), (603, "declined"), (480, "no_answer"), (500, "failed")],
)
def test_a_refusal_is_one_final_outcome_and_no_caller_hang_up(status: int, outcome: str) -> None:
    ua = phone_ua()
    invite = ring(ua)
    ua.receive(reply(invite, 180), PEER, 0.5)
    out = ua.receive(reply(invite, status), PEER, 1.0)
    assert legs(out) == [(outcome, status, True)]
    assert not of_type(out, CallerHungUp)
    assert [m.method for m in sent(out) if isinstance(m, Request)] == ["ACK"]
    assert not ua.live(LEG)


def test_no_answer_in_time_cancels_the_leg() -> None:
    ua = phone_ua()
    invite = ring(ua, timeout_s=15.0)
    ua.receive(reply(invite, 180), PEER, 0.5)
    out = ua.advance(15.0)
    [cancel] = sent(out)
    assert isinstance(cancel, Request)
    assert cancel.method == "CANCEL"
    ua.receive(reply(cancel, 200), PEER, 15.1)
    out = ua.receive(reply(invite, 487), PEER, 15.1)
    assert legs(out) == [("no_answer", 487, True)]


def test_withdrawing_a_ringing_leg_sends_cancel() -> None:
    ua = phone_ua()
    invite = ring(ua)
    ua.receive(reply(invite, 180), PEER, 0.5)
    [cancel] = sent(ua.hang_up(LEG, 2.0))
    assert isinstance(cancel, Request)
    assert cancel.method == "CANCEL"
    assert cancel.headers.get("Via") == invite.headers.get("Via")
    out = ua.receive(reply(invite, 487), PEER, 2.1)
    assert legs(out) == [("cancelled", 487, True)]


def test_the_phones_bye_ends_the_leg() -> None:
    ua = phone_ua()
    invite = ring(ua)
    answer(ua, invite)
    bye = request(
        "BYE",
        call_id=invite.call_id,
        from_tag="pt",
        to_tag=invite.from_.tag,
        branch="z9hG4bKbye",
        cseq=2,
    )
    out = ua.receive(bye, PEER, 5.0)
    assert [m.status for m in sent(out) if not isinstance(m, Request)] == [200]
    assert legs(out) == [("ended", 0, True)]
    assert not of_type(out, CallerHungUp)
    assert not ua.live(LEG)


def test_our_bye_ends_an_answered_leg() -> None:
    ua = phone_ua()
    invite = ring(ua)
    answer(ua, invite)
    [bye] = sent(ua.hang_up(LEG, 5.0))
    assert isinstance(bye, Request)
    assert bye.method == "BYE"
    assert bye.uri == f"sip:peer@{PEER[0]}:{PEER[1]}"
    out = ua.receive(reply(bye, 200), PEER, 5.1)
    assert not legs(out)
    assert not ua.live(LEG)


def test_an_unreachable_phone_is_refused_by_name() -> None:
    ua = phone_ua()
    with pytest.raises(TelephonyError, match="agent 'a9'"):
        ua.ring_agent("c-1", "a9", 12000, 0.0)
    with pytest.raises(TelephonyError, match="agent 'a3'"):
        make_ua().ring_agent("c-1", "a3", 12000, 0.0)


def test_a_registered_phone_is_rung_at_its_contact_or_behind_a_nat_at_its_source() -> None:
    ua = registrar_ua()
    register(ua, Phone(port=5080), 0.0)
    [invite] = sent(out := ua.ring_agent("c-1", "a1", 12000, 1.0))
    assert isinstance(invite, Request)
    assert invite.uri == "sip:a1@10.0.0.7:5080"
    assert out[0].dest == ("10.0.0.7", 5080)  # type: ignore[union-attr]
    natted = Phone(port=5090)
    register(ua, natted, 2.0, contacts=["<sip:a1@192.168.1.20:5060>"])
    [invite] = sent(out := ua.ring_agent("c-2", "a1", 12002, 3.0))
    assert isinstance(invite, Request)
    assert invite.uri == "sip:a1@192.168.1.20:5060"
    assert out[0].dest == ("10.0.0.7", 5090)  # type: ignore[union-attr]
