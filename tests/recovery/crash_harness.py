"""A whole call center in one process, journaled, to be killed and started again.

``python -m tests.recovery.crash_harness --db FILE --seconds S --seed N [--resume]``

Runs the engine with its write-ahead journal (beside ``FILE``), the store at ``FILE``,
a simulator trunk, bot agents and Poisson callers, on the wall clock, for ``S``
seconds of arrivals; then lets every call finish, and exits. Meant to be killed
(``kill -9``) at any moment and run again with ``--resume``: the engine then replays
its journal, and the trunk plays the far end that kept its calls while the engine was
down (its ledger, ``FILE`` with ``.far-end.jsonl``): callers still on the line wait on
with patience drawn afresh (exponential patience has no memory) and bots take their
calls up again from the state and offers the engine sends them.

It prints one JSON object a line on stdout, flushed: ``started`` (with the recovery
report and the state the engine starts from), ``status`` every ``--status-every``
seconds (agents by state, calls waiting), and ``done`` (the state it ends in).
``tests/recovery`` drives it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import random
import sys
from pathlib import Path
from typing import Any

from cti.app.demo_data import numbers_for_callers, seed_store
from cti.bus.memory import InMemoryBus
from cti.config import Config, load_config
from cti.engine.service import EngineService
from cti.models import AgentState
from cti.store.database import Store
from cti.store.journal import Journal, journal_path_for
from queue_engine.router import Router
from simulators.bots import BotAgent, BotBehaviour
from simulators.traffic import ArrivalModel, CallerMix, CallerPool, run_arrivals
from telephony_adapters.sim import SimCallState, SimTrunk
from tests.harness import engine_center, until

log = logging.getLogger(__name__)

QUEUE = "general"
#: Seconds the engine may take, once arrivals stop, to see every call finished.
DRAIN_LIMIT_S = 30.0


def harness_config() -> Config:
    """A small, fast center: short offers and wrap-ups, live figures five times a second."""
    return load_config(
        overrides={
            "engine": {"status_interval_s": 0.2},
            "queues": [
                {
                    "name": QUEUE,
                    "offer_timeout_s": 4.0,
                    "wrap_up_s": 3.0,
                    "sl_target_s": 5.0,
                    "short_abandon_s": 1.0,
                }
            ],
        }
    )


def agent_ids(count: int) -> list[str]:
    return [str(2001 + i) for i in range(count)]


def ledger_path_for(db: Path) -> Path:
    return db.with_name(f"{db.stem}.far-end.jsonl")


def picture(router: Router) -> dict[str, Any]:
    """The router's state as plain JSON: agents, waiting order, unfinished calls."""
    agents = {}
    for agent_id in router.agent_ids():
        a = router.agent(agent_id)
        agents[agent_id] = {"state": a.state.value, "call_id": a.call_id, "since": a.since}
    return {
        "agents": agents,
        "waiting": {q: router.waiting_in_order(q) for q in router.queue_names},
        "calls": {
            c: {"phase": router.call_phase(c).value, "arrived_at": router.call_arrived_at(c)}
            for c in router.active_call_ids()
        },
    }


def say(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


async def run(args: argparse.Namespace) -> None:
    config = harness_config()
    db = Path(args.db)
    rng = random.Random(args.seed * 2 + (1 if args.resume else 0))
    store = await Store.open(db)
    journal = Journal.open(journal_path_for(db))
    try:
        if not args.resume:
            await seed_store(store, n=300, seed=args.seed)
        sample = await store.sample_customers(200, args.seed)
        pool = CallerPool(numbers_for_callers(sample), CallerMix(), random.Random(rng.random()))
        trunk = SimTrunk("sim", ledger=ledger_path_for(db))
        bus = InMemoryBus()
        ids = agent_ids(args.agents)
        agents = {a: [QUEUE] for a in ids}
        async with engine_center(
            store, config=config, agents=agents, lines=[trunk], bus=bus, journal=journal
        ) as center:
            await _serve(center.service, trunk, bus, pool, ids, rng, args)
    finally:
        journal.close()
        await store.close()


async def _serve(
    service: EngineService,
    trunk: SimTrunk,
    bus: InMemoryBus,
    pool: CallerPool,
    ids: list[str],
    rng: random.Random,
    args: argparse.Namespace,
) -> None:
    """The centre's traffic on the running engine, to the end of every call."""
    report = service.recovery
    say(
        "started",
        resume=args.resume,
        now=service.now(),
        recovery=None if report is None else dataclasses.asdict(report),
        **picture(service.router),
    )
    model = ArrivalModel(args.rate * 3600.0, args.patience)
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[Any]] = []
    async with asyncio.TaskGroup() as callers:
        # Callers the far end kept on the line wait on (patience drawn afresh).
        for call_id, state in trunk.calls().items():
            if state is SimCallState.RINGING:
                patience = rng.expovariate(1.0 / args.patience)
                callers.create_task(_wait(trunk, call_id, patience))
        behaviour = BotBehaviour(
            answer_delay_s=0.2, mean_handle_s=1.5, wrap_up_s=0.4, dispositions=("resolved",)
        )
        for agent_id in ids:
            bot = BotAgent(bus, agent_id, behaviour, random.Random(f"{args.seed}:{agent_id}"))
            tasks.append(asyncio.create_task(bot.run(), name=f"bot:{agent_id}"))
        tasks.append(asyncio.create_task(_report(service, args.status_every)))
        await run_arrivals(trunk, model, pool, rng, until=loop.time() + args.seconds)
    drained = "every call finished, wrap-ups included"
    await until(lambda: not service.router.active_call_ids(), DRAIN_LIMIT_S, every_s=0.1,
                what=drained)  # fmt: skip
    await service.flush()  # the last wrap-ups' records written
    say("done", now=service.now(), **picture(service.router))
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _wait(trunk: SimTrunk, call_id: str, patience: float) -> None:
    try:
        async with asyncio.timeout(patience):
            await trunk.wait_answered(call_id)
    except TimeoutError:
        trunk.caller_hangs_up(call_id)


async def _report(service: EngineService, every: float) -> None:
    while True:
        router = service.router
        states = [router.agent(a).state.value for a in router.agent_ids()]
        by_state = {s.value: states.count(s.value) for s in AgentState}
        waiting = sum(len(router.waiting_in_order(q)) for q in router.queue_names)
        say("status", now=service.now(), waiting=waiting, agents=by_state)
        await asyncio.sleep(every)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.recovery.crash_harness", description=__doc__)
    p.add_argument("--db", required=True, help="store file (the journal and ledger go beside)")
    p.add_argument("--seconds", type=float, default=20.0, help="seconds of arrivals")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--resume", action="store_true", help="recover from the journal first")
    p.add_argument("--agents", type=int, default=5, help="bot agents")
    p.add_argument("--rate", type=float, default=3.5, help="arrivals per second")
    p.add_argument("--patience", type=float, default=4.0, help="callers' mean patience, s")
    p.add_argument("--status-every", type=float, default=0.1, help="seconds between status lines")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
