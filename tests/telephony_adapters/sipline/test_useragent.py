"""The user agent on a fake clock against a fake peer: calls in and out, CANCEL, BYE,
2xx retransmission, identity and privacy, registration, keep-alive, hold, REFER, and
hostile input (never a crash, never a leaked transaction)."""

from __future__ import annotations

import random

import pytest

from cti.errors import TelephonyError
from cti.protocol import CallArrived, CallerHungUp
from telephony_adapters.sipline.digest import parse_auth_params
from telephony_adapters.sipline.message import Request, Response
from telephony_adapters.sipline.sdp import parse_sdp
from telephony_adapters.sipline.useragent import (
    DialProgress,
    MediaStart,
    MediaStop,
    TransferOutcome,
    UserAgent,
)
from tests.telephony_adapters.sipline.peer import (
    OFFER,
    PEER,
    invite,
    make_ua,
    of_type,
    reply,
    request,
    sent,
    statuses,
)


def ring(ua: UserAgent, now: float = 0.0, **kw: object) -> tuple[str, Response]:
    """An inbound call rings; returns its id and our 180."""
    out = ua.receive(invite(**kw), PEER, now)
    assert statuses(out) == [100, 180]
    arrived = of_type(out, CallArrived)
    assert len(arrived) == 1
    ringing = sent(out)[1]
    assert isinstance(ringing, Response)
    return arrived[0].call_id, ringing


def connect(ua: UserAgent, now: float = 0.0) -> tuple[str, str]:
    """An inbound call rings, is answered and ACKed; returns (call id, our tag)."""
    call_id, ringing = ring(ua, now)
    ua.answer(call_id, 10000, now)
    ua.receive(request("ACK", to_tag=ringing.to.tag, branch="z9hG4bKack"), PEER, now)
    return call_id, ringing.to.tag


# --- inbound -------------------------------------------------------------------------


def test_inbound_call_rings_with_100_and_180_and_answers_with_sdp() -> None:
    ua = make_ua()
    call_id, ringing = ring(ua)
    assert ringing.to.tag
    assert ringing.headers.get("Contact")
    out = ua.answer(call_id, 10000, now=1.0)
    [ok] = sent(out)
    assert isinstance(ok, Response)
    assert ok.status == 200
    assert ok.to.tag == ringing.to.tag
    answer = parse_sdp(ok.body)
    assert answer.media[0].port == 10000
    assert answer.media[0].formats == ["0", "101"]
    assert ok.headers.get("Content-Type") == "application/sdp"
    with pytest.raises(TelephonyError, match="connecting"):
        ua.answer(call_id, 10000, now=1.0)


def test_a_retransmitted_invite_gets_the_180_again_and_no_second_call() -> None:
    ua = make_ua()
    ring(ua)
    out = ua.receive(invite(), PEER, 0.5)
    assert statuses(out) == [180]
    assert not of_type(out, CallArrived)


def test_the_200_is_retransmitted_doubling_to_t2_until_the_ack() -> None:
    ua = make_ua()
    call_id, ringing = ring(ua)
    ua.answer(call_id, 10000, now=0.0)
    times = []
    now = 0.0
    while (at := ua.next_deadline()) is not None and at < 10.0:
        now = at
        if statuses(ua.advance(now)) == [200]:
            times.append(now)
    assert times == [0.5, 1.5, 3.5, 7.5]  # T1 doubling, capped at T2 = 4 s
    out = ua.receive(request("ACK", to_tag=ringing.to.tag, branch="z9hG4bKa"), PEER, 8.0)
    [media] = of_type(out, MediaStart)
    assert media.plan.remote_port == 4000
    assert media.local_port == 10000
    assert ua.call_state(call_id) == "confirmed"
    assert statuses(ua.advance(12.0)) == []  # no more 200s


def test_no_ack_in_64_t1_ends_the_call_with_a_bye_and_the_caller_is_gone() -> None:
    ua = make_ua()
    call_id, _ = ring(ua)
    ua.answer(call_id, 10000, now=0.0)
    effects = []
    while (at := ua.next_deadline()) is not None and at <= 32.0:
        effects += ua.advance(at)
    assert statuses(effects).count("BYE") == 1
    assert CallerHungUp(call_id=call_id, line="sip") in effects
    assert MediaStop(call_id, 10000) in effects
    [bye] = [m for m in sent(effects) if isinstance(m, Request)]
    ua.receive(reply(bye, 200, tag=bye.to.tag), PEER, 33.0)
    assert not ua.calls


