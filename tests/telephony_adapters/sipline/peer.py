"""A fake SIP peer for the user agent's tests: builds datagrams, reads what comes back."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TypeVar

from telephony_adapters.sipline.message import Request, Response, make_response, parse
from telephony_adapters.sipline.useragent import Datagram, Effect, UaSettings, UserAgent

T = TypeVar("T")
LINE = ("10.0.0.1", 5060)
PEER = ("10.0.0.2", 5062)

OFFER = (
    b"v=0\r\no=peer 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
)


def make_ua(**settings: object) -> UserAgent:
    counter = itertools.count(1)
    return UserAgent(
        UaSettings(line="sip", host=LINE[0], port=LINE[1], **settings),  # type: ignore[arg-type]
        token=lambda n: f"{next(counter):0{2 * n}x}",
    )


def request(
    method: str,
    *,
    branch: str = "z9hG4bKp1",
    call_id: str = "call-1",
    from_tag: str = "ft",
    to_tag: str = "",
    cseq: int = 1,
    uri: str = "sip:800@10.0.0.1",
    headers: Sequence[str] = (),
    body: bytes = b"",
    from_: str = '"Li Si" <sip:13912345678@carrier.example>',
) -> bytes:
    to = "<sip:800@10.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/UDP {PEER[0]}:{PEER[1]};branch={branch};rport",
        "Max-Forwards: 70",
        f"From: {from_};tag={from_tag}",
        f"To: {to}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {'INVITE' if method == 'ACK' and cseq == 0 else method}",
        f"Contact: <sip:peer@{PEER[0]}:{PEER[1]}>",
        *headers,
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def invite(**kw: object) -> bytes:
    kw.setdefault("body", OFFER)
    return request("INVITE", **kw)  # type: ignore[arg-type]


def sent(effects: Sequence[Effect]) -> list[Request | Response]:
    """The SIP messages among the effects, parsed."""
    return [parse(e.data) for e in effects if isinstance(e, Datagram)]


def statuses(effects: Sequence[Effect]) -> list[int | str]:
    return [m.status if isinstance(m, Response) else m.method for m in sent(effects)]


def of_type(effects: Sequence[Effect], kind: type[T]) -> list[T]:
    return [e for e in effects if isinstance(e, kind)]


def reply(
    req: Request | Response,
    status: int,
    *,
    tag: str = "pt",
    body: bytes = b"",
    headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    assert isinstance(req, Request)
    extra = [("Contact", f"<sip:peer@{PEER[0]}:{PEER[1]}>"), *headers]
    if body:
        extra.append(("Content-Type", "application/sdp"))
    return bytes(
        make_response(req, status, to_tag=tag if status > 100 else "", headers=extra, body=body)
    )
