"""Queueing-theory staffing figures: Erlang C (M/M/c) and Erlang A (M/M/c+M).

Pure functions, no I/O, standard library only. Units: the arrival ``rate`` is in
calls per hour; ``aht`` (mean handle time: talk + hold + wrap-up), ``target`` (the
service-level threshold T) and ``patience`` (mean patience) are in seconds.

Notation: lambda = rate / 3600 (calls/s), mu = 1 / aht, a = lambda / mu (offered
load in Erlangs), c agents, alpha = c * mu (the queue's service rate when every
agent is busy), theta = 1 / patience.

Definitions (as in docs/statistics.md)
    service_level           calls answered within T / calls offered
    service_level_answered  calls answered within T / calls answered
    asa_s                   mean wait of answered calls (zero waits included)
    abandon_rate            abandoned / offered
    occupancy               carried load / agents = (1 - abandon_rate) * a / c
    mean_queue_length       mean number of callers waiting (not in service)

The models know nothing of the short-abandon threshold of the live statistics: every
offered call counts (for Erlang A a caller may abandon after any positive wait).
Erlang C is kept in log space (Erlang B by its stable recursion); Erlang A sums the
birth-death chain's queue states and their incomplete-beta service levels in log space.
The derivations, and how :func:`agents_for_goal` searches, are in docs/acd.md, §15.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from cti.errors import SimulationError

__all__ = [
    "DEFAULT_MAX_AGENTS",
    "ErlangResult",
    "agents_for_goal",
    "erlang_a",
    "erlang_b",
    "erlang_c",
    "offered_load",
]

DEFAULT_MAX_AGENTS = 100_000
"""The default ceiling of :func:`agents_for_goal`'s search."""

_MAX_QUEUE_STATES = 2_000_000
"""Erlang A refuses a queue distribution needing more states than this."""

_LOG_CUTOFF = 50.0
"""Queue states below exp(-50) (2e-22) of the largest one are left out."""


@dataclass(frozen=True, slots=True)
class ErlangResult:
    """Steady-state figures of one staffing scenario.

    ``model`` is ``"erlang_c"`` or ``"erlang_a"``; ``patience_s`` is ``None`` for
    Erlang C. Probabilities are fractions of offered calls unless named otherwise.
    """

    model: Literal["erlang_c", "erlang_a"]
    rate_per_hour: float
    aht_s: float
    agents: int
    target_s: float
    patience_s: float | None
    offered_load: float
    """Erlangs: rate x AHT."""
    p_wait: float
    """P(wait > 0) of an offered call."""
    service_level: float
    """Calls answered within the target / calls offered."""
    service_level_answered: float
    """Calls answered within the target / calls answered."""
    asa_s: float
    """Mean wait of answered calls, in seconds."""
    abandon_rate: float
    """Abandoned / offered (0 for Erlang C)."""
    mean_queue_length: float
    """Mean number of callers waiting."""
    occupancy: float
    """Carried load / agents."""


def _check_positive(name: str, value: float) -> float:
    v = float(value)
    if not math.isfinite(v) or v <= 0.0:
        raise SimulationError(f"{name} must be a finite number > 0, got {value!r}")
    return v


def _check_target(target: float) -> float:
    t = float(target)
    if not math.isfinite(t) or t < 0.0:
        raise SimulationError(f"target must be a finite number of seconds >= 0, got {target!r}")
    return t


def _check_agents(agents: int) -> int:
    if isinstance(agents, bool) or not isinstance(agents, int) or agents < 1:
        raise SimulationError(f"agents must be an integer >= 1, got {agents!r}")
    return agents


def offered_load(rate: float, aht: float) -> float:
    """Offered load in Erlangs for ``rate`` calls per hour of ``aht`` seconds each."""
    return _check_positive("rate", rate) * _check_positive("aht", aht) / 3600.0


def _log_erlang_b(c: int, a: float) -> float:
    """log B(c, a) by the Erlang B recursion, in log space (no underflow)."""
    log_a = math.log(a)
    log_b = 0.0
    for n in range(1, c + 1):
        lab = log_a + log_b  # log(a B(n-1)); a B(n-1) <= a, so exp() cannot overflow
        log_b = lab - math.log(n + math.exp(lab))
    return log_b


def erlang_b(agents: int, load: float) -> float:
    """Erlang B blocking probability of ``agents`` servers offered ``load`` Erlangs."""
    c = _check_agents(agents)
    a = _check_positive("load", load)
    return math.exp(_log_erlang_b(c, a))


