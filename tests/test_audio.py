"""tests/audio.py's clip finder, on the shipped prompt files as a phone would hear them:
through G.711 (both laws), after music, with a frame lost on the way."""

from __future__ import annotations

import random
from array import array
from pathlib import Path

from telephony_adapters.media import g711
from telephony_adapters.media.prompt_files import PromptFiles
from tests.audio import RATE, find_clip, find_clips, tone
from tests.phones import wav_samples

PROMPTS = PromptFiles()


def clip(language: str, name: str) -> list[int]:
    path = PROMPTS.path(language, name)
    assert path, PROMPTS.problems
    return list(wav_samples(Path(path)))


def over_g711(samples: list[int], payload_type: int) -> list[int]:
    linear = g711.to_bytes_list(samples)
    return list(g711.samples(g711.decode(g711.encode(linear, payload_type), payload_type)))


def noise(count: int, seed: int = 1) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(-3000, 3000) for _ in range(count)]


def test_a_clip_is_found_where_it_was_heard_through_either_law() -> None:
    greeting = clip("en", "greeting")
    for payload_type in (0, 8):
        heard = over_g711(noise(RATE) + greeting + noise(RATE // 2, 2), payload_type)
        assert find_clip(heard, greeting) == RATE
        assert find_clip(heard, greeting, start=RATE + 1) is None


def test_a_lost_frame_and_a_late_start_are_tolerated() -> None:
    menu = clip("en", "menu_main")
    lost = menu[: 2 * RATE] + menu[2 * RATE + 160 :]  # one 20 ms frame gone
    heard = over_g711(noise(1234) + lost, 0)
    assert find_clip(heard, menu) == 1234


def test_a_clip_not_heard_whole_or_another_word_is_not_found() -> None:
    two, three = clip("en", "two"), clip("en", "three")
    greeting = clip("en", "greeting")
    assert find_clip(over_g711(greeting[: len(greeting) // 2], 0), greeting) is None
    heard = over_g711(noise(800) + three + noise(800, 3), 0)
    assert find_clip(heard, three) == 800
    assert find_clip(heard, two) is None
    assert find_clip(array("h", bytes(2 * RATE)), two) is None  # silence
    assert find_clip(tone(1000, RATE), two) is None


def test_clips_said_in_a_row_are_found_together_and_not_apart() -> None:
    number, two, three = (clip("en", n) for n in ("you_are_caller_number", "two", "three"))
    heard = over_g711(noise(400) + two + noise(4000) + number + two + noise(400), 0)
    assert find_clips(heard, [number, two]) == [4400 + len(two), 4400 + len(two) + len(number)]
    assert find_clips(heard, [number, three]) is None
    apart = over_g711(number + noise(RATE) + two, 0)
    assert find_clips(apart, [number, two]) is None


def test_chinese_clips_are_found_too() -> None:
    ahead, one, wei = (clip("zh", n) for n in ("nin_qianmian_haiyou", "yi", "wei"))
    heard = over_g711(noise(300) + ahead + one + wei, 8)
    assert find_clips(heard, [ahead, one, wei]) == [300, 300 + len(ahead),
                                                    300 + len(ahead) + len(one)]  # fmt: skip
    assert find_clips(heard, [ahead, clip("zh", "liang"), wei]) is None
