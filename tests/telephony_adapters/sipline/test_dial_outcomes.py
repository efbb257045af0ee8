"""The SIP line reports how its dials end (the line contract's ``dial_outcome``), against
SIPp as the callee: answered, 486 busy, ringing unanswered until the line's CANCEL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cti.errors import TelephonyError
from telephony_adapters.base import DialEnd, DialOutcome
from telephony_adapters.sipline.line import SipLine
from telephony_adapters.sipline.params import SipLineParams
from tests.telephony_adapters.sipline.sipp import Sipp

pytestmark = [pytest.mark.sipp, pytest.mark.dialer]


@pytest.fixture
async def line() -> AsyncIterator[SipLine]:
    sip = SipLine(SipLineParams(name="sip", bind_host="127.0.0.1", bind_port=0),
                  dial_timeout_s=1.0)  # fmt: skip
    await sip.start()
    yield sip
    await sip.stop()


@pytest.fixture
async def sipp(tmp_path: Path) -> AsyncIterator[Sipp]:
    peer = Sipp(tmp_path)
    yield peer
    await peer.stop()


@pytest.mark.parametrize(
    ("scenario", "end", "detail"),
    [
        ("callee_answers.xml", DialEnd.ANSWERED, "200 answered"),
        ("callee_busy.xml", DialEnd.BUSY, "486 busy"),
        ("callee_no_answer.xml", DialEnd.NO_ANSWER, "487 no_answer"),
    ],
)
async def test_the_dial_waits_for_sipps_final_word(
    line: SipLine, sipp: Sipp, scenario: str, end: DialEnd, detail: str
) -> None:
    assert line.capabilities.reports_dial_outcomes
    await sipp.start(scenario)
    call_id = await line.dial(f"sip:callee@127.0.0.1:{sipp.port}", call_id="camp-1")
    async with asyncio.timeout(15):
        outcome = await line.dial_outcome(call_id)
    assert outcome == DialOutcome("camp-1", end, detail)
    if end is DialEnd.ANSWERED:
        await line.hang_up(call_id)
    run = await sipp.wait()
    assert run.returncode == 0, run.explain()
    assert await line.dial_outcome(call_id) == outcome  # kept: a late waiter gets it too


async def test_a_dial_the_line_never_placed_is_refused(line: SipLine) -> None:
    with pytest.raises(TelephonyError, match="did not dial 'x-1'"):
        await line.dial_outcome("x-1")
