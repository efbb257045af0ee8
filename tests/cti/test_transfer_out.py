"""A transfer to a number (virtual time): the engine asks the call's line to transfer
(REFER on a SIP trunk) and follows the line's outcome. Transferred, the call ends for
the agent (wrap-up); failed, the caller stays with the agent and the desk gets the
reason. A line that cannot transfer, or a target that is not a number, is refused."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest
from pydantic import ValidationError

from cti import topics
from cti.models import AgentState
from cti.protocol import CallControl, DialNumber, TransferCall
from telephony_adapters.base import LineCapabilities, TransferResult
from tests.cti.test_voice_room import VoiceTrunk, answered, do, talking, voice_center
from tests.harness import until, virtual


class TransferOutcomes:
    """A line that transfers as a SIP trunk that takes REFER does: the test says how each
    transfer ends (``outcomes``). Mixed into a simulator trunk before its class."""

    capabilities: LineCapabilities

    def takes_transfers(self) -> None:
        self.capabilities = dataclasses.replace(self.capabilities, can_transfer=True)
        self.transfers: list[tuple[str, str]] = []
        self.outcomes: dict[str, asyncio.Future[TransferResult]] = {}

    async def transfer(self, call_id: str, target: str) -> None:
        self.transfers.append((call_id, target))
        self.outcomes[call_id] = asyncio.get_running_loop().create_future()

    async def transfer_outcome(self, call_id: str) -> TransferResult:
        return await self.outcomes[call_id]


class ReferTrunk(TransferOutcomes, VoiceTrunk):
    """The voice room's trunk, transferring."""

    def __init__(self) -> None:
        super().__init__()
        self.takes_transfers()


def test_a_transfer_the_line_completes_ends_the_call_for_the_agent(tmp_path: Path) -> None:
    async def body() -> None:
        async with voice_center(tmp_path, trunk=ReferTrunk()) as (c, trunk):
            assert isinstance(trunk, ReferTrunk)
            call_id = await answered(c, trunk)
            out = TransferCall(agent_id="1001", call_id=call_id, number="139 0000 0001")
            assert (await do(c, out)).ok
            assert trunk.transfers == [(call_id, "+8613900000001")]
            again = await do(c, out.model_copy(update={"command_id": "second"}))
            assert "under way" in again.error  # one transfer at a time
            # Until the line says it worked, the caller is with the agent.
            assert c.service.router.agent("1001").state is AgentState.TALKING
            assert talking(trunk, call_id, "1001")
            trunk.outcomes[call_id].set_result(TransferResult(call_id, True, "200 OK"))
            await until(lambda: c.service.router.agent("1001").state is AgentState.WRAP_UP)
            await until(lambda: trunk.plan(call_id) == trunk.plans[call_id][-1] and
                        "1001" not in trunk.plan(call_id).agents())  # fmt: skip

    virtual(body)


def test_a_refused_transfer_leaves_the_caller_with_the_agent_and_says_why(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        async with voice_center(tmp_path, trunk=ReferTrunk()) as (c, trunk):
            assert isinstance(trunk, ReferTrunk)
            call_id = await answered(c, trunk)
            notes: list[str] = []
            async with c.bus.subscribe(topics.agent_events("1001")) as inbox:
                out = TransferCall(agent_id="1001", call_id=call_id, number="+8613900000001")
                assert (await do(c, out)).ok
                failed = TransferResult(call_id, False, "603 Decline")
                trunk.outcomes[call_id].set_result(failed)
                async for _topic, message in inbox:
                    if isinstance(message, CallControl) and message.note:
                        notes.append(message.note)
                        break
            assert "603 Decline" in notes[0]
            assert "still with you" in notes[0]
            assert c.service.router.agent("1001").state is AgentState.TALKING
            assert talking(trunk, call_id, "1001")
            # A second try is taken (the first is over).
            assert (await do(c, out.model_copy(update={"command_id": "again"}))).ok
            assert len(trunk.transfers) == 2

    virtual(body)


def test_a_line_that_cannot_transfer_or_a_bad_number_is_refused(tmp_path: Path) -> None:
    async def body() -> None:
        async with voice_center(tmp_path) as (c, trunk):
            call_id = await answered(c, trunk)
            out = TransferCall(agent_id="1001", call_id=call_id, number="13900000001")
            refused = await do(c, out)
            assert "cannot transfer to a number" in refused.error
            bad = await do(c, TransferCall(agent_id="1001", call_id=call_id, number="abc"))
            assert "not a phone number" in bad.error
            assert c.service.router.agent("1001").state is AgentState.TALKING

    virtual(body)


@pytest.mark.parametrize(
    "targets",
    [{}, {"queue": "general", "number": "13900000001"}, {"number": "1" * 41}],
)
def test_a_transfer_names_exactly_one_bounded_target(targets: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        TransferCall(agent_id="1001", call_id="c1", **targets)


def test_a_dialled_number_is_bounded_too() -> None:
    with pytest.raises(ValidationError):
        DialNumber(agent_id="1001", number="1" * 41)
