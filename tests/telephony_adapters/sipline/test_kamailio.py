"""The SIP line behind Kamailio, a real stateful proxy, on 127.0.0.1 (marker ``sipp``).

SIPp calls the line through Kamailio, which record-routes: the line must answer through
the proxy's Via, copy the Record-Route into its 200, and send its own in-dialog
requests (BYE) to the proxy with the route set as Route headers (loose routing), while
the caller's ACK and BYE come to it through the proxy. Then the line dials out with
Kamailio as its ``outbound_proxy``. Each SIPp run must exit 0, and the proxy's own log
says which way each message went.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cti.protocol import CallArrived, CallerHungUp
from telephony_adapters.sipline.line import SipLine
from telephony_adapters.sipline.params import SipLineParams
from tests.telephony_adapters.sipline.kamailio import Kamailio
from tests.telephony_adapters.sipline.sipp import Sipp, free_udp_port

pytestmark = pytest.mark.sipp


def make_line(**settings: Any) -> SipLine:
    return SipLine(
        dataclasses.replace(
            # keepalive_s=0: SIPp would take an OPTIONS keep-alive for a new call
            SipLineParams(name="sip", bind_host="127.0.0.1", bind_port=0, keepalive_s=0),
            **settings,
        ),
        dial_timeout_s=5.0,
    )


@pytest.fixture
async def line() -> AsyncIterator[SipLine]:
    sip = make_line()
    await sip.start()
    yield sip
    await sip.stop()


@pytest.fixture
async def proxy(tmp_path: Path, line: SipLine) -> AsyncIterator[Kamailio]:
    kamailio = Kamailio(tmp_path, line.local_address[1])
    try:
        await kamailio.start()
        yield kamailio
    finally:
        await kamailio.stop()


@pytest.fixture
async def sipp(tmp_path: Path) -> AsyncIterator[Sipp]:
    peer = Sipp(tmp_path)
    yield peer
    await peer.stop()


async def test_through_kamailio_the_agent_answers_and_the_caller_hangs_up(
    line: SipLine, proxy: Kamailio, sipp: Sipp
) -> None:
    events = aiter(line.events())
    await sipp.start("proxy_caller_hangs_up.xml", target=f"127.0.0.1:{proxy.port}")
    arrived = await asyncio.wait_for(anext(events), 15)
    assert isinstance(arrived, CallArrived)
    assert (arrived.ani, arrived.caller_name, arrived.dnis) == ("13812345678", "Zhang San", "800")
    call = line.ua.calls[arrived.call_id]
    await line.answer(arrived.call_id)
    await line.wait_for(lambda: line.ua.call_state(arrived.call_id) == "confirmed")
    assert call.dialog is not None
    assert [r.split(";")[0] for r in call.dialog.route_set] == [f"<sip:127.0.0.1:{proxy.port}"], (
        call.dialog.route_set
    )
    ended = await asyncio.wait_for(anext(events), 15)
    assert ended == CallerHungUp(call_id=arrived.call_id, line="sip")
    run = await sipp.wait()
    assert run.returncode == 0, run.explain() + proxy.explain("\nkamailio")
    await line.wait_for(lambda: not line.ua.calls)
    routed = proxy.lines()
    assert any(r.startswith("loose-routed ACK") for r in routed), proxy.explain("no ACK")
    assert any(r.startswith("loose-routed BYE") for r in routed), proxy.explain("no BYE")


async def test_through_kamailio_the_agent_hangs_up_and_the_bye_follows_the_route_set(
    line: SipLine, proxy: Kamailio, sipp: Sipp
) -> None:
    events = aiter(line.events())
    await sipp.start("proxy_agent_hangs_up.xml", target=f"127.0.0.1:{proxy.port}")
    arrived = await asyncio.wait_for(anext(events), 15)
    assert isinstance(arrived, CallArrived)
    await line.answer(arrived.call_id)
    await line.wait_for(lambda: line.ua.call_state(arrived.call_id) == "confirmed")
    await line.hang_up(arrived.call_id)
    run = await sipp.wait()
    assert run.returncode == 0, run.explain() + proxy.explain("\nkamailio")
    await line.wait_for(lambda: not line.ua.calls)  # the BYE's 200 came back via the proxy
    assert line._events.empty()  # our own hang-up makes no CallerHungUp
    line_port = line.local_address[1]
    bye = [r for r in proxy.lines() if r.startswith("loose-routed BYE")]
    assert len(bye) == 1, proxy.explain("BYE")
    assert f"from 127.0.0.1:{line_port} " in bye[0], proxy.explain("BYE")
    assert f"to sip:sipp@127.0.0.1:{sipp.port}" in bye[0]


async def test_the_line_dials_through_kamailio_as_its_outbound_proxy(
    tmp_path: Path, sipp: Sipp
) -> None:
    await sipp.start("proxy_callee_answers.xml")
    line_port = free_udp_port()  # each must know the other's port before it starts
    proxy = Kamailio(tmp_path, line_port)
    line = make_line(outbound_proxy=f"127.0.0.1:{proxy.port}", bind_port=line_port)
    try:
        await proxy.start()
        await line.start()
        call_id = await line.dial(f"sip:callee@127.0.0.1:{sipp.port}", call_id="out-1")
        await line.wait_for(lambda: call_id in line.outcomes and line.outcomes[call_id].final)
        assert line.outcomes[call_id].outcome == "answered"
        call = line.ua.calls[call_id]
        assert call.dialog is not None
        assert [r.split(";")[0] for r in call.dialog.route_set] == [f"<sip:127.0.0.1:{proxy.port}"]
        await line.hang_up(call_id)
        run = await sipp.wait()
        assert run.returncode == 0, run.explain() + proxy.explain("\nkamailio")
        await line.wait_for(lambda: not line.ua.calls)
        routed = proxy.lines()
        assert any(
            r.startswith(f"INVITE sip:callee@127.0.0.1:{sipp.port} from 127.0.0.1:{line_port}")
            for r in routed
        ), proxy.explain("no INVITE from the line")
        assert any(r.startswith("loose-routed BYE") for r in routed), proxy.explain("no BYE")
    finally:
        await line.stop()
        await proxy.stop()


async def test_kamailio_leaves_no_process_behind(tmp_path: Path) -> None:
    proxy = Kamailio(tmp_path, 9)
    await proxy.start()
    assert proxy.process is not None
    group = proxy.process.pid
    await proxy.stop()
    with pytest.raises(ProcessLookupError):
        os.killpg(group, 0)  # no worker of that process group is left
