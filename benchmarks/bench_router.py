"""Router decisions per second, and how the cost of one decision grows with the queue.

**A routing decision** is one of the two moments where the router matches a call and
an agent, timed from the request to the returned actions holding the ``OfferCall``:

* *an agent frees up*: ``AgentGoesReady`` for an agent who was Not Ready; the router
  looks at the best waiting call of every ring the agent is eligible for in every queue
  it serves, ranks them (rank + the agent's priority for the queue, then arrival) and
  offers the best one;
* *a call arrives*: ``CallArrives``, a new call while Ready agents may take it; the
  router chooses one by the queue's strategy and offers the call.

The headline figure, per decision, is the mean of the two (one of each per round).
Also timed, and shown apart: ``AgentFinishesWrapUp`` that ends in an offer (an agent frees
up by finishing wrap-up; it also writes the finished call's detail record), and
``CallArrives`` of a call that must wait (no agent free: the call is queued). Nothing else
is timed: accepting, hanging up, going Not Ready, time passing (``TimePasses``, which moves
calls to their next ring), and the set-up.

**Set-up** (seeded): 20 skills; 40 queues, each requiring 1-3 skills at levels 1-5 with
1-2 relaxation rings (later rings drop skills or lower levels), queue priorities,
value weights and aging rates that differ, all seven strategies, and exits (max wait,
no agents) that do not fire; 2,000 agents with 3-6 skills each (levels 1-5), serving 2-4
queues each with a per-agent priority of 0-60 for each; callers of value 0-100. Agents
are qualified for their first queue (they meet its first ring) and may only reach later
rings of the others. 32 queues are *backlogged*: their 1,600 agents are all busy and the
N waiting calls are spread over them, arrived over the last 600 virtual seconds (so they
sit in every ring). 8 queues are *open*: their 400 agents are Ready and take arriving
calls at once. Each round: a busy agent is made Not Ready after its call and then Ready
(decision), a new call joins a backlogged queue (it waits), another busy agent finishes
wrap-up (decision, with the record), another call joins a backlogged queue, and a call
arrives at an open queue (decision). So N stays constant.

**Baseline in the same run**: a naive router (in this file) with the same set-up and the
same rounds: a list of waiting calls, scanned for the ones the agent may take (its
queues, the ring each call has reached) and sorted by rank at every decision; the Ready
agents scanned and sorted by the strategy's key when a call arrives. By default it runs
at 1,000 and 10,000 waiting only, to keep the run short: at 100,000 each of its
decisions scans 100,000 calls, tens of milliseconds (``--naive-sizes`` adds it). Both
routers play the same rounds, and the run counts the decisions where they chose the
same call or agent (all of them, so both measure the same decisions).

**Probes** (not decisions, shown after the table): the per-second status publication
(``snapshot`` and ``estimated_waits`` of every queue, as ``EngineService.publish_status``
does) at each size, and ``enqueue`` into a queue with a ``no_agents`` exit whose members
are mostly Not Ready, at 200, 2,000 and 20,000 members. The estimated waits a
publication sends (the first ``MAX_QUEUE_CALLS_SENT`` of every queue, from the order the
router keeps between publications) are timed after 100 rounds played since the last
one, beside the baseline in the same run: every waiting call's estimate recomputed (what
a publication did before); the interpreted JSON line carries both per size
(``estimated_waits_ms``).

    .venv/bin/python benchmarks/bench_router.py [--sizes 1000,10000,100000]
        [--rounds 20000] [--naive-sizes 1000,10000] [--naive-work N] [--agents 2000]
        [--build both|interpreted]

**Timing.** All routers are filled first; ``--warmup`` rounds are then played untimed
(the fill makes no decisions, so calls that moved outwards during it left stale heap
entries that the first decisions clear; in steady state a decision clears about one).
Then the sizes take turns, one slice of their rounds each, ``--slices`` times, so that
other work on the machine hits every size alike. A figure is the median of the slices'
means. The garbage collector is off while timing. Prints a table.

**Compiled, in the same run** (``--build both``, the default): the same set-up, seed and
rounds then run in a child process on the router built by mypyc as ``cti serve
--compiled`` runs it (:data:`cti.compiled_build.ENGINE`, built on first use, about a
minute; without gcc or mypy the line says why it did not run). The two builds' costs per
decision are printed side by side with the naive router's, the run checks that both
builds chose the same calls and agents, and it ends with one JSON line each:
``interpreted``, ``compiled``, ``naive``. ``--build interpreted`` skips the child.
This is a measurement, not a test: nothing here asserts a time. About 50 s at the
defaults on the reference machine (2 cores, shared with other work at the time).

**Instructions, not time** (``--callgrind ROUNDS``): the router alone under callgrind,
which other work on the machine does not change. This process fills a router at the
first of ``--sizes``, plays ``--warmup`` rounds and records the inputs of ``ROUNDS``
more; then, for each build (``--build both``: interpreted and compiled), a child under
``valgrind --tool=callgrind`` fills its own router the same way and replays those inputs
between two marks (``os.getppid``, where callgrind dumps its counts). Prints the
instructions per round (16 inputs; 3 decisions among them) and per input of each build,
and whether both gave the same actions. About 2 minutes a build at 10,000 waiting.
``--callgrind-keep DIR`` keeps each build's dump of the replay there
(``callgrind.interpreted``, ``callgrind.compiled``: ``callgrind_annotate --inclusive=yes``
gives each input's handler, e.g. ``AgentDesk._go_ready``, compiled).

    .venv/bin/python benchmarks/bench_router.py --callgrind 200 --sizes 10000
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib
import itertools
import json
import os
import pickle
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cti import compiled_build
from cti.models import (
    AgentConfig,
    CallerInfo,
    CallerKind,
    Customer,
    ExitAction,
    MaxWaitExit,
    NoAgentsExit,
    QueueConfig,
    QueueExits,
    RelaxStep,
    Strategy,
)
from cti.protocol import MAX_QUEUE_CALLS_SENT
from queue_engine import inputs as ri
from queue_engine.actions import Action, ExitCall, OfferCall
from queue_engine.priority import fixed_key
from queue_engine.router import Router

SKILLS = (
    "mandarin",
    "cantonese",
    "english",
    "japanese",
    "korean",
    "billing",
    "sales",
    "retention",
    "tech_l1",
    "tech_l2",
    "mortgage",
    "cards",
    "loans",
    "insurance",
    "fraud",
    "vip",
    "complaints",
    "shipping",
    "returns",
    "enterprise",
)
#: Virtual times are multiples of this, and every rank term a binary fraction, so that
#: both routers compute exactly the same ranks and can be compared decision by decision.
GRID = 1.0 / 1024
WINDOW_S = 600.0
"""The waiting calls arrived over this many virtual seconds before the measurement."""
OPEN_STRATEGIES = (
    Strategy.LONGEST_IDLE,
    Strategy.FEWEST_CALLS,
    Strategy.LEAST_TALK_TIME,
    Strategy.BEST_PROFICIENCY,
    Strategy.ROUND_ROBIN,
)
"""Strategies of the open queues: those the naive router reproduces (not random, ring-all)."""


# --- the set-up ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    queues: tuple[QueueConfig, ...]
    agents: tuple[AgentConfig, ...]
    backlog_queues: tuple[str, ...]
    backlog_weights: tuple[float, ...]
    open_queues: tuple[str, ...]
    backlog_agents: tuple[str, ...]
    open_agents: tuple[str, ...]
    primary: dict[str, str]
    callers: tuple[CallerInfo, ...]

    def describe(self) -> str:
        n_skills = [len(q.skills) for q in self.queues]
        n_rings = [len(q.relax) for q in self.queues]
        a_skills = [len(a.skills) for a in self.agents]
        a_queues = [len(a.queues) for a in self.agents]
        return (
            f"{len(self.queues)} queues ({len(self.backlog_queues)} backlogged,"
            f" {len(self.open_queues)} open) needing {min(n_skills)}-{max(n_skills)} of"
            f" {len(SKILLS)} skills with {min(n_rings)}-{max(n_rings)} relaxation rings;"
            f" {len(self.agents):,} agents ({len(self.backlog_agents):,} busy,"
            f" {len(self.open_agents):,} Ready) with {min(a_skills)}-{max(a_skills)} skills"
            f" and {min(a_queues)}-{max(a_queues)} queues each"
        )


def _queue(rng: random.Random, name: str, strategies: Sequence[Strategy]) -> QueueConfig:
    skills = {s: rng.randint(1, 5) for s in rng.sample(SKILLS, rng.randint(1, 3))}
    first = dict(skills)
    if len(first) > 1:
        del first[rng.choice(sorted(first))]
    first = {s: max(1, level - rng.randint(0, 2)) for s, level in first.items()}
    after = float(rng.choice((20, 30, 45, 60)))
    relax = [RelaxStep(after_s=after, skills=first)]
    if rng.random() < 0.5:
        last = {} if rng.random() < 0.5 else {rng.choice(sorted(first)): 1}
        relax.append(RelaxStep(after_s=after + rng.choice((30, 60, 90, 120)), skills=last))
    exits = QueueExits()
    if rng.random() < 0.5:
        exits = QueueExits(max_wait=MaxWaitExit(after_s=7200.0, action=ExitAction.VOICEMAIL))
    else:
        exits = QueueExits(
            no_agents=NoAgentsExit(
                when="none_logged_in", action=ExitAction.MESSAGE, message="We are closed"
            )
        )
    return QueueConfig(
        name=name,
        priority=float(rng.choice((0, 0, 0, 10, 20, 50))),
        value_weight=rng.choice((0.5, 1.0, 1.5, 2.0)),
        aging_rate=rng.choice((0.5, 1.0, 1.0, 2.0)),
        strategy=rng.choice(strategies),
        skills=skills,
        relax=tuple(relax),
        exits=exits,
    )


def _agent(
    rng: random.Random, agent_id: str, primary: QueueConfig, others: Sequence[str]
) -> AgentConfig:
    skills = {s: rng.randint(level, 5) for s, level in primary.skills.items()}
    wanted = rng.randint(3, 6)
    for s in rng.sample(SKILLS, len(SKILLS)):
        if len(skills) >= wanted:
            break
        skills.setdefault(s, rng.randint(1, 5))
    names = [primary.name, *rng.sample(others, rng.randint(1, 3))]
    return AgentConfig(
        id=agent_id, skills=skills, queues={q: float(rng.randint(0, 60)) for q in names}
    )


def scenario(seed: int, agents: int, queues: int, callers: int = 10_000) -> Scenario:
    rng = random.Random(seed)
    n_open = max(1, queues // 5)
    backlog = [_queue(rng, f"busy-{i:02d}", list(Strategy)) for i in range(queues - n_open)]
    open_ = [_queue(rng, f"open-{i}", OPEN_STRATEGIES) for i in range(n_open)]
    n_busy = agents * 4 // 5
    configs = []
    for i in range(agents):
        group = backlog if i < n_busy else open_
        primary = group[i % len(group)]
        others = [q.name for q in group if q.name != primary.name]
        configs.append(_agent(rng, f"a{i:05d}", primary, others))
    weights = dict.fromkeys((q.name for q in backlog), 0.0)
    for a in configs[:n_busy]:
        for name in a.queues:
            weights[name] += 1 / len(a.queues)
    people = tuple(
        CallerInfo(
            ani=f"+86138{i:08d}",
            kind=CallerKind.KNOWN,
            customer=Customer(id=i, name=f"c{i}", value=float(rng.randint(0, 100))),
        )
        for i in range(callers)
    )
    return Scenario(
        queues=(*backlog, *open_),
        agents=tuple(configs),
        backlog_queues=tuple(weights),
        backlog_weights=tuple(weights.values()),
        open_queues=tuple(q.name for q in open_),
        backlog_agents=tuple(a.id for a in configs[:n_busy]),
        open_agents=tuple(a.id for a in configs[n_busy:]),
        primary={a.id: next(iter(a.queues)) for a in configs},
        callers=people,
    )


# --- the two routers, behind one interface ------------------------------------------------

Offers = list[tuple[str, str]]
"""(agent, call) for every offer a request made."""


class Subject(Protocol):
    exits: int

    def login(self, agent: str, now: float) -> None: ...
    def ready(self, agent: str, now: float) -> tuple[float, Offers]: ...
    def wrap_done(self, agent: str, call: str, now: float) -> tuple[float, Offers]: ...
    def arrive(
        self, call: str, queue: str, caller: CallerInfo, now: float
    ) -> tuple[float, Offers]: ...
    def accept(self, agent: str, call: str, now: float) -> None: ...
    def hang_up(self, agent: str, call: str, now: float) -> None: ...
    def not_ready(self, agent: str, now: float) -> None: ...
    def not_ready_after_call(self, agent: str, call: str, now: float) -> None: ...
    def tick(self, now: float) -> Offers: ...


class RouterSubject:
    """The real router (``queue_engine.router.Router``)."""

    def __init__(self, scn: Scenario) -> None:
        self.router = Router(scn.queues, agents=scn.agents)
        self.exits = 0

    def _offers(self, actions: list[Action]) -> Offers:
        out = []
        for a in actions:
            if type(a) is OfferCall:
                out.append((a.agent_id, a.call_id))
            elif type(a) is ExitCall:
                self.exits += 1
        return out

    def login(self, agent: str, now: float) -> None:
        self.router.handle(ri.AgentLogsIn(agent_id=agent), now)

    def ready(self, agent: str, now: float) -> tuple[float, Offers]:
        event = ri.AgentGoesReady(agent_id=agent)  # built untimed, as the engine does
        t0 = time.perf_counter()
        actions = self.router.handle(event, now)
        t1 = time.perf_counter()
        return t1 - t0, self._offers(actions)

    def wrap_done(self, agent: str, call: str, now: float) -> tuple[float, Offers]:
        event = ri.AgentFinishesWrapUp(agent_id=agent, call_id=call, disposition="resolved")
        t0 = time.perf_counter()
        actions = self.router.handle(event, now)
        t1 = time.perf_counter()
        return t1 - t0, self._offers(actions)

    def arrive(self, call: str, queue: str, caller: CallerInfo, now: float) -> tuple[float, Offers]:
        event = ri.CallArrives(call_id=call, queue=queue, caller=caller)
        t0 = time.perf_counter()
        actions = self.router.handle(event, now)
        t1 = time.perf_counter()
        return t1 - t0, self._offers(actions)

    def accept(self, agent: str, call: str, now: float) -> None:
        self.router.handle(ri.AgentAccepts(agent_id=agent, call_id=call), now)

    def hang_up(self, agent: str, call: str, now: float) -> None:
        self.router.handle(ri.AgentHangsUp(agent_id=agent, call_id=call), now)

    def not_ready(self, agent: str, now: float) -> None:
        self.router.handle(ri.AgentGoesNotReady(agent_id=agent, reason="bench"), now)

    def not_ready_after_call(self, agent: str, call: str, now: float) -> None:
        self.router.handle(ri.AgentGoesNotReady(agent_id=agent, reason="bench"), now)
        self._offers(
            self.router.handle(
                ri.AgentFinishesWrapUp(agent_id=agent, call_id=call, disposition="resolved"), now
            )
        )

    def tick(self, now: float) -> Offers:
        return self._offers(self.router.handle(ri.TimePasses(), now))


@dataclass(slots=True)
class _NaiveCall:
    call_id: str
    queue: str
    key: float
    arrived_at: float
    seq: int


class NaiveRouter:
    """The baseline: a list of waiting calls, scanned and sorted at every decision.

    Same ranking as the router (``rank + agent's queue priority``, then arrival), same
    eligibility (the agent meets the skills of the ring the call has reached), same
    agent choice for the strategies of the open queues; no heaps, no pools, no timers.
    """

    def __init__(self, scn: Scenario) -> None:
        self.queues = {q.name: q for q in scn.queues}
        self.rings = {q.name: q.rings for q in scn.queues}
        self.agents = {a.id: a for a in scn.agents}
        self.waiting: list[_NaiveCall] = []
        self.ready_since: dict[str, float] = {}
        self.handled = dict.fromkeys(self.agents, 0)
        self.talk = dict.fromkeys(self.agents, 0.0)
        self.answered_at: dict[str, float] = {}
        self.order: dict[str, dict[str, int]] = {q: {} for q in self.queues}
        for a in scn.agents:
            for name in a.queues:
                self.order[name].setdefault(a.id, len(self.order[name]))
        self.rr_last = dict.fromkeys(self.queues, -1)
        self.seq = itertools.count()
        self.exits = 0

    @staticmethod
    def _meets(agent: AgentConfig, required: dict[str, int]) -> bool:
        return all(agent.skills.get(s, 0) >= level for s, level in required.items())

    def _choose_call(self, agent_id: str, now: float) -> tuple[float, Offers]:
        t0 = time.perf_counter()
        agent = self.agents[agent_id]
        eligible = []
        for c in self.waiting:
            bonus = agent.queues.get(c.queue)
            if bonus is None:
                continue
            q = self.queues[c.queue]
            waited = now - c.arrived_at
            required = {}
            for after, skills in self.rings[c.queue]:
                if waited >= after:
                    required = skills
            if not self._meets(agent, required):
                continue
            eligible.append(((-(c.key + q.aging_rate * now + bonus), c.arrived_at, c.seq), c))
        eligible.sort(key=lambda e: e[0])
        offers: Offers = []
        if eligible:
            best = eligible[0][1]
            self.waiting.remove(best)
            offers.append((agent_id, best.call_id))
        else:
            self.ready_since[agent_id] = now
        return time.perf_counter() - t0, offers

    def _agent_key(self, q: QueueConfig, agent_id: str) -> tuple[Any, ...]:
        agent, since = self.agents[agent_id], self.ready_since[agent_id]
        s = q.strategy
        if s is Strategy.FEWEST_CALLS:
            return (self.handled[agent_id], since, agent_id)
        if s is Strategy.LEAST_TALK_TIME:
            return (self.talk[agent_id], since, agent_id)
        if s is Strategy.BEST_PROFICIENCY:
            score = sum(agent.skills.get(x, 0) for x in q.skills) / max(1, len(q.skills))
            return (-score, since, agent_id)
        if s is Strategy.ROUND_ROBIN:
            order = self.order[q.name]
            return ((order[agent_id] - self.rr_last[q.name] - 1) % max(1, len(order)),)
        return (since, agent_id)

    def login(self, agent: str, now: float) -> None:
        pass

    def ready(self, agent: str, now: float) -> tuple[float, Offers]:
        return self._choose_call(agent, now)

    def wrap_done(self, agent: str, call: str, now: float) -> tuple[float, Offers]:
        return self._choose_call(agent, now)

    def arrive(self, call: str, queue: str, caller: CallerInfo, now: float) -> tuple[float, Offers]:
        t0 = time.perf_counter()
        q = self.queues[queue]
        new = _NaiveCall(call, queue, fixed_key(q, caller.value, now), now, next(self.seq))
        required = self.rings[queue][0][1]  # a new call is in its first ring
        candidates = [
            (self._agent_key(q, a), a)
            for a in self.ready_since
            if queue in self.agents[a].queues and self._meets(self.agents[a], required)
        ]
        candidates.sort()
        offers: Offers = []
        if candidates:
            chosen = candidates[0][1]
            del self.ready_since[chosen]
            if q.strategy is Strategy.ROUND_ROBIN:
                self.rr_last[queue] = self.order[queue][chosen]
            offers.append((chosen, call))
        else:
            self.waiting.append(new)
        return time.perf_counter() - t0, offers

    def accept(self, agent: str, call: str, now: float) -> None:
        self.answered_at[agent] = now

    def hang_up(self, agent: str, call: str, now: float) -> None:
        self.handled[agent] += 1
        self.talk[agent] += now - self.answered_at.pop(agent)

    def not_ready(self, agent: str, now: float) -> None:
        self.ready_since.pop(agent, None)

    def not_ready_after_call(self, agent: str, call: str, now: float) -> None:
        pass

    def tick(self, now: float) -> Offers:
        return []  # rings are worked out at each decision; no Ready agent waits for them


# --- the rounds ---------------------------------------------------------------------------


def _tick_for(waiting: int) -> float:
    return max(1, round(WINDOW_S / waiting / GRID)) * GRID


class Bench:
    """One router (real or naive) filled to ``waiting`` calls, played round by round."""

    def __init__(self, subject: Subject, scn: Scenario, waiting: int, seed: int) -> None:
        self.subject, self.scn, self.waiting = subject, scn, waiting
        self.name = "Router" if isinstance(subject, RouterSubject) else "naive"
        self.rng = random.Random(seed)
        self.ids = itertools.count()
        self.now = 0.0
        self.tick = _tick_for(waiting)
        self.talking: list[tuple[str, str]] = []
        self.parked: list[str] = []
        self.backlog_agents = set(scn.backlog_agents)
        self.rounds = 0
        self.ready: list[list[float]] = []
        """Per slice, seconds per decision: an agent goes Ready and is offered a call."""
        self.arrive_offer: list[list[float]] = []
        """Per slice, seconds per decision: a call arrives and is offered to an agent."""
        self.wrap: list[list[float]] = []
        """Per slice, seconds: an agent finishes wrap-up (record) and is offered a call."""
        self.arrive_wait: list[list[float]] = []
        """Per slice, seconds: a call arrives and waits (nobody may take it)."""
        self.choices: list[tuple[str, str]] = []
        self.found_nothing = 0
        """Agents who freed up with no call they may take (parked Not Ready, retried)."""
        self.stray_offers = 0
        """Offers made by time passing or on a backlogged arrival (none expected)."""
        self.open_waits = 0
        """Calls that found no Ready agent in an open queue (none expected)."""
        self.fill_s = 0.0

    def _new_call(self) -> tuple[str, CallerInfo]:
        n = next(self.ids)
        return f"c{n}", self.scn.callers[n % len(self.scn.callers)]

    def _take(self, offers: Offers) -> None:
        """Accept every offer; open-queue agents finish at once and are Ready again."""
        for agent, call in offers:
            self.subject.accept(agent, call, self.now)
            if agent in self.backlog_agents:
                self.talking.append((agent, call))
            else:
                self.subject.hang_up(agent, call, self.now)
                self._take(self.subject.wrap_done(agent, call, self.now)[1])

    def _pop_talking(self) -> tuple[str, str]:
        talking = self.talking
        i = self.rng.randrange(len(talking))
        talking[i], talking[-1] = talking[-1], talking[i]
        return talking.pop()

    def fill(self) -> None:
        t0 = time.perf_counter()
        scn, subject = self.scn, self.subject
        for config in scn.agents:
            subject.login(config.id, self.now)
        # Every busy agent goes Ready and takes one call of its first queue.
        for a in scn.backlog_agents:
            self.now += GRID
            subject.ready(a, self.now)
            call, caller = self._new_call()
            _, offers = subject.arrive(call, scn.primary[a], caller, self.now)
            assert offers == [(a, call)], (a, offers)
            self._take(offers)
        for a in scn.open_agents:
            self.now += GRID
            subject.ready(a, self.now)
        # The waiting calls arrive over the window; nobody may take them.
        queues = self.rng.choices(scn.backlog_queues, scn.backlog_weights, k=self.waiting)
        for i, queue in enumerate(queues):
            self.now += self.tick
            call, caller = self._new_call()
            subject.arrive(call, queue, caller, self.now)
            if i % 256 == 255:
                self._take(subject.tick(self.now))
        self._take(subject.tick(self.now))
        self.fill_s = time.perf_counter() - t0

    def _step(self) -> None:
        self.now += self.tick
        offers = self.subject.tick(self.now)
        self.stray_offers += len(offers)
        self._take(offers)

    def _freed(self, agent: str, dt: float, offers: Offers, into: list[float]) -> None:
        self.choices.append(("agent", offers[0][1] if offers else ""))
        if any(a == agent for a, _ in offers):
            into.append(dt)
        else:
            self.found_nothing += 1
            self.subject.not_ready(agent, self.now)
            self.parked.append(agent)
        self._take(offers)

    def _replenish(self, into: list[float]) -> None:
        call, caller = self._new_call()
        queue = self.rng.choices(self.scn.backlog_queues, self.scn.backlog_weights)[0]
        dt, offers = self.subject.arrive(call, queue, caller, self.now)
        if offers:
            self.stray_offers += len(offers)
        else:
            into.append(dt)
        self._take(offers)

    def play(self, rounds: int, *, keep: bool = True) -> None:
        """``rounds`` timed rounds, as one slice of the samples (``keep``: or a warm-up)."""
        subject = self.subject
        ready: list[float] = []
        wrap: list[float] = []
        offer: list[float] = []
        wait: list[float] = []
        for _ in range(rounds):
            if self.parked:  # an agent who found nothing tries again (not timed)
                agent = self.parked.pop(0)
                _, offers = subject.ready(agent, self.now)
                if any(a == agent for a, _ in offers):
                    self._take(offers)
                else:
                    subject.not_ready(agent, self.now)
                    self.parked.append(agent)

            self._step()
            agent, call = self._pop_talking()
            subject.hang_up(agent, call, self.now)
            subject.not_ready_after_call(agent, call, self.now)
            dt, offers = subject.ready(agent, self.now)
            self._freed(agent, dt, offers, ready)
            self._replenish(wait)

            self._step()
            agent, call = self._pop_talking()
            subject.hang_up(agent, call, self.now)
            dt, offers = subject.wrap_done(agent, call, self.now)
            self._freed(agent, dt, offers, wrap)
            self._replenish(wait)

            call, caller = self._new_call()
            queue = self.rng.choice(self.scn.open_queues)
            dt, offers = subject.arrive(call, queue, caller, self.now)
            self.choices.append(("call", offers[0][0] if offers else ""))
            if offers:
                offer.append(dt)
            else:
                self.open_waits += 1  # not expected: an open queue has Ready agents
            self._take(offers)
        if not keep:
            return
        self.rounds += rounds
        self.ready.append(ready)
        self.wrap.append(wrap)
        self.arrive_offer.append(offer)
        self.arrive_wait.append(wait)


def robust_us(slices: Sequence[Sequence[float]]) -> float:
    """Median over the slices of each slice's mean, in microseconds."""
    means = [statistics.fmean(s) for s in slices if s]
    return statistics.median(means) * 1e6 if means else float("nan")


def per_decision_us(bench: Bench) -> float:
    return (robust_us(bench.ready) + robust_us(bench.arrive_offer)) / 2


# --- probes of paths that scan ------------------------------------------------------------


@dataclass
class StatusProbe:
    snapshots_ms: float
    """``snapshot`` of every queue."""
    waits_ms: float
    """``estimated_waits`` of every queue, every waiting call: the full recomputation
    (the baseline: what each status publication did before issue 23)."""
    published_ms: float
    """``estimated_waits(q, now, MAX_QUEUE_CALLS_SENT)`` of every queue, what a status
    publication reads now, after ``between`` rounds played since the last one (the best
    of 15, as the baseline is the best of its runs: the least disturbed by other work)."""
    first_ms: float
    """The same, the first time (every queue's heaps walked: nothing kept yet)."""
    empty_queue_ms: float
    """``estimated_waits`` of one queue with no call waiting."""
    between: int


def _best_ms(repeat: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        best = min(best, _once_ms(work))
    return best


def _once_ms(work: Callable[[], object]) -> float:
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        work()
        return (time.perf_counter() - t0) * 1e3
    finally:
        gc.enable()


def probe_status(
    bench: Bench, empty_queue: str, repeat: int = 3, between: int = 100
) -> StatusProbe:
    """The router's share of one status publication (``EngineService.publish_status``):
    the full recomputation of every estimate (the baseline) and the first
    ``MAX_QUEUE_CALLS_SENT`` a publication sends, read from the order the router keeps
    between publications, with ``between`` rounds (5 inputs, 3 decisions each: more
    than a busy centre's second) played untimed before each."""
    assert isinstance(bench.subject, RouterSubject)
    router, names = bench.subject.router, bench.subject.router.queue_names
    now = bench.now

    def publication() -> object:
        return [router.estimated_waits(q, bench.now, MAX_QUEUE_CALLS_SENT) for q in names]

    full = _best_ms(repeat, lambda: [router.estimated_waits(q, now) for q in names])
    first = _once_ms(publication)
    published = []
    for _ in range(5 * repeat):
        bench.play(between, keep=False)
        published.append(_once_ms(publication))
    now = bench.now
    return StatusProbe(
        _best_ms(repeat, lambda: [router.snapshot(q, now) for q in names]),
        full,
        min(published),
        first,
        _best_ms(repeat, lambda: router.estimated_waits(empty_queue, now)),
        between,
    )


def probe_no_agents_exit(members: int, calls: int = 200) -> float:
    """µs per ``enqueue`` into a queue with a ``no_agents`` exit; all but its last
    member are Not Ready and the last is on a call, so the call waits."""
    q = QueueConfig(
        name="night",
        exits=QueueExits(no_agents=NoAgentsExit(action=ExitAction.VOICEMAIL)),
    )
    router = Router(
        [q], agents=[AgentConfig(id=f"n{i}", queues={"night": 0}) for i in range(members)]
    )
    for i in range(members):
        router.handle(ri.AgentLogsIn(agent_id=f"n{i}"), 0.0)
    last = f"n{members - 1}"
    router.handle(ri.AgentGoesReady(agent_id=last), 0.0)
    router.handle(ri.CallArrives(call_id="busy", queue="night", caller=CallerInfo(ani="1")), 0.0)
    router.handle(ri.AgentAccepts(agent_id=last, call_id="busy"), 0.0)
    caller = CallerInfo(ani="2")
    arrivals = [ri.CallArrives(call_id=f"w{i}", queue="night", caller=caller) for i in range(calls)]
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        for event in arrivals:
            router.handle(event, 1.0)
        dt = time.perf_counter() - t0
    finally:
        gc.enable()
    return dt / calls * 1e6


# --- instructions under callgrind -----------------------------------------------------------

Recorded = list[tuple[ri.AnyInput, float]]


def _filled(args: argparse.Namespace, size: int) -> Bench:
    """A router filled to ``size`` waiting calls and warmed up, as a timed run's."""
    scn = scenario(args.seed, args.agents, args.queues)
    bench = Bench(RouterSubject(scn), scn, size, args.seed + size)
    bench.fill()
    gc.collect()
    gc.disable()
    bench.play(args.warmup, keep=False)
    return bench


def record_rounds(args: argparse.Namespace, size: int, rounds: int) -> Recorded:
    """The router's inputs, with their times, of ``rounds`` rounds after the warm-up."""
    bench = _filled(args, size)
    assert isinstance(bench.subject, RouterSubject)
    router, log = bench.subject.router, []
    handle = router.handle

    def recording(event: ri.AnyInput, now: float) -> list[Action]:
        log.append((event, now))
        return handle(event, now)

    router.handle = recording  # type: ignore[method-assign]
    bench.play(rounds, keep=False)
    return log


def replay_marked(args: argparse.Namespace, size: int, path: str) -> None:
    """The child under callgrind: fill, warm up, then replay the recorded inputs between
    two ``os.getppid()`` marks; prints the actions' digest."""
    bench = _filled(args, size)
    assert isinstance(bench.subject, RouterSubject)
    handle = bench.subject.router.handle
    recorded: Recorded = pickle.loads(Path(path).read_bytes())
    os.getppid()  # callgrind dumps here (--dump-before=getppid): the set-up ends
    outs = [handle(event, now) for event, now in recorded]
    os.getppid()  # and here: what lies between is the replay alone
    names = compiled_build.Build("router", compiled_build.ROUTER_MODULES, ()).module_names()
    compiled = compiled_build.is_compiled(*(importlib.import_module(n) for n in names))
    print(hashlib.sha256(repr(outs).encode()).hexdigest()[:16], compiled)


def _callgrind_child(
    args: argparse.Namespace, build: str, env: dict[str, str], path: str, folder: str
) -> tuple[int, str]:
    """Instructions of the replay in a child under callgrind, and its actions' digest."""
    out = f"{folder}/cg.%p"
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--dump-before=getppid",
         f"--callgrind-out-file={out}", sys.executable, "-P", __file__,
         *_worker_argv(args), "--sizes", args.sizes, "--replay", path],
        env=env | {"PYTHONHASHSEED": "0"}, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"the callgrind child failed: {done.stderr.strip()[-2000:]}")
    parts = sorted(Path(folder).glob("cg.*.2"))
    if len(parts) != 1:
        raise RuntimeError(f"expected one dump of the replay in {folder}, found {parts}")
    summary = next(x for x in parts[0].read_text().splitlines() if x.startswith("summary:"))
    if args.callgrind_keep:  # the replay's dump, for callgrind_annotate
        shutil.copy(parts[0], Path(args.callgrind_keep) / f"callgrind.{build}")
    for f in Path(folder).glob("cg.*"):
        f.unlink()
    digest, compiled = done.stdout.strip().splitlines()[-1].split()
    if (compiled == "True") != (build == "compiled"):
        raise RuntimeError(f"the callgrind child ran the wrong build (compiled: {compiled})")
    return int(summary.split()[1]), digest


