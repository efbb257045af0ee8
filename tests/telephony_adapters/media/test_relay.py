"""The asyncio relay with real UDP sockets on 127.0.0.1: two phones talk through it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import cast

import pytest

from cti.errors import TelephonyError
from telephony_adapters.media import g711
from telephony_adapters.media.bridge import Addr, DtmfHeard
from telephony_adapters.media.relay import MediaRelay, RelayHooks
from telephony_adapters.sipline.rtp import RtpPacket, dtmf_packets, parse_rtp
from tests.audio import tone_frame, tone_power_ratio
from tests.harness import until


class Phone(asyncio.DatagramProtocol):
    """A far end: keeps what it is sent and where from."""

    def __init__(self) -> None:
        self.got: list[tuple[RtpPacket, Addr]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.got.append((parse_rtp(data), (str(addr[0]), int(cast(int, addr[1])))))

    @property
    def addr(self) -> Addr:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return (host, port)

    def send(self, data: bytes, port: int) -> None:
        assert self.transport is not None
        self.transport.sendto(data, ("127.0.0.1", port))

    def packets(self, payload_type: int) -> list[RtpPacket]:
        return [p for p, _ in self.got if p.payload_type == payload_type]


async def phone() -> Phone:
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_datagram_endpoint(Phone, local_addr=("127.0.0.1", 0))
    return proto


def free_range(size: int) -> tuple[int, int]:
    """An even start near a port the kernel just gave out (the relay skips taken ones)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = min(port - port % 2, 65534 - size)
    return start, start + size


async def test_two_phones_talk_through_the_relay() -> None:
    a, b = await phone(), await phone()
    keys: list[DtmfHeard] = []
    low, high = free_range(40)
    async with MediaRelay("127.0.0.1", low, high, hooks=RelayHooks(on_dtmf=keys.append)) as relay:
        port_a = await relay.open_leg("a", payload_type=0, telephone_event=101, remote=a.addr)
        port_b = await relay.open_leg("b", payload_type=8, telephone_event=101, remote=b.addr)
        assert port_a % 2 == 0
        assert port_b % 2 == 0
        assert low <= min(port_a, port_b) <= max(port_a, port_b) <= high
        relay.connect("a", "b")
        sent = [g711.encode(tone_frame(1000, i), 0) for i in range(10)]
        for i, payload in enumerate(sent):
            a.send(bytes(RtpPacket(0, 77 + i, 160 * i, 0xAAAA, payload)), port_a)
        b.send(bytes(RtpPacket(8, 5, 0, 0xBBBB, b"\x5a" * 160)), port_b)
        for data in dtmf_packets("7", payload_type=101, ssrc=0xAAAA, sequence=87, timestamp=1600):
            a.send(data, port_a)
        await until(
            lambda: (
                len(b.packets(101)) == 6
                and any(p.payload == g711.translate(b"\x5a" * 160, 8, 0) for p, _ in a.got)
            )
        )
        # b heard a's tone, transcoded to A-law, from b's own relay port, in one stream.
        tone = [p for p in b.packets(8) if p.payload in {g711.translate(s, 0, 8) for s in sent}]
        assert [p.payload for p in tone] == [g711.translate(s, 0, 8) for s in sent]
        audio = [s for p in tone for s in g711.samples(g711.decode(p.payload, 8))]
        assert tone_power_ratio(audio, 1000) > 0.99
        assert {addr for _, addr in b.got} == {("127.0.0.1", port_b)}
        stream = [p for p, _ in b.got]
        assert len({p.ssrc for p in stream}) == 1
        assert 0xAAAA not in {p.ssrc for p in stream}
        seqs = [p.sequence for p in stream]
        assert [(s - seqs[0]) % 0x10000 for s in seqs] == list(range(len(seqs)))
        assert keys == [DtmfHeard("a", "7", 200)]
        assert {addr for _, addr in a.got} == {("127.0.0.1", port_a)}
        assert relay.core.dropped == {}
    assert len(relay) == 0


