"""The media core: the legs of the calls and what each one hears (sans-I/O).

A leg is one RTP stream with a party (a caller on the trunk, an agent's phone). What a
leg hears is its *source*: another leg (a relay: packets forwarded as they come, the
payload untouched when both legs have the same codec, PCMU <-> PCMA by table when they
differ), a :class:`FrameSource` (music, a prompt), a conference mix (each member hears
the sum of the others, clipped), or silence. Whatever the source, the leg sees one
stream from us (:class:`~.stream.OutStream`). Generated frames go out on :meth:`MediaCore.tick`,
every 20 ms; a relayed leg whose source sends nothing (muted, or quiet for 100 ms while the
loop kept up: not packets waiting unread behind a late loop) gets silence there too, so
that no phone times out.

A muted leg reaches no one (not forwarded, not mixed, not recorded); its DTMF is still
reported. RFC 4733 events are forwarded to the legs that hear the sender by relay, and
reported once per key (:class:`DtmfHeard`). Recording taps hand on what a leg says, its
G.711 codes, with the time of their first sample (:class:`RecordFrame`). A leg with a
time-out that sends nothing valid for that long is reported once (:class:`LegSilent`).

Input is never trusted: a datagram that is not RTP, too large, of another payload type,
from a foreign SSRC or a duplicate is counted in :attr:`MediaCore.dropped` and dropped.
"""

from __future__ import annotations

import math
import random
import struct
from array import array
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from operator import sub
from typing import Literal, Protocol

from cti.errors import TelephonyError
from telephony_adapters.media import g711
from telephony_adapters.media.stream import TS_MOD, InStream, OutStream, StreamStats, Verdict
from telephony_adapters.sipline.message import SipSyntaxError
from telephony_adapters.sipline.rtp import DtmfReceiver, RtpPacket, parse_rtp

MAX_LEGS = 2000
MAX_PACKET_BYTES = 1472
"""An Ethernet MTU's UDP payload; G.711 at 20 ms is 172 bytes."""
MAX_MIX_LEGS = 16
MAX_TAPS_PER_LEG = 4
MIX_BACKLOG_FRAMES = 4
"""Frames a conference member may queue; older ones are dropped (80 ms of delay at most)."""
TICK_S = 0.02
FILL_AFTER_S = 0.1
"""A relayed leg that was sent nothing for this long gets silence."""
_BEHIND_S = 0.1
"""A tick this late restarts the 20 ms grid instead of bursting to catch up."""
_RECORD_SLIP_S = 0.5
"""Recording time follows the RTP timestamps unless they stray this far from arrival."""
_RTCP_TYPES = range(72, 77)
"""RTCP packet types 200-204 as an RTP header reads them (rtcp-mux)."""
_HEADER = struct.Struct("!BBHII")
_PLAIN = 0x80
"""First header byte of version 2 with no padding, extension or CSRC (almost every packet)."""

Addr = tuple[str, int]
Side = Literal["caller", "agent"]
Sender = Callable[[str, bytes, Addr], None]
"""``send(leg_id, data, addr)``: a packet for the leg, sent from its port (the relay's)."""


class FrameSource(Protocol):
    """Audio made here (a player): 160 signed 16-bit little-endian samples (320 bytes,
    8 kHz) per 20 ms frame, or None when it is over (a one-shot prompt)."""

    def next_frame(self, now: float) -> bytes | None: ...


# What the core asks of its shell.


# The outputs made per packet are plain slotted dataclasses: a frozen one's __init__ sets
# each field through object.__setattr__, 2-3x the cost, on every packet.


@dataclass(slots=True)
class SendPacket:
    leg_id: str
    data: bytes
    addr: Addr


@dataclass(frozen=True, slots=True)
class DtmfHeard:
    leg_id: str
    key: str
    duration_ms: int


@dataclass(frozen=True, slots=True)
class LegSilent:
    """No valid RTP from the leg for its time-out (reported once until it speaks again)."""

    leg_id: str
    last_heard: float


