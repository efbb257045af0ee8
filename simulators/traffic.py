"""Callers for the simulator trunk: Poisson arrivals, who calls, how patient they are.

Arrivals form a Poisson process at ``rate_per_hour``. Each caller presents a number:
one of the store's customers (in the national or international form a line would
show), an unknown number, a withheld one, or garbage from a faulty line, in the
configured shares. A caller waits for an answer for an exponentially distributed
patience (none if the mean is 0) and then hangs up.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass

from cti.errors import SimulationError
from telephony_adapters.sim import SimTrunk

PRIVATE_FORMS = ("", "P", "Private", "anonymous", "withheld")
MALFORMED_FORMS = ("12#4*", "+++", "ABC-DEF", "0", "☎☎☎", "1" * 40, "\x00\x07", "+86-")


@dataclass(frozen=True, slots=True)
class CallerMix:
    """Shares of callers who are not known customers; the rest are known."""

    unknown_share: float = 0.15
    private_share: float = 0.05
    malformed_share: float = 0.02

    def __post_init__(self) -> None:
        total = self.unknown_share + self.private_share + self.malformed_share
        if total > 1.0:
            raise SimulationError(
                f"caller shares add up to {total:.2f}; unknown + private + malformed must be <= 1"
            )


class CallerPool:
    """Draws the number each simulated caller presents."""

    def __init__(self, known_numbers: Sequence[str], mix: CallerMix, rng: random.Random) -> None:
        self._known = list(known_numbers)
        self._mix = mix
        self._rng = rng

    def draw(self) -> str:
        u = self._rng.random()
        m = self._mix
        if u < m.private_share:
            return self._rng.choice(PRIVATE_FORMS)
        u -= m.private_share
        if u < m.malformed_share:
            return self._rng.choice(MALFORMED_FORMS)
        u -= m.malformed_share
        if u < m.unknown_share or not self._known:
            # A mobile number in a range the demo data never uses (199...).
            return "199" + "".join(self._rng.choice("0123456789") for _ in range(8))
        return self._rng.choice(self._known)


@dataclass(frozen=True, slots=True)
class ArrivalModel:
    rate_per_hour: float
    mean_patience_s: float
    """Mean of the exponential patience; 0 means callers never give up."""

    def __post_init__(self) -> None:
        if self.rate_per_hour < 0 or self.mean_patience_s < 0:
            raise SimulationError(
                f"rate ({self.rate_per_hour}/h) and mean patience ({self.mean_patience_s} s) "
                "must not be negative"
            )


async def run_arrivals(
    trunk: SimTrunk,
    model: ArrivalModel,
    pool: CallerPool,
    rng: random.Random,
    *,
    until: float | None = None,
    initial: int = 0,
) -> int:
    """Ring callers into ``trunk`` until loop time ``until`` (forever if None).

    ``initial`` callers ring at once (a center that is already busy when you arrive).
    Returns, once the last caller is answered or has given up, how many called.
    """
    loop = asyncio.get_running_loop()
    calls = 0
    async with asyncio.TaskGroup() as callers:

        def ring() -> None:
            nonlocal calls
            call_id = trunk.ring(pool.draw())
            calls += 1
            mean = model.mean_patience_s
            patience = rng.expovariate(1.0 / mean) if mean else None
            callers.create_task(_wait(trunk, call_id, patience), name=f"caller:{call_id}")

        for _ in range(initial):
            ring()
        if model.rate_per_hour == 0:
            if until is not None:
                await asyncio.sleep(max(0.0, until - loop.time()))
            return calls
        while True:
            await asyncio.sleep(rng.expovariate(model.rate_per_hour / 3600.0))
            if until is not None and loop.time() >= until:
                break
            ring()
    return calls


async def _wait(trunk: SimTrunk, call_id: str, patience: float | None) -> None:
    try:
        async with asyncio.timeout(patience):
            await trunk.wait_answered(call_id)
    except TimeoutError:
        trunk.caller_hangs_up(call_id)
