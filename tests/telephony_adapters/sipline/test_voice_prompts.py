"""What the caller hears and says on the SIP line's voice before any agent (issue 20; the
stand-in line of test_voice.py, a real relay, the caller a UDP socket of the test when
its audio matters): a plan's prompt played once in place of the music, which resumes
where it was; a new serial plays it again, a plan without it stops it at once; no prompt
while the caller talks to someone; unplayable files logged once and skipped; the
recording announcement after queue music; the caller's message recorded alone, mono, and
reported with ``kind="message"`` (or why not); the caller's keys reported in no room."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import wave
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from cti.protocol import RecordingFinished
from telephony_adapters.base import CALLER, AudioPlan, Prompt
from telephony_adapters.media import g711
from telephony_adapters.media.bridge import HearLeg, HearPlayer, HearSilence
from telephony_adapters.media.player import ClipPlayer, SequencePlayer
from telephony_adapters.sipline.effects import MediaStart, MediaStop
from telephony_adapters.sipline.rtp import RtpPacket, dtmf_packets, parse_rtp
from telephony_adapters.sipline.sdp import MediaPlan
from telephony_adapters.sipline.voice import SipVoice
from tests.audio import tone_frame, tone_power_ratio
from tests.harness import until
from tests.phones import wav_samples, write_tone
from tests.telephony_adapters.sipline.test_voice import CALL, RING, TALK, answered, caller_up
from tests.telephony_adapters.sipline.test_voice_errors import voice_line
from tests.telephony_adapters.sipline.test_voice_recording import KeyLine

AGENT_LEG = "c1~1001"
QUEUED = AudioPlan(music=frozenset({CALLER}))


def prompted(serial: int, *files: Path, plan: AudioPlan = QUEUED) -> AudioPlan:
    return dataclasses.replace(plan, prompt=Prompt(serial, tuple(str(f) for f in files)))


def source(voice: SipVoice) -> object:
    """What the caller's leg plays: its player (or HearLeg, HearSilence)."""
    heard = voice.relay.core.source_of(CALL)
    return heard.source if isinstance(heard, HearPlayer) else heard


def sequence(voice: SipVoice) -> SequencePlayer:
    player = source(voice)
    assert isinstance(player, SequencePlayer), player
    return player


@pytest.fixture
def clips(tmp_path: Path) -> dict[str, Path]:
    made = {"greeting": (500, 0.1), "menu": (1000, 0.06), "long": (700, 5.0)}
    paths = {}
    for name, (freq, seconds) in made.items():
        paths[name] = tmp_path / f"{name}.wav"
        write_tone(paths[name], freq, seconds)
    paths["missing"] = tmp_path / "missing.wav"
    return paths


