"""A peer's REFER (RFC 3515, blind and attended) and an INVITE with Replaces (RFC 3891),
on virtual time against a fake peer."""

from __future__ import annotations

from cti.protocol import CallerHungUp
from telephony_adapters.sipline.effects import Replaces
from telephony_adapters.sipline.message import Request, Response
from telephony_adapters.sipline.sdp import parse_sdp
from telephony_adapters.sipline.useragent import MediaStart, TransferRequested, UserAgent
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
from tests.telephony_adapters.sipline.test_useragent import connect


def refer(tag: str, refer_to: str, cseq: int = 2) -> bytes:
    return request(
        "REFER",
        to_tag=tag,
        cseq=cseq,
        branch=f"z9hG4bKref{cseq}",
        headers=[f"Refer-To: {refer_to}", "Referred-By: <sip:pbx@10.0.0.2>"],
    )


def notify_frag(message: Request | Response) -> tuple[str, str]:
    assert isinstance(message, Request)
    assert message.method == "NOTIFY"
    assert message.headers.get("Event") == "refer"
    assert message.headers.get("Content-Type") == "message/sipfrag;version=2.0"
    state = message.headers.get("Subscription-State") or ""
    return message.body.decode().strip(), state.split(";")[0]


def test_a_refer_is_declined_with_a_warning_unless_the_line_takes_them() -> None:
    ua = make_ua()
    call_id, tag = connect(ua)
    out = ua.receive(refer(tag, "<sip:1002@pbx.example>"), PEER, 1.0)
    [response] = sent(out)
    assert isinstance(response, Response)
    assert response.status == 603
    assert "does not carry out transfers" in (response.headers.get("Warning") or "")
    assert not of_type(out, TransferRequested)
    assert ua.call_state(call_id) == "confirmed"


def test_a_blind_refer_is_accepted_asked_of_the_line_and_reported_by_notify() -> None:
    ua = make_ua(accept_refer=True)
    call_id, tag = connect(ua)
    out = ua.receive(refer(tag, "<sip:1002@pbx.example;user=phone>"), PEER, 1.0)
    accepted, trying = sent(out)
    assert isinstance(accepted, Response)
    assert accepted.status == 202
    assert notify_frag(trying) == ("SIP/2.0 100 Trying", "active")
    [asked] = of_type(out, TransferRequested)
    assert asked == TransferRequested(
        call_id, "sip:1002@pbx.example;user=phone", None, "<sip:pbx@10.0.0.2>"
    )
    second = ua.receive(refer(tag, "<sip:1003@pbx.example>", cseq=3), PEER, 1.1)
    assert statuses(second) == [491]
    ua.receive(reply(trying, 200, tag="ft"), PEER, 1.2)
    [done] = sent(ua.refer_outcome(call_id, 200, 5.0))
    assert notify_frag(done) == ("SIP/2.0 200 OK", "terminated")
    assert not sent(ua.refer_outcome(call_id, 200, 5.1))  # reported once
    # The referrer then hangs up its leg, as after any transfer.
    bye = request("BYE", to_tag=tag, cseq=4, branch="z9hG4bKbye")
    assert statuses(ua.receive(bye, PEER, 6.0)) == [200]


def test_an_attended_refer_carries_the_replaces_of_the_target_dialog() -> None:
    ua = make_ua(accept_refer=True)
    _, tag = connect(ua)
    target = "<sip:1003@pbx.example?Replaces=abc%40pbx%3Bto-tag%3Dt1%3Bfrom-tag%3Df1>"
    [asked] = of_type(ua.receive(refer(tag, target), PEER, 1.0), TransferRequested)
    assert asked.target == "sip:1003@pbx.example"
    assert asked.replaces == Replaces("abc@pbx", "t1", "f1")