@dataclass(slots=True)
class RecordFrame:
    """What a tapped leg said, starting at ``at``: the G.711 ``payload`` as it came, of
    ``payload_type`` (a recorder takes the codes: ``Recorder.add_g711``); ``samples``
    decodes them (16-bit little-endian linear, 8 kHz)."""

    tap: str
    side: Side
    at: float
    payload: bytes
    payload_type: int

    # Written out (dataclass keeps it): mypyc compiles it, where the one dataclass
    # generates runs interpreted (2,200 instructions of a compiled core's packet).
    def __init__(self, tap: str, side: Side, at: float, payload: bytes, payload_type: int) -> None:
        self.tap = tap
        self.side = side
        self.at = at
        self.payload = payload
        self.payload_type = payload_type

    @property
    def samples(self) -> bytes:
        return g711.decode(self.payload, self.payload_type)


@dataclass(frozen=True, slots=True)
class PlayFinished:
    """A one-shot source ended; the leg now hears silence."""

    leg_id: str


Out = SendPacket | DtmfHeard | LegSilent | RecordFrame | PlayFinished


# What a leg hears.


@dataclass(frozen=True, slots=True)
class HearLeg:
    leg_id: str


@dataclass(frozen=True, slots=True, eq=False)
class HearPlayer:
    source: FrameSource


@dataclass(frozen=True, slots=True)
class HearMix:
    group: int


@dataclass(frozen=True, slots=True)
class HearSilence:
    pass


Source = HearLeg | HearPlayer | HearMix | HearSilence
_SILENCE = HearSilence()


@dataclass(eq=False, slots=True)
class _Leg:
    leg_id: str
    payload_type: int
    telephone_event: int | None
    remote: Addr | None
    timeout_s: float | None
    out: OutStream
    heard_at: float
    """The last valid packet, or when the leg was made or its time-out set."""
    inp: InStream = field(default_factory=InStream)
    source: Source = _SILENCE
    muted: bool = False
    silent_reported: bool = False
    listeners: dict[str, None] = field(default_factory=dict)
    """Legs that hear this one by relay (a dict: ordered)."""
    taps: dict[str, Side] = field(default_factory=dict)
    dtmf: DtmfReceiver | None = None
    mix_buffer: bytearray | None = None
    anchor: tuple[float, int] | None = None
    """(time, RTP timestamp) that recording times are counted from."""
    origin: tuple[str, int] | None = None
    """(leg id, SSRC) of its last packet: the origin its listeners' streams relay."""


def _check_codec(leg_id: str, payload_type: int, telephone_event: int | None) -> None:
    if payload_type not in g711.SILENCE_CODE:
        raise TelephonyError(
            f"media leg {leg_id!r}: payload type {payload_type} is not G.711 (PCMU 0, PCMA 8)"
        )
    if telephone_event is not None and not (
        0 <= telephone_event <= 127 and telephone_event != payload_type
    ):
        raise TelephonyError(
            f"media leg {leg_id!r}: telephone-event payload type {telephone_event} is invalid"
        )


