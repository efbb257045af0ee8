"""One call's story for tests of what a wrap-up's script actions lead to: the agent
logs in, goes Ready, takes a call from the simulator trunk, hangs up and wraps up with
the script's actions and answers."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from cti.bus.memory import InMemoryBus
from cti.models import Customer, Scalar, ScriptAction
from cti.protocol import (
    AcceptOffer,
    CallConnected,
    CallEnded,
    CallOffered,
    CompleteWrapUp,
    HangUp,
    Login,
    SetReady,
)
from telephony_adapters.sim import SimTrunk
from tests.cti.test_service import Agent


async def wrapped_up_call(
    bus: InMemoryBus,
    trunk: SimTrunk,
    ani: str,
    customer: Customer,
    actions: Sequence[ScriptAction],
    *,
    disposition: str = "resolved",
    answers: Mapping[str, Scalar] | None = None,
    agent_id: str = "1001",
) -> str:
    """The call id of a call ``customer`` made from ``ani``, answered by ``agent_id``,
    hung up and wrapped up with the script's ``actions`` (accepted by the engine)."""
    agent = Agent(bus, agent_id)
    async with bus.subscribe(f"cti/v1/agents/{agent_id}/+") as sub:

        async def route() -> None:
            async for topic, message in sub:
                if not topic.endswith("/commands"):
                    agent.inbox.put_nowait(message)

        router = asyncio.create_task(route())
        try:
            await agent.send(Login(agent_id=agent_id))
            await agent.send(SetReady(agent_id=agent_id))
            call_id = trunk.ring(ani)
            assert (await agent.expect(CallOffered)).pop.customer == customer
            await agent.send(AcceptOffer(agent_id=agent_id, call_id=call_id))
            await agent.expect(CallConnected)
            await agent.send(HangUp(agent_id=agent_id, call_id=call_id))
            await agent.expect(CallEnded)
            done = await agent.do(
                CompleteWrapUp(
                    agent_id=agent_id, call_id=call_id, disposition=disposition,
                    script="service", script_version="1",
                    answers=dict(answers or {}),
                    script_path=tuple(a.node for a in actions),
                    script_actions=tuple(actions),
                )
            )  # fmt: skip
            assert done.ok, done.error
        finally:
            router.cancel()
            await asyncio.gather(router, return_exceptions=True)
    return call_id
