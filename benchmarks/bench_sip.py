"""SIP line under load: SIPp places calls into the engine at 20 and 100 calls/s.

For each rate, a fresh engine (:class:`~cti.engine.service.EngineService`, in-process, on the
in-memory bus) serves one :class:`~telephony_adapters.sipline.line.SipLine` on
127.0.0.1 with bot agents (:mod:`simulators.bots`) who answer after ``--answer-delay``
seconds, talk an exponential ``--handle`` seconds on average and wrap up in
``--wrap-up`` seconds. SIPp (``sipp``, Debian ``sip-tester``) is the caller: it sends an
INVITE at the rate for ``--seconds`` seconds, waits up to ``--patience`` seconds for
the 200 (then CANCELs: an abandoned call), ACKs it, and answers the agent's BYE.
RTP is off (``media=False``): SIPp sends none, and the figure is about signalling.

After SIPp exits, the engine gets up to 30 s to finish wrap-ups; then a call still known
to the line or to the router is *stuck*. Every call must be answered (the agent's
BYE reached SIPp) or abandoned (the caller's CANCEL), none stuck.

Prints, per rate, one JSON line: ``rate_cps``, ``offered`` (INVITEs SIPp placed),
``answered`` and ``abandoned`` (the engine's call records), ``exited`` (left a queue by
its exit rules), ``failed`` (calls SIPp counts as failed: an unexpected message or a
time-out), ``stuck``, ``unaccounted`` (offered minus the engine's records), ``sipp_ok``
(SIPp's successful calls), ``cpu_s`` (this process's CPU time for the rate) and
``wall_s``, ``cpu_ms_per_call``; per transport (``--transports udp,tcp,tls``: SIPp
``-t u1`` and ``-t t1``, one connection for all calls over TCP), the 100 calls/s lines
last. About 2 x 3 x (``--seconds`` + 10) s.

TLS: Debian's SIPp (sip-tester 3.6.1) is built without OpenSSL (``-t l1`` cannot run),
so SIPp calls over TCP (``-t t1``) through Kamailio with its TLS module (Debian
kamailio-tls-modules, as in ``tests/telephony_adapters/sipline/test_kamailio_tls.py``),
which record-routes and reaches the line over TLS only: its certificate from a test CA
made for the run, verified both ways. ``cpu_s`` is still this process's CPU (engine,
bots and the line, TLS included: the handshakes and the encryption of every message
on the line's side); Kamailio's own CPU, a separate process, is not in it (reported
apart as ``proxy_cpu_s``), and its extra hop is in the calls' timing, not in the
line's figure. The proxy holds one TLS connection to the line for all calls.

    .venv/bin/python benchmarks/bench_sip.py [--rates 20,100] [--seconds 30] [--agents 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import logging
import os
import random
import re
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from cti import topics
from cti.bus.memory import InMemoryBus, Subscription
from cti.config import Config
from cti.engine.service import EngineService
from cti.models import AgentState, CallDetailRecord, Customer, Interaction
from cti.protocol import AgentStateChanged
from simulators.bots import BotAgent, BotBehaviour
from telephony_adapters.sipline.line import SipLine
from telephony_adapters.sipline.params import SipLineParams

# The TLS run's proxy and certificates are the tests' (another package named tests may
# be installed: this tree's comes first).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.telephony_adapters.sipline.certs import make_pki
from tests.telephony_adapters.sipline.kamailio import Kamailio, ProxyTls, free_tcp_port

MODES = {"udp": "u1", "tcp": "t1", "tls": "t1"}
"""SIPp's ``-t`` per transport: one socket (a TCP connection) for all calls; for TLS,
SIPp's leg to Kamailio is TCP (see the module docstring)."""

SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="caller for the SIP line benchmark">
  <send retrans="500">
    <![CDATA[

      INVITE sip:800@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=z9hG4bKi[pid]x[call_number];rport
      From: <sip:1380000[call_number]@[local_ip]:[local_port]>;tag=[pid]T[call_number]
      To: <sip:800@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true" timeout="PATIENCE_MS" ontimeout="abandon"/>
  <send>
    <![CDATA[

      ACK [next_url] SIP/2.0
      [routes]
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: <sip:1380000[call_number]@[local_ip]:[local_port]>;tag=[pid]T[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv request="BYE" timeout="120000"/>
  <send next="done">
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <label id="abandon"/>
  <send>
    <![CDATA[

      CANCEL sip:800@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=z9hG4bKi[pid]x[call_number];rport
      From: <sip:1380000[call_number]@[local_ip]:[local_port]>;tag=[pid]T[call_number]
      To: <sip:800@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 CANCEL
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
  <recv response="487"/>
  <send>
    <![CDATA[

      ACK sip:800@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=z9hG4bKi[pid]x[call_number];rport
      From: <sip:1380000[call_number]@[local_ip]:[local_port]>;tag=[pid]T[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <label id="done"/>
</scenario>
"""


class _NoCustomers:
    async def find_by_number(self, e164: str) -> list[Customer]:
        return []

    async def recent_interactions(
        self, customer_id: int, limit: int = 5
    ) -> tuple[Interaction, ...]:
        return ()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sipp_totals(stat_file: Path) -> dict[str, int]:
    """The last row of SIPp's statistics file: total calls created, successful, failed."""
    rows = list(csv.reader(stat_file.read_text("utf-8", "replace").splitlines(), delimiter=";"))
    if len(rows) < 2:
        return {"created": 0, "ok": 0, "failed": 0}
    header, last = rows[0], rows[-1]
    value = dict(zip(header, last, strict=False))

    def num(name: str) -> int:
        text = value.get(name, "0").strip()
        return int(text) if text.isdigit() else 0

    return {
        "created": num("TotalCallCreated"),
        "ok": num("SuccessfulCall(C)"),
        "failed": num("FailedCall(C)"),
    }


def _behind_tls_proxy(params: SipLineParams, folder: Path) -> tuple[SipLineParams, Kamailio]:
    """The line listening for TLS with a certificate from a CA made here, and Kamailio
    (TLS module) in front of it, reaching it over TLS only (quiet: no log per request)."""
    pki = make_pki(folder)
    params = replace(
        params, transports=("udp", "tcp", "tls"), tls_port=free_tcp_port(),
        tls_cert_file=str(pki.cert), tls_key_file=str(pki.key), tls_ca_file=str(pki.ca),
    )  # fmt: skip
    proxy = Kamailio(folder, 0, ProxyTls(pki, params.tls_port), debug=0, shm_mb=128)
    return params, proxy


def _group_cpu_s(group: int) -> float:
    """CPU seconds (user + system) of the live processes of a process group, from /proc:
    Kamailio's main process and its workers (it is started in a session of its own)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[2]) == group:  # pgrp
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _sipp_errors(workdir: Path, transport: str, rate: int) -> dict[str, int]:
    """The kinds of SIPp's logged errors (numbers as #, the message quoted in them left
    out) with how often each came: why calls failed."""
    path = workdir / f"errors_{transport}_{rate}.log"
    if not path.exists():
        return {}
    text = path.read_text("utf-8", "replace")
    kinds: dict[str, int] = {}
    for found in re.findall(r"\d{4}-\d\d-\d\d\t[\d:.]+\t[\d.]+: ([^\n']*)", text):
        kind = re.sub(r"\d+", "#", found).strip()[:100]
        kinds[kind] = kinds.get(kind, 0) + 1
    return dict(sorted(kinds.items(), key=lambda kv: -kv[1])[:5])


async def _all_ready(states: Subscription, agents: set[str]) -> None:
    """Wait until the engine has published every bot Ready (a minute at most: then fail)."""
    try:
        async with asyncio.timeout(60):
            async for _topic, message in states:
                if isinstance(message, AgentStateChanged) and message.state is AgentState.READY:
                    agents.discard(message.agent_id)
                if not agents:
                    return
    except TimeoutError:
        raise SystemExit(f"bots not Ready within a minute: {sorted(agents)}") from None


async def run_rate(
    rate: int, transport: str, args: argparse.Namespace, workdir: Path
) -> dict[str, object]:
    sipp = shutil.which("sipp")
    if sipp is None:
        raise SystemExit("sipp is not installed (Debian package sip-tester): deploy/system-deps.sh")
    cpu0, wall0 = time.process_time(), time.monotonic()
    params = SipLineParams(
        name="sip", bind_host="127.0.0.1", bind_port=0, transports=("udp", "tcp")
    )
    proxy = None
    if transport == "tls":
        params, proxy = _behind_tls_proxy(params, workdir / f"tls_{rate}")
    line = SipLine(params, media=False)
    bus = InMemoryBus()
    agents = {f"b{i:03d}": ["general"] for i in range(args.agents)}
    service = EngineService(Config(), bus, _NoCustomers(), [line], agents)
    records: list[CallDetailRecord] = []
    service.record_listeners.append(records.append)
    behaviour = BotBehaviour(
        answer_delay_s=args.answer_delay, mean_handle_s=args.handle, wrap_up_s=args.wrap_up
    )
    rng = random.Random(rate)
    loop = asyncio.get_running_loop()
    engine = loop.create_task(service.run(), name="bench:engine")
    await service.ready.wait()
    async with bus.subscribe(topics.ALL_AGENT_STATES) as states:
        bots = [
            loop.create_task(
                BotAgent(bus, agent_id, behaviour, random.Random(rng.random())).run(),
                name=f"bench:{agent_id}",
            )
            for agent_id in agents
        ]
        await _all_ready(states, set(agents))
    scenario = workdir / f"caller_{rate}.xml"
    scenario.write_text(SCENARIO.replace("PATIENCE_MS", str(int(args.patience * 1000))))
    stat_file = workdir / f"stats_{transport}_{rate}.csv"
    if proxy is not None:
        await proxy.start()
        host, port = "127.0.0.1", proxy.port
    else:
        host, port = line.address(transport)
    calls = rate * args.seconds
    process = await asyncio.create_subprocess_exec(
        sipp,
        f"{host}:{port}",
        "-t",
        MODES[transport],
        "-sf",
        str(scenario),
        "-i",
        "127.0.0.1",
        "-p",
        str(_free_port()),
        "-mp",
        str(_free_port()),
        "-r",
        str(rate),
        "-m",
        str(calls),
        "-l",
        str(calls),
        "-nostdin",
        "-timeout",
        f"{args.seconds + 180}s",
        "-trace_stat",
        "-stf",
        str(stat_file),
        "-fd",
        "1",
        "-trace_err",
        "-error_file",
        str(workdir / f"errors_{transport}_{rate}.log"),
        cwd=workdir,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await process.wait()
    proxy_cpu = _group_cpu_s(proxy.process.pid) if proxy and proxy.process else None
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(30.0):
            # Neither the line nor the router tells when its last call goes: asked.
            while line.ua.calls or service.router.active_call_ids():  # noqa: ASYNC110
                await asyncio.sleep(0.2)
    stuck = len(set(line.ua.calls) | set(service.router.active_call_ids()))
    for task in [*bots, engine]:
        task.cancel()
    await asyncio.gather(*bots, engine, return_exceptions=True)
    if proxy is not None:
        await proxy.stop()
    totals = _sipp_totals(stat_file)
    outcomes = [r.outcome for r in records]
    cpu_s = time.process_time() - cpu0
    return {
        "transport": transport,
        "rate_cps": rate,
        "offered": totals["created"],
        "answered": outcomes.count("answered"),
        "abandoned": outcomes.count("abandoned"),
        "exited": outcomes.count("exited"),
        "failed": totals["failed"],
        "stuck": stuck,
        "unaccounted": totals["created"] - len(records),
        "sipp_ok": totals["ok"],
        "sipp_exit": process.returncode if process.returncode is not None else -1,
        "cpu_s": round(cpu_s, 1),
        "cpu_ms_per_call": round(1000 * cpu_s / max(1, totals["created"]), 2),
        "wall_s": round(time.monotonic() - wall0, 1),
        **({"proxy_cpu_s": round(proxy_cpu, 1)} if proxy_cpu is not None else {}),
        **({"sipp_errors": errors} if (errors := _sipp_errors(workdir, transport, rate)) else {}),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="20,100", help="calls per second, comma-separated")
    parser.add_argument("--seconds", type=int, default=30, help="how long SIPp places calls")
    parser.add_argument("--agents", type=int, default=200, help="bot agents")
    parser.add_argument("--answer-delay", type=float, default=0.1)
    parser.add_argument("--handle", type=float, default=1.0, help="mean talk time (s)")
    parser.add_argument("--wrap-up", type=float, default=0.1)
    parser.add_argument("--patience", type=float, default=15.0, help="caller waits (s)")
    parser.add_argument("--transports", default="udp,tcp,tls", help="comma-separated")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    rates = sorted(int(r) for r in args.rates.split(","))
    with tempfile.TemporaryDirectory(prefix="bench_sip_") as tmp:
        for rate in rates:
            for transport in args.transports.split(","):
                if transport not in MODES:
                    raise SystemExit(f"unknown transport {transport!r}: udp, tcp or tls")
                result = await run_rate(rate, transport, args, Path(tmp))
                print(json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
