"""The SIP line's voice and its recordings (the stand-in line of test_voice.py, a real
relay): the recording announcement plays to the caller once, before the first agent is
bridged (the agent hears silence until it ends); the recording's timeline follows the
clock while no audio comes (held), so the file keeps the call's time; a key pressed on
the agent's phone goes to the caller and is not reported as the caller's."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import socket
from pathlib import Path

import pytest

from cti.protocol import RecordingFinished
from telephony_adapters.base import CALLER, AudioPlan
from telephony_adapters.media.bridge import HearLeg, HearPlayer, HearSilence
from telephony_adapters.media.player import ClipPlayer
from telephony_adapters.sipline.effects import AgentLegProgress, MediaStart, MediaStop
from telephony_adapters.sipline.rtp import DtmfEvent, RtpPacket, dtmf_packets, parse_rtp
from telephony_adapters.sipline.sdp import MediaPlan
from tests.harness import until
from tests.phones import write_tone
from tests.telephony_adapters.sipline.test_voice import (
    CALL,
    RING,
    TALK,
    FakeLine,
    answered,
    caller_up,
)
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


class KeyLine(FakeLine):
    """The stand-in line, keeping the keys reported as the caller's."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[tuple[str, str]] = []

    def heard_dtmf(self, call_id: str, event: DtmfEvent) -> None:
        self.keys.append((call_id, event.key))


def udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


def received(sock: socket.socket, into: list[RtpPacket]) -> list[RtpPacket]:
    """Every packet waiting on ``sock`` added to ``into``."""
    with contextlib.suppress(BlockingIOError):
        while True:
            into.append(parse_rtp(sock.recv(2048)))
    return into


async def test_an_agents_key_goes_to_the_caller_and_is_not_reported_as_the_callers(
    tmp_path: Path,
) -> None:
    line = KeyLine()
    with udp() as caller, udp() as phone:
        async with voice_line(tmp_path, line) as (voice, _line):
            port = await voice.open(CALL)
            plan = MediaPlan("127.0.0.1", caller.getsockname()[1], 0, "PCMU", 101, "sendrecv")
            voice.media_start(MediaStart(CALL, port, plan))
            await voice.plan_audio(CALL, RING, live=True)
            plan = dataclasses.replace(plan, remote_port=phone.getsockname()[1], payload_type=8,
                                       codec="PCMA", telephone_event=96)  # fmt: skip
            voice.leg_progress(AgentLegProgress(AGENT_LEG, "1001", "answered", 200, False, plan))
            voice.media_start(MediaStart(AGENT_LEG, voice.relay.port_of(AGENT_LEG), plan))
            await voice.plan_audio(CALL, TALK, live=True)
            for data in dtmf_packets("7", payload_type=96, ssrc=5, sequence=1, timestamp=160):
                phone.sendto(data, ("127.0.0.1", voice.relay.port_of(AGENT_LEG)))
            got: list[RtpPacket] = []
            await until(lambda: sum(p.payload_type == 101 for p in received(caller, got)) == 6)
            assert line.keys == []  # the agent's key is not the caller's
            # The caller's own key is reported (and goes to the phone).
            for data in dtmf_packets("3", payload_type=101, ssrc=9, sequence=1, timestamp=160):
                caller.sendto(data, ("127.0.0.1", port))
            await until(lambda: line.keys == [(CALL, "3")])
    events = [p for p in got if p.payload_type == 101]
    assert {p.payload[0] for p in events} == {7}  # the key, in the caller's event type
    assert len({p.timestamp for p in events}) == 1
