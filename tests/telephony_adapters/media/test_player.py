"""Frame sources: WAV clips (PCM, mu-law, A-law), looping and one-shot, refusals, tones,
and the shipped music on hold."""

from __future__ import annotations

import importlib.util
import io
import math
import re
import struct
import wave
from array import array
from pathlib import Path

import pytest

from telephony_adapters.media import g711
from telephony_adapters.media.player import (
    FRAME_BYTES,
    FRAME_SAMPLES,
    MAX_WAV_BYTES,
    Clip,
    ClipPlayer,
    ToneSource,
    WavError,
    read_wav_layout,
    shipped_clip,
)
from tests.audio import tone_power_ratio

ROOT = Path(__file__).resolve().parents[3]


def pcm_wav(samples: list[int], *, channels: int = 1, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(g711.to_bytes_list(samples))
    return out.getvalue()


def g711_wav(codes: bytes, tag: int, *, extra: bytes = b"") -> bytes:
    """A G.711 WAV as made by sox: fmt with cbSize, a fact chunk, then data."""
    fmt = struct.pack("<HHIIHHH", tag, 1, 8000, 8000, 1, 8, 0)
    body = (
        b"fmt " + struct.pack("<I", len(fmt)) + fmt
        + b"fact" + struct.pack("<II", 4, len(codes))
        + extra
        + b"data" + struct.pack("<I", len(codes)) + codes
    )  # fmt: skip
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body


def frames(source: ClipPlayer | ToneSource, count: int) -> list[bytes | None]:
    return [source.next_frame(i * 0.02) for i in range(count)]


def test_a_one_shot_clip_plays_once_padded_then_ends() -> None:
    samples = [(i % 200) - 100 for i in range(400)]  # 2.5 frames
    clip = Clip.from_wav_bytes(pcm_wav(samples), "prompt.wav")
    player = ClipPlayer(clip, loop=False)
    got = frames(player, 5)
    assert [f is None for f in got] == [False, False, False, True, True]
    played = b"".join(f for f in got if f is not None)
    assert len(played) == 3 * FRAME_BYTES
    assert list(g711.samples(played)) == samples + [0] * 80
    assert player.finished


@pytest.mark.parametrize("length", [50, 160, 250, 1000])
def test_a_looping_clip_runs_on_seamlessly(length: int) -> None:
    samples = [(i * 37) % 2000 - 1000 for i in range(length)]
    player = ClipPlayer(Clip.from_wav_bytes(pcm_wav(samples), "music.wav"), loop=True)
    got = frames(player, 20)
    assert all(f is not None and len(f) == FRAME_BYTES for f in got)
    played = list(g711.samples(b"".join(f for f in got if f is not None)))
    assert played == (samples * (20 * FRAME_SAMPLES // length + 1))[: 20 * FRAME_SAMPLES]
    assert not player.finished


def test_players_of_one_clip_keep_their_own_place() -> None:
    clip = Clip.from_wav_bytes(pcm_wav(list(range(1000))), "music.wav")
    first, second = ClipPlayer(clip, loop=True), ClipPlayer(clip, loop=True)
    a = frames(first, 3)
    assert second.next_frame(0.0) == a[0]


@pytest.mark.parametrize(("tag", "decode"), [(7, g711.ULAW_DECODE), (6, g711.ALAW_DECODE)])
def test_g711_wavs_are_decoded(tag: int, decode: tuple[int, ...]) -> None:
    codes = bytes(range(256)) * 2
    data = g711_wav(codes, tag, extra=b"LIST" + struct.pack("<I", 5) + b"INFOx\0")  # odd chunk
    clip = Clip.from_wav_bytes(data, "law.wav")
    assert list(g711.samples(clip.pcm)) == [decode[c] for c in codes]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"hello, not a wave at all", "not a WAV file"),
        (pcm_wav([0] * 100, channels=2), "2 channel(s), 8000 Hz, 16 bits"),
        (pcm_wav([0] * 100, rate=16000), "1 channel(s), 16000 Hz"),
        (g711_wav(b"\x01" * 10, 3), "format tag 3 is not supported"),
        (pcm_wav([]), "holds no samples"),
        (b"RIFF\x04\x00\x00\x00WAVE", "no fmt chunk"),
        (pcm_wav([1, 2, 3])[:36], "no data chunk"),
        (pcm_wav([1, 2, 3])[:30], "fmt chunk too short"),
    ],
    ids=["text", "stereo", "16kHz", "float", "empty", "no-fmt", "no-data", "short-fmt"],
)
def test_bad_files_are_refused_naming_the_file_and_the_fault(data: bytes, reason: str) -> None:
    with pytest.raises(WavError, match=re.escape(reason)) as exc:
        Clip.from_wav_bytes(data, "queue-music.wav")
    assert str(exc.value).startswith("queue-music.wav: ")


