"""running_engine(): the one way the engine is started and stopped (serve, demo, the
simulator's live mode, the tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cti import topics
from cti.bus.memory import InMemoryBus
from cti.config import load_config
from cti.engine.running import running_engine
from cti.errors import StoreError, TelephonyError
from cti.protocol import CallOffered, Login, SetReady
from cti.store.database import Store
from queue_engine import inputs as ri
from telephony_adapters.sim import SimTrunk

CONFIG = load_config(
    overrides={
        "queues": [{"name": "general"}],
        "agents": [{"id": "1001", "queues": {"general": 0}}],
    }
)


class _BrokenTrunk(SimTrunk):
    async def start(self) -> None:
        raise TelephonyError("the trunk will not start")


async def test_the_engine_serves_inside_and_closes_what_it_opened(tmp_path: Path) -> None:
    bus = InMemoryBus()
    trunk = SimTrunk("sim")
    offers: list[CallOffered] = []
    async with running_engine(CONFIG, bus, db_path=tmp_path / "cti.db", lines=[trunk]) as service:
        assert service.ready.is_set()
        assert service.journal is not None
        assert service.journal.path.parent == tmp_path
        async with bus.subscribe(topics.agent_events("1001")) as events:
            await bus.publish(topics.agent_commands("1001"), Login(agent_id="1001", command_id="a"))
            await bus.publish(
                topics.agent_commands("1001"), SetReady(agent_id="1001", command_id="b")
            )
            trunk.ring("+8613800000001")
            async for _, message in events:
                if isinstance(message, CallOffered):
                    offers.append(message)
                    break
    assert offers[0].agent_id == "1001"
    store = service.recorder
    assert isinstance(store, Store)
    assert store._connection is None  # closed on the way out
    journal = service.journal
    assert journal is not None
    with pytest.raises(StoreError, match="closed"):
        journal.append(0.0, ri.TimePasses())


async def test_an_engine_that_cannot_start_raises_instead_of_hanging(tmp_path: Path) -> None:
    bus = InMemoryBus()
    with pytest.raises(ExceptionGroup) as caught:
        async with running_engine(
            CONFIG, bus, db_path=tmp_path / "cti.db", lines=[_BrokenTrunk("sim")]
        ):
            raise AssertionError("not ready: the body must not run")
    assert caught.group_contains(TelephonyError)


async def test_a_directory_passed_in_stays_open(tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "cti.db") as store:
        async with running_engine(CONFIG, InMemoryBus(), directory=store, web=False) as service:
            assert service.recorder is store
            assert service.journal is None
        assert await store.sample_customers(1, 1) == []
