"""Stand-in for tests/audio.py until it lands: Goertzel tone level of 16-bit samples."""

from __future__ import annotations

import math
from collections.abc import Sequence


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