async def test_a_prompt_plays_to_its_end_and_the_hook_hears_of_it() -> None:
    a = await phone()
    done = asyncio.Event()
    frames = [tone_frame(700, i) for i in range(5)]

    class Prompt:
        def next_frame(self, now: float) -> bytes | None:
            return frames.pop(0) if frames else None

    hooks = RelayHooks(on_play_finished=lambda event: done.set())
    async with MediaRelay("127.0.0.1", *free_range(20), hooks=hooks) as relay:
        await relay.open_leg("a", payload_type=0, remote=None)
        relay.play("a", Prompt())
        relay.set_remote("a", a.addr)
        async with asyncio.timeout(30):  # a safety net
            await done.wait()
        assert not frames
    prompt = [p for p in a.packets(0) if p.payload != g711.silence(0)]
    audio = [s for p in prompt for s in g711.samples(g711.decode(p.payload, 0))]
    assert len(prompt) == 5
    assert tone_power_ratio(audio, 700) > 0.99


async def test_an_exhausted_port_range_is_a_clear_error() -> None:
    low, high = free_range(2)
    async with MediaRelay("127.0.0.1", low, high) as relay:
        opened = 0
        with contextlib.suppress(TelephonyError):  # another program may hold one
            for i in range(2):
                await relay.open_leg(f"leg{i}", payload_type=0)
                opened += 1
        with pytest.raises(TelephonyError, match=f"no free RTP port on 127.0.0.1 in {low}-{high}"):
            await relay.open_leg("one-too-many", payload_type=0)
        assert len(relay.core) == opened  # the leg that found no port left nothing behind
    with pytest.raises(TelephonyError, match="no even port"):
        MediaRelay("127.0.0.1", 7001, 7001)


async def test_a_leg_that_cannot_be_sent_to_is_counted_and_the_others_go_on() -> None:
    """The relay sends on each leg's own socket: a send that fails (here port 0) is
    counted in send_errors, and the packets of other legs still go."""
    a, c = await phone(), await phone()
    async with MediaRelay("127.0.0.1", *free_range(40)) as relay:
        port_a = await relay.open_leg("a", payload_type=0, remote=a.addr)
        await relay.open_leg("b", payload_type=0, remote=("127.0.0.1", 0))
        await relay.open_leg("c", payload_type=0, remote=c.addr)
        relay.connect("a", "b")
        relay.hear("c", "a")  # c listens in on a
        for i in range(3):
            a.send(bytes(RtpPacket(0, i, 160 * i, 0xAAAA, b"\x11" * 160)), port_a)
        await until(lambda: relay.send_errors >= 3 and len(c.packets(0)) >= 3)
        assert [p.payload for p in c.packets(0)][-3:] == [b"\x11" * 160] * 3


def squat(sock: socket.socket, ports: range, skip: set[int]) -> int:
    """Bind ``sock`` to the first port of ``ports`` not in ``skip`` that is free."""
    for port in ports:
        if port not in skip:
            with contextlib.suppress(OSError):
                sock.bind(("127.0.0.1", port))
                return port
    raise AssertionError(f"no free port in {ports}")


async def test_a_leg_opens_on_its_preferred_port_when_free_and_elsewhere_when_not() -> None:
    low, high = free_range(40)
    async with MediaRelay("127.0.0.1", low, high) as relay:
        first = await relay.open_leg("a", payload_type=0)
        wanted = next(p for p in range(high - high % 2, low, -2) if p != first)
        assert await relay.open_leg("b", payload_type=0, prefer=wanted) == wanted
        # Taken by the relay's own leg, or by another program: a port of the range.
        again = await relay.open_leg("c", payload_type=0, prefer=wanted)
        assert again != wanted
        assert low <= again <= high
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
            held = squat(squatter, range(low, high + 1, 2), {first, wanted, again})
            elsewhere = await relay.open_leg("d", payload_type=0, prefer=held)
        assert elsewhere != held
        assert low <= elsewhere <= high
        # Out of the range: ignored.
        outside = await relay.open_leg("e", payload_type=0, prefer=low - 2)
        assert low <= outside <= high