def _rtp(payload_type: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool) -> bytes:
    """``bytes(RtpPacket(...))`` without the frozen dataclass (it costs more than the
    rest of the relay's work on a packet); plain headers are read in
    :meth:`MediaCore.receive_into` for the same reason."""
    second = (0x80 if marker else 0) | (payload_type & 0x7F)
    return _HEADER.pack(_PLAIN, second, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload


def _fit(frame: bytes) -> bytes:
    """Exactly one frame: a short one padded with silence, a long one cut."""
    if len(frame) == g711.FRAME_BYTES:
        return frame
    return frame[: g711.FRAME_BYTES].ljust(g711.FRAME_BYTES, b"\0")


class MediaCore:
    """Legs, their sources, and the packets between them. Every method that takes
    input returns the outputs it causes; nothing here blocks or reads a clock."""

    def __init__(
        self,
        *,
        max_legs: int = MAX_LEGS,
        max_packet_bytes: int = MAX_PACKET_BYTES,
        rng: random.Random | None = None,
    ) -> None:
        self.max_legs = max_legs
        self.max_packet_bytes = max_packet_bytes
        self.dropped: Counter[str] = Counter()
        """Input dropped, by reason (not_rtp, oversized, payload_type, foreign, ...)."""
        self._legs: dict[str, _Leg] = {}
        self._groups: dict[int, list[str]] = {}
        self._next_group = 1
        self._next_tick: float | None = None
        self._last_input = -math.inf
        """When the newest valid packet from any leg came in."""
        self._lag_at = -math.inf
        """When a 20 ms step last came late (the loop lagged: packets may wait unread)."""
        self._rng = rng or random.Random()

    # -- legs --------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._legs)

    def __contains__(self, leg_id: object) -> bool:
        return leg_id in self._legs

    def add_leg(
        self,
        leg_id: str,
        *,
        payload_type: int,
        now: float,
        telephone_event: int | None = None,
        remote: Addr | None = None,
        timeout_s: float | None = None,
    ) -> None:
        """A new leg, hearing silence. Raises TelephonyError for a taken id, a full
        core, or a codec that is not G.711."""
        if leg_id in self._legs:
            raise TelephonyError(f"media leg {leg_id!r} exists already")
        if len(self._legs) >= self.max_legs:
            raise TelephonyError(f"media legs full ({self.max_legs}): no room for {leg_id!r}")
        _check_codec(leg_id, payload_type, telephone_event)
        rng = self._rng
        out = OutStream(rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(32))
        leg = _Leg(leg_id, payload_type, None, remote, timeout_s, out, heard_at=now)
        self._legs[leg_id] = leg
        self._set_telephone_event(leg, telephone_event)

    def remove_leg(self, leg_id: str) -> None:
        """The leg goes; legs that heard it hear silence. An unknown id is no error."""
        leg = self._legs.get(leg_id)
        if leg is None:
            return
        self._detach(leg)
        for listener in list(leg.listeners):
            self._detach(self._legs[listener])
        del self._legs[leg_id]

    def set_codec(self, leg_id: str, payload_type: int, telephone_event: int | None) -> None:
        """A re-negotiated codec (re-INVITE); the stream to the leg goes on."""
        leg = self._leg(leg_id)
        _check_codec(leg_id, payload_type, telephone_event)
        leg.payload_type = payload_type
        self._set_telephone_event(leg, telephone_event)

    def set_remote(self, leg_id: str, remote: Addr | None) -> None:
        """Where the leg's packets go (None: nowhere, e.g. until its answer)."""
        self._leg(leg_id).remote = remote

    def set_timeout(self, leg_id: str, timeout_s: float | None, now: float) -> None:
        """Report the leg silent after ``timeout_s`` without RTP, counted from now
        (None: never, e.g. while it is on hold and may send nothing)."""
        leg = self._leg(leg_id)
        leg.timeout_s = timeout_s
        leg.heard_at = now
        leg.silent_reported = False

    def mute(self, leg_id: str, muted: bool) -> None:
        leg = self._leg(leg_id)
        leg.muted = muted
        if muted and leg.mix_buffer is not None:
            leg.mix_buffer.clear()  # nothing said before the mute comes out after it

    def tap(self, leg_id: str, tap: str, side: Side) -> None:
        """Record what the leg says as ``side`` of recording ``tap``."""
        leg = self._leg(leg_id)
        if tap not in leg.taps and len(leg.taps) >= MAX_TAPS_PER_LEG:
            raise TelephonyError(f"media leg {leg_id!r}: {MAX_TAPS_PER_LEG} taps already")
        leg.taps[tap] = side

    def untap(self, leg_id: str, tap: str) -> None:
        leg = self._legs.get(leg_id)
        if leg is not None:
            leg.taps.pop(tap, None)

    def stats(self, leg_id: str) -> StreamStats:
        """What the leg sent us: received, lost, duplicates, late, jitter."""
        return self._leg(leg_id).inp.stats()

    def sent(self, leg_id: str) -> int:
        """Packets sent to the leg."""
        return self._leg(leg_id).out.sent

    def source_of(self, leg_id: str) -> Source:
        return self._leg(leg_id).source

    def _leg(self, leg_id: str) -> _Leg:
        leg = self._legs.get(leg_id)
        if leg is None:
            raise TelephonyError(f"no media leg {leg_id!r}")
        return leg

    def _set_telephone_event(self, leg: _Leg, payload_type: int | None) -> None:
        leg.telephone_event = payload_type
        if payload_type is None:
            leg.dtmf = None
        elif leg.dtmf is None:
            leg.dtmf = DtmfReceiver(payload_type)
        else:  # keep it: a key already reported must not be reported again
            leg.dtmf.payload_type = payload_type

    # -- what each leg hears -------------------------------------------------------

    def connect(self, a: str, b: str) -> None:
        """A two-way relay: ``a`` hears ``b`` and ``b`` hears ``a``."""
        self.hear(a, b)
        self.hear(b, a)

    def hear(self, leg_id: str, other_id: str) -> None:
        """One way: ``leg_id`` hears ``other_id`` (a listen-in, or half of a connect)."""
        leg, other = self._leg(leg_id), self._leg(other_id)
        if leg is other:
            raise TelephonyError(f"media leg {leg_id!r} cannot hear itself")
        self._detach(leg)
        self._hear(leg, other)

    def play(self, leg_id: str, source: FrameSource) -> None:
        """The leg hears ``source`` from the next tick on."""
        leg = self._leg(leg_id)
        self._detach(leg)
        leg.source = HearPlayer(source)

    def silence(self, leg_id: str) -> None:
        self._detach(self._leg(leg_id))

    def mix(self, leg_ids: Sequence[str]) -> None:
        """A conference: each leg hears the sum of the others. Two legs are simply
        connected (no mixing); each leg leaves whatever it heard before."""
        legs = [self._leg(leg_id) for leg_id in leg_ids]
        if len({leg.leg_id for leg in legs}) != len(legs) or not 2 <= len(legs) <= MAX_MIX_LEGS:
            raise TelephonyError(
                f"a mix needs 2 to {MAX_MIX_LEGS} distinct legs, not {list(leg_ids)[:20]!r}"
            )
        if len(legs) == 2:
            self.connect(legs[0].leg_id, legs[1].leg_id)
            return
        group = self._next_group
        self._next_group += 1
        for leg in legs:
            self._detach(leg)
        self._groups[group] = [leg.leg_id for leg in legs]
        for leg in legs:
            leg.source = HearMix(group)
            leg.mix_buffer = bytearray()

    def _hear(self, leg: _Leg, other: _Leg) -> None:
        leg.source = HearLeg(other.leg_id)
        other.listeners[leg.leg_id] = None

    def _detach(self, leg: _Leg) -> None:
        """The leg hears silence; a conference left with two members becomes a connect."""
        source, leg.source = leg.source, _SILENCE
        if isinstance(source, HearLeg):
            other = self._legs.get(source.leg_id)
            if other is not None:
                other.listeners.pop(leg.leg_id, None)
        elif isinstance(source, HearMix):
            leg.mix_buffer = None
            members = self._groups[source.group]
            members.remove(leg.leg_id)
            if len(members) < 3:
                del self._groups[source.group]
                rest = [self._legs[m] for m in members]
                for member in rest:
                    member.source, member.mix_buffer = _SILENCE, None
                if len(rest) == 2:
                    self._hear(rest[0], rest[1])
                    self._hear(rest[1], rest[0])

    # -- packets in ----------------------------------------------------------------

    def receive(self, leg_id: str, data: bytes, now: float) -> list[Out]:
        """A datagram from the leg's port. Never raises: bad input is counted, dropped."""
        out: list[Out] = []
        self.receive_into(leg_id, data, now, out, None)
        return out

    def receive_into(
        self, leg_id: str, data: bytes, now: float, out: list[Out], send: Sender | None
    ) -> None:
        """:meth:`receive` for the relay's packet path: outputs appended to ``out``, and
        the packets to send handed to ``send`` as they are made (no :class:`SendPacket`;
        None: appended as SendPackets)."""
        leg = self._legs.get(leg_id)
        if leg is None:
            self._drop("unknown_leg")
        elif len(data) > self.max_packet_bytes:
            self._drop("oversized")
        elif len(data) >= 12 and data[0] == _PLAIN:  # the plain header, read here
            _, second, seq, ts, ssrc = _HEADER.unpack_from(data)
            self._packet(leg, second & 0x7F, second > 0x7F, seq, ts, ssrc, data[12:], now,
                         out, send)  # fmt: skip
        else:
            try:
                p = parse_rtp(data)
            except SipSyntaxError:
                self._drop("not_rtp")
                return
            self._packet(leg, p.payload_type, p.marker, p.sequence, p.timestamp, p.ssrc,
                         p.payload, now, out, send)  # fmt: skip

    def _packet(
        self, leg: _Leg, kind: int, marker: bool, seq: int, ts: int, ssrc: int, payload: bytes,
        now: float, out: list[Out], send: Sender | None,
    ) -> None:  # fmt: skip
        if kind in _RTCP_TYPES:
            self._drop("rtcp")
            return
        is_dtmf = kind == leg.telephone_event
        if not is_dtmf and (kind != leg.payload_type or not payload):
            self._drop("payload_type" if payload else "empty")
            return
        verdict = leg.inp.accept(ssrc, seq, ts, now, timed=not is_dtmf)
        if verdict is Verdict.DUPLICATE or verdict is Verdict.FOREIGN:
            self._drop(verdict.value)
            return
        leg.heard_at = self._last_input = now
        leg.silent_reported = False
        if is_dtmf:
            self._dtmf(leg, RtpPacket(kind, seq, ts, ssrc, payload, marker), now, out, send)
        elif not leg.muted:
            self._audio(leg, seq, ts, ssrc, payload, verdict, now, out, send)

    def _drop(self, reason: str) -> None:
        self.dropped[reason] += 1

    def _audio(
        self, leg: _Leg, sequence: int, timestamp: int, ssrc: int, payload: bytes,
        verdict: Verdict, now: float, out: list[Out], send: Sender | None,
    ) -> None:  # fmt: skip
        if leg.taps:  # the codes: a recorder decodes them as it writes
            at = self._media_time(leg, timestamp, now)
            for tap, side in leg.taps.items():
                out.append(RecordFrame(tap, side, at, payload, leg.payload_type))
        if leg.mix_buffer is not None and verdict is Verdict.NEW:
            self._buffer(leg.mix_buffer, g711.decode(payload, leg.payload_type))
        origin = leg.origin
        if origin is None or origin[1] != ssrc:
            origin = leg.origin = (leg.leg_id, ssrc)
        law, size = leg.payload_type, len(payload)
        for listener_id in leg.listeners:
            target = self._legs[listener_id]
            remote = target.remote
            if remote is None:
                continue
            body = payload if target.payload_type == law else g711.translate(
                payload, law, target.payload_type
            )  # fmt: skip
            stream = target.out
            seq, ts, marker = stream.relay(origin, sequence, timestamp, size, now)
            data = _rtp(target.payload_type, seq, ts, stream.ssrc, body, marker)
            if send is None:
                out.append(SendPacket(listener_id, data, remote))
            else:
                send(listener_id, data, remote)

    def _dtmf(
        self, leg: _Leg, packet: RtpPacket, now: float, out: list[Out], send: Sender | None
    ) -> None:
        """Report each key once; forward the events to the legs hearing this one by relay
        (a conference only reports them: its members hear a mix, not a stream)."""
        if leg.dtmf is not None:
            out.extend(DtmfHeard(leg.leg_id, e.key, e.duration_ms) for e in leg.dtmf.feed(packet))
        if leg.muted:
            return
        origin = (leg.leg_id, packet.ssrc)
        for listener_id in leg.listeners:
            target = self._legs[listener_id]
            if target.remote is None or target.telephone_event is None:
                self.dropped["dtmf_not_forwarded"] += 1
                continue
            seq, ts, switched = target.out.relay(origin, packet.sequence, packet.timestamp, 0, now)
            data = _rtp(
                target.telephone_event, seq, ts, target.out.ssrc, packet.payload,
                packet.marker or switched,
            )  # fmt: skip
            if send is None:
                out.append(SendPacket(listener_id, data, target.remote))
            else:
                send(listener_id, data, target.remote)

    def _media_time(self, leg: _Leg, ts: int, now: float) -> float:
        """When the packet's first sample was said, by its timestamp (no arrival jitter),
        counted from an anchor that is set again if they drift apart (a new SSRC)."""
        anchor = leg.anchor
        if anchor is not None:
            delta = (ts - anchor[1]) % TS_MOD
            if delta >= TS_MOD // 2:
                delta -= TS_MOD
            at = anchor[0] + delta / g711.RATE
            if abs(at - now) <= _RECORD_SLIP_S:
                return at
        leg.anchor = (now, ts)
        return now

    @staticmethod
    def _buffer(buffer: bytearray, linear: bytes) -> None:
        buffer += linear
        excess = len(buffer) - MIX_BACKLOG_FRAMES * g711.FRAME_BYTES
        if excess > 0:
            del buffer[:excess]

    # -- time ----------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When :meth:`tick` has something to do (None: nothing until more input)."""
        deadlines = [
            leg.heard_at + leg.timeout_s
            for leg in self._legs.values()
            if leg.timeout_s is not None and not leg.silent_reported
        ]
        if self._sends_frames():
            deadlines.append(self._next_tick if self._next_tick is not None else 0.0)
        return min(deadlines, default=None)

    def _sends_frames(self) -> bool:
        return any(
            leg.remote is not None or isinstance(leg.source, HearPlayer)
            for leg in self._legs.values()
        )

    def tick(self, now: float) -> list[Out]:
        """Time-outs due, and on each 20 ms step the frames made here."""
        out: list[Out] = []
        for leg in self._legs.values():
            timeout = leg.timeout_s
            if timeout is not None and not leg.silent_reported and now - leg.heard_at >= timeout:
                leg.silent_reported = True
                out.append(LegSilent(leg.leg_id, leg.heard_at))
        if not self._step_due(now):
            return out
        for leg in list(self._legs.values()):
            source = leg.source
            if source.__class__ is HearLeg:  # most legs: a relay, which flows
                if self._needs_fill(leg, source, now):
                    self._frame(leg, now, out)
            elif source.__class__ is not HearMix:  # the mix makes its own
                self._frame(leg, now, out)
        for group in list(self._groups):
            out.extend(self._mix(group, now))
        return out

    def _step_due(self, now: float) -> bool:
        if not self._sends_frames():
            self._next_tick = None
            return False
        if self._next_tick is None:
            self._next_tick = now
        if now < self._next_tick - 1e-6:
            return False
        if now - self._next_tick >= TICK_S:
            self._lag_at = now
        self._next_tick += TICK_S
        if self._next_tick < now - _BEHIND_S:
            self._next_tick = now + TICK_S
        return True

    def _frame(self, leg: _Leg, now: float, out: list[Out]) -> None:
        """This step's frame for a leg hearing a player or silence, or silence for a
        relayed leg whose source sends nothing (the caller checked that)."""
        source = leg.source
        origin: Hashable = "silence"
        payload: bytes | None = None
        if isinstance(source, HearPlayer):
            frame = source.source.next_frame(now)
            if frame is None:
                leg.source = _SILENCE
                out.append(PlayFinished(leg.leg_id))
            else:
                payload = g711.encode(_fit(frame), leg.payload_type)
                origin = ("play", id(source.source))
        if leg.remote is not None:
            if payload is None:
                payload = g711.silence(leg.payload_type)
            out.append(self._generated(leg, origin, payload, now))

    def _needs_fill(self, leg: _Leg, source: HearLeg, now: float) -> bool:
        """Whether the source is quiet for real: muted, or nothing relayed from it for
        ``FILL_AFTER_S`` while the loop kept up (no late step since, or packets from
        other legs came in meanwhile). A loop that lagged may hold its packets unread;
        filling every leg then would add load exactly when the relay cannot cope."""
        if self._legs[source.leg_id].muted or leg.out.origin == "silence":
            return True  # filling already: every step until the speaker comes back
        last = leg.out.last_at
        if last is None:
            return True
        if now - last < FILL_AFTER_S - 1e-6:
            return False
        return now > self._lag_at or self._last_input - last >= FILL_AFTER_S - 1e-6

    def _generated(self, leg: _Leg, origin: Hashable, payload: bytes, now: float) -> SendPacket:
        assert leg.remote is not None
        seq, ts, marker = leg.out.generated(origin, now)
        data = _rtp(leg.payload_type, seq, ts, leg.out.ssrc, payload, marker)
        return SendPacket(leg.leg_id, data, leg.remote)

    def _mix(self, group: int, now: float) -> list[Out]:
        """One frame to each member: the sum of what the others said, clipped."""
        members = [self._legs[m] for m in self._groups[group]]
        frames = [self._take(leg) for leg in members]
        present = [frame for frame in frames if frame is not None]
        total = list(map(sum, zip(*present, strict=True))) if present else None
        out: list[Out] = []
        for leg, own in zip(members, frames, strict=True):
            if leg.remote is None:
                continue
            if total is None:
                payload = g711.silence(leg.payload_type)
            elif own is None:
                payload = g711.encode_samples(total, leg.payload_type)
            else:
                payload = g711.encode_samples(map(sub, total, own), leg.payload_type)
            out.append(self._generated(leg, ("mix", group), payload, now))
        return out

    @staticmethod
    def _take(leg: _Leg) -> array[int] | None:
        """A member's next frame (None: muted, or nothing came in time)."""
        buffer = leg.mix_buffer
        if buffer is None or leg.muted or len(buffer) < g711.FRAME_BYTES:
            return None
        frame = bytes(buffer[: g711.FRAME_BYTES])
        del buffer[: g711.FRAME_BYTES]
        return g711.samples(frame)