def test_cancel_while_ringing_gives_200_and_487_and_the_caller_hangs_up() -> None:
    ua = make_ua()
    call_id, _ = ring(ua)
    out = ua.receive(request("CANCEL"), PEER, 1.0)
    assert statuses(out) == [200, 487]
    assert of_type(out, CallerHungUp) == [CallerHungUp(call_id=call_id, line="sip")]
    assert not ua.live(call_id)
    ack = request("ACK", to_tag=sent(out)[1].to.tag)  # the 487's ACK, on the INVITE branch
    assert ua.receive(ack, PEER, 1.1) == []
    ua.advance(100.0)
    assert len(ua.table) == 0
    assert not ua.calls


def test_bye_from_the_caller_and_our_hang_up() -> None:
    ua = make_ua()
    call_id, tag = connect(ua)
    out = ua.receive(request("BYE", to_tag=tag, cseq=2, branch="z9hG4bKbye"), PEER, 5.0)
    assert statuses(out) == [200]
    assert CallerHungUp(call_id=call_id, line="sip") in out
    again = ua.receive(request("BYE", to_tag=tag, cseq=2, branch="z9hG4bKbye"), PEER, 5.1)
    assert statuses(again) == [200]
    assert not of_type(again, CallerHungUp)
    with pytest.raises(TelephonyError, match="no live call"):
        ua.hang_up(call_id, 6.0)


def test_our_hang_up_sends_bye_and_makes_no_caller_hung_up() -> None:
    ua = make_ua()
    call_id, tag = connect(ua)
    out = ua.hang_up(call_id, 2.0)
    [bye] = sent(out)
    assert isinstance(bye, Request)
    assert bye.method == "BYE"
    assert bye.uri == f"sip:peer@{PEER[0]}:{PEER[1]}"
    assert bye.from_.tag == tag
    assert not of_type(out, CallerHungUp)
    assert MediaStop(call_id, 10000) in out
    ua.receive(reply(bye, 200, tag="ft"), PEER, 2.1)
    assert not ua.calls


def test_hanging_up_a_ringing_inbound_call_answers_480_and_before_the_ack_waits() -> None:
    ua = make_ua()
    call_id, _ = ring(ua)
    assert statuses(ua.hang_up(call_id, 1.0)) == [480]
    second, ringing = ring(ua, 2.0, call_id="call-2", branch="z9hG4bKp2")
    ua.answer(second, 10002, 2.0)
    assert sent(ua.hang_up(second, 2.1)) == []  # no BYE before the ACK (RFC 3261 §15)
    out = ua.receive(
        request("ACK", call_id="call-2", to_tag=ringing.to.tag, branch="z9hG4bKa2"), PEER, 2.2
    )
    assert statuses(out) == ["BYE"]


def test_caller_identity_from_p_asserted_identity_and_privacy() -> None:
    ua = make_ua()
    pai = ['P-Asserted-Identity: "Wang Wu" <sip:+8613700000000@carrier.example>']
    out = ua.receive(invite(headers=pai), PEER, 0.0)
    [arrived] = of_type(out, CallArrived)
    assert (arrived.ani, arrived.caller_name) == ("+8613700000000", "Wang Wu")
    private = [*pai, "Privacy: id"]
    out = ua.receive(invite(headers=private, call_id="c2", branch="z9hG4bK2"), PEER, 0.0)
    [arrived] = of_type(out, CallArrived)
    assert (arrived.ani, arrived.caller_name) == ("anonymous", "")
    anon = '"Anonymous" <sip:anonymous@anonymous.invalid>'
    out = ua.receive(invite(from_=anon, call_id="c3", branch="z9hG4bK3"), PEER, 0.0)
    [arrived] = of_type(out, CallArrived)
    assert arrived.ani == "anonymous"
    out = ua.receive(
        invite(from_="<tel:+8613600000000>", call_id="c4", branch="z9hG4bK4"), PEER, 0.0
    )
    [arrived] = of_type(out, CallArrived)
    assert (arrived.ani, arrived.dnis) == ("+8613600000000", "800")


