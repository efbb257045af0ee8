"""RTP (RFC 3550) enough for a call: packets, a silence source, DTMF events (RFC 4733).

A peer that hears nothing for a while may hang up (media time-out), so an answered call
sends 20 ms packets of G.711 silence. DTMF comes as telephone-event packets: one event
is sent several times with a growing duration and ends with the E bit (itself sent
three times); :class:`DtmfReceiver` reports each key once.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from telephony_adapters.sipline.message import SipSyntaxError

SAMPLES_PER_PACKET = 160
"""20 ms at 8 kHz."""
PACKET_INTERVAL_S = 0.02
_SILENCE = {0: b"\xff" * SAMPLES_PER_PACKET, 8: b"\xd5" * SAMPLES_PER_PACKET}
DTMF_EVENTS = "0123456789*#ABCD"


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False

    def __bytes__(self) -> bytes:
        first = 0x80  # version 2, no padding, no extension, no CSRC
        second = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        header = struct.pack(
            "!BBHII", first, second, self.sequence & 0xFFFF, self.timestamp & 0xFFFFFFFF, self.ssrc
        )
        return header + self.payload


def parse_rtp(data: bytes) -> RtpPacket:
    if len(data) < 12:
        raise SipSyntaxError(f"RTP packet of {len(data)} bytes is shorter than its header")
    first, second, seq, ts, ssrc = struct.unpack("!BBHII", data[:12])
    if first >> 6 != 2:
        raise SipSyntaxError(f"RTP version {first >> 6}, expected 2")
    offset = 12 + 4 * (first & 0x0F)
    if first & 0x10:  # header extension
        if len(data) < offset + 4:
            raise SipSyntaxError("RTP header extension cut short")
        (words,) = struct.unpack("!H", data[offset + 2 : offset + 4])
        offset += 4 + 4 * words
    end = len(data)
    if first & 0x20 and end > offset:  # padding
        end -= data[-1]
    if offset > end:
        raise SipSyntaxError("RTP header longer than the packet")
    return RtpPacket(second & 0x7F, seq, ts, ssrc, data[offset:end], bool(second & 0x80))


class SilenceSource:
    """Consecutive packets of G.711 silence for one stream."""

    def __init__(self, payload_type: int, ssrc: int, sequence: int = 0, timestamp: int = 0) -> None:
        if payload_type not in _SILENCE:
            raise SipSyntaxError(f"no silence for payload type {payload_type} (PCMU 0, PCMA 8)")
        self.payload_type = payload_type
        self.ssrc = ssrc
        self.sequence = sequence
        self.timestamp = timestamp
        self._first = True

    def next_packet(self) -> bytes:
        packet = RtpPacket(
            self.payload_type,
            self.sequence,
            self.timestamp,
            self.ssrc,
            _SILENCE[self.payload_type],
            marker=self._first,
        )
        self._first = False
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.timestamp = (self.timestamp + SAMPLES_PER_PACKET) & 0xFFFFFFFF
        return bytes(packet)


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    key: str
    """``0``-``9``, ``*``, ``#``, ``A``-``D``, or ``flash``."""
    duration_ms: int
    volume_dbm0: int


class DtmfReceiver:
    """Telephone-event packets in, each key out once (at its end, or when the next
    event starts if the end packets were all lost)."""

    def __init__(self, payload_type: int) -> None:
        self.payload_type = payload_type
        self._current: tuple[int, int, int, int] | None = None
        """(timestamp, event, duration, volume) of the event in progress."""
        self._ended: set[int] = set()

    def feed(self, packet: RtpPacket) -> list[DtmfEvent]:
        if packet.payload_type != self.payload_type or len(packet.payload) < 4:
            return []
        event, flags, duration = struct.unpack("!BBH", packet.payload[:4])
        end, volume = bool(flags & 0x80), flags & 0x3F
        out: list[DtmfEvent] = []
        ts = packet.timestamp
        if ts in self._ended:
            return []  # a repeated end packet
        if self._current is not None and self._current[0] != ts:
            out.append(self._report(*self._current))  # the last event lost its end
        self._current = (ts, event, duration, volume)
        if end:
            out.append(self._report(ts, event, duration, volume))
        return out

    def _report(self, ts: int, event: int, duration: int, volume: int) -> DtmfEvent:
        self._current = None
        self._ended.add(ts)
        if len(self._ended) > 64:
            self._ended = {ts}
        key = DTMF_EVENTS[event] if event < len(DTMF_EVENTS) else "flash" if event == 16 else "?"
        return DtmfEvent(key, duration // 8, -volume)


def dtmf_packets(
    key: str, *, payload_type: int, ssrc: int, sequence: int, timestamp: int
) -> list[bytes]:
    """The packets of one key press (for tests and a far end): 3 updates, 3 ends."""
    event = DTMF_EVENTS.index(key)
    packets = []
    for i, (duration, end) in enumerate(
        [(400, False), (800, False), (1200, False), (1600, True), (1600, True), (1600, True)]
    ):
        payload = struct.pack("!BBH", event, (0x80 if end else 0) | 10, duration)
        packets.append(
            bytes(RtpPacket(payload_type, sequence + i, timestamp, ssrc, payload, marker=i == 0))
        )
    return packets
