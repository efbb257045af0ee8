"""The stream framer (RFC 3261 §18.3, RFC 5626 §4.4.1) and the transport stamp."""

from __future__ import annotations

import asyncio

import pytest

from telephony_adapters.sipline.line import SipLine
from telephony_adapters.sipline.message import Request, parse
from telephony_adapters.sipline.params import SipLineParams
from telephony_adapters.sipline.routing import stamp, wire_sent_by, wire_transport
from telephony_adapters.sipline.stream import FramingError, Ping, StreamFramer

INVITE = (
    b"INVITE sip:800@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1:5070;branch=z9hG4bK1\r\n"
    b"Content-Length: 4\r\n\r\nv=0\n"
)


def test_messages_are_cut_by_content_length_whatever_the_chunks() -> None:
    stream = b"\r\n" + INVITE + b"\r\n\r\n" + INVITE.replace(b"4\r\n", b"4 \r\n")
    for size in (1, 3, 7, len(stream)):
        framer = StreamFramer()
        frames = [f for i in range(0, len(stream), size) for f in framer.feed(stream[i : i + size])]
        assert frames == [INVITE, Ping(), INVITE.replace(b"4\r\n", b"4 \r\n")]
        assert framer.buffered == 0


def test_a_missing_content_length_means_no_body_and_a_pong_is_skipped() -> None:
    framer = StreamFramer()
    head = b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n"
    assert framer.feed(head + b"\r\n") == [head]
    assert framer.feed(b"SIP/2.0 200 OK\r\nl: 0\r\n\r\n") == [b"SIP/2.0 200 OK\r\nl: 0\r\n\r\n"]


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n", "not a SIP message"),
        (b"INVITE sip:x SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\n", "two different"),
        (b"INVITE sip:x SIP/2.0\r\nContent-Length: -1\r\n\r\n", "bad Content-Length"),
        (b"INVITE sip:x SIP/2.0\r\nContent-Length: 70000\r\n\r\n", "message of 70"),
        (b"INVITE sip:x SIP/2.0\r\nX: " + b"a" * 20_000, "header block over"),
    ],
)
def test_what_cannot_be_framed_is_refused_with_the_reason(data: bytes, why: str) -> None:
    with pytest.raises(FramingError, match=why):
        StreamFramer().feed(data)


def test_stamp_makes_our_via_and_contact_say_the_transport() -> None:
    data = (
        b"INVITE sips:bob@example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKa\r\n"
        b"From: <sip:cti@192.0.2.1>;tag=1\r\nTo: <sips:bob@example.com>\r\nCall-ID: c\r\n"
        b"CSeq: 1 INVITE\r\nContact: <sip:cti@192.0.2.1:5060>\r\nContent-Length: 0\r\n\r\n"
    )
    request = parse(data)
    assert isinstance(request, Request)
    stamp(request, "TLS", "192.0.2.1", {"UDP": 5060, "TCP": 5060, "TLS": 5061})
    out = bytes(request)
    assert wire_transport(out) == "TLS"
    assert wire_sent_by(out) == ("192.0.2.1", 5061)
    assert request.headers.get("Contact") == "<sips:cti@192.0.2.1:5061>"
    request = parse(data.replace(b"sips:bob", b"sip:bob"))
    assert isinstance(request, Request)
    stamp(request, "TCP", "192.0.2.1", {"UDP": 5060, "TCP": 5062})
    assert request.headers.get("Contact") == "<sip:cti@192.0.2.1:5062;transport=tcp>"
    assert request.top_via.transport == "TCP"


async def test_the_line_answers_a_ping_and_closes_a_stream_of_garbage() -> None:
    line = SipLine(SipLineParams(name="sip", bind_host="127.0.0.1", bind_port=0,
                                 transports=("tcp",)), media=False)  # fmt: skip
    await line.start()
    try:
        reader, writer = await asyncio.open_connection(*line.address("tcp"))
        writer.write(b"\r\n\r\n")
        assert await asyncio.wait_for(reader.readexactly(2), 10) == b"\r\n"
        writer.write(b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\n")
        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed, not answered
        writer.close()
        assert line._net is not None
        assert not line._net.streams.conns  # forgotten as it was closed, before our EOF
    finally:
        await line.stop()