def test_chinese_display_names_arrive_intact() -> None:
    ua = make_ua()
    out = ua.receive(invite(from_='"张三" <sip:13812345678@c.example>'), PEER, 0.0)
    [arrived] = of_type(out, CallArrived)
    assert arrived.caller_name == "张三"


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (request("OPTIONS"), 200),
        (request("FOO"), 501),
        (request("MESSAGE"), 405),
        (request("SUBSCRIBE"), 405),
        (request("BYE", to_tag="nope"), 481),
        (request("CANCEL", branch="z9hG4bKnothing"), 481),
        (request("INVITE", to_tag="nope", body=OFFER), 481),
        (request("OPTIONS").replace(b"Max-Forwards: 70", b"Max-Forwards: 0"), 200),
        (invite(headers=["Require: 100rel"]), 420),
        (invite(body=OFFER.replace(b"RTP/AVP 0 101", b"RTP/AVP 18")), 488),
        (request("INVITE", body=b"hello").replace(b"application/sdp", b"text/plain"), 415),
    ],
)
def test_requests_we_do_not_take_get_the_right_status(data: bytes, status: int) -> None:
    ua = make_ua()
    out = ua.receive(data, PEER, 0.0)
    assert statuses(out)[-1] == status
    final = sent(out)[-1]
    if status in (200, 405):
        assert "BYE" in (final.headers.get("Allow") or "")
    assert not of_type(out, CallArrived)


@pytest.mark.parametrize(
    ("data", "fault"),
    [
        (request("OPTIONS").replace(b"CSeq: 1 OPTIONS", b"CSeq: one OPTIONS"), "bad CSeq"),
        (request("OPTIONS").replace(b"CSeq: 1 OPTIONS", b"CSeq: 1 INVITE"), "differs"),
        (request("OPTIONS").replace(b"carrier.example>", b"carrier.example"), "unterminated"),
        (request("OPTIONS").replace(b"Call-ID: call-1\r\n", b""), "no Call-ID"),
        (invite().replace(b"Contact: <sip:peer@10.0.0.2:5062>\r\n", b""), "without Contact"),
        (request("OPTIONS").replace(b"Max-Forwards: 70", b"Max-Forwards: x"), "Max-Forwards"),
    ],
)
def test_malformed_requests_get_a_400_naming_the_fault(data: bytes, fault: str) -> None:
    ua = make_ua()
    out = ua.receive(data, PEER, 0.0)
    [response] = sent(out)
    assert isinstance(response, Response)
    assert response.status == 400
    assert fault in (response.headers.get("Warning") or "")
    assert not ua.calls
    ua.advance(100.0)  # a 400 to an INVITE waits for its ACK (Timer H) at most
    assert len(ua.table) == 0


