"""Frame sources for the media core: a WAV clip (music on hold, prompts), clips in a
row (:class:`SequencePlayer`, a prompt said in parts) and a tone.

Sans-I/O: a source hands out 20 ms frames of 160 linear 16-bit samples (320 bytes,
little-endian) from ``next_frame(now)``, the bridge's ``FrameSource`` protocol, and
``None`` once a one-shot source is over. A WAV file is read once, bounded in size, and
decoded to linear PCM (:class:`Clip`); each leg plays it with its own cursor
(:class:`ClipPlayer`), so one music file serves every held caller.

Accepted files: 8 kHz mono, 16-bit PCM (format 1), or G.711 mu-law (7) / A-law (6) at
8 bits. Anything else is refused with a :class:`WavError` that names the file and what
is wrong with it.
"""

from __future__ import annotations

import math
import struct
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from telephony_adapters.media import g711

SAMPLE_RATE = g711.RATE
FRAME_SAMPLES = g711.FRAME_SAMPLES
FRAME_BYTES = g711.FRAME_BYTES
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
SILENCE_FRAME = bytes(FRAME_BYTES)
#: The largest WAV file a clip is read from: 8 MiB, over 8 minutes of 16-bit audio.
MAX_WAV_BYTES = 8 * 1024 * 1024

FORMAT_PCM = 1
FORMAT_ALAW = 6
FORMAT_MULAW = 7
_FORMAT_NAMES = {FORMAT_PCM: "16-bit PCM", FORMAT_ALAW: "A-law", FORMAT_MULAW: "mu-law"}
_BITS = {FORMAT_PCM: 16, FORMAT_ALAW: 8, FORMAT_MULAW: 8}


class WavError(ValueError):
    """A WAV file that cannot be played or read: the message names the file and why."""


@dataclass(frozen=True, slots=True)
class WavLayout:
    """What a WAV header says: the format and where the samples are."""

    format_tag: int
    channels: int
    sample_rate: int
    bits: int
    data_offset: int
    data_size: int

    @property
    def bytes_per_second(self) -> int:
        return self.sample_rate * self.channels * self.bits // 8

    @property
    def duration_s(self) -> float:
        rate = self.bytes_per_second
        return self.data_size / rate if rate else 0.0


