"""The modem line reports how its dials end (the line contract's ``dial_outcome``),
through a real pty against the emulator: VCON, BUSY, NO ANSWER, NO CARRIER, NO DIALTONE."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cti.errors import TelephonyError
from simulators.modem_emulator import DialSpec
from telephony_adapters.base import DialEnd
from tests.telephony_adapters.modem.test_line import SAFETY, emulator, modem_line, running

pytestmark = [pytest.mark.modem, pytest.mark.dialer]


@pytest.mark.parametrize(
    ("said", "end"),
    [
        ("VCON", DialEnd.ANSWERED),
        ("BUSY", DialEnd.BUSY),
        ("NO ANSWER", DialEnd.NO_ANSWER),
        ("NO CARRIER", DialEnd.NO_ANSWER),
        ("NO DIALTONE", DialEnd.FAILED),
    ],
)
async def test_each_modem_outcome_ends_the_dial(tmp_path: Path, said: str, end: DialEnd) -> None:
    modem = emulator(tmp_path)
    modem.core.dials = [DialSpec(outcome=said, ringing=1, after_s=0.1)]
    async with running(modem_line(tmp_path / "modem0"), modem) as line:
        assert line.capabilities.reports_dial_outcomes
        call_id = await line.dial("5551234", call_id="camp-1")
        async with asyncio.timeout(SAFETY):
            outcome = await line.dial_outcome(call_id)
        assert (outcome.call_id, outcome.end, outcome.detail) == ("camp-1", end, said)
        assert await line.dial_outcome(call_id) == outcome  # asked again: the same, at once
        if end is DialEnd.ANSWERED:
            await line.hang_up(call_id)


async def test_a_dial_the_line_never_placed_is_refused(tmp_path: Path) -> None:
    line = modem_line(tmp_path / "nowhere")
    with pytest.raises(TelephonyError, match="did not dial 'x-1'"):
        await line.dial_outcome("x-1")
