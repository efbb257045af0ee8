"""SIPp as an agent's phone (marker ``sipp``): it registers to the line with MD5 digest
credentials (one SIPp), and answers the agent leg the line places to its Contact (a
second SIPp, the phone's call side); the line hangs the leg up. Each SIPp run must exit
0."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from telephony_adapters.sipline.line import SipLine
from telephony_adapters.sipline.params import SipLineParams
from telephony_adapters.sipline.phone_auth import ha1
from tests.telephony_adapters.sipline.sipp import Sipp

pytestmark = pytest.mark.sipp

REALM = "cti-desk"
PASSWORD = "phone-pw-1"


@pytest.fixture
async def line() -> AsyncIterator[SipLine]:
    sip = SipLine(
        SipLineParams(
            name="sip",
            bind_host="127.0.0.1",
            bind_port=0,
            phone_realm=REALM,
            phone_ha1={"a1": {"MD5": ha1("a1", REALM, PASSWORD, "MD5")}},
            phone_algorithms=("MD5",),  # SIPp answers the first challenge, in MD5 only
            phone_qualify_s=0,
        ),
        dial_timeout_s=10.0,
    )
    await sip.start()
    yield sip
    await sip.stop()


@pytest.fixture
async def peers(tmp_path: Path) -> AsyncIterator[tuple[Sipp, Sipp]]:
    (tmp_path / "calls").mkdir()
    (tmp_path / "register").mkdir()
    phone, registering = Sipp(tmp_path / "calls"), Sipp(tmp_path / "register")
    yield phone, registering
    await phone.stop()
    await registering.stop()


async def test_sipp_phone_registers_and_answers_an_agent_leg(
    line: SipLine, peers: tuple[Sipp, Sipp]
) -> None:
    phone, registering = peers
    host, port = line.local_address
    await phone.start("phone_answers.xml")
    await registering.start(
        "phone_registers.xml",
        "-s",
        "a1",
        "-au",
        "a1",
        "-ap",
        PASSWORD,
        "-key",
        "phone_port",
        str(phone.port),
        target=f"{host}:{port}",
    )
    run = await registering.wait()
    assert run.returncode == 0, run.explain()
    await line.wait_for(lambda: "a1" in line.phones)
    assert line.phones["a1"].reachable
    assert line.phones["a1"].contact == f"sip:a1@127.0.0.1:{phone.port}"

    leg = await line.ring_agent("c-1", "a1", caller=("张三", "+8613912345678"), auto_answer=True)
    await line.wait_for(
        lambda: leg in line.agent_legs and line.agent_legs[leg].outcome != "ringing"
    )
    answered = line.agent_legs[leg]
    assert answered.outcome == "answered"
    assert answered.plan is not None
    assert answered.plan.codec == "PCMA"
    assert answered.plan.remote_port == phone.media_port
    await line.hang_up(leg)
    run = await phone.wait()
    assert run.returncode == 0, run.explain()
    await line.wait_for(lambda: not line.ua.live(leg))