def read_wav_layout(data: bytes, name: str) -> WavLayout:
    """The format and data chunk of the WAV bytes ``data`` (``name`` is for errors).

    Only the header is needed: a data chunk that runs past ``data`` (a file still being
    written, or just the first bytes read) is reported with the size it claims.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError(f"{name}: not a WAV file (no RIFF/WAVE header)")
    fmt: tuple[int, int, int, int] | None = None
    pos = 12
    while pos + 8 <= len(data):
        chunk_id, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = pos + 8
        if chunk_id == b"fmt ":
            if size < 16 or body + 16 > len(data):
                raise WavError(f"{name}: fmt chunk too short ({size} bytes, needs 16)")
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise WavError(f"{name}: data chunk before the fmt chunk")
            return WavLayout(*fmt, data_offset=body, data_size=size)
        pos = body + size + (size & 1)  # chunks are word-aligned
    raise WavError(f"{name}: no data chunk" if fmt else f"{name}: no fmt chunk")


def _check_playable(layout: WavLayout, name: str) -> None:
    tag = layout.format_tag
    if tag not in _FORMAT_NAMES:
        raise WavError(
            f"{name}: WAV format tag {tag} is not supported "
            "(use 16-bit PCM (1), A-law (6) or mu-law (7))"
        )
    wanted = (1, SAMPLE_RATE, _BITS[tag])
    got = (layout.channels, layout.sample_rate, layout.bits)
    if got != wanted:
        raise WavError(
            f"{name}: {got[0]} channel(s), {got[1]} Hz, {got[2]} bits; a {_FORMAT_NAMES[tag]} "
            f"clip must be mono, {SAMPLE_RATE} Hz, {wanted[2]} bits (convert it, e.g. "
            "`sox IN -r 8000 -c 1 -b 16 OUT.wav`)"
        )


@dataclass(frozen=True, slots=True)
class Clip:
    """Decoded audio: 8 kHz mono linear 16-bit, little-endian bytes."""

    pcm: bytes
    name: str

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / 2 / SAMPLE_RATE

    @classmethod
    def from_wav_bytes(cls, data: bytes, name: str) -> Clip:
        layout = read_wav_layout(data, name)
        _check_playable(layout, name)
        body = data[layout.data_offset : layout.data_offset + layout.data_size]
        if layout.format_tag == FORMAT_MULAW:
            pcm = g711.ulaw_to_linear(body)
        elif layout.format_tag == FORMAT_ALAW:
            pcm = g711.alaw_to_linear(body)
        else:
            pcm = body[: len(body) & ~1]
        if not pcm:
            raise WavError(f"{name}: the data chunk holds no samples")
        return cls(pcm, name)

    @classmethod
    def from_file(cls, path: str | Path, *, max_bytes: int = MAX_WAV_BYTES) -> Clip:
        """Read ``path`` once (at most ``max_bytes``) and decode it."""
        try:
            with open(path, "rb") as handle:
                data = handle.read(max_bytes + 1)
        except OSError as exc:
            raise WavError(f"{path}: cannot be read ({exc.strerror or exc})") from None
        if len(data) > max_bytes:
            raise WavError(f"{path}: larger than {max_bytes} bytes; shorten the clip")
        return cls.from_wav_bytes(data, str(path))


class ClipPlayer:
    """One leg's cursor over a :class:`Clip`: endless (``loop=True``, music) or one-shot.

    ``now`` is taken for the ``FrameSource`` protocol; frames follow one another
    whatever the time, so a late tick never skips audio.
    """

    def __init__(self, clip: Clip, *, loop: bool) -> None:
        self.clip = clip
        self.loop = loop
        self._pos = 0
        # A looping clip shorter than a frame still fills whole frames.
        self._pcm = clip.pcm * (-(-FRAME_BYTES // len(clip.pcm))) if loop else clip.pcm

    @property
    def finished(self) -> bool:
        return not self.loop and self._pos >= len(self._pcm)

    def next_frame(self, now: float) -> bytes | None:
        pcm, pos = self._pcm, self._pos
        if pos >= len(pcm):
            if not self.loop:
                return None
            pos = 0
        frame = pcm[pos : pos + FRAME_BYTES]
        pos += FRAME_BYTES
        if len(frame) < FRAME_BYTES:
            rest = FRAME_BYTES - len(frame)
            if self.loop:  # wrap around: the end runs into the start
                frame += pcm[:rest]
                pos = rest
            else:
                frame += bytes(rest)
        self._pos = pos
        return frame


class SequencePlayer:
    """Clips played once, one after the other with no gap between them (a prompt said
    in parts: "you are caller number" "twelve"), then ``None``; the last frame is padded
    with silence. No clips: over at once."""

    def __init__(self, clips: Sequence[Clip]) -> None:
        self.clips = tuple(clips)
        self._index = 0
        self._pos = 0

    @property
    def finished(self) -> bool:
        return self._index >= len(self.clips)

    def next_frame(self, now: float) -> bytes | None:
        if self.finished:
            return None
        parts: list[bytes] = []
        need = FRAME_BYTES
        while need and self._index < len(self.clips):
            pcm = self.clips[self._index].pcm
            part = pcm[self._pos : self._pos + need]
            parts.append(part)
            need -= len(part)
            self._pos += len(part)
            if self._pos >= len(pcm):
                self._index, self._pos = self._index + 1, 0
        return b"".join(parts) + bytes(need)


class ToneSource:
    """A sine tone (``frequency`` Hz, ``amplitude`` 0..1 of full scale), endless or
    lasting ``duration_s`` (then ``None``), for tests and beeps. The phase runs on from
    frame to frame, so the tone has no clicks at frame edges."""

    def __init__(
        self, frequency: float, amplitude: float = 0.5, *, duration_s: float | None = None
    ) -> None:
        if not 0 < frequency < SAMPLE_RATE / 2:
            raise ValueError(f"tone frequency {frequency} Hz: must be in (0, {SAMPLE_RATE // 2})")
        if not 0 <= amplitude <= 1:
            raise ValueError(f"tone amplitude {amplitude}: must be in [0, 1]")
        self.frequency = frequency
        self.amplitude = amplitude
        self._step = 2 * math.pi * frequency / SAMPLE_RATE
        self._peak = amplitude * 32767
        self._n = 0
        self._frames_left = None if duration_s is None else max(0, round(duration_s / FRAME_S))

    def next_frame(self, now: float) -> bytes | None:
        if self._frames_left is not None:
            if self._frames_left == 0:
                return None
            self._frames_left -= 1
        n, step, peak = self._n, self._step, self._peak
        samples = array("h", (round(peak * math.sin(step * (n + i))) for i in range(FRAME_SAMPLES)))
        self._n = n + FRAME_SAMPLES
        return g711.to_bytes(samples)


HOLD_MUSIC = "hold_music.wav"


def shipped_clip(name: str = HOLD_MUSIC) -> Clip:
    """A sound shipped in ``telephony_adapters/media/sounds`` (package data), such as
    the default music on hold (made by deploy/make_hold_music.py)."""
    sound = resources.files("telephony_adapters.media").joinpath("sounds", name)
    try:
        data = sound.read_bytes()
    except OSError as exc:
        raise WavError(f"shipped sound {name}: cannot be read ({exc})") from None
    return Clip.from_wav_bytes(data, f"shipped sound {name}")
