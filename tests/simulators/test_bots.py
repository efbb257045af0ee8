"""Bot agents pick their calls up from the engine's state, as after a restart."""

from __future__ import annotations

import asyncio
import random

from cti import topics
from cti.bus.memory import InMemoryBus
from cti.clock import VIRTUAL_EPOCH, run_virtual
from cti.models import AgentState
from cti.protocol import (
    AgentStateChanged,
    CompleteWrapUp,
    HangUp,
    Login,
    Message,
    RequestSnapshot,
    SetReady,
)
from simulators.bots import BotAgent, BotBehaviour


def _state(state: AgentState, call_id: str | None) -> AgentStateChanged:
    return AgentStateChanged(
        agent_id="2001", state=state, since_wall=VIRTUAL_EPOCH, call_id=call_id
    )


def test_a_bot_finishes_the_call_and_the_wrap_up_it_finds_itself_in() -> None:
    async def main() -> list[Message]:
        bus = InMemoryBus()
        # What a restarted engine has published, retained, before the bot starts.
        await bus.publish(topics.agent_state("2001"), _state(AgentState.TALKING, "c1"), retain=True)
        sent: list[Message] = []
        async with bus.subscribe(topics.agent_commands("2001")) as commands:
            behaviour = BotBehaviour(answer_delay_s=1, mean_handle_s=30, wrap_up_s=2)
            bot = asyncio.create_task(BotAgent(bus, "2001", behaviour, random.Random(1)).run())

            async def next_command() -> Message:
                async for _, message in commands:
                    sent.append(message)
                    return message
                raise AssertionError("no command")

            while not isinstance(await next_command(), HangUp):
                pass
            # The same state again (a snapshot) schedules nothing more.
            await bus.publish(
                topics.agent_state("2001"), _state(AgentState.TALKING, "c1"), retain=True
            )
            await bus.publish(
                topics.agent_state("2001"), _state(AgentState.WRAP_UP, "c1"), retain=True
            )
            while not isinstance(await next_command(), CompleteWrapUp):
                pass
            await asyncio.sleep(600)
            while True:
                try:
                    async with asyncio.timeout(0):
                        await next_command()
                except TimeoutError:
                    break
            bot.cancel()
            await asyncio.gather(bot, return_exceptions=True)
        return sent

    sent = run_virtual(main)
    kinds = [type(m) for m in sent]
    assert kinds == [Login, SetReady, RequestSnapshot, HangUp, CompleteWrapUp]
    hang_up, wrap_up = sent[3], sent[4]
    assert isinstance(hang_up, HangUp)
    assert hang_up.call_id == "c1"
    assert isinstance(wrap_up, CompleteWrapUp)
    assert wrap_up.call_id == "c1"