def test_hostile_datagrams_never_crash_and_leave_no_transaction(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ua = make_ua()
    rng = random.Random(10)
    valid = [request("OPTIONS"), request("BYE", to_tag="x"), request("NOTIFY"), request("ACK")]
    responses = 0
    for i in range(3000):
        kind = i % 4
        if kind == 0:
            data = rng.randbytes(rng.randrange(0, 400))
        elif kind == 1:
            mutable = bytearray(rng.choice(valid))
            for _ in range(rng.randrange(1, 8)):
                mutable[rng.randrange(len(mutable))] = rng.randrange(256)
            data = bytes(mutable)
        elif kind == 2:
            base = rng.choice(valid)
            data = base[: rng.randrange(len(base))]
        else:
            data = rng.choice(valid).replace(b"z9hG4bKp1", f"z9hG4bK{i}".encode())
        out = ua.receive(data, PEER, now=i * 0.001)
        responses += len(sent(out))
        assert not of_type(out, CallArrived)
    assert responses > 0
    assert ua.dropped > 1000
    # 3 s of flood (virtual time): at most 10 lines a second, plus one count of the rest.
    assert len([r for r in caplog.records if r.levelname == "WARNING"]) <= 4 * 11
    now = 3.0
    while (at := ua.next_deadline()) is not None:
        now = at
        ua.advance(now)
    assert len(ua.table) == 0
    assert not ua.calls
    assert ua.table.next_deadline() is None


# --- outbound ------------------------------------------------------------------------


def test_outbound_call_with_proxy_digest_ringing_answer_and_ack() -> None:
    ua = make_ua(username="cti", password="secret", outbound_proxy="10.0.0.2:5062")
    out = ua.dial("13812345678", "cb-7", 20000, now=0.0)
    [inv] = sent(out)
    assert isinstance(inv, Request)
    assert inv.uri == "sip:13812345678@10.0.0.2:5062;user=phone"
    assert inv.headers.get("Route") == "<sip:10.0.0.2:5062;lr>"
    assert parse_sdp(inv.body).media[0].port == 20000
    challenge = (
        "Proxy-Authenticate",
        'Digest realm="r", nonce="abc", qop="auth", algorithm=SHA-256',
    )
    out = ua.receive(reply(inv, 407, headers=[challenge]), PEER, 0.1)
    ack, inv2 = sent(out)
    assert isinstance(ack, Request)
    assert ack.method == "ACK"
    assert ack.top_via.branch == inv.top_via.branch
    assert isinstance(inv2, Request)
    assert inv2.method == "INVITE"
    assert inv2.cseq == (2, "INVITE")
    assert inv2.top_via.branch != inv.top_via.branch
    auth = parse_auth_params(
        (inv2.headers.get("Proxy-Authorization") or "").removeprefix("Digest ")
    )
    assert (auth["username"], auth["algorithm"], auth["qop"]) == ("cti", "SHA-256", "auth")
    out = ua.receive(reply(inv2, 180), PEER, 0.2)
    assert of_type(out, DialProgress) == [DialProgress("cb-7", "ringing", 180, False)]
    answer = OFFER.replace(b"0 101", b"0")
    out = ua.receive(reply(inv2, 200, body=answer), PEER, 1.0)
    [ack2] = sent(out)
    assert isinstance(ack2, Request)
    assert ack2.method == "ACK"
    assert ack2.cseq == (2, "ACK")
    assert ack2.uri == f"sip:peer@{PEER[0]}:{PEER[1]}"
    assert ack2.top_via.branch != inv2.top_via.branch
    assert DialProgress("cb-7", "answered", 200, True) in out
    assert of_type(out, MediaStart)
    again = ua.receive(reply(inv2, 200, body=answer), PEER, 1.5)
    assert statuses(again) == ["ACK"]  # a retransmitted 2xx is ACKed again


def test_a_second_challenge_with_the_same_nonce_is_not_answered_again() -> None:
    ua = make_ua(username="cti", password="bad")
    [inv] = sent(ua.dial("sip:x@10.0.0.2:5062", "c1", 20000, now=0.0))
    challenge = ("WWW-Authenticate", 'Digest realm="r", nonce="n1"')
    [_, inv2] = sent(ua.receive(reply(inv, 401, headers=[challenge]), PEER, 0.1))
    out = ua.receive(reply(inv2, 401, headers=[challenge]), PEER, 0.2)
    assert DialProgress("c1", "unauthorized", 401, True) in out
    assert CallerHungUp(call_id="c1", line="sip") in out


def test_hang_up_before_any_provisional_waits_then_cancels_and_a_crossing_200_gets_ack_bye() -> (
    None
):
    ua = make_ua()
    [inv] = sent(ua.dial("sip:x@10.0.0.2:5062", "c1", 20000, now=0.0))
    assert sent(ua.hang_up("c1", 0.1)) == []  # no CANCEL before a provisional response
    assert not ua.live("c1")
    out = ua.receive(reply(inv, 180), PEER, 0.2)
    [cancel] = sent(out)
    assert isinstance(cancel, Request)
    assert cancel.method == "CANCEL"
    assert cancel.top_via.branch == inv.top_via.branch
    assert cancel.cseq == (1, "CANCEL")
    out = ua.receive(reply(inv, 200, body=OFFER), PEER, 0.3)  # crossed the CANCEL
    assert statuses(out) == ["ACK", "BYE"]
    assert not of_type(out, CallerHungUp)


def test_stale_challenges_are_answered_only_with_a_fresh_nonce_and_only_a_few_times() -> None:
    ua = make_ua(username="cti", password="pw")
    [inv] = sent(ua.dial("sip:x@10.0.0.2:5062", "c1", 20000, now=0.0))
    same = ("WWW-Authenticate", 'Digest realm="r", nonce="n1", stale=true')
    [_, inv] = sent(ua.receive(reply(inv, 401, headers=[same]), PEER, 0.1))
    out = ua.receive(reply(inv, 401, headers=[same]), PEER, 0.2)  # the same nonce again
    assert statuses(out) == ["ACK"]
    assert DialProgress("c1", "unauthorized", 401, True) in out
    ua = make_ua(username="cti", password="pw")
    [inv] = sent(ua.dial("sip:x@10.0.0.2:5062", "c2", 20000, now=0.0))
    invites = 1
    for i in range(10):  # a peer with a new nonce every time: bounded, not forever
        fresh = ("WWW-Authenticate", f'Digest realm="r", nonce="n{i}", stale=true')
        out = ua.receive(reply(inv, 401, headers=[fresh]), PEER, 0.1 * (i + 1))
        again = [m for m in sent(out) if isinstance(m, Request) and m.method == "INVITE"]
        if not again:
            break
        [inv], invites = again, invites + 1
    assert invites == 4
    assert DialProgress("c2", "unauthorized", 401, True) in out


def test_a_cancel_never_answered_with_a_final_response_ends_the_dial_after_64_t1() -> None:
    ua = make_ua(dial_timeout_s=5.0)
    [inv] = sent(ua.dial("sip:x@10.0.0.2:5062", "c1", 20000, now=0.0))
    ua.receive(reply(inv, 180), PEER, 0.1)
    [cancel] = sent(ua.advance(5.0))
    assert isinstance(cancel, Request)
    ua.receive(reply(cancel, 200), PEER, 5.1)  # ... and the 487 never comes
    effects = []
    while (at := ua.next_deadline()) is not None and at < 1000:
        effects += ua.advance(at)
    assert DialProgress("c1", "no_answer", 0, True) in effects
    assert CallerHungUp(call_id="c1", line="sip") in effects
    assert MediaStop("c1", 20000) in effects
    assert not ua.calls
    assert len(ua.table) == 0
    assert ua.next_deadline() is None
    assert ua.receive(reply(inv, 487), PEER, 100.0) == []  # late: a stray, absorbed


def test_our_hang_up_of_an_unanswered_dial_still_gives_a_final_outcome() -> None:
    ua = make_ua()
    ua.dial("sip:x@10.0.0.2:5062", "c1", 20000, now=0.0)
    ua.hang_up("c1", 0.1)  # no provisional yet: the CANCEL waits, and none ever comes
    effects = []
    while (at := ua.next_deadline()) is not None and at < 1000:
        effects += ua.advance(at)
    assert of_type(effects, DialProgress) == [DialProgress("c1", "cancelled", 0, True)]
    assert not of_type(effects, CallerHungUp)
    assert not ua.calls
    assert len(ua.table) == 0


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(486, "busy"), (600, "busy"), (480, "no_answer"), (603, "rejected"), (404, "failed")],
)
def test_final_failures_map_to_dial_outcomes(status: int, outcome: str) -> None:
    ua = make_ua()
    [inv] = sent(ua.dial("sip:x@10.0.0.2:5062", "c1", 20000, now=0.0))
    out = ua.receive(reply(inv, status), PEER, 0.5)
    assert DialProgress("c1", outcome, status, True) in out
    assert CallerHungUp(call_id="c1", line="sip") in out
    assert MediaStop("c1", 20000) in out


