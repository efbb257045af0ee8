"""The pieces of a caller's message (telephony_adapters/sipline/voicemail.py, sans-I/O):
the caller's side of the stereo recorder written as a mono WAV in both formats, with the
recorder's closing comment; message paths kept inside the recordings folder; and the
prompt player (media/player.py SequencePlayer): clips back to back, once."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import pytest

from telephony_adapters.media import g711
from telephony_adapters.media.player import FRAME_BYTES, Clip, SequencePlayer, read_wav_layout
from telephony_adapters.media.recorder import Encoding
from telephony_adapters.sipline.voicemail import MessagePathError, MonoRecorder, message_path
from tests.audio import tone_frame


def test_the_callers_side_is_a_mono_pcm_file_with_the_recorders_comment() -> None:
    rec = MonoRecorder(100.0)
    frames = [tone_frame(1000, i) for i in range(10)]
    data = b""
    for i, frame in enumerate(frames):
        rec.add(frame, 100.0 + 0.02 * i)
        data += rec.tick(100.0 + 0.02 * i)
    summary = rec.close(100.2)
    data = summary.header + (data + summary.tail)[len(summary.header) :]
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
        assert w.readframes(w.getnframes()) == b"".join(frames)
    assert data.endswith(b"not paused\0\0")  # the comment chunk, counted in the RIFF size
    assert int.from_bytes(data[4:8], "little") == len(data) - 8
    assert summary.duration_s == pytest.approx(0.2)
    assert rec.close(100.3).tail == b""


def test_a_mu_law_message_is_mono_mu_law() -> None:
    rec = MonoRecorder(0.0, Encoding.MULAW)
    frame = tone_frame(500, 0)
    rec.add(frame, 0.0)
    summary = rec.close(0.02)  # never ticked: the header comes with the tail
    data = summary.header + summary.tail[len(summary.header) :]
    layout = read_wav_layout(data, "message")
    assert (layout.format_tag, layout.channels, layout.bits, layout.data_size) == (7, 1, 8, 160)
    body = data[layout.data_offset : layout.data_offset + layout.data_size]
    assert body == g711.linear_to_ulaw(frame)
    assert int.from_bytes(data[4:8], "little") == len(data) - 8


@pytest.mark.parametrize("path", ["", "/etc/x.wav", "../x.wav", "a/../../x.wav", "a\\b.wav",
                                  "a/", "a\nb.wav"])  # fmt: skip
def test_a_message_path_stays_in_the_recordings_folder(path: str) -> None:
    with pytest.raises(MessagePathError, match="message path"):
        message_path(Path("/rec"), path)


def test_a_message_path_names_a_file_under_the_folder() -> None:
    assert message_path(Path("/rec"), "messages/2026-12-07/c1.wav") == Path(
        "/rec/messages/2026-12-07/c1.wav"
    )


def test_the_prompt_player_plays_its_clips_back_to_back_once() -> None:
    first = Clip(bytes(range(250)) * 2, "a")  # 250 samples
    second = Clip(b"\x01\x02" * 100, "b")  # 100 samples
    player = SequencePlayer([first, second])
    frames = [player.next_frame(0.0) for _ in range(4)]
    assert frames[3] is None
    assert player.finished
    played = b"".join(f for f in frames if f is not None)
    assert all(len(f) == FRAME_BYTES for f in frames[:3] if f is not None)
    assert played == first.pcm + second.pcm + bytes(3 * FRAME_BYTES - 700)
    assert SequencePlayer([]).next_frame(0.0) is None
