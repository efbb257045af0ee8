"""The broker connection's batching socket (cti/bus/batching_socket.py): the writes of
one loop turn go out in one system call and in order, reads are served from one large
recv, nothing is lost when the peer is slow or the socket closes, and what waits for a
peer that does not read stays bounded (and is logged)."""

from __future__ import annotations

import asyncio
import logging
import select
import socket
from collections.abc import Iterator

import pytest

from cti.bus import batching_socket
from cti.bus.batching_socket import BatchingSocket, batching_sockets
from cti.bus.link import SOCKET_OPTIONS
from cti.bus.packets import Demux
from tests.harness import until


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    peer.setblocking(False)
    yield ours, peer
    ours.close()
    peer.close()


def _read_all(peer: socket.socket) -> bytes:
    data = b""
    while True:
        try:
            chunk = peer.recv(1 << 16)
        except BlockingIOError:
            return data
        if not chunk:
            return data
        data += chunk


async def test_writes_of_one_turn_go_out_in_one_send_in_order(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, peer = pair
    sock = BatchingSocket(ours, asyncio.get_running_loop())
    for packet in (b"1", b"22", b"333"):
        assert sock.send(packet) == len(packet)
    assert sock.sends == 0  # nothing yet: at the end of this turn
    received = b""

    def arrived() -> bool:
        nonlocal received
        received += _read_all(peer)
        return received == b"122333"

    await until(arrived, what="the three packets, in order")
    assert sock.sends == 1
    sock.send(b"4444")
    await until(lambda: sock.sends == 2)
    assert _read_all(peer) == b"4444"


async def test_reads_come_from_one_recv_and_pending_tells_what_is_left(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, peer = pair
    sock = BatchingSocket(ours, asyncio.get_running_loop())
    peer.sendall(b"abcdef")
    await until(lambda: _readable(ours))
    assert sock.recv(1) == b"a"
    assert sock.pending() == 5
    assert sock.recv(2) == b"bc"
    assert sock.recv(10) == b"def"
    assert sock.pending() == 0
    with pytest.raises(BlockingIOError):
        sock.recv(1)
    peer.close()
    await until(lambda: _readable(ours))
    assert sock.recv(1) == b""  # the peer closed: paho sees the connection lost


def _readable(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


async def test_a_peer_that_does_not_read_bounds_what_waits_and_loses_nothing(
    pair: tuple[socket.socket, socket.socket],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ours, peer = pair
    monkeypatch.setattr(batching_socket, "HIGH_WATER", 64 * 1024)
    sock = BatchingSocket(ours, asyncio.get_running_loop())
    chunk, sent, refused = bytes(range(256)) * 64, bytearray(), False
    while not refused:  # one chunk a turn, as paho would, until sending must wait
        try:
            sock.send(chunk)
            sent += chunk
        except BlockingIOError:
            refused = True
        assert sock.waiting <= batching_socket.HIGH_WATER + len(chunk)
        await asyncio.sleep(0)
    assert "does not read" in caplog.text
    received = bytearray()

    def drained() -> bool:
        received.extend(_read_all(peer))
        return len(received) >= len(sent)

    await until(drained, what="everything sent once the peer reads")
    assert received == sent
    assert sock.waiting == 0


async def test_close_sends_what_waits_first(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    sock = BatchingSocket(ours, asyncio.get_running_loop())
    sock.send(b"disconnect")
    sock.close()
    assert _read_all(peer) == b"disconnect"


async def test_a_send_from_another_thread_goes_straight_out(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, peer = pair
    sock = BatchingSocket(ours, asyncio.get_running_loop())
    await asyncio.to_thread(sock.send, b"connect")  # paho's CONNECT, from aiomqtt's thread
    assert sock.sends == 1
    assert _read_all(peer) == b"connect"


async def test_only_plain_sockets_are_wrapped(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, _peer = pair

    class Paho:
        def __init__(self, sock: object) -> None:
            self.sock = sock

        def _create_socket(self) -> object:
            return self.sock

    loop = asyncio.get_running_loop()
    plain, other = Paho(ours), Paho(object())
    batching_sockets(plain, loop)
    batching_sockets(other, loop)
    assert isinstance(plain._create_socket(), BatchingSocket)
    assert not isinstance(other._create_socket(), BatchingSocket)


async def test_the_wrapped_connection_keeps_the_links_socket_options() -> None:
    """aiomqtt sets its socket options only on a ``socket.socket``: without them on the
    wrapped one, Nagle held each small send for the broker's delayed ACK (a call's offer
    ~10-40 ms late at 50 calls/s)."""
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    accepted, _ = server.accept()
    try:

        class Paho:
            def _create_socket(self) -> socket.socket:
                return client

        paho = Paho()
        assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        batching_sockets(paho, asyncio.get_running_loop(), SOCKET_OPTIONS)
        wrapped = paho._create_socket()
        assert isinstance(wrapped, BatchingSocket)
        assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        for sock in (client, accepted, server):
            sock.close()


async def test_a_paho_without_the_hook_is_left_alone(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    batching_sockets(object(), asyncio.get_running_loop())
    assert "not batched" in caplog.text


async def test_with_a_demux_paho_reads_only_what_it_leaves(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, peer = pair
    sock = BatchingSocket(ours, asyncio.get_running_loop())
    acked: list[int] = []

    def ack(mid: int) -> bool:
        acked.append(mid)
        return True

    sock.demux = Demux(lambda *message: None, ack, sock.write)
    peer.sendall(b"\x40\x02\x00\x05")  # a PUBACK: the link's
    await until(lambda: _readable(ours))
    with pytest.raises(BlockingIOError):  # nothing for paho in that read
        sock.recv(1)
    assert acked == [5]
    peer.sendall(b"\xd0\x00\x40\x02\x00\x06")  # PINGRESP (paho's) and a PUBACK
    await until(lambda: _readable(ours))
    assert sock.recv(1) == b"\xd0"
    assert sock.recv(1) == b"\x00"
    assert acked == [5, 6]


async def test_written_packets_past_the_high_water_say_so_and_drain(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, peer = pair
    monkeypatch.setattr(batching_socket, "HIGH_WATER", 64 * 1024)
    sock = BatchingSocket(ours, asyncio.get_running_loop())
    drained: list[int] = []
    sock.drained = lambda: drained.append(sock.waiting)
    chunk, sent = bytes(range(256)) * 64, bytearray()
    while not sock.over_high_water:  # the link holds its QoS 0 acks from here
        sock.write(chunk)
        sent += chunk
        await asyncio.sleep(0)
    received = bytearray()

    def all_read() -> bool:
        received.extend(_read_all(peer))
        return len(received) >= len(sent)

    await until(all_read, what="everything written once the peer reads")
    assert received == sent
    assert drained
    assert drained[-1] < batching_socket.HIGH_WATER


async def test_flush_now_sends_what_this_turn_wrote_so_far_and_the_rest_after(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, peer = pair
    sock = BatchingSocket(ours, asyncio.get_running_loop())
    sock.write(b"offer")
    sock.flush_now()  # the engine's offer: out before the rest of its call's messages
    assert sock.sends == 1
    assert _read_all(peer) == b"offer"
    sock.write(b"state")
    assert sock.sends == 1  # the rest at the end of the turn, as before
    await until(lambda: sock.sends == 2)
    assert _read_all(peer) == b"state"
    sock.flush_now()  # nothing waits: no send
    await asyncio.sleep(0)
    assert sock.sends == 2


async def test_read_for_paho_says_whether_paho_has_anything_to_read(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, peer = pair
    sock = BatchingSocket(ours, asyncio.get_running_loop())
    sock.demux = Demux(lambda *message: None, lambda mid: True, sock.write)
    assert not sock.read_for_paho()  # nothing there
    peer.sendall(b"\x40\x02\x00\x05")  # a PUBACK: the demux's
    await until(lambda: _readable(ours))
    assert not sock.read_for_paho()
    peer.sendall(b"\xd0\x00")  # a PINGRESP: paho's
    await until(lambda: _readable(ours))
    assert sock.read_for_paho()
    assert sock.read_for_paho()  # still there until paho reads it
    assert sock.recv(2) == b"\xd0\x00"
    peer.close()
    await until(lambda: _readable(ours))
    assert sock.read_for_paho()  # the end: paho's recv reads it
    assert sock.recv(1) == b""


async def test_read_for_paho_keeps_a_read_error_for_paho() -> None:
    class Broken:
        def recv(self, size: int) -> bytes:
            raise ConnectionResetError("reset by the broker")

    sock = BatchingSocket(Broken(), asyncio.get_running_loop())  # type: ignore[arg-type]
    assert sock.read_for_paho()
    with pytest.raises(ConnectionResetError):
        sock.recv(1)
