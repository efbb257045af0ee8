"""RFC 3263 against a fake DNS server on 127.0.0.1 (started and stopped by the test):
NAPTR -> SRV -> A, SRV without NAPTR, the plain A fallback, and the line failing over
to the next target when a connection to the first is refused, when the first never
answers (Timer B) and when it answers 503."""

from __future__ import annotations

import asyncio
import random
import socket
import struct
from collections.abc import AsyncIterator

import pytest

from cti.protocol import CallArrived
from telephony_adapters.sipline.line import SipLine
from telephony_adapters.sipline.message import Request, make_response, parse
from telephony_adapters.sipline.params import SipLineParams
from telephony_adapters.sipline.resolve import NAPTR, SRV, A, Resolver, Target, srv_order
from telephony_adapters.sipline.transaction import Timers
from telephony_adapters.sipline.uri import parse_uri
from tests.harness import LIMIT_S

Zone = dict[tuple[str, int], list[bytes]]


def _name(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p) + b"\0"


def naptr(order: int, pref: int, service: str, replacement: str) -> bytes:
    texts = b"".join(bytes([len(t)]) + t for t in (b"s", service.encode(), b""))
    return struct.pack("!HH", order, pref) + texts + _name(replacement)


def srv(prio: int, weight: int, port: int, target: str) -> bytes:
    return struct.pack("!HHH", prio, weight, port) + _name(target)


class FakeDns(asyncio.DatagramProtocol):
    """Answers from ``zone`` (name, type) -> rdata list; no compression, NXDOMAIN-free."""

    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self.asked: list[tuple[str, int]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        ident = data[:2]
        pos, labels = 12, []
        while data[pos]:
            labels.append(data[pos + 1 : pos + 1 + data[pos]].decode())
            pos += 1 + data[pos]
        question = data[12 : pos + 5]
        rtype = struct.unpack("!H", data[pos + 1 : pos + 3])[0]
        name = ".".join(labels)
        self.asked.append((name, rtype))
        answers = self.zone.get((name, rtype), [])
        out = ident + struct.pack("!HHHHH", 0x8180, 1, len(answers), 0, 0) + question
        for rdata in answers:
            out += b"\xc0\x0c" + struct.pack("!HHIH", rtype, 1, 60, len(rdata)) + rdata
        assert self.transport is not None
        self.transport.sendto(out, addr)


@pytest.fixture
async def dns() -> AsyncIterator[tuple[FakeDns, int]]:
    server = FakeDns({})
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: server, local_addr=("127.0.0.1", 0)
    )
    yield server, int(transport.get_extra_info("sockname")[1])
    transport.close()


def ip(text: str) -> bytes:
    return socket.inet_aton(text)


async def test_naptr_then_srv_then_a_in_order(dns: tuple[FakeDns, int]) -> None:
    server, port = dns
    server.zone.update({
        ("example.com", NAPTR): [naptr(20, 10, "SIP+D2U", "_sip._udp.example.com"),
                                 naptr(10, 10, "SIP+D2T", "_sip._tcp.example.com")],
        ("_sip._tcp.example.com", SRV): [srv(10, 0, 5070, "b.example.com"),
                                         srv(5, 0, 5080, "a.example.com")],
        ("_sip._udp.example.com", SRV): [srv(1, 0, 5090, "a.example.com")],
        ("a.example.com", A): [ip("192.0.2.1")],
        ("b.example.com", A): [ip("192.0.2.2")],
    })  # fmt: skip
    resolver = Resolver([("127.0.0.1", port)])
    targets = await resolver.targets(parse_uri("sip:alice@example.com"), ("UDP", "TCP", "TLS"))
    assert targets == [
        Target("TCP", "192.0.2.1", 5080, "example.com"),
        Target("TCP", "192.0.2.2", 5070, "example.com"),
        Target("UDP", "192.0.2.1", 5090, "example.com"),
    ]


async def test_srv_without_naptr_and_the_a_fallback(dns: tuple[FakeDns, int]) -> None:
    server, port = dns
    server.zone.update({
        ("_sips._tcp.secure.example", SRV): [srv(1, 0, 5061, "tls.secure.example")],
        ("tls.secure.example", A): [ip("192.0.2.7")],
        ("plain.example", A): [ip("192.0.2.9")],
    })  # fmt: skip
    resolver = Resolver([("127.0.0.1", port)])
    secure = await resolver.targets(parse_uri("sips:bob@secure.example"), ("UDP", "TCP", "TLS"))
    assert secure == [Target("TLS", "192.0.2.7", 5061, "secure.example")]
    plain = await resolver.targets(parse_uri("sip:bob@plain.example"), ("UDP", "TCP"))
    assert plain == [Target("UDP", "192.0.2.9", 5060, "plain.example")]
    named = await resolver.targets(parse_uri("sip:bob@plain.example:5099;transport=tcp"), ("UDP",))
    assert named == [Target("TCP", "192.0.2.9", 5099, "plain.example")]
    assert ("plain.example", NAPTR) in server.asked  # asked before falling back


def test_srv_order_by_priority_then_weight() -> None:
    records = [(2, 0, 1, "c"), (1, 0, 2, "b"), (1, 100, 3, "a")]
    firsts = {srv_order(records, random.Random(seed))[0][3] for seed in range(20)}
    assert firsts == {"a"} | ({"b"} & firsts)  # weight 100 against 0: almost always a
    assert all(srv_order(records, random.Random(s))[-1][3] == "c" for s in range(20))