async def test_the_prompt_plays_once_instead_of_the_music_which_resumes_where_it_was(
    tmp_path: Path, clips: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    async with voice_line(tmp_path) as (voice, _line):
        await caller_up(voice)
        await voice.plan_audio(CALL, QUEUED, live=True)
        music = source(voice)
        assert isinstance(music, ClipPlayer)
        assert music.loop
        greeting = prompted(1, clips["greeting"], clips["missing"], clips["menu"])
        with caplog.at_level(logging.WARNING):
            await voice.plan_audio(CALL, greeting, live=True)
            prompt = sequence(voice)
            assert [c.name for c in prompt.clips] == [str(clips["greeting"]), str(clips["menu"])]
            await until(lambda: source(voice) is music)  # the same cursor in the piece
            assert prompt.finished
            await voice.plan_audio(CALL, greeting, live=True)  # the same serial: not again
            assert source(voice) is music
            await voice.plan_audio(CALL, prompted(2, clips["missing"], clips["menu"]), live=True)
            assert [c.name for c in sequence(voice).clips] == [str(clips["menu"])]
    warned = [r.getMessage() for r in caplog.records if "missing.wav" in r.getMessage()]
    assert len(warned) == 1, warned  # read once, skipped each time
    assert "skipped" in warned[0]


async def test_a_new_serial_plays_again_and_a_plan_without_the_prompt_stops_it(
    tmp_path: Path, clips: dict[str, Path]
) -> None:
    async with voice_line(tmp_path) as (voice, _line):
        await caller_up(voice)
        await voice.plan_audio(CALL, prompted(1, clips["long"], plan=AudioPlan()), live=True)
        first = sequence(voice)
        await voice.plan_audio(CALL, prompted(2, clips["long"], plan=AudioPlan()), live=True)
        second = sequence(voice)
        assert second is not first  # from the start again
        await voice.plan_audio(CALL, AudioPlan(), live=True)  # a key: silence at once
        assert voice.relay.core.source_of(CALL) == HearSilence()
        await voice.plan_audio(CALL, prompted(3, clips["long"]), live=True)
        await voice.plan_audio(CALL, QUEUED, live=True)  # stopped: the music at once
        music = source(voice)
        assert isinstance(music, ClipPlayer)
        assert music.loop


async def test_no_prompt_while_the_caller_talks_to_someone_and_none_before_it_is_up(
    tmp_path: Path, clips: dict[str, Path]
) -> None:
    async with voice_line(tmp_path) as (voice, _line):
        port = await voice.open(CALL)  # answered, its media not agreed yet
        await voice.plan_audio(CALL, prompted(1, clips["long"]), live=True)
        assert voice.relay.core.source_of(CALL) == HearSilence()
        voice.media_start(MediaStart(CALL, port, MediaPlan("127.0.0.1", 9, 0, "PCMU", 101,
                                                           "sendrecv")))  # fmt: skip
        sequence(voice)  # up: it plays
        await voice.plan_audio(CALL, prompted(1, clips["long"], plan=RING), live=True)
        answered(voice, AGENT_LEG)
        await voice.plan_audio(CALL, prompted(1, clips["long"], plan=TALK), live=True)
        assert voice.relay.core.source_of(CALL) == HearLeg(AGENT_LEG)  # bridged: over
        held = dataclasses.replace(TALK, rooms=(frozenset({"1001"}),), music=frozenset({CALLER}))
        await voice.plan_audio(CALL, prompted(1, clips["long"], plan=held), live=True)
        music = source(voice)
        assert isinstance(music, ClipPlayer)
        assert music.loop
        await voice.plan_audio(CALL, prompted(2, clips["long"], plan=TALK), live=True)
        assert voice.relay.core.source_of(CALL) == HearLeg(AGENT_LEG)  # a room wins


async def test_the_recording_announcement_plays_to_a_caller_who_heard_queue_music(
    tmp_path: Path, clips: dict[str, Path]
) -> None:
    async with voice_line(tmp_path, announce_recording=str(clips["greeting"])) as (voice, _):
        await caller_up(voice)
        await voice.plan_audio(CALL, dataclasses.replace(RING, music=QUEUED.music), live=True)
        answered(voice, AGENT_LEG)
        await voice.plan_audio(CALL, dataclasses.replace(TALK, record=True), live=True)
        announcement = source(voice)
        assert isinstance(announcement, ClipPlayer)
        assert not announcement.loop
        assert announcement.clip.name == str(clips["greeting"])
        await until(lambda: voice.relay.core.source_of(CALL) == HearLeg(AGENT_LEG))


# --- the caller on a socket of the test ------------------------------------------------


@contextlib.contextmanager
def caller_socket() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    with sock:
        yield sock


async def answered_caller(voice: SipVoice, sock: socket.socket) -> int:
    """The caller's leg up, sending to ``sock``; its relay port."""
    port = await voice.open(CALL)
    plan = MediaPlan("127.0.0.1", sock.getsockname()[1], 0, "PCMU", 101, "sendrecv")
    voice.media_start(MediaStart(CALL, port, plan))
    return port


def heard(sock: socket.socket, into: list[RtpPacket]) -> list[RtpPacket]:
    with contextlib.suppress(BlockingIOError):
        while True:
            into.append(parse_rtp(sock.recv(2048)))
    return into


async def say_tone(sock: socket.socket, port: int, freq: float, frames: int) -> None:
    """The caller says a tone, a 20 ms packet every 20 ms (as a phone sends)."""
    for i in range(frames):
        payload = g711.linear_to_ulaw(tone_frame(freq, i))
        head = bytes([0x80, 0]) + (100 + i).to_bytes(2, "big") + (160 * i).to_bytes(4, "big")
        sock.sendto(head + (42).to_bytes(4, "big") + payload, ("127.0.0.1", port))
        await asyncio.sleep(0.02)  # pacing the sender, not waiting for a result


def finished(events: Sequence[object]) -> list[RecordingFinished]:
    return [e for e in events if isinstance(e, RecordingFinished)]


async def test_the_callers_message_is_its_voice_alone_in_a_mono_file(
    tmp_path: Path, clips: dict[str, Path]
) -> None:
    beep = tmp_path / "beep.wav"
    write_tone(beep, 500, 2.0)  # what the caller hears meanwhile is not in the message
    with caller_socket() as sock:
        async with voice_line(tmp_path) as (voice, line):
            port = await answered_caller(voice, sock)
            plan = prompted(1, beep, plan=AudioPlan(message="messages/2026/c1.wav"))
            await voice.plan_audio(CALL, plan, live=True)
            await say_tone(sock, port, 1000, 40)
            await voice.plan_audio(CALL, QUEUED, live=True)  # dropped: over
            await until(lambda: bool(finished(line.events)))
            got: list[RtpPacket] = []
            assert heard(sock, got), "the caller heard the prompt"
    [done] = finished(line.events)
    assert (done.kind, done.path, done.error) == ("message", "messages/2026/c1.wav", "")
    assert 0.7 <= done.duration_s <= 1.5
    path = tmp_path / "rec" / "messages" / "2026" / "c1.wav"
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (1, 8000, 2)
        assert w.getnframes() == round(done.duration_s * 8000)
    samples = wav_samples(path)
    loud = [i for i in range(0, len(samples) - 160, 160) if max(samples[i : i + 160]) > 1000]
    said = array("h", samples[loud[2] : loud[-2]])
    assert len(loud) >= 30
    assert tone_power_ratio(said, 1000) > 0.8
    assert tone_power_ratio(said, 500) < 0.01


async def test_a_message_ends_with_the_call_and_a_bad_path_is_reported(tmp_path: Path) -> None:
    async with voice_line(tmp_path, recording_format="g711") as (voice, line):
        await caller_up(voice)
        await voice.plan_audio(CALL, AudioPlan(message="m/c1.wav"), live=True)
        voice.media_stop(MediaStop(CALL, 0))  # the caller hangs up
        await until(lambda: bool(finished(line.events)))
        [done] = finished(line.events)
        assert (done.kind, done.path, done.error) == ("message", "m/c1.wav", "")
        data = (tmp_path / "rec" / "m" / "c1.wav").read_bytes()
        assert data[20:24] == bytes([7, 0, 1, 0])  # mu-law, mono
        line.events.clear()
        await caller_up(voice)
        await voice.plan_audio(CALL, AudioPlan(message="../outside.wav"), live=True)
        await voice.plan_audio(CALL, AudioPlan(), live=True)
        await until(lambda: bool(finished(line.events)))
        [bad] = finished(line.events)
        assert bad.kind == "message"
        assert "relative to the recordings folder" in bad.error
        line.events.clear()
        await voice.plan_audio(CALL, AudioPlan(message="m/c1.wav"), live=True)  # taken
        await voice.plan_audio(CALL, AudioPlan(), live=True)
        await until(lambda: bool(finished(line.events)))
        [taken] = finished(line.events)
        assert "exists" in taken.error
        assert "m/c1.wav" in taken.error
    assert not (tmp_path / "outside.wav").exists()


async def test_the_callers_keys_in_no_room_are_reported(
    tmp_path: Path, clips: dict[str, Path]
) -> None:
    line = KeyLine()
    with caller_socket() as sock:
        async with voice_line(tmp_path, line) as (voice, _line):
            port = await answered_caller(voice, sock)
            await voice.plan_audio(CALL, prompted(1, clips["long"]), live=True)  # the menu
            for data in dtmf_packets("1", payload_type=101, ssrc=9, sequence=1, timestamp=160):
                sock.sendto(data, ("127.0.0.1", port))
            await until(lambda: line.keys == [(CALL, "1")])
            await voice.plan_audio(CALL, QUEUED, live=True)  # queued, with music
            for data in dtmf_packets("#", payload_type=101, ssrc=9, sequence=9, timestamp=3200):
                sock.sendto(data, ("127.0.0.1", port))
            await until(lambda: line.keys == [(CALL, "1"), (CALL, "#")])
