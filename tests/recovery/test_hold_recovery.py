"""Hold and mute are router inputs, journaled: a call on hold is still on hold after the
engine restarts from its journal, and its agent still muted (docs/acd.md, "Hold and
mute")."""

from __future__ import annotations

from pathlib import Path

import pytest

from cti.protocol import AcceptOffer, HoldCall, Login, MuteCall, ResumeCall, SetReady
from cti.store.journal import Journal
from telephony_adapters.sim import SimCallState, SimTrunk
from tests.harness import engine_center, until, virtual

pytestmark = pytest.mark.recovery


def test_a_held_call_is_still_held_after_a_restart_from_the_journal(tmp_path: Path) -> None:
    trunk = SimTrunk()  # the line outlives the engine: the call is still on it

    async def body() -> None:
        with Journal.open(tmp_path / "journal.db") as journal:
            async with engine_center(tmp_path / "s.db", lines=[trunk], journal=journal) as c:
                router = c.service.router
                await c.send(Login(agent_id="1001"))
                await c.send(SetReady(agent_id="1001"))
                call_id = trunk.ring("13812345678")
                await until(lambda: router.agent("1001").call_id == call_id)
                await c.send(AcceptOffer(agent_id="1001", call_id=call_id))
                await until(lambda: trunk.state(call_id) is SimCallState.ANSWERED)
                await c.send(HoldCall(agent_id="1001", call_id=call_id))
                await until(lambda: router.call_held(call_id), what="the call held")
                await c.send(MuteCall(agent_id="1001", call_id=call_id, muted=True))
                await until(lambda: router.agent("1001").muted, what="the agent muted")
                assert trunk.held(call_id)
            async with engine_center(tmp_path / "s.db", lines=[trunk], journal=journal) as c:
                router = c.service.router
                assert router.call_held(call_id), "the restart forgot the hold"
                assert router.agent("1001").muted, "the restart forgot the mute"
                await c.send(ResumeCall(agent_id="1001", call_id=call_id))
                await until(lambda: not router.call_held(call_id), what="the call resumed")
                assert not trunk.held(call_id)

    virtual(body)
