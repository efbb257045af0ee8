"""The real link's packet ids (cti/bus/link.py): it numbers its PUBLISHes itself, as
paho's ``_mid_generate`` does and in the same sequence, so paho's own packets
(SUBSCRIBE, UNSUBSCRIBE) never take an id one of ours holds (issue 23)."""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
from types import SimpleNamespace

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from cti.bus import batching_socket
from cti.bus.batching_socket import BatchingSocket
from cti.bus.link import _AiomqttLink
from cti.bus.outbox import Outgoing
from cti.bus.packets import Demux, puback_packet
from tests.harness import until


async def test_publish_ids_follow_pahos_sequence_and_wrap_as_it_does() -> None:
    paho = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    link = _AiomqttLink(SimpleNamespace(_client=paho), "test")
    ours, broker = socket.socketpair()
    ours.setblocking(False)
    sock = BatchingSocket(ours, asyncio.get_running_loop())
    link.opened(sock)
    done: list[str] = []
    sent: list[str] = []

    def publish(topic: str, qos: int = 1) -> None:
        sent.append(topic)  # its ticket: its place in sent
        link.publish_then(Outgoing(topic, b"{}", qos), told, len(sent) - 1)

    def told(ticket: int, error: BaseException | None) -> None:
        assert error is None
        done.append(sent[ticket])

    try:
        paho._last_mid = 65533
        publish("cti/v1/t/a")
        publish("cti/v1/t/b")
        assert paho._mid_generate() == 1  # after ours, 65535 wraps to 1, as paho's own
        publish("cti/v1/t/c")
        publish("cti/v1/t/q0", qos=0)
        assert done == ["cti/v1/t/q0"]  # QoS 0: done once written, no id taken
        assert paho._mid_generate() == 3
        await asyncio.sleep(0)  # the turn ends: written
        # The broker's side reads them (paho's format) and acknowledges each QoS 1 one.
        acks: list[bytes] = []
        read: list[str] = []
        broker_side = Demux(lambda topic, *rest: read.append(topic), lambda m: False, acks.append)
        broker_side.feed(broker.recv(65536))
        assert read == ["cti/v1/t/a", "cti/v1/t/b", "cti/v1/t/c", "cti/v1/t/q0"]
        assert acks == [puback_packet(mid) for mid in (65534, 65535, 2)]
        assert sock.demux is not None
        assert sock.demux.feed(b"".join(acks) + puback_packet(3)) == puback_packet(3)  # paho's
        assert done == ["cti/v1/t/q0", "cti/v1/t/a", "cti/v1/t/b", "cti/v1/t/c"]
    finally:
        sock.close()
        broker.close()


async def test_paho_reads_only_what_the_demux_leaves_it() -> None:
    """aiomqtt's reader calls paho's loop_read at every readable event; a read whose
    packets the demux took all (PUBACKs, PUBLISHes) goes no further (issue 23), and paho
    still reads its own packets and the end of the connection."""
    paho = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    link = _AiomqttLink(SimpleNamespace(_client=paho), "test")
    ours, broker = socket.socketpair()
    ours.setblocking(False)
    sock = BatchingSocket(ours, asyncio.get_running_loop())
    paho._sock = sock
    link.opened(sock)
    reads: list[int] = []
    packet_read = paho._packet_read

    def counted() -> MQTTErrorCode:
        reads.append(sock.pending())
        return packet_read()

    paho._packet_read = counted  # type: ignore[method-assign]
    told: list[tuple[int, BaseException | None]] = []
    try:
        link.publish_then(Outgoing("cti/v1/t/a", b"{}", 1), lambda *fate: told.append(fate), 7)
        await asyncio.sleep(0)  # the turn ends: written
        broker.recv(65536)
        broker.sendall(puback_packet(1))
        select.select([ours], [], [], 5)
        assert paho.loop_read() == 0
        assert (reads, told) == ([], [(7, None)])  # taken: paho did not read
        assert paho.loop_read() == 0  # nothing there
        assert reads == []
        broker.sendall(b"\xd0\x00" + puback_packet(9))  # a PINGRESP (paho's), one not ours
        select.select([ours], [], [], 5)
        paho.loop_read()
        while sock.pending():  # as aiomqtt's reader: one packet a loop_read here
            paho.loop_read()
        assert len(reads) == 2  # paho read what was left to it
        reads.clear()
        broker.close()
        select.select([ours], [], [], 5)
        paho.loop_read()
        assert reads  # paho read the end and closed its socket
        assert paho._sock is None
    finally:
        sock.close()


async def test_a_qos_0_publish_written_past_the_high_water_is_done_once_the_broker_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(batching_socket, "HIGH_WATER", 64 * 1024)
    paho = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    link = _AiomqttLink(SimpleNamespace(_client=paho), "test")
    ours, broker = socket.socketpair()
    ours.setblocking(False)
    broker.setblocking(False)
    sock = BatchingSocket(ours, asyncio.get_running_loop())
    link.opened(sock)
    done: list[int] = []

    def told(ticket: int, error: BaseException | None) -> None:
        assert error is None
        done.append(ticket)

    try:
        assert sock.drained is None  # nothing held: no call at every flush
        ticket = 0
        while not done or done[-1] == ticket:  # QoS 0: done once written, while it reads
            ticket += 1
            link.publish_then(Outgoing("cti/v1/t/q0", bytes(16 * 1024), 0), told, ticket)
            await asyncio.sleep(0)
        held = ticket  # written past the high water: held until the broker reads
        assert held not in done
        assert sock.drained is not None

        def read() -> bool:
            with contextlib.suppress(BlockingIOError):
                while broker.recv(1 << 20):
                    pass
            return held in done

        await until(read, what="the held publish done once the broker reads")
        assert sock.drained is None  # released: unset until one is held again
    finally:
        sock.close()
        broker.close()
