"""The queued caller's dialogue (scripts_engine.waiting_caller): announcements, the
callback offer and its number confirmation, voicemail; clips made by speech's real
functions. Virtual time: the test gives ``now``."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scripts_engine.flow_steps import (
    CallMeBack,
    FlowStep,
    HangUp,
    Language,
    MessageDone,
    RecordMessage,
    Say,
)
from scripts_engine.waiting_caller import (
    CLIP_NAMES,
    MessageTaking,
    WaitingCaller,
    WaitingSettings,
    usable_number,
)
from telephony_adapters.media import speech


class SpeechClips:
    """speech's clip functions, as the engine hands them to the core."""

    def position(self, place: int, lang: Language, /) -> list[str]:
        return speech.position(place, lang)

    def wait(self, seconds: float, lang: Language, /) -> list[str]:
        return speech.wait(seconds, lang)

    def digits(self, number: str, lang: Language, /) -> list[str]:
        return speech.digits(number, lang)


#: Every clip plays 1 s, the beep 0.5 s.
def clip_length(lang: Language, clip: str) -> float:
    return 0.5 if clip == "beep" else 1.0


def length(clips: tuple[str, ...]) -> float:
    return sum(clip_length("en", c) for c in clips)


SETTINGS = WaitingSettings(
    announce_every_s=60,
    first_announce_s=30,
    wait_tolerance_s=60,
    callback_offer=True,
    callback_key="1",
    voicemail_max_s=120,
    key_timeout_s=5,
    max_retries=2,
)
CALLER_ID = "+8613800138000"


def caller(
    number: str | None = CALLER_ID,
    lang: Language = "en",
    cfg: WaitingSettings = SETTINGS,
    lengths: Callable[[Language, str], float] = clip_length,
) -> WaitingCaller:
    return WaitingCaller(cfg, lang, number, SpeechClips(), lengths)


def only_say(steps: list[FlowStep]) -> Say:
    assert len(steps) == 1, steps
    step = steps[0]
    assert isinstance(step, Say), steps
    return step


def offered(number: str | None = CALLER_ID, lang: Language = "en") -> WaitingCaller:
    """A caller in "sales" who heard the first announcement (and the offer) at 30."""
    wc = caller(number, lang)
    assert wc.tick(0, 3, 120, "sales") == []
    assert CALLBACK_OFFER_CLIP in only_say(wc.tick(30, 3, 120, "sales")).clips
    return wc


CALLBACK_OFFER_CLIP = "callback_offer"


def read_back(number: str, lang: Language = "en") -> tuple[str, ...]:
    return ("we_will_call_you_at", *speech.digits(number, lang), "confirm_or_other")


# -- announcements


def test_the_first_announcement_comes_first_announce_s_after_joining_the_queue() -> None:
    wc = caller()
    assert wc.next_deadline() is None
    assert wc.tick(100, 3, 120, "sales") == []
    assert wc.next_deadline() == 130
    assert wc.tick(129.9, 3, 120, "sales") == []
    say = only_say(wc.tick(130, 3, 120, "sales"))
    assert say == Say(
        "en",
        (
            "you_are_caller_number",
            "three",
            "your_wait_is_about",
            "two",
            "minutes",
            "callback_offer",
        ),
    )
    assert not wc.in_dialogue


def test_announcements_repeat_every_announce_every_s_with_the_shells_figures() -> None:
    wc = offered()
    assert wc.next_deadline() == 90
    assert wc.tick(60, 2, 60, "sales") == []
    say = only_say(wc.tick(90, 2, 60, "sales"))
    assert say.clips == (
        "you_are_caller_number",
        "two",
        "your_wait_is_about",
        "one",
        "minute",
        "callback_offer",
    )
    assert wc.next_deadline() == 150


def test_a_long_announcement_is_not_cut_by_the_next() -> None:
    cfg = WaitingSettings(announce_every_s=3, first_announce_s=0)
    wc = caller(cfg=cfg)
    say = only_say(wc.tick(0, 25, 3000, "sales"))
    assert length(say.clips) > 3
    assert wc.next_deadline() == length(say.clips)


def test_the_caller_at_the_head_is_told_nothing_and_is_not_offered_a_callback() -> None:
    wc = caller()
    wc.tick(0, 1, 20, "sales")
    assert wc.tick(30, 1, 20, "sales") == []
    assert wc.next_deadline() == 90  # still checked each period
    assert wc.key("1", 31) == []  # never offered: the key is ignored
    assert not wc.in_dialogue
    say = only_say(wc.tick(90, 2, 40, "sales"))  # a call of higher rank came in ahead
    assert say.clips[:2] == ("you_are_caller_number", "two")


