"""The number-speaking rules of the prompts (telephony_adapters/media/speech.py), in
English and Mandarin Chinese: tables for 0..120, big numbers, places in line, waits and
their bounds, and bad input."""

from __future__ import annotations

import re

import pytest

from telephony_adapters.media import speech
from telephony_adapters.media.speech import (
    CLIPS,
    FLOW_CLIPS,
    SpeechError,
    digits,
    number,
    position,
    wait,
)

# 0..120, written out by hand (not by the module).
ZH_0_120 = """
零 一 二 三 四 五 六 七 八 九 十 十一 十二 十三 十四 十五 十六 十七 十八 十九
二十 二十一 二十二 二十三 二十四 二十五 二十六 二十七 二十八 二十九
三十 三十一 三十二 三十三 三十四 三十五 三十六 三十七 三十八 三十九
四十 四十一 四十二 四十三 四十四 四十五 四十六 四十七 四十八 四十九
五十 五十一 五十二 五十三 五十四 五十五 五十六 五十七 五十八 五十九
六十 六十一 六十二 六十三 六十四 六十五 六十六 六十七 六十八 六十九
七十 七十一 七十二 七十三 七十四 七十五 七十六 七十七 七十八 七十九
八十 八十一 八十二 八十三 八十四 八十五 八十六 八十七 八十八 八十九
九十 九十一 九十二 九十三 九十四 九十五 九十六 九十七 九十八 九十九
一百 一百零一 一百零二 一百零三 一百零四 一百零五 一百零六 一百零七 一百零八 一百零九
一百一十 一百一十一 一百一十二 一百一十三 一百一十四 一百一十五 一百一十六 一百一十七
一百一十八 一百一十九 一百二十
""".split()  # noqa: SIM905 (a table of 121 reads better as text)
_EN_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
    "eighteen", "nineteen"]  # fmt: skip
_EN_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
EN_0_120 = (
    _EN_UNITS
    + [f"{tens} {unit}".removesuffix(" zero") for tens in _EN_TENS for unit in _EN_UNITS[:10]]
    + ["one hundred"]
    + [f"one hundred {word}" for word in _EN_UNITS[1:]]
    + ["one hundred twenty"]
)


def zh(clips: list[str]) -> str:
    """The Chinese text the clips say, without punctuation."""
    return "".join(CLIPS["zh"][c] for c in clips).replace("。", "")


def en(clips: list[str]) -> str:
    return " ".join(CLIPS["en"][c] for c in clips).replace(".", "")


def test_the_tables_are_121_numbers() -> None:
    assert len(ZH_0_120) == len(EN_0_120) == 121
    assert EN_0_120[21] == "twenty one"
    assert EN_0_120[30] == "thirty"


@pytest.mark.parametrize("value", range(121))
def test_numbers_0_to_120_in_chinese(value: int) -> None:
    assert zh(number(value, "zh")) == ZH_0_120[value]


@pytest.mark.parametrize("value", range(121))
def test_numbers_0_to_120_in_english(value: int) -> None:
    assert en(number(value, "en")) == EN_0_120[value]
    assert number(value, "en") == EN_0_120[value].split()  # each word is its own clip


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (200, "两百"),
        (202, "两百零二"),
        (210, "两百一十"),
        (222, "两百二十二"),
        (1000, "一千"),
        (1001, "一千零一"),
        (1005, "一千零五"),
        (1010, "一千零一十"),
        (1050, "一千零五十"),
        (1100, "一千一百"),
        (1200, "一千二百"),
        (2000, "两千"),
        (2005, "两千零五"),
        (2200, "两千二百"),
        (9999, "九千九百九十九"),
        (10_000, "一万"),
        (10_001, "一万零一"),
        (10_010, "一万零一十"),
        (10_500, "一万零五百"),
        (11_000, "一万一千"),
        (12_000, "一万二千"),
        (20_000, "两万"),
        (22_000, "两万二千"),
        (100_000, "十万"),
        (100_500, "十万零五百"),
        (101_000, "十万一千"),
        (120_000, "十二万"),
        (200_000, "二十万"),
        (220_002, "二十二万零二"),
        (305_060, "三十万五千零六十"),
        (999_999, "九十九万九千九百九十九"),
    ],
)
def test_big_numbers_in_chinese(value: int, text: str) -> None:
    assert zh(number(value, "zh")) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (200, "two hundred"),
        (999, "nine hundred ninety nine"),
        (1000, "one thousand"),
        (1005, "one thousand five"),
        (1050, "one thousand fifty"),
        (2200, "two thousand two hundred"),
        (12_000, "twelve thousand"),
        (20_013, "twenty thousand thirteen"),
        (100_500, "one hundred thousand five hundred"),
        (101_000, "one hundred one thousand"),
        (999_999, "nine hundred ninety nine thousand nine hundred ninety nine"),
    ],
)
def test_big_numbers_in_english(value: int, text: str) -> None:
    assert en(number(value, "en")) == text


