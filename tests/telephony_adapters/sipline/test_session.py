"""Session timers (RFC 4028), reliable provisionals (RFC 3262), UPDATE (RFC 3311) and the
peer's re-INVITE with a new address or codec, on virtual time against a fake peer."""

from __future__ import annotations

from collections.abc import Sequence

from cti.protocol import CallerHungUp
from telephony_adapters.sipline.message import Request, Response
from telephony_adapters.sipline.sdp import parse_sdp
from telephony_adapters.sipline.useragent import DialProgress, Effect, MediaStart, UserAgent
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
from tests.telephony_adapters.sipline.test_useragent import ring

TIMER = ["Supported: timer"]


def connect_with(
    ua: UserAgent, headers: Sequence[str], now: float = 0.0
) -> tuple[str, str, Response]:
    """An inbound call with ``headers`` on its INVITE, answered and ACKed: (call id, our
    tag, our 200)."""
    call_id, ringing = ring(ua, now, headers=list(headers))
    [ok] = sent(ua.answer(call_id, 10000, now))
    assert isinstance(ok, Response)
    ack = request("ACK", to_tag=ringing.to.tag, branch="z9hG4bKack")
    ua.receive(ack, PEER, now)
    assert ua.call_state(call_id) == "confirmed"
    return call_id, ringing.to.tag, ok


def ours(effects: Sequence[Effect], method: str) -> list[Request]:
    return [m for m in sent(effects) if isinstance(m, Request) and m.method == method]


def step(ua: UserAgent, until: float) -> tuple[float, list[Effect]]:
    """Advance to the next deadline (at most ``until``): (the time now, the effects)."""
    at = ua.next_deadline()
    if at is None or at > until:
        return until, ua.advance(until)
    return at, ua.advance(at)


def run_to(ua: UserAgent, until: float) -> list[Effect]:
    """Everything due up to ``until``, in order."""
    out: list[Effect] = []
    while (at := ua.next_deadline()) is not None and at <= until:
        out += ua.advance(at)
    return out + ua.advance(until)


# --- session timers --------------------------------------------------------------------


def test_a_session_timer_is_refreshed_by_us_across_a_call_longer_than_its_interval() -> None:
    ua = make_ua()
    headers = ["Session-Expires: 90", "Min-SE: 90", *TIMER]
    call_id, _, ok = connect_with(ua, headers)
    assert ok.headers.get("Session-Expires") == "90;refresher=uas"
    assert ok.headers.get("Require") == "timer"
    answer_version = parse_sdp(ok.body).version
    refreshes: list[float] = []
    now = 0.0
    while now < 600.0:  # ten minutes: more than six intervals
        now, out = step(ua, 600.0)
        for reinvite in ours(out, "INVITE"):
            refreshes.append(now)
            assert reinvite.headers.get("Session-Expires") == "90;refresher=uac"
            assert parse_sdp(reinvite.body).version == answer_version  # nothing changed
            acked = ua.receive(reply(reinvite, 200, tag="ft", body=OFFER), PEER, now)
            assert statuses(acked) == ["ACK"]
        assert not ours(out, "BYE")
        assert not of_type(out, CallerHungUp)
    assert ua.call_state(call_id) == "confirmed"
    assert refreshes[:3] == [45.0, 90.0, 135.0]  # half the interval, each time
    assert len(refreshes) == 13
    # The peer stops answering: the refresh is retransmitted, then the call ends.
    ended: list[Effect] = []
    while ua.live(call_id) and now < 800.0:
        now, more = step(ua, 800.0)
        ended += more
    assert ours(ended, "BYE")
    assert of_type(ended, CallerHungUp) == [CallerHungUp(call_id=call_id, line="sip")]
    assert now <= 645.0 + 90.0


