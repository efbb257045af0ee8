"""A transfer to a number by a second trunk leg (telephony_adapters/sipline/transfer_out.py)
with the stand-in line of test_voice (a real relay on 127.0.0.1; the dial's outcome is
handed in by the test): the second leg dialled to the REFER's target, the caller hearing
the music while it rings, bridged to the caller when it answers (the agent's leg ended,
the recording closed, the engine's later plans ignored), the pair ending together with
one CallerHungUp for the call; a busy second leg leaves the caller with the agent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cti.protocol import CallerHungUp, RecordingFinished
from telephony_adapters.base import AudioPlan, DialEnd, DialOutcome, Ring, TransferResult
from telephony_adapters.media.bridge import HearLeg, HearPlayer, HearSilence
from telephony_adapters.sipline.effects import MediaStart, MediaStop, TransferOutcome
from telephony_adapters.sipline.params import SipLineParams
from telephony_adapters.sipline.transfer_out import bridge_out, out_leg_id, refer_refused
from telephony_adapters.sipline.voice import SipVoice
from tests.harness import until
from tests.telephony_adapters.sipline.test_voice import (
    CALL,
    RING,
    TALK,
    FakeLine,
    answered,
    caller_up,
    media,
)

TARGET = "sip:+8613900000001@127.0.0.1:5060;user=phone"
OUT = out_leg_id(CALL)
AGENT_LEG = "c1~1001"


class DiallingLine(FakeLine):
    """The stand-in line that also dials: each dial's outcome is the test's to give."""

    def __init__(self) -> None:
        super().__init__()
        self.dialled: list[tuple[str, str]] = []
        """(number, call id) of each dial."""
        self.outcomes: dict[str, asyncio.Future[DialOutcome]] = {}

    async def dial(self, number: str, *, call_id: str | None = None) -> str:
        assert self.voice is not None
        assert call_id is not None
        await self.voice.open(call_id)
        self.dialled.append((number, call_id))
        self.outcomes[call_id] = asyncio.get_running_loop().create_future()
        return call_id

    async def dial_outcome(self, call_id: str) -> DialOutcome:
        return await self.outcomes[call_id]


@pytest.fixture
async def talking(tmp_path: Path) -> AsyncIterator[tuple[SipVoice, DiallingLine]]:
    """Agent 1001 talking with the caller, recorded; a transfer to TARGET asked."""
    line = DiallingLine()
    params = SipLineParams(name="sip", rtp_port_min=31000, rtp_port_max=31999,
                           recordings_dir=str(tmp_path / "rec"))  # fmt: skip
    voice = line.voice = SipVoice(line, params)
    voice.start()
    try:
        await caller_up(voice)
        await voice.plan_audio(CALL, RING, live=True)
        answered(voice, AGENT_LEG)
        await voice.plan_audio(CALL, AudioPlan(rooms=TALK.rooms, record=True), live=True)
        assert voice.relay.core.source_of(CALL) == HearLeg(AGENT_LEG)
        voice.outs.asked(CALL, TARGET)
        line.events.clear()
        yield voice, line
    finally:
        await voice.stop()


async def ringing_out(voice: SipVoice, line: DiallingLine) -> asyncio.Task[TransferResult]:
    """The REFER was refused: the second leg is dialled; the caller hears the music."""
    task = asyncio.create_task(bridge_out(line, voice, CALL, "603 Decline"))
    await until(lambda: OUT in line.outcomes)
    assert line.dialled == [(TARGET, OUT)]
    assert isinstance(voice.relay.core.source_of(CALL), HearPlayer)  # the queue's music
    assert voice.relay.core.source_of(AGENT_LEG) == HearSilence()
    return task


def test_a_refused_or_unfinished_refer_is_one_to_bridge() -> None:
    def progress(*steps: tuple[int, bool]) -> list[TransferOutcome]:
        return [TransferOutcome(CALL, status, final) for status, final in steps]

    assert refer_refused(progress((405, True)))
    assert refer_refused(progress((408, True)))  # the REFER unanswered
    assert refer_refused(progress((202, False), (100, False)))  # no final NOTIFY in time
    assert refer_refused(progress())
    assert not refer_refused(progress((202, False), (486, True)))  # the number was busy
    assert not refer_refused(progress((202, False), (0, True)))


async def test_an_answered_second_leg_is_bridged_to_the_caller_and_ends_with_it(
    talking: tuple[SipVoice, DiallingLine],
) -> None:
    voice, line = talking
    task = await ringing_out(voice, line)
    voice.media_start(MediaStart(OUT, voice.relay.port_of(OUT), media()))
    assert OUT not in voice  # the out leg is no caller of its own
    line.outcomes[OUT].set_result(DialOutcome(OUT, DialEnd.ANSWERED, "200 answered"))
    result = await task
    assert result.transferred
    assert result.detail == "the REFER: 603 Decline; bridged to a second trunk leg"
    assert voice.relay.core.source_of(CALL) == HearLeg(OUT)
    assert voice.relay.core.source_of(OUT) == HearLeg(CALL)
    assert line.ended == [AGENT_LEG]
    assert AGENT_LEG not in voice.relay.core
    await until(lambda: any(isinstance(e, RecordingFinished) for e in line.events))
    # The engine's plans that follow (the agent in wrap-up) change nothing, and even a
    # late plan naming the agent rings no phone.
    await voice.plan_audio(CALL, AudioPlan(), live=True)
    await voice.plan_audio(CALL, AudioPlan(ring=(Ring("1001"),), rooms=TALK.rooms), live=True)
    assert len(line.rung) == 1
    assert voice.relay.core.source_of(CALL) == HearLeg(OUT)
    # The far number hangs up: the caller is hung up, the engine hears it once.
    line.events.clear()
    assert not voice.caller_left(OUT)
    assert line.ended == [AGENT_LEG, CALL]
    assert line.events == [CallerHungUp(call_id=CALL, line="sip")]
    voice.media_stop(MediaStop(OUT, 0))
    voice.media_stop(MediaStop(CALL, 0))  # our BYE to the caller
    assert CALL not in voice
    assert not voice.caller_left(OUT)  # a repeated end of the out leg is still not a call


async def test_the_callers_end_hangs_up_the_bridged_second_leg(
    talking: tuple[SipVoice, DiallingLine],
) -> None:
    voice, line = talking
    task = await ringing_out(voice, line)
    line.outcomes[OUT].set_result(DialOutcome(OUT, DialEnd.ANSWERED, "200 answered"))
    assert (await task).transferred
    assert voice.caller_left(CALL)  # the engine hears the caller's own end
    assert line.ended == [AGENT_LEG, OUT]
    assert CALL not in voice


async def test_a_busy_second_leg_leaves_the_caller_with_the_agent(
    talking: tuple[SipVoice, DiallingLine],
) -> None:
    voice, line = talking
    task = await ringing_out(voice, line)
    line.outcomes[OUT].set_result(DialOutcome(OUT, DialEnd.BUSY, "486 busy"))
    result = await task
    assert not result.transferred
    assert result.detail == "the REFER: 603 Decline; the second trunk leg: 486 busy"
    assert voice.relay.core.source_of(CALL) == HearLeg(AGENT_LEG)
    assert voice.relay.core.source_of(AGENT_LEG) == HearLeg(CALL)
    assert line.ended == []
    assert not voice.caller_left(OUT)  # the failed dial's own end is not the engine's
    assert line.events == []
    assert CALL in voice


async def test_the_caller_leaving_while_it_rings_cancels_the_second_leg(
    talking: tuple[SipVoice, DiallingLine],
) -> None:
    voice, line = talking
    task = await ringing_out(voice, line)
    assert voice.caller_left(CALL)
    assert OUT in line.ended
    line.outcomes[OUT].set_result(DialOutcome(OUT, DialEnd.NO_ANSWER, "487 cancelled"))
    result = await task
    assert not result.transferred


async def test_no_target_or_no_call_is_no_second_leg(
    talking: tuple[SipVoice, DiallingLine],
) -> None:
    voice, line = talking
    result = await bridge_out(line, voice, "c9", "405 Method Not Allowed")
    assert result == TransferResult("c9", False, "the REFER: 405 Method Not Allowed")
    voice.outs.asked("c9", TARGET)  # asked, but the call is not the voice's
    assert not (await bridge_out(line, voice, "c9", "405")).transferred
    assert line.dialled == []
