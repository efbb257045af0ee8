"""The SIP line behind Kamailio with its TLS module (marker ``sipp``): every hop between
the proxy and the line is TLS, each side's certificate verified against the test CA.

SIPp (Debian's 3.6.1 has no OpenSSL, so it speaks UDP or TCP) calls through Kamailio,
which reaches the line over TLS only; the engine routes the call to a bot agent, who
answers; either the caller or the agent hangs up. Then the line dials out with Kamailio
as its ``outbound_proxy`` over TLS, to SIPp answering behind it. Each SIPp run must exit
0; the proxy's log says by which transport each request came and left, and the line's
connection table holds the TLS connections.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from simulators.bots import BotAgent, BotBehaviour
from telephony_adapters.sipline.line import SipLine
from telephony_adapters.sipline.params import SipLineParams
from telephony_adapters.sipline.transaction import Timers
from tests.cti.test_service import FakeStore
from tests.harness import engine_center, until
from tests.telephony_adapters.sipline.certs import TestPki, make_pki
from tests.telephony_adapters.sipline.kamailio import Kamailio, ProxyTls, free_tcp_port
from tests.telephony_adapters.sipline.sipp import Sipp

pytestmark = pytest.mark.sipp


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_line(pki: TestPki, t1: float = 0.5, **settings: Any) -> SipLine:
    """A line listening for TLS with the test certificate, trusting the test CA (no RTP:
    SIPp sends none here; keepalive_s=0: SIPp would take an OPTIONS for a new call)."""
    params = SipLineParams(
        name="sip", bind_host="127.0.0.1", bind_port=0, keepalive_s=0,
        transports=("udp", "tls"), tls_port=free_tcp_port(), tls_cert_file=str(pki.cert),
        tls_key_file=str(pki.key), tls_ca_file=str(pki.ca),
    )  # fmt: skip
    return SipLine(
        dataclasses.replace(params, **settings), media=False, dial_timeout_s=5.0,
        timers=Timers(t1=t1),
    )  # fmt: skip


@pytest.fixture
async def sipp(tmp_path: Path) -> AsyncIterator[Sipp]:
    peer = Sipp(tmp_path)
    yield peer
    await peer.stop()


def tls_connections(line: SipLine) -> list[bool]:
    """The line's TLS connections (all with the proxy, on 127.0.0.1): whether each is
    one the line opened."""
    assert line._net is not None
    return [c.outbound for c in set(line._net.streams.conns.values()) if c.kind == "TLS"]


@pytest.mark.parametrize("mode", ["u1", "t1"])
@pytest.mark.parametrize("scenario", ["proxy_caller_hangs_up.xml", "proxy_agent_hangs_up.xml"])
async def test_sipp_calls_through_kamailio_over_tls_and_a_bot_answers(
    pki: TestPki, tmp_path: Path, sipp: Sipp, mode: str, scenario: str
) -> None:
    agent_hangs_up = scenario == "proxy_agent_hangs_up.xml"
    line = tls_line(pki)
    proxy = Kamailio(tmp_path, 0, ProxyTls(pki, line.settings.tls_port))
    behaviour = BotBehaviour(
        answer_delay_s=0.1, mean_handle_s=0.2 if agent_hangs_up else 600.0, wrap_up_s=0.1
    )
    store = FakeStore()
    async with engine_center(
        store, agents={"a1": ["general"]}, lines=[line], recorder=store
    ) as center:
        bot = asyncio.create_task(BotAgent(center.bus, "a1", behaviour, random.Random(7)).run())
        try:
            await proxy.start()
            await until(
                lambda: (
                    center.service.router.snapshot("general", center.service.now()).agents_ready
                    == 1
                )
            )
            await sipp.start(scenario, "-t", mode, target=f"127.0.0.1:{proxy.port}")
            run = await sipp.wait()
            assert run.returncode == 0, run.explain() + proxy.explain("\nkamailio")
            await until(
                lambda: bool(store.records) and not line.ua.calls,
                what=f"records {store.records}, calls {list(line.ua.calls)}",
            )
            tls_in = tls_connections(line)
        finally:
            bot.cancel()
            await asyncio.gather(bot, return_exceptions=True)
            await proxy.stop()
    [record] = store.records
    assert (record.outcome, record.agent_id) == ("answered", "a1")
    routed = proxy.lines()
    tls_port = line.settings.tls_port
    proto = {"u1": "udp", "t1": "tcp"}[mode]
    assert any(r.startswith("INVITE sip:800@") and r.endswith(f"over {proto}") for r in routed)
    assert f"sent INVITE to 127.0.0.1:{tls_port} over tls" in routed, proxy.explain("INVITE")
    assert f"sent ACK to 127.0.0.1:{tls_port} over tls" in routed, proxy.explain("ACK")
    if agent_hangs_up:  # our BYE came to the proxy over TLS
        bye = [r for r in routed if r.startswith("loose-routed BYE")]
        assert [b.endswith("over tls") for b in bye] == [True], proxy.explain("BYE")
    else:
        assert f"sent BYE to 127.0.0.1:{tls_port} over tls" in routed, proxy.explain("BYE")
    # One TLS connection, the proxy's to our TLS port, reused for our BYE (its Via's
    # sent-by is the proxy's TLS port, the Route's address).
    assert tls_in == [False], tls_in


async def test_the_line_dials_through_kamailio_over_tls(
    pki: TestPki, tmp_path: Path, sipp: Sipp
) -> None:
    await sipp.start("proxy_callee_answers.xml")
    proxy_port = free_tcp_port()  # each must know the other's port before it starts
    line = tls_line(pki, outbound_proxy=f"sip:127.0.0.1:{proxy_port};transport=tls")
    tls = ProxyTls(pki, line.settings.tls_port, proxy_port)
    proxy = Kamailio(tmp_path, 0, tls)
    try:
        await proxy.start()
        await line.start()
        call_id = await line.dial(f"sip:callee@127.0.0.1:{sipp.port}", call_id="out-tls")
        await line.wait_for(lambda: call_id in line.outcomes and line.outcomes[call_id].final)
        assert line.outcomes[call_id].outcome == "answered"
        call = line.ua.calls[call_id]
        assert call.dialog is not None
        assert call.dialog.route_set[0].startswith(f"<sip:127.0.0.1:{tls.port};transport=tls")
        assert tls_connections(line) == [True]  # Kamailio's certificate verified by the CA
        await line.hang_up(call_id)
        run = await sipp.wait()
        assert run.returncode == 0, run.explain() + proxy.explain("\nkamailio")
        await line.wait_for(lambda: not line.ua.calls)
        routed = proxy.lines()
        assert any(
            r.startswith(f"INVITE sip:callee@127.0.0.1:{sipp.port} ") and r.endswith("over tls")
            for r in routed
        ), proxy.explain("no INVITE over TLS from the line")
        bye = [r for r in routed if r.startswith("loose-routed BYE")]
        assert [b.endswith("over tls") for b in bye] == [True], proxy.explain("BYE")
        assert f"sent INVITE to 127.0.0.1:{sipp.port} over udp" in routed
    finally:
        await line.stop()
        await proxy.stop()


async def test_a_line_that_does_not_trust_the_proxys_ca_sends_it_nothing(
    tmp_path: Path, pki: TestPki, sipp: Sipp, caplog: pytest.LogCaptureFixture
) -> None:
    """The same dial, the line trusting another CA: no TLS connection, and the call
    fails at once (the transport error ends its INVITE's transaction), not at Timer B
    (640 s here); nothing reaches the proxy."""
    other = make_pki(tmp_path / "other")
    proxy_port = free_tcp_port()
    line = tls_line(
        pki, 10.0, outbound_proxy=f"sip:127.0.0.1:{proxy_port};transport=tls",
        tls_ca_file=str(other.ca),
    )  # fmt: skip
    proxy = Kamailio(tmp_path, 0, ProxyTls(pki, line.settings.tls_port, proxy_port))
    try:
        await proxy.start()
        await line.start()
        call_id = await line.dial(f"sip:callee@127.0.0.1:{sipp.port}", call_id="out-untrusted")
        await asyncio.wait_for(  # the limit is a safety net: Timer B would be 640 s
            line.wait_for(lambda: call_id in line.outcomes and line.outcomes[call_id].final), 60
        )
        assert line.outcomes[call_id].outcome == "failed"
        assert not [r for r in proxy.lines() if r.startswith("INVITE")]
        assert f"cannot connect over TLS to 127.0.0.1:{proxy_port}" in caplog.text
        assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
    finally:
        await line.stop()
        await proxy.stop()
