"""The real link's packet ids (cti/bus/link.py): it numbers its PUBLISHes itself, as
paho's ``_mid_generate`` does and in the same sequence, so paho's own packets
(SUBSCRIBE, UNSUBSCRIBE) never take an id one of ours holds (issue 23)."""

from __future__ import annotations

import asyncio
import socket
from types import SimpleNamespace

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cti.bus.batching_socket import BatchingSocket
from cti.bus.link import _AiomqttLink
from cti.bus.outbox import Outgoing
from cti.bus.packets import Demux, puback_packet


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
