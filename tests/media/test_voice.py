"""The voice path end to end (marker ``media``): the engine on a SIP line with agent
phones, a baresip agent registered to it, a baresip caller dialling it. The agent's phone
rings, is answered, and the line bridges the two through its media relay: by frequency
analysis each side hears the other's tone, and the call's recording holds the caller on
the left and the agent on the right. Held, the caller hears the music (energy spread over
the band, none of the agent's tone); transferred blind to a second agent, the caller hears
that agent's phone.
"""

from __future__ import annotations

import math
import wave
from array import array
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from cti.models import AgentConfig, AgentState
from cti.protocol import HoldCall, Login, SetReady, TransferCall
from telephony_adapters.sipline.line import SipLine
from telephony_adapters.sipline.params import SipLineParams
from telephony_adapters.sipline.phone_auth import ha1
from tests.audio import tone_power_ratio
from tests.cti.test_voice_room import do
from tests.harness import Center, center_config, engine_center, until
from tests.phones import Baresip, Registration

pytestmark = pytest.mark.media

CALLER_HZ = 1000.0
AGENT_HZ = 2000.0
REALM = "cti-desk"
PASSWORD = "agent-pw-1"
SECOND_AGENT_HZ = 1500.0
SECOND = 8000
"""Samples in one second at 8 kHz."""


@asynccontextmanager
async def voice_center(tmp_path: Path, agents: Sequence[str]) -> AsyncIterator[Center]:
    """The engine with one SIP line whose phones are ``agents`` (MD5 digest: baresip 1.0
    answers only the first challenge)."""
    line = SipLine(
        SipLineParams(
            name="sip",
            bind_host="127.0.0.1",
            bind_port=0,
            phone_realm=REALM,
            phone_ha1={a: {"MD5": ha1(a, REALM, PASSWORD, "MD5")} for a in agents},
            phone_algorithms=("MD5",),
            phone_qualify_s=0,
            recordings_dir=str(tmp_path / "recordings"),
        )
    )
    config = center_config(voice={"record": "all"})
    configs = [AgentConfig(id=a, queues={"general": 0.0}) for a in agents]
    async with engine_center(tmp_path / "cti.db", config=config, agents=configs,
                             lines=[line]) as c:  # fmt: skip
        yield c


def sip_line(c: Center) -> SipLine:
    line = c.lines[0]
    assert isinstance(line, SipLine)
    return line


@asynccontextmanager
async def agent_phone(c: Center, tmp_path: Path, agent: str, tone_hz: float,
                      auto_answer: bool = False) -> AsyncIterator[Baresip]:  # fmt: skip
    """The agent's baresip, registered to the line, the agent logged in and Ready."""
    host, port = sip_line(c).local_address
    account = Registration(host, port, agent, PASSWORD)
    async with Baresip(tmp_path, user=agent, tone_hz=tone_hz, register=account,
                       auto_answer=auto_answer) as phone:  # fmt: skip
        await phone.wait_event("REGISTER_OK")
        await until(lambda: c.service.voice.reachable.get(agent) is True)
        assert (await do(c, Login(agent_id=agent))).ok
        assert (await do(c, SetReady(agent_id=agent))).ok
        yield phone


def last_second(samples: array[int]) -> list[int]:
    return list(samples[-SECOND:])


async def heard_next(phone: Baresip, seconds: float = 1.0) -> list[int]:
    """What the phone hears from now on: ``seconds`` of it, after half a second to let
    the change reach it."""
    start = len(phone.received_audio()) + SECOND // 2
    heard = await phone.wait_heard((start + seconds * SECOND) / SECOND)
    return list(heard[start : start + int(seconds * SECOND)])


def rms(samples: list[int]) -> float:
    return math.sqrt(sum(x * x for x in samples) / max(1, len(samples)))


def stereo(path: Path) -> tuple[list[int], list[int]]:
    """The left and right channels of a 16-bit stereo WAV."""
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, 8000)
        frames = array("h", wav.readframes(wav.getnframes()))
    return list(frames[0::2]), list(frames[1::2])