def test_the_peer_as_refresher_keeps_the_call_and_its_silence_ends_it() -> None:
    ua = make_ua()
    headers = ["Session-Expires: 90;refresher=uac", *TIMER]
    call_id, tag, ok = connect_with(ua, headers)
    assert ok.headers.get("Session-Expires") == "90;refresher=uac"
    out = run_to(ua, 40.0)
    assert not sent(out)  # not ours to refresh
    # The peer refreshes at 40 s by re-INVITE: the end moves to 40 + 60.
    re = invite(
        to_tag=tag, cseq=2, branch="z9hG4bKr1", headers=["Session-Expires: 90;refresher=uac"]
    )
    out = ua.receive(re, PEER, 40.0)
    [ok2] = sent(out)
    assert isinstance(ok2, Response)
    assert (ok2.status, ok2.headers.get("Session-Expires")) == (200, "90;refresher=uac")
    ua.receive(request("ACK", to_tag=tag, cseq=2, branch="z9hG4bKa2"), PEER, 40.0)
    now, ended = 40.0, []
    while ua.live(call_id):
        now, more = step(ua, 200.0)
        ended += more
        assert not ours(more, "INVITE")
    assert now == 40.0 + 90 - 30  # interval - min(32, interval / 3)
    assert ours(ended, "BYE")
    assert of_type(ended, CallerHungUp) == [CallerHungUp(call_id=call_id, line="sip")]


def test_an_interval_below_our_min_se_gets_422() -> None:
    ua = make_ua()
    out = ua.receive(invite(headers=["Session-Expires: 60", *TIMER]), PEER, 0.0)
    [response] = sent(out)
    assert isinstance(response, Response)
    assert (response.status, response.reason) == (422, "Session Interval Too Small")
    assert response.headers.get("Min-SE") == "90"
    assert "Min-SE 90" in (response.headers.get("Warning") or "")
    assert not ua.calls


def test_refresh_by_update_when_the_peer_allows_it_and_the_peers_update_refreshes() -> None:
    ua = make_ua()
    allow = "Allow: INVITE, ACK, CANCEL, BYE, UPDATE"
    call_id, tag, _ = connect_with(ua, ["Session-Expires: 120", allow, *TIMER])
    [update] = ours(run_to(ua, 60.0), "UPDATE")
    assert not update.body
    assert update.headers.get("Session-Expires") == "120;refresher=uac"
    ua.receive(
        reply(update, 200, tag="ft", headers=[("Session-Expires", "120;refresher=uac")]), PEER, 60.0
    )
    # The peer's UPDATE takes the refreshing over (refresher=uac: the peer).
    their = request("UPDATE", to_tag=tag, cseq=2, branch="z9hG4bKu1",
                    headers=["Session-Expires: 120;refresher=uac"])  # fmt: skip
    [ok] = sent(ua.receive(their, PEER, 70.0))
    assert isinstance(ok, Response)
    assert (ok.status, ok.headers.get("Session-Expires")) == (200, "120;refresher=uac")
    now, out = 70.0, []
    while ua.live(call_id):
        now, more = step(ua, 400.0)
        out += more
        assert not ours(more, "UPDATE")
    assert now == 70.0 + 120 - 32


def test_outbound_calls_ask_a_timer_take_a_422_and_refresh_as_told() -> None:
    ua = make_ua()
    [inv] = sent(ua.dial("sip:1001@10.0.0.2:5062", "out-1", 12000, 0.0))
    assert isinstance(inv, Request)
    assert inv.headers.get("Session-Expires") == "1800"
    assert inv.headers.get("Min-SE") == "90"
    assert "timer" in (inv.headers.get("Supported") or "")
    assert "100rel" in (inv.headers.get("Supported") or "")
    out = ua.receive(reply(inv, 422, headers=[("Min-SE", "3600")]), PEER, 0.1)
    [again] = ours(out, "INVITE")
    assert again.cseq == (2, "INVITE")
    assert again.headers.get("Session-Expires") == "3600"
    granted = [("Session-Expires", "3600;refresher=uac"), ("Require", "timer")]
    out = ua.receive(reply(again, 200, body=OFFER, headers=granted), PEER, 1.0)
    assert DialProgress("out-1", "answered", 200, True) in out
    assert not ours(run_to(ua, 1800.9), "INVITE")
    [refresh] = ours(run_to(ua, 1801.0), "INVITE")
    assert refresh.headers.get("Session-Expires") == "3600;refresher=uac"


