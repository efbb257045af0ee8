"""The tests' harness: the engine centre, virtual time, and waiting for a condition.

- :func:`virtual` runs a test body on :class:`cti.clock.VirtualTimeLoop`, where
  ``asyncio.sleep(60)`` returns at once with the loop's clock a minute later: the way to
  let the engine's timers run, never a wait for something to happen.
- :func:`engine_center` runs the engine (:func:`cti.engine.running.running_engine`) for
  the length of a ``with`` block, with the usual centre around it (a store at a path or
  the test's own directory, customers, one in-memory bus or the test's, a simulator
  trunk or the lines given, queues and agents); its end can be a crash.
  :func:`engine_service` builds one that is not started, for what it does before it runs.
- :func:`until` and :func:`settle` wait for a condition by letting the event loop (or a
  Textual app) run; :func:`until_async` takes an async check (a peer asked over a
  socket) and :func:`until_blocking` serves blocking code (a peer process started from a
  sync fixture). Their time limit is a safety net for a loaded machine, never a
  measurement: a test that reaches it has failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, cast

from textual.pilot import Pilot
from typing_extensions import TypeVar

from cti import topics
from cti.bus.memory import Bus, InMemoryBus
from cti.clock import run_virtual
from cti.config import Config, load_config
from cti.engine.directory import CallRecorder, CustomerDirectory
from cti.engine.running import running_engine
from cti.engine.service import EngineService
from cti.models import AgentConfig, Customer
from cti.protocol import AnyCommand
from cti.store.database import Store
from cti.store.journal import Journal
from telephony_adapters.base import TelephonyAdapter
from telephony_adapters.sim import SimTrunk

LIMIT_S = 30.0
"""How long :func:`until` and :func:`settle` let a condition take on a loaded machine."""


def virtual(body: Callable[[], Awaitable[None]]) -> None:
    """Run ``body()`` to its end on virtual time."""

    async def main() -> None:
        await body()

    run_virtual(main)


T = TypeVar("T")


def _safety_net(limit_s: float, what: str) -> Callable[[], None]:
    """A check that fails once ``limit_s`` has passed: the one deadline of every wait."""
    deadline = time.monotonic() + limit_s

    def check() -> None:
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {limit_s:g} s: {what}")

    return check


async def until(
    done: Callable[[], bool],
    limit_s: float = LIMIT_S,
    *,
    every_s: float = 0.0,
    what: str = "the expected state",
) -> None:
    """Let the event loop run (no app) until ``done()`` holds: a loop turn between checks,
    or ``every_s`` when the state is a peer process's, asked over a socket."""
    past = _safety_net(limit_s, what)
    while not done():
        past()
        await asyncio.sleep(every_s)


async def until_async(
    check: Callable[[], Awaitable[T | None]],
    limit_s: float = LIMIT_S,
    *,
    every_s: float = 0.0,
    what: str = "the expected state",
) -> T:
    """:func:`until` for an async ``check()``: its first true value."""
    past = _safety_net(limit_s, what)
    while not (value := await check()):
        past()
        await asyncio.sleep(every_s)
    return value


def until_blocking(
    done: Callable[[], bool],
    limit_s: float = LIMIT_S,
    *,
    every_s: float,
    what: str = "the expected state",
) -> None:
    """:func:`until` for code outside an event loop: checks ``done()`` (a peer process's
    state) every ``every_s``, blocking the thread in between."""
    past = _safety_net(limit_s, what)
    while not done():
        past()
        time.sleep(every_s)