def finished_recording(root: Path) -> Path | None:
    """The one recording under ``root`` once closed (its header has the final size)."""
    found = sorted(root.glob("*/*.wav"))
    if len(found) != 1:
        return None
    try:
        with wave.open(str(found[0]), "rb") as wav:
            return found[0] if wav.getnframes() > 0 else None
    except (EOFError, wave.Error):
        return None


async def test_the_caller_and_the_agent_hear_each_other_and_the_call_is_recorded(
    tmp_path: Path,
) -> None:
    async with (
        voice_center(tmp_path, ["1001"]) as c,
        agent_phone(c, tmp_path, "1001", AGENT_HZ) as agent,
        Baresip(tmp_path, user="caller", tone_hz=CALLER_HZ) as caller,
    ):
        host, port = sip_line(c).local_address
        await caller.dial(f"sip:800@{host}:{port}")
        rung = await agent.wait_event("CALL_INCOMING")
        assert rung["peerdisplayname"] == "caller"  # the caller's number on its screen
        await agent.accept()  # answering on the phone accepts the offer
        await caller.wait_event("CALL_ESTABLISHED")
        caller_heard = last_second(await caller.wait_heard(2.0))
        agent_heard = last_second(await agent.wait_heard(2.0))
        await caller.hangup()
        await agent.wait_event("CALL_CLOSED")  # the caller left: the line ends the agent leg
        recordings = tmp_path / "recordings"
        await until(lambda: finished_recording(recordings) is not None, every_s=0.05,
                    what="the call's recording closed")  # fmt: skip
    assert tone_power_ratio(caller_heard, AGENT_HZ) > 0.8
    assert tone_power_ratio(caller_heard, CALLER_HZ) < 0.05
    assert tone_power_ratio(agent_heard, CALLER_HZ) > 0.8
    assert tone_power_ratio(agent_heard, AGENT_HZ) < 0.05
    path = finished_recording(recordings)
    assert path is not None
    assert path.stem.startswith("sip")  # named by the call id
    left, right = stereo(path)
    assert len(left) > SECOND  # at least the second and more both sides talked
    middle = slice(len(left) // 2 - SECOND // 2, len(left) // 2 + SECOND // 2)
    assert tone_power_ratio(left[middle], CALLER_HZ) > 0.8
    assert tone_power_ratio(right[middle], AGENT_HZ) > 0.8


async def test_held_the_caller_hears_music_and_transferred_the_second_agent(
    tmp_path: Path,
) -> None:
    async with (
        voice_center(tmp_path, ["1001", "1002"]) as c,
        agent_phone(c, tmp_path, "1001", AGENT_HZ) as first,
        Baresip(tmp_path, user="caller", tone_hz=CALLER_HZ) as caller,
    ):
        host, port = sip_line(c).local_address
        await caller.dial(f"sip:800@{host}:{port}")
        await first.wait_event("CALL_INCOMING")
        await first.accept()
        await caller.wait_event("CALL_ESTABLISHED")
        talking = await heard_next(caller)
        call_id = c.service.router.agent("1001").call_id
        assert call_id is not None
        assert (await do(c, HoldCall(agent_id="1001", call_id=call_id))).ok
        held = await heard_next(caller)
        async with agent_phone(c, tmp_path, "1002", SECOND_AGENT_HZ, auto_answer=True) as second:
            await c.send(TransferCall(agent_id="1001", call_id=call_id, to_agent="1002"))
            await second.wait_event("CALL_ESTABLISHED")  # rung, and it answered by itself
            await first.wait_event("CALL_CLOSED")  # the first agent's leg is ended
            await until(lambda: c.service.router.agent("1002").state is AgentState.TALKING)
            transferred = await heard_next(caller)
            await caller.hangup()
            await second.wait_event("CALL_CLOSED")
    assert tone_power_ratio(talking, AGENT_HZ) > 0.8
    # Music: loud enough, spread over the band (no 50 Hz bin holds half of it), no agent.
    assert rms(held) > 1000
    assert tone_power_ratio(held, AGENT_HZ) < 0.05
    assert max(tone_power_ratio(held, f) for f in range(100, 3950, 50)) < 0.5
    assert tone_power_ratio(transferred, SECOND_AGENT_HZ) > 0.8
    assert tone_power_ratio(transferred, AGENT_HZ) < 0.05