async def answered_dial(caller: SipLine, callee: SipLine) -> str:
    """``caller`` dials sip:800@pbx.example, ``callee`` answers: the call's id, answered."""
    events = aiter(callee.events())
    call_id = await caller.dial("sip:800@pbx.example")
    arrived = await asyncio.wait_for(anext(events), 15)
    assert isinstance(arrived, CallArrived)
    await callee.answer(arrived.call_id)
    await caller.wait_for(lambda: call_id in caller.outcomes and caller.outcomes[call_id].final)
    assert caller.outcomes[call_id].outcome == "answered"
    return call_id


async def test_the_line_fails_over_to_the_next_target(dns: tuple[FakeDns, int]) -> None:
    """The first SRV target refuses TCP; the INVITE goes to the second, which answers."""
    server, port = dns
    callee = SipLine(SipLineParams(name="sip", bind_host="127.0.0.1", bind_port=0,
                                   transports=("udp", "tcp")), media=False)  # fmt: skip
    await callee.start()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # a port nobody listens on
        dead = closed.getsockname()[1]
    server.zone.update({
        ("pbx.example", NAPTR): [naptr(10, 10, "SIP+D2T", "_sip._tcp.pbx.example")],
        ("_sip._tcp.pbx.example", SRV): [srv(1, 0, dead, "dead.pbx.example"),
                                         srv(2, 0, callee.address("tcp")[1], "live.pbx.example")],
        ("dead.pbx.example", A): [ip("127.0.0.1")],
        ("live.pbx.example", A): [ip("127.0.0.1")],
    })  # fmt: skip
    caller = SipLine(SipLineParams(name="sip", bind_host="127.0.0.1", bind_port=0,
                                   dns_servers=(f"127.0.0.1:{port}",)), media=False)  # fmt: skip
    await caller.start()
    try:
        call_id = await answered_dial(caller, callee)
        await caller.hang_up(call_id)
        await callee.wait_for(lambda: not callee.ua.calls)
    finally:
        await caller.stop()
        await callee.stop()


class FirstTarget(asyncio.DatagramProtocol):
    """The first SRV target: silent (never answers), or answering every request 503
    (and taking the ACK of its 503 quietly)."""

    def __init__(self, answer_503: bool) -> None:
        self.answer_503 = answer_503
        self.heard: list[Request] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        request = parse(data)
        assert isinstance(request, Request)
        self.heard.append(request)
        if self.answer_503 and request.method != "ACK" and self.transport is not None:
            self.transport.sendto(bytes(make_response(request, 503, to_tag="down")), addr)


@pytest.mark.parametrize("first", ["silent", "503"])
async def test_a_dial_fails_over_when_the_first_target_times_out_or_answers_503(
    dns: tuple[FakeDns, int], first: str
) -> None:
    """RFC 3263 §4.3 over UDP: the first SRV target never answers (Timer B, shortened
    by T1) or answers 503; the INVITE goes again on a new branch to the second, whose
    callee answers; either way the first is tried once."""
    server, port = dns
    callee = SipLine(SipLineParams(name="sip", bind_host="127.0.0.1", bind_port=0), media=False)
    await callee.start()
    target = FirstTarget(answer_503=first == "503")
    dead, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: target, local_addr=("127.0.0.1", 0)
    )
    server.zone.update({
        ("_sip._udp.pbx.example", SRV): [srv(1, 0, dead.get_extra_info("sockname")[1],
                                             "dead.pbx.example"),
                                         srv(2, 0, callee.local_address[1], "live.pbx.example")],
        ("dead.pbx.example", A): [ip("127.0.0.1")],
        ("live.pbx.example", A): [ip("127.0.0.1")],
    })  # fmt: skip
    caller = SipLine(SipLineParams(name="sip", bind_host="127.0.0.1", bind_port=0,
                                   dns_servers=(f"127.0.0.1:{port}",)), media=False,
                     timers=Timers(t1=0.02), dial_timeout_s=30.0)  # fmt: skip
    await caller.start()
    try:
        call_id = await answered_dial(caller, callee)
        invites = [r for r in target.heard if r.method == "INVITE"]
        assert invites, "the first target heard nothing"
        assert len({r.top_via.branch for r in invites}) == 1  # tried once (retransmissions)
        call = caller.ua.calls[call_id]
        assert call.invite.top_via.branch != invites[0].top_via.branch
        assert call.invite.call_id == invites[0].call_id
        await caller.hang_up(call_id)
        await callee.wait_for(lambda: not callee.ua.calls)
    finally:
        await caller.stop()
        await callee.stop()
        dead.close()


async def dial_ended(line: SipLine, call_id: str) -> str:
    """How the dial ended (within the tests' limit, far below a long Timer B)."""

    def ended() -> bool:
        progress = line.outcomes.get(call_id)
        return progress is not None and progress.final

    await asyncio.wait_for(line.wait_for(ended), LIMIT_S)
    return line.outcomes[call_id].outcome


async def test_a_dial_to_a_name_without_any_record_fails_at_once(dns: tuple[FakeDns, int]) -> None:
    """No NAPTR, SRV or A: the INVITE goes back to its transaction, so the dial fails
    now, not at Timer B (640 s here)."""
    server, port = dns
    caller = SipLine(SipLineParams(name="sip", bind_host="127.0.0.1", bind_port=0,
                                   dns_servers=(f"127.0.0.1:{port}",)), media=False,
                     timers=Timers(t1=10.0))  # fmt: skip
    await caller.start()
    try:
        call_id = await caller.dial("sip:800@nowhere.example")
        assert await dial_ended(caller, call_id) == "failed"
        assert ("nowhere.example", A) in server.asked
    finally:
        await caller.stop()
