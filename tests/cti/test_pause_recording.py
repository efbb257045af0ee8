"""The desk pauses and resumes a call's recording (card details): only the agent talking
on a recorded call may, and the line's audio plan follows (``record_paused``).

On the voice room's line that keeps the plans (:mod:`tests.cti.test_voice_room`)."""

from __future__ import annotations

from pathlib import Path

from cti.models import AgentState
from cti.protocol import AcceptOffer, Login, PauseRecording, PhoneAnswered, SetReady
from tests.cti.test_voice_room import do, ready, talking, voice_center
from tests.harness import engine_center, until, virtual


def test_only_the_agent_talking_on_the_call_pauses_its_recording(tmp_path: Path) -> None:
    async def body() -> None:
        async with voice_center(tmp_path, ("1001", "1002")) as (c, trunk):
            await ready(c, trunk, "1001")
            refused = await do(c, PauseRecording(agent_id="1001", call_id="nosuch"))
            assert not refused.ok
            assert "not talking on call 'nosuch'" in refused.error
            call_id = trunk.ring("13812345678")
            await until(lambda: bool(trunk.plan(call_id).ring))
            offered = await do(c, PauseRecording(agent_id="1001", call_id=call_id))
            assert not offered.ok  # ringing: not in conversation yet
            assert "not talking on call" in offered.error
            trunk.phone(PhoneAnswered(call_id=call_id, agent_id="1001"))
            await until(lambda: talking(trunk, call_id, "1001"))
            assert trunk.plan(call_id).record
            assert not trunk.plan(call_id).record_paused
            other = await do(c, PauseRecording(agent_id="1002", call_id=call_id))
            assert not other.ok
            assert "'1002' is not talking" in other.error

            assert (await do(c, PauseRecording(agent_id="1001", call_id=call_id))).ok
            await until(lambda: trunk.plan(call_id).record_paused)
            assert talking(trunk, call_id, "1001")  # the conversation goes on
            resume = PauseRecording(agent_id="1001", call_id=call_id, paused=False)
            assert (await do(c, resume)).ok
            await until(lambda: not trunk.plan(call_id).record_paused)
            assert trunk.plan(call_id).record

    virtual(body)


def test_a_call_on_a_line_without_voice_has_no_recording_to_pause(tmp_path: Path) -> None:
    async def body() -> None:
        async with engine_center(tmp_path / "cti.db") as c:
            assert (await do(c, Login(agent_id="1001"))).ok
            assert (await do(c, SetReady(agent_id="1001"))).ok
            call_id = c.trunk.ring("13812345678")
            await until(lambda: c.service.router.agent("1001").state is AgentState.RESERVED)
            assert (await do(c, AcceptOffer(agent_id="1001", call_id=call_id))).ok
            refused = await do(c, PauseRecording(agent_id="1001", call_id=call_id))
            assert not refused.ok
            assert refused.error == f"call {call_id!r} is not being recorded: nothing to pause"

    virtual(body)
