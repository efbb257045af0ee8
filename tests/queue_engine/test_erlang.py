"""Erlang C and Erlang A: the reference case (docs/acd.md §15), independent cross-checks,
properties, CLI."""

from __future__ import annotations

import itertools
import json
import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cti.app.cli import main
from cti.errors import SimulationError
from queue_engine.erlang import (
    ErlangResult,
    agents_for_goal,
    erlang_a,
    erlang_b,
    erlang_c,
    offered_load,
)

# The reference case (docs/acd.md §15): 600 calls/h, AHT 180 s, 33 agents, T = 20 s,
# patience 120 s (Erlang A).
RATE, AHT, AGENTS, TARGET, PATIENCE = 600.0, 180.0, 33, 20.0, 120.0

# (field, Erlang C, Erlang A, decimals the table prints)
REFERENCE_TABLE = [
    ("p_wait", 0.490488, 0.288465, 6),
    ("service_level", 0.648550, 0.878186, 6),
    ("service_level_answered", 0.648550, 0.914444, 6),
    ("asa_s", 29.429, 4.368, 3),
    ("mean_queue_length", 4.905, 0.793, 3),
    ("abandon_rate", 0.0, 0.039650, 6),
    ("occupancy", 0.9091, 0.8730, 4),
]

SETTINGS = settings(max_examples=60, deadline=None)


@pytest.mark.parametrize(("field", "ref_c", "ref_a", "decimals"), REFERENCE_TABLE)
def test_reference_table(field: str, ref_c: float, ref_a: float, decimals: int) -> None:
    """Both columns agree with the table to every decimal it prints (at least 4 for
    probabilities; the ASA and queue length are printed to 3)."""
    tol = 0.5 * 10.0**-decimals + 1e-12
    c = erlang_c(RATE, AHT, AGENTS, TARGET)
    a = erlang_a(RATE, AHT, AGENTS, PATIENCE, TARGET)
    assert getattr(c, field) == pytest.approx(ref_c, abs=tol)
    assert getattr(a, field) == pytest.approx(ref_a, abs=tol)


def test_reference_case_shape() -> None:
    c = erlang_c(RATE, AHT, AGENTS, TARGET)
    a = erlang_a(RATE, AHT, AGENTS, PATIENCE, TARGET)
    assert (c.model, a.model) == ("erlang_c", "erlang_a")
    assert c.offered_load == a.offered_load == 30.0
    assert (c.patience_s, a.patience_s) == (None, PATIENCE)
    assert (c.agents, c.target_s, c.rate_per_hour, c.aht_s) == (33, 20.0, 600.0, 180.0)
    with pytest.raises(AttributeError):
        c.p_wait = 0.0  # type: ignore[misc]


# --- independent checks -------------------------------------------------------------


def _erlang_b_exact(c: int, a: Fraction) -> Fraction:
    terms = [Fraction(1)]
    for n in range(1, c + 1):
        terms.append(terms[-1] * a / n)
    return terms[-1] / sum(terms)


def test_erlang_b_and_c_against_exact_rationals_at_hundreds_of_agents() -> None:
    """Stable where a naive a^c / c! overflows: 800 agents, 780 Erlangs."""
    c, rate, aht = 800, 15600.0, 180.0  # 780 Erlangs
    a = Fraction(780)
    b = _erlang_b_exact(c, a)
    assert erlang_b(c, 780.0) == pytest.approx(float(b), rel=1e-11)
    p_wait = c * b / (c - a * (1 - b))
    res = erlang_c(rate, aht, c, 20.0)
    assert res.p_wait == pytest.approx(float(p_wait), rel=1e-11)
    drain = (c - 780) / aht
    assert res.service_level == pytest.approx(1 - float(p_wait) * math.exp(-drain * 20), rel=1e-11)
    assert res.asa_s == pytest.approx(float(p_wait) / drain, rel=1e-11)
    assert res.mean_queue_length == pytest.approx(float(p_wait * a / (c - a)), rel=1e-11)