def callgrind(args: argparse.Namespace, rounds: int) -> None:
    """Print the router's instructions per round on each build (see the docstring)."""
    size = _ints(args.sizes)[0]
    recorded = record_rounds(args, size, rounds)
    builds: dict[str, dict[str, str]] = {"interpreted": dict(os.environ)}
    if args.build == "both":
        try:
            tree = compiled_build.compiled_tree(compiled_build.ENGINE)
            builds["compiled"] = compiled_build.compiled_env(tree)
        except compiled_build.CompileError as exc:
            print(f"compiled: not run: {exc}")
    with tempfile.TemporaryDirectory(prefix="bench-router-cg-") as folder:
        path = f"{folder}/inputs.pickle"
        Path(path).write_bytes(pickle.dumps(recorded))
        digests = {}
        for build, env in builds.items():
            total, digests[build] = _callgrind_child(args, build, env, path, folder)
            print(
                f"{build}: {total / rounds:,.0f} instructions a round"
                f" ({total / len(recorded):,.0f} an input; {len(recorded) / rounds:.0f} inputs"
                f" a round, {rounds} rounds at {size:,} waiting, the router alone)"
            )
            print(json.dumps({"build": build, "callgrind_per_round": round(total / rounds)}))
    if len(digests) > 1:
        print(f"same actions on both builds: {len(set(digests.values())) == 1}")