def test_no_response_at_all_fails_after_timer_b_and_no_answer_cancels() -> None:
    ua = make_ua(dial_timeout_s=5.0)
    ua.dial("sip:x@10.0.0.2:5062", "c1", 20000, now=0.0)
    effects = []
    while (at := ua.next_deadline()) is not None and at <= 40:
        effects += ua.advance(at)
    assert DialProgress("c1", "failed", 0, True) in effects
    assert statuses(effects).count("INVITE") == 6  # Timer A retransmissions
    [inv] = sent(ua.dial("sip:x@10.0.0.2:5062", "c2", 20000, now=50.0))
    ua.receive(reply(inv, 180), PEER, 50.1)
    out = ua.advance(55.0)  # dial_timeout_s
    assert statuses(out) == ["CANCEL"]
    out = ua.receive(reply(inv, 487), PEER, 55.1)
    assert DialProgress("c2", "no_answer", 487, True) in out


def test_dialling_needs_a_uri_or_a_configured_domain() -> None:
    with pytest.raises(TelephonyError, match="no registrar or outbound proxy"):
        make_ua().dial("13812345678", "c1", 20000, now=0.0)
    with pytest.raises(TelephonyError, match="no digits"):
        make_ua(registrar="sip.example").dial("--", "c1", 20000, now=0.0)


