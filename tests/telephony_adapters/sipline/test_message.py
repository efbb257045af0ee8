"""The SIP message parser and serialiser."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telephony_adapters.sipline.message import (
    Headers,
    Request,
    Response,
    SipSyntaxError,
    canonical_name,
    make_response,
    parse,
    parse_address,
    parse_cseq,
    parse_uri,
    parse_via,
    split_commas,
    stamp_received,
)

INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n"
    b"Max-Forwards: 70\r\n"
    b'To: "Bob" <sip:bob@biloxi.example.com>\r\n'
    b"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example.com>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n"
    b"\r\n"
    b"v=0\n"
)


def test_a_request_parses_with_every_field() -> None:
    msg = parse(INVITE)
    assert isinstance(msg, Request)
    assert (msg.method, msg.uri) == ("INVITE", "sip:bob@biloxi.example.com")
    assert msg.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    assert msg.cseq == (314159, "INVITE")
    assert msg.top_via.branch == "z9hG4bK776asdhds"
    assert msg.from_.tag == "1928301774"
    assert msg.from_.display == "Alice"
    assert msg.to.display == "Bob"
    assert msg.to.tag == ""
    assert msg.body == b"v=0\n"


def test_serialising_round_trips_and_fixes_content_length() -> None:
    msg = parse(INVITE)
    again = parse(bytes(msg))
    assert isinstance(again, Request)
    assert list(again.headers) == list(msg.headers)
    assert again.body == msg.body
    msg.body = b"longer body"
    assert b"Content-Length: 11\r\n" in bytes(msg)


def test_header_names_are_case_insensitive_and_compact_forms_are_expanded() -> None:
    data = (
        b"OPTIONS sip:x@y SIP/2.0\r\n"
        b"v: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b"f: <sip:a@b>;tag=9\r\n"
        b"t: sip:x@y\r\n"
        b"i: abc\r\n"
        b"cseq: 1 OPTIONS\r\n"
        b"m: <sip:a@h>\r\n"
        b"k: timer\r\n"
        b"s: hello\r\n"
        b"c: text/plain\r\n"
        b"l: 0\r\n\r\n"
    )
    msg = parse(data)
    assert msg.headers.get("VIA") == "SIP/2.0/UDP h;branch=z9hG4bK1"
    assert msg.headers.get("call-id") == msg.call_id == "abc"
    for short, full in [
        ("m", "Contact"),
        ("k", "Supported"),
        ("s", "Subject"),
        ("c", "Content-Type"),
    ]:
        assert msg.headers.get(short) == msg.headers.get(full) is not None
    assert msg.to.tag == ""
    assert msg.from_.tag == "9"
    assert canonical_name("www-authenticate") == "WWW-Authenticate"
    assert canonical_name("x-my-header") == "X-My-Header"


def test_folded_and_repeated_headers_and_multiple_vias() -> None:
    data = (
        b"SIP/2.0 200 OK\r\n"
        b"Via: SIP/2.0/UDP a.example;branch=z9hG4bK1,\r\n"
        b"  SIP/2.0/UDP b.example:5070;branch=z9hG4bK2;received=10.0.0.1\r\n"
        b"Via: SIP/2.0/TCP c.example;branch=z9hG4bK3\r\n"
        b"Subject: I know you're there,\r\n"
        b"\tpick up the phone\r\n"
        b"Record-Route: <sip:p1;lr>, <sip:p2;lr>\r\n"
        b"Record-Route: <sip:p3;lr>\r\n"
        b"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 2 INVITE\r\n\r\n"
    )
    msg = parse(data)
    assert isinstance(msg, Response)
    assert msg.status == 200
    assert msg.reason == "OK"
    vias = msg.vias
    assert [v.host for v in vias] == ["a.example", "b.example", "c.example"]
    assert vias[1].port == 5070
    assert vias[1].params["received"] == "10.0.0.1"
    assert vias[2].transport == "TCP"
    assert msg.headers.get("Subject") == "I know you're there, pick up the phone"
    assert msg.headers.values("Record-Route") == ["<sip:p1;lr>", "<sip:p2;lr>", "<sip:p3;lr>"]


def test_a_missing_content_length_means_the_rest_of_the_datagram() -> None:
    data = b"MESSAGE sip:a@b SIP/2.0\r\nCall-ID: 1\r\n\r\nhello\r\nworld"
    assert parse(data).body == b"hello\r\nworld"
    # Extra bytes beyond Content-Length are ignored (RFC 3261 §18.3).
    assert parse(b"MESSAGE sip:a@b SIP/2.0\r\nl: 3\r\n\r\nhello").body == b"hel"


def test_bare_line_feeds_and_leading_empty_lines_are_accepted() -> None:
    msg = parse(b"\r\n\r\nBYE sip:a@b SIP/2.0\nCall-ID: z\nCSeq: 2 BYE\n\n")
    assert isinstance(msg, Request)
    assert msg.method == "BYE"
    assert msg.cseq == (2, "BYE")


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"", "no empty line"),
        (b"INVITE sip:a@b SIP/2.0\r\nVia: x", "no empty line"),
        (b"INVITE sip:a@b\r\n\r\n", "bad request line"),
        (b"INVITE sip:a@b SIP/3.0\r\n\r\n", "is not SIP/2.0"),
        (b"INV{TE sip:a@b SIP/2.0\r\n\r\n", "bad method"),
        (b"INVITE nocolon SIP/2.0\r\n\r\n", "bad Request-URI"),
        (b"SIP/2.0 99 Weird\r\n\r\n", "bad status line"),
        (b"SIP/2.0 200 OK\r\n folded first\r\n\r\n", "continuation line"),
        (b"SIP/2.0 200 OK\r\nno colon here\r\n\r\n", "line 2: not a header field"),
        (b"SIP/2.0 200 OK\r\nContent-Length: 10\r\n\r\nshort", "Content-Length 10 but only 5"),
        (b"SIP/2.0 200 OK\r\nl: x\r\n\r\n", "bad Content-Length"),
        (b"SIP/2.0 200 OK\r\nl: 1\r\nContent-Length: 2\r\n\r\nab", "more than one Content-Length"),
        (b" SIP/2.0 200 OK\r\n\r\n", "bad start line"),
        # str.isdigit() holds for these, yet int() refuses them: still a SipSyntaxError
        ("SIP/2.0 200 OK\r\nl: \u00b3\r\n\r\n".encode("latin-1"), "bad Content-Length"),
        ("SIP/2.0 200 OK\r\nl: \u00b3\r\n\r\n".encode(), "bad Content-Length"),
    ],
)
def test_malformed_messages_raise_a_protocol_error_naming_the_fault(data: bytes, what: str) -> None:
    with pytest.raises(SipSyntaxError, match=what):
        parse(data)


@pytest.mark.parametrize(
    "via",
    ["SIP/2.0/UDP h:\u00b3", "SIP/2.0/UDP h:" + "0" * 5000, "SIP/2.0/UDP h:\u0663"],
)
def test_unicode_or_endless_digits_in_ports_and_cseq_are_refused(via: str) -> None:
    with pytest.raises(SipSyntaxError, match="bad port"):
        parse_via(via)
    with pytest.raises(SipSyntaxError, match="bad CSeq"):
        parse_cseq("\u00b3 INVITE")
    with pytest.raises(SipSyntaxError, match="bad port"):
        parse_uri("sip:a@h:" + via.rpartition(":")[2])


def test_bad_structured_headers_raise_protocol_errors() -> None:
    msg = parse(b"BYE sip:a@b SIP/2.0\r\nCSeq: x BYE\r\nVia: junk\r\nFrom: <sip:a@b\r\n\r\n")
    with pytest.raises(SipSyntaxError, match="bad CSeq"):
        _ = msg.cseq
    with pytest.raises(SipSyntaxError, match="bad Via"):
        _ = msg.top_via
    with pytest.raises(SipSyntaxError, match="unterminated <URI>"):
        _ = msg.from_
    with pytest.raises(SipSyntaxError, match="no To header"):
        _ = msg.to


def test_addresses_name_addr_and_addr_spec() -> None:
    a = parse_address('"Zhang \\"San\\"" <sip:+8613812345678@carrier.cn:5061;user=phone>;tag=a1')
    assert a.display == 'Zhang "San"'
    assert a.uri.user == "+8613812345678"
    assert a.uri.port == 5061
    assert a.uri.params == {"user": "phone"}
    assert a.tag == "a1"
    b = parse_address("sip:bob@example.com;tag=xyz")  # addr-spec: params are the header's
    assert b.tag == "xyz"
    assert b.uri.params == {}
    c = parse_address("张三 <sip:1001@10.0.0.1>")
    assert c.display == "张三"
    assert c.uri.host == "10.0.0.1"
    assert parse_address(str(a)) == a
    assert str(a.with_tag("b2")).endswith(";tag=b2")
    t = parse_uri("tel:+86-10-1234;phone-context=example.com")
    assert t.user == "+86-10-1234"
    assert str(t) == "tel:+86-10-1234;phone-context=example.com"
    v6 = parse_uri("sip:alice@[2001:db8::1]:5070;transport=udp")
    assert v6.host == "[2001:db8::1]"
    assert v6.port == 5070
    assert v6.host_port == ("2001:db8::1", 5070)
    assert parse_uri("sip:example.com").host_port == ("example.com", 5060)


@pytest.mark.parametrize(
    "text", ["", "http://x", "sip:", "sip:a@", "sip:a@b:99999", "sip:a@<b>", "sip:[::1"]
)
def test_bad_uris_are_refused(text: str) -> None:
    with pytest.raises(SipSyntaxError):
        parse_uri(text)


def test_via_and_its_response_address() -> None:
    v = parse_via("SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bKx;rport")
    assert (v.host, v.port, v.branch) == ("192.0.2.1", 5070, "z9hG4bKx")
    assert v.response_address(("198.51.100.7", 40000)) == ("198.51.100.7", 40000)
    plain = parse_via("SIP/2.0/UDP phone.example;branch=z9hG4bKy")
    assert plain.response_address(("198.51.100.7", 40000)) == ("198.51.100.7", 5060)
    assert parse_via(str(v)) == v


def test_stamp_received_fills_rport_and_keeps_the_other_vias() -> None:
    msg = parse(
        b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h:5070;branch=z9hG4bK1;rport, "
        b"SIP/2.0/UDP p;branch=z9hG4bK0\r\nCall-ID: 1\r\n\r\n"
    )
    assert isinstance(msg, Request)
    stamp_received(msg, ("10.1.1.1", 4444))
    vias = msg.vias
    assert vias[0].params["received"] == "10.1.1.1"
    assert vias[0].params["rport"] == "4444"
    assert vias[1].host == "p"
    assert msg.call_id == "1"


def test_make_response_copies_the_dialog_fields_and_tags_the_to() -> None:
    req = parse(INVITE)
    assert isinstance(req, Request)
    resp = make_response(req, 180, to_tag="t1", headers=[("Contact", "<sip:me@h>")])
    again = parse(bytes(resp))
    assert isinstance(again, Response)
    assert again.reason == "Ringing"
    assert again.to.tag == "t1"
    assert again.to.display == "Bob"
    assert again.headers.get_all("Via") == req.headers.get_all("Via")
    assert again.cseq == (314159, "INVITE")
    assert again.headers.get("Contact") == "<sip:me@h>"
    tagged = make_response(parse(bytes(resp)), 200, to_tag="other")  # type: ignore[arg-type]
    assert tagged.to.tag == "t1"  # an existing tag is kept


def test_headers_set_replaces_and_split_commas_respects_quotes() -> None:
    h = Headers([("Route", "<sip:a>"), ("X-Y", "1"), ("route", "<sip:b>")])
    h.set("Route", "<sip:c>")
    assert list(h) == [("Route", "<sip:c>"), ("X-Y", "1")]
    assert split_commas('"a, b" <sip:x>, <sip:y;p=1,2>') == ['"a, b" <sip:x>', "<sip:y;p=1,2>"]


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_crash_the_parser(data: bytes) -> None:
    try:
        msg = parse(data)
    except SipSyntaxError:
        return
    bytes(msg)  # whatever parses also serialises


_FIELD = st.sampled_from(
    [
        b"Via: SIP/2.0/UDP h;branch=z9hG4bKq",
        b"f: <sip:a@b>;tag=1",
        b"To: x",
        b"i: 1",
        b"CSeq: 1 INVITE",
        b"l: 3",
        b"Contact: *",
        b" folded",
        b"X: \xff\xfe",
        b"bad",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_FIELD, max_size=12), st.binary(max_size=20))
def test_near_valid_messages_parse_or_raise_protocol_error(lines: list[bytes], body: bytes) -> None:
    data = b"INVITE sip:a@b SIP/2.0\r\n" + b"\r\n".join(lines) + b"\r\n\r\n" + body
    try:
        msg = parse(data)
    except SipSyntaxError:
        return
    for getter in ("cseq", "top_via", "from_", "to", "vias"):
        with contextlib.suppress(SipSyntaxError):
            getattr(msg, getter)
