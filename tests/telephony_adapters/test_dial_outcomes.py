"""The line contract's dial outcomes (``TelephonyAdapter.dial_outcome``): the default
refuses, the simulator trunk reports what its far end was told to do."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cti.errors import TelephonyError
from cti.protocol import CallerHungUp
from telephony_adapters.base import (
    DialEnd,
    DialOutcome,
    LineCapabilities,
    LineEvent,
    TelephonyAdapter,
)
from telephony_adapters.sim import SimCallState, SimTrunk

pytestmark = pytest.mark.dialer


class _Silent(TelephonyAdapter):
    name = "old"

    async def events(self) -> AsyncIterator[LineEvent]:  # pragma: no cover - never read
        if False:
            yield

    async def answer(self, call_id: str) -> None:  # pragma: no cover
        pass

    async def hang_up(self, call_id: str) -> None:  # pragma: no cover
        pass


async def test_a_line_that_does_not_report_outcomes_says_so() -> None:
    line = _Silent()
    line.capabilities = LineCapabilities()
    assert not line.capabilities.reports_dial_outcomes
    with pytest.raises(TelephonyError, match=r"does not report how its dials end.*'c-1'"):
        await line.dial_outcome("c-1")


async def test_the_sim_trunk_answers_unless_its_far_end_says_otherwise() -> None:
    trunk = SimTrunk("sim")
    assert trunk.capabilities.reports_dial_outcomes
    trunk.far_end["+8613800000002"] = DialEnd.BUSY
    trunk.far_end["+8613800000003"] = DialEnd.MACHINE
    events = aiter(trunk.events())
    answered = await trunk.dial("+8613800000001", call_id="c-1")
    busy = await trunk.dial("+8613800000002", call_id="c-2")
    machine = await trunk.dial("+8613800000003", call_id="c-3")
    assert await trunk.dial_outcome(answered) == DialOutcome("c-1", DialEnd.ANSWERED,
                                                             "simulated answered")  # fmt: skip
    assert (await trunk.dial_outcome(busy)).end is DialEnd.BUSY
    assert (await trunk.dial_outcome(machine)).end is DialEnd.MACHINE
    # busy is over on the line (with CallerHungUp); answered and machine are up
    assert await anext(events) == CallerHungUp(call_id="c-2", line="sim")
    assert trunk.state("c-2") is None
    assert trunk.state("c-1") is SimCallState.ANSWERED
    assert trunk.state("c-3") is SimCallState.ANSWERED
    with pytest.raises(TelephonyError, match="did not dial 'nope'"):
        await trunk.dial_outcome("nope")