# --- registration and keep-alive --------------------------------------------------------


def test_registration_with_digest_is_refreshed_before_it_expires_and_withdrawn() -> None:
    ua = make_ua(registrar="10.0.0.2:5062", username="1001", password="pw", keepalive_s=0)
    [reg] = sent(ua.start(0.0))
    assert isinstance(reg, Request)
    assert reg.method == "REGISTER"
    assert reg.uri == "sip:10.0.0.2:5062"
    assert reg.headers.get("Expires") == "3600"
    assert str(reg.to.uri) == "sip:1001@10.0.0.2:5062"
    challenge = ("WWW-Authenticate", 'Digest realm="r", nonce="n", qop="auth"')
    [reg2] = sent(ua.receive(reply(reg, 401, headers=[challenge]), PEER, 0.1))
    assert isinstance(reg2, Request)
    assert reg2.cseq == (2, "REGISTER")
    assert reg2.call_id == reg.call_id
    assert "Authorization" in reg2.headers
    ok = reply(reg2, 200, headers=[("Contact", "<sip:1001@10.0.0.1:5060>;expires=120")])
    ua.receive(ok, PEER, 0.2)
    assert ua.registered
    assert ua.registration_expires_at == pytest.approx(120.2)
    assert statuses(ua.advance(90.0)) == []
    [refresh] = sent(ua.advance(90.2))  # max(120 - 30, 60) s after the 200
    assert isinstance(refresh, Request)
    assert refresh.cseq == (3, "REGISTER")
    ua.receive(reply(refresh, 200, headers=[("Expires", "300")]), PEER, 90.3)
    assert ua.registration_expires_at == pytest.approx(390.3)
    [withdraw] = sent(ua.stop(100.0))
    assert isinstance(withdraw, Request)
    assert withdraw.headers.get("Expires") == "0"


def test_options_keep_alive_notes_whether_the_peer_answers() -> None:
    ua = make_ua(outbound_proxy="10.0.0.2:5062", keepalive_s=30)
    assert ua.start(0.0) == []
    [options] = sent(ua.advance(30.0))
    assert isinstance(options, Request)
    assert options.method == "OPTIONS"
    ua.receive(reply(options, 200), PEER, 30.1)
    assert ua.peer_alive is True
    effects = []
    while (at := ua.next_deadline()) is not None and at <= 95:
        effects += ua.advance(at)
    assert ua.peer_alive is False  # the next one was never answered (Timer F)


# --- hold, transfer, re-INVITE from the peer ------------------------------------------


def test_hold_and_resume_by_re_invite_with_a_bumped_version() -> None:
    ua = make_ua()
    call_id, tag = connect(ua)
    [reinvite] = sent(ua.hold(call_id, 1.0))
    assert isinstance(reinvite, Request)
    assert reinvite.method == "INVITE"
    assert reinvite.to.tag == "ft"
    assert reinvite.from_.tag == tag
    held = parse_sdp(reinvite.body)
    assert held.media[0].direction == "sendonly"
    assert held.version == 2
    with pytest.raises(TelephonyError, match="already being changed"):
        ua.hold(call_id, 1.0)
    answer = OFFER.replace(b"0 101", b"0") + b"a=recvonly\r\n"
    out = ua.receive(reply(reinvite, 200, tag="ft", body=answer), PEER, 1.1)
    assert statuses(out) == ["ACK"]
    assert sent(out)[0].cseq == (reinvite.cseq[0], "ACK")
    [media] = of_type(out, MediaStart)
    assert media.plan.direction == "sendonly"
    [resume] = sent(ua.hold(call_id, 2.0, hold=False))
    assert parse_sdp(resume.body).media[0].direction == "sendrecv"
    assert parse_sdp(resume.body).version == 3