def erlang_c(rate: float, aht: float, agents: int, target: float = 20.0) -> ErlangResult:
    """Erlang C (M/M/c, callers never abandon).

    ``rate`` calls per hour, ``aht`` and ``target`` in seconds. Raises
    :class:`SimulationError` on bad input or when the load is not below ``agents``
    (no steady state: the queue grows without bound).
    """
    a = offered_load(rate, aht)
    mu = 1.0 / float(aht)
    c = _check_agents(agents)
    t = _check_target(target)
    if a >= c:
        raise SimulationError(
            f"Erlang C has no steady state: offered load {a:.4g} Erlangs "
            f"(rate x aht) is not below agents = {c}; add agents or use Erlang A (patience)"
        )
    b = math.exp(_log_erlang_b(c, a))
    p_wait = c * b / (c - a * (1.0 - b))
    no_wait = (c - a) * (1.0 - b) / (c - a * (1.0 - b))  # 1 - C without cancellation
    drain = (c - a) * mu  # alpha - lambda
    sl = no_wait - p_wait * math.expm1(-drain * t)
    return ErlangResult(
        model="erlang_c",
        rate_per_hour=float(rate),
        aht_s=float(aht),
        agents=c,
        target_s=t,
        patience_s=None,
        offered_load=a,
        p_wait=p_wait,
        service_level=sl,
        service_level_answered=sl,
        asa_s=p_wait / drain,
        abandon_rate=0.0,
        mean_queue_length=p_wait * a / (c - a),
        occupancy=a / c,
    )


def _queue_log_weights(lam: float, alpha: float, theta: float) -> tuple[list[float], float]:
    """log(rho_k / rho_peak), k = 0, 1, ..., truncated past the negligible tail, and
    log rho_peak, where rho_k = pi_{c+k} / pi_c.

    The log ratios are summed with Neumaier compensation and kept relative to the peak,
    so the states that carry the mass keep full precision even when log rho reaches
    the millions (heavy overload with long patience)."""
    his, los = [0.0], [0.0]
    total, comp = 0.0, 0.0
    peak, top = 0.0, 0
    k = 0
    while True:
        k += 1
        death = alpha + k * theta
        step = math.log(lam / death)
        new = total + step
        if abs(total) >= abs(step):
            comp += (total - new) + step
        else:
            comp += (step - new) + total
        total = new
        his.append(total)
        los.append(comp)
        if total + comp > peak:
            peak, top = total + comp, k
        if death > lam and total + comp < peak - _LOG_CUTOFF:
            break
        if k >= _MAX_QUEUE_STATES:
            raise SimulationError(
                "Erlang A: the queue distribution needs more than "
                f"{_MAX_QUEUE_STATES} states (patience too long for this overload); "
                "shorten patience or add agents"
            )
    hi_p, lo_p = his[top], los[top]
    return [(h - hi_p) + (lo - lo_p) for h, lo in zip(his, los, strict=True)], hi_p + lo_p


def _unit(p: float) -> float:
    return min(1.0, max(0.0, p))


def _log_sum_exp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(math.fsum(math.exp(v - top) for v in values))


def erlang_a(
    rate: float, aht: float, agents: int, patience: float, target: float = 20.0
) -> ErlangResult:
    """Erlang A (M/M/c+M: exponential patience of mean ``patience`` seconds).

    ``rate`` calls per hour, ``aht``, ``patience`` and ``target`` in seconds. Stable
    at any load. ``service_level`` is P(answered and wait <= target) over all offered
    calls; ``service_level_answered`` divides by answered calls instead.
    """
    lam = _check_positive("rate", rate) / 3600.0
    mu = 1.0 / _check_positive("aht", aht)
    c = _check_agents(agents)
    theta = 1.0 / _check_positive("patience", patience)
    t = _check_target(target)
    a = offered_load(rate, aht)
    alpha = c * mu

    rel, log_peak = _queue_log_weights(lam, alpha, theta)  # log(rho_k / rho_peak)
    log_r = -_log_erlang_b(c, a)  # log of sum_{n <= c} pi_n / pi_c
    # states n < c weigh R - 1; n = c + k weigh rho_k (rho_0 = 1); all relative to rho_peak
    log_below = log_r + math.log1p(-math.exp(-log_r)) - log_peak if log_r > 0.0 else -math.inf
    log_queue = _log_sum_exp(rel)
    log_z = (
        log_queue
        if log_below == -math.inf
        else max(log_below, log_queue) + math.log1p(math.exp(-abs(log_below - log_queue)))
    )
    w = [math.exp(lr - log_z) for lr in rel]  # w_k = pi_{c+k}
    p_wait = math.fsum(w)
    p_below = math.exp(log_below - log_z)  # P(n < c)
    lq = math.fsum(k * wk for k, wk in enumerate(w))
    # P(abandon) = theta Lq / lambda = sum_k w_k (1 - a_k); sums of positive terms keep
    # both P(abandon) and P(answered) accurate when either is tiny
    p_abandon = math.fsum(
        wk * (k + 1) * theta / (alpha + (k + 1) * theta) for k, wk in enumerate(w)
    )
    answered = p_below + math.fsum(wk * alpha / (alpha + (k + 1) * theta) for k, wk in enumerate(w))

    # the sums are exact to rounding; keep rounding from leaving [0, 1]
    sl = _unit(p_below + math.fsum(_answered_within(w, alpha, theta, t)))
    waits = _answered_waits(w, alpha, theta)
    return ErlangResult(
        model="erlang_a",
        rate_per_hour=float(rate),
        aht_s=float(aht),
        agents=c,
        target_s=t,
        patience_s=float(patience),
        offered_load=a,
        p_wait=_unit(p_wait),
        service_level=sl,
        service_level_answered=_unit(sl / answered),
        asa_s=math.fsum(waits) / answered,
        abandon_rate=p_abandon,
        mean_queue_length=lq,
        occupancy=_unit(answered * a / c),
    )


