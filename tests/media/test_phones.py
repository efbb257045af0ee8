"""The test-phone harness (tests/phones.py) against real peers, in the test's own network
namespace (marker ``media``): two baresip phones call each other and each hears the
other's tone; a baresip phone calls the SIP line as it is today (it answers with silence);
a phone registers with digest to SIPp as registrar and withdraws when it quits.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cti.protocol import CallArrived, CallerHungUp
from telephony_adapters.sipline.line import SipLine
from telephony_adapters.sipline.params import SipLineParams
from tests.audio import tone_power_ratio
from tests.harness import LIMIT_S
from tests.phones import Baresip, Registration
from tests.telephony_adapters.sipline.sipp import Sipp

pytestmark = pytest.mark.media

CALLER_HZ = 1000.0
AGENT_HZ = 2000.0


async def test_two_phones_each_hear_the_others_tone(tmp_path: Path) -> None:
    async with (
        Baresip(tmp_path, user="agent", tone_hz=AGENT_HZ, auto_answer=True) as agent,
        Baresip(tmp_path, user="caller", tone_hz=CALLER_HZ) as caller,
    ):
        await caller.dial(agent.uri)
        incoming = await agent.wait_event("CALL_ESTABLISHED")
        assert incoming["direction"] == "incoming"
        assert incoming["peeruri"] == caller.uri
        await caller.wait_event("CALL_ESTABLISHED")
        caller_heard = await caller.wait_heard(1.0)
        agent_heard = await agent.wait_heard(1.0)
        await caller.hangup()
        await agent.wait_event("CALL_CLOSED")
        await caller.wait_event("CALL_CLOSED")
    assert tone_power_ratio(caller_heard, AGENT_HZ) > 0.8
    assert tone_power_ratio(caller_heard, CALLER_HZ) < 0.05  # its own tone is not echoed
    assert tone_power_ratio(agent_heard, CALLER_HZ) > 0.8
    assert tone_power_ratio(agent_heard, AGENT_HZ) < 0.05


@pytest.fixture
async def line() -> AsyncIterator[SipLine]:
    sip = SipLine(SipLineParams(name="sip", bind_host="127.0.0.1", bind_port=0))
    await sip.start()
    yield sip
    await sip.stop()


async def test_a_phone_calls_the_sip_line_which_answers_with_silence(
    line: SipLine, tmp_path: Path
) -> None:
    host, port = line.local_address
    events = aiter(line.events())
    async with Baresip(tmp_path, user="caller", tone_hz=CALLER_HZ) as caller:
        await caller.dial(f"sip:800@{host}:{port}")
        arrived = await asyncio.wait_for(anext(events), LIMIT_S)
        assert isinstance(arrived, CallArrived)
        assert (arrived.ani, arrived.dnis) == ("caller", "800")
        await line.answer(arrived.call_id)
        await caller.wait_event("CALL_ESTABLISHED")
        await caller.wait_event("CALL_RTPESTAB")  # the line's RTP reached the phone
        heard = await caller.wait_heard(1.0)
        await caller.hangup()
        ended = await asyncio.wait_for(anext(events), LIMIT_S)
        assert ended == CallerHungUp(call_id=arrived.call_id, line="sip")
        await caller.wait_event("CALL_CLOSED")
    # Today the line answers with G.711 silence: the phone hears RTP, and nothing in it.
    assert max(abs(s) for s in heard) < 100
    await line.wait_for(lambda: not line.ua.calls)


SCENARIOS = Path(__file__).parent / "scenarios"


async def test_a_phone_registers_with_digest_and_withdraws_when_it_quits(tmp_path: Path) -> None:
    registrar = Sipp(tmp_path)
    try:
        await registrar.start(str(SCENARIOS / "phone_registers.xml"))
        account = Registration("127.0.0.1", registrar.port, "agent1", "s3cret")
        async with Baresip(tmp_path, user="agent1", register=account) as phone:
            await phone.wait_event("REGISTER_OK")
        run = await registrar.wait()
        assert run.returncode == 0, run.explain()
    finally:
        await registrar.stop()
