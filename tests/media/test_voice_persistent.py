"""The persistent connection (marker ``media``): a baresip agent with ``phone_mode =
"persistent"`` and auto-answer is called once, at login; two callers in a row are then
bridged into that same SIP dialog without ringing. Checked: the phone saw one call in
all (one dialog, established once: the line's, at login), it heard each caller's tone
in turn and each caller heard the agent (frequency analysis), and the line ended the
standing leg only at logout.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cti.models import AgentState
from cti.protocol import CompleteWrapUp, Logout, SetNotReady, SetReady
from tests.audio import tone_power_ratio
from tests.cti.test_voice_room import do
from tests.harness import Center, until
from tests.media.center import (
    AGENT_HZ,
    CALLER_HZ,
    SECOND_AGENT_HZ,
    Phone,
    agent_phone,
    call_in,
    heard_next,
    sip_line,
    voice_center,
)
from tests.phones import Baresip

pytestmark = pytest.mark.media

SECOND_CALLER_HZ = SECOND_AGENT_HZ
HALF = 0.5


def standing_legs(c: Center) -> list[str]:
    """The line's legs to agent 1001's phone that answered (by their ids)."""
    return [leg for leg, progress in sip_line(c).agent_legs.items()
            if progress.agent_id == "1001" and progress.outcome == "answered"]  # fmt: skip


async def talk(c: Center, caller: Baresip, agent: Baresip) -> tuple[list[int], list[int]]:
    """The caller dials and is bridged to the agent at once: what each heard; then the
    caller hangs up and the agent finishes the call's wrap-up and is Ready again."""
    await call_in(c, caller)
    await caller.wait_event("CALL_ESTABLISHED")
    router = c.service.router
    await until(lambda: router.agent("1001").state is AgentState.TALKING)
    call_id = router.agent("1001").call_id
    assert call_id is not None
    heard = await asyncio.gather(heard_next(agent, HALF), heard_next(caller, HALF))
    await caller.hangup()
    await until(lambda: router.agent("1001").state is AgentState.WRAP_UP)
    done = CompleteWrapUp(agent_id="1001", call_id=call_id, disposition="resolved")
    assert (await do(c, done)).ok
    if router.agent("1001").state is not AgentState.READY:
        assert (await do(c, SetReady(agent_id="1001"))).ok
    return heard[0], heard[1]


async def test_two_calls_are_bridged_into_the_phone_connected_at_login(tmp_path: Path) -> None:
    async with (
        voice_center(tmp_path, ["1001"], persistent=["1001"]) as c,
        agent_phone(c, tmp_path, "1001", AGENT_HZ, auto_answer=True) as agent,
        Phone(tmp_path, user="caller1", tone_hz=CALLER_HZ) as first,
        Phone(tmp_path, user="caller2", tone_hz=SECOND_CALLER_HZ) as second,
    ):
        await agent.wait_event("CALL_ESTABLISHED")  # called at login, answered by itself
        await until(lambda: len(standing_legs(c)) == 1, what="the standing leg answered")
        [standing] = standing_legs(c)
        agent_first, first_heard = await talk(c, first, agent)
        agent_second, second_heard = await talk(c, second, agent)
        assert standing_legs(c) == [standing]  # no other leg to the phone was made
        closed_before_logout = [e for e in agent.events if e.get("type") == "CALL_CLOSED"]
        assert (await do(c, SetNotReady(agent_id="1001"))).ok
        assert (await do(c, Logout(agent_id="1001"))).ok
        await agent.wait_event("CALL_CLOSED")  # released at logout
    calls = {e.get("id") for e in agent.events if str(e.get("type")).startswith("CALL_")}
    established = [e for e in agent.events if e.get("type") == "CALL_ESTABLISHED"]
    assert len(calls) == 1  # one SIP dialog in all (auto-answer: no CALL_INCOMING event)
    assert len(established) == 1
    assert established[0].get("direction") in ("incoming", None)
    assert established[0].get("peerdisplayname") == "CTI Desk"
    assert closed_before_logout == []
    assert standing.startswith("standing~1001~")
    assert tone_power_ratio(agent_first, CALLER_HZ) > 0.8
    assert tone_power_ratio(agent_second, SECOND_CALLER_HZ) > 0.8
    assert tone_power_ratio(agent_second, CALLER_HZ) < 0.05
    assert tone_power_ratio(first_heard, AGENT_HZ) > 0.8
    assert tone_power_ratio(second_heard, AGENT_HZ) > 0.8
