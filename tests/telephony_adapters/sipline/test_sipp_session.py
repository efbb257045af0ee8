"""The SIP line's session timer (RFC 4028) against SIPp, on 127.0.0.1 (marker ``sipp``).

SIPp calls asking a 2 s session (the line's Min-SE is lowered for the test: RFC 4028's
floor of 90 s would make the test long) and leaves the refreshing to the line, which
refreshes by re-INVITE at half the interval, three times over a call longer than the
interval; a refresh missed would end the call with the line's BYE, which SIPp does not
expect (its run would fail).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cti.protocol import CallArrived, CallerHungUp
from telephony_adapters.sipline.line import SipLine
from telephony_adapters.sipline.params import SipLineParams
from tests.telephony_adapters.sipline.sipp import Sipp

pytestmark = pytest.mark.sipp


@pytest.fixture
async def line() -> AsyncIterator[SipLine]:
    sip = SipLine(SipLineParams(name="sip", bind_host="127.0.0.1", bind_port=0))
    await sip.start()
    yield sip
    await sip.stop()


@pytest.fixture
async def sipp(tmp_path: Path) -> AsyncIterator[Sipp]:
    peer = Sipp(tmp_path)
    yield peer
    await peer.stop()


async def test_the_line_refreshes_a_session_sipp_asked_across_a_call_longer_than_it(
    line: SipLine, sipp: Sipp
) -> None:
    core = line.ua.core
    core.settings = dataclasses.replace(core.settings, min_se_s=1)
    events = aiter(line.events())
    host, port = line.local_address
    await sipp.start("caller_session_timer.xml", target=f"{host}:{port}")
    arrived = await asyncio.wait_for(anext(events), 15)
    assert isinstance(arrived, CallArrived)
    await line.answer(arrived.call_id)
    await line.wait_for(lambda: line.ua.call_state(arrived.call_id) == "confirmed")
    timer = line.ua.calls[arrived.call_id].session
    assert timer is not None
    assert (timer.interval, timer.we_refresh) == (2, True)
    ended = await asyncio.wait_for(anext(events), 15)
    assert ended == CallerHungUp(call_id=arrived.call_id, line="sip")  # SIPp's BYE
    run = await sipp.wait()
    assert run.returncode == 0, run.explain()
    refreshes = re.findall(r"INVITE <-+\s+(\d+)", run.output)
    assert refreshes == ["1", "1", "1"], run.explain()  # SIPp's screen: each refresh once