def test_refers_we_cannot_do_are_refused_with_the_right_status() -> None:
    ua = make_ua(accept_refer=True)
    _, tag = connect(ua)
    bye_method = ua.receive(refer(tag, "<sip:1002@pbx.example;method=BYE>"), PEER, 1.0)
    [response] = sent(bye_method)
    assert isinstance(response, Response)
    assert response.status == 501
    assert "method 'BYE'" in (response.headers.get("Warning") or "")
    no_target = request("REFER", to_tag=tag, cseq=3, branch="z9hG4bKnt")
    assert statuses(ua.receive(no_target, PEER, 1.1)) == [400]
    unknown = refer("nope", "<sip:1002@pbx.example>", cseq=4)
    assert statuses(ua.receive(unknown, PEER, 1.2)) == [481]


def test_a_transfer_with_no_outcome_is_reported_failed_after_the_time_out() -> None:
    ua = make_ua(accept_refer=True, refer_timeout_s=30.0)
    _, tag = connect(ua)
    _, trying = sent(ua.receive(refer(tag, "<sip:1002@pbx.example>"), PEER, 1.0))
    ua.receive(reply(trying, 200, tag="ft"), PEER, 1.1)
    out = []
    while (at := ua.next_deadline()) is not None and at <= 31.0:
        out += ua.advance(at)
    [failed] = [m for m in sent(out) if isinstance(m, Request) and m.method == "NOTIFY"]
    assert notify_frag(failed) == ("SIP/2.0 408 Request Timeout", "terminated")


# --- INVITE with Replaces --------------------------------------------------------------

MOVED = OFFER.replace(b"10.0.0.2", b"10.0.0.7").replace(b"4000", b"6000")


def replacing(tag: str, *, params: str = "") -> bytes:
    return invite(
        call_id="new-1",
        from_tag="nt",
        branch="z9hG4bKnew",
        headers=[f"Replaces: call-1;to-tag={tag};from-tag=ft{params}"],
        body=MOVED,
    )


def test_an_invite_with_replaces_takes_over_the_call_and_the_old_dialog_gets_bye() -> None:
    ua: UserAgent = make_ua()
    call_id, tag = connect(ua)
    out = ua.receive(replacing(tag), PEER, 2.0)
    ok, bye = sent(out)
    assert isinstance(ok, Response)
    assert ok.status == 200
    assert parse_sdp(ok.body).media[0].port == 10000  # the call's own RTP port
    assert isinstance(bye, Request)
    assert (bye.method, bye.call_id, bye.from_.tag) == ("BYE", "call-1", tag)
    assert not of_type(out, CallerHungUp)
    assert not of_type(out, MediaStart)
    done = ua.receive(reply(bye, 200, tag="ft"), PEER, 2.1)
    assert not of_type(done, CallerHungUp)
    ack = request("ACK", call_id="new-1", from_tag="nt", to_tag=ok.to.tag, branch="z9hG4bKna")
    [media] = of_type(ua.receive(ack, PEER, 2.2), MediaStart)
    assert (media.call_id, media.plan.remote_host, media.plan.remote_port) == (
        call_id,
        "10.0.0.7",
        6000,
    )
    assert ua.call_state(call_id) == "confirmed"
    # The new far end hangs up: the engine's call ends.
    bye2 = request("BYE", call_id="new-1", from_tag="nt", to_tag=ok.to.tag, cseq=2,
                   branch="z9hG4bKnb")  # fmt: skip
    end = ua.receive(bye2, PEER, 9.0)
    assert statuses(end) == [200]
    assert of_type(end, CallerHungUp) == [CallerHungUp(call_id=call_id, line="sip")]


def test_replaces_for_no_dialog_of_ours_481_and_early_only_486() -> None:
    ua = make_ua()
    _, tag = connect(ua)
    [missing] = sent(ua.receive(replacing("other"), PEER, 1.0))
    assert isinstance(missing, Response)
    assert missing.status == 481
    assert "Replaces" in (missing.headers.get("Warning") or "")
    early_only = replacing(tag, params=";early-only").replace(b"z9hG4bKnew", b"z9hG4bKeo")
    assert statuses(ua.receive(early_only, PEER, 1.1)) == [486]
