"""Prompt clips by language and name: the center's own recording first, then the shipped
one; lengths from the headers; bad names and files named, never raised."""

from __future__ import annotations

import wave
from pathlib import Path

from telephony_adapters.media.prompt_files import PromptFiles


def _wav(path: Path, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * int(8000 * seconds))


def test_a_shipped_clip_has_its_file_and_length() -> None:
    files = PromptFiles()
    path = files.path("en", "minutes")
    assert path.endswith("prompts/en/minutes.wav")
    with wave.open(path) as clip:
        assert files.length("en", "minutes") == clip.getnframes() / 8000


def test_the_centers_own_recording_wins(tmp_path: Path) -> None:
    _wav(tmp_path / "zh" / "wei.wav", 1.5)
    files = PromptFiles(tmp_path)
    assert files.path("zh", "wei") == str(tmp_path / "zh" / "wei.wav")
    assert files.length("zh", "wei") == 1.5
    assert files.path("zh", "wan").endswith("prompts/zh/wan.wav")  # not recorded: shipped


def test_missing_bad_and_hostile_names_play_nothing_and_say_why(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "minutes.wav").write_bytes(b"not a wav at all")
    files = PromptFiles(tmp_path)
    assert files.path("en", "no_such_clip") == ""
    assert files.length("en", "../../etc/passwd") == 0.0
    assert "not a clip name" in files.problems[("en", "../../etc/passwd")]
    assert "no such clip" in files.problems[("en", "no_such_clip")]
    # an unreadable own recording is named, and the shipped clip plays instead
    assert files.path("en", "minutes").endswith("prompts/en/minutes.wav")
    assert "not a WAV file" in files.problems[("en", "minutes")]
