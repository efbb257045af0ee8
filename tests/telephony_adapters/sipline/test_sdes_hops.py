"""SDES keys never cross a hop that is not TLS (docs/sip.md, SRTP): a dial to a ``sips:``
or ``;transport=tls`` host name resolves (RFC 3263, fake DNS on 127.0.0.1) and fails over
among TLS targets only, whatever plain targets NAPTR lists first; with none it fails
without sending; and the transport layer refuses any message with keys whose hop is
not TLS (an in-dialog request to a plain Contact, say)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cti.protocol import CallArrived
from telephony_adapters.sipline.line import SipLine
from telephony_adapters.sipline.params import SipLineParams
from telephony_adapters.sipline.resolve import NAPTR, SRV, A
from telephony_adapters.sipline.transaction import Timers
from telephony_adapters.sipline.transports import SipTransports
from tests.harness import until
from tests.telephony_adapters.sipline.certs import TestPki, make_pki, tls_params
from tests.telephony_adapters.sipline.test_resolve import (
    FakeDns,
    FirstTarget,
    dial_ended,
    dns,
    ip,
    naptr,
    srv,
)

__all__ = ["dns"]  # the fixture, used by name

PBX = "pbx.example"


class Decoys:
    """A plain UDP target (answers 503) and a plain TCP one (takes connections): what
    NAPTR lists before the TLS targets; neither may hear anything of a secure dial."""

    def __init__(self) -> None:
        self.udp = FirstTarget(answer_503=True)
        self.tcp_connections = 0
        self.udp_port = self.tcp_port = 0

    async def __aenter__(self) -> Decoys:
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(
            lambda: self.udp, local_addr=("127.0.0.1", 0)
        )
        self.udp_port = int(self._udp.get_extra_info("sockname")[1])
        self._tcp = await asyncio.start_server(self._connected, "127.0.0.1", 0)
        self.tcp_port = int(self._tcp.sockets[0].getsockname()[1])
        return self

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.tcp_connections += 1
        writer.close()

    async def __aexit__(self, *exc: object) -> None:
        self._udp.close()
        self._tcp.close()
        await self._tcp.wait_closed()

    def untouched(self) -> None:
        assert self.udp.heard == [], [r.method for r in self.udp.heard]
        assert self.tcp_connections == 0


@pytest.fixture
def pki(tmp_path: Path) -> TestPki:
    return make_pki(tmp_path / "pki", names=(PBX,))


def closed_port() -> int:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # a port nobody listens on
        return int(closed.getsockname()[1])


def plain_first(decoys: Decoys) -> dict[tuple[str, int], list[bytes]]:
    """NAPTR: UDP, then TCP, then TLS (whose SRV records are added by the test)."""
    return {
        (PBX, NAPTR): [naptr(10, 10, "SIP+D2U", f"_sip._udp.{PBX}"),
                       naptr(15, 10, "SIP+D2T", f"_sip._tcp.{PBX}"),
                       naptr(20, 10, "SIPS+D2T", f"_sips._tcp.{PBX}")],
        (f"_sip._udp.{PBX}", SRV): [srv(1, 0, decoys.udp_port, f"decoy.{PBX}")],
        (f"_sip._tcp.{PBX}", SRV): [srv(1, 0, decoys.tcp_port, f"decoy.{PBX}")],
        (PBX, A): [ip("127.0.0.1")],
        (f"decoy.{PBX}", A): [ip("127.0.0.1")],
        (f"dead.{PBX}", A): [ip("127.0.0.1")],
        (f"live.{PBX}", A): [ip("127.0.0.1")],
    }  # fmt: skip


@pytest.fixture
async def caller(pki: TestPki, dns: tuple[FakeDns, int]) -> AsyncIterator[SipLine]:
    """A line with ``srtp = "require"`` asking the fake DNS; its Timer B is 640 s, so a
    dial that ends within a test's wait ended for its own reason."""
    line = SipLine(SipLineParams(name="sip", bind_host="127.0.0.1", bind_port=0,
                                 dns_servers=(f"127.0.0.1:{dns[1]}",),
                                 **tls_params(pki, srtp="require")),
                   media=False, timers=Timers(t1=10.0))  # fmt: skip
    await line.start()
    try:
        yield line
    finally:
        await line.stop()


