"""Standing legs (``phone_mode = "persistent"``) of the SIP line's voice, with the
stand-in line of test_voice.py and a real relay: the phone is called once (auto-answer);
calls that ring the agent are bridged into that leg with ``PhoneAnswered`` at once, one
after the other; the agent leaving a call gives the leg back (silence, out of the
recording, no time-out) and never hangs it up; hold and mute act on it as on any leg;
the phone hanging it up is ``PhoneDisconnected`` (and ``PhoneHungUp`` for its call);
release ends it; a leg not up yet leaves the phone to be rung as usual."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cti.errors import TelephonyError
from cti.protocol import PhoneAnswered, PhoneDisconnected, PhoneHungUp
from telephony_adapters.base import CALLER, AudioPlan, Ring
from telephony_adapters.media.bridge import HearLeg, HearPlayer, HearSilence
from telephony_adapters.sipline.effects import AgentLegProgress, MediaStart, MediaStop
from telephony_adapters.sipline.voice import SipVoice
from tests.harness import until
from tests.telephony_adapters.sipline.test_voice import RING, TALK, FakeLine, media
from tests.telephony_adapters.sipline.test_voice_errors import voice_line

AGENT = "1001"


@pytest.fixture
async def kept(tmp_path: Path) -> AsyncIterator[tuple[SipVoice, FakeLine, str]]:
    """The voice with agent 1001's standing leg up: (voice, line, the leg's id)."""
    async with voice_line(tmp_path, rtp_port_min=31400, rtp_port_max=31499,
                          phone_silence_s=0.05) as (voice, line):  # fmt: skip
        await voice.keep_phone(AGENT, True)
        [(leg, agent, auto, caller)] = line.rung
        assert (agent, auto, caller) == (AGENT, True, ("CTI Desk", ""))
        assert leg.startswith("standing~1001~")
        await voice.keep_phone(AGENT, True)  # ringing already: nothing more
        answered(voice, leg)
        await voice.keep_phone(AGENT, True)  # up: nothing more
        assert len(line.rung) == 1
        yield voice, line, leg


def answered(voice: SipVoice, leg: str) -> None:
    voice.leg_progress(AgentLegProgress(leg, AGENT, "answered", 200, False, media()))
    voice.media_start(MediaStart(leg, voice.relay.port_of(leg), media()))


async def caller_up(voice: SipVoice, call: str) -> None:
    port = await voice.open(call)
    voice.media_start(MediaStart(call, port, media()))


def spy_timeouts(voice: SipVoice) -> list[tuple[str, float | None]]:
    """Every silence time-out the voice sets on the relay, from now on."""
    seen: list[tuple[str, float | None]] = []
    set_timeout = voice.relay.set_timeout

    def spy(leg_id: str, timeout_s: float | None) -> None:
        seen.append((leg_id, timeout_s))
        set_timeout(leg_id, timeout_s)

    voice.relay.set_timeout = spy  # type: ignore[method-assign]
    return seen


async def test_two_calls_in_a_row_are_bridged_into_the_standing_leg_without_ringing(
    kept: tuple[SipVoice, FakeLine, str],
) -> None:
    voice, line, leg = kept
    core = voice.relay.core
    timeouts = spy_timeouts(voice)
    assert core.source_of(leg) == HearSilence()  # between calls
    for call in ("c1", "c2"):
        await caller_up(voice, call)
        await voice.plan_audio(call, RING, live=True)
        assert line.events[-1] == PhoneAnswered(call_id=call, agent_id=AGENT, line="sip")
        talk = AudioPlan(rooms=TALK.rooms, record=True)
        await voice.plan_audio(call, talk, live=True)
        assert (core.source_of(call), core.source_of(leg)) == (HearLeg(leg), HearLeg(call))
        voice.media_stop(MediaStop(call, 0))  # the caller hangs up
        assert core.source_of(leg) == HearSilence()
        assert leg in core  # its port stays open
    assert len(line.rung) == 1  # called once, at keep
    assert line.ended == []  # never hung up between calls
    # A silence time-out only while in a call.
    assert timeouts == [(leg, 0.05), (leg, None)] * 2
    assert not any(isinstance(e, PhoneHungUp | PhoneDisconnected) for e in line.events)


async def test_hold_mute_and_the_agent_leaving_act_on_the_standing_leg(
    kept: tuple[SipVoice, FakeLine, str],
) -> None:
    voice, line, leg = kept
    core = voice.relay.core
    await caller_up(voice, "c1")
    await voice.plan_audio("c1", RING, live=True)
    held = AudioPlan(rooms=(frozenset({AGENT}),), music=frozenset({CALLER}))
    await voice.plan_audio("c1", held, live=True)
    assert isinstance(core.source_of("c1"), HearPlayer)
    assert core.source_of(leg) == HearSilence()
    await voice.plan_audio("c1", AudioPlan(rooms=TALK.rooms, muted=frozenset({AGENT})),
                           live=True)  # fmt: skip
    assert core.source_of("c1") == HearLeg(leg)
    # A blind transfer away: the caller waits with music, the agent's leg stays up.
    await voice.plan_audio("c1", AudioPlan(music=frozenset({CALLER})), live=True)
    assert core.source_of(leg) == HearSilence()
    assert isinstance(core.source_of("c1"), HearPlayer)
    assert line.ended == []
    # Given back unmuted: the next call hears the agent.
    await caller_up(voice, "c2")
    await voice.plan_audio("c2", TALK, live=True)  # taken with no PhoneAnswered: connected
    assert line.events == [PhoneAnswered(call_id="c1", agent_id=AGENT, line="sip")]
    assert core.source_of("c2") == HearLeg(leg)


async def test_the_phone_hanging_up_its_standing_leg_is_reported_and_keep_calls_it_again(
    kept: tuple[SipVoice, FakeLine, str],
) -> None:
    voice, line, leg = kept
    await caller_up(voice, "c1")
    await voice.plan_audio("c1", RING, live=True)
    line.events.clear()
    voice.leg_progress(AgentLegProgress(leg, AGENT, "ended", 0, True))
    voice.media_stop(MediaStop(leg, 0))
    assert line.events == [
        PhoneHungUp(call_id="c1", agent_id=AGENT, reason="hung up on the phone", line="sip"),
        PhoneDisconnected(agent_id=AGENT, reason="hung up on the phone", line="sip"),
    ]
    assert leg not in voice.relay.core
    await voice.keep_phone(AGENT, True)  # the next keep calls the phone again
    again = line.rung[-1][0]
    assert again != leg
    assert again.startswith("standing~1001~")
    # Not up yet: a call that rings the agent rings its phone as usual.
    await voice.plan_audio("c1", RING, live=True)
    assert line.rung[-1][:3] == ("c1~1001", AGENT, False)


async def test_release_ends_the_standing_leg_and_a_silent_phone_in_a_call_is_lost(
    kept: tuple[SipVoice, FakeLine, str],
) -> None:
    voice, line, leg = kept
    await voice.keep_phone(AGENT, False)
    assert line.ended == [leg]
    voice.leg_progress(AgentLegProgress(leg, AGENT, "ended", 0, True))
    voice.media_stop(MediaStop(leg, 0))
    assert line.events == []  # released by us: nothing to say
    await voice.keep_phone(AGENT, False)  # none kept: nothing to do
    await voice.keep_phone(AGENT, True)
    second = line.rung[-1][0]
    answered(voice, second)
    await caller_up(voice, "c1")
    await voice.plan_audio("c1", TALK, live=True)  # the phone sends no audio in the call
    await until(lambda: any(isinstance(e, PhoneHungUp) for e in line.events))
    [lost] = line.events
    assert isinstance(lost, PhoneHungUp)
    assert (lost.call_id, lost.lost) == ("c1", True)
    assert line.ended == [leg, second]


async def test_a_phone_that_cannot_be_called_is_an_error_and_keeps_nothing(
    kept: tuple[SipVoice, FakeLine, str],
) -> None:
    voice, line, _leg = kept
    line.unreachable.add("1002")
    with pytest.raises(TelephonyError, match="not reachable"):
        await voice.keep_phone("1002", True)
    assert voice.standing.of_agent("1002") is None
    # A standing call the phone declines is reported like a hang-up.
    line.unreachable.clear()
    await voice.keep_phone("1002", True)
    leg = line.rung[-1][0]
    voice.leg_progress(AgentLegProgress(leg, "1002", "declined", 486, True))
    assert line.events == [PhoneDisconnected(agent_id="1002", reason="486 declined", line="sip")]
    assert voice.standing.of_agent("1002") is None
    await voice.plan_audio("c9", AudioPlan(ring=(Ring("1002"),)), live=True)
    assert line.rung[-1][:2] == ("c9~1002", "1002")