def test_a_refresh_refused_with_481_ends_the_call() -> None:
    ua = make_ua()
    call_id, _, _ = connect_with(ua, ["Session-Expires: 90", *TIMER])
    [reinvite] = ours(run_to(ua, 45.0), "INVITE")
    out = ua.receive(reply(reinvite, 481, tag="ft"), PEER, 45.1)
    assert of_type(out, CallerHungUp) == [CallerHungUp(call_id=call_id, line="sip")]
    assert not ua.live(call_id)


def test_no_timer_asked_no_timer_run() -> None:
    ua = make_ua()
    call_id, _, ok = connect_with(ua, [])
    assert ok.headers.get("Session-Expires") is None
    assert not sent(run_to(ua, 10_000.0))
    assert ua.call_state(call_id) == "confirmed"


# --- 100rel / PRACK -------------------------------------------------------------------


def test_reliable_provisionals_to_our_invite_are_pracked_once_each_in_order() -> None:
    ua = make_ua()
    [inv] = sent(ua.dial("sip:1001@10.0.0.2:5062", "out-1", 12000, 0.0))
    reliable = [("Require", "100rel"), ("RSeq", "7")]
    out = ua.receive(reply(inv, 180, headers=reliable), PEER, 0.1)
    [prack] = ours(out, "PRACK")
    assert prack.headers.get("RAck") == "7 1 INVITE"
    assert prack.to.tag == "pt"
    assert prack.cseq == (2, "PRACK")
    assert DialProgress("out-1", "ringing", 180, False) in out
    again = ua.receive(reply(inv, 180, headers=reliable), PEER, 0.6)  # retransmitted
    assert not ours(again, "PRACK")
    assert not of_type(again, DialProgress)
    skipped = ua.receive(reply(inv, 183, headers=[("Require", "100rel"), ("RSeq", "9")]), PEER, 0.7)
    assert not ours(skipped, "PRACK")  # RSeq 8 is missing: not acknowledged
    out = ua.receive(reply(inv, 183, headers=[("Require", "100rel"), ("RSeq", "8")]), PEER, 0.8)
    [prack2] = ours(out, "PRACK")
    assert (prack2.headers.get("RAck"), prack2.cseq[0]) == ("8 1 INVITE", 3)
    ua.receive(reply(prack, 200, tag="pt"), PEER, 0.9)
    out = ua.receive(reply(inv, 200, body=OFFER), PEER, 1.0)
    [ack] = ours(out, "ACK")
    assert ack.cseq == (1, "ACK")
    [bye] = sent(ua.hang_up("out-1", 2.0))
    assert bye.cseq == (4, "BYE")


def test_a_prack_for_nothing_we_sent_is_481_and_100rel_required_is_420() -> None:
    ua = make_ua()
    _, ringing = ring(ua)
    prack = request(
        "PRACK", to_tag=ringing.to.tag, cseq=2, branch="z9hG4bKp", headers=["RAck: 1 1 INVITE"]
    )
    [response] = sent(ua.receive(prack, PEER, 0.1))
    assert isinstance(response, Response)
    assert response.status == 481
    assert "reliable" in (response.headers.get("Warning") or "")
    out = ua.receive(
        invite(call_id="c2", branch="z9hG4bKc2", headers=["Require: 100rel"]), PEER, 0.2
    )
    assert statuses(out) == [420]


# --- UPDATE and the peer's new offers -------------------------------------------------

MOVED = OFFER.replace(b"10.0.0.2", b"10.0.0.9").replace(
    b"4000 RTP/AVP 0 101", b"5000 RTP/AVP 8 101"
)


