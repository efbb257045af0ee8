"""The desk's call control moves the audio (marker ``media``): the engine on a SIP line
with baresip agents registered to it and a baresip caller, each sending its own tone.
By frequency analysis of what each phone heard: a consultation (the caller hears music,
the two agents each other), a three-way conference (each hears the other two, mixed),
the hand-over (the caller hears the second agent), a mute (the caller hears silence, the
agent still hears the caller), an offer accepted on the desk while the phone rings (the
phone answers by itself, the audio flows) and PCMU on one side with PCMA on the other.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cti.models import AgentState
from cti.protocol import AcceptOffer, CompleteConsult, ConferenceCall, ConsultCall, MuteCall
from tests.audio import tone_power_ratio
from tests.cti.test_voice_room import do
from tests.harness import until
from tests.media.center import (
    AGENT_HZ,
    CALLER_HZ,
    SECOND_AGENT_HZ,
    Phone,
    agent_phone,
    answered_call,
    call_in,
    heard_next,
    is_music,
    rms,
    sip_line,
    voice_center,
)

pytestmark = pytest.mark.media

HALF = 0.5
"""Seconds of audio analysed after each change (a tone of 50 Hz steps fits it)."""


def hears(samples: list[int], *tones_hz: float) -> dict[float, float]:
    """Each tone's share of what was heard."""
    return {f: round(tone_power_ratio(samples, f), 3) for f in tones_hz}


async def test_a_consultation_a_conference_and_the_hand_over_move_the_audio(
    tmp_path: Path,
) -> None:
    tones = (CALLER_HZ, AGENT_HZ, SECOND_AGENT_HZ)
    async with (
        voice_center(tmp_path, ["1001", "1002"]) as c,
        agent_phone(c, tmp_path, "1001", AGENT_HZ) as first,
        Phone(tmp_path, user="caller", tone_hz=CALLER_HZ) as caller,
    ):
        call_id = await answered_call(c, caller, first)
        router = c.service.router
        async with agent_phone(c, tmp_path, "1002", SECOND_AGENT_HZ, auto_answer=True) as second:
            assert (await do(c, ConsultCall(agent_id="1001", call_id=call_id,
                                            to_agent="1002"))).ok  # fmt: skip
            await second.wait_event("CALL_ESTABLISHED")  # its phone answered: consulting
            await until(lambda: router.call_consult(call_id) == ("1002", "talking"))
            consult = await asyncio.gather(*(heard_next(p, HALF) for p in (caller, first, second)))
            assert (await do(c, ConferenceCall(agent_id="1001", call_id=call_id))).ok
            conference = await asyncio.gather(
                *(heard_next(p, HALF) for p in (caller, first, second))
            )
            assert (await do(c, CompleteConsult(agent_id="1001", call_id=call_id))).ok
            await first.wait_event("CALL_CLOSED")  # the first agent's leg is ended
            await until(lambda: router.agent("1002").state is AgentState.TALKING)
            handed = await heard_next(caller, HALF)
            await caller.hangup()
            await second.wait_event("CALL_CLOSED")
    # Consulting: the caller hears music, the two agents each other.
    assert is_music(consult[0], *tones)
    assert hears(consult[1], SECOND_AGENT_HZ)[SECOND_AGENT_HZ] > 0.8
    assert hears(consult[2], AGENT_HZ)[AGENT_HZ] > 0.8
    assert hears(consult[1], CALLER_HZ)[CALLER_HZ] < 0.05  # the caller is not overheard
    # The conference: each hears the other two, about half each, and not itself.
    for heard, own in zip(conference, tones, strict=True):
        others = [f for f in tones if f != own]
        shares = hears(heard, *tones)
        assert all(0.3 < shares[f] < 0.7 for f in others), shares
        assert shares[own] < 0.05, shares
        assert sum(shares[f] for f in others) > 0.9, shares
    # Handed over: the caller hears the second agent only.
    assert hears(handed, SECOND_AGENT_HZ, AGENT_HZ) == pytest.approx(
        {SECOND_AGENT_HZ: 1.0, AGENT_HZ: 0.0}, abs=0.1
    )


