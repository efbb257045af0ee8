"""The faults an outside torture run found (issue 22), each refused the way RFC 3261
says, in kind: a '?' in a URI's user part, repeated single-valued headers, empty Via or
Contact parameters, an empty first Via, a Contact our own BYE could not carry, Require
on any request, another SIP version, escaped numbers."""

from __future__ import annotations

import logging

import pytest

from cti.protocol import CallArrived
from telephony_adapters.sipline.message import Request, Response, make_response
from tests.telephony_adapters.sipline.peer import (
    OFFER,
    PEER,
    invite,
    make_ua,
    of_type,
    request,
    sent,
    statuses,
)

pytestmark = pytest.mark.security


def _refusal(data: bytes, status: int = 400) -> str:
    """The Warning of the refusal ``data`` gets (and no call, no transaction left)."""
    ua = make_ua()
    out = ua.receive(data, PEER, 0.0)
    assert statuses(out) == [status]
    [response] = sent(out)
    assert isinstance(response, Response)
    assert not ua.calls
    ua.advance(100.0)
    assert len(ua.table) == 0
    return response.headers.get("Warning") or ""


def test_a_question_mark_in_the_user_part_is_not_the_start_of_headers() -> None:
    ua = make_ua()
    out = ua.receive(invite(uri="sip:80?0;x@10.0.0.1;user=phone"), PEER, 0.0)
    [arrived] = of_type(out, CallArrived)
    assert arrived.dnis == "80?0;x"


@pytest.mark.parametrize(
    "header",
    [
        "Call-ID: call-2",
        "CSeq: 2 OPTIONS",
        'From: "X" <sip:x@carrier.example>;tag=2',
        "To: <sip:801@10.0.0.1>",
        "Max-Forwards: 69",
        "Content-Length: 0",
        "Content-Type: application/sdp",
        "Expires: 60",
    ],
)
def test_a_repeated_single_valued_header_is_a_400(header: str) -> None:
    name = header.partition(":")[0]
    assert f"more than one {name}" in _refusal(request("OPTIONS", headers=[header, header]))


@pytest.mark.parametrize(
    ("old", "new", "fault"),
    [
        (b";rport\r\n", b";rport;;\r\n", "empty parameter"),
        (b";rport\r\n", b";rport;branch=\r\n", "bad value"),
        (b":5062>\r\n", b":5062>;;\r\n", "bad Contact"),
        (b":5062>\r\n", b";;x>\r\n", "bad Contact"),
        (b":5062>\r\n", b";transport=udp ;x=1 2>\r\n", "bad Contact"),
        (
            b"Via: SIP/2.0/UDP 10.0.0.2:5062;branch=z9hG4bKp1;rport",
            b"Via: SIP/2.0/UDP 10.0.0.2:5062;branch=z9hG4bKp1;rport, ",
            "empty Via",
        ),
    ],
)
def test_empty_or_spaced_via_and_contact_parameters_are_a_400(
    old: bytes, new: bytes, fault: str
) -> None:
    data = invite().replace(old, new, 1)
    assert data != invite()
    assert fault in _refusal(data)


def test_an_empty_first_via_is_a_counted_refusal_not_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ua = make_ua()
    caplog.set_level(logging.WARNING, logger="telephony_adapters.sipline")
    for i in range(1000):
        data = request("OPTIONS", branch=f"z9hG4bK{i}").replace(b"Via: SIP", b"Via: \r\nVia: SIP")
        assert ua.receive(data, PEER, i * 0.01) == []  # no Via to answer along: dropped
    assert ua.dropped == 1000
    assert not [r for r in caplog.records if r.exc_info]
    assert len(caplog.records) == 1  # the first; the rest are counted (rate limit)
    assert "empty Via" in caplog.records[0].getMessage()


def test_a_contact_with_spaces_in_its_parameters_never_becomes_a_target() -> None:
    # In a 200 to our INVITE: the response is dropped (no dialog, no BYE we could not read).
    ua = make_ua(outbound_proxy="10.0.0.2:5062")
    call_id = ua.next_call_id()
    [invite_msg] = sent(ua.dial("sip:800@carrier.example", call_id, 10000, 0.0))
    assert isinstance(invite_msg, Request)
    headers = [("Contact", "<sip:peer@10.0.0.2;transport=udp ;x=1>")]
    ok = make_response(invite_msg, 200, to_tag="t", headers=headers, body=OFFER)
    assert ua.receive(bytes(ok), PEER, 0.1) == []
    assert ua.dropped == 1
    assert ua.calls[call_id].dialog is None
    # In a re-INVITE of a call that is up: 400, the target stays.
    ua = make_ua()
    out = ua.receive(invite(), PEER, 0.0)
    [arrived] = of_type(out, CallArrived)
    tag = sent(out)[-1].to.tag
    ua.answer(arrived.call_id, 10000, 0.0)
    ua.receive(request("ACK", to_tag=tag, branch="z9hG4bKa"), PEER, 0.0)
    spaced = request("INVITE", to_tag=tag, cseq=2, branch="z9hG4bKr", body=OFFER).replace(
        b":5062>", b";x=a b>"
    )
    assert statuses(ua.receive(spaced, PEER, 1.0)) == [400]
    [bye] = sent(ua.hang_up(arrived.call_id, 2.0))
    assert isinstance(bye, Request)
    assert bye.uri == "sip:peer@10.0.0.2:5062"


@pytest.mark.parametrize("method", ["OPTIONS", "INFO", "NOTIFY", "INVITE", "REGISTER"])
def test_require_of_an_unknown_extension_is_420_on_every_request(method: str) -> None:
    ua = make_ua()
    out = ua.receive(request(method, headers=["Require: precondition, 100rel"]), PEER, 0.0)
    [response] = sent(out)
    assert isinstance(response, Response)
    assert (response.status, response.headers.get("Unsupported")) == (420, "precondition, 100rel")


def test_require_on_cancel_and_ack_is_not_checked() -> None:
    ua = make_ua()
    out = ua.receive(invite(), PEER, 0.0)
    assert statuses(out) == [100, 180]
    cancel = request("CANCEL", headers=["Require: timer"])
    assert statuses(ua.receive(cancel, PEER, 0.1)) == [200, 487]


def test_another_sip_version_is_505() -> None:
    data = request("OPTIONS").replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1)
    assert "'SIP/3.0' is not SIP/2.0" in _refusal(data, 505)


def test_escaped_numbers_reach_the_engine_unescaped() -> None:
    ua = make_ua()
    data = invite(uri="sip:%38%30%30@10.0.0.1", from_='"Li" <sip:%31%33%39@carrier.example>')
    [arrived] = of_type(ua.receive(data, PEER, 0.0), CallArrived)
    assert (arrived.dnis, arrived.ani) == ("800", "139")


def test_a_number_that_unescapes_to_control_characters_is_refused() -> None:
    ua = make_ua()
    out = ua.receive(invite(uri="sip:80%000@10.0.0.1"), PEER, 0.0)
    assert statuses(out)[-1] == 404
    assert "control characters" in (sent(out)[-1].headers.get("Warning") or "")
    assert not of_type(out, CallArrived)
