"""The SIP line's voice (telephony_adapters/sipline/voice.py) with a stand-in line: its
relay is real (UDP on 127.0.0.1), the user agent's effects are handed in by the test.
What is checked: the phones rung and withdrawn from each plan (a fresh leg for a phone
rung again), the phones' progress as line events, a silent phone reported lost, the
caller's end hanging up the phones and closing the recording, and the music files."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cti.errors import TelephonyError
from cti.protocol import PhoneAnswered, PhoneHungUp, PhoneRefused, RecordingFinished
from telephony_adapters.base import CALLER, AudioPlan, LineEvent, Ring
from telephony_adapters.media.bridge import HearLeg, HearPlayer
from telephony_adapters.sipline.effects import AgentLegProgress, MediaStart, MediaStop
from telephony_adapters.sipline.params import SipLineParams
from telephony_adapters.sipline.rtp import DtmfEvent
from telephony_adapters.sipline.sdp import MediaPlan
from telephony_adapters.sipline.voice import SipVoice, caller_of
from tests.harness import until

CALL = "c1"


class FakeLine:
    """The line as the voice sees it: rings recorded, legs ended, events kept."""

    name = "sip"

    def __init__(self) -> None:
        self.voice: SipVoice | None = None
        self.rung: list[tuple[str, str, bool, tuple[str, str]]] = []
        """(leg, agent, auto answer, caller) of each ring."""
        self.ended: list[str] = []
        self.events: list[LineEvent] = []
        self.unreachable: set[str] = set()

    async def ring_agent(
        self,
        call_id: str,
        agent_id: str,
        *,
        caller: tuple[str, str] = ("", ""),
        auto_answer: bool = False,
        timeout_s: float | None = None,
        leg: str = "",
    ) -> str:
        if agent_id in self.unreachable:
            raise TelephonyError(f"the phone of agent {agent_id!r} is not reachable")
        assert self.voice is not None
        self.voice.own_leg(leg, call_id, agent_id)
        await self.voice.open(leg)
        self.rung.append((leg, agent_id, auto_answer, caller))
        return leg

    def end_leg(self, leg: str) -> None:
        self.ended.append(leg)

    def emit(self, event: LineEvent) -> None:
        self.events.append(event)

    def heard_dtmf(self, call_id: str, event: DtmfEvent) -> None:
        raise AssertionError("no DTMF here")


@pytest.fixture
async def voiced(tmp_path: Path) -> AsyncIterator[tuple[SipVoice, FakeLine]]:
    line = FakeLine()
    params = SipLineParams(name="sip", rtp_port_min=31000, rtp_port_max=31999,
                           recordings_dir=str(tmp_path / "rec"), phone_silence_s=0.05)  # fmt: skip
    voice = line.voice = SipVoice(line, params)
    voice.start()
    try:
        yield voice, line
    finally:
        await voice.stop()


def media(direction: str = "sendrecv") -> MediaPlan:
    return MediaPlan("127.0.0.1", 9, 0, "PCMU", 101, direction)


async def caller_up(voice: SipVoice) -> None:
    port = await voice.open(CALL)
    voice.media_start(MediaStart(CALL, port, media()))


def answered(voice: SipVoice, leg: str, agent: str = "1001") -> None:
    voice.leg_progress(AgentLegProgress(leg, agent, "answered", 200, False, media()))
    voice.media_start(MediaStart(leg, voice.relay.port_of(leg), media()))


RING = AudioPlan(ring=(Ring("1001", "张三 +8613912345678"),))
TALK = AudioPlan(rooms=(frozenset({CALLER, "1001"}),))


def test_a_display_is_split_into_name_and_number() -> None:
    assert caller_of("张三 李 +8613912345678") == ("张三 李", "+8613912345678")
    assert caller_of("+8613912345678") == ("", "+8613912345678")
    assert caller_of("") == ("", "")


async def test_the_phone_that_answers_is_bridged_to_the_caller(
    voiced: tuple[SipVoice, FakeLine],
) -> None:
    voice, line = voiced
    await caller_up(voice)
    await voice.plan_audio(CALL, RING, live=True)
    [(leg, agent, auto, caller)] = line.rung
    assert (leg, agent, auto, caller) == ("c1~1001", "1001", False, ("张三", "+8613912345678"))
    answered(voice, leg)
    assert line.events == [PhoneAnswered(call_id=CALL, agent_id="1001", line="sip")]
    await voice.plan_audio(CALL, TALK, live=True)
    assert voice.relay.core.source_of(CALL) == HearLeg(leg)
    assert voice.relay.core.source_of(leg) == HearLeg(CALL)
    await voice.plan_audio(CALL, AudioPlan(rooms=(frozenset({"1001"}),),
                                           music=frozenset({CALLER})), live=True)  # fmt: skip
    assert isinstance(voice.relay.core.source_of(CALL), HearPlayer)  # music on hold
    assert line.rung == [(leg, agent, auto, caller)]  # nothing rung again


async def test_a_phone_accepted_on_the_desk_is_rung_again_on_a_leg_of_its_own(
    voiced: tuple[SipVoice, FakeLine],
) -> None:
    voice, line = voiced
    await voice.plan_audio(CALL, RING, live=True)
    await voice.plan_audio(CALL, TALK, live=True)
    assert [(leg, auto) for leg, _, auto, _ in line.rung] == [
        ("c1~1001", False),
        ("c1~1001~2", True),
    ]
    assert line.ended == ["c1~1001"]
    # The withdrawn leg's end says nothing; the auto-answered one says the audio is
    # connected (auto: there is no offer left to accept).
    voice.leg_progress(AgentLegProgress("c1~1001", "1001", "cancelled", 487, True))
    answered(voice, "c1~1001~2")
    assert line.events == [PhoneAnswered(call_id=CALL, agent_id="1001", auto=True,
                                         line="sip")]  # fmt: skip


async def test_refusals_and_hang_ups_of_the_phone_are_reported(
    voiced: tuple[SipVoice, FakeLine],
) -> None:
    voice, line = voiced
    line.unreachable.add("1002")
    await voice.plan_audio(CALL, AudioPlan(ring=(Ring("1001"), Ring("1002"))), live=True)
    voice.leg_progress(AgentLegProgress("c1~1001", "1001", "declined", 486, True))
    assert line.events == [
        PhoneRefused(call_id=CALL, agent_id="1002", reason="the phone of agent '1002' is "
                     "not reachable", line="sip"),
        PhoneRefused(call_id=CALL, agent_id="1001", reason="486 declined", line="sip"),
    ]  # fmt: skip
    line.events.clear()
    await voice.plan_audio(CALL, TALK, live=True)  # rung again, auto-answer
    answered(voice, "c1~1001~2")
    line.events.clear()  # its PhoneAnswered(auto=True)
    voice.leg_progress(AgentLegProgress("c1~1001~2", "1001", "ended", 0, True))
    assert line.events == [PhoneHungUp(call_id=CALL, agent_id="1001",
                                       reason="hung up on the phone", line="sip")]  # fmt: skip


async def test_a_phone_that_goes_silent_is_hung_up_and_reported_lost(
    voiced: tuple[SipVoice, FakeLine],
) -> None:
    voice, line = voiced
    await caller_up(voice)
    await voice.plan_audio(CALL, RING, live=True)
    answered(voice, "c1~1001")
    await voice.plan_audio(CALL, TALK, live=True)
    await until(lambda: len(line.events) == 2)
    lost = line.events[1]
    assert isinstance(lost, PhoneHungUp)
    assert lost.lost
    assert "no audio" in lost.reason
    assert line.ended == ["c1~1001"]
    assert "c1~1001" not in voice.relay.core  # its port is closed


async def test_the_callers_end_hangs_up_the_phones_and_closes_the_recording(
    voiced: tuple[SipVoice, FakeLine], tmp_path: Path
) -> None:
    voice, line = voiced
    await caller_up(voice)
    await voice.plan_audio(CALL, AudioPlan(ring=(Ring("1001"), Ring("1002"))), live=True)
    answered(voice, "c1~1001")
    await voice.plan_audio(CALL, AudioPlan(ring=(Ring("1002"),), rooms=TALK.rooms, record=True,
                                           record_paused=True), live=True)  # fmt: skip
    voice.media_stop(MediaStop(CALL, 0))
    assert sorted(line.ended) == ["c1~1001", "c1~1002"]
    assert CALL not in voice
    await until(lambda: any(isinstance(e, RecordingFinished) for e in line.events))
    [done] = [e for e in line.events if isinstance(e, RecordingFinished)]
    assert done.error == ""
    assert done.path.endswith("/c1.wav")
    assert (tmp_path / "rec" / done.path).is_file()
    assert len(done.paused) == 1  # paused from the start to the end
    # The engine's empty plan for a call over is no error; any other plan is.
    await voice.plan_audio(CALL, AudioPlan(), live=False)
    with pytest.raises(TelephonyError, match="no live call"):
        await voice.plan_audio(CALL, TALK, live=False)


async def test_a_bad_music_file_is_logged_once_and_the_shipped_piece_plays(
    voiced: tuple[SipVoice, FakeLine], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    voice, _line = voiced
    bad = tmp_path / "music.wav"
    bad.write_bytes(b"not a wav")
    await caller_up(voice)
    held = AudioPlan(music=frozenset({CALLER}), music_file=str(bad))
    with caplog.at_level(logging.WARNING):
        await voice.plan_audio(CALL, held, live=True)
        await voice.plan_audio(CALL, TALK, live=True)
        await voice.plan_audio(CALL, held, live=True)
    warned = [r for r in caplog.records if "music.wav" in r.getMessage()]
    assert len(warned) == 1
    source = voice.relay.core.source_of(CALL)
    assert isinstance(source, HearPlayer)
    assert source.source.next_frame(0.0) != bytes(320)  # the shipped piece, not silence