async def test_muted_the_agent_is_not_heard_and_still_hears_the_caller(tmp_path: Path) -> None:
    async with (
        voice_center(tmp_path, ["1001"]) as c,
        agent_phone(c, tmp_path, "1001", AGENT_HZ) as agent,
        Phone(tmp_path, user="caller", tone_hz=CALLER_HZ) as caller,
    ):
        call_id = await answered_call(c, caller, agent)
        talking = await heard_next(caller, HALF)
        assert (await do(c, MuteCall(agent_id="1001", call_id=call_id, muted=True))).ok
        muted, agent_heard = await asyncio.gather(heard_next(caller, HALF),
                                                  heard_next(agent, HALF))  # fmt: skip
        await caller.hangup()
        await agent.wait_event("CALL_CLOSED")
    assert tone_power_ratio(talking, AGENT_HZ) > 0.8
    assert rms(muted) < 50  # silence from us, no tone
    assert tone_power_ratio(muted, AGENT_HZ) < 0.05
    assert tone_power_ratio(agent_heard, CALLER_HZ) > 0.8


async def test_accepted_on_the_desk_the_ringing_phone_answers_by_itself(tmp_path: Path) -> None:
    async with (
        voice_center(tmp_path, ["1001"]) as c,
        agent_phone(c, tmp_path, "1001", AGENT_HZ) as agent,
        Phone(tmp_path, user="caller", tone_hz=CALLER_HZ) as caller,
    ):
        await call_in(c, caller)
        await agent.wait_event("CALL_INCOMING")
        call_id = c.service.router.agent("1001").call_id
        assert call_id is not None
        # baresip 1.0 ignores Call-Info's answer-after: from now on it answers what rings,
        # as a phone that honours the header answers the INVITE that carries it.
        await agent.command("answermode", "auto")
        assert (await do(c, AcceptOffer(agent_id="1001", call_id=call_id))).ok
        await agent.wait_event("CALL_CLOSED")  # the ringing INVITE is cancelled
        await agent.wait_event("CALL_ESTABLISHED")  # rung again, and it answered
        again = sip_line(c).ua.calls.get(f"{call_id}~1001~2")
        assert again is not None
        assert "answer-after=0" in (again.invite.headers.get("Call-Info") or "")
        await caller.wait_event("CALL_ESTABLISHED")
        caller_heard, agent_heard = await asyncio.gather(heard_next(caller, HALF),
                                                         heard_next(agent, HALF))  # fmt: skip
        await caller.hangup()
        await agent.wait_event("CALL_CLOSED")
    assert tone_power_ratio(caller_heard, AGENT_HZ) > 0.8
    assert tone_power_ratio(agent_heard, CALLER_HZ) > 0.8


async def test_a_pcma_caller_and_a_pcmu_phone_are_transcoded_both_ways(tmp_path: Path) -> None:
    async with (
        voice_center(tmp_path, ["1001"]) as c,
        agent_phone(c, tmp_path, "1001", AGENT_HZ, codecs="PCMU") as agent,
        Phone(tmp_path, user="caller", tone_hz=CALLER_HZ, codecs="PCMA") as caller,
    ):
        call_id = await answered_call(c, caller, agent)
        calls = sip_line(c).ua.calls
        codecs = [(leg.plan.codec if leg.plan else None) for leg in
                  (calls[call_id], calls[f"{call_id}~1001"])]  # fmt: skip
        caller_heard, agent_heard = await asyncio.gather(heard_next(caller, HALF),
                                                         heard_next(agent, HALF))  # fmt: skip
        await caller.hangup()
        await agent.wait_event("CALL_CLOSED")
    assert codecs == ["PCMA", "PCMU"]
    assert tone_power_ratio(caller_heard, AGENT_HZ) > 0.8
    assert tone_power_ratio(agent_heard, CALLER_HZ) > 0.8