def test_the_peer_holds_us_by_re_invite() -> None:
    ua = make_ua()
    call_id, tag = connect(ua)
    held = OFFER + b"a=sendonly\r\n"
    out = ua.receive(invite(to_tag=tag, cseq=2, branch="z9hG4bKre", body=held), PEER, 3.0)
    [ok] = sent(out)
    assert isinstance(ok, Response)
    assert ok.status == 200
    assert parse_sdp(ok.body).media[0].direction == "recvonly"
    ua.receive(request("ACK", to_tag=tag, cseq=2, branch="z9hG4bKa3"), PEER, 3.1)
    assert ua.call_state(call_id) == "confirmed"
    old = ua.receive(invite(to_tag=tag, cseq=2, branch="z9hG4bKold", body=held), PEER, 4.0)
    assert statuses(old) == [500]  # an older CSeq: out of order


def test_blind_transfer_by_refer_with_notify_progress() -> None:
    ua = make_ua(registrar="pbx.example")
    call_id, tag = connect(ua)
    [refer] = sent(ua.transfer(call_id, "1002", 1.0))
    assert isinstance(refer, Request)
    assert refer.method == "REFER"
    assert refer.headers.get("Refer-To") == "<sip:1002@pbx.example;user=phone>"
    out = ua.receive(reply(refer, 202, tag="ft"), PEER, 1.1)
    assert of_type(out, TransferOutcome) == [TransferOutcome(call_id, 202, False)]

    def notify(frag: bytes, state: str, cseq: int) -> bytes:
        data = request(
            "NOTIFY",
            to_tag=tag,
            cseq=cseq,
            branch=f"z9hG4bKn{cseq}",
            headers=["Event: refer", f"Subscription-State: {state}"],
            body=frag,
        )
        return data.replace(b"application/sdp", b"message/sipfrag;version=2.0")

    out = ua.receive(notify(b"SIP/2.0 100 Trying\r\n", "active;expires=60", 2), PEER, 1.2)
    assert statuses(out) == [200]
    assert TransferOutcome(call_id, 100, False) in out
    out = ua.receive(notify(b"SIP/2.0 200 OK\r\n", "terminated;reason=noresource", 3), PEER, 1.3)
    assert statuses(out) == [200, "BYE"]
    assert TransferOutcome(call_id, 200, True) in out
    assert not of_type(out, CallerHungUp)
    assert not ua.live(call_id)


def test_a_notify_for_no_transfer_is_481() -> None:
    ua = make_ua()
    _, tag = connect(ua)
    out = ua.receive(request("NOTIFY", to_tag=tag, cseq=2, branch="z9hG4bKn"), PEER, 1.0)
    assert statuses(out) == [481]


def test_an_invite_without_sdp_gets_our_offer_in_the_200_and_the_answer_from_the_ack() -> None:
    ua = make_ua()
    out = ua.receive(invite(body=b""), PEER, 0.0)
    [arrived] = of_type(out, CallArrived)
    tag = sent(out)[1].to.tag
    [ok] = sent(ua.answer(arrived.call_id, 10000, 0.1))
    offer = parse_sdp(ok.body)
    assert offer.media[0].formats == ["0", "8", "101"]
    assert offer.media[0].port == 10000
    answer = OFFER.replace(b"0 101", b"8")
    ack = request("ACK", to_tag=tag, branch="z9hG4bKa", body=answer)
    [media] = of_type(ua.receive(ack, PEER, 0.2), MediaStart)
    assert (media.plan.codec, media.plan.remote_port) == ("PCMA", 4000)
