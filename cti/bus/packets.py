"""The broker connection's hot packets, written and read here instead of in paho
(``docs/mqtt.md``, "Python work per packet"; issue 23).

Per call the engine writes about ten PUBLISH packets and reads about ten PUBACKs
and three PUBLISHes. paho spends about a hundred Python calls on each (a message info
object with its own lock and condition, its in-flight tables, three reads a packet,
a reason code and properties objects per PUBACK), and aiomqtt a task per message
received. Here, sans-I/O:

* :func:`publish_packet` is one MQTT v5 PUBLISH (no properties), from a topic's
  :func:`topic_head` kept by the caller;
* :class:`Demux` splits what the socket read into packets: PUBACKs go to ``acked``,
  PUBLISHes (QoS 0 and 1) to ``received`` with their subscription identifiers, a QoS 1
  PUBLISH is acknowledged through ``reply`` once handed on (as paho does), and every
  other packet (CONNACK, SUBACK, PINGRESP, DISCONNECT...) is left, whole and in order,
  for paho. A PUBLISH this parser does not take (a property it does not know, a topic
  that is not UTF-8, QoS 2) goes to paho too, which refuses it or delivers it as before;
  a remaining length paho would refuse stops the splitting, and paho sees the rest.
"""

from __future__ import annotations

from collections.abc import Callable

#: MQTT control packet types (the high nibble of the first byte).
PUBLISH = 3
PUBACK = 4
#: Bytes a property's value takes after its identifier, for the properties a PUBLISH
#: may carry (MQTT v5 3.3.2.3): fixed sizes; 0 a UTF-8 string or binary (2-byte length);
#: -1 a variable byte integer; -2 a string pair.
_PROPERTY_SIZES = {0x01: 1, 0x02: 4, 0x03: 0, 0x08: 0, 0x09: 0, 0x0B: -1, 0x23: 2, 0x26: -2}
SUBSCRIPTION_IDENTIFIER = 0x0B
TOPIC_ALIAS = 0x23


class PacketError(ValueError):
    """A packet this parser does not take (paho gets it instead)."""


def topic_head(topic: str) -> bytes:
    """A topic as a PUBLISH carries it: its UTF-8 length (2 bytes) and the UTF-8."""
    data = topic.encode("utf-8")
    return len(data).to_bytes(2, "big") + data


def variable_int(value: int) -> bytes:
    """MQTT's variable byte integer (remaining lengths, property lengths)."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def publish_packet(head: bytes, payload: bytes, qos: int, retain: bool, mid: int) -> bytes:
    """One MQTT v5 PUBLISH: ``head`` from :func:`topic_head`, packet id ``mid`` for QoS 1,
    no properties (the property length, one 0 byte)."""
    first = 0x30 | (qos << 1) | (1 if retain else 0)
    size = len(head) + len(payload) + (3 if qos else 1)
    if size < 0x80:  # one length byte (most messages), two below 16 KiB
        fixed = bytes((first, size))
    elif size < 0x4000:
        fixed = bytes((first, size & 0x7F | 0x80, size >> 7))
    else:
        fixed = bytes((first,)) + variable_int(size)
    if qos:
        return b"".join((fixed, head, mid.to_bytes(2, "big"), b"\x00", payload))
    return b"".join((fixed, head, b"\x00", payload))


def puback_packet(mid: int) -> bytes:
    """A PUBACK with reason 0 (success): the packet id alone (MQTT v5 3.4.2.1)."""
    return b"\x40\x02" + mid.to_bytes(2, "big")


def read_variable_int(data: bytes, at: int, end: int) -> tuple[int, int]:
    """A variable byte integer at ``at``: (value, where it ends); PacketError if it
    runs past ``end`` or over four bytes."""
    value, shift = 0, 0
    while True:
        if at >= end or shift > 21:
            raise PacketError("variable byte integer")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def parse_publish(
    first: int, data: bytes, start: int, end: int
) -> tuple[str, bytes, int, tuple[int, ...]]:
    """A PUBLISH's body ``data[start:end]`` (``first``: its first byte): topic, payload,
    packet id (0 at QoS 0) and subscription identifiers. PacketError for QoS 2 or
    anything else this parser does not take."""
    qos = (first >> 1) & 3
    if qos > 1:
        raise PacketError("QoS 2")
    if end - start < 2:
        raise PacketError("topic length")
    at = start + 2 + int.from_bytes(data[start : start + 2], "big")
    if at > end:
        raise PacketError("topic")
    try:
        topic = data[start + 2 : at].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PacketError("topic not UTF-8") from exc
    mid = 0
    if qos:
        if at + 2 > end:
            raise PacketError("packet id")
        mid = int.from_bytes(data[at : at + 2], "big")
        at += 2
    size, at = read_variable_int(data, at, end)
    if at + size > end:
        raise PacketError("properties")
    idents = _subscription_identifiers(data, at, at + size) if size else ()
    return topic, data[at + size : end], mid, idents


def _subscription_identifiers(data: bytes, at: int, end: int) -> tuple[int, ...]:
    """The subscription identifiers among a PUBLISH's properties ``data[at:end]``."""
    idents: tuple[int, ...] = ()
    while at < end:
        prop = data[at]
        kind = _PROPERTY_SIZES.get(prop)
        if kind is None or prop == TOPIC_ALIAS:  # no alias is allowed us (none asked)
            raise PacketError(f"property {prop:#x}")
        at += 1
        if kind == -1:
            value, at = read_variable_int(data, at, end)
            if prop == SUBSCRIPTION_IDENTIFIER:
                idents += (value,)
        elif kind > 0:
            at += kind
        else:
            for _ in range(2 if kind == -2 else 1):
                if at + 2 > end:
                    raise PacketError(f"property {prop:#x}")
                at += 2 + int.from_bytes(data[at : at + 2], "big")
        if at > end:
            raise PacketError(f"property {prop:#x}")
    return idents


