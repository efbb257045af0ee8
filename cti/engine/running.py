"""One way to run the engine: :func:`running_engine`, used by ``cti serve``, the demo,
the simulator's live mode and the tests' harness.

    async with running_engine(config, bus, db_path=path) as service:
        ...  # the engine serves; on the way out it finishes its effects and stops

``running_engine(config, bus, *, db_path=None, directory=None, recorder=None,
journal=None, lines=None, agents=None, dialer_poll_s=None, web=True, config_path=None)``
yields the started :class:`~cti.engine.service.EngineService` (ready: it listens for
commands and line events, its journal replayed). What it opened it closes; what the
caller passed in stays the caller's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cti.config import Config
from cti.engine.directory import CallRecorder, CustomerDirectory
from cti.engine.presence import announce_engine, watch_presence
from cti.engine.service import EngineService
from cti.models import AgentConfig
from cti.store.database import Store
from cti.store.journal import Journal, journal_path_for
from telephony_adapters.base import TelephonyAdapter

if TYPE_CHECKING:
    from cti.bus.memory import Bus
    from cti.engine.web_callbacks import WebCallbacks

_Helper = Coroutine[Any, Any, None]

log = logging.getLogger(__name__)


def configured_lines(config: Config) -> list[TelephonyAdapter]:
    """The lines of ``[[lines]]``; one simulator trunk (``sim``) when there are none."""
    from cti.engine.lines import build_lines
    from telephony_adapters.sim import SimTrunk

    if not config.lines:
        return [SimTrunk("sim")]
    return build_lines(config)


@contextlib.asynccontextmanager
async def running_engine(
    config: Config,
    bus: Bus,
    *,
    db_path: Path | None = None,
    directory: CustomerDirectory | None = None,
    recorder: CallRecorder | None = None,
    journal: Journal | None = None,
    lines: Sequence[TelephonyAdapter] | None = None,
    agents: Iterable[AgentConfig] | Mapping[str, Sequence[str]] | None = None,
    dialer_poll_s: float | None = None,
    web: bool = True,
    config_path: Path | None = None,
) -> AsyncIterator[EngineService]:
    """Run the engine on ``bus`` for the body of the ``async with``.

    The store: ``db_path`` opens one there (and a journal beside it, unless ``journal``
    is given), both closed on the way out; else ``directory`` (the caller's: a
    :class:`~cti.store.database.Store` or any :class:`CustomerDirectory`) is used as is,
    with ``journal`` if given. ``recorder`` defaults to the store when there is one.
    ``lines`` default to the configuration's (:func:`configured_lines`); ``agents`` to
    ``config.agents``.

    ``dialer_poll_s``: also run the outbound dialer (:mod:`cti.engine.campaigns`) on the
    lines that can dial, reading campaign states from the store this often. ``web``:
    start the callback endpoint when ``[web] callbacks_port`` is set. ``config_path``:
    reload the configuration when it changes.

    Yields once the engine is ready (:func:`_present`). On the way out: the web endpoint
    stops, what was decided is carried out, the engine says it is offline, it and its
    helpers are cancelled (calls go on in the journal); a failing engine raises its error.
    """
    async with contextlib.AsyncExitStack() as stack:
        store = directory
        if db_path is not None:
            store, journal = await _open_store(stack, db_path, journal)
        if store is None:
            raise ValueError("running_engine needs db_path or directory")
        raw_lines = list(lines) if lines is not None else configured_lines(config)
        service, helpers = _assemble(
            config, bus, store, recorder, journal, raw_lines, agents, dialer_poll_s
        )
        if config_path is not None:
            helpers.append(service.follow_config(config_path))
        async with asyncio.TaskGroup() as group:
            engine = group.create_task(service.run(), name="engine")
            await _ready(service, engine)
            tasks = [group.create_task(h, name="engine:helper") for h in helpers]
            tasks.append(await _present(group, service, bus))
            callbacks = await _start_web(config, service) if web else None
            try:
                yield service
            finally:
                if callbacks is not None:
                    await callbacks.stop()  # no new callback requests while stopping
                if not engine.done():
                    await service.flush()
                await announce_engine(bus, online=False)  # on MQTT also its last will
                for task in (*tasks, engine):
                    task.cancel()


async def _open_store(
    stack: contextlib.AsyncExitStack, db_path: Path, journal: Journal | None
) -> tuple[Store, Journal]:
    """The store at ``db_path`` and (unless given) the journal beside it, closed by ``stack``."""
    store = await Store.open(db_path)
    stack.push_async_callback(store.close)
    if journal is None:
        journal = Journal.open(journal_path_for(db_path))
        stack.callback(journal.close)
    return store, journal


def _assemble(
    config: Config,
    bus: Bus,
    store: CustomerDirectory,
    recorder: CallRecorder | None,
    journal: Journal | None,
    raw_lines: list[TelephonyAdapter],
    agents: Iterable[AgentConfig] | Mapping[str, Sequence[str]] | None,
    dialer_poll_s: float | None,
) -> tuple[EngineService, list[_Helper]]:
    """The service (with the dialer's wrapped lines, if it runs) and its helpers' coroutines;
    the recorder is the store when there is one and none is given."""
    if recorder is None and isinstance(store, Store):
        recorder = store
    from cti.engine.campaigns import CampaignDesk, dialling_lines

    dialling = dialling_lines(raw_lines) if dialer_poll_s is not None else {}
    lines = [dialling.get(line.name, line) for line in raw_lines]
    service = EngineService(
        config,
        bus,
        store,
        lines,
        config.agents if agents is None else agents,
        recorder=recorder,
        journal=journal,
    )
    helpers: list[_Helper] = []
    if service.voice.active:  # recordings past [voice] retention_days: at start, then daily
        helpers.append(service.recordings.retention())
    if dialer_poll_s is not None:
        if not isinstance(store, Store):
            raise ValueError("the dialer needs a store (its campaigns are kept there)")
        from cti.store.campaigns import CampaignStore

        desk = CampaignDesk(
            service, CampaignStore(store), list(dialling.values()), poll_s=dialer_poll_s
        )
        service.campaign_control = desk.control
        helpers.append(desk.run())
    return service, helpers


async def _ready(service: EngineService, engine: asyncio.Task[None]) -> None:
    """Wait until the engine listens; an engine that ends first raises its error."""
    ready = asyncio.create_task(service.ready.wait(), name="engine:ready")
    try:
        await asyncio.wait({engine, ready}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ready.cancel()
    if not service.ready.is_set():
        engine.result()  # its exception; or it returned, which run() never does
        raise RuntimeError("the engine stopped before it was ready")


async def _present(
    group: asyncio.TaskGroup, service: EngineService, bus: Bus
) -> asyncio.Task[None]:
    """The engine is ready: it follows the consoles' presence (their agents logged out
    when one is gone) and announces itself online (:mod:`cti.engine.presence`)."""
    task = group.create_task(watch_presence(service), name="engine:presence")
    await announce_engine(bus, online=True)
    return task


async def _start_web(config: Config, service: EngineService) -> WebCallbacks | None:
    """The callback endpoint, when ``[web] callbacks_port`` is set (docs/web_callbacks.md)."""
    from cti.engine.web_callbacks import WebCallbacks

    if config.web.callbacks_port <= 0:
        return None
    web = WebCallbacks(service, config.web.host, config.web.callbacks_port)
    await web.start()
    return web