def test_without_an_estimate_only_the_place_is_said() -> None:
    wc = caller()
    wc.tick(0, 4, None, "sales")
    assert only_say(wc.tick(30, 4, None, "sales")).clips == (
        "you_are_caller_number",
        "four",
        "callback_offer",
    )


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_wait_that_is_no_number_is_not_said(bad: float) -> None:
    wc = caller()
    wc.tick(0, 4, bad, "sales")
    assert "your_wait_is_about" not in only_say(wc.tick(30, 4, bad, "sales")).clips


def test_a_negative_wait_is_said_as_less_than_a_minute() -> None:
    wc = caller()
    wc.tick(0, 4, -5, "sales")
    assert "your_wait_is_less_than_a_minute" in only_say(wc.tick(30, 4, -5, "sales")).clips


def wait(seconds: float) -> tuple[str, ...]:
    return tuple(speech.wait(seconds, "en"))


def said_wait(steps: list[FlowStep]) -> tuple[str, ...]:
    clips = only_say(steps).clips
    start = next(i for i, c in enumerate(clips) if c.startswith("your_wait"))
    return tuple(clips[start : clips.index("callback_offer")])


def test_the_wait_said_goes_up_by_the_tolerance_at_most_between_announcements() -> None:
    wc = caller()
    wc.tick(0, 5, 120, "sales")
    assert said_wait(wc.tick(30, 5, 120, "sales")) == wait(120)
    # The estimate jumps to 10 minutes: 120 + 60 s is said, then 180 + 60 s.
    assert said_wait(wc.tick(90, 5, 600, "sales")) == wait(180)
    assert said_wait(wc.tick(150, 5, 600, "sales")) == wait(240)
    # Going down is said as it is, and the clamp starts from there.
    assert said_wait(wc.tick(210, 4, 60, "sales")) == wait(60)
    assert said_wait(wc.tick(270, 4, 600, "sales")) == wait(120)


def test_the_clamp_holds_over_a_silence_at_the_head() -> None:
    wc = caller()
    wc.tick(0, 2, 120, "sales")
    wc.tick(30, 2, 120, "sales")
    assert wc.tick(90, 1, 30, "sales") == []
    assert said_wait(wc.tick(150, 3, 900, "sales")) == wait(180)


def test_a_change_of_queue_resets_the_clamp() -> None:
    wc = caller()
    wc.tick(0, 5, 120, "sales")
    wc.tick(30, 5, 120, "sales")
    wc.tick(60, 7, 600, "support")  # transferred: a new queue, a new estimate
    assert said_wait(wc.tick(90, 7, 600, "support")) == wait(600)


def test_a_transfer_back_and_forth_between_announcements_resets_the_clamp() -> None:
    wc = caller()
    wc.tick(0, 5, 120, "sales")
    wc.tick(30, 5, 120, "sales")
    wc.tick(40, 5, 900, "support")
    wc.tick(50, 5, 900, "sales")
    assert said_wait(wc.tick(90, 5, 900, "sales")) == wait(900)


def test_announcements_in_chinese_say_the_callers_ahead() -> None:
    wc = caller(lang="zh")
    wc.tick(0, 3, 120, "sales")
    say = only_say(wc.tick(30, 3, 120, "sales"))
    assert say == Say(
        "zh",
        (
            "nin_qianmian_haiyou",
            "liang",
            "wei",
            "nin_dayue_xuyao_dengdai",
            "liang",
            "fenzhong",
            "callback_offer",
        ),
    )
    assert only_say(wc.tick(90, 13, 30, "sales")).clips == (
        "nin_qianmian_haiyou",
        "shi",
        "er",
        "wei",
        "nin_xuyao_dengdai",
        "bu_dao_yi_fenzhong",
        "callback_offer",
    )


def test_the_callback_key_may_be_hash() -> None:
    wc = caller(cfg=WaitingSettings(callback_key="#", first_announce_s=30))
    wc.tick(0, 3, 120, "sales")
    wc.tick(30, 3, 120, "sales")
    assert wc.key("1", 31) == []
    assert only_say(wc.key("#", 32)).clips == read_back(CALLER_ID)


def test_without_the_callback_offer_the_key_does_nothing() -> None:
    wc = caller(cfg=WaitingSettings(callback_offer=False, first_announce_s=30))
    wc.tick(0, 3, 120, "sales")
    assert "callback_offer" not in only_say(wc.tick(30, 3, 120, "sales")).clips
    assert wc.key("1", 31) == []
    assert not wc.in_dialogue


