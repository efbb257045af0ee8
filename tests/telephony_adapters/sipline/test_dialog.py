"""Dialog state: tags, CSeq, route set and remote target."""

from __future__ import annotations

from telephony_adapters.sipline.dialog import Dialog
from telephony_adapters.sipline.message import Request, Response, make_response, parse

INVITE = (
    b"INVITE sip:line@10.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK1\r\n"
    b"Record-Route: <sip:p1.example;lr>, <sip:p2.example;lr>\r\n"
    b'From: "Caller" <sip:+8613800000000@carrier>;tag=ft\r\n'
    b"To: <sip:line@10.0.0.1>\r\n"
    b"Call-ID: dlg-1\r\nCSeq: 10 INVITE\r\n"
    b"Contact: <sip:caller@10.0.0.9:5062>\r\n\r\n"
)


def invite() -> Request:
    msg = parse(INVITE)
    assert isinstance(msg, Request)
    return msg


def test_uas_dialog_keeps_the_route_set_in_order_and_sends_to_the_first_route() -> None:
    d = Dialog.as_uas(invite(), "lt")
    assert d.id == ("dlg-1", "lt", "ft")
    assert d.route_set == ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]
    assert str(d.remote_target) == "sip:caller@10.0.0.9:5062"
    bye = d.request("BYE", "SIP/2.0/UDP me;branch=z9hG4bK9")
    assert bye.uri == "sip:caller@10.0.0.9:5062"  # loose routing: the target stays
    assert bye.headers.get_all("Route") == ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]
    assert bye.from_.tag == "lt"
    assert bye.to.tag == "ft"
    assert bye.to.display == "Caller"
    assert bye.cseq == (1, "BYE")
    assert d.request("INFO", "v").cseq == (2, "INFO")
    assert d.next_hop() == ("p1.example", 5060)


def test_uac_dialog_reverses_the_route_set_and_ack_keeps_the_invite_cseq() -> None:
    req = invite()
    ok = make_response(req, 200, to_tag="tt", headers=[("Contact", "<sip:callee@10.0.0.7>")])
    ok.headers.add("Record-Route", "<sip:p1.example;lr>, <sip:p2.example;lr>")
    d = Dialog.as_uac(req, ok)
    assert d.id == ("dlg-1", "ft", "tt")
    assert d.route_set == ["<sip:p2.example;lr>", "<sip:p1.example;lr>"]
    ack = d.request("ACK", "v", cseq=10)
    assert ack.cseq == (10, "ACK")
    assert d.local_seq == 10
    assert d.request("BYE", "v").cseq == (11, "BYE")


def test_strict_routing_puts_the_first_route_in_the_request_uri() -> None:
    req = invite()
    req.headers.set("Record-Route", "<sip:strict.example>")
    d = Dialog.as_uas(req, "lt")
    bye = d.request("BYE", "v")
    assert bye.uri == "sip:strict.example"
    assert bye.headers.get_all("Route") == ["<sip:caller@10.0.0.9:5062>"]


def test_out_of_order_requests_are_refused_and_a_refresh_moves_the_target() -> None:
    d = Dialog.as_uas(invite(), "lt")
    reinvite = d.request("INVITE", "v")  # only to borrow the shape
    reinvite.headers.set("CSeq", "11 INVITE")
    reinvite.headers.set("Contact", "<sip:moved@10.0.0.10>")
    assert d.accepts(reinvite) is True
    d.refresh_target(reinvite)
    assert str(d.remote_target) == "sip:moved@10.0.0.10"
    assert d.accepts(reinvite) is False  # the same CSeq again: out of order
    ack = d.request("ACK", "v", cseq=11)
    assert d.accepts(ack) is True
    ok = Response(status=200)
    d.refresh_target(ok)  # no Contact: the target stays
    assert str(d.remote_target) == "sip:moved@10.0.0.10"