def test_a_lone_two_before_a_measure_word_is_liang_and_otherwise_er() -> None:
    assert zh(number(2, "zh", counted=True)) == "两"
    assert zh(number(2, "zh")) == "二"
    assert zh(number(12, "zh", counted=True)) == "十二"
    assert zh(number(22, "zh", counted=True)) == "二十二"
    assert number(2, "en", counted=True) == ["two"]


@pytest.mark.parametrize(
    ("place", "english", "chinese"),
    [
        (1, "You are caller number one", "您是下一位"),
        (2, "You are caller number two", "您前面还有一位"),
        (3, "You are caller number three", "您前面还有两位"),
        (12, "You are caller number twelve", "您前面还有十一位"),
        (13, "You are caller number thirteen", "您前面还有十二位"),
        (101, "You are caller number one hundred one", "您前面还有一百位"),
        (102, "There are more than one hundred callers ahead of you", "您前面还有超过一百位"),
        (5000, "There are more than one hundred callers ahead of you", "您前面还有超过一百位"),
    ],
)
def test_place_in_line(place: int, english: str, chinese: str) -> None:
    assert en(position(place, "en")) == english
    assert zh(position(place, "zh")) == chinese


def test_place_bound_is_a_parameter() -> None:
    assert zh(position(4, "zh", most_ahead=2)) == "您前面还有超过两位"
    assert zh(position(3, "zh", most_ahead=2)) == "您前面还有两位"
    assert position(4, "en", most_ahead=2) == [
        "there_are_more_than",
        "two",
        "callers_ahead_of_you",
    ]


@pytest.mark.parametrize(
    ("seconds", "english", "chinese"),
    [
        (0, "Your expected wait is less than a minute", "您需要等待不到一分钟"),
        (59.9, "Your expected wait is less than a minute", "您需要等待不到一分钟"),
        (60, "Your expected wait is about one minute", "您大约需要等待一分钟"),
        (89.9, "Your expected wait is about one minute", "您大约需要等待一分钟"),
        (90, "Your expected wait is about two minutes", "您大约需要等待两分钟"),
        (240, "Your expected wait is about four minutes", "您大约需要等待四分钟"),
        (12 * 60, "Your expected wait is about twelve minutes", "您大约需要等待十二分钟"),
        (22 * 60, "Your expected wait is about twenty two minutes", "您大约需要等待二十二分钟"),
        (60 * 60 + 29, "Your expected wait is about sixty minutes", "您大约需要等待六十分钟"),
        (60 * 60 + 30, "Your expected wait is more than sixty minutes", "您需要等待超过六十分钟"),
        (10**7, "Your expected wait is more than sixty minutes", "您需要等待超过六十分钟"),
    ],
)
def test_estimated_wait(seconds: float, english: str, chinese: str) -> None:
    assert en(wait(seconds, "en")) == english
    assert zh(wait(seconds, "zh")) == chinese


def test_wait_english_plural_follows_the_number() -> None:
    assert wait(61, "en")[-1] == "minute"
    for minutes in (2, 11, 21, 31, 101):
        assert wait(minutes * 60, "en", most_minutes=200)[-1] == "minutes"
    assert wait(3600, "en", most_minutes=1) == ["your_wait_is_more_than", "one", "minute"]
    assert zh(wait(300, "zh", most_minutes=2)) == "您需要等待超过两分钟"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: number(-1, "en"), "number -1: must be in 0..999999"),
        (lambda: number(1_000_000, "zh"), "number 1000000: must be in 0..999999"),
        (lambda: number(1.5, "en"), "number 1.5: not a whole number"),  # type: ignore[arg-type]
        (lambda: number(True, "en"), "number True: not a whole number"),
        (lambda: number(3, "fr"), "language 'fr': not one of en, zh"),  # type: ignore[arg-type]
        (lambda: position(0, "en"), "place in line 0: must be in 1..999999"),
        (lambda: position(3, "zh", most_ahead=0), "most_ahead 0: must be in 1..999999"),
        (lambda: wait(-1, "en"), "estimated wait -1 s: must be a finite number >= 0"),
        (lambda: wait(float("nan"), "zh"), "estimated wait nan s: must be a finite"),
        (lambda: wait(float("inf"), "zh"), "estimated wait inf s: must be a finite"),
        (lambda: wait("5", "en"), "estimated wait '5': not a number of seconds"),  # type: ignore[arg-type]
        (lambda: wait(5, "en", most_minutes=0), "most_minutes 0: must be in 1..999999"),
    ],
)
def test_bad_input_is_refused_with_what_was_wrong(call: object, message: str) -> None:
    assert callable(call)
    with pytest.raises(SpeechError, match="^" + message.replace(".", r"\.")):
        call()