# -- the callback dialogue


def test_callback_to_the_caller_id_read_back_and_confirmed() -> None:
    wc = offered()
    assert wc.key("5", 31) == []  # not offered: ignored
    assert wc.key("#", 31) == []
    say = only_say(wc.key("1", 32))  # barges in the announcement
    assert say == Say("en", read_back(CALLER_ID))
    assert say.clips[1:4] == ("plus", "eight", "six")
    assert wc.in_dialogue
    assert wc.next_deadline() == 32 + length(say.clips) + 5  # the key timeout, not 90
    assert wc.tick(45, 3, 120, "sales") == []
    assert only_say(wc.key("1", 40)) == Say("en", ("callback_confirmed",))
    assert wc.confirmed_number == CALLER_ID
    assert wc.next_deadline() == 41  # the confirmation's end
    assert wc.key("1", 40.5) == []
    assert wc.tick(41, 3, 120, "sales") == [CallMeBack(CALLER_ID)]
    assert wc.done
    assert not wc.in_dialogue
    assert wc.next_deadline() is None
    assert wc.tick(500, 3, 120, "sales") == []
    assert wc.key("1", 501) == []
    assert wc.leave_message("sales", 502) == []


def test_callback_in_chinese_reads_one_as_yao() -> None:
    wc = offered("13800138000", "zh")
    say = only_say(wc.key("1", 32))
    assert say == Say("zh", read_back("13800138000", "zh"))
    assert say.clips[1:4] == ("yao", "san", "ba")


def test_a_caller_id_written_with_separators_is_read_without_them() -> None:
    wc = offered("138 0013-8000")
    assert only_say(wc.key("1", 32)).clips == read_back("13800138000")


@pytest.mark.parametrize("number", [None, "", "anonymous", "sip:alice@example.com", "12"])
def test_a_caller_without_a_usable_number_keys_one_in(number: str | None) -> None:
    wc = offered(number)
    assert only_say(wc.key("1", 32)) == Say("en", ("enter_number",))
    for i, key in enumerate("01012345678"):
        wc.key(key, 34 + i)
    assert only_say(wc.key("#", 46)) == Say("en", read_back("01012345678"))
    wc.key("1", 47)
    assert wc.tick(48, 3, 120, "sales") == [CallMeBack("01012345678")]


def test_another_number_than_the_caller_id() -> None:
    wc = offered()
    wc.key("1", 32)
    assert only_say(wc.key("2", 33)) == Say("en", ("enter_number",))
    assert wc.key("5", 33.5) == [Say("en", ())]  # barges in: the prompt stops
    for key in "550123":
        assert wc.key(key, 35) == []
    assert only_say(wc.key("#", 36)).clips == read_back("5550123")
    wc.key("1", 37)
    assert wc.confirmed_number == "5550123"
    assert wc.tick(38, 3, 120, "sales") == [CallMeBack("5550123")]


def test_no_announcement_while_the_caller_keys_in_a_number() -> None:
    wc = offered(None)
    wc.key("1", 32)
    for at in (80, 85, 90):
        wc.key("5", at)
    assert wc.next_deadline() == 95
    assert wc.tick(92, 3, 120, "sales") == []
    assert wc.in_dialogue


def test_star_starts_the_number_over() -> None:
    wc = offered(None)
    wc.key("1", 32)
    for key in "999":
        wc.key(key, 34)
    assert only_say(wc.key("*", 35)) == Say("en", ("enter_number",))
    for key in "4567":
        wc.key(key, 37)
    assert only_say(wc.key("#", 38)).clips == read_back("4567")


def test_a_pause_ends_a_number_begun() -> None:
    wc = offered(None)
    wc.key("1", 32)
    wc.key("4", 34)
    wc.key("2", 35)
    assert wc.next_deadline() == 40
    assert only_say(wc.tick(40, 3, 120, "sales")).clips == read_back("42")


def test_no_number_keyed_times_out_and_is_asked_again() -> None:
    wc = offered(None)
    wc.key("1", 32)
    assert wc.next_deadline() == 32 + 1 + 5  # the prompt, then the key timeout
    assert only_say(wc.tick(38, 3, 120, "sales")) == Say("en", ("no_key", "enter_number"))
    assert wc.in_dialogue


def test_a_16th_digit_and_a_lone_hash_are_wrong_keys() -> None:
    wc = offered(None)
    wc.key("1", 32)
    for _ in range(15):
        assert wc.key("9", 34) == []
    assert only_say(wc.key("9", 35)) == Say("en", ("invalid_key", "enter_number"))
    assert only_say(wc.key("#", 37)) == Say("en", ("invalid_key", "enter_number"))
    assert wc.key("A", 40) == [Say("en", ())]  # the third wrong key: back to waiting
    assert not wc.in_dialogue


