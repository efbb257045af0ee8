"""Everything the stack sends, it reads back: over generated dialogs (display names in
Chinese and with quotes and backslashes, URIs with parameters, tags, branches, bodies),
every request and response the user agent, its dialogs and its transactions emit parses
with our own parser, passes our own checks, and carries the fields it was built from.
So the line never sends what it would refuse."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from telephony_adapters.sipline.checks import check_request, check_response
from telephony_adapters.sipline.effects import Datagram, Effect
from telephony_adapters.sipline.message import (
    Request,
    Response,
    make_response,
    parse,
    parse_address,
    parse_uri,
    quote,
)
from tests.telephony_adapters.sipline.peer import OFFER, PEER, make_ua

TOKEN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
PARAMCHAR = "abcdefghijklmnopqrstuvwxyz0123456789-_.!~*'()[]/:&+$"
tokens = st.text(TOKEN, min_size=1, max_size=12)
names = st.text(
    st.one_of(
        st.sampled_from("\"\\' ,;<>@:李四王五张三電話"),
        st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
    ),
    max_size=20,
)
hosts = st.from_regex(r"[a-z][a-z0-9]{0,8}(\.[a-z][a-z0-9]{0,8}){0,2}", fullmatch=True)
params = st.dictionaries(
    st.text(PARAMCHAR, min_size=1, max_size=6).map(str.lower),
    st.one_of(st.none(), st.text(PARAMCHAR, min_size=1, max_size=8)),
    max_size=3,
)


@st.composite
def uris(draw: st.DrawFn) -> str:
    user = draw(st.text(PARAMCHAR[:45] + "&=+$,;?/", min_size=1, max_size=10))
    port = draw(st.one_of(st.none(), st.integers(1, 65535)))
    text = f"sip:{user}@{draw(hosts)}" + (f":{port}" if port else "")
    return text + "".join(f";{k}" if v is None else f";{k}={v}" for k, v in draw(params).items())


def _emitted(out: list[Effect]) -> list[Request | Response]:
    """Each datagram the agent sends, parsed and checked by our own code, and stable:
    written again, it reads the same."""
    messages: list[Request | Response] = []
    for effect in out:
        if not isinstance(effect, Datagram):
            continue
        msg = parse(effect.data)
        if isinstance(msg, Request):
            check_request(msg)
        else:
            check_response(msg)
        assert bytes(parse(bytes(msg))) == bytes(msg)
        messages.append(msg)
    return messages


def _invite(display: str, tag: str, branch: str, contact: str, route: str, uri: str) -> bytes:
    lines = [
        f"INVITE {uri} SIP/2.0",
        f"Via: SIP/2.0/UDP {PEER[0]}:{PEER[1]};branch=z9hG4bK{branch};rport",
        "Max-Forwards: 70",
        f"From: {quote(display)} <sip:caller@carrier.example>;tag={tag}",
        "To: <sip:800@10.0.0.1>",
        "Call-ID: rt-1@carrier.example",
        "CSeq: 7 INVITE",
        f"Contact: <{contact}>",
        f"Record-Route: <{route};lr>",
        "Content-Type: application/sdp",
        f"Content-Length: {len(OFFER)}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + OFFER


@settings(max_examples=40, deadline=None)
@given(names, tokens, tokens, uris(), uris(), uris())
@example('"张三" \\ \r\n', "t", "b", "sip:a@h;x=1", "sip:p@h", "sip:800@h;user=phone")
def test_an_inbound_dialog_emits_only_what_we_read(
    display: str, tag: str, branch: str, contact: str, route: str, uri: str
) -> None:
    ua = make_ua()
    out = ua.receive(_invite(display, tag, branch, contact, route, uri), PEER, 0.0)
    ringing = _emitted(out)
    assert [m.status for m in ringing if isinstance(m, Response)] == [100, 180]
    (call_id,) = ua.calls
    emitted = ringing + _emitted(ua.answer(call_id, 10000, 0.0))
    ok = emitted[-1]
    assert isinstance(ok, Response)
    assert ok.status == 200
    for response in emitted:
        assert isinstance(response, Response)
        assert response.from_.display == display.replace("\r", " ").replace("\n", " ")
        assert (response.from_.tag, response.top_via.branch) == (tag, f"z9hG4bK{branch}")
        assert response.call_id == "rt-1@carrier.example"
    ack = (
        _invite(display, tag, "ack" + branch, contact, route, uri)
        .replace(b"INVITE sip", b"ACK sip")
        .replace(b"7 INVITE", b"7 ACK")
        .replace(b"To: <sip:800@10.0.0.1>", f"To: <sip:800@10.0.0.1>;tag={ok.to.tag}".encode())
    )
    ua.receive(ack, PEER, 0.1)
    [bye] = _emitted(ua.hang_up(call_id, 0.2))
    assert isinstance(bye, Request)
    assert parse_uri(bye.uri) == parse_uri(contact)  # the peer's Contact, as it came
    assert [parse_address(r).uri for r in bye.headers.values("Route")] == [parse_uri(f"{route};lr")]
    assert (bye.to.tag, bye.from_.tag) == (tag, ok.to.tag)


@settings(max_examples=40, deadline=None)
@given(names, tokens, uris(), uris(), st.binary(max_size=40))
@example('Li "Si" \\ 李四\r\n', "t", "sip:800@h;user=phone", "sip:a@h;x=1", b"")
def test_an_outbound_dialog_emits_only_what_we_read(
    display: str, tag: str, target: str, contact: str, info: bytes
) -> None:
    ua = make_ua(display_name=display, outbound_proxy="10.0.0.2:5062")
    call_id = ua.next_call_id()
    [invite] = _emitted(ua.dial(target, call_id, 10000, 0.0))
    assert isinstance(invite, Request)
    assert parse_uri(invite.uri) == parse_uri(target)
    assert invite.from_.display == display.replace("\r", " ").replace("\n", " ")
    answer = OFFER.replace(b"peer 1 1", b"peer 2 2")
    headers = [("Contact", f"<{contact}>"), ("Content-Type", "application/sdp")]
    ok = make_response(invite, 200, to_tag=tag, headers=headers, body=answer)
    [ack] = _emitted(ua.receive(bytes(ok), PEER, 0.1))
    assert isinstance(ack, Request)
    assert (ack.method, parse_uri(ack.uri)) == ("ACK", parse_uri(contact))
    assert ack.to.tag == tag
    [bye] = _emitted(ua.hang_up(call_id, 0.2))
    assert isinstance(bye, Request)
    assert (bye.method, parse_uri(bye.uri), bye.to.tag) == ("BYE", parse_uri(contact), tag)
    assert info is not None
