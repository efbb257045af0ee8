"""A talking call on a SIP line that carries the voice, across a crash of the process
(telephony_adapters/sipline/voice_adopt.py): two real lines in turn on one dialog store,
a trunk and an agent's phone as UDP sockets of the test.

After the first line dies (no BYE sent, nothing more saved) the second adopts the call:
the caller and the phone keep their relay ports (no re-INVITE to either), the phone's
leg is the call's answered leg again, and the engine's plan bridges the two (RTP from
the phone reaches the trunk) with no new INVITE to the phone. A caller whose port is
taken gets a re-INVITE with the new one. Legs the engine does not name are hung up, a
standing leg with ``PhoneDisconnected``."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pytest

from cti.protocol import (
    CallArrived,
    PhoneAnswered,
    PhoneDisconnected,
    PhoneHungUp,
    PhoneReachability,
)
from telephony_adapters.base import CALLER, AudioPlan, LineEvent, Ring
from telephony_adapters.media.bridge import HearLeg
from telephony_adapters.sipline.line import SipLine
from telephony_adapters.sipline.message import Request, Response, make_response, parse
from telephony_adapters.sipline.params import SipLineParams
from telephony_adapters.sipline.sdp import parse_sdp
from telephony_adapters.sipline.voice_adopt import RESTART_REASON, call_of_leg
from tests.harness import until

pytestmark = pytest.mark.recovery

TALK = AudioPlan(rooms=(frozenset({CALLER, "1001"}),))
RTP = bytes([0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 7]) + b"\xff" * 160


class Peer(asyncio.DatagramProtocol):
    """A UDP end of the test (a SIP peer or an RTP port): keeps what it gets."""

    def __init__(self) -> None:
        self.got: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.got.append(data)

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def send(self, data: bytes, port: int) -> None:
        assert self.transport is not None
        self.transport.sendto(data, ("127.0.0.1", port))

    def messages(self) -> list[Request | Response]:
        return [parse(d) for d in self.got if d[:1].isalpha()]

    def requests(self, method: str) -> list[Request]:
        return [m for m in self.messages() if isinstance(m, Request) and m.method == method]


async def peer() -> Peer:
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_datagram_endpoint(Peer, local_addr=("127.0.0.1", 0))
    return proto


def sdp(rtp_port: int) -> bytes:
    return (
        f"v=0\r\no=t 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {rtp_port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    ).encode()


def trunk_invite(sip_port: int, rtp_port: int) -> bytes:
    body = sdp(rtp_port)
    return (
        f"INVITE sip:800@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{sip_port};branch=z9hG4bKinv1;rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:13912345678@127.0.0.1>;tag=tr1\r\n"
        f"To: <sip:800@127.0.0.1>\r\nCall-ID: trunk-call-1\r\nCSeq: 1 INVITE\r\n"
        f"Contact: <sip:trunk@127.0.0.1:{sip_port}>\r\nContent-Type: application/sdp\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def ack_of(ok: Response, sip_port: int, branch: str) -> bytes:
    return (
        f"ACK sip:800@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{sip_port};branch={branch};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: {ok.headers.get('From')}\r\nTo: {ok.headers.get('To')}\r\n"
        f"Call-ID: {ok.call_id}\r\nCSeq: {ok.cseq[0]} ACK\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def answer_of(invite: Request, sip_port: int, rtp_port: int) -> bytes:
    contact = ("Contact", f"<sip:phone@127.0.0.1:{sip_port}>")
    headers = [contact, ("Content-Type", "application/sdp")]
    return bytes(make_response(invite, 200, to_tag="ph1", headers=headers, body=sdp(rtp_port)))


def bye_of(invite: Request, sip_port: int) -> bytes:
    """The phone's BYE in the dialog of our ``invite`` it answered (tag ph1)."""
    return (
        f"BYE sip:sip@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{sip_port};branch=z9hG4bKbye1;rport\r\n"
        f"Max-Forwards: 70\r\nFrom: {invite.headers.get('To')};tag=ph1\r\n"
        f"To: {invite.headers.get('From')}\r\nCall-ID: {invite.call_id}\r\n"
        f"CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def oks(end: Peer) -> list[Response]:
    return [m for m in end.messages() if isinstance(m, Response) and m.status == 200]


@dataclass
class Center:
    """The trunk, the phone (SIP and RTP each) and the line's settings."""

    trunk: Peer
    trunk_rtp: Peer
    phone: Peer
    phone_rtp: Peer
    params: SipLineParams
    journal: Path
    events: list[LineEvent] = field(default_factory=list)


@pytest.fixture
async def center(tmp_path: Path) -> AsyncIterator[Center]:
    ends = [await peer() for _ in range(4)]
    params = SipLineParams(
        name="sip", bind_host="127.0.0.1", bind_port=0, rtp_port_min=32000,
        rtp_port_max=32998, keepalive_s=0, recordings_dir=str(tmp_path / "rec"),
        phones={a: f"sip:{a}@127.0.0.1:{ends[2].port}" for a in ("1001", "1002")},
    )  # fmt: skip
    try:
        trunk, trunk_rtp, phone, phone_rtp = ends
        yield Center(trunk, trunk_rtp, phone, phone_rtp, params, tmp_path / "cti.journal.db")
    finally:
        for end in ends:
            assert end.transport is not None
            end.transport.close()


@asynccontextmanager
async def line_of(center: Center) -> AsyncIterator[SipLine]:
    """A line on the center's dialog store, its events kept in ``center.events``."""
    line = SipLine(center.params)
    line.keep_state_beside(center.journal)
    await line.start()

    async def follow() -> None:
        async for event in line.events():
            center.events.append(event)

    follower = asyncio.get_running_loop().create_task(follow())
    try:
        yield line
    finally:
        follower.cancel()
        await line.stop()


async def crash(line: SipLine) -> None:
    """The process dies: no BYE, nothing more saved, its sockets closed."""
    line._ua = None  # stop() then ends no call and writes nothing
    await line.stop()


async def talking(center: Center, line: SipLine) -> str:
    """A trunk call answered and bridged to agent 1001's phone; its call id."""
    sip = line.local_address[1]
    center.trunk.send(trunk_invite(center.trunk.port, center.trunk_rtp.port), sip)
    await until(lambda: any(isinstance(e, CallArrived) for e in center.events))
    call_id = next(e.call_id for e in center.events if isinstance(e, CallArrived))
    await line.answer(call_id)
    await until(lambda: bool(oks(center.trunk)))
    ok = oks(center.trunk)[0]
    center.trunk.send(ack_of(ok, center.trunk.port, "z9hG4bKack1"), sip)
    await line.plan_audio(call_id, AudioPlan(ring=(Ring("1001", "Li 139"),)))
    await until(lambda: bool(center.phone.requests("INVITE")))
    [ring] = center.phone.requests("INVITE")
    center.phone.send(answer_of(ring, center.phone.port, center.phone_rtp.port), sip)
    await until(lambda: any(isinstance(e, PhoneAnswered) for e in center.events))
    await until(lambda: bool(center.phone.requests("ACK")))
    await line.plan_audio(call_id, TALK)
    return call_id


def test_a_leg_id_names_its_call() -> None:
    assert call_of_leg("sip-1x-3~1001", "1001") == ("sip-1x-3", 1)
    assert call_of_leg("sip-1x-3~1001~2", "1001") == ("sip-1x-3", 2)
    assert call_of_leg("sip-1x-3~1001~2", "1002") is None
    assert call_of_leg("standing~1001~ab12", "1001") is None
    assert call_of_leg("1001", "1001") is None


async def test_a_talking_call_keeps_its_ports_and_its_phone_across_a_crash(
    center: Center,
) -> None:
    async with line_of(center) as first:
        call_id = await talking(center, first)
        leg = f"{call_id}~1001"
        ports = {x: first._voice.relay.port_of(x) for x in (call_id, leg)}  # type: ignore[union-attr]
        [ring] = center.phone.requests("INVITE")
        await crash(first)
    center.phone.got.clear()
    center.trunk.got.clear()
    center.events.clear()
    async with line_of(center) as second:
        assert await second.adopt([call_id]) == [call_id]
        voice = second._voice
        assert voice is not None
        assert {x: voice.relay.port_of(x) for x in (call_id, leg)} == ports
        await second.plan_audio(call_id, TALK)  # the engine's first plan after the restart
        assert voice.relay.core.source_of(call_id) == HearLeg(leg)
        assert voice.relay.core.source_of(leg) == HearLeg(call_id)
        # The phone's audio reaches the trunk through the relay, on the ports they knew.
        center.phone_rtp.send(RTP, ports[leg])
        await until(lambda: any(d[12:] == RTP[12:] for d in center.trunk_rtp.got))
        assert center.phone.messages() == []  # no INVITE, no BYE: the same dialog
        assert center.trunk.messages() == []  # no re-INVITE: the same port
        assert not any(isinstance(e, PhoneAnswered) for e in center.events)
        # The phone hangs up on the old dialog: the engine hears it of this call.
        center.phone.send(bye_of(ring, center.phone.port), second.local_address[1])
        await until(lambda: any(isinstance(e, PhoneHungUp) for e in center.events))
        assert [e for e in center.events if isinstance(e, PhoneHungUp)] == [
            PhoneHungUp(call_id=call_id, agent_id="1001", reason="hung up on the phone",
                        line="sip")
        ]  # fmt: skip


async def test_a_caller_whose_port_is_taken_gets_a_re_invite_with_the_new_one(
    center: Center,
) -> None:
    async with line_of(center) as first:
        call_id = await talking(center, first)
        old = first._voice.relay.port_of(call_id)  # type: ignore[union-attr]
        await crash(first)
    center.trunk.got.clear()
    center.phone.got.clear()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.1", old))
        async with line_of(center) as second:
            assert await second.adopt([call_id]) == [call_id]
            voice = second._voice
            assert voice is not None
            new = voice.relay.port_of(call_id)
            assert new != old
            await until(lambda: bool(center.trunk.requests("INVITE")))
            [reinvite] = center.trunk.requests("INVITE")
            assert reinvite.to.tag  # in the dialog
            offered = parse_sdp(reinvite.body)
            assert offered.media[0].port == new
            assert center.phone.requests("INVITE") == []


async def test_legs_of_calls_the_engine_does_not_name_are_hung_up(center: Center) -> None:
    async with line_of(center) as first:
        await talking(center, first)
        await first.keep_phone("1002", True)
        await until(lambda: len(center.phone.requests("INVITE")) == 2)
        standing = center.phone.requests("INVITE")[1]
        center.phone.send(answer_of(standing, center.phone.port, center.phone_rtp.port),
                          first.local_address[1])  # fmt: skip
        await until(lambda: len(center.phone.requests("ACK")) == 2)
        await crash(first)
    center.phone.got.clear()
    center.trunk.got.clear()
    center.events.clear()
    async with line_of(center) as second:
        assert await second.adopt([]) == []
        await until(lambda: len(center.phone.requests("BYE")) == 2)
        await until(lambda: bool(center.trunk.requests("BYE")))
        assert center.phone.requests("INVITE") == []
        told = [e for e in center.events if not isinstance(e, PhoneReachability)]
        assert told == [PhoneDisconnected(agent_id="1002", reason=RESTART_REASON, line="sip")]
