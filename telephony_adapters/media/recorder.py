"""Stereo call recording, sans-I/O: frames with their time in, WAV bytes out.

Left is the caller's side, right the agent's. Each side's 20 ms frames are laid on one
grid counted from the recording's start: a frame goes to the slot after that side's
last one (jitter and bursts do not shift it), unless it came more than
``JITTER_SLOTS`` later than that slot's time (the side was silent or lost packets: the
gap stays silence). A slot is written once both sides passed it, or ``LAG_SLOTS``
after its time if one side is quiet, so the file lags the call by at most 100 ms.

Frames come as linear samples (:meth:`Recorder.add`) or as the G.711 codes of the RTP
payload (:meth:`Recorder.add_g711`, the media relay's: half the bytes, and no decode per
packet); both give the same file. Codes are decoded when written, a block of slots at a
time: per side two ``bytes.translate`` (the samples' low and high bytes), then one
interleave of the four lanes, with no Python loop per sample.

Output is the WAV header (sizes zero until :meth:`Recorder.header_at_close`, which the
shell writes at offset 0), then interleaved samples, then at close a ``LIST/INFO``
chunk whose ``ICMT`` comment lists the paused spans. Audio that arrives during a pause
is dropped, never written: the paused time is silence in the file.
"""

from __future__ import annotations

import struct
from array import array
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Final, Literal, cast

from telephony_adapters.media import g711
from telephony_adapters.media.player import (
    FORMAT_MULAW,
    FORMAT_PCM,
    FRAME_BYTES,
    FRAME_S,
    FRAME_SAMPLES,
    SAMPLE_RATE,
)

JITTER_SLOTS = 3
LAG_SLOTS = 5
MAX_SOURCES = 16
"""Speakers kept apart on one side (a conference's agents); more share a track."""
#: A side more than this many slots ahead of real time (a sender too fast) loses frames.
AHEAD_SLOTS = 10
_FRAME_S: Final = FRAME_S  # a compiled constant, not a look-up in another module
#: Slots written in one block (1 s): bounds the temporary lanes of a long catch-up.
BLOCK_SLOTS = 50
_NO_LAW = -1
_ULAW_SILENCE = bytes([g711.SILENCE_CODE[g711.PCMU]]) * FRAME_SAMPLES
"""Mu-law codes whose samples are 0 (a PCMU side's missing frames, still one lane)."""


class Side(StrEnum):
    """Which channel: the caller's is left, the agent's right (equal to the bridge's
    ``"caller"`` and ``"agent"``)."""

    CALLER = "caller"
    AGENT = "agent"


class Encoding(Enum):
    PCM16 = "pcm16"
    MULAW = "mulaw"


@dataclass(frozen=True, slots=True)
class PauseSpan:
    """A pause, in seconds from the start of the recording."""

    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True)
class RecordingSummary:
    """What :meth:`Recorder.close` hands back: the last bytes to append, the header to
    write at offset 0, and what goes on the call record."""

    tail: bytes
    header: bytes
    duration_s: float
    pauses: tuple[PauseSpan, ...]
    dropped_frames: int


@dataclass(slots=True)
class _Track:
    slots: dict[int, bytes] = field(default_factory=dict)
    """Slot -> its frame: 320 bytes of linear samples, or 160 G.711 codes of ``law``."""
    next_slot: int = 0
    law: int = _NO_LAW
    partial: bytes = b""  # less than a frame, waiting for the rest
    partial_at: float = 0.0


def pause_comment(pauses: tuple[PauseSpan, ...] | list[PauseSpan]) -> str:
    """The ICMT text: ``paused 12.34-56.78 s; paused ...`` (or ``not paused``)."""
    if not pauses:
        return "not paused"
    return "; ".join(f"paused {p.start_s:.2f}-{p.end_s:.2f} s" for p in pauses)


def _info_chunk(comment: str) -> bytes:
    text = comment.encode("utf-8") + b"\0"
    if len(text) & 1:
        text += b"\0"
    icmt = b"ICMT" + struct.pack("<I", len(text)) + text
    body = b"INFO" + icmt
    return b"LIST" + struct.pack("<I", len(body)) + body