def test_files_are_read_once_and_bounded(tmp_path: Path) -> None:
    path = tmp_path / "music.wav"
    path.write_bytes(pcm_wav([5] * 8000))
    assert Clip.from_file(path).duration_s == 1.0
    with pytest.raises(WavError, match=f"{path}: larger than 1000 bytes"):
        Clip.from_file(path, max_bytes=1000)
    with pytest.raises(WavError, match=r"missing\.wav: cannot be read"):
        Clip.from_file(tmp_path / "missing.wav")
    assert MAX_WAV_BYTES >= 1024 * 1024


@pytest.mark.parametrize("freq", [440.0, 1000.0, 2400.0])
def test_a_tone_is_that_tone_and_continuous(freq: float) -> None:
    tone = ToneSource(freq, 0.25)
    played = array("h")
    for f in frames(tone, 10):
        assert f is not None
        played += g711.samples(f)
    assert tone_power_ratio(played, freq) > 0.95
    expected = [round(0.25 * 32767 * math.sin(2 * math.pi * freq * n / 8000)) for n in range(1600)]
    assert list(played) == expected  # no phase jump at the frame edges
    assert max(map(abs, played)) <= 0.25 * 32767 + 1


def test_a_tone_with_a_duration_ends() -> None:
    got = frames(ToneSource(800, 0.5, duration_s=0.1), 7)
    assert [f is None for f in got] == [False] * 5 + [True] * 2


@pytest.mark.parametrize(("freq", "amp"), [(0.0, 0.5), (4000.0, 0.5), (440.0, 1.5), (440, -0.1)])
def test_a_tone_out_of_range_is_refused(freq: float, amp: float) -> None:
    with pytest.raises(ValueError, match="tone"):
        ToneSource(freq, amp)


def test_the_shipped_hold_music_is_a_clip_that_loops() -> None:
    clip = shipped_clip()
    assert 20 <= clip.duration_s <= 30
    layout = read_wav_layout((ROOT / "telephony_adapters/media/sounds/hold_music.wav").read_bytes(),
                             "hold_music.wav")  # fmt: skip
    assert (layout.format_tag, layout.channels, layout.sample_rate, layout.bits) == (1, 1, 8000, 16)
    player = ClipPlayer(clip, loop=True)
    n = round(clip.duration_s / 0.02) + 5
    assert all(f is not None for f in frames(player, n))
    samples = g711.samples(clip.pcm)
    assert 4000 < max(map(abs, samples)) < 32767  # audible, not clipped
    assert abs(samples[-1] - samples[0]) < 2000  # no click at the loop


def test_the_hold_music_is_what_the_script_makes() -> None:
    spec = importlib.util.spec_from_file_location(
        "make_hold_music", ROOT / "deploy/make_hold_music.py"
    )
    assert spec is not None
    assert spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    made = script.render()
    shipped = g711.samples(shipped_clip().pcm)
    assert len(made) == len(shipped)
    assert max(abs(a - b) for a, b in zip(made, shipped, strict=True)) <= 1  # libm rounding