async def elapse_until(
    done: Callable[[], bool], step_s: float = 1.0, limit_s: float = 600.0
) -> None:
    """On virtual time: let the clock run in steps of ``step_s`` until ``done()`` holds
    (at most ``limit_s`` of virtual time, which only stops a broken run)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not done():
        if loop.time() > deadline:
            raise AssertionError(f"not reached within {limit_s:g} s of virtual time")
        await asyncio.sleep(step_s)


async def settle(
    pilot: Pilot[Any],
    done: Callable[[], bool],
    limit_s: float = LIMIT_S,
    *,
    what: str = "the expected state",
) -> None:
    """Let a Textual app and the engine run until ``done()`` holds."""
    deadline = time.monotonic() + limit_s
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"the app did not reach {what} within {limit_s:g} s")
        await pilot.pause()


B = TypeVar("B", bound=Bus, default=InMemoryBus)


@dataclass
class Center(Generic[B]):
    """An engine running on a bus (in memory unless the test gave one), with its
    directory (the store, or the test's own) and lines."""

    service: EngineService
    bus: B
    directory: CustomerDirectory
    lines: list[TelephonyAdapter] = field(default_factory=list)

    @property
    def config(self) -> Config:
        return self.service.config

    @property
    def store(self) -> Store:
        """The store the centre's customers and call records are in."""
        store = self.directory
        assert isinstance(store, Store), f"the directory is a {type(store).__name__}"
        return store

    @property
    def trunk(self) -> SimTrunk:
        """The simulator trunk the centre's calls come in on (its first line)."""
        trunk = self.lines[0]
        assert isinstance(trunk, SimTrunk), f"the first line is a {type(trunk).__name__}"
        return trunk

    async def send(self, command: AnyCommand) -> None:
        """An agent's command, published on its topic as its console would."""
        await self.bus.publish(topics.agent_commands(command.agent_id), command)


def center_config(
    queues: Sequence[Mapping[str, Any]] | None = None,
    **sections: Mapping[str, Any] | Sequence[Mapping[str, Any]],
) -> Config:
    """The default configuration with these queues (one "general" if none) and other
    sections (``engine={...}``, ``access={...}``) laid over it."""
    overrides: dict[str, Any] = {"queues": list(queues or [{"name": "general"}]), **sections}
    return load_config(overrides=overrides)


@contextlib.asynccontextmanager
async def engine_center(
    db: Path | CustomerDirectory,
    *,
    config: Config | None = None,
    agents: Iterable[AgentConfig] | Mapping[str, Sequence[str]] | None = None,
    lines: Sequence[TelephonyAdapter] | None = None,
    customers: Iterable[Customer] = (),
    bus: B | None = None,
    journal: Journal | None = None,
    recorder: CallRecorder | None = None,
    crash: bool = False,
) -> AsyncIterator[Center[B]]:
    """The engine running on ``lines`` (one simulator trunk if none), agents 1001 in every
    queue if none are named.

    ``db``: a store opened at that path (closed after) with ``customers`` added, or the
    test's own directory (a store it keeps, or an in-memory stand-in); call records go
    to ``recorder``, else to the directory when it is a store. ``crash``: the block's
    end is a crash, as a kill would be: the effects and records the engine decided but
    had not carried out are lost (a clean stop carries them out)."""
    store = await Store.open(db) if isinstance(db, Path) else db
    try:
        customers = list(customers)
        if customers:
            assert isinstance(store, Store), "customers are added to a store"
            await store.add_customers(customers)
        config = config or center_config()
        if agents is None:
            agents = {"1001": [q.name for q in config.queues]}
        lines = list(lines) if lines is not None else [SimTrunk()]
        # No bus given: B is its default, InMemoryBus.
        on = bus if bus is not None else cast(B, InMemoryBus())
        async with running_engine(
            config, on, directory=store, recorder=recorder, journal=journal, lines=lines,
            agents=agents, web=False,
        ) as service:  # fmt: skip
            try:
                yield Center(service, on, store, lines)
            finally:
                if crash:
                    service.flush = _carry_out_nothing  # type: ignore[method-assign]
    finally:
        if isinstance(db, Path):
            assert isinstance(store, Store)
            await store.close()


async def _carry_out_nothing() -> None:
    """A crashed engine's flush: what it had not carried out is lost."""


def engine_service(
    directory: CustomerDirectory,
    *,
    config: Config | None = None,
    agents: Iterable[AgentConfig] | Mapping[str, Sequence[str]] | None = None,
    lines: Sequence[TelephonyAdapter] = (),
    journal: Journal | None = None,
) -> EngineService:
    """An engine service built and not started (on an in-memory bus, with no lines
    unless given, agents 1001 in every queue if none are named): for what it refuses
    before it runs, or one of its parts (the router, the caller look-up) used alone."""
    config = config or center_config()
    if agents is None:
        agents = {"1001": [q.name for q in config.queues]}
    return EngineService(config, InMemoryBus(), directory, list(lines), agents, journal=journal)
