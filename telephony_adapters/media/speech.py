"""What the queue engine knows, as prompt clips to play: a caller's place in line and the
estimated wait, spoken in English (``en``) or Mandarin Chinese (``zh``).

Sans-I/O and pure: each function returns the names of clips, in order, from the clip set
of its language (:data:`CLIPS`: name -> the text the clip says). The shipped clips are
``telephony_adapters/media/sounds/prompts/<lang>/<name>.wav``, made by
``deploy/make_prompts.py`` from :data:`CLIPS` (Chinese from the pinyin it keeps for each
clip); a center may drop in its own recordings
under the same names. Numbers are spoken from parts (``twenty``, ``one``; ``二``, ``十``)
so a few dozen clips say any number up to :data:`MAX_NUMBER`.

The rules (docs/voice.md, "Prompts"):

- English: ``you are caller number 12``; ``about 1 minute``, ``about 4 minutes``, ``less
  than a minute``; 105 is ``one hundred five`` (no "and").
- Chinese: the place is said as the callers ahead, ``您前面还有 11 位`` for
  caller number 12 (``您是下一位`` for the caller at the head); the wait
  ``大约 4 分钟``, ``不到一分钟``. Measure words 位 (callers) and 分钟
  (minutes). 十二 (not 一十二) at the start of a number, 一百一十 inside
  one; one 零 for a run of zeros inside a number (一百零五, 一千零五十,
  一万零五百), none at its end. 两 for a 2 counted alone (两位, 两分钟)
  and for a leading 2 before 百, 千 or 万 (两百, 两千零五, 两万); 二
  everywhere else (二十, 十二, 一千二百, 一万二千).
- Bounds: more callers ahead than ``most_ahead``, or a wait over ``most_minutes``, is
  said as "more than" the bound (``超过``).
- Phone numbers (:func:`digits`) are read digit by digit: en ``zero`` .. ``nine``,
  ``plus``; zh 零, 幺 (``yao``: 1 as Chinese read phone numbers), 二 (never 两) .. 九,
  加 for ``+``.

The call flows' clips (:data:`FLOW_CLIPS`: greeting, menu, callback, voicemail...) have
the same names in both languages; ``beep`` is a tone, not speech.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final, Literal

Language = Literal["en", "zh"]
LANGUAGES: Final[tuple[Language, ...]] = ("en", "zh")
#: The largest number either language speaks (en: thousands; zh: 万).
MAX_NUMBER: Final = 999_999
#: Default bounds: more callers ahead, or a longer wait, is said as "more than" these.
MOST_AHEAD: Final = 100
MOST_MINUTES: Final = 60

_EN_UNITS: Final = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
    "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
    "seventeen", "eighteen", "nineteen")  # fmt: skip
_EN_TENS: Final = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty",
    "ninety")  # fmt: skip
_EN_PHRASES: Final = {
    "you_are_caller_number": "You are caller number",
    "there_are_more_than": "There are more than",
    "callers_ahead_of_you": "callers ahead of you.",
    "your_wait_is_about": "Your expected wait is about",
    "your_wait_is_more_than": "Your expected wait is more than",
    "your_wait_is_less_than_a_minute": "Your expected wait is less than a minute.",
    "minute": "minute.",
    "minutes": "minutes.",
    "plus": "plus",
}
#: What the call flows say (scripts_engine's flow cores name these clips), in English.
_EN_FLOW: Final = {
    "greeting": "Welcome to CTI Desk. Thank you for calling.",
    "menu_main": "For sales, press 1. For support, press 2. To leave a message, press 9. "
    "To hear these options again, press star.",
    "invalid_key": "Sorry, that is not a valid choice.",
    "no_key": "Sorry, we did not receive your choice.",
    "closed": "Thank you for calling. We are closed at the moment. "
    "Please call again during our opening hours.",
    "callback_offer": "To be called back without losing your place in line, press 1.",
    "we_will_call_you_at": "We will call you back at",
    "confirm_or_other": "To confirm this number, press 1. To enter another number, press 2.",
    "enter_number": "Please enter your phone number, then press the hash key. "
    "To start again, press star.",
    "callback_confirmed": "Thank you. We will call you back, and you keep your place in "
    "line. Goodbye.",
    "voicemail_offer": "To leave a message, press 9.",
    "voicemail_prompt": "Please leave a message after the tone. "
    "Press the hash key when you have finished.",
    "beep": "(a tone: 1 kHz, 0.4 s)",
    "message_thanks": "Thank you, your message has been recorded. We will call you back.",
    "goodbye": "Thank you for calling. Goodbye.",
    "you_are_next": "You are next in line.",
}

#: Digits by pinyin name (clip names are ASCII file names).
_ZH_DIGITS: Final = ("ling", "yi", "er", "san", "si", "wu", "liu", "qi", "ba", "jiu")
_ZH_TEXT: Final = {
    "ling": "零",
    "yi": "一",
    "er": "二",
    "liang": "两",
    "san": "三",
    "si": "四",
    "wu": "五",
    "liu": "六",
    "qi": "七",
    "ba": "八",
    "jiu": "九",
    "shi": "十",
    "bai": "百",
    "qian": "千",
    "wan": "万",
    "nin_qianmian_haiyou": "您前面还有",
    "nin_shi_xia_yi_wei": "您是下一位。",
    "chaoguo": "超过",
    "wei": "位。",
    "nin_dayue_xuyao_dengdai": "您大约需要等待",
    "nin_xuyao_dengdai": "您需要等待",
    "bu_dao_yi_fenzhong": "不到一分钟。",
    "fenzhong": "分钟。",
    "yao": "幺",
    "jia": "加",
}
#: What the call flows say, in Chinese (the same clip names as :data:`_EN_FLOW`).
_ZH_FLOW: Final = {
    "greeting": "欢迎致电CTI客服中心。",
    "menu_main": "销售咨询请按1，售后服务请按2，留言请按9，重听请按星号键。",
    "invalid_key": "对不起，您的输入有误。",
    "no_key": "对不起，我们没有收到您的选择。",
    "closed": "感谢您的来电。现在是非工作时间，请在工作时间再次来电。",
    "callback_offer": "如需我们回电并保留您的排队位置，请按1。",
    "we_will_call_you_at": "我们将回电至以下号码：",
    "confirm_or_other": "确认请按1，使用其他号码请按2。",
    "enter_number": "请输入您的电话号码，以井号键结束；重新输入请按星号键。",
    "callback_confirmed": "谢谢，我们会给您回电，您的排队位置将会保留。再见。",
    "voicemail_offer": "留言请按9。",
    "voicemail_prompt": "请在提示音后留言，结束请按井号键。",
    "beep": "（提示音：1 kHz，0.4 秒）",
    "message_thanks": "谢谢，您的留言已收到，我们会尽快给您回电。",
    "goodbye": "感谢您的来电，再见。",
    "you_are_next": "下一位就是您，请稍候。",
}
#: The call flows' clips, named alike in every language.
FLOW_CLIPS: Final[tuple[str, ...]] = tuple(_EN_FLOW)
#: Clips that are tones made by sox, not speech: name -> (hertz, seconds).
TONES: Final[Mapping[str, tuple[int, float]]] = {"beep": (1000, 0.4)}
#: The longest phone number :func:`digits` reads (E.164 has 15 digits; keyed-in
#: numbers may carry a prefix).
MAX_DIGITS: Final = 24
#: Characters a phone number may carry that are not read (written-out separators).
_SEPARATORS: Final = frozenset(" -.()")
#: Place values of a group of four digits, highest first.
_ZH_PLACES: Final = ("qian", "bai", "shi", "")

#: Every clip of each language: name -> the text it says.
CLIPS: Final[Mapping[Language, Mapping[str, str]]] = {
    "en": {
        **{word: word for word in _EN_UNITS},
        **{word: word for word in _EN_TENS},
        "hundred": "hundred",
        "thousand": "thousand",
        **_EN_PHRASES,
        **_EN_FLOW,
    },
    "zh": {**_ZH_TEXT, **_ZH_FLOW},
}


class SpeechError(ValueError):
    """A value that cannot be spoken: the message names it and the accepted range."""


def _check_language(lang: str) -> Language:
    if lang not in LANGUAGES:
        raise SpeechError(f"language {lang!r}: not one of {', '.join(LANGUAGES)}")
    return lang


def _check_count(value: int, what: str, low: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpeechError(f"{what} {value!r}: not a whole number")
    if not low <= value <= MAX_NUMBER:
        raise SpeechError(f"{what} {value}: must be in {low}..{MAX_NUMBER}")


def number(value: int, lang: Language, *, counted: bool = False) -> list[str]:
    """The clips that say ``value`` (0..:data:`MAX_NUMBER`). ``counted``: the number
    stands before a Chinese measure word, where a lone 2 is 两 (两位); English ignores it.
    """
    _check_count(value, "number")
    if _check_language(lang) == "en":
        return _english(value)
    return _chinese(value, counted=counted)


def _english_below_thousand(value: int) -> list[str]:
    words: list[str] = []
    hundreds, rest = divmod(value, 100)
    if hundreds:
        words += [_EN_UNITS[hundreds], "hundred"]
    if rest >= 20:
        tens, units = divmod(rest, 10)
        words.append(_EN_TENS[tens - 2])
        if units:
            words.append(_EN_UNITS[units])
    elif rest:
        words.append(_EN_UNITS[rest])
    return words


def _english(value: int) -> list[str]:
    if value == 0:
        return ["zero"]
    thousands, rest = divmod(value, 1000)
    words = [*_english_below_thousand(thousands), "thousand"] if thousands else []
    return words + _english_below_thousand(rest)


def _chinese_group(value: int, *, leading: bool) -> list[str]:
    """1..9999 as one group of four digits. ``leading``: the group starts the number
    (十二 not 一十二, 两百 not 二百); a group after a higher one keeps 一十 and 二百."""
    digits = f"{value:04d}"
    words: list[str] = []
    zero_pending = False
    for place, digit in zip(_ZH_PLACES, digits, strict=True):
        d = int(digit)
        if d == 0:
            zero_pending = bool(words)  # a zero after a spoken digit: 零 if more follow
            continue
        if zero_pending:
            words.append("ling")
            zero_pending = False
        first = leading and not words
        if first and d == 1 and place == "shi":
            words.append("shi")  # 十二, 十万: the 一 is not said at the start
            continue
        if first and d == 2 and place in ("qian", "bai"):
            words.append("liang")
        else:
            words.append(_ZH_DIGITS[d])
        if place:
            words.append(place)
    return words


def _chinese(value: int, *, counted: bool) -> list[str]:
    if value == 0:
        return ["ling"]
    if value == 2 and counted:
        return ["liang"]
    high, low = divmod(value, 10_000)
    words: list[str] = []
    if high:
        words = _chinese_group(high, leading=True)
        words = ["liang" if words == ["er"] else w for w in words]  # 两万, but 十二万
        words.append("wan")
    if low:
        if high and low < 1000:
            words.append("ling")  # 一万零五百: the group's leading zeros are one 零
        words += _chinese_group(low, leading=not high)
    return words


def position(place: int, lang: Language, *, most_ahead: int = MOST_AHEAD) -> list[str]:
    """A caller's place in line, 1 at the head. English says the place ("you are caller
    number 12"), Chinese the callers ahead (您前面还有 11 位); more than ``most_ahead``
    callers ahead is said as "more than" ``most_ahead``."""
    _check_count(place, "place in line", low=1)
    _check_count(most_ahead, "most_ahead", low=1)
    ahead = place - 1
    if _check_language(lang) == "en":
        if ahead > most_ahead:
            return ["there_are_more_than", *_english(most_ahead), "callers_ahead_of_you"]
        return ["you_are_caller_number", *_english(place)]
    if ahead == 0:
        return ["nin_shi_xia_yi_wei"]
    if ahead > most_ahead:
        return ["nin_qianmian_haiyou", "chaoguo", *_chinese(most_ahead, counted=True), "wei"]
    return ["nin_qianmian_haiyou", *_chinese(ahead, counted=True), "wei"]


def wait_minutes(seconds: float, most_minutes: int = MOST_MINUTES) -> int | None:
    """The estimated wait as whole minutes to say: 0 for under a minute, minutes rounded
    half up from there (90 s is 2), ``None`` when over ``most_minutes``."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise SpeechError(f"estimated wait {seconds!r}: not a number of seconds")
    if not math.isfinite(seconds) or seconds < 0:
        raise SpeechError(f"estimated wait {seconds} s: must be a finite number >= 0")
    _check_count(most_minutes, "most_minutes", low=1)
    if seconds < 60:
        return 0
    minutes = math.floor(seconds / 60 + 0.5)
    return None if minutes > most_minutes else minutes


