"""Helpers of the media tests: a recording's channels, and a stand-in for tests/audio.py
(Goertzel) until it lands."""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence

from telephony_adapters.media import g711
from telephony_adapters.media.player import FORMAT_MULAW, read_wav_layout


def tone_share(samples: Sequence[int], freq: float, rate: int = 8000) -> float:
    """The share (0..1) of the samples' power at ``freq`` (Goertzel)."""
    n = len(samples)
    k = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for v in samples:
        s1, s2 = v + k * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - k * s1 * s2
    total = sum(v * v for v in samples)
    return 2 * power / (n * total) if total else 0.0


def channels(data: bytes) -> tuple[array[int], array[int]]:
    """Left and right samples of a stereo WAV (16-bit or mu-law), sizes checked."""
    layout = read_wav_layout(data, "rec.wav")
    body = data[layout.data_offset : layout.data_offset + layout.data_size]
    assert len(body) == layout.data_size
    if layout.format_tag == FORMAT_MULAW:
        body = g711.ulaw_to_linear(body)
    samples = g711.samples(body)
    return samples[0::2], samples[1::2]
