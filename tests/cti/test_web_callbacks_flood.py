"""A flood of web callback requests while real callers queue (issue 17), on virtual time.

2,000 requests in 5 s, from one client or from fifty, hit the endpoint's handler while
Poisson callers ring the simulator trunk and bot agents work the queues for an hour. The
real callers must keep their service level, and the fake callbacks accepted are capped.
The control run (no limits, callbacks in the callers' queue) shows the harness can fail.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass

import pytest

from cti.config import WebSettings, load_config
from cti.engine.web_callbacks import HttpRequest, WebCallbacks, key_sha256
from cti.models import CallDetailRecord
from queue_engine.stats import Tally
from simulators.bots import BotAgent, BotBehaviour
from simulators.traffic import ArrivalModel, CallerMix, CallerPool, run_arrivals
from tests.cti.test_service import center
from tests.harness import virtual

pytestmark = pytest.mark.security

AGENTS = [f"{1001 + i}" for i in range(8)]
FLOOD = 2000
FLOOD_AT_S = 600.0
FLOOD_S = 5.0
HOUR = 3600.0
SL_GOAL = 0.80  # [wallboard] service_level_goal


@dataclass
class Outcome:
    real: Tally
    accepted: int
    refused: dict[int, int]
    fake_answered: int


def flood_run(*, clients: int, protected: bool) -> Outcome:
    keys = [f"client-{n}-key-0123456789abcdef" for n in range(clients)]
    queues = [
        {"name": "general", "sl_target_s": 20.0, "short_abandon_s": 5.0},
        {"name": "web", "priority": -1000.0},  # behind callers who waited < 1000 s less
    ]
    config = load_config(
        overrides={
            "engine": {"status_interval_s": 10.0},
            "queues": queues,
            "agents": [{"id": a, "queues": {"general": 0.0, "web": 0.0}} for a in AGENTS],
        }
    )
    callbacks: dict[str, object] = {"default_queue": "web", "queues": ["web"]}
    if not protected:  # the endpoint as it was: no limits, the callers' queue
        callbacks = {
            "client_rate_per_minute": 1e9,
            "client_burst": 10**9,
            "total_rate_per_minute": 1e9,
            "total_burst": 10**9,
            "max_pending": 10**9,
        }
    settings = WebSettings.model_validate(
        {
            "callbacks": callbacks,
            "clients": [{"name": f"c{n}", "key_sha256": key_sha256(k)} for n, k in enumerate(keys)],
        }
    )
    records: list[CallDetailRecord] = []
    accepted: list[str] = []

    async def body() -> None:
        async with center([], config=config) as c:
            c.service.record_listeners.append(records.append)
            server = WebCallbacks(c.service, settings=settings)
            behaviour = BotBehaviour(answer_delay_s=2.0, mean_handle_s=180.0, wrap_up_s=5.0)
            bots = [
                asyncio.create_task(BotAgent(c.bus, a, behaviour, random.Random(a)).run())
                for a in AGENTS
            ]
            rng = random.Random(17)
            pool = CallerPool(["13812345678"], CallerMix(unknown_share=0.9), random.Random(1))
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            callers = asyncio.create_task(
                run_arrivals(c.trunk, ArrivalModel(100.0, 120.0), pool, rng, until=t0 + HOUR)
            )
            await asyncio.sleep(FLOOD_AT_S)
            for n in range(FLOOD):
                number = f"+86139{rng.randrange(10**8):08d}"
                headers = {"Authorization": f"Bearer {keys[n % clients]}"}
                data = json.dumps({"number": number}).encode()
                answer = await server.handle(
                    HttpRequest("POST", "/v1/callbacks", headers, data), c.service.now()
                )
                if answer.status == 202:
                    accepted.append(answer.body["id"])
                await asyncio.sleep(FLOOD_S / FLOOD)
            await callers
            await asyncio.sleep(600)  # the last callers are served or give up
            refusals.update(server.refusals)
            for bot in bots:
                bot.cancel()
            await asyncio.gather(*bots, return_exceptions=True)
            await c.service.flush()

    refusals: dict[int, int] = {}
    virtual(body)
    real = Tally(sl_target_s=20.0, short_abandon_s=5.0)
    fake = set(accepted)
    for cdr in records:
        if cdr.call_id not in fake:
            real.add(cdr)
    answered = sum(1 for r in records if r.call_id in fake and r.outcome == "answered")
    return Outcome(real, len(accepted), refusals, answered)


@pytest.mark.parametrize("clients", [1, 50])
def test_a_flood_of_requests_leaves_real_callers_their_service_level(clients: int) -> None:
    out = flood_run(clients=clients, protected=True)
    assert out.real.offered >= 70  # about 100 callers in the hour
    assert out.real.service_level is not None, out
    assert out.real.service_level >= SL_GOAL, out
    # Accepted fakes: at most the client's burst plus its rate over 5 s, never above the
    # pending cap (20); the rest refused 429.
    cap = 20 if clients > 1 else 10 + 3
    assert 0 < out.accepted <= cap, out
    assert out.refused.get(429, 0) == FLOOD - out.accepted, out
    assert out.fake_answered <= out.accepted


def test_the_control_run_without_protection_loses_the_service_level() -> None:
    out = flood_run(clients=1, protected=False)
    assert out.accepted == FLOOD
    assert out.real.service_level is not None, out
    assert out.real.service_level < SL_GOAL, out
