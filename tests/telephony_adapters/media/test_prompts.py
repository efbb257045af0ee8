"""The shipped prompt clips (telephony_adapters/media/sounds/prompts/<lang>/<clip>.wav):
every clip the speech module names is shipped, is package data and plays; and
deploy/make_prompts.py makes them again byte for byte (espeak-ng and sox are required
peers, installed by deploy/system-deps.sh: missing, the rebuild fails)."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from importlib import resources
from pathlib import Path
from types import ModuleType

import pytest

from telephony_adapters.media import speech
from telephony_adapters.media.player import SAMPLE_RATE, Clip
from tests.audio import tone_power_ratio

ROOT = Path(__file__).resolve().parents[3]
PROMPTS = ROOT / "telephony_adapters/media/sounds/prompts"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_prompts", ROOT / "deploy/make_prompts.py")
    assert spec is not None
    assert spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


@pytest.mark.parametrize("lang", speech.LANGUAGES)
def test_every_clip_is_shipped_and_plays(lang: speech.Language) -> None:
    folder = resources.files("telephony_adapters.media").joinpath("sounds", "prompts", lang)
    for name in speech.CLIPS[lang]:
        data = folder.joinpath(f"{name}.wav").read_bytes()
        clip = Clip.from_wav_bytes(data, f"{lang}/{name}")
        # a word or a phrase; the flows' sentences (the menu) are longer
        longest = 12.0 if name in speech.FLOW_CLIPS else 3.0
        assert 0.2 < clip.duration_s < longest, (lang, name, clip.duration_s)
        assert len(clip.pcm) % 2 == 0
    shipped = {path.stem for path in (PROMPTS / lang).glob("*.wav")}
    assert shipped == set(speech.CLIPS[lang])  # nothing stale either


def test_the_prompts_are_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["telephony_adapters"]
    package = ROOT / "telephony_adapters"
    packaged = {path for pattern in patterns for path in package.glob(pattern)}  # as setuptools
    files = set(PROMPTS.rglob("*.wav"))
    assert len(files) == sum(len(clips) for clips in speech.CLIPS.values())
    assert sorted(files - packaged) == []


def test_every_chinese_clip_has_its_pinyin() -> None:
    assert set(_script().PINYIN) == set(speech.CLIPS["zh"]) - set(speech.TONES)


def test_the_pinyin_says_each_character_of_the_clip() -> None:
    """One tone-numbered syllable per character (a digit or a Latin letter is one too):
    a syllable left out or added in the pinyin shows here."""
    for name, pinyin in _script().PINYIN.items():
        text = speech.CLIPS["zh"][name]
        said = [ch for ch in text if "\u4e00" <= ch <= "\u9fff" or (ch.isascii() and ch.isalnum())]
        syllables = re.findall(r"[a-z]+[1-5]|\b[A-Z]\b", pinyin)
        assert len(syllables) == len(said), (name, said, syllables)
        assert len(syllables) == len(pinyin.replace(",", " ").replace(".", " ").split()), name


@pytest.mark.parametrize("lang", speech.LANGUAGES)
def test_the_beep_is_a_1_khz_tone_of_0_4_s(lang: speech.Language) -> None:
    clip = Clip.from_file(PROMPTS / lang / "beep.wav")
    assert clip.duration_s == pytest.approx(0.4, abs=0.001)
    samples = [int.from_bytes(clip.pcm[i : i + 2], "little", signed=True)
               for i in range(0, len(clip.pcm), 2)]  # fmt: skip
    middle = samples[800:2400]  # 200 ms, clear of the fades
    assert max(abs(x) for x in samples) > 16_000  # -3 dBFS, not a whisper
    assert tone_power_ratio(middle, 1000) > 0.95
    assert tone_power_ratio(middle, 400) < 0.01  # nothing spoken in it


@pytest.mark.parametrize(
    ("lang", "name"),
    [("en", "twelve"), ("zh", "nin_qianmian_haiyou"), ("en", "menu_main"), ("zh", "yao"),
     ("zh", "callback_confirmed"), ("en", "beep")],
)  # fmt: skip
def test_the_script_makes_the_shipped_clip_byte_for_byte(
    lang: speech.Language, name: str, tmp_path: Path
) -> None:
    made = _script().build_clip(lang, name, tmp_path)
    assert made == tmp_path / lang / f"{name}.wav"
    assert made.read_bytes() == (PROMPTS / lang / f"{name}.wav").read_bytes()
    assert Clip.from_file(made).duration_s * SAMPLE_RATE > 1000


def test_a_missing_tool_or_a_bad_clip_is_named(tmp_path: Path) -> None:
    script = _script()
    with pytest.raises(SystemExit, match="no-such-tts is not installed"):
        script._run(["no-such-tts", "x"])
    with pytest.raises(SystemExit, match=r"^sox .*: exit [1-9]"):
        script._run(["sox", str(tmp_path / "absent.wav"), str(tmp_path / "out.wav")])
    with pytest.raises(SystemExit, match="fr/twelve: not a clip"):
        script.main(["fr/twelve"])