class Demux:
    """Splits the bytes read from the broker (see the module's text). ``received(topic,
    payload, idents)`` takes a PUBLISH, ``acked(mid)`` a PUBACK (False: not ours, paho
    gets it), ``reply(packet)`` writes our PUBACK to the broker; ``heard()`` is called
    once per read that held a packet taken here."""

    def __init__(
        self,
        received: Callable[[str, bytes, tuple[int, ...]], None],
        acked: Callable[[int], bool],
        reply: Callable[[bytes], object],
        heard: Callable[[], object] = lambda: None,
    ) -> None:
        self.received, self.acked, self.reply, self.heard = received, acked, reply, heard
        self._partial = b""
        self._stopped = False
        self.taken = 0
        """Packets taken here (PUBLISH and PUBACK), not handed to paho."""

    def feed(self, data: bytes) -> bytes:
        """Take what is for us from ``data``; return what is for paho (whole packets, in
        order). A packet cut at the end of ``data`` waits for the next read."""
        if self._stopped:
            return data
        if self._partial:
            data, self._partial = self._partial + data, b""
        rest: list[bytes] = []
        at, size, taken, acks = 0, len(data), self.taken, 0
        acked = self.acked
        while at < size:
            if (
                data[at] == 0x40
                and at + 4 <= size
                and 2 <= data[at + 1] < 0x80
                and (end := at + 2 + data[at + 1]) <= size
            ):
                # A whole PUBACK (its reason code, if any, ignored as _take does: 0x10, no
                # subscriber, for every agent state), most of what is read: taken in this
                # loop, without a call to parse it (issue 23).
                if acked((data[at + 2] << 8) | data[at + 3]):
                    acks += 1
                else:
                    rest.append(data[at:end])
                at = end
                continue
            try:
                length, body = read_variable_int(data, at + 1, size)
            except PacketError:
                if size - at > 4:  # over four bytes: paho refuses it and disconnects
                    self._stopped = True
                    rest.append(data[at:])
                    at = size
                break
            end = body + length
            if end > size:
                break
            if not self._take(data[at], data, body, end):
                rest.append(data[at:end])
            at = end
        if at < size:
            self._partial = data[at:]
        self.taken += acks
        if self.taken != taken:
            self.heard()
        return rest[0] if len(rest) == 1 else b"".join(rest)

    def _take(self, first: int, data: bytes, body: int, end: int) -> bool:
        """Take one whole packet if it is ours (True), else leave it to paho."""
        kind = first >> 4
        if kind == PUBACK and end - body >= 2:
            if not self.acked(int.from_bytes(data[body : body + 2], "big")):
                return False
        elif kind == PUBLISH:
            try:
                topic, payload, mid, idents = parse_publish(first, data, body, end)
            except PacketError:
                return False
            self.received(topic, payload, idents)
            if mid:
                self.reply(puback_packet(mid))
        else:
            return False
        self.taken += 1
        return True