def test_the_peers_re_invite_moves_the_media_to_its_new_address_and_codec() -> None:
    ua = make_ua()
    call_id, tag, _ = connect_with(ua, [])
    out = ua.receive(invite(to_tag=tag, cseq=2, branch="z9hG4bKm", body=MOVED), PEER, 5.0)
    [ok] = sent(out)
    assert isinstance(ok, Response)
    assert ok.status == 200
    answer = parse_sdp(ok.body)
    assert answer.media[0].formats[0] == "8"
    assert answer.media[0].port == 10000
    [media] = of_type(out, MediaStart)
    plan = media.plan
    assert (media.call_id, plan.remote_host, plan.remote_port, plan.codec, plan.payload_type) == (
        call_id, "10.0.0.9", 5000, "PCMA", 8,
    )  # fmt: skip


def test_a_re_invite_without_a_common_codec_gets_488_and_the_call_keeps_its_media() -> None:
    ua = make_ua()
    call_id, tag, ok = connect_with(ua, [])
    before = ua.calls[call_id].plan
    version = parse_sdp(ok.body).version
    g729 = OFFER.replace(b"RTP/AVP 0 101", b"RTP/AVP 18").replace(b"10.0.0.2", b"10.0.0.9")
    out = ua.receive(invite(to_tag=tag, cseq=2, branch="z9hG4bKg", body=g729), PEER, 5.0)
    [refused] = sent(out)
    assert isinstance(refused, Response)
    assert refused.status == 488
    assert (refused.headers.get("Warning") or "").startswith("304 ")
    assert not of_type(out, MediaStart)
    assert ua.calls[call_id].plan == before
    ua.receive(request("ACK", to_tag=tag, cseq=2, branch="z9hG4bKg"), PEER, 5.1)
    out = ua.receive(invite(to_tag=tag, cseq=3, branch="z9hG4bKm", body=MOVED), PEER, 6.0)
    [ok2] = sent(out)
    assert isinstance(ok2, Response)
    assert (ok2.status, parse_sdp(ok2.body).version) == (200, version + 1)
    assert of_type(out, MediaStart)[0].plan.remote_host == "10.0.0.9"


def test_update_with_an_offer_in_a_confirmed_dialog_moves_the_media() -> None:
    ua = make_ua()
    _, tag, _ = connect_with(ua, [])
    update = request("UPDATE", to_tag=tag, cseq=2, branch="z9hG4bKu", body=MOVED)
    out = ua.receive(update, PEER, 5.0)
    [ok] = sent(out)
    assert isinstance(ok, Response)
    assert ok.status == 200
    assert parse_sdp(ok.body).media[0].formats[0] == "8"
    assert of_type(out, MediaStart)[0].plan.remote_port == 5000
    assert "UPDATE" in (ok.headers.get("Allow") or "")


def test_update_in_an_early_dialog_refreshes_and_an_offer_there_waits() -> None:
    ua = make_ua()
    call_id, ringing = ring(ua)
    tag = ringing.to.tag
    refresh = request("UPDATE", to_tag=tag, cseq=2, branch="z9hG4bKe1",
                      headers=["Session-Expires: 300;refresher=uac"])  # fmt: skip
    [ok] = sent(ua.receive(refresh, PEER, 1.0))
    assert isinstance(ok, Response)
    assert (ok.status, ok.headers.get("Session-Expires")) == (200, "300;refresher=uac")
    offer = request("UPDATE", to_tag=tag, cseq=3, branch="z9hG4bKe2", body=MOVED)
    [wait] = sent(ua.receive(offer, PEER, 1.1))
    assert isinstance(wait, Response)
    assert (wait.status, wait.headers.get("Retry-After")) == (500, "1")
    assert ua.call_state(call_id) == "ringing"
    unknown = request("UPDATE", to_tag="nope", cseq=4, branch="z9hG4bKe3")
    assert statuses(ua.receive(unknown, PEER, 1.2)) == [481]
