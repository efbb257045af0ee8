"""Bot agents: they log in, go Ready, and work calls through the bus like a console.

A bot accepts an offer after ``answer_delay_s``, talks for an exponentially
distributed handle time, hangs up, and finishes wrap-up after ``wrap_up_s`` with a
random disposition. If it ever lands in Not Ready (a missed offer), it goes Ready again.
It uses only the wire protocol, so the engine cannot tell it from a person.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass

from cti import topics
from cti.bus import Bus
from cti.models import AgentState
from cti.protocol import (
    AcceptOffer,
    AgentStateChanged,
    AnyCommand,
    CallConnected,
    CallEnded,
    CallOffered,
    CompleteWrapUp,
    HangUp,
    Login,
    SetReady,
)


@dataclass(frozen=True, slots=True)
class BotBehaviour:
    answer_delay_s: float = 2.0
    mean_handle_s: float = 180.0
    wrap_up_s: float = 5.0
    dispositions: Sequence[str] = ("resolved",)


class BotAgent:
    def __init__(
        self, bus: Bus, agent_id: str, behaviour: BotBehaviour, rng: random.Random
    ) -> None:
        self.bus = bus
        self.agent_id = agent_id
        self.behaviour = behaviour
        self.rng = rng
        self.calls_handled = 0

    async def run(self) -> None:
        """Work calls until cancelled."""
        own = f"{topics.PREFIX}/agents/{self.agent_id}/+"
        async with self.bus.subscribe(own) as messages, asyncio.TaskGroup() as tg:
            await self._send(Login(agent_id=self.agent_id))
            await self._send(SetReady(agent_id=self.agent_id))
            async for _topic, message in messages:
                b = self.behaviour
                match message:
                    case CallOffered(pop=pop):
                        tg.create_task(
                            self._later(
                                b.answer_delay_s,
                                AcceptOffer(agent_id=self.agent_id, call_id=pop.call_id),
                            )
                        )
                    case CallConnected(call_id=call_id):
                        handle = self.rng.expovariate(1.0 / b.mean_handle_s)
                        tg.create_task(
                            self._later(handle, HangUp(agent_id=self.agent_id, call_id=call_id))
                        )
                    case CallEnded(call_id=call_id):
                        self.calls_handled += 1
                        tg.create_task(
                            self._later(
                                b.wrap_up_s,
                                CompleteWrapUp(
                                    agent_id=self.agent_id,
                                    call_id=call_id,
                                    disposition=self.rng.choice(list(b.dispositions)),
                                ),
                            )
                        )
                    case AgentStateChanged(state=AgentState.NOT_READY, reason=reason) if (
                        reason != "logged in"
                    ):
                        tg.create_task(self._later(1.0, SetReady(agent_id=self.agent_id)))
                    case _:
                        pass

    async def _later(self, delay: float, command: AnyCommand) -> None:
        await asyncio.sleep(delay)
        await self._send(command)

    async def _send(self, command: AnyCommand) -> None:
        await self.bus.publish(topics.agent_commands(self.agent_id), command)