def test_erlang_c_far_from_saturation_does_not_underflow() -> None:
    res = erlang_c(100.0, 60.0, 2000, 20.0)  # 1.7 Erlangs on 2,000 agents
    assert res.p_wait == 0.0
    assert res.service_level == 1.0
    assert res.asa_s == 0.0
    assert erlang_a(100.0, 60.0, 2000, 60.0, 20.0).service_level == 1.0


def _mmcm_exact(rate: float, aht: float, c: int, patience: float) -> list[float]:
    """pi_n of the M/M/c+M chain with exact rationals, truncated at 1e-30."""
    lam = Fraction(rate) / 3600
    mu = 1 / Fraction(aht)
    theta = 1 / Fraction(patience)
    w = [Fraction(1)]
    n = 0
    while True:
        n += 1
        death = min(n, c) * mu + max(n - c, 0) * theta
        w.append(w[-1] * lam / death)
        if death > lam and w[-1] < Fraction(1, 10**30) * max(w):
            break
    total = sum(w)
    return [float(x / total) for x in w]


def _answered_within_by_uniformisation(
    pi: list[float], c: int, aht: float, patience: float, t: float
) -> float:
    """P(answered and 0 < wait <= t) for waiting callers: the tagged caller's chain with
    j ahead (j = k .. 0) steps at alpha + j theta, served at rate alpha from j = 0, and
    abandons at theta; one uniformised run from the PASTA mix over k."""
    alpha, theta = c / aht, 1 / patience
    p = pi[c:]  # an arrival finds c + k: k ahead
    big = alpha + len(p) * theta
    weight = math.exp(-big * t)  # Poisson(big t) pmf, n = 0
    served, total = 0.0, 0.0
    n = 0
    while True:
        total += weight * served
        if n > big * t and weight < 1e-18:
            return total
        served += p[0] * alpha / big
        p = [
            x * (1 - (alpha + (j + 1) * theta) / big)
            + (p[j + 1] * (alpha + (j + 1) * theta) / big if j + 1 < len(p) else 0.0)
            for j, x in enumerate(p)
        ]
        n += 1
        weight *= big * t / n


