"""Bot agents: they log in, go Ready, and work calls through the bus like a console.

A bot accepts an offer after ``answer_delay_s``, talks for an exponentially
distributed handle time, hangs up, and finishes wrap-up after ``wrap_up_s`` with a
random disposition. If it ever lands in Not Ready (a missed offer), it goes Ready again.
It uses only the wire protocol, so the engine cannot tell it from a person.

Like a console that reconnects, a bot picks up where the engine says it is: it asks
for a snapshot when it starts, and a state of Talking or Wrap-up with a call it is
not yet working (the engine restarted, or the bot did) gets the same treatment as a
call it saw connect or end: a hang-up after a handle time, a wrap-up after its time.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from cti import topics
from cti.bus.memory import Bus
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
    RequestSnapshot,
    SetReady,
)


@dataclass(frozen=True, slots=True)
class BotBehaviour:
    answer_delay_s: float = 2.0
    mean_handle_s: float = 180.0
    wrap_up_s: float = 5.0
    dispositions: Sequence[str] = ("resolved",)
    handle_by_queue: Mapping[str, Callable[[random.Random], float]] = field(default_factory=dict)
    """Handle time per queue (a draw from the scenario's distribution); queues not
    named here get an exponential time of mean ``mean_handle_s``."""


class BotAgent:
    def __init__(
        self, bus: Bus, agent_id: str, behaviour: BotBehaviour, rng: random.Random
    ) -> None:
        self.bus = bus
        self.agent_id = agent_id
        self.behaviour = behaviour
        self.rng = rng
        self.calls_handled = 0
        self._working: dict[str, str] = {}
        self._queue_of: dict[str, str] = {}
        """Calls this bot is working: call id -> "talk" or "wrap" (what it has scheduled)."""

    async def run(self) -> None:
        """Work calls until cancelled."""
        own = f"{topics.PREFIX}/agents/{self.agent_id}/+"
        async with self.bus.subscribe(own) as messages, asyncio.TaskGroup() as tg:
            await self._send(Login(agent_id=self.agent_id))
            await self._send(SetReady(agent_id=self.agent_id))
            await self._send(RequestSnapshot(agent_id=self.agent_id))
            async for _topic, message in messages:
                b = self.behaviour
                match message:
                    case CallOffered(pop=pop):
                        self._queue_of[pop.call_id] = pop.queue
                        tg.create_task(
                            self._later(
                                b.answer_delay_s,
                                AcceptOffer(agent_id=self.agent_id, call_id=pop.call_id),
                            )
                        )
                    case (
                        CallConnected(call_id=call_id)
                        | AgentStateChanged(state=AgentState.TALKING, call_id=str() as call_id)
                    ):
                        if call_id not in self._working:
                            self._working[call_id] = "talk"
                            handle = self._handle_time(call_id)
                            tg.create_task(
                                self._later(handle, HangUp(agent_id=self.agent_id, call_id=call_id))
                            )
                    case (
                        CallEnded(call_id=call_id)
                        | AgentStateChanged(state=AgentState.WRAP_UP, call_id=str() as call_id)
                    ):
                        if self._working.get(call_id) != "wrap":
                            self._working[call_id] = "wrap"
                            self.calls_handled += 1
                            disposition = self.rng.choice(list(b.dispositions))
                            tg.create_task(self._wrap_up(call_id, disposition))
                    case AgentStateChanged(state=AgentState.NOT_READY, reason=reason) if (
                        reason != "logged in"
                    ):
                        tg.create_task(self._later(1.0, SetReady(agent_id=self.agent_id)))
                    case _:
                        pass

    def _handle_time(self, call_id: str) -> float:
        draw = self.behaviour.handle_by_queue.get(self._queue_of.pop(call_id, ""))
        if draw is not None:
            return draw(self.rng)
        return self.rng.expovariate(1.0 / self.behaviour.mean_handle_s)

    async def _wrap_up(self, call_id: str, disposition: str) -> None:
        command = CompleteWrapUp(agent_id=self.agent_id, call_id=call_id, disposition=disposition)
        await self._later(self.behaviour.wrap_up_s, command)
        self._working.pop(call_id, None)

    async def _later(self, delay: float, command: AnyCommand) -> None:
        await asyncio.sleep(delay)
        await self._send(command)

    async def _send(self, command: AnyCommand) -> None:
        await self.bus.publish(topics.agent_commands(self.agent_id), command)