# --- report -------------------------------------------------------------------------------


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _fmt(x: float | None, width: int, spec: str = ",.1f") -> str:
    return f"{'-':>{width}}" if x is None else f"{x:>{width}{spec}}"


def _parse(argv: Iterable[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="waiting calls")
    parser.add_argument("--rounds", type=int, default=20_000, help="timed rounds per size")
    parser.add_argument(
        "--naive-sizes", default="1000,10000", help="sizes for the naive router (or empty)"
    )
    parser.add_argument(
        "--naive-work",
        type=int,
        default=5_000_000,
        help="naive rounds at size N: this / N (5,000 at 1k, 500 at 10k, 50 at 100k)",
    )
    parser.add_argument(
        "--warmup", type=int, default=500, help="untimed rounds first (clear the fill's debt)"
    )
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument("--queues", type=int, default=40)
    parser.add_argument("--slices", type=int, default=10, help="time slices (interleaved)")
    parser.add_argument("--seed", type=int, default=20_240_601)
    parser.add_argument("--no-probes", action="store_true", help="skip the probes")
    parser.add_argument(
        "--build",
        choices=("both", "interpreted", "worker"),
        default="both",
        help="both: the interpreted router, then the compiled one in a child (default)",
    )
    parser.add_argument(
        "--callgrind",
        type=int,
        metavar="ROUNDS",
        help="instructions per round of the router alone, under callgrind (valgrind)",
    )
    parser.add_argument(
        "--callgrind-keep", metavar="DIR", help="keep the replay's dumps there (callgrind.BUILD)"
    )
    parser.add_argument("--replay", help=argparse.SUPPRESS)  # the --callgrind child
    return parser.parse_args(None if argv is None else list(argv))


def _play(benches: list[Bench], args: argparse.Namespace, slices: int) -> None:
    """Fill every bench, then play them interleaved in ``slices`` (the collector off)."""
    for b in benches:
        b.fill()
    per_slice = {
        id(b): max(
            1, (args.rounds if b.name == "Router" else args.naive_work // b.waiting) // slices
        )
        for b in benches
    }
    gc.collect()
    gc.disable()
    try:
        for b in benches:
            b.play(args.warmup, keep=False)
        for _ in range(slices):
            for b in benches:
                b.play(per_slice[id(b)])
            gc.collect()
    finally:
        gc.enable()


def _table(
    routers: dict[int, Bench], naives: dict[int, Bench]
) -> tuple[dict[int, float], dict[int, float]]:
    """Print the table of decision costs; the Router's and the naive one's per size."""
    head = (
        f"{'waiting':>8} | {'DECISION':>8} {'agent':>8} {'call':>8} | {'wrap-up':>8}"
        f" {'call':>8} | {'naive':>10} {'naive /':>8} | {'fill':>5}\n"
        f"{'calls':>8} | {'µs':>8} {'Ready':>8} {'arrives':>8} | {'done':>8}"
        f" {'waits':>8} | {'decision':>10} {'router':>8} | {'s':>5}\n"
        f"{'':>8} | {'':>8} {'-> offer':>8} {'-> offer':>8} | {'-> offer':>8}"
        f" {'µs':>8} | {'µs':>10} {'':>8} | {'':>5}"
    )
    print(head)
    print("-" * len(head.splitlines()[0]))
    per = {n: per_decision_us(b) for n, b in routers.items()}
    naive_per = {n: per_decision_us(b) for n, b in naives.items()}
    for n in sorted(set(routers) | set(naives)):
        r = routers.get(n)
        d, nd = per.get(n), naive_per.get(n)
        ratio = nd / d if nd is not None and d is not None else None
        ready, offer, wrap, wait, fill = (
            (None,) * 5
            if r is None
            else (
                robust_us(r.ready),
                robust_us(r.arrive_offer),
                robust_us(r.wrap),
                robust_us(r.arrive_wait),
                r.fill_s,
            )
        )
        print(
            f"{n:>8,} | {_fmt(d, 8, ',.2f')} {_fmt(ready, 8)} {_fmt(offer, 8)} |"
            f" {_fmt(wrap, 8)} {_fmt(wait, 8)}"
            f" | {_fmt(nd, 10, ',.0f')} {_fmt(ratio, 7, ',.0f')}{'x' if ratio else ' '}"
            f" | {_fmt(fill, 5)}"
        )
    return per, naive_per


def _notes(routers: dict[int, Bench], naives: dict[int, Bench]) -> None:
    """Print where the naive router did not run, how often it chose as the Router did,
    and anything odd the Router's runs met."""
    skipped = [n for n in routers if n not in naives]
    if skipped:
        print(
            f"naive not run at {', '.join(f'{n:,}' for n in skipped)} waiting: each of its"
            " decisions scans and sorts every waiting call (--naive-sizes to run it)"
        )
    for n, nv in sorted(naives.items()):
        same = "-"
        if n in routers:
            k = len(nv.choices)
            mine = routers[n].choices[:k]
            same = f"{sum(x == y for x, y in zip(mine, nv.choices, strict=True)):,} of {k:,}"
        print(
            f"naive at {n:,}: {nv.rounds:,} rounds, {robust_us(nv.ready):,.0f} µs agent ->"
            f" offer, {robust_us(nv.arrive_offer):,.0f} µs call -> offer;"
            f" same choice as the Router in {same} decisions"
        )
    for n, b in sorted(routers.items()):
        assert isinstance(b.subject, RouterSubject)
        if b.found_nothing or b.stray_offers or b.open_waits or b.subject.exits:
            print(
                f"at {n:,}: {b.found_nothing} agents freed up with no call they may take"
                f" (parked, retried), {b.stray_offers} other offers, {b.open_waits} open-queue"
                f" calls waited, {b.subject.exits} exits"
            )


def _probes(routers: dict[int, Bench], scn: Scenario) -> dict[str, dict[str, float]]:
    """Measure and print the status-publication and ``no_agents`` exit probes; the
    estimated waits' figures per size (for the JSON line)."""
    status = {n: probe_status(b, scn.open_queues[0]) for n, b in routers.items()}
    print(f"\nprobe: router work of one status publication ({len(scn.queues)} queues)")
    for n, p in sorted(status.items()):
        print(
            f"  {n:>8,} waiting: snapshot of all {p.snapshots_ms:7.1f} ms,"
            f" estimated_waits of all {p.waits_ms:7.1f} ms,"
            f" of one empty queue {p.empty_queue_ms:6.2f} ms"
        )
    print(
        f"probe: estimated waits a status publication sends (the first {MAX_QUEUE_CALLS_SENT}"
        " of every queue), kept between publications, vs all of them recomputed"
    )
    for n, p in sorted(status.items()):
        print(
            f"  {n:>8,} waiting: {p.published_ms:6.2f} ms (best of 15, each"
            f" {p.between} rounds after the last)"
            f" ({p.first_ms:6.2f} ms the first time) | baseline, every estimate recomputed"
            f" {p.waits_ms:7.1f} ms ({p.waits_ms / max(p.published_ms, 1e-9):,.0f}x)"
        )
    night = {m: probe_no_agents_exit(m) for m in (200, 2000, 20_000)}
    print("probe: enqueue, no_agents exit, every member Not Ready but the last (on a call)")
    print("  " + ", ".join(f"{us:,.1f} µs at {m:,} members" for m, us in night.items()))
    return {
        str(n): {
            "published_ms": round(p.published_ms, 3),
            "first_ms": round(p.first_ms, 3),
            "full_recompute_ms": round(p.waits_ms, 2),
        }
        for n, p in sorted(status.items())
    }


def _choices_digest(bench: Bench) -> str:
    """The decisions' choices, hashed: equal on two builds when they chose alike."""
    return hashlib.sha256(repr(bench.choices).encode()).hexdigest()[:16]


def _result(
    build: str, per: dict[int, float], naive_per: dict[int, float], headline: int
) -> dict[str, Any]:
    growth = per[max(per)] / per[min(per)]
    return {
        "build": build,
        "decisions_per_s": round(1e6 / per[headline]),
        "per_decision_us": {str(n): round(us, 2) for n, us in sorted(per.items())},
        "naive_ratio": (
            round(naive_per[headline] / per[headline], 1) if headline in naive_per else None
        ),
        "growth_ratio": round(growth, 2),
        "at_waiting": headline,
    }


def _worker_argv(args: argparse.Namespace) -> list[str]:
    """This run's set-up and rounds, for the compiled router in a child process."""
    return [
        *("--sizes", args.sizes, "--rounds", str(args.rounds), "--warmup", str(args.warmup)),
        *("--agents", str(args.agents), "--queues", str(args.queues)),
        *("--slices", str(args.slices), "--seed", str(args.seed)),
        *("--naive-sizes", "", "--no-probes", "--build", "worker"),
    ]


def run_compiled(args: argparse.Namespace) -> dict[str, Any]:
    """The same rounds on the router built by mypyc as ``cti serve --compiled`` runs it
    (:data:`cti.compiled_build.ENGINE`), in a child with the build first on its path:
    the child's result (its JSON line), or ``{"error": why}`` when it cannot be built."""
    try:
        tree = compiled_build.compiled_tree(compiled_build.ENGINE)
    except compiled_build.CompileError as exc:
        return {"error": str(exc)}
    done = subprocess.run(
        [sys.executable, "-P", __file__, *_worker_argv(args)],
        env=compiled_build.compiled_env(tree),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return {"error": f"the compiled run failed: {done.stderr.strip()[-2000:]}"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _side_by_side(
    per: dict[int, float], naive_per: dict[int, float], compiled: dict[str, Any]
) -> None:
    """Print each size's decision cost on both builds and the naive router's."""
    on_c = {int(n): us for n, us in compiled.get("per_decision_us", {}).items()}
    print(
        f"\n{'waiting':>8} | {'interpreted':>11} {'compiled':>9} {'speed-up':>8}"
        f" | {'naive':>10}   (µs per decision)"
    )
    for n in sorted(per):
        c = on_c.get(n)
        print(
            f"{n:>8,} | {per[n]:>11,.2f} {_fmt(c, 9, ',.2f')}"
            f" {_fmt(per[n] / c if c else None, 7, ',.1f')}{'x' if c else ' '}"
            f" | {_fmt(naive_per.get(n), 10, ',.0f')}"
        )


def main(argv: Iterable[str] | None = None) -> None:
    args = _parse(argv)
    if args.replay:  # the child of --callgrind
        replay_marked(args, _ints(args.sizes)[0], args.replay)
    elif args.callgrind:
        callgrind(args, args.callgrind)
    else:
        measure(args)


def measure(args: argparse.Namespace) -> None:
    """The timed run (see the module docstring)."""
    sizes, naive_sizes = _ints(args.sizes), _ints(args.naive_sizes)
    headline = 10_000 if 10_000 in sizes else sizes[len(sizes) // 2]
    slices = max(1, args.slices)
    worker = args.build == "worker"
    if worker:  # the child of run_compiled: refuse to measure plain Python as compiled
        names = compiled_build.Build("router", compiled_build.ROUTER_MODULES, ()).module_names()
        if not compiled_build.is_compiled(*(importlib.import_module(n) for n in names)):
            sys.exit("bench_router worker: the router is not the compiled one")

    t_start = time.perf_counter()
    scn = scenario(args.seed, args.agents, args.queues)
    print(scn.describe())
    print(
        "decision = an agent goes Ready -> offer, and a call arrives -> offer (mean of the"
        f" two); {args.rounds:,} rounds per size (a round: 3 decisions, 2 queued arrivals),"
        f" sizes interleaved in {slices} slices, median of the slices' means\n"
    )
    routers = {n: Bench(RouterSubject(scn), scn, n, args.seed + n) for n in sizes}
    naives = {n: Bench(NaiveRouter(scn), scn, n, args.seed + n) for n in naive_sizes}
    _play([*routers.values(), *naives.values()], args, slices)
    per, naive_per = _table(routers, naives)
    _notes(routers, naives)
    choices = {str(n): _choices_digest(b) for n, b in routers.items()}
    if worker:
        print(json.dumps(_result("compiled", per, {}, headline) | {"choices": choices}))
        return

    lo, hi = min(per), max(per)
    print(
        f"\ngrowth of the cost per decision, {hi:,} / {lo:,} waiting: {per[hi] / per[lo]:.2f}x"
        f" (logarithmic stays small; linear would be about {hi / lo:,.0f}x)"
    )
    waits: dict[str, dict[str, float]] = {}
    if not args.no_probes:
        waits = _probes(routers, scn)
    compiled: dict[str, Any] = {}
    if args.build == "both":
        print("\nthe same rounds on the compiled router (cti serve --compiled's build) ...")
        compiled = run_compiled(args)
        _side_by_side(per, naive_per, compiled)
        if "error" in compiled:
            print(f"compiled: not run: {compiled['error']}")
        else:
            same = compiled.pop("choices") == choices
            print(f"compiled and interpreted chose the same calls and agents: {same}")
            compiled["same_choices"] = same
            compiled["naive_ratio"] = (
                round(naive_per[headline] / compiled["per_decision_us"][str(headline)], 1)
                if headline in naive_per
                else None
            )
            compiled["vs_interpreted"] = round(
                per[headline] / compiled["per_decision_us"][str(headline)], 2
            )
    print(f"total {time.perf_counter() - t_start:.0f} s\n")

    setup = {"agents": len(scn.agents), "skills": len(SKILLS), "queues": len(scn.queues)}
    interpreted = _result("interpreted", per, naive_per, headline) | setup
    if waits:
        interpreted["estimated_waits_ms"] = waits
    print(json.dumps(interpreted))
    if args.build == "both":
        print(json.dumps({"build": "compiled", **compiled, **setup}))
    if naive_per:
        naive = {str(n): round(us, 1) for n, us in sorted(naive_per.items())}
        print(json.dumps({"build": "naive", "per_decision_us": naive, **setup}))


if __name__ == "__main__":
    main()
