"""The engine's voice room after a restart on its journal (virtual time): the audio
plans are not journaled, so each live call's plan is sent to its line again as soon as
the line has adopted the call, with no input needed (a talking call is bridged again;
the SIP line takes up the phone's leg it kept, telephony_adapters/sipline/voice_adopt.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from cti.models import AgentConfig
from cti.store.journal import Journal
from tests.cti.test_voice_room import VoiceTrunk, answered, talking
from tests.harness import Center, center_config, engine_center, until, virtual

pytestmark = pytest.mark.recovery


class KeepingTrunk(VoiceTrunk):
    """The restarted line: it still has every call the engine names."""

    async def adopt(self, call_ids: Sequence[str]) -> Sequence[str]:
        return list(call_ids)


@asynccontextmanager
async def journaled(
    tmp_path: Path, trunk: VoiceTrunk, *, crash: bool = False
) -> AsyncIterator[Center]:
    """The engine on ``trunk`` and the test's journal, agent 1001 recorded on all calls."""
    config = center_config(voice={"record": "all", "recordings_dir": str(tmp_path / "rec")})
    agents = [AgentConfig(id="1001", queues={"general": 0.0})]
    with Journal.open(tmp_path / "j.db") as journal:
        async with engine_center(tmp_path / "cti.db", config=config, agents=agents,
                                 lines=[trunk], journal=journal, crash=crash) as c:  # fmt: skip
            yield c


def test_a_talking_calls_plan_is_sent_again_after_a_restart(tmp_path: Path) -> None:
    async def body() -> None:
        trunk = VoiceTrunk()
        async with journaled(tmp_path, trunk, crash=True) as c:
            call_id = await answered(c, trunk)
        again = KeepingTrunk()
        async with journaled(tmp_path, again):
            await until(lambda: talking(again, call_id, "1001"))
            assert again.plan(call_id).record  # the queue records all
            assert again.plan(call_id).ring == ()  # the phone is not rung anew

    virtual(body)
