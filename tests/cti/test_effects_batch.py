"""A router step's actions go to the effects task as one item (issue 23): carried out in
order, one failing does not stop the others, and those a cancelled task had not reached
are carried out when the stopped engine is flushed, as when each was an item of its own."""

from __future__ import annotations

import asyncio

from cti import topics
from cti.engine.effects import Publish
from cti.models import Customer
from cti.protocol import CallConnected, Message
from tests.harness import engine_service, until


class _NoOne:
    async def find_by_number(self, e164: str) -> list[Customer]:
        return []

    async def recent_interactions(self, customer_id: int, limit: int = 5) -> tuple[()]:
        return ()


def _step(*calls: str) -> list[Publish]:
    events = topics.agent_events("1001")
    return [Publish(events, CallConnected(agent_id="1001", call_id=c)) for c in calls]


def test_a_steps_actions_left_by_a_cancelled_task_are_carried_out_at_the_flush() -> None:
    async def body() -> None:
        service = engine_service(_NoOne())
        sent: list[str] = []
        held = asyncio.Event()

        async def publish(topic: str, message: Message, *, retain: bool = False) -> None:
            assert isinstance(message, CallConnected)
            sent.append(message.call_id)
            if message.call_id == "c1":
                await held.wait()  # the engine stops while this one is on its way
            if message.call_id == "c4":
                raise RuntimeError("a broken effect: logged, the rest goes on")

        service.bus.publish = publish  # type: ignore[method-assign]
        service._effects.put_nowait(_step("c1", "c2", "c3"))  # type: ignore[arg-type]
        service._effects.put_nowait(_step("c4", "c5")[0])
        service._effects.put_nowait(_step("c4", "c5"))  # type: ignore[arg-type]
        task = asyncio.create_task(service._serve_effects())
        await until(lambda: sent == ["c1"])
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await service.flush()  # the engine does not serve: what is left is carried out here
        assert sent == ["c1", "c2", "c3", "c4", "c4", "c5"]
        assert service._effects.empty()
        assert not service._left

    asyncio.run(body())