def _simpson(f: object, lo: float, hi: float, n: int = 20000) -> float:
    assert callable(f)
    h = (hi - lo) / n
    s = f(lo) + f(hi)
    s += 4 * sum(f(lo + (2 * i - 1) * h) for i in range(1, n // 2 + 1))
    s += 2 * sum(f(lo + 2 * i * h) for i in range(1, n // 2))
    return float(s * h / 3)


CROSS_CASES = [
    (RATE, AHT, AGENTS, PATIENCE, TARGET),  # the reference case
    (600.0, 180.0, 27, 60.0, 30.0),  # overloaded: 30 Erlangs on 27 agents
    (3000.0, 240.0, 190, 300.0, 15.0),  # 200 Erlangs on 190 agents
    (200.0, 300.0, 20, 45.0, 0.0),  # T = 0
]


@pytest.mark.parametrize(("rate", "aht", "c", "patience", "t"), CROSS_CASES)
def test_erlang_a_against_the_chain(
    rate: float, aht: float, c: int, patience: float, t: float
) -> None:
    """Against exact-rational pi_n, a uniformised transient of the tagged caller's chain,
    and Mandelbaum-Zeltyn's closed-form density of answered waits."""
    pi = _mmcm_exact(rate, aht, c, patience)
    res = erlang_a(rate, aht, c, patience, t)
    lam, alpha, theta = rate / 3600, c / aht, 1 / patience

    p_wait = math.fsum(pi[c:])
    lq = math.fsum(k * x for k, x in enumerate(pi[c:]))
    p_ab = math.fsum(x * (k + 1) * theta / (alpha + (k + 1) * theta) for k, x in enumerate(pi[c:]))
    assert res.p_wait == pytest.approx(p_wait, abs=1e-12)
    assert res.mean_queue_length == pytest.approx(lq, abs=1e-10)
    assert res.abandon_rate == pytest.approx(p_ab, abs=1e-12)  # per-state vs rate balance
    assert res.abandon_rate == pytest.approx(theta * lq / lam, abs=1e-12)
    busy = math.fsum(min(n, c) * x for n, x in enumerate(pi))
    assert res.occupancy == pytest.approx(busy / c, abs=1e-12)

    within = _answered_within_by_uniformisation(pi, c, aht, patience, t)
    assert res.service_level == pytest.approx(1 - p_wait + within, abs=1e-9)
    assert res.service_level_answered == pytest.approx(res.service_level / (1 - p_ab), abs=1e-9)

    def g(x: float) -> float:
        return (
            pi[c] * alpha * math.exp(-(alpha + theta) * x + lam / theta * -math.expm1(-theta * x))
        )

    horizon = (lam / theta + 60) / (alpha + theta)
    if t > 0:
        assert 1 - p_wait + _simpson(g, 0.0, t) == pytest.approx(res.service_level, abs=1e-9)
    assert _simpson(g, 0.0, horizon) == pytest.approx(p_wait - p_ab, abs=1e-9)
    asa = _simpson(lambda x: x * g(x), 0.0, horizon) / (1 - p_ab)
    assert res.asa_s == pytest.approx(asa, rel=1e-8)


def test_erlang_a_at_hundreds_of_agents_is_finite_and_consistent() -> None:
    for c in (200, 500, 1000):
        for rate in (c * 20.0 * 0.7, c * 20.0, c * 20.0 * 1.5):  # 70%, 100%, 150% load
            r = erlang_a(rate, 180.0, c, 90.0, 20.0)
            for v in (r.p_wait, r.service_level, r.service_level_answered, r.abandon_rate):
                assert 0.0 <= v <= 1.0
            assert r.service_level <= 1 - r.abandon_rate + 1e-12
            assert math.isfinite(r.asa_s)
            assert r.asa_s >= 0
            assert r.abandon_rate == pytest.approx(
                r.mean_queue_length / 90.0 / (rate / 3600), rel=1e-9
            )


def test_huge_patience_converges_to_erlang_c() -> None:
    c = erlang_c(RATE, AHT, AGENTS, TARGET)
    previous = math.inf
    for patience in (1e3, 1e5, 1e7, 1e9, 1e11, 1e13):
        a = erlang_a(RATE, AHT, AGENTS, patience, TARGET)
        gap = max(
            abs(a.p_wait - c.p_wait),
            abs(a.service_level - c.service_level),
            abs(a.service_level_answered - c.service_level_answered),
            abs(a.asa_s - c.asa_s) / c.asa_s,
            abs(a.mean_queue_length - c.mean_queue_length) / c.mean_queue_length,
            a.abandon_rate,
            abs(a.occupancy - c.occupancy),
        )
        assert gap < previous / 20  # soon like 1 / patience
        previous = gap
    assert previous < 1e-8


def test_patience_ladder_reference_case() -> None:
    """Step by step from impatient to patient callers, the figures move toward C's."""
    c = erlang_c(RATE, AHT, AGENTS, TARGET)
    ladder = [erlang_a(RATE, AHT, AGENTS, 5.0 * 1.5**i, TARGET) for i in range(30)]
    for short, long_ in itertools.pairwise(ladder):
        assert long_.abandon_rate < short.abandon_rate
        assert short.p_wait < long_.p_wait < c.p_wait
        assert short.mean_queue_length < long_.mean_queue_length < c.mean_queue_length
        assert short.asa_s < long_.asa_s < c.asa_s
        assert c.service_level < long_.service_level_answered < short.service_level_answered


@settings(max_examples=200, deadline=None)
@given(
    st.floats(1.0, 1e5),
    st.floats(10.0, 1000.0),
    st.integers(1, 400),
    st.floats(1.0, 3000.0),
    st.floats(0.0, 600.0),
)
def test_erlang_a_figures_are_consistent_at_any_load(
    rate: float, aht: float, agents: int, patience: float, target: float
) -> None:
    """Far past overload too: probabilities stay in [0, 1] and agree with each other."""
    r = erlang_a(rate, aht, agents, patience, target)
    for v in (r.p_wait, r.service_level, r.service_level_answered, r.abandon_rate, r.occupancy):
        assert 0.0 <= v <= 1.0
    assert r.abandon_rate <= r.p_wait * (1 + 1e-12)
    assert r.service_level <= 1 - r.abandon_rate + 1e-12
    assert r.service_level < agents / r.offered_load + 1e-12  # agents_for_goal's lower bound
    assert r.service_level <= r.service_level_answered + 1e-12
    # occupancy = (1 - P(abandon)) a / c, compared where it is well conditioned
    assert r.occupancy * agents / r.offered_load == pytest.approx(1 - r.abandon_rate, abs=1e-12)
    assert r.asa_s >= 0.0
    assert math.isfinite(r.asa_s)


def test_target_zero_and_long_target() -> None:
    for r in (erlang_c(RATE, AHT, AGENTS, 0.0), erlang_a(RATE, AHT, AGENTS, PATIENCE, 0.0)):
        assert r.service_level == pytest.approx(1 - r.p_wait, abs=1e-14)
    c = erlang_c(RATE, AHT, AGENTS, 3600.0)
    a = erlang_a(RATE, AHT, AGENTS, PATIENCE, 3600.0)
    assert c.service_level == pytest.approx(1.0, abs=1e-12)
    assert a.service_level == pytest.approx(1 - a.abandon_rate, abs=1e-12)
    assert a.service_level_answered == pytest.approx(1.0, abs=1e-12)


# --- stability and input errors ---------------------------------------------------


@pytest.mark.parametrize("agents", [30, 29, 1])
def test_unstable_erlang_c_raises(agents: int) -> None:
    with pytest.raises(SimulationError, match="no steady state"):
        erlang_c(RATE, AHT, agents, TARGET)
    assert erlang_a(RATE, AHT, agents, PATIENCE, TARGET).abandon_rate > 0.0  # A is stable


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"rate": -1.0}, "rate"),
        ({"rate": 0.0}, "rate"),
        ({"rate": math.nan}, "rate"),
        ({"aht": 0.0}, "aht"),
        ({"aht": math.inf}, "aht"),
        ({"agents": 0}, "agents"),
        ({"agents": 2.5}, "agents"),
        ({"target": -1.0}, "target"),
        ({"patience": 0.0}, "patience"),
        ({"patience": -5.0}, "patience"),
    ],
)
def test_bad_input_names_the_parameter(kwargs: dict[str, float], name: str) -> None:
    args: dict[str, float] = {"rate": RATE, "aht": AHT, "agents": AGENTS, "target": TARGET}
    args.update(kwargs)
    patience = args.pop("patience", PATIENCE)
    with pytest.raises(SimulationError, match=name):
        erlang_a(patience=patience, **args)  # type: ignore[arg-type]
    if "patience" not in kwargs:
        with pytest.raises(SimulationError, match=name):
            erlang_c(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize("goal", [0.0, 1.0, -0.1, 1.5, math.nan])
def test_agents_for_goal_rejects_goals_outside_0_1(goal: float) -> None:
    with pytest.raises(SimulationError, match="goal_sl"):
        agents_for_goal(RATE, AHT, goal, TARGET)


def test_agents_for_goal_beyond_max_agents_raises() -> None:
    with pytest.raises(SimulationError, match="max_agents"):
        agents_for_goal(RATE, AHT, 0.8, TARGET, max_agents=34)
    with pytest.raises(SimulationError, match="max_agents"):
        agents_for_goal(RATE, AHT, 0.8, TARGET, max_agents=30)  # none stable
    assert agents_for_goal(RATE, AHT, 0.8, TARGET, max_agents=35) == 35


# --- agents_for_goal ------------------------------------------------------------------


def test_agents_for_goal_reference_case() -> None:
    assert agents_for_goal(RATE, AHT, 0.8, TARGET) == 35
    assert erlang_c(RATE, AHT, 34, TARGET).service_level < 0.8
    assert erlang_c(RATE, AHT, 35, TARGET).service_level >= 0.8
    assert agents_for_goal(RATE, AHT, 0.8, TARGET, patience=PATIENCE) == 32
    assert erlang_a(RATE, AHT, 31, PATIENCE, TARGET).service_level < 0.8
    assert erlang_a(RATE, AHT, 32, PATIENCE, TARGET).service_level >= 0.8


def test_agents_for_goal_next_to_its_lower_bound() -> None:
    """Overloaded, very impatient callers: the answer sits just above goal x load, the
    bound (SL < agents / load) the search starts from."""
    rate, patience = 200_000.0, 0.5  # 10,000 Erlangs
    n = agents_for_goal(rate, AHT, 0.8, TARGET, patience=patience)
    assert n == 8001
    assert erlang_a(rate, AHT, n, patience, TARGET).service_level >= 0.8
    assert erlang_a(rate, AHT, n - 1, patience, TARGET).service_level < 0.8


rates = st.floats(10.0, 20000.0)
ahts = st.floats(20.0, 900.0)
targets = st.floats(0.0, 120.0)
patiences = st.floats(5.0, 2000.0)


@SETTINGS
@given(rates, ahts, st.floats(0.05, 0.99), targets, st.none() | patiences)
def test_agents_for_goal_is_minimal(
    rate: float, aht: float, goal: float, target: float, patience: float | None
) -> None:
    n = agents_for_goal(rate, aht, goal, target, patience)

    def sl(k: int) -> float:
        if patience is None:
            return erlang_c(rate, aht, k, target).service_level
        return erlang_a(rate, aht, k, patience, target).service_level

    assert sl(n) >= goal
    if n > 1:
        if patience is None and n - 1 <= offered_load(rate, aht):
            with pytest.raises(SimulationError):
                sl(n - 1)
        else:
            assert sl(n - 1) < goal


def _pair(
    rate: float, aht: float, extra: int, more: int, target: float, patience: float | None
) -> tuple[ErlangResult, ErlangResult]:
    base = math.floor(offered_load(rate, aht)) + extra if patience is None else extra
    if patience is None:
        return erlang_c(rate, aht, base, target), erlang_c(rate, aht, base + more, target)
    return (
        erlang_a(rate, aht, base, patience, target),
        erlang_a(rate, aht, base + more, patience, target),
    )


@SETTINGS
@given(rates, ahts, st.integers(1, 300), st.integers(1, 20), targets, st.none() | patiences)
def test_more_agents_higher_service_level_lower_wait(
    rate: float, aht: float, extra: int, more: int, target: float, patience: float | None
) -> None:
    few, many = _pair(rate, aht, extra, more, target, patience)
    eps = 1e-12
    assert many.service_level >= few.service_level - eps
    assert many.service_level_answered >= few.service_level_answered - eps
    assert many.asa_s <= few.asa_s * (1 + 1e-12) + eps
    assert many.p_wait <= few.p_wait + eps
    assert many.mean_queue_length <= few.mean_queue_length * (1 + 1e-12) + eps
    assert many.abandon_rate <= few.abandon_rate + eps
    assert many.occupancy <= few.occupancy + eps


@SETTINGS
@given(
    rates,
    ahts,
    st.integers(1, 30),
    targets,
    patiences,
    st.floats(1.01, 10.0),
)
def test_more_patience_tends_to_erlang_c(
    rate: float, aht: float, extra: int, target: float, patience: float, factor: float
) -> None:
    """Longer patience: fewer abandons, more and longer waits, all bounded by Erlang C."""
    c_agents = math.floor(offered_load(rate, aht)) + extra
    c = erlang_c(rate, aht, c_agents, target)
    short = erlang_a(rate, aht, c_agents, patience, target)
    long_ = erlang_a(rate, aht, c_agents, patience * factor, target)
    eps = 1e-12
    assert long_.abandon_rate <= short.abandon_rate + eps
    assert short.p_wait <= long_.p_wait + eps <= c.p_wait + 2 * eps
    assert short.mean_queue_length <= long_.mean_queue_length * (1 + 1e-12) + eps
    assert long_.mean_queue_length <= c.mean_queue_length * (1 + 1e-12) + eps
    assert short.asa_s <= long_.asa_s * (1 + 1e-12) + eps
    assert long_.asa_s <= c.asa_s * (1 + 1e-12) + eps
    assert c.service_level - eps <= long_.service_level_answered
    assert long_.service_level_answered <= short.service_level_answered + eps
    assert c.occupancy >= long_.occupancy - eps >= short.occupancy - 2 * eps


# --- CLI ------------------------------------------------------------------------------

BASE_ARGS = ["erlang", "--rate", "600", "--aht", "180", "--agents", "33"]


@pytest.mark.parametrize("patience", [None, 120.0])
def test_cli_json_matches_the_functions(
    patience: float | None, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*BASE_ARGS, "--json", "--target", "20", "--sl-goal", "0.8"]
    if patience is not None:
        argv += ["--patience", str(patience)]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    if patience is None:
        res = erlang_c(RATE, AHT, AGENTS, TARGET)
    else:
        res = erlang_a(RATE, AHT, AGENTS, patience, TARGET)
    assert out["model"] == res.model
    for key in (
        "p_wait",
        "service_level",
        "service_level_answered",
        "asa_s",
        "abandon_rate",
        "occupancy",
        "mean_queue_length",
    ):
        assert out[key] == getattr(res, key)
    assert out["agents_for_goal"] == agents_for_goal(RATE, AHT, 0.8, TARGET, patience)
    assert out["agents_for_goal"] == (35 if patience is None else 32)
    assert out["rate_per_hour"] == RATE
    assert out["aht_s"] == AHT
    assert out["agents"] == AGENTS
    assert out["target_s"] == TARGET
    assert out["patience_s"] == patience
    assert out["sl_goal"] == 0.8


def test_cli_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*BASE_ARGS, "--patience", "120"]) == 0
    out = capsys.readouterr().out
    assert "Erlang A" in out
    assert "0.878186" in out  # SL20 of offered
    assert "0.914444" in out  # SL20 of answered
    assert "4.368 s" in out
    assert "0.039650" in out
    assert "agents for SL20 >= 0.8   32" in out
    assert main(BASE_ARGS) == 0
    out = capsys.readouterr().out
    assert "Erlang C" in out
    assert "0.648550" in out
    assert "29.429 s" in out