def wait(seconds: float, lang: Language, *, most_minutes: int = MOST_MINUTES) -> list[str]:
    """The estimated wait (``seconds``): "about 4 minutes" (大约 4 分钟), "about 1
    minute", "less than a minute" (不到一分钟), over ``most_minutes`` "more than" it."""
    minutes = wait_minutes(seconds, most_minutes)
    if _check_language(lang) == "en":
        if minutes == 0:
            return ["your_wait_is_less_than_a_minute"]
        lead = "your_wait_is_about" if minutes is not None else "your_wait_is_more_than"
        spoken = most_minutes if minutes is None else minutes
        return [lead, *_english(spoken), "minute" if spoken == 1 else "minutes"]
    if minutes == 0:
        return ["nin_xuyao_dengdai", "bu_dao_yi_fenzhong"]
    if minutes is None:
        return ["nin_xuyao_dengdai", "chaoguo", *_chinese(most_minutes, counted=True), "fenzhong"]
    return ["nin_dayue_xuyao_dengdai", *_chinese(minutes, counted=True), "fenzhong"]


def digits(phone_number: str, lang: Language) -> list[str]:
    """A phone number read digit by digit (``"+86 10 1234"`` is "plus eight six one zero
    one two three four"; Chinese reads 1 as 幺 ``yao`` and 0 as 零, as for phone numbers).
    A leading ``+`` is read; spaces, ``-``, ``.`` and brackets are skipped; any other
    character, or none to read, is a :class:`SpeechError` naming it."""
    if not isinstance(phone_number, str):
        raise SpeechError(f"phone number {phone_number!r}: not a string")
    language = _check_language(lang)
    bad = sorted({ch for ch in phone_number if not (ch.isascii() and ch.isdigit())}
                 - _SEPARATORS - {"+"})  # fmt: skip
    if bad:
        shown = " ".join(repr(ch) for ch in bad)
        raise SpeechError(f"phone number {phone_number!r}: cannot read {shown} (digits only)")
    if "+" in phone_number.lstrip()[1:]:
        raise SpeechError(f"phone number {phone_number!r}: '+' only at its start")
    keyed = [ch for ch in phone_number if ch not in _SEPARATORS]
    count = sum(ch != "+" for ch in keyed)
    if not 1 <= count <= MAX_DIGITS:
        raise SpeechError(f"phone number {phone_number!r}: {count} digits, must be 1..{MAX_DIGITS}")
    if language == "en":
        return ["plus" if ch == "+" else _EN_UNITS[int(ch)] for ch in keyed]
    return ["jia" if ch == "+" else "yao" if ch == "1" else _ZH_DIGITS[int(ch)] for ch in keyed]