class Recorder:
    """One call's stereo recording, started at ``start`` (the shell's clock)."""

    def __init__(self, start: float, encoding: Encoding = Encoding.PCM16) -> None:
        self.start = start
        self.encoding = encoding
        self.closed = False
        # Per side, a track per source (one agent's phone...): a conference has two
        # agents on the right, mixed as the file is written.
        # A track is made when its speaker is first heard.
        self._sides: tuple[dict[str, _Track], dict[str, _Track]] = ({}, {})
        self._written = 0  # slots written
        self._pauses: list[PauseSpan] = []
        self._paused_at: float | None = None
        self._dropped = 0
        self._header_sent = False
        self._stereo_frame = 2 * (2 if encoding is Encoding.PCM16 else 1)
        """Bytes of one stereo sample."""

    # --- the call side ----------------------------------------------------------------

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    def add(
        self,
        side: Side | Literal["caller", "agent"],
        samples: bytes,
        now: float,
        source: str = "",
        *,
        emit: bool = True,
    ) -> bytes:
        """Take linear 16-bit little-endian samples of ``side`` whose first one was heard
        at ``now`` (usually a 20 ms frame; 10 or 30 ms packets are cut into 20 ms
        frames); return the WAV bytes now ready to append (often empty). ``source``
        tells apart several speakers on one side (a conference's agents): they are mixed.
        ``emit`` False: take them only, and return nothing; for a caller that calls
        :meth:`tick` on its own clock (every 100 ms), which saves a tick per frame (the
        media relay's dearest step after the packet itself, docs/voice.md)."""
        if self.closed:
            return b""
        if self._paused_at is None:
            track = self._track(side, source)
            if len(samples) == FRAME_BYTES and not track.partial:
                self._place(track, samples, now)
            else:
                self._place_pieces(track, samples, now)
        return self.tick(now) if emit else b""

    def add_g711(
        self,
        side: Side | Literal["caller", "agent"],
        payload: bytes,
        payload_type: int,
        now: float,
        source: str = "",
        *,
        emit: bool = True,
    ) -> bytes:
        """:meth:`add` for G.711 codes (``payload_type`` PCMU or PCMA, as RTP carries
        them): kept as codes and decoded as they are written, the same file as adding
        ``g711.decode(payload, payload_type)``. Raises ValueError for another type."""
        if self.closed:
            return b""
        if self._paused_at is None:
            track = self._track(side, source)
            if payload_type == track.law and len(payload) == FRAME_SAMPLES and not track.partial:
                self._place(track, payload, now)  # the usual: one 20 ms packet
            else:
                self._add_codes(track, payload, g711.check_payload_type(payload_type), now)
        return self.tick(now) if emit else b""

    def tick(self, now: float) -> bytes:
        """The WAV bytes ready by ``now`` (slots both sides passed, or old enough)."""
        if self.closed:
            return b""
        ready = max(self._slot(now) - LAG_SLOTS, self._lowest_next())
        if ready <= self._written and self._header_sent:
            return b""  # most calls (add ticks on every frame): nothing new
        return self._emit(ready)

    def pause(self, now: float) -> None:
        if self._paused_at is None and not self.closed:
            self._paused_at = now
            for track in self._all_tracks():
                track.partial = b""

    def resume(self, now: float) -> None:
        if self._paused_at is not None and not self.closed:
            self._pauses.append(self._span(self._paused_at, now))
            self._paused_at = None

    def close(self, now: float) -> RecordingSummary:
        """Write out every slot up to ``now`` and the comment chunk; closing twice
        hands back the same header and figures with no more bytes."""
        tail = b""
        if not self.closed:
            self.resume(now)
            end = max(self._slot(now), *(t.next_slot for t in self._all_tracks()), 0)
            tail = self._emit(end) + _info_chunk(pause_comment(self._pauses))
            self.closed = True
        return RecordingSummary(
            tail=tail,
            header=self.header_at_close(),
            duration_s=round(self._written * FRAME_S, 3),
            pauses=tuple(self._pauses),
            dropped_frames=self._dropped,
        )

    # --- the file ---------------------------------------------------------------------

    def header(self, *, data_size: int = 0, riff_extra: int = 0) -> bytes:
        """The WAV header: ``fmt`` (and ``fact`` for G.711), then the ``data`` chunk's
        header. With the default sizes it is the placeholder written first."""
        stereo_frame = self._stereo_frame
        if self.encoding is Encoding.PCM16:
            fmt = struct.pack(
                "<HHIIHH", FORMAT_PCM, 2, SAMPLE_RATE, SAMPLE_RATE * stereo_frame, 4, 16
            )
            fact = b""
        else:  # non-PCM: fmt carries cbSize, and a fact chunk counts the samples
            fmt = struct.pack(
                "<HHIIHHH", FORMAT_MULAW, 2, SAMPLE_RATE, SAMPLE_RATE * stereo_frame, 2, 8, 0
            )
            fact = b"fact" + struct.pack("<II", 4, data_size // stereo_frame)
        chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + fact
        riff_size = 4 + len(chunks) + 8 + data_size + riff_extra
        return (
            b"RIFF"
            + struct.pack("<I", riff_size)
            + b"WAVE"
            + chunks
            + b"data"
            + struct.pack("<I", data_size)
        )

    def header_at_close(self) -> bytes:
        """The header with the final sizes (same length as the first one); before
        :meth:`close` it describes what was written so far."""
        data_size = self._written * FRAME_SAMPLES * self._stereo_frame
        comment = len(_info_chunk(pause_comment(self._pauses))) if self.closed else 0
        return self.header(data_size=data_size, riff_extra=comment)

    # --- inside -----------------------------------------------------------------------

    def _track(self, side: Side | Literal["caller", "agent"], source: str) -> _Track:
        tracks = self._sides[0 if side == Side.CALLER else 1]
        track = tracks.get(source)
        if track is None:
            if len(tracks) >= MAX_SOURCES:
                return next(iter(tracks.values()))  # beyond a conference's size: shares
            track = tracks[source] = _Track(next_slot=self._written)
        return track

    def _all_tracks(self) -> list[_Track]:
        return [*self._sides[0].values(), *self._sides[1].values()]

    def _lowest_next(self) -> int:
        """The lowest next slot of any track; a side not heard yet holds the file back (by
        at most the lag). One track a side, the usual, builds no list (every frame)."""
        left, right = self._sides
        if len(left) == 1 and len(right) == 1:
            ((caller,), (agent,)) = left.values(), right.values()
            return min(caller.next_slot, agent.next_slot)
        if not left or not right:
            return 0
        return min(t.next_slot for t in self._all_tracks())

    def _slot(self, now: float) -> int:
        """``max(0, round((now - start) / FRAME_S))`` (half to even, as ``round``) in
        arithmetic mypyc compiles: the built-ins cost a compiled core 1,200
        instructions a frame."""
        at = (now - self.start) / _FRAME_S
        if not at > 0.0:
            return 0
        slot = int(at)
        rest = at - slot  # exact: a double less its whole part
        return slot + 1 if rest > 0.5 or (rest == 0.5 and slot % 2 == 1) else slot

    def _span(self, start: float, end: float) -> PauseSpan:
        return PauseSpan(round(max(0.0, start - self.start), 2), round(end - self.start, 2))

    def _place(self, track: _Track, samples: bytes, now: float) -> None:
        due = self._slot(now)
        slot = max(track.next_slot, self._written)
        if due > slot + JITTER_SLOTS:
            slot = due  # a gap: the slots between stay silent
        elif slot > due + AHEAD_SLOTS:
            self._dropped += 1
            return
        track.slots[slot] = samples
        track.next_slot = slot + 1

    def _add_codes(self, track: _Track, payload: bytes, law: int, now: float) -> None:
        """Codes off the usual path: a whole frame kept as codes (a new law first turns
        the codes the track holds linear), anything else decoded and cut as samples are."""
        if len(payload) == FRAME_SAMPLES and not track.partial:
            if track.law != law:
                for slot, frame in track.slots.items():
                    if len(frame) == FRAME_SAMPLES:
                        track.slots[slot] = g711.decode(frame, track.law)
                track.law = law
            self._place(track, payload, now)
        else:
            self._place_pieces(track, g711.decode(payload, law), now)

    def _place_pieces(self, track: _Track, samples: bytes, now: float) -> None:
        if not track.partial:
            track.partial_at = now
        data = track.partial + samples[: len(samples) & ~1]
        whole = len(data) - len(data) % FRAME_BYTES
        for at in range(0, whole, FRAME_BYTES):
            self._place(track, data[at : at + FRAME_BYTES], track.partial_at)
            track.partial_at += FRAME_S
        track.partial = data[whole:]

    def _emit(self, until: int) -> bytes:
        """The bytes of slots ``_written`` .. ``until - 1`` (with the header first)."""
        out: list[bytes | bytearray] = [] if self._header_sent else [self.header()]
        self._header_sent = True
        for first in range(self._written, until, BLOCK_SLOTS):
            out.append(self._block(first, min(until, first + BLOCK_SLOTS)))
        self._written = max(self._written, until)
        return b"".join(out)

    def _block(self, first: int, end: int) -> bytearray:
        """Slots ``first`` .. ``end - 1`` interleaved: per side its lanes (the samples'
        low and high bytes, or mu-law codes), laid in at a stride (C loops, not Python)."""
        count = (end - first) * FRAME_SAMPLES
        pcm = self.encoding is Encoding.PCM16
        left = _lanes(self._sides[0], first, end, pcm)
        right = _lanes(self._sides[1], first, end, pcm)
        if pcm:
            out = bytearray(4 * count)  # a missing side: zeros
            if left is not None:
                out[0::4], out[1::4] = left
            if right is not None:
                out[2::4], out[3::4] = right
        else:
            out = bytearray(_ULAW_SILENCE[:1]) * (2 * count)
            if left is not None:
                out[0::2] = left[0]
            if right is not None:
                out[1::2] = right[0]
        return out


def _lanes(tracks: dict[str, _Track], first: int, end: int, pcm: bool) -> tuple[bytes, ...] | None:
    """A side's slots ``first`` .. ``end - 1`` (taken out of its tracks): for 16-bit PCM
    the low bytes and the high bytes of its samples, for mu-law its codes; None when the
    side has no frame there. The usual, one speaker sending 20 ms codes: two translates."""
    if not tracks:
        return None  # not heard yet (a message's right side: never)
    if len(tracks) == 1:
        (track,) = tracks.values()
        pop, law = track.slots.pop, track.law
        frames: list[bytes | None] = [pop(slot, None) for slot in range(first, end)]
        if law == g711.PCMU and None in frames:  # a gap: codes whose samples are 0
            frames = [_ULAW_SILENCE if f is None else f for f in frames]
        if None not in frames:
            codes = b"".join(cast("list[bytes]", frames))
            if len(codes) == (end - first) * FRAME_SAMPLES:  # every frame codes of law
                return g711.decode_lanes(codes, law) if pcm else (g711.to_ulaw(codes, law),)
        linear = [None if f is None else _linear(f, law) for f in frames]
    else:
        linear = [_mixed(tracks, slot) for slot in range(first, end)]
    if all(f is None for f in linear):
        return None
    joined = b"".join(bytes(FRAME_BYTES) if f is None else f for f in linear)
    return (joined[0::2], joined[1::2]) if pcm else (g711.linear_to_ulaw(joined),)


def _linear(frame: bytes, law: int) -> bytes:
    """A slot's frame as linear samples (held as codes: decoded)."""
    return g711.decode(frame, law) if len(frame) == FRAME_SAMPLES else frame


def _mixed(tracks: dict[str, _Track], slot: int) -> bytes | None:
    """The side's frame at ``slot`` as linear samples: its one speaker's, or the sum of
    several (clipped)."""
    frames = [
        _linear(f, t.law) for t in tracks.values() if (f := t.slots.pop(slot, None)) is not None
    ]
    if len(frames) <= 1:
        return frames[0] if frames else None
    total = [sum(column) for column in zip(*(g711.samples(f) for f in frames), strict=True)]
    return g711.to_bytes(array("h", (max(-32768, min(32767, v)) for v in total)))
