"""The caller's greeting and message on a SIP line that carries the voice, with baresip as
the caller (marker ``media``, its own network namespace; issue 20). The test plays the
engine's part: it answers the call before any agent and sends the plans. The caller hears
the prompt (a tone the test wrote as the prompt file: the received frames carry it, as
long as the file) and then the music; then a plan records the caller's message, and the
file holds the caller's tone alone (Goertzel), mono, reported with ``kind="message"``."""

from __future__ import annotations

import asyncio
import wave
from array import array
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from cti.protocol import CallArrived, RecordingFinished
from telephony_adapters.base import CALLER, AudioPlan, LineEvent, Prompt
from telephony_adapters.sipline.line import SipLine
from telephony_adapters.sipline.params import SipLineParams
from tests.audio import tone_power_ratio
from tests.harness import until
from tests.media.center import CALLER_HZ, SECOND, is_music
from tests.phones import Baresip, wav_samples, write_tone

pytestmark = pytest.mark.media

PROMPT_HZ = 600.0
FRAME = 160


@asynccontextmanager
async def voice_line(tmp_path: Path) -> AsyncIterator[tuple[SipLine, list[LineEvent]]]:
    """A SIP line with a phone (so it carries the voice) and its events as they come."""
    line = SipLine(SipLineParams(
        name="sip", bind_host="127.0.0.1", bind_port=0, phones={"1001": "sip:1001@127.0.0.1:9"},
        phone_qualify_s=0, recordings_dir=str(tmp_path / "recordings"),
    ))  # fmt: skip
    events: list[LineEvent] = []

    async def follow() -> None:
        async for event in line.events():
            events.append(event)

    await line.start()
    follower = asyncio.get_running_loop().create_task(follow())
    try:
        yield line, events
    finally:
        follower.cancel()
        await line.stop()


def tone_frames(samples: list[int], freq: float) -> list[bool]:
    """Per 20 ms frame: whether ``freq`` is most of it."""
    return [tone_power_ratio(samples[i : i + FRAME], freq) > 0.8
            for i in range(0, len(samples) - FRAME + 1, FRAME)]  # fmt: skip


async def test_the_caller_hears_the_prompt_then_music_and_leaves_a_message(
    tmp_path: Path,
) -> None:
    prompt = tmp_path / "greeting.wav"
    write_tone(prompt, PROMPT_HZ, 1.0)
    async with (
        voice_line(tmp_path) as (line, events),
        Baresip(tmp_path, user="caller", tone_hz=CALLER_HZ) as caller,
    ):
        host, port = line.local_address
        await caller.dial(f"sip:800@{host}:{port}")
        await until(lambda: any(isinstance(e, CallArrived) for e in events))
        call_id = next(e.call_id for e in events if isinstance(e, CallArrived))
        await line.answer(call_id)  # the engine's greeting, before any agent
        await caller.wait_event("CALL_ESTABLISHED")
        await caller.wait_event("CALL_RTPESTAB")
        queued = AudioPlan(music=frozenset({CALLER}))
        await line.plan_audio(call_id, AudioPlan(prompt=Prompt(1, (str(prompt),)),
                                                 music=queued.music))  # fmt: skip
        start = len(caller.received_audio())
        heard = list(await caller.wait_heard((start + 3 * SECOND) / SECOND))[start:]
        # The message: the caller's voice alone, while it hears the music.
        await line.plan_audio(call_id, AudioPlan(music=queued.music, message="messages/c.wav"))
        mark = len(caller.received_audio())
        await caller.wait_heard((mark + 2 * SECOND) / SECOND)
        await line.plan_audio(call_id, queued)
        await until(lambda: any(isinstance(e, RecordingFinished) for e in events))
        await caller.hangup()
        await caller.wait_event("CALL_CLOSED")
    tones = tone_frames(heard, PROMPT_HZ)
    first = tones.index(True)
    played = tones[first:].index(False)
    assert 48 <= played <= 51, tones  # the 1 s file, 50 frames, whole and once
    assert not any(tones[first + played :])
    music = heard[(first + played + 5) * FRAME : (first + played + 5) * FRAME + SECOND]
    assert len(music) == SECOND
    assert is_music(music, PROMPT_HZ, CALLER_HZ)
    [done] = [e for e in events if isinstance(e, RecordingFinished)]
    assert (done.kind, done.path, done.error) == ("message", "messages/c.wav", "")
    assert 1.5 <= done.duration_s <= 4.0
    path = tmp_path / "recordings" / "messages" / "c.wav"
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (1, 8000, 2)
    said = list(wav_samples(path))
    middle = array("h", said[len(said) // 4 : 3 * len(said) // 4])
    assert tone_power_ratio(middle, CALLER_HZ) > 0.8  # the caller's tone
    assert tone_power_ratio(middle, PROMPT_HZ) < 0.01  # not what it heard
