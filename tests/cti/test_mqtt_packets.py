"""The broker connection's hot packets (cti/bus/packets.py): PUBLISH written as MQTT v5
says and as paho reads it, and the demux that takes PUBLISH and PUBACK from what the
socket reads, wherever the reads cut the stream, and leaves every other packet whole
and in order to paho, as well as any PUBLISH it does not take (issue 23)."""

from __future__ import annotations

import pytest
from paho.mqtt._packet import decode_publish
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cti.bus.packets import Demux, puback_packet, publish_packet, topic_head

CONNACK = b"\x20\x03\x00\x00\x00"
SUBACK = b"\x90\x04\x00\x01\x00\x01"
PINGRESP = b"\xd0\x00"


def _publish_with(props: bytes, *, topic: bytes = b"cti/v1/t", mid: int = 9, qos: int = 1) -> bytes:
    ident = mid.to_bytes(2, "big") if qos else b""
    body = len(topic).to_bytes(2, "big") + topic + ident + bytes((len(props),)) + props + b"{}"
    return bytes((0x30 | qos << 1, len(body))) + body


class Taken:
    def __init__(self, ours: set[int] = frozenset({7})) -> None:  # type: ignore[assignment]
        self.ours = set(ours)
        self.received: list[tuple[str, bytes, tuple[int, ...]]] = []
        self.acked: list[int] = []
        self.replies: list[bytes] = []
        self.heard = 0
        self.demux = Demux(self._received, self._acked, self.replies.append, self._heard)

    def _received(self, topic: str, payload: bytes, idents: tuple[int, ...]) -> None:
        self.received.append((topic, payload, idents))

    def _acked(self, mid: int) -> bool:
        if mid in self.ours:
            self.acked.append(mid)
            return True
        return False

    def _heard(self) -> None:
        self.heard += 1


def test_a_publish_is_the_mqtt_v5_packet_paho_reads() -> None:
    packet = publish_packet(topic_head("cti/v1/é"), b"hi", 1, True, 10)
    topic = "cti/v1/é".encode()
    head = len(topic).to_bytes(2, "big") + topic
    assert packet == bytes((0x33, len(head) + 2 + 1 + 2)) + head + b"\x00\x0a\x00hi"
    assert publish_packet(topic_head("a/b"), b"x", 0, False, 0) == b"\x30\x07\x00\x03a/b\x00x"
    # a payload past 127 bytes takes a two-byte remaining length
    big = publish_packet(topic_head("a"), b"y" * 300, 1, False, 1)
    assert big[1:3] == bytes(((3 + 2 + 1 + 300) & 0x7F | 0x80, (3 + 2 + 1 + 300) >> 7))
    # paho's own reader takes ours (topic, payload, QoS, retain, id, no properties)
    read = decode_publish(packet[0], packet[2:], MQTTProtocolVersion.MQTTv5)
    assert (read.topic, read.payload, read.qos, read.retain, read.mid) == (
        topic,
        b"hi",
        1,
        True,
        10,
    )
    assert puback_packet(513) == b"\x40\x02\x02\x01"


def test_the_demux_reads_what_paho_reads() -> None:
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    properties.SubscriptionIdentifier = 300
    properties.UserProperty = ("k", "v")
    properties.ContentType = "application/json"
    properties.MessageExpiryInterval = 60
    packed = properties.pack()  # type: ignore[no-untyped-call]  # its length first (1 byte)
    packet = _publish_with(packed[1:])
    assert decode_publish(packet[0], packet[2:], MQTTProtocolVersion.MQTTv5).payload == b"{}"
    taken = Taken()
    assert taken.demux.feed(packet) == b""
    assert taken.received == [("cti/v1/t", b"{}", (300,))]
    assert taken.replies == [puback_packet(9)]


@pytest.mark.parametrize("cut", range(1, 60))
def test_the_stream_is_split_wherever_reads_cut_it(cut: int) -> None:
    props = b"\x0b\x05\x0b\x81\x01"  # two subscription identifiers: 5 and 129
    stream = CONNACK + _publish_with(props) + b"\x40\x02\x00\x07" + SUBACK + PINGRESP
    stream += _publish_with(b"", mid=0, qos=0)
    taken = Taken()
    cut = min(cut, len(stream) - 1)
    for_paho = taken.demux.feed(stream[:cut]) + taken.demux.feed(stream[cut:])
    assert for_paho == CONNACK + SUBACK + PINGRESP  # whole, in order
    assert taken.received == [("cti/v1/t", b"{}", (5, 129)), ("cti/v1/t", b"{}", ())]
    assert taken.acked == [7]
    assert taken.replies == [puback_packet(9)]  # QoS 1 acknowledged, QoS 0 not
    assert taken.demux.taken == 3
    assert taken.heard >= 1


