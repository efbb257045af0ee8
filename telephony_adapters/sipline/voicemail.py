"""A caller's message (voicemail), sans-I/O: the caller's side alone of a
:class:`~telephony_adapters.media.recorder.Recorder`, written as a mono WAV in the
format of the line's call recordings (16-bit PCM or mu-law).

The recorder is used as it is (only its caller side is fed): its stereo bytes are cut
to their left channel as they come, its header is replaced by a mono one (the
placeholder first, the final sizes at close) and its closing ``LIST/INFO`` chunk is
kept. :func:`message_path` checks the path the engine names (relative to the
recordings folder, never out of it).
"""

from __future__ import annotations

import dataclasses
import struct
from array import array
from pathlib import Path, PurePosixPath

from telephony_adapters.media.player import FORMAT_MULAW, FORMAT_PCM, SAMPLE_RATE
from telephony_adapters.media.recorder import Encoding, Recorder, RecordingSummary, Side

MESSAGE_LEG = "#message"
"""The leg part of a message's tap id (``<call id>|#message``): no leg is named so."""


class MessagePathError(ValueError):
    """A message path that cannot name a file in the recordings folder."""


def message_path(root: Path, path: str) -> Path:
    """``root / path``, or :class:`MessagePathError` saying why ``path`` is refused."""
    parts = PurePosixPath(path).parts
    if not path or path.startswith(("/", "\\")) or ".." in parts or "\\" in path:
        raise MessagePathError(
            f"message path {path[:80]!r} must be relative to the recordings folder, without '..'"
        )
    if any(not ch.isprintable() for ch in path) or path.endswith("/"):
        raise MessagePathError(f"message path {path[:80]!r} does not name a file")
    return root.joinpath(*parts)


def mono_header(encoding: Encoding, data_size: int, riff_extra: int = 0) -> bytes:
    """A mono 8 kHz WAV header (``fmt``, ``fact`` for mu-law, the ``data`` chunk's
    header) for ``data_size`` bytes of samples and ``riff_extra`` bytes after them."""
    if encoding is Encoding.PCM16:
        fmt = struct.pack("<HHIIHH", FORMAT_PCM, 1, SAMPLE_RATE, 2 * SAMPLE_RATE, 2, 16)
        fact = b""
    else:
        fmt = struct.pack("<HHIIHHH", FORMAT_MULAW, 1, SAMPLE_RATE, SAMPLE_RATE, 1, 8, 0)
        fact = b"fact" + struct.pack("<II", 4, data_size)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + fact
    riff_size = 4 + len(chunks) + 8 + data_size + riff_extra
    sizes = struct.pack("<I", riff_size), struct.pack("<I", data_size)
    return b"RIFF" + sizes[0] + b"WAVE" + chunks + b"data" + sizes[1]


class MonoRecorder:
    """The caller's voice alone, started at ``start`` (the shell's clock): frames in
    with their time, mono WAV bytes out (:meth:`tick`, :meth:`close`)."""

    def __init__(self, start: float, encoding: Encoding = Encoding.PCM16) -> None:
        self.encoding = encoding
        self._recorder = Recorder(start, encoding)
        self._stereo_header = len(self._recorder.header())
        self._header_sent = False
        self._written = 0  # bytes of mono samples handed out
        self._info = 0  # bytes of the comment chunk, once closed

    def add(self, samples: bytes, at: float) -> None:
        """Linear 16-bit samples the caller said, the first at ``at``."""
        self._recorder.add(Side.CALLER, samples, at, emit=False)

    def tick(self, now: float) -> bytes:
        """The mono bytes ready by ``now`` (the header placeholder first)."""
        return self._mono(self._recorder.tick(now))

    def close(self, now: float) -> RecordingSummary:
        """The last bytes (samples, then the recorder's comment chunk) and the final
        mono header; closing twice hands back no more bytes."""
        summary = self._recorder.close(now)
        tail = summary.tail
        comment = tail.rfind(b"LIST")  # the chunk after the samples (none in it)
        samples, info = (tail[:comment], tail[comment:]) if comment >= 0 else (tail, b"")
        mono = self._mono(samples) + info
        self._info += len(info)
        header = mono_header(self.encoding, self._written, self._info)
        return dataclasses.replace(summary, tail=mono, header=header)

    def _mono(self, stereo: bytes) -> bytes:
        if not stereo:
            return b""
        head = b""
        if not self._header_sent:
            self._header_sent = True
            stereo = stereo[self._stereo_header :]
            head = mono_header(self.encoding, 0)
        if self.encoding is Encoding.PCM16:
            left = array("h", stereo[: len(stereo) & ~3])[0::2].tobytes()  # raw, no byte order
        else:
            left = stereo[0::2]
        self._written += len(left)
        return head + left