@pytest.mark.parametrize("uri", [f"sips:800@{PBX}", f"sip:800@{PBX};transport=tls"])
async def test_a_secure_dial_fails_over_among_tls_targets_only(
    pki: TestPki, dns: tuple[FakeDns, int], caller: SipLine, uri: str
) -> None:
    """NAPTR lists UDP and TCP first; the first TLS target refuses the connection: the
    INVITE, with our keys, goes to the second TLS target and nowhere else."""
    server, _ = dns
    callee = SipLine(SipLineParams(name="sip", bind_host="127.0.0.1", bind_port=0,
                                   **tls_params(pki, srtp="require")), media=False)  # fmt: skip
    await callee.start()
    try:
        async with Decoys() as decoys:
            server.zone.update(plain_first(decoys))
            server.zone[(f"_sips._tcp.{PBX}", SRV)] = [
                srv(1, 0, closed_port(), f"dead.{PBX}"),
                srv(2, 0, callee.address("tls")[1], f"live.{PBX}"),
            ]
            events = aiter(callee.events())
            call_id = await caller.dial(uri)
            arrived = await asyncio.wait_for(anext(events), 15)
            assert isinstance(arrived, CallArrived)
            invite = callee.ua.calls[arrived.call_id].invite
            assert invite.top_via.transport == "TLS"
            assert b"\na=crypto:" in invite.body
            await callee.answer(arrived.call_id)
            assert await dial_ended(caller, call_id) == "answered"
            plan = caller.ua.calls[call_id].plan
            assert plan is not None
            assert plan.srtp_suite
            await caller.hang_up(call_id)
            await callee.wait_for(lambda: not callee.ua.calls)
            decoys.untouched()
    finally:
        await callee.stop()


@pytest.mark.parametrize("srv_too", [False, True], ids=["naptr-only", "srv-plain-only"])
async def test_a_secure_dial_with_no_tls_target_fails_sending_nothing(
    dns: tuple[FakeDns, int], caller: SipLine, srv_too: bool
) -> None:
    """DNS offers only plain targets (NAPTR without SIPS+D2T, no ``_sips._tcp``; or no
    NAPTR at all, only ``_sip._udp`` and ``_sip._tcp``): the dial fails at once (before,
    the request went round resolving again until Timer B), and nothing reaches them."""
    server, _ = dns
    async with Decoys() as decoys:
        zone = plain_first(decoys)
        zone[(PBX, NAPTR)] = zone[(PBX, NAPTR)][:2]
        if srv_too:
            del zone[(PBX, NAPTR)]
        del zone[(PBX, A)]  # (sips: with an A record: TLS at 5061, whoever listens there)
        server.zone.update(zone)
        call_id = await caller.dial(f"sips:800@{PBX}")
        assert await dial_ended(caller, call_id) == "failed"
        decoys.untouched()


async def test_a_message_with_keys_is_never_sent_over_a_hop_that_is_not_tls() -> None:
    """The transport layer's last check: a request with ``a=crypto`` going by UDP (an
    in-dialog request to a plain Contact, a failover gone wrong) is not sent and goes
    back to its transaction; a response or an ACK with keys is dropped; without keys
    the same messages go."""
    heard: list[bytes] = []

    class Peer(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            heard.append(data)

    loop = asyncio.get_running_loop()
    peer, _ = await loop.create_datagram_endpoint(Peer, local_addr=("127.0.0.1", 0))
    dest = ("127.0.0.1", int(peer.get_extra_info("sockname")[1]))
    net = SipTransports(SipLineParams(name="sip", bind_host="127.0.0.1", bind_port=0),
                        lambda data, source: None)  # fmt: skip
    await net.open()
    unsent: list[bytes] = []
    net.unsent = unsent.append
    sdp = b"v=0\r\nm=audio 4000 RTP/AVP 0\r\n"
    keys = sdp + b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + b"A" * 40 + b"\r\n"
    head = f"SIP/2.0/UDP 127.0.0.1:{net.ports['UDP']};branch=z9hG4bK1\r\n"
    try:
        for first in (b"INVITE sip:800@127.0.0.1 SIP/2.0", b"ACK sip:800@127.0.0.1 SIP/2.0",
                      b"SIP/2.0 200 OK"):  # fmt: skip
            for body in (keys, sdp):
                net.send(first + b"\r\nVia: " + head.encode() + b"Content-Length: "
                         + str(len(body)).encode() + b"\r\n\r\n" + body, dest)  # fmt: skip
        await until(lambda: len(heard) == 3 and len(unsent) == 1, what="the plain three")
        assert net.keys_kept == 3
        assert all(b"a=crypto" not in data for data in heard)
        assert [data.split(b"\r\n")[0] for data in unsent] == [b"INVITE sip:800@127.0.0.1 SIP/2.0"]
    finally:
        await net.close()
        peer.close()
