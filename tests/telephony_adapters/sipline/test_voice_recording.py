"""The SIP line's voice and its recordings (the stand-in line of test_voice.py, a real
relay): the recording announcement plays to the caller once, before the first agent is
bridged (the agent hears silence until it ends); the recording's timeline follows the
clock while no audio comes (held), so the file keeps the call's time."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from cti.protocol import RecordingFinished
from telephony_adapters.base import CALLER, AudioPlan
from telephony_adapters.media.bridge import HearLeg, HearPlayer, HearSilence
from telephony_adapters.media.player import ClipPlayer
from telephony_adapters.sipline.effects import MediaStop
from tests.harness import until
from tests.phones import write_tone
from tests.telephony_adapters.sipline.test_voice import CALL, RING, TALK, answered, caller_up
from tests.telephony_adapters.sipline.test_voice_errors import voice_line

AGENT_LEG = "c1~1001"
RECORDED = dataclasses.replace(TALK, record=True)
HELD = AudioPlan(rooms=(frozenset({"1001"}),), music=frozenset({CALLER}), record=True)


def player_of(source: object) -> ClipPlayer:
    assert isinstance(source, HearPlayer)
    assert isinstance(source.source, ClipPlayer)
    return source.source


async def test_the_announcement_plays_to_the_caller_once_before_the_first_bridge(
    tmp_path: Path,
) -> None:
    clip = tmp_path / "announce.wav"
    write_tone(clip, 500, 0.1)
    async with voice_line(tmp_path, announce_recording=str(clip)) as (voice, _line):
        core = voice.relay.core
        await caller_up(voice)
        await voice.plan_audio(CALL, RING, live=True)
        assert not isinstance(core.source_of(CALL), HearPlayer)  # ringing: nothing yet
        answered(voice, AGENT_LEG)
        await voice.plan_audio(CALL, RECORDED, live=True)
        announcement = player_of(core.source_of(CALL))
        assert not announcement.loop
        assert announcement.clip.name == str(clip)
        assert core.source_of(AGENT_LEG) == HearSilence()  # its phone is up, it waits
        await until(lambda: core.source_of(CALL) == HearLeg(AGENT_LEG), every_s=0.02)
        assert announcement.finished
        assert core.source_of(AGENT_LEG) == HearLeg(CALL)
        # Once: held, the caller hears the music; back, the agent, no announcement.
        await voice.plan_audio(CALL, HELD, live=True)
        assert player_of(core.source_of(CALL)).loop
        await voice.plan_audio(CALL, RECORDED, live=True)
        assert core.source_of(CALL) == HearLeg(AGENT_LEG)


async def test_no_announcement_for_a_call_not_recorded_nor_from_a_bad_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clip = tmp_path / "announce.wav"
    write_tone(clip, 500, 0.1)
    async with voice_line(tmp_path, announce_recording=str(clip)) as (voice, _line):
        await caller_up(voice)
        await voice.plan_audio(CALL, RING, live=True)
        answered(voice, AGENT_LEG)
        await voice.plan_audio(CALL, TALK, live=True)  # not recorded
        assert voice.relay.core.source_of(CALL) == HearLeg(AGENT_LEG)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav")
    with caplog.at_level(logging.WARNING):
        async with voice_line(tmp_path, announce_recording=str(bad)) as (voice, _line):
            await caller_up(voice)
            await voice.plan_audio(CALL, RING, live=True)
            answered(voice, AGENT_LEG)
            await voice.plan_audio(CALL, RECORDED, live=True)
            await voice.plan_audio(CALL, HELD, live=True)
            await voice.plan_audio(CALL, RECORDED, live=True)
            assert voice.relay.core.source_of(CALL) == HearLeg(AGENT_LEG)
    warned = [r for r in caplog.records if "bad.wav" in r.getMessage()]
    assert len(warned) == 1
    assert "none is played" in warned[0].getMessage()


async def test_the_recording_keeps_the_calls_time_while_no_audio_comes(tmp_path: Path) -> None:
    async with voice_line(tmp_path) as (voice, line):
        voice.files.chunk_bytes = 640  # 20 ms of stereo: each slot goes to the file
        await caller_up(voice)
        await voice.plan_audio(CALL, RING, live=True)
        answered(voice, AGENT_LEG)
        await voice.plan_audio(CALL, HELD, live=True)  # recorded, held: no frame comes

        def written() -> int:
            found = list((tmp_path / "rec").glob(f"*/{CALL}.wav"))
            return found[0].stat().st_size if found else 0

        # A quarter of a second of held time is in the file while the call goes on.
        await until(lambda: written() > 44 + 640 * 12, every_s=0.02)
        voice.media_stop(MediaStop(CALL, 0))
        await until(lambda: any(isinstance(e, RecordingFinished) for e in line.events))
    [done] = [e for e in line.events if isinstance(e, RecordingFinished)]
    assert done.error == ""
    assert done.duration_s >= 0.24
