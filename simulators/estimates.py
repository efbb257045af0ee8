"""A figure across replications: its mean and Student-t 95% confidence interval."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass

#: Two-sided 95% quantiles t(0.975, df) for df = 1..30.
_T975 = (
    12.706204736,
    4.302652730,
    3.182446305,
    2.776445105,
    2.570581836,
    2.446911851,
    2.364624252,
    2.306004135,
    2.262157163,
    2.228138852,
    2.200985160,
    2.178812830,
    2.160368656,
    2.144786688,
    2.131449546,
    2.119905299,
    2.109815578,
    2.100922040,
    2.093024054,
    2.085963447,
    2.079613845,
    2.073873068,
    2.068657610,
    2.063898562,
    2.059538553,
    2.055529439,
    2.051830516,
    2.048407142,
    2.045229642,
    2.042272456,
)
#: Beyond the table: (df, quantile) anchors, interpolated linearly in 1/df.
_T975_TAIL = ((30, 2.042272456), (40, 2.021075390), (60, 2.000297822), (120, 1.979930405))
#: The normal quantile, t's limit as df grows.
Z975 = 1.959963985


def t_quantile_975(df: int) -> float:
    """The Student-t quantile for a two-sided 95% interval with ``df`` degrees of
    freedom: exact (9 decimals) for df 1..30, then linear in 1/df between 30, 40, 60,
    120 and infinity (error below 1e-4)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= 30:
        return _T975[df - 1]
    for (d0, q0), (d1, q1) in itertools.pairwise(_T975_TAIL):
        if df <= d1:
            return q0 + (q1 - q0) * (1 / d0 - 1 / df) / (1 / d0 - 1 / d1)
    d0, q0 = _T975_TAIL[-1]
    return q0 + (Z975 - q0) * (1 / d0 - 1 / df) / (1 / d0)


@dataclass(frozen=True, slots=True)
class Estimate:
    """A figure across replications: its mean and 95% interval over the ``n``
    replications where it was defined (``mean`` None when it never was). With n = 1
    the interval is [mean, mean]: one replication says nothing of the spread."""

    mean: float | None
    low: float | None
    high: float | None
    n: int

    @property
    def ci95(self) -> tuple[float, float] | None:
        if self.low is None or self.high is None:
            return None
        return (self.low, self.high)

    @property
    def half_width(self) -> float | None:
        if self.low is None or self.high is None:
            return None
        return (self.high - self.low) / 2


def estimate(values: Iterable[float | None]) -> Estimate:
    """Mean and Student-t 95% interval of the defined (not None) values: mean ± t(n-1)
    · s / √n with s the sample standard deviation."""
    xs = [v for v in values if v is not None]
    n = len(xs)
    if n == 0:
        return Estimate(None, None, None, 0)
    mean = math.fsum(xs) / n
    if n == 1:
        return Estimate(mean, mean, mean, 1)
    var = math.fsum((x - mean) ** 2 for x in xs) / (n - 1)
    half = t_quantile_975(n - 1) * math.sqrt(var / n)
    return Estimate(mean, mean - half, mean + half, n)
