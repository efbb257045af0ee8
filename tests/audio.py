"""Audio analysis for the tests: tones made with math.sin, found with the Goertzel filter.

``goertzel`` gives the power of one frequency in a block of samples; ``tone_power_ratio``
the share of the block's energy at that frequency (about 1.0 for a pure tone there, near
0 for one far from it), which is what a test asserts: "this side heard that tone".
Frequencies that fit a whole number of cycles in the block give the cleanest figures
(a block of 160 samples at 8 kHz: multiples of 50 Hz).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from telephony_adapters.media import g711

RATE = 8000


def tone(
    freq: float, count: int, *, amplitude: int = 8000, start: int = 0, rate: int = RATE
) -> list[int]:
    """``count`` samples of a sine from sample ``start`` on (frames of one tone join up)."""
    return [
        round(amplitude * math.sin(2 * math.pi * freq * (start + i) / rate)) for i in range(count)
    ]


def tone_frame(freq: float, index: int, *, amplitude: int = 8000) -> bytes:
    """Frame ``index`` (20 ms, 160 samples, 16-bit little-endian) of a continuous tone."""
    return g711.to_bytes_list(
        tone(freq, g711.FRAME_SAMPLES, amplitude=amplitude, start=index * g711.FRAME_SAMPLES)
    )


def goertzel(samples: Sequence[float], freq: float, rate: int = RATE) -> float:
    """The power |X(f)|^2 of ``samples`` at ``freq``."""
    coeff = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    return s1 * s1 + s2 * s2 - coeff * s1 * s2


def tone_power_ratio(samples: Sequence[float], freq: float, rate: int = RATE) -> float:
    """The share of the energy of ``samples`` at ``freq`` (0.0 for silence)."""
    energy = sum(x * x for x in samples)
    if not samples or energy == 0:
        return 0.0
    return 2 * goertzel(samples, freq, rate) / (len(samples) * energy)
