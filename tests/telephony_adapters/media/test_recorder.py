"""The stereo recorder on virtual time: channels, the 20 ms grid, gaps, pauses, formats,
and the WAV it writes (placeholder header patched at close, the pause comment)."""

from __future__ import annotations

import io
import random
import struct
import wave
from typing import Literal

import pytest

from telephony_adapters.media import g711
from telephony_adapters.media.player import FRAME_BYTES, ToneSource, read_wav_layout
from telephony_adapters.media.recorder import (
    Encoding,
    PauseSpan,
    Recorder,
    RecordingSummary,
    Side,
)
from tests.audio import tone_power_ratio
from tests.telephony_adapters.media._recordings import channels

T0 = 1000.0


class Shell:
    """What the I/O shell does: append every byte, then patch the header at offset 0."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.out = bytearray()

    def add(self, side: Side | Literal["caller", "agent"], frame: bytes, now: float) -> None:
        self.out += self.recorder.add(side, frame, now)

    def tick(self, now: float) -> None:
        self.out += self.recorder.tick(now)

    def close(self, now: float) -> tuple[bytes, RecordingSummary]:
        summary = self.recorder.close(now)
        self.out += summary.tail
        assert len(summary.header) == len(self.recorder.header())
        self.out[: len(summary.header)] = summary.header
        return bytes(self.out), summary


def comment(data: bytes) -> str:
    at = data.rindex(b"ICMT")
    (size,) = struct.unpack_from("<I", data, at + 4)
    return data[at + 8 : at + 8 + size].rstrip(b"\0").decode()


def frame_of(value: int) -> bytes:
    return g711.to_bytes_list([value] * 160)


def tone(freq: float) -> ToneSource:
    return ToneSource(freq, 0.3)


def test_caller_on_the_left_agent_on_the_right() -> None:
    shell = Shell(Recorder(T0))
    caller, agent = tone(600), tone(1500)
    for i in range(50):
        now = T0 + i * 0.02
        shell.add(Side.CALLER, caller.next_frame(now) or b"", now + 0.003)
        shell.add(Side.AGENT, agent.next_frame(now) or b"", now + 0.011)
    data, summary = shell.close(T0 + 1.0)
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, 8000)
        assert w.getnframes() == 8000
    left, right = channels(data)
    assert tone_power_ratio(left, 600) > 0.9
    assert tone_power_ratio(left, 1500) < 0.01
    assert tone_power_ratio(right, 1500) > 0.9
    assert tone_power_ratio(right, 600) < 0.01
    assert summary.duration_s == 1.0
    assert summary.pauses == ()
    assert comment(data) == "not paused"
    assert struct.unpack_from("<I", data, 4)[0] == len(data) - 8


def test_a_tone_on_the_left_only_leaves_the_right_silent() -> None:
    shell = Shell(Recorder(T0))
    source = tone(1000)
    for i in range(25):
        shell.add(Side.CALLER, source.next_frame(0) or b"", T0 + i * 0.02)
    data, _ = shell.close(T0 + 0.5)
    left, right = channels(data)
    assert tone_power_ratio(left, 1000) > 0.95
    assert not any(right)


def test_both_sides_line_up_on_the_grid_despite_jitter() -> None:
    shell = Shell(Recorder(T0))
    jitter = [0.0, 0.015, -0.008, 0.03, 0.001, 0.018]  # late, early, a burst of two
    for k in range(60):
        due = T0 + k * 0.02
        shell.add(Side.CALLER, frame_of(k), due + jitter[k % 6])
        shell.add(Side.AGENT, frame_of(1000 + k), due + jitter[(k + 3) % 6])
    data, summary = shell.close(T0 + 1.2)
    left, right = channels(data)
    assert summary.dropped_frames == 0
    for k in range(60):
        assert set(left[k * 160 : (k + 1) * 160]) == {k}
        assert set(right[k * 160 : (k + 1) * 160]) == {1000 + k}


def test_a_gap_stays_silence_in_its_place() -> None:
    shell = Shell(Recorder(T0))
    for k in [*range(10), *range(60, 70)]:  # one second without packets in the middle
        shell.add(Side.CALLER, frame_of(7), T0 + k * 0.02)
        shell.add(Side.AGENT, frame_of(9), T0 + k * 0.02)
    data, summary = shell.close(T0 + 70 * 0.02)
    left, right = channels(data)
    assert summary.duration_s == 1.4
    assert set(left[: 10 * 160]) == {7}
    assert set(left[10 * 160 : 60 * 160]) == {0}
    assert set(left[60 * 160 :]) == {7}
    assert set(right[60 * 160 :]) == {9}


def test_a_quiet_side_does_not_hold_the_file_back() -> None:
    recorder = Recorder(T0)
    written = b"".join(recorder.add(Side.AGENT, frame_of(3), T0 + k * 0.02) for k in range(100))
    header = len(recorder.header())
    assert len(written) - header >= 90 * 160 * 4  # lags by at most a few frames
    assert recorder.tick(T0 + 10.0)  # and time alone moves it on


def test_a_pause_writes_silence_and_keeps_its_span() -> None:
    shell = Shell(Recorder(T0))
    recorder = shell.recorder
    for k in range(150):
        now = T0 + k * 0.02
        if k in (50, 125):
            recorder.pause(now)
        if k == 100:
            recorder.resume(now)
        assert recorder.paused == (50 <= k < 100 or k >= 125)
        shell.add(Side.CALLER, frame_of(5), now)
        shell.add(Side.AGENT, frame_of(6), now)
    data, summary = shell.close(T0 + 3.0)  # closed while paused: the span ends at close
    left, right = channels(data)
    assert set(left[: 50 * 160]) == {5}
    assert set(left[50 * 160 : 100 * 160]) == {0}  # the card number is not in the file
    assert set(right[50 * 160 : 100 * 160]) == {0}
    assert set(left[100 * 160 : 125 * 160]) == {5}
    assert set(left[125 * 160 :]) == {0}
    assert summary.pauses == (PauseSpan(1.0, 2.0), PauseSpan(2.5, 3.0))
    assert summary.duration_s == 3.0
    assert comment(data) == "paused 1.00-2.00 s; paused 2.50-3.00 s"


def test_mu_law_recording() -> None:
    shell = Shell(Recorder(T0, Encoding.MULAW))
    source = tone(700)
    for k in range(50):
        shell.add(Side.AGENT, source.next_frame(0) or b"", T0 + k * 0.02)
    data, summary = shell.close(T0 + 1.0)
    layout = read_wav_layout(data, "rec.wav")
    assert (layout.format_tag, layout.channels, layout.bits) == (7, 2, 8)
    assert layout.data_size == 8000 * 2
    assert data[data.index(b"fact") + 8 : data.index(b"fact") + 12] == struct.pack("<I", 8000)
    left, right = channels(data)
    assert not any(left)
    assert tone_power_ratio(right, 700) > 0.95
    assert summary.duration_s == 1.0


def test_the_first_bytes_are_a_placeholder_header() -> None:
    recorder = Recorder(T0)
    first = recorder.add(Side.CALLER, frame_of(1), T0)
    assert first.startswith(b"RIFF")
    layout = read_wav_layout(first, "rec.wav")
    assert layout.data_size == 0
    assert recorder.tick(T0) == b""


@pytest.mark.parametrize("packet_ms", [10, 30, 60])
def test_packets_of_other_sizes_are_cut_into_frames(packet_ms: int) -> None:
    shell = Shell(Recorder(T0))
    n = packet_ms * 8
    samples = [k // 160 for k in range(60 * 160)]  # frame k holds k
    heard: list[tuple[float, Literal["caller", "agent"], bytes]] = [
        (i * packet_ms / 1000, "caller", g711.to_bytes_list(samples[i * n : (i + 1) * n]))
        for i in range(len(samples) // n)
    ]
    heard += [(k * 0.02, "agent", frame_of(1)) for k in range(60)]
    for at, side, packet in sorted(heard, key=lambda h: h[0]):
        shell.add(side, packet, T0 + at)  # the bridge's side names
    data, summary = shell.close(T0 + 1.2)
    left, right = channels(data)
    assert list(left) == samples
    assert set(right) == {1}
    assert summary.dropped_frames == 0


def test_bad_and_late_input_never_breaks_it() -> None:
    shell = Shell(Recorder(T0))
    shell.add(Side.CALLER, b"\x01\x02\x03", T0)  # an odd length: the last byte goes
    shell.add(Side.CALLER, frame_of(2)[3:], T0 + 0.02)
    shell.add(Side.AGENT, frame_of(4), T0 - 5.0)  # before the start
    for _ in range(30):  # a side far faster than real time loses frames
        shell.add(Side.AGENT, frame_of(4), T0 + 0.04)
    data, summary = shell.close(T0 + 1.0)
    assert summary.dropped_frames > 0
    assert len(channels(data)[0]) == 50 * 160
    assert shell.recorder.add(Side.CALLER, frame_of(1), T0 + 2) == b""
    again = shell.recorder.close(T0 + 3)
    assert again.tail == b""
    assert again.duration_s == summary.duration_s
    assert again.header == summary.header


@pytest.mark.parametrize("encoding", list(Encoding))
def test_the_header_before_close_counts_what_was_written(encoding: Encoding) -> None:
    recorder = Recorder(T0, encoding)
    out = b"".join(recorder.add(Side.CALLER, frame_of(1), T0 + k * 0.02) for k in range(20))
    layout = read_wav_layout(recorder.header_at_close(), "rec.wav")
    assert layout.data_offset + layout.data_size == len(out)
    assert FRAME_BYTES == 320


def test_two_agents_of_a_conference_are_mixed_on_the_right_in_time() -> None:
    """Two speakers on one side each keep their own track: their frames are summed, not
    queued one after the other (which made the right channel run at twice the speed)."""
    recorder = Recorder(T0)
    out = bytearray()
    caller, first, second = tone(600), tone(1500), tone(2500)
    for i in range(50):
        now = T0 + i * 0.02
        # As the SIP line records: frames taken as they come, written every 100 ms.
        recorder.add(Side.CALLER, caller.next_frame(now) or b"", now + 0.002, "c", emit=False)
        recorder.add(Side.AGENT, first.next_frame(now) or b"", now + 0.004, "c~1001", emit=False)
        recorder.add(Side.AGENT, second.next_frame(now) or b"", now + 0.006, "c~1002", emit=False)
        if i % 5 == 4:
            out += recorder.tick(now + 0.01)
    summary = recorder.close(T0 + 1.0)
    out += summary.tail
    out[: len(summary.header)] = summary.header
    assert summary.duration_s == 1.0
    assert summary.dropped_frames == 0
    left, right = channels(bytes(out))
    assert tone_power_ratio(left, 600) > 0.9
    assert tone_power_ratio(right, 1500) > 0.3
    assert tone_power_ratio(right, 2500) > 0.3
    assert tone_power_ratio(right, 600) < 0.01


def test_frames_taken_without_emit_are_written_by_the_ticks_alike() -> None:
    """add(emit=False) returns nothing; a tick every 100 ms then writes the same file as
    adding with emit (the media relay's writer ticks on its own clock)."""
    tone = ToneSource(440)
    frames = [tone.next_frame(i * 0.02) or b"" for i in range(50)]
    each, ticked = Shell(Recorder(T0)), Shell(Recorder(T0))
    for i, frame in enumerate(frames):
        at = T0 + i * 0.02
        each.add("caller", frame, at)
        each.add("agent", frames[-1 - i], at + 0.005)
        assert ticked.recorder.add("caller", frame, at, emit=False) == b""
        assert ticked.recorder.add("agent", frames[-1 - i], at + 0.005, emit=False) == b""
        if i % 5 == 4:
            ticked.tick(at + 0.01)
    end = T0 + 1.0
    for shell in (each, ticked):
        shell.out += shell.recorder.close(end).tail
    assert len(ticked.out) > 50 * 640
    assert ticked.out == each.out


@pytest.mark.parametrize("encoding", list(Encoding))
def test_time_with_no_audio_from_either_side_is_written_as_zero_samples(
    encoding: Encoding,
) -> None:
    """Held or paused, neither side sends: the file holds samples of 0 (a mu-law file
    held code 0x00 there, which is -32124: a full-scale step, not silence)."""
    shell = Shell(Recorder(T0, encoding))
    shell.add(Side.CALLER, frame_of(5), T0)
    shell.tick(T0 + 1.0)
    data, summary = shell.close(T0 + 1.0)
    left, right = channels(data)
    assert summary.duration_s == 1.0
    assert len(left) == 50 * 160
    assert set(left[160:]) == {0}
    assert set(right) == {0}


@pytest.mark.parametrize("encoding", list(Encoding))
@pytest.mark.parametrize("laws", [(g711.PCMU, g711.PCMU), (g711.PCMA, g711.PCMU)])
def test_codes_make_the_file_their_samples_make(encoding: Encoding, laws: tuple[int, int]) -> None:
    """add_g711 (the relay's codes, decoded as written) and add (the same decoded first)
    write the same bytes: through losses and gaps, a codec change, 10 and 30 ms packets, a
    second agent, a pause, a tick at any time, an odd payload and a bad payload type."""
    rng = random.Random(f"{encoding}{laws}")
    codes, linear = Recorder(T0, encoding), Recorder(T0, encoding)
    got = [bytearray(), bytearray()]
    law = {"caller": laws[0], "agent": laws[1], "agent2": g711.PCMU}

    def both(
        side: Literal["caller", "agent"], payload: bytes, pt: int, at: float, src: str
    ) -> None:
        got[0] += codes.add_g711(side, payload, pt, at, src, emit=False)
        got[1] += linear.add(side, g711.decode(payload, pt), at, src, emit=False)

    for k in range(150):
        now = T0 + k * 0.02
        if k == 60:
            law["caller"] ^= g711.PCMA  # re-INVITE: PCMU <-> PCMA
        for src, side in (("caller", "caller"), ("agent", "agent"), ("agent2", "agent")):
            if rng.random() < 0.1 or (src == "agent2" and not 40 <= k < 90):
                continue  # a loss; the second agent is in for two seconds only
            if 20 <= k < 40 and src == "caller":
                continue  # a gap of the caller's
            size = 80 if src == "agent" and 100 <= k < 110 else 160
            payload = bytes(rng.getrandbits(8) for _ in range(size))
            pt = law[src]
            both(side, payload, pt, now + rng.random() * 0.01, src)  # type: ignore[arg-type]
            if size == 80:
                both(side, payload[::-1], pt, now + 0.01, src)  # type: ignore[arg-type]
        if k in (70, 75):
            (codes.pause if k == 70 else codes.resume)(now)
            (linear.pause if k == 70 else linear.resume)(now)
        if k % 5 == 4 or rng.random() < 0.05:
            got[0] += codes.tick(now + 0.003)
            got[1] += linear.tick(now + 0.003)
    got[0] += codes.add_g711("caller", b"\x01" * 241, g711.PCMU, T0 + 3.0)  # 30 ms and a bit
    got[1] += linear.add("caller", g711.decode(b"\x01" * 241, g711.PCMU), T0 + 3.0)
    with pytest.raises(ValueError, match=r"not G\.711"):
        codes.add_g711("caller", bytes(160), 18, T0 + 3.0)
    for recorder, out in zip((codes, linear), got, strict=True):
        summary = recorder.close(T0 + 4.0)
        out += summary.tail
        out[: len(summary.header)] = summary.header
    assert got[0] == got[1]
    left, right = channels(bytes(got[0]))
    assert len(left) == 200 * 160
    assert any(left)
    assert any(right)


def test_the_grid_rounds_a_time_to_its_slot_half_to_even() -> None:
    """The slot of a time is round()'s (half to even; before the start: 0), written in
    plain arithmetic for the compiled core."""
    recorder = Recorder(T0)
    rng = random.Random(5)
    times = [T0 + k * 0.01 for k in range(-100, 5000)]  # every half slot
    times += [T0 + rng.uniform(-3.0, 600.0) for _ in range(20_000)]
    for now in times:
        assert recorder._slot(now) == max(0, round((now - T0) / 0.02)), now