def test_wrong_keys_at_the_confirmation_are_reprompted_then_the_caller_waits_again() -> None:
    wc = offered()
    wc.key("1", 32)
    assert only_say(wc.key("3", 34)).clips == ("invalid_key", *read_back(CALLER_ID))
    assert only_say(wc.key("#", 35)).clips == ("invalid_key", *read_back(CALLER_ID))
    assert wc.key("*", 36) == [Say("en", ())]  # max_retries 2: the third ends it
    assert not wc.in_dialogue
    assert not wc.done
    assert wc.confirmed_number is None
    assert wc.next_deadline() == 36 + 60  # announcements again, a period from now
    assert wc.key("2", 37) == []  # waiting: ignored
    assert only_say(wc.key("1", 38)).clips == read_back(CALLER_ID)  # the offer stands


def test_timeouts_at_the_confirmation_are_reprompted_then_the_caller_waits_again() -> None:
    wc = offered()
    say = only_say(wc.key("1", 32))
    deadline = 32 + length(say.clips) + 5
    assert wc.next_deadline() == deadline
    say = only_say(wc.tick(deadline, 3, 120, "sales"))
    assert say.clips == ("no_key", *read_back(CALLER_ID))
    deadline += length(say.clips) + 5
    assert only_say(wc.tick(deadline, 3, 120, "sales")).clips[0] == "no_key"
    deadline = wc.next_deadline() or 0
    assert wc.tick(deadline, 3, 120, "sales") == [Say("en", ())]
    assert not wc.in_dialogue
    assert wc.next_deadline() == deadline + 60


def test_retries_count_over_the_whole_dialogue() -> None:
    wc = offered()
    wc.key("1", 32)
    wc.key("7", 33)  # one
    wc.key("2", 34)
    wc.key("#", 35)  # two
    assert wc.key("#", 36) == [Say("en", ())]


# -- voicemail


def test_voicemail_ended_by_hash() -> None:
    wc = offered()
    say = only_say(wc.leave_message("sales", 40))
    assert say == Say("en", ("voicemail_prompt", "beep"))
    assert wc.in_dialogue
    assert wc.next_deadline() == 41.5
    assert wc.key("#", 41) == []  # not recording yet
    assert wc.tick(41.4, 3, 120, "sales") == []
    assert wc.tick(41.5, 3, 120, "sales") == [RecordMessage("sales", 120)]
    assert wc.next_deadline() == 161.5
    assert wc.key("5", 50) == []
    assert wc.key("#", 60) == [MessageDone(CALLER_ID), Say("en", ("message_thanks",))]
    assert wc.key("#", 60.5) == []
    assert wc.tick(61, 3, 120, "sales") == [HangUp("voicemail left")]
    assert wc.done
    assert not wc.in_dialogue
    assert wc.next_deadline() is None


def test_voicemail_ended_by_its_maximum_length() -> None:
    mt = MessageTaking("zh", "", 30, clip_length)
    assert mt.start("support", 0) == [Say("zh", ("voicemail_prompt", "beep"))]
    assert mt.start("support", 0.1) == []
    assert mt.tick(1.5) == [RecordMessage("support", 30)]
    assert mt.recording
    assert mt.tick(31.4) == []
    assert mt.tick(31.5) == [MessageDone(""), Say("zh", ("message_thanks",))]
    assert mt.tick(32.5) == [HangUp("voicemail left")]
    assert mt.done
    assert mt.next_deadline() is None


def test_clips_of_no_length_chain_in_one_tick() -> None:
    wc = caller(None, lengths=lambda lang, clip: 0.0)
    assert wc.leave_message("sales", 5) == [Say("en", ("voicemail_prompt", "beep"))]
    assert wc.tick(5, 3, 60, "sales") == [RecordMessage("sales", 120)]
    assert wc.key("#", 6) == [MessageDone(""), Say("en", ("message_thanks",))]
    assert wc.tick(6, 3, 60, "sales") == [HangUp("voicemail left")]


@pytest.mark.parametrize("broken", [math.nan, -3.0, math.inf])
def test_a_clip_length_that_is_no_length_counts_as_zero(broken: float) -> None:
    wc = caller(lengths=lambda lang, clip: broken if clip == "beep" else 1.0)
    wc.leave_message("sales", 5)
    assert wc.next_deadline() == 6  # the prompt's second, the beep nothing
    assert wc.tick(6, 3, 60, "sales") == [RecordMessage("sales", 120)]