def _answered_within(w: list[float], alpha: float, theta: float, t: float) -> list[float]:
    """Erlang A: P(answered, wait <= T, k ahead) for each k of the queue weights ``w``."""
    # P(answered, wait <= T | k) = a_k I_y(k+1, beta); I_y(k+1, beta) = 1 - sum_{j<=k} t_j
    beta = alpha / theta + 1.0
    answered_in_t: list[float] = []
    y = -math.expm1(-theta * t)
    if y > 0.0:  # with T = 0 nobody who waits is answered within T
        log_y = math.log(y)
        log_t_j = -beta * theta * t  # log t_0 = beta log(1 - y)
        cdf = 0.0
        for k, wk in enumerate(w):
            if k > 0:
                log_t_j += log_y + math.log((k - 1 + beta) / k)
            cdf += math.exp(log_t_j)
            tail = max(0.0, 1.0 - cdf)
            answered_in_t.append(wk * alpha / (alpha + (k + 1) * theta) * tail)
    return answered_in_t


def _answered_waits(w: list[float], alpha: float, theta: float) -> list[float]:
    """Erlang A: w_k m_k, where m_k = E[wait; answered | k ahead] (for the mean wait)."""
    waits = []
    m = 0.0
    for k, wk in enumerate(w):
        r = alpha + (k + 1) * theta
        m = alpha / r / r + (alpha + k * theta) / r * m
        waits.append(wk * m)
    return waits


def _evaluate(
    rate: float, aht: float, agents: int, target: float, patience: float | None
) -> ErlangResult:
    if patience is None:
        return erlang_c(rate, aht, agents, target)
    return erlang_a(rate, aht, agents, patience, target)


def agents_for_goal(
    rate: float,
    aht: float,
    goal_sl: float,
    target: float,
    patience: float | None = None,
    max_agents: int = DEFAULT_MAX_AGENTS,
) -> int:
    """The fewest agents whose service level (answered within ``target`` / offered)
    is at least ``goal_sl``: Erlang C, or Erlang A when ``patience`` is given.

    Raises :class:`SimulationError` on bad input or when ``max_agents`` agents do not
    reach the goal.
    """
    g = float(goal_sl)
    if not (0.0 < g < 1.0):
        raise SimulationError(f"goal_sl must be a fraction in (0, 1), got {goal_sl!r}")
    a = offered_load(rate, aht)
    _check_target(target)
    if patience is not None:
        _check_positive("patience", patience)
    cap = _check_agents(max_agents)

    def meets(n: int) -> bool:
        return _evaluate(rate, aht, n, target, patience).service_level >= g

    # lo never meets the goal. Erlang C needs n > a. In both models the calls answered
    # (within T or not) carry at most n Erlangs, so SL < n / a: n < goal * a fails.
    lo = max(0, math.ceil(g * a * (1.0 - 1e-12)) - 1)
    if patience is None:
        lo = max(lo, math.floor(a))
    if lo + 1 > cap:
        raise SimulationError(
            f"service level goal {g:g} within {target:g}s needs more than "
            f"max_agents = {cap} for a load of {a:.4g} Erlangs"
        )
    step = 1
    hi = lo + 1
    while not meets(hi):
        lo = hi
        if hi == cap:
            raise SimulationError(
                f"service level goal {g:g} within {target:g}s not reached with max_agents = {cap}"
            )
        step *= 2
        hi = min(cap, lo + step)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if meets(mid):
            hi = mid
        else:
            lo = mid
    return hi
