"""The voice path end to end (marker ``media``): the engine on a SIP line with agent
phones, a baresip agent registered to it, a baresip caller dialling it. The agent's phone
rings, is answered, and the line bridges the two through its media relay: by frequency
analysis each side hears the other's tone, and the call's recording holds the caller on
the left and the agent on the right. Held, the caller hears the music (energy spread over
the band, none of the agent's tone); transferred blind to a second agent, the caller hears
that agent's phone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cti.models import AgentState
from cti.protocol import HoldCall, TransferCall
from tests.audio import tone_power_ratio
from tests.cti.test_voice_room import do
from tests.harness import until
from tests.media.center import (
    AGENT_HZ,
    CALLER_HZ,
    SECOND,
    SECOND_AGENT_HZ,
    agent_phone,
    answered_call,
    call_in,
    finished_recording,
    heard_next,
    is_music,
    last_second,
    stereo,
    voice_center,
)
from tests.phones import Baresip

pytestmark = pytest.mark.media


async def test_the_caller_and_the_agent_hear_each_other_and_the_call_is_recorded(
    tmp_path: Path,
) -> None:
    async with (
        voice_center(tmp_path, ["1001"]) as c,
        agent_phone(c, tmp_path, "1001", AGENT_HZ) as agent,
        Baresip(tmp_path, user="caller", tone_hz=CALLER_HZ) as caller,
    ):
        await call_in(c, caller)
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
        call_id = await answered_call(c, caller, first)
        talking = await heard_next(caller)
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
    assert is_music(held, AGENT_HZ, CALLER_HZ)
    assert tone_power_ratio(transferred, SECOND_AGENT_HZ) > 0.8
    assert tone_power_ratio(transferred, AGENT_HZ) < 0.05