def test_the_voicemail_key_from_the_queue() -> None:
    cfg = WaitingSettings(first_announce_s=10, voicemail_key="9")
    wc = caller(None, cfg=cfg)
    assert wc.key("9", 1) == []  # not offered yet
    wc.tick(0, 3, 60, "support")
    assert only_say(wc.tick(10, 3, 60, "support")).clips[-2:] == (
        "callback_offer",
        "voicemail_offer",
    )
    assert only_say(wc.key("9", 12)).clips == ("voicemail_prompt", "beep")
    assert wc.tick(13.5, 3, 60, "support") == [RecordMessage("support", 120)]


def test_voicemail_ends_a_callback_dialogue_but_not_a_confirmed_callback() -> None:
    wc = offered()
    wc.key("1", 32)
    assert only_say(wc.leave_message("sales", 33)).clips[0] == "voicemail_prompt"
    assert wc.key("1", 34) == []  # no longer the confirmation
    confirmed = offered()
    confirmed.key("1", 32)
    confirmed.key("1", 33)
    assert confirmed.leave_message("sales", 33.5) == []
    assert confirmed.tick(34, 3, 120, "sales") == [CallMeBack(CALLER_ID)]


# -- settings and numbers


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("announce_every_s", 0),
        ("announce_every_s", math.nan),
        ("first_announce_s", -1),
        ("wait_tolerance_s", math.inf),
        ("voicemail_max_s", 0),
        ("key_timeout_s", -2),
        ("max_retries", -1),
        ("max_retries", 1.5),
        ("callback_key", "A"),
        ("callback_key", ""),
        ("callback_key", "12"),
        ("voicemail_key", "1"),  # the callback key too
    ],
)
def test_bad_settings_are_refused_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        WaitingSettings(**{field: value})


@pytest.mark.parametrize(
    ("raw", "usable"),
    [
        ("+86 138-0013-8000", "+8613800138000"),
        ("(010) 1234.5678", "01012345678"),
        ("anonymous", None),
        ("", None),
        (None, None),
        ("1+2", None),
        ("1234567890123456", None),
        ("٣٣٣٣", None),
    ],
)
def test_usable_number(raw: str | None, usable: str | None) -> None:
    assert usable_number(raw) == usable


# -- property: no sequence of inputs crashes it


KEYS = st.sampled_from([*"0123456789*#AD", "", "x", "11"])
WAITS = st.none() | st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10, 10_000)
ACTIONS = st.lists(
    st.one_of(
        st.tuples(
            st.just("tick"),
            st.floats(0, 90),
            st.integers(0, 300),
            WAITS,
            st.sampled_from(["sales", "support"]),
        ),
        st.tuples(st.just("key"), st.floats(0, 10), KEYS),
        st.tuples(st.just("leave"), st.floats(0, 10)),
    ),
    max_size=60,
)
NUMBER = re.compile(r"\+?[0-9]+")


@settings(max_examples=300, deadline=None)
@given(
    actions=ACTIONS,
    lang=st.sampled_from(["en", "zh"]),
    number=st.none() | st.sampled_from([CALLER_ID, "anonymous", "021 5555 0000"]),
    voicemail_key=st.none() | st.just("9"),
)
def test_no_sequence_of_ticks_and_keys_crashes_it(
    actions: list[tuple[Any, ...]], lang: Language, number: str | None, voicemail_key: str | None
) -> None:
    cfg = WaitingSettings(first_announce_s=5, announce_every_s=20, voicemail_key=voicemail_key)
    wc = caller(number, lang, cfg)
    known = set(speech.CLIPS[lang]) | set(CLIP_NAMES) | set(speech.digits("+0123456789", lang))
    now, started = 0.0, False
    for action in actions:
        now += action[1]
        if action[0] == "tick":
            steps = wc.tick(now, action[2], action[3], action[4])
            started = True
        elif action[0] == "key":
            steps = wc.key(action[2], now)
        else:
            steps = wc.leave_message("sales", now)
        for step in steps:
            if isinstance(step, CallMeBack):
                assert NUMBER.fullmatch(step.number), step
            if isinstance(step, Say):
                assert step.language == lang
                assert set(step.clips) <= known, step.clips
        deadline = wc.next_deadline()
        if wc.in_dialogue or (started and not wc.done):
            assert deadline is not None, (wc, action)
        if action[0] == "tick":
            assert deadline is None or deadline > now  # nothing left overdue by a tick
        assert not (wc.done and wc.in_dialogue)
