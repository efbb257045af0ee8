"""One leg's RTP streams: what we send it (:class:`OutStream`), what it sends (:class:`InStream`).

Out: the leg sees one stream from us, with our SSRC, whatever it is hearing (the other
party, music, a conference mix, silence). Relayed packets keep their own spacing (a gap
or a reordering at the source stays one) through an offset per source; when the source
changes the offsets are set again so that sequence numbers go on by one and the
timestamp by the time that passed, and the first packet carries the marker bit.

In: which SSRC the leg speaks with (a new one is taken only when the old one went quiet
and the new one sends in sequence: a storm of random SSRCs never takes over), and the
RFC 3550 receiver figures: loss from the sequence numbers (A.3), duplicates, late
(reordered) packets, interarrival jitter (A.8).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from enum import Enum

from telephony_adapters.media.g711 import FRAME_SAMPLES, RATE

SEQ_MOD = 0x10000
TS_MOD = 0x100000000
MAX_DROPOUT = 3000
"""A sequence jump forward larger than this is a restart, not a loss (RFC 3550 A.1)."""
MAX_MISORDER = 100
"""A packet at most this far behind is late; further behind, a restart."""
WINDOW = 128
"""Sequence numbers remembered behind the highest, to tell duplicates from late packets."""
SSRC_QUIET_S = 0.06
"""How long the current SSRC must be quiet before another one may take over."""
SSRC_PROBATION = 2
"""Packets in sequence a new SSRC sends before it takes over."""


class OutStream:
    """Sequence numbers and timestamps of the stream sent to one leg."""

    def __init__(self, ssrc: int, sequence: int, timestamp: int) -> None:
        self.ssrc = ssrc & 0xFFFFFFFF
        self.origin: Hashable | None = None
        self.last_seq = (sequence - 1) % SEQ_MOD
        self.ts_end = timestamp % TS_MOD
        """The timestamp just after the newest sample sent."""
        self.last_at: float | None = None
        self.sent = 0
        self._seq_offset = 0
        self._ts_offset = 0

    def _next_ts(self, now: float) -> int:
        """Where a new source starts: after what was sent, plus whole frames of quiet."""
        if self.last_at is None:
            return self.ts_end
        frames = max(0, round((now - self.last_at) / (FRAME_SAMPLES / RATE)) - 1)
        return (self.ts_end + frames * FRAME_SAMPLES) % TS_MOD

    def _switch(self, origin: Hashable, seq: int, ts: int, now: float) -> None:
        self.origin = origin
        self._seq_offset = (self.last_seq + 1 - seq) % SEQ_MOD
        self._ts_offset = (self._next_ts(now) - ts) % TS_MOD

    def relay(
        self, origin: Hashable, seq: int, ts: int, samples: int, now: float
    ) -> tuple[int, int, bool]:
        """A packet from ``origin`` (a leg and its SSRC): our (sequence, timestamp, marker)."""
        switched = origin != self.origin
        if switched:
            self._switch(origin, seq, ts, now)
        out_seq = (seq + self._seq_offset) & 0xFFFF
        out_ts = (ts + self._ts_offset) & 0xFFFFFFFF
        self._sent(out_seq, out_ts, samples, now)
        return out_seq, out_ts, switched

    def generated(self, origin: Hashable, now: float) -> tuple[int, int, bool]:
        """The next 20 ms frame made here (player, mix, silence)."""
        switched = origin != self.origin
        if switched:
            self.origin = origin
            out_ts = self._next_ts(now)
        else:
            out_ts = self.ts_end
        out_seq = (self.last_seq + 1) % SEQ_MOD
        self._sent(out_seq, out_ts, FRAME_SAMPLES, now)
        return out_seq, out_ts, switched

    def _sent(self, seq: int, ts: int, samples: int, now: float) -> None:
        """Count a packet sent; the newest sequence and timestamp end move forward only
        (a late packet relayed leaves them), in wrapping arithmetic (every packet: no
        helper calls)."""
        self.sent += 1
        self.last_at = now
        if 0 < (seq - self.last_seq) & 0xFFFF < 0x8000:
            self.last_seq = seq
        end = (ts + samples) & 0xFFFFFFFF
        if 0 < (end - self.ts_end) & 0xFFFFFFFF < 0x80000000:
            self.ts_end = end


class Verdict(Enum):
    NEW = "new"
    """In order (or after a gap): use it."""
    LATE = "late"
    """Behind the newest but not seen before: use it (relay) or drop it (mixing)."""
    DUPLICATE = "duplicate"
    FOREIGN = "foreign"
    """Another SSRC while ours is alive, or a sequence restart on probation: drop."""


@dataclass(frozen=True, slots=True)
class StreamStats:
    received: int
    """Distinct packets taken from the leg's SSRC."""
    expected: int
    lost: int
    duplicates: int
    late: int
    jitter_ms: float
    foreign: int
    """Packets dropped for another SSRC or a sequence on probation."""
    ssrc: int | None


