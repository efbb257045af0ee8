"""The desk's blind transfer to a phone number, against the real engine: the prompt
takes a number (spaces and all), the line is asked to transfer it; refused by the far
end, the desk says why and the call goes on; transferred, the agent is in wrap-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_console.desktop import AgentDesktop
from agent_console.dialogs import transfer_target, transfer_target_problem
from telephony_adapters.base import TransferResult
from telephony_adapters.sim import SimTrunk
from tests.agent_console.test_desktop_call_control import (
    SIZE,
    notices,
    open_center,
    talking,
    type_into_prompt,
)
from tests.cti.test_transfer_out import TransferOutcomes
from tests.harness import settle

pytestmark = [pytest.mark.console, pytest.mark.integration]


class ReferSim(TransferOutcomes, SimTrunk):
    def __init__(self) -> None:
        super().__init__()
        self.takes_transfers()


@pytest.mark.parametrize(
    ("typed", "target"),
    [
        ("billing", ("billing", "", "")),
        ("1002", ("", "1002", "")),
        ("+86 139 0000 0001", ("", "", "+86 139 0000 0001")),
        ("13900000001", ("", "", "13900000001")),
        ("(010) 6552-9988", ("", "", "(010) 6552-9988")),
    ],
)
def test_what_is_typed_is_a_queue_an_agent_or_a_number(
    typed: str, target: tuple[str, str, str]
) -> None:
    assert transfer_target(typed, {"general", "billing"}) == target


def test_only_a_number_may_have_spaces() -> None:
    assert transfer_target_problem("+86 139 0000 0001") is None
    assert transfer_target_problem("1002") is None
    problem = transfer_target_problem("bill ing")
    assert problem is not None
    assert "has a space" in problem


async def test_a_number_typed_is_transferred_by_the_line(tmp_path: Path) -> None:
    trunk = ReferSim()
    async with open_center(tmp_path, trunk=trunk) as center:
        app = AgentDesktop(center.bus, "1001", queues=["general"])
        async with app.run_test(size=SIZE) as pilot:
            app, call_id = await talking(pilot, center)
            await pilot.press("w")
            await type_into_prompt(pilot, "+86 139 0000 0001")
            await settle(pilot, lambda: trunk.transfers == [(call_id, "+8613900000001")])
            trunk.outcomes[call_id].set_result(TransferResult(call_id, False, "603 Decline"))
            await settle(pilot, lambda: any("603 Decline" in n for n in notices(app)))
            assert app.view == "talking"
            await pilot.press("w")
            await type_into_prompt(pilot, "13900000002")
            await settle(pilot, lambda: len(trunk.transfers) == 2)
            trunk.outcomes[call_id].set_result(TransferResult(call_id, True, "200 OK"))
            await settle(pilot, lambda: app.view == "wrap_up")
