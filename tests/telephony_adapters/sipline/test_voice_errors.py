"""Media errors of the SIP line's voice never end a call silently (the stand-in line of
test_voice.py, a real relay): the relay's port range exhausted when a phone is rung (the
offer is refused with the reason, so it goes on to the next agent) or when the caller is
answered (the caller is refused and the call is over for the engine), and a phone that
answers with a codec the relay cannot carry (its leg ended, refused or lost with the
reason). Each is logged."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from cti.errors import TelephonyError
from cti.protocol import CallerHungUp, PhoneAnswered, PhoneHungUp, PhoneRefused
from telephony_adapters.base import AudioPlan, Ring
from telephony_adapters.sipline.effects import AgentLegProgress, MediaStart
from telephony_adapters.sipline.params import SipLineParams
from telephony_adapters.sipline.sdp import MediaPlan
from telephony_adapters.sipline.voice import SipVoice, codec_refusal
from tests.telephony_adapters.sipline.test_voice import (
    CALL,
    RING,
    TALK,
    FakeLine,
    answered,
    caller_up,
    media,
)

G722 = MediaPlan("127.0.0.1", 9, 9, "G722", 101, "sendrecv")


@asynccontextmanager
async def voice_line(
    tmp_path: Path, line: FakeLine | None = None, **params: Any
) -> AsyncIterator[tuple[SipVoice, FakeLine]]:
    """The voice on a stand-in line; ``params`` override the line's (e.g. its ports)."""
    line = line or FakeLine()
    base = SipLineParams(name="sip", rtp_port_min=31000, rtp_port_max=31999,
                         recordings_dir=str(tmp_path / "rec"))  # fmt: skip
    voice = line.voice = SipVoice(line, dataclasses.replace(base, **params))
    voice.start()
    try:
        yield voice, line
    finally:
        await voice.stop()


def test_only_g711_is_carried() -> None:
    assert codec_refusal(media()) is None
    assert codec_refusal(dataclasses.replace(media(), payload_type=8, codec="pcma")) is None
    assert codec_refusal(None) is None
    assert codec_refusal(G722) == "no common codec (phone offered G722/9)"
    # PCMA's name on PCMU's number is no G.711 the relay knows either.
    assert codec_refusal(dataclasses.replace(media(), codec="PCMA")) is not None


async def test_no_port_left_for_the_phone_refuses_the_offer_with_the_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with voice_line(tmp_path, rtp_port_min=31200, rtp_port_max=31201) as (voice, line):
        await caller_up(voice)  # the caller has the range's one port
        with caplog.at_level(logging.WARNING):
            await voice.plan_audio(CALL, RING, live=True)
        [refused] = line.events
        assert isinstance(refused, PhoneRefused)
        assert (refused.call_id, refused.agent_id) == (CALL, "1001")
        assert refused.reason.startswith("no free RTP port on 127.0.0.1 in 31200-31201")
        assert line.rung == []
        assert "1001's phone not rung: no free RTP port" in caplog.text
        assert CALL in voice  # the caller is untouched: it keeps its place


async def test_no_port_left_for_the_caller_refuses_the_call_and_ends_it_for_the_engine(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with voice_line(tmp_path, rtp_port_min=31300, rtp_port_max=31301) as (voice, line):
        await voice.plan_audio(CALL, RING, live=True)  # the phone has the one port
        answered(voice, "c1~1001")
        with caplog.at_level(logging.ERROR), pytest.raises(TelephonyError, match="no free RTP"):
            await voice.open(CALL)  # the line answering the caller
        assert line.events == [
            PhoneAnswered(call_id=CALL, agent_id="1001", line="sip"),
            CallerHungUp(call_id=CALL, line="sip"),
        ]
        assert line.ended == ["c1~1001", CALL]  # the phone hung up, the caller refused
        assert CALL not in voice
        assert f"call {CALL} cannot be answered: no free RTP port" in caplog.text
        # The ended legs' port is free again at once; with it taken, a dial (no call
        # known yet) only fails: the dialer says so.
        await voice.open("c2")
        with pytest.raises(TelephonyError):
            await voice.open("c3")
        assert len(line.events) == 2


async def test_a_phone_answering_with_another_codec_is_refused_with_the_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with voice_line(tmp_path) as (voice, line):
        await caller_up(voice)
        await voice.plan_audio(CALL, RING, live=True)
        with caplog.at_level(logging.WARNING):
            voice.leg_progress(AgentLegProgress("c1~1001", "1001", "answered", 200, False, G722))
            voice.media_start(MediaStart("c1~1001", 0, G722))  # after: nothing more
        reason = "no common codec (phone offered G722/9)"
        assert line.events == [PhoneRefused(call_id=CALL, agent_id="1001", reason=reason,
                                            line="sip")]  # fmt: skip
        assert line.ended == ["c1~1001"]
        assert "c1~1001" not in voice.relay.core
        assert f"1001's phone: {reason}; hanging it up" in caplog.text
        # A phone that answers our INVITE with 488 says the same in SIP.
        await voice.plan_audio(CALL, AudioPlan(ring=(Ring("1002"),)), live=True)
        voice.leg_progress(AgentLegProgress("c1~1002", "1002", "failed", 488, True))
        last = line.events[-1]
        assert isinstance(last, PhoneRefused)
        assert last.reason == "488 no common codec (the phone takes neither PCMU nor PCMA)"


async def test_a_phone_taken_as_answered_whose_codec_changes_is_lost(tmp_path: Path) -> None:
    async with voice_line(tmp_path) as (voice, line):
        await caller_up(voice)
        await voice.plan_audio(CALL, TALK, live=True)  # accepted on the desk: auto-answer
        [(leg, _, auto, _)] = line.rung
        assert auto
        voice.leg_progress(AgentLegProgress(leg, "1001", "answered", 200, False, G722))
        [lost] = line.events
        assert isinstance(lost, PhoneHungUp)
        assert lost.lost
        assert lost.reason == "no common codec (phone offered G722/9)"
        # A phone answered on its own and then re-INVITEd to another codec: lost too.
        line.events.clear()
        await voice.plan_audio(CALL, AudioPlan(ring=(Ring("1002"),)), live=True)
        answered(voice, "c1~1002", "1002")
        voice.media_start(MediaStart("c1~1002", 0, G722))
        assert [type(e) for e in line.events] == [PhoneAnswered, PhoneHungUp]
        assert "c1~1002" in line.ended
