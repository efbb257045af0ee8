"""Soak: SIPp callers into ``cti serve`` for an hour, the engine killed (SIGKILL) every few
minutes and the broker restarted once; nothing may be lost.

Everything runs on 127.0.0.1: a Mosquitto with the generated ACLs, ``cti serve`` (its
own process, a SIP line), SIPp placing calls at ``--rate`` a second (each waits for an
agent, talks, and expects the agent's BYE), and ``--agents`` bot agents on the broker
that accept every offer, talk ``--talk`` seconds, hang up and wrap up. Every
``--kill-every`` seconds the engine gets ``kill -9`` and is started again at once; at
half time the broker restarts. At the end SIPp's counts and the store's records give:

* offered: calls SIPp placed; recorded: calls with a record in the store;
* lost: offered - recorded (must be 0); failed: SIPp calls that did not end as expected
  (a missing BYE, a 4xx/5xx, a time-out);
* the longest gap in routing: the longest time between two offers to the bots, and the
  longest from an engine start to its first offer.

One JSON line at the end. ``--minutes`` (default 60) for a shorter run. Needs
``mosquitto`` and ``sipp`` (deploy/system-deps.sh). Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cti.app.commands.broker_config import plan_users  # noqa: E402
from cti.models import AgentState  # noqa: E402
from cti.protocol import AcceptOffer, CompleteWrapUp, HangUp, Login, SetReady  # noqa: E402
from tests.integration.conftest import Mosquitto, mosquitto_program, mqtt_bus  # noqa: E402
from tests.integration.test_mqtt_call import Console  # noqa: E402
from tests.recovery.test_sip_crash import Serve, sip_center  # noqa: E402
from tests.telephony_adapters.sipline.sipp import SCENARIOS, free_udp_port, sipp_binary  # noqa: E402

AGENT_IDS = ("1001", "1002")


class Offers:
    def __init__(self) -> None:
        self.times: list[float] = []
        self.starts: list[float] = []


async def bot(console: Console, talk_s: float, offers: Offers, stop: asyncio.Event) -> None:
    """Accept, talk, hang up, wrap up, ready: again and again (each step re-sent after
    3 s if the engine did not move: it may have been down)."""
    agent = console.agent
    sent: dict[tuple[str, str], float] = {}
    talking_since: dict[str, float] = {}
    seen_offers = 0
    while not stop.is_set():
        console.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(console.changed.wait(), 0.5)
        for _ in console.offers[seen_offers:]:
            offers.times.append(time.monotonic())
        seen_offers = len(console.offers)
        state = console.state
        now = time.monotonic()
        call = state.call_id or "" if state is not None else ""

        def due(step: str, call: str = call, now: float = now) -> bool:
            at = sent.get((step, call))
            if at is None or now - at > 3.0:
                sent[(step, call)] = now
                return True
            return False

        if state is None or state.state is AgentState.LOGGED_OUT:
            if due("login"):
                await console.send(Login(agent_id=agent))
        elif state.state is AgentState.NOT_READY and due("ready"):
            await console.send(SetReady(agent_id=agent))
        elif state.state is AgentState.RESERVED and call and due("accept"):
            await console.send(AcceptOffer(agent_id=agent, call_id=call))
        elif state.state is AgentState.TALKING and call:
            since = talking_since.setdefault(call, now)
            if now - since >= talk_s and due("hangup"):
                await console.send(HangUp(agent_id=agent, call_id=call))
        elif state.state is AgentState.WRAP_UP and call and due("wrap"):
            await console.send(CompleteWrapUp(agent_id=agent, call_id=call, disposition="soak"))


async def main(args: argparse.Namespace) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="cti-soak-"))
    (work / "broker").mkdir()
    users = plan_users("cti-engine", AGENT_IDS, ("sup1",), {})
    broker = Mosquitto(mosquitto_program(), work / "broker", users)
    broker.start()
    sip_port = free_udp_port()
    serve = Serve(sip_center(work, sip_port), work / "cti.db", broker.url("cti-engine"))
    offers = Offers()
    stop = asyncio.Event()
    kills = 0
    await serve.start()
    offers.starts.append(time.monotonic())
    stat = work / "sipp_stat.csv"
    sipp = await _start_sipp(work, sip_port, stat, int(args.minutes * 60 * args.rate), args.rate)
    consoles: list[Console] = []
    buses = []
    try:
        for agent in AGENT_IDS:
            bus = mqtt_bus(broker, agent, presence=agent)
            await bus.__aenter__()
            buses.append(bus)
            console = Console(bus, agent)
            await console.start()
            consoles.append(console)
        bots = [asyncio.create_task(bot(c, args.talk, offers, stop)) for c in consoles]
        kills = await _kill_and_restart(serve, broker, offers, args)
        await _drain(sipp, stat, work / "cti.db", args.talk)
        stop.set()
        await asyncio.gather(*bots, return_exceptions=True)
    finally:
        for console in consoles:
            await console.stop()
        for bus in buses:
            await bus.__aexit__(None, None, None)
        if sipp.returncode is None:
            sipp.kill()
            await sipp.wait()
        await serve.stop()
        broker.stop()
    return _report(args, kills, offers, stat, work)


async def _start_sipp(
    work: Path, sip_port: int, stat: Path, total_calls: int, rate: float
) -> asyncio.subprocess.Process:
    """SIPp placing ``total_calls`` at ``rate`` a second into the engine's SIP line."""
    return await asyncio.create_subprocess_exec(
        sipp_binary(),
        f"127.0.0.1:{sip_port}",
        "-sf", str(SCENARIOS / "agent_hangs_up.xml"),
        "-i", "127.0.0.1",
        "-p", str(free_udp_port()),
        "-mp", str(free_udp_port()),
        "-r", str(rate),
        "-m", str(total_calls),
        "-l", "200",
        "-recv_timeout", "300s",
        "-nostdin",
        "-trace_stat", "-stf", str(stat), "-fd", "5",
        "-trace_err", "-error_file", str(work / "sipp_errors.log"),
        cwd=work,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def _kill_and_restart(
    serve: Serve, broker: Mosquitto, offers: Offers, args: argparse.Namespace
) -> int:
    """For ``--minutes``: the engine killed and started again every ``--kill-every``
    seconds, the broker restarted at half time; how many kills."""
    seconds = args.minutes * 60
    kills = 0
    started = time.monotonic()
    broker_restarted = False
    next_kill = started + args.kill_every
    while time.monotonic() - started < seconds:
        await asyncio.sleep(0.5)
        now = time.monotonic()
        if now >= next_kill:
            await serve.kill()
            kills += 1
            await serve.start()
            offers.starts.append(time.monotonic())
            next_kill = now + args.kill_every
        if not broker_restarted and now - started >= seconds / 2:
            broker.restart()
            broker_restarted = True
    return kills


async def _drain(sipp: asyncio.subprocess.Process, stat: Path, db: Path, talk_s: float) -> None:
    """The last callers are served, then the last calls' wrap-ups finish (their records
    are written then)."""
    try:
        await asyncio.wait_for(sipp.wait(), talk_s * 4 + 120)
    except TimeoutError:
        sipp.kill()
        await sipp.wait()
    created = _sipp_counts(stat)[0]
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(talk_s * 4 + 60):
            # The records are another process's, in its database: asked every 0.5 s.
            while _recorded(db) < created:  # noqa: ASYNC110
                await asyncio.sleep(0.5)


def _report(
    args: argparse.Namespace, kills: int, offers: Offers, stat: Path, work: Path
) -> dict[str, object]:
    offered, failed = _sipp_counts(stat)
    recorded = _recorded(work / "cti.db")
    times = sorted(offers.times)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    after_start = [
        min((t for t in times if t >= s), default=float("nan")) - s for s in offers.starts
    ]
    return {
        "minutes": args.minutes,
        "rate_per_s": args.rate,
        "kills": kills,
        "broker_restarts": 1,
        "offered": offered,
        "recorded": recorded,
        "lost": offered - recorded,
        "failed": failed,
        "longest_gap_between_offers_s": round(max(gaps, default=0.0), 2),
        "longest_start_to_first_offer_s": round(max(after_start, default=0.0), 2),
        "workdir": str(work),
    }


def _sipp_counts(stat: Path) -> tuple[int, int]:
    """(calls created, calls failed) from the last line of SIPp's statistics file."""
    header, *rows = stat.read_text().splitlines() if stat.exists() else ("", "")
    last = dict(zip(header.split(";"), rows[-1].split(";"), strict=False)) if rows else {}
    return int(last.get("TotalCallCreated", 0) or 0), int(last.get("FailedCall(C)", 0) or 0)


def _recorded(db_path: Path) -> int:
    db = sqlite3.connect(db_path)
    try:
        return int(db.execute("SELECT COUNT(DISTINCT call_id) FROM call_records").fetchone()[0])
    finally:
        db.close()


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=0.2, help="calls a second")
    parser.add_argument("--talk", type=float, default=4.0, help="seconds each bot talks")
    parser.add_argument("--kill-every", type=float, default=180.0, help="seconds")
    args = parser.parse_args()
    os.environ.setdefault("CTI_BROKER_RECONNECT_MIN_S", "0.05")
    result = asyncio.run(main(args))
    for key, value in result.items():
        print(f"{key:32} {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    cli()