class InStream:
    """What one leg sends: its SSRC, and the receiver statistics of RFC 3550."""

    def __init__(self) -> None:
        self.ssrc: int | None = None
        self.last_heard: float | None = None
        self._candidate: tuple[int, int, int] | None = None
        """(ssrc, last sequence, packets in a row) of an SSRC that may take over."""
        self._restart_seq: int | None = None
        self._reset_counts()
        self.foreign = 0

    def _reset_counts(self) -> None:
        self.base_seq = 0
        self.max_seq = 0
        self.cycles = 0
        self.received = 0
        self.duplicates = 0
        self.late = 0
        self.jitter = 0.0
        self._transit: float | None = None
        self._seen = 0
        """Bit i: max_seq - i was received."""

    def _start(self, ssrc: int, seq: int) -> None:
        self.ssrc = ssrc
        self._reset_counts()
        self.base_seq = self.max_seq = seq
        self._candidate = self._restart_seq = None

    def accept(self, ssrc: int, seq: int, ts: int, now: float, *, timed: bool = True) -> Verdict:
        """Take one packet's header; ``timed`` False leaves jitter alone (DTMF events
        carry their start time, not the time of their samples)."""
        if ssrc == self.ssrc:  # the usual first: every packet comes here
            verdict = self._sequence(seq)
            if verdict is Verdict.DUPLICATE or verdict is Verdict.FOREIGN:
                return verdict
        elif self.ssrc is None or self._takes_over(ssrc, seq, now):
            self._start(ssrc, seq)
            verdict = Verdict.NEW
        else:
            self.foreign += 1
            return Verdict.FOREIGN
        self.received += 1
        self.last_heard = now
        if timed:
            transit = now * RATE - ts
            if self._transit is not None:
                d = abs(transit - self._transit)
                # A timestamp that wrapped or jumped is no jitter.
                if d < RATE:
                    self.jitter += (d - self.jitter) / 16
            self._transit = transit
        return verdict

    def _takes_over(self, ssrc: int, seq: int, now: float) -> bool:
        quiet = self.last_heard is None or now - self.last_heard >= SSRC_QUIET_S
        cand = self._candidate
        run = cand[2] + 1 if cand and cand[0] == ssrc and (cand[1] + 1) % SEQ_MOD == seq else 1
        self._candidate = (ssrc, seq, run)
        return quiet and run >= SSRC_PROBATION

    def _sequence(self, seq: int) -> Verdict:
        delta = (seq - self.max_seq) % SEQ_MOD
        if delta == 0:
            self.duplicates += 1
            return Verdict.DUPLICATE
        if delta < MAX_DROPOUT:
            if seq < self.max_seq:
                self.cycles += SEQ_MOD
            self.max_seq = seq
            self._seen = ((self._seen << delta) | 1) & ((1 << WINDOW) - 1)
            self._restart_seq = None
            return Verdict.NEW
        behind = SEQ_MOD - delta
        if behind <= MAX_MISORDER:
            if behind < WINDOW and self._seen >> behind & 1:
                self.duplicates += 1
                return Verdict.DUPLICATE
            if behind < WINDOW:
                self._seen |= 1 << behind
            self.late += 1
            return Verdict.LATE
        # A jump: the sender restarted its sequence? Believe it on the next in order.
        if self._restart_seq == seq:
            assert self.ssrc is not None
            self._start(self.ssrc, seq)
            return Verdict.NEW
        self._restart_seq = (seq + 1) % SEQ_MOD
        self.foreign += 1
        return Verdict.FOREIGN

    def stats(self) -> StreamStats:
        extended = self.cycles + self.max_seq
        expected = extended - self.base_seq + 1 if self.ssrc is not None else 0
        return StreamStats(
            received=self.received,
            expected=expected,
            lost=max(0, expected - self.received),
            duplicates=self.duplicates,
            late=self.late,
            jitter_ms=self.jitter * 1000 / RATE,
            foreign=self.foreign,
            ssrc=self.ssrc,
        )
