"""Make the shipped music on hold: telephony_adapters/media/sounds/hold_music.wav.

A royalty-free piece made here, reproducibly (no randomness): eight bars of a I-vi-IV-V
progression in C at 80 beats a minute, an arpeggio of soft plucked sines over a quiet
sustained chord, 8 kHz mono 16-bit, 24 s. Every note starts and ends at zero and the
last ones ring on at the start, so the file loops without a click. Notes sit in the
telephone band (C4 to C6).

    python deploy/make_hold_music.py [OUT.wav]
"""

from __future__ import annotations

import math
import sys
import wave
from array import array
from pathlib import Path

RATE = 8000
BEAT_S = 60 / 80
BAR_S = 4 * BEAT_S
#: Chords as semitones above C4: C, Am, F, G, C, Am, Dm, G.
PROGRESSION = (
    (0, 4, 7),
    (-3, 0, 4),
    (-7, -3, 0),
    (-5, -1, 2),
    (0, 4, 7),
    (-3, 0, 4),
    (-10, -7, -3),
    (-5, -1, 2),
)
#: Arpeggio over each bar in eighths: chord tone index, octave up.
PATTERN = ((0, 1), (1, 1), (2, 1), (0, 2), (2, 1), (1, 1), (0, 1), (2, 0))
OUT = Path(__file__).resolve().parent.parent / "telephony_adapters/media/sounds/hold_music.wav"


def hz(semitones: float) -> float:
    return 261.6256 * 2 ** (semitones / 12)


def add_note(buf: list[float], start_s: float, length_s: float, freq: float, level: float,
             attack_s: float) -> None:  # fmt: skip
    """A sine with its octave, a soft attack and a fade to silence; a note past the end
    rings on at the start, so the loop is seamless."""
    first = round(start_s * RATE)
    count = round(length_s * RATE)
    attack = max(1, round(attack_s * RATE))
    step = 2 * math.pi * freq / RATE
    for i in range(count):
        env = min(1.0, i / attack) * math.exp(-3.0 * i / count) * (1 - i / count)
        buf[(first + i) % len(buf)] += (
            level * env * (math.sin(step * i) + 0.25 * math.sin(2 * step * i))
        )


def render() -> array[int]:
    total_s = BAR_S * len(PROGRESSION)
    buf = [0.0] * round(total_s * RATE)
    eighth = BEAT_S / 2
    for bar, chord in enumerate(PROGRESSION):
        start = bar * BAR_S
        for tone in chord:  # the pad: the whole bar, slow attack
            add_note(buf, start, BAR_S, hz(tone), 0.05, attack_s=0.4)
        for n, (index, octave) in enumerate(PATTERN):
            note = chord[index] + 12 * (octave - 1)
            add_note(buf, start + n * eighth, 2 * eighth, hz(note), 0.22, attack_s=0.01)
    peak = max(abs(v) for v in buf)
    scale = 0.5 * 32767 / peak  # -6 dBFS: room for the codec
    return array("h", (round(v * scale) for v in buf))


def write(path: Path) -> None:
    samples = render()
    if sys.byteorder == "big":
        samples.byteswap()
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(samples.tobytes())


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    write(target)
    print(f"wrote {target}")
