"""The simulator trunk's far end keeps its calls across a restart of the engine (ledger)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cti.protocol import CallArrived
from telephony_adapters.base import LineCapabilities, LineEvent, TelephonyAdapter
from telephony_adapters.sim import SimCallState, SimTrunk


async def test_a_trunk_on_the_same_ledger_still_has_the_live_calls(tmp_path: Path) -> None:
    ledger = tmp_path / "far-end.jsonl"
    before = SimTrunk("sim", ledger=ledger)
    waiting = before.ring("13812345678", caller_name="王")
    talking = before.ring("P")
    gone = before.ring("19900000000")
    hung_up = before.ring("19900000001")
    await before.answer(talking)
    before.caller_hangs_up(gone)
    await before.answer(hung_up)
    await before.hang_up(hung_up)
    # The engine's process dies here: no stop(), the ledger is all that is left.

    after = SimTrunk("sim", ledger=ledger)
    assert after.calls() == {waiting: SimCallState.RINGING, talking: SimCallState.ANSWERED}
    assert await after.adopt([talking, waiting, gone]) == [talking, waiting]
    fresh = after.ring("13900000000")
    assert fresh not in (waiting, talking, gone, hung_up)  # numbering goes on
    await after.answer(waiting)  # adopted calls keep the contract
    await after.wait_answered(waiting)
    await after.hang_up(talking)
    assert after.calls() == {waiting: SimCallState.ANSWERED, fresh: SimCallState.RINGING}
    await after.stop()
    await after.stop()  # twice is harmless


async def test_live_calls_the_engine_did_not_name_are_announced_again(tmp_path: Path) -> None:
    ledger = tmp_path / "far-end.jsonl"
    before = SimTrunk("sim", dnis="800", ledger=ledger)
    known = before.ring("13812345678")
    unheard = before.ring("13912345678", caller_name="李")
    after = SimTrunk("sim", dnis="800", ledger=ledger)
    assert await after.adopt([known]) == [known]
    events = aiter(after.events())
    assert await anext(events) == CallArrived(
        call_id=unheard, ani="13912345678", dnis="800", line="sim", caller_name="李"
    )
    assert after.state(unheard) is SimCallState.RINGING
    waiter = asyncio.create_task(after.wait_answered(unheard))
    await asyncio.sleep(0)
    assert not waiter.done()  # announced again: it rings until answered
    await after.answer(unheard)
    await asyncio.wait_for(waiter, 1)
    assert await after.adopt([]) == []  # only once: the announcement is not repeated
    after.ring("P")
    rung = await anext(events)
    assert isinstance(rung, CallArrived)
    assert rung.ani == "P"


async def test_a_torn_last_line_of_the_ledger_is_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = tmp_path / "far-end.jsonl"
    before = SimTrunk("sim", ledger=ledger)
    call_id = before.ring("13812345678")
    with ledger.open("a") as f:
        f.write('{"answer": "sim-')  # the process died mid-write
    with caplog.at_level(logging.WARNING, logger="telephony_adapters.sim"):
        after = SimTrunk("sim", ledger=ledger)
    assert after.calls() == {call_id: SimCallState.RINGING}
    assert "line 2 ignored" in caplog.text


async def test_without_a_ledger_a_new_trunk_has_no_calls_to_adopt() -> None:
    before = SimTrunk()
    call_id = before.ring("13812345678")
    assert await before.adopt([call_id, "sim-99"]) == [call_id]  # same process: still there
    assert await SimTrunk().adopt([call_id]) == []


class _Modem(TelephonyAdapter):
    name = "modem"
    capabilities = LineCapabilities()

    async def events(self) -> AsyncIterator[LineEvent]:
        await asyncio.Event().wait()
        return
        yield  # pragma: no cover (an async generator that never yields)

    async def answer(self, call_id: str) -> None:
        raise NotImplementedError

    async def hang_up(self, call_id: str) -> None:
        raise NotImplementedError


async def test_by_default_a_line_keeps_no_calls_across_a_restart() -> None:
    assert await _Modem().adopt(["modem-1", "modem-2"]) == []
