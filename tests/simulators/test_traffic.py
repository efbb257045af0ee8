"""Traffic and bots: arrivals at the asked rate, callers of every kind, patient as asked."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from cti.clock import run_virtual
from cti.errors import SimulationError
from cti.models import CallerKind
from cti.phone import classify
from simulators.traffic import ArrivalModel, CallerMix, CallerPool, run_arrivals
from telephony_adapters.sim import SimTrunk


def test_caller_mix_matches_the_shares() -> None:
    pool = CallerPool(
        ["13812345678", "+8613912345678"], CallerMix(0.2, 0.1, 0.05), random.Random(1)
    )
    kinds = Counter(classify(pool.draw(), "CN")[0] for _ in range(20_000))
    share = {k: n / 20_000 for k, n in kinds.items()}
    assert share[CallerKind.PRIVATE] == pytest.approx(0.10, abs=0.01)
    assert share[CallerKind.MALFORMED] == pytest.approx(0.05, abs=0.01)
    # unknown numbers plus known ones: known customers' numbers classify as UNKNOWN
    # until looked up, so check the unknown range directly.
    assert share[CallerKind.UNKNOWN] == pytest.approx(0.85, abs=0.015)


def test_shares_over_one_are_refused() -> None:
    with pytest.raises(SimulationError, match="add up to"):
        CallerMix(0.6, 0.3, 0.2)


def test_poisson_arrivals_at_the_rate_and_callers_give_up_after_their_patience() -> None:
    async def main() -> tuple[int, int, int]:
        trunk = SimTrunk()
        pool = CallerPool(["13812345678"], CallerMix(0, 0, 0), random.Random(2))
        model = ArrivalModel(rate_per_hour=600, mean_patience_s=60)
        calls = await run_arrivals(trunk, model, pool, random.Random(3), until=36_000.0)
        arrived = hung_up = 0
        events = aiter(trunk.events())
        while True:
            try:
                event = await asyncio.wait_for(anext(events), 0.001)
            except TimeoutError:
                break
            if event.type == "call_arrived":
                arrived += 1
            else:
                hung_up += 1
        return calls, arrived, hung_up

    calls, arrived, hung_up = run_virtual(main)
    # 10 hours at 600/h: 6000 expected, sd about 77.
    assert 5700 < calls < 6300
    assert arrived == calls
    assert hung_up == calls  # nobody answered them, so every caller gave up