def _everything_said(lang: speech.Language) -> set[str]:
    said: set[str] = set()
    for value in [*range(1200), *range(1000, speech.MAX_NUMBER + 1, 997), speech.MAX_NUMBER]:
        said.update(number(value, lang))
        said.update(number(value, lang, counted=True))
    for place in range(1, 300):
        said.update(position(place, lang))
    for seconds in range(0, 5000, 15):
        said.update(wait(seconds, lang))
    said.update(digits("+0123456789", lang))
    said.update(FLOW_CLIPS)
    return said


@pytest.mark.parametrize("lang", speech.LANGUAGES)
def test_every_clip_said_is_in_the_clip_set_and_every_clip_is_said(lang: speech.Language) -> None:
    said = _everything_said(lang)
    assert said == set(CLIPS[lang])


def test_clip_names_are_plain_file_names() -> None:
    for lang in speech.LANGUAGES:
        for name, text in CLIPS[lang].items():
            assert name.replace("_", "").isascii(), name
            assert name.replace("_", "").isalnum(), name
            assert text.strip(), name


@pytest.mark.parametrize(
    ("phone_number", "english", "chinese"),
    [
        ("13800138000", "one three eight zero zero one three eight zero zero zero",
         "幺三八零零幺三八零零零"),
        ("+86 10 8888-1212", "plus eight six one zero eight eight eight eight one two one two",
         "加八六幺零八八八八幺二幺二"),
        ("(020) 2222.0202", "zero two zero two two two two zero two zero two",
         "零二零二二二二零二零二"),
        ("1", "one", "幺"),
        ("0", "zero", "零"),
    ],
)  # fmt: skip
def test_a_phone_number_is_read_digit_by_digit(
    phone_number: str, english: str, chinese: str
) -> None:
    assert en(digits(phone_number, "en")) == english
    assert zh(digits(phone_number, "zh")) == chinese
    assert "liang" not in digits("2222", "zh")  # a phone number's 2 is 二, never 两
    assert "yi" not in digits("1111", "zh")  # and its 1 is 幺


@pytest.mark.parametrize(
    ("phone_number", "message"),
    [
        ("12a4#", "phone number '12a4#': cannot read '#' 'a' (digits only)"),
        ("555*1", "phone number '555*1': cannot read '*' (digits only)"),
        ("１２３", "phone number '１２３': cannot read '１' '２' '３' (digits only)"),
        ("12+3", "phone number '12+3': '+' only at its start"),
        ("++1", "phone number '++1': '+' only at its start"),
        ("", "phone number '': 0 digits, must be 1..24"),
        ("+ -", "phone number '+ -': 0 digits, must be 1..24"),
        ("1" * 25, f"phone number '{'1' * 25}': 25 digits, must be 1..24"),
    ],
)
def test_a_phone_number_that_cannot_be_read_is_refused_naming_why(
    phone_number: str, message: str
) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        digits(phone_number, "en")
    with pytest.raises(SpeechError, match=re.escape(message)):
        digits(phone_number, "zh")


def test_digits_refuse_a_language_or_a_number_that_is_not_text() -> None:
    with pytest.raises(SpeechError, match="language 'fr'"):
        digits("123", "fr")  # type: ignore[arg-type]
    with pytest.raises(SpeechError, match="phone number 123: not a string"):
        digits(123, "en")  # type: ignore[arg-type]


@pytest.mark.parametrize("lang", speech.LANGUAGES)
def test_every_flow_clip_is_in_both_languages_and_a_tone_is_not_speech(
    lang: speech.Language,
) -> None:
    assert set(FLOW_CLIPS) <= set(CLIPS[lang])
    assert set(speech.TONES) <= set(FLOW_CLIPS)
    for name in ("greeting", "menu_main", "callback_offer", "voicemail_prompt", "beep"):
        assert name in FLOW_CLIPS


def test_the_flow_clips_say_what_the_flows_mean() -> None:
    """The menu's keys in both languages, and the Chinese flow clips in characters."""
    menu_en, menu_zh = CLIPS["en"]["menu_main"], CLIPS["zh"]["menu_main"]
    for key in ("sales, press 1", "support, press 2", "message, press 9", "press star"):
        assert key in menu_en
    for key in ("销售咨询请按1", "售后服务请按2", "留言请按9", "星号键"):
        assert key in menu_zh
    assert CLIPS["en"]["greeting"].startswith("Welcome to CTI Desk")
    assert CLIPS["zh"]["greeting"].startswith("欢迎致电")
    assert "press 1" in CLIPS["en"]["callback_offer"]
    assert "请按1" in CLIPS["zh"]["callback_offer"]
    assert "hash key" in CLIPS["en"]["enter_number"]
    assert "井号键" in CLIPS["zh"]["enter_number"]
    for name in FLOW_CLIPS:
        if name not in speech.TONES:
            assert any("\u4e00" <= ch <= "\u9fff" for ch in CLIPS["zh"][name]), name
