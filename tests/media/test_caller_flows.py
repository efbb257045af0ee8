"""What a caller hears (issue 20) end to end (marker ``media``): baresip calls the SIP
line of a real engine whose dialled numbers have ``[[flows]]``, and the audio it received
is searched for the shipped prompt files (tests/audio.py's ``find_clips``: the same
waveform through G.711). The greeting and the menu are heard, a key (RFC 4733 from
baresip) routes the call to its queue; two callers queued with no agent, the second hears
"you are caller number two" (Chinese: 您前面还有一位), not "three"; the second asks for a
callback, hears its number read back, confirms, hears the confirmation and is hung up,
the callback keeps its place and is offered first to the agent who goes Ready, before a
call that came later; a caller presses 9, hears the voicemail prompt and the beep, talks
(a 1 kHz tone) and presses #: the message is a mono file holding that tone, attached to
the callback task it became."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from cti import topics
from cti.protocol import CallOffered
from telephony_adapters.media import speech
from telephony_adapters.media.prompt_files import PromptFiles
from tests.audio import find_clip, find_clips, tone_power_ratio
from tests.harness import LIMIT_S, Center, until, until_async
from tests.media.center import AGENT_HZ, SECOND, agent_phone, call_in, voice_center
from tests.phones import Baresip, wav_samples

pytestmark = pytest.mark.media

QUEUES = ("general", "sales", "support")
MENU: dict[str, Any] = {
    "name": "main",
    "prompt": "menu_main",
    "keys": {"1": "queue:sales", "2": "queue:support", "9": "voicemail:general"},
    "timeout_s": 20.0,
}
FLOWS: list[dict[str, Any]] = [
    # The demo flow: greeting, then the menu.
    {"dnis": ["800"], "language": "en", "queue": "general", "menu": "main", "menus": [MENU]},
    # Straight to the queue, in each language (no greeting: the test waits less).
    {"dnis": ["801"], "language": "en", "queue": "general", "greeting": ""},
    {"dnis": ["802"], "language": "zh", "queue": "general", "greeting": ""},
]
CALLER: dict[str, Any] = {"first_announce_s": 0.5, "announce_every_s": 60.0, "key_timeout_s": 20.0}
PROMPTS = PromptFiles()
MESSAGE_HZ = 700.0
"""What the caller says in its message (not the beep's 1 kHz)."""


def clip(language: str, name: str, seconds: float | None = None) -> list[int]:
    """A shipped prompt's samples (its first ``seconds``)."""
    path = PROMPTS.path(language, name)
    assert path, PROMPTS.problems
    samples = list(wav_samples(Path(path)))
    return samples if seconds is None else samples[: int(seconds * 8000)]


@asynccontextmanager
async def flow_center(tmp_path: Path) -> AsyncIterator[Center]:
    async with voice_center(tmp_path, ["1001"], queues=QUEUES, flows=FLOWS,
                            caller=CALLER) as c:  # fmt: skip
        yield c


async def heard(
    phone: Baresip, clips: Sequence[list[int]], what: str, *, since: int = 0
) -> list[int]:
    """Wait until ``phone`` heard ``clips`` in a row (from sample ``since`` on): where
    they begin. The search runs off the event loop, which the engine's media shares."""

    async def search() -> list[int] | None:
        audio = phone.received_audio()[since:]
        found = await asyncio.to_thread(find_clips, audio, clips)
        return None if found is None else [since + at for at in found]

    return await until_async(search, every_s=0.2, what=f"{phone.user} hearing {what}")


async def press(phone: Baresip, key: str) -> None:
    """One key, sent as RFC 4733 telephone-events."""
    await phone.command("sndcode", key)


async def test_the_caller_hears_the_greeting_and_menu_and_a_key_routes_it(
    tmp_path: Path,
) -> None:
    async with flow_center(tmp_path) as c, Baresip(tmp_path, user="13812345678") as caller:
        await call_in(c, caller)
        await caller.wait_event("CALL_ESTABLISHED")
        greeting, menu = clip("en", "greeting"), clip("en", "menu_main", 2.0)
        await heard(caller, [greeting, menu], "the greeting then the menu")
        router = c.service.router
        assert all(router.waiting_in_order(q) == [] for q in QUEUES)  # menu time: no queue
        await press(caller, "2")
        await until(lambda: router.waiting_in_order("support") != [], what="queued in support")
        [call_id] = router.waiting_in_order("support")
        assert router.call_queue(call_id) == "support"
        assert router.waiting_in_order("sales") == []
        await caller.hangup()
        await caller.wait_event("CALL_CLOSED")
    assert find_clip(caller.received_audio(), clip("en", "menu_main")) is None  # cut short


async def queued(c: Center, phone: Baresip, number: str = "801") -> str:
    """``phone`` dials a queue-only number and is answered by its flow: its call id once
    it waits in the general queue."""
    waiting = c.service.router.waiting_in_order
    before = list(waiting("general"))
    await call_in(c, phone, number)
    await phone.wait_event("CALL_ESTABLISHED")
    await until(lambda: len(waiting("general")) > len(before), what=f"{phone.user} queued")
    [call_id] = [x for x in waiting("general") if x not in before]
    return call_id


@pytest.mark.parametrize(
    ("number", "language", "said", "not_said"),
    [
        ("801", "en", ["you_are_caller_number", "two"], ["you_are_caller_number", "three"]),
        # 2nd in line: one caller ahead, 您前面还有一位 (not 两位)
        (
            "802",
            "zh",
            ["nin_qianmian_haiyou", "yi", "wei"],
            ["nin_qianmian_haiyou", "liang", "wei"],
        ),
    ],
)
async def test_the_second_caller_hears_its_place_in_line(
    tmp_path: Path, number: str, language: str, said: list[str], not_said: list[str]
) -> None:
    async with (
        flow_center(tmp_path) as c,
        Baresip(tmp_path, user="13811111111") as first,
        Baresip(tmp_path, user="13822222222") as second,
    ):
        await queued(c, first, number)
        await queued(c, second, number)
        offer = clip(language, "callback_offer", 1.0)
        await heard(second, [*(clip(language, n) for n in said), offer],
                    "its place in line, then the callback offer")  # fmt: skip
        await first.hangup()
        await second.hangup()
        await second.wait_event("CALL_CLOSED")
    assert find_clips(second.received_audio(), [clip(language, n) for n in not_said]) is None
    # The head of the queue is told nothing.
    assert find_clip(first.received_audio(), clip(language, said[0])) is None


async def test_a_callback_asked_for_keeps_the_place_and_is_offered_first(tmp_path: Path) -> None:
    number = "13822222222"
    async with (
        flow_center(tmp_path) as c,
        Baresip(tmp_path, user="13811111111") as first,
        Baresip(tmp_path, user=number) as second,
        Baresip(tmp_path, user="13833333333") as later,
    ):
        router = c.service.router
        ahead = await queued(c, first)
        call_id = await queued(c, second)
        said = ["you_are_caller_number", "two"]
        await heard(second, [*(clip("en", n) for n in said), clip("en", "callback_offer", 1.0)],
                    "its place, then the callback offer")  # fmt: skip
        mark = len(second.received_audio())
        await press(second, "1")
        read_back = ["we_will_call_you_at", *speech.digits(number, "en"), "confirm_or_other"]
        clips = [clip("en", n) for n in read_back]
        clips[-1] = clips[-1][:8000]  # its first second: the key barges in
        await heard(second, clips, "its number read back", since=mark)
        mark = len(second.received_audio())
        await press(second, "1")
        await heard(second, [clip("en", "callback_confirmed")], "the confirmation", since=mark)
        await second.wait_event("CALL_CLOSED")  # the line hangs up: the router calls back
        assert router.call_kind(call_id) == "callback"
        assert router.waiting_in_order("general") == [ahead, call_id]  # its place kept
        await first.hangup()  # the caller ahead gives up
        await until(lambda: router.waiting_in_order("general") == [call_id])
        came_later = await queued(c, later)
        assert router.waiting_in_order("general") == [call_id, came_later]
        async with (
            c.bus.subscribe(topics.agent_events("1001")) as events,
            agent_phone(c, tmp_path, "1001", AGENT_HZ),
        ):
            offer = await asyncio.wait_for(first_offer(events), LIMIT_S)
            assert offer.pop.call_id == call_id  # the callback, before the later call
            assert offer.pop.e164 == "+86" + number  # whom the agent calls back
            assert router.agent("1001").call_id == call_id
            # (The phone rings once the agent accepts and the line dials the customer.)
        await later.hangup()
        await later.wait_event("CALL_CLOSED")


async def first_offer(events: AsyncIterable[tuple[str, object]]) -> CallOffered:
    async for _topic, event in events:
        if isinstance(event, CallOffered):
            return event
    raise AssertionError("the agent's events ended without an offer")


async def test_a_message_left_is_recorded_and_attached_to_its_callback(tmp_path: Path) -> None:
    async with (
        flow_center(tmp_path) as c,
        Baresip(tmp_path, user="13812345678", tone_hz=MESSAGE_HZ) as caller,
    ):
        await call_in(c, caller)
        await caller.wait_event("CALL_ESTABLISHED")
        await heard(caller, [clip("en", "greeting"), clip("en", "menu_main", 1.0)], "the menu")
        mark = len(caller.received_audio())
        await press(caller, "9")
        prompt = [clip("en", "voicemail_prompt"), clip("en", "beep")]
        beep = (await heard(caller, prompt, "the voicemail prompt and the beep", since=mark))[1]
        # It talks (its tone) for two seconds after the beep, then presses #.
        await caller.wait_heard((beep + len(prompt[1]) + 2 * SECOND) / SECOND)
        mark = len(caller.received_audio())
        await press(caller, "#")
        await heard(caller, [clip("en", "message_thanks")], "the thanks", since=mark)
        await caller.wait_event("CALL_CLOSED")  # hung up after the thanks
        recordings = c.service.recordings
        await until(lambda: len(recordings.attached) == 1, what="the message attached")
        [callback_id] = recordings.attached
        assert c.service.router.call_kind(callback_id) == "callback"

        def closed() -> bool:
            message = recordings.message_for(callback_id)
            return message is not None and message.status == "recorded"

        await until(closed, what="the message closed")
        message = recordings.message_for(callback_id)
    assert message is not None
    path = tmp_path / "recordings" / message.path
    assert path.name == f"{message.recording_id}.wav"
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (1, 8000, 2)
    said = list(wav_samples(path))
    assert len(said) >= 1.5 * SECOND
    middle = said[len(said) // 4 : 3 * len(said) // 4]
    assert tone_power_ratio(middle, MESSAGE_HZ) > 0.8  # the caller's voice
    assert tone_power_ratio(said, 1000.0) < 0.01  # not the beep it heard