def test_a_large_publish_over_many_reads_arrives_whole() -> None:
    payload = b"x" * 200_000
    body = b"\x00\x08cti/v1/t\x00\x01\x00" + payload
    size = len(body)
    length = bytes((size & 0x7F | 0x80, (size >> 7) & 0x7F | 0x80, size >> 14))
    stream = b"\x32" + length + body
    taken = Taken()
    for at in range(0, len(stream), 65536):
        assert taken.demux.feed(stream[at : at + 65536]) == b""
    assert taken.received == [("cti/v1/t", payload, ())]


def test_what_the_demux_does_not_take_goes_to_paho_whole() -> None:
    unknown_property = _publish_with(b"\x99\x00")
    topic_alias = _publish_with(b"\x23\x00\x01")
    not_utf8 = _publish_with(b"", topic=b"cti/\xff")
    qos2 = b"\x34" + _publish_with(b"")[1:]
    not_ours = b"\x40\x02\x00\x08"  # a PUBACK for an id we did not send
    taken = Taken()
    for packet in (unknown_property, topic_alias, not_utf8, qos2, not_ours):
        assert taken.demux.feed(packet) == packet
    assert taken.received == []
    assert taken.replies == []
    assert taken.heard == 0


def test_a_remaining_length_paho_refuses_stops_the_split() -> None:
    bad = b"\x30\xff\xff\xff\xff\x01"
    taken = Taken()
    assert taken.demux.feed(CONNACK + bad) == CONNACK + bad
    later = b"\x40\x02\x00\x07"
    assert taken.demux.feed(later) == later  # paho disconnects; the rest is paho's
    assert taken.acked == []


@pytest.mark.parametrize("size", [0, 1, 119, 120, 121, 122, 16369, 16370, 16371, 16372, 70_000])
def test_remaining_lengths_at_their_boundaries_read_back(size: int) -> None:
    # topic "cti/v1/t": 10 bytes, id 2, properties 1: 122 and 16371 are where the
    # remaining length takes its second and third byte
    packet = publish_packet(topic_head("cti/v1/t"), b"p" * size, 1, False, 5)
    taken = Taken()
    assert taken.demux.feed(packet) == b""
    assert taken.received == [("cti/v1/t", b"p" * size, ())]
    length_bytes = 1 + (size + 13 >= 0x80) + (size + 13 >= 0x4000)
    body = packet[1 + length_bytes :]
    read = decode_publish(packet[0], body, MQTTProtocolVersion.MQTTv5)
    assert (read.payload, read.mid) == (b"p" * size, 5)


@pytest.mark.parametrize("cut", range(1, 35))
def test_pubacks_with_and_without_a_reason_are_taken_alike_wherever_cut(cut: int) -> None:
    """The demux's quick path for a bare PUBACK (4 bytes) takes what its parser took: ours
    acknowledged in order, one not ours left whole to paho, one with a reason code (and
    properties) through the parser, wherever the read is cut."""
    stream = (
        b"\x40\x02\x00\x07"  # ours
        + b"\x40\x03\x00\x0b\x10"  # ours, reason 0x10 (no matching subscribers)
        + b"\x40\x02\x00\x08"  # not ours: paho's
        + b"\x40\x04\x01\x00\x00\x00"  # ours (256), reason 0 and empty properties
        + PINGRESP
        + b"\x40\x02\xff\xff"  # ours (65535)
        + b"\x40\x03\x00\x0c\x87"  # ours, reason 0x87 (not authorised): done, as paho does
    )
    taken = Taken(ours={7, 11, 256, 65535, 12})
    cut = min(cut, len(stream) - 1)
    for_paho = taken.demux.feed(stream[:cut]) + taken.demux.feed(stream[cut:])
    assert for_paho == b"\x40\x02\x00\x08" + PINGRESP
    assert taken.acked == [7, 11, 256, 65535, 12]
    assert taken.demux.taken == 5
    assert taken.heard >= 1