@pytest.mark.parametrize("patience", [None, 120.0])
def test_cli_sizes_the_team_without_agents(
    patience: float | None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --agents (issue 21): the fewest agents that meet --goal, and their figures."""
    argv = ["erlang", "--rate", "600", "--aht", "180", "--target", "20", "--goal", "0.8"]
    argv += [] if patience is None else ["--patience", str(patience)]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    needed = agents_for_goal(RATE, AHT, 0.8, TARGET, patience)
    assert out["agents"] == out["agents_for_goal"] == needed == (35 if patience is None else 32)
    assert out["service_level"] >= 0.8
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert f"on {needed} agents" in text
    assert f"agents for SL20 >= 0.8   {needed}" in text


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["erlang", "--rate", "-600", "--aht", "180", "--agents", "33"], "--rate"),
        (["erlang", "--rate", "0", "--aht", "180", "--agents", "33"], "--rate"),
        (["erlang", "--rate", "600", "--aht", "0", "--agents", "33"], "--aht"),
        (["erlang", "--rate", "600", "--aht", "nan", "--agents", "33"], "--aht"),
        (["erlang", "--rate", "600", "--aht", "180", "--agents", "0"], "--agents"),
        (["erlang", "--rate", "600", "--aht", "180", "--agents", "-3"], "--agents"),
        ([*BASE_ARGS, "--patience", "-1"], "--patience"),
        ([*BASE_ARGS, "--target", "-5"], "--target"),
        ([*BASE_ARGS, "--sl-goal", "1.2"], "--sl-goal"),
        (["erlang", "--rate", "600", "--aht", "180", "--agents", "30"], "--agents"),  # unstable
        (["erlang", "--rate", "600", "--aht", "180", "--agents", "12"], "--agents"),  # unstable
    ],
)
def test_cli_bad_input_exits_2_naming_the_option(
    argv: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert option in captured.err


def test_cli_unparsable_input_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["erlang", "--rate", "600", "--aht", "180", "--agents", "many"])
    assert exc.value.code == 2
    assert "--agents" in capsys.readouterr().err


def test_cli_unstable_c_is_fine_with_patience(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["erlang", "--rate", "600", "--aht", "180", "--agents", "30", "--patience", "120"]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "erlang_a"
    assert out["abandon_rate"] == erlang_a(RATE, AHT, 30, PATIENCE, TARGET).abandon_rate
