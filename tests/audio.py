"""Audio analysis for the tests: tones made with math.sin, found with the Goertzel filter.

``goertzel`` gives the power of one frequency in a block of samples; ``tone_power_ratio``
the share of the block's energy at that frequency (about 1.0 for a pure tone there, near
0 for one far from it), which is what a test asserts: "this side heard that tone".
Frequencies that fit a whole number of cycles in the block give the cleanest figures
(a block of 160 samples at 8 kHz: multiples of 50 Hz).

``find_clip`` and ``find_clips`` find prompt clips (speech) in what a phone heard, by
normalised cross-correlation (numpy, which matplotlib, a dependency, brings).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

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


# --- finding a prompt clip in what a phone heard ----------------------------------------

Samples = Sequence[int] | Sequence[float] | NDArray[np.float64]


def find_clip(
    received: Samples,
    clip: Samples,
    *,
    start: int = 0,
    min_score: float = 0.9,
    chunk_s: float = 0.1,
    slack_s: float = 0.03,
    most_missed: float = 0.2,
    rate: int = RATE,
) -> int | None:
    """Where ``clip`` begins in ``received`` (a sample offset at or after ``start``), or
    None when it was not heard whole.

    By normalised cross-correlation, piece by piece: the clip is cut in pieces of
    ``chunk_s``; the loudest piece is looked for everywhere, and from each place it
    matches (score >= ``min_score``, 1.0 being the same waveform at any gain), every other
    piece that is not silence must match within ``slack_s`` of where it should be (a
    frame lost or stretched on the way moves what follows), all but ``most_missed`` of
    them. G.711 costs about 0.001 of the score; another word or another voice scores
    far below 0.9."""
    heard = np.asarray(received, dtype=np.float64)
    wanted = np.asarray(clip, dtype=np.float64)
    size = max(1, round(chunk_s * rate))
    slack = round(slack_s * rate)
    pieces = _voiced_pieces(wanted, size)
    if not pieces or len(heard) < len(wanted) - slack:
        return None
    anchor = max(
        pieces, key=lambda at: float(np.dot(wanted[at : at + size], wanted[at : at + size]))
    )
    scores = _ncc(heard, wanted[anchor : anchor + size])
    for found in _peaks(scores, min_score, size):
        begin = _follows(heard, wanted, found - anchor, pieces, size, slack, min_score,
                         most_missed)  # fmt: skip
        if begin is not None and begin >= start:
            return begin
    return None


def find_clips(
    received: Samples, clips: Sequence[Samples], *, start: int = 0, gap_s: float = 0.1,
    rate: int = RATE,
) -> list[int] | None:  # fmt: skip
    """Where ``clips`` begin in ``received``, heard one right after the other (each within
    ``gap_s`` of the end of the one before, as a prompt of several clips plays them), the
    first such run at or after ``start``; None if there is none."""
    gap = round(gap_s * rate)
    at = start
    while (first := find_clip(received, clips[0], start=at, rate=rate)) is not None:
        places = [first]
        for before, clip in itertools.pairwise(clips):
            expected = places[-1] + len(before)
            lo = max(0, expected - gap)
            near = received[lo : expected + gap + len(clip) + rate // 10]  # only there
            found = find_clip(near, clip, rate=rate)
            if found is None or lo + found > expected + gap:
                break
            places.append(lo + found)
        else:
            return places
        at = first + 1
    return None


def _voiced_pieces(clip: NDArray[np.float64], size: int) -> list[int]:
    """Offsets of the clip's pieces of ``size`` that are not (nearly) silent."""
    starts = range(0, len(clip) - size + 1, size)
    power = [float(np.dot(clip[at : at + size], clip[at : at + size])) / size for at in starts]
    loudest = max(power, default=0.0)
    if loudest <= 1.0:
        return []
    return [at for at, p in zip(starts, power, strict=True) if p >= 0.01 * loudest]


def _ncc(heard: NDArray[np.float64], piece: NDArray[np.float64]) -> NDArray[np.float64]:
    """The normalised correlation of ``piece`` at every offset of ``heard`` (0 where
    ``heard`` is silent)."""
    n = len(piece)
    count = len(heard) - n + 1
    if count <= 0:
        return np.zeros(0)
    length = 1 << (len(heard) + n).bit_length()
    corr = np.fft.irfft(np.fft.rfft(heard, length) * np.conj(np.fft.rfft(piece, length)), length)
    energy = np.concatenate(([0.0], np.cumsum(heard * heard)))
    window = energy[n : n + count] - energy[:count]
    norm = np.sqrt(np.maximum(window, 0.0) * float(np.dot(piece, piece)))
    quiet = norm < 1e-6 * max(1.0, float(norm.max(initial=0.0)))
    return np.where(quiet, 0.0, corr[:count] / np.where(quiet, 1.0, norm))


def _peaks(scores: NDArray[np.float64], min_score: float, apart: int) -> list[int]:
    """The best offset of each run of scores >= ``min_score`` (runs ``apart`` apart), in
    order."""
    above = np.flatnonzero(scores >= min_score)
    peaks: list[int] = []
    run_start = 0
    for i in range(1, len(above) + 1):
        if i == len(above) or above[i] - above[i - 1] > apart:
            run = above[run_start:i]
            peaks.append(int(run[np.argmax(scores[run])]))
            run_start = i
    return peaks


def _follows(
    heard: NDArray[np.float64], clip: NDArray[np.float64], begin: int, pieces: list[int],
    size: int, slack: int, min_score: float, most_missed: float,
) -> int | None:  # fmt: skip
    """Where the clip begins if its pieces are heard from about ``begin`` on, each near
    where it should be (the shift of the last one found carried on), else None."""
    shift = 0
    missed = 0
    first: int | None = None
    for at in pieces:
        lo = max(0, begin + at + shift - slack)
        hi = min(len(heard) - size, begin + at + shift + slack)
        if hi < lo:
            return None  # not heard yet (the recording ends before it)
        piece = clip[at : at + size]
        windows = np.lib.stride_tricks.sliding_window_view(heard[lo : hi + size], size)
        norms = np.sqrt(np.einsum("ij,ij->i", windows, windows) * float(np.dot(piece, piece)))
        scores = np.where(norms > 0, windows @ piece / np.where(norms > 0, norms, 1.0), 0.0)
        best = int(np.argmax(scores))
        if scores[best] >= min_score:
            shift = lo + best - (begin + at)
            first = begin + shift if first is None else first
        else:
            missed += 1
    return first if missed <= most_missed * len(pieces) else None
