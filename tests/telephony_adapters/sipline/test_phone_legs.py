"""Which agents' phones a call needs, from its audio plan."""

from __future__ import annotations

from telephony_adapters.base import CALLER, AudioPlan, Ring
from telephony_adapters.sipline.phone_legs import PhoneLeg, RingPhone, WithdrawLeg, phone_steps


def test_an_offer_rings_the_phone_with_the_caller_on_its_display() -> None:
    plan = AudioPlan(ring=(Ring("1001", "张伟 +8613812345678"),))
    assert phone_steps(plan, {}, "") == [RingPhone("1001", "张伟 +8613812345678", False)]


def test_a_ringing_phone_is_left_ringing_and_an_answered_one_is_left_alone() -> None:
    ringing = {"1001": PhoneLeg("1001", "c~1001")}
    assert phone_steps(AudioPlan(ring=(Ring("1001", "x"),)), ringing, "") == []
    answered = {"1001": PhoneLeg("1001", "c~1001", answered=True)}
    talking = AudioPlan(rooms=(frozenset({CALLER, "1001"}),))
    assert phone_steps(talking, answered, "") == []


def test_accepting_on_the_desk_makes_the_ringing_phone_answer_by_itself() -> None:
    ringing = {"1001": PhoneLeg("1001", "c~1001")}
    talking = AudioPlan(rooms=(frozenset({CALLER, "1001"}),))
    assert phone_steps(talking, ringing, "+8613812345678") == [
        WithdrawLeg("1001"),
        RingPhone("1001", "+8613812345678", auto_answer=True),
    ]
    auto = {"1001": PhoneLeg("1001", "c~1001", auto_answer=True)}
    assert phone_steps(talking, auto, "") == []  # already on its way


def test_an_agent_the_plan_no_longer_names_loses_its_leg() -> None:
    legs = {"1001": PhoneLeg("1001", "c~1001", answered=True),
            "1002": PhoneLeg("1002", "c~1002")}  # fmt: skip
    held_for_1002 = AudioPlan(rooms=(frozenset({"1002"}),), music=frozenset({CALLER}))
    assert phone_steps(held_for_1002, legs, "") == [
        WithdrawLeg("1001"),
        WithdrawLeg("1002"),
        RingPhone("1002", "", auto_answer=True),
    ]
    assert phone_steps(AudioPlan(), legs, "") == [WithdrawLeg("1001"), WithdrawLeg("1002")]


def test_a_transfer_to_a_connected_agent_without_a_leg_rings_it_to_answer_by_itself() -> None:
    plan = AudioPlan(rooms=(frozenset({CALLER, "1002"}),))
    assert phone_steps(plan, {}, "+86138") == [RingPhone("1002", "+86138", auto_answer=True)]
