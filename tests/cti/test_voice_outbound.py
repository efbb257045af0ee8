"""Outbound calls on a line that carries the voice (virtual time): the line dials the
customer for the agent and the plan bridges them, ringing the agent's phone to answer by
itself with the number it called on its screen."""

from __future__ import annotations

from pathlib import Path

from cti.engine.dialer import DialingLine
from cti.protocol import DialNumber
from telephony_adapters.base import CALLER, AudioPlan, Ring
from tests.cti.test_voice_room import VoiceTrunk, do, ready, talking, voice_center
from tests.harness import until, virtual


def test_a_manual_dial_bridges_the_customer_and_rings_the_agent_to_answer(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        async with voice_center(tmp_path) as (c, trunk):
            await ready(c, trunk, "1001")
            assert (await do(c, DialNumber(agent_id="1001", number="139 0000 0001"))).ok
            [call_id] = [cid for cid in trunk.plans if cid.startswith("dial-")]
            await until(lambda: talking(trunk, call_id, "1001"))
            plan = trunk.plan(call_id)
            assert plan.rooms == (frozenset({CALLER, "1001"}),)
            assert plan.ring == (Ring("1001", "+8613900000001", auto_answer=True),)
            assert plan.music == frozenset()
            assert plan.record

    virtual(body)


def test_the_dialers_line_hands_audio_plans_to_the_voice_line() -> None:
    """A campaign's calls go through the dialer's wrapper of the line: its plans too."""

    async def body() -> None:
        trunk = VoiceTrunk()
        line = DialingLine(trunk)
        assert line.capabilities.carries_voice
        plan = AudioPlan(rooms=(frozenset({CALLER, "1001"}),))
        await line.plan_audio("c1", plan)
        assert trunk.plan("c1") == plan
        await line.keep_phone("1001", True)  # and a persistent agent's standing connection
        assert trunk.kept == [("1001", True)]

    virtual(body)
