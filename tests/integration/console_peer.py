"""A console in its own process, for the integration tests: an agent's side of the bus.

``python -m tests.integration.console_peer --broker URL --agent 1001`` connects as a
console (presence, last will, the resyncing :class:`~agent_console.connection.ConsoleLink`),
logs in, goes ready, answers the first call offered, hangs up once connected, wraps up
with ``--disposition``, and exits 0 once the engine has accepted the wrap-up. Each
step is one JSON line on stdout (``{"event": ..., ...}``) for the test to follow.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from agent_console.connection import ConsoleLink
from cti import topics
from cti.bus.roles import open_bus
from cti.config import BrokerSettings
from cti.models import AgentState
from cti.protocol import (
    AcceptOffer,
    AgentStateChanged,
    CallConnected,
    CallEnded,
    CallOffered,
    CompleteWrapUp,
    HangUp,
    Login,
    Message,
    SetReady,
    answer,
)


def say(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, **fields}, ensure_ascii=False), flush=True)


async def main(broker: str, agent: str, disposition: str) -> int:
    settings = BrokerSettings(url=broker, reconnect_min_s=0.05, reconnect_max_s=0.5)
    async with open_bus(settings, "console", agent_id=agent, wait_online_s=10) as bus:
        link = ConsoleLink(bus, agent, retry_s=1.0)
        follower = asyncio.create_task(link.run())
        say("online")
        commands = topics.agent_commands(agent)
        wrap_up: str | None = None
        ready_sent = False
        async with (
            link.subscribe(topics.agent_events(agent)) as events,
            link.subscribe(topics.agent_state(agent)) as states,
        ):
            merged: asyncio.Queue[Message] = asyncio.Queue()

            async def pump(sub: object) -> None:
                async for _topic, message in sub:  # type: ignore[attr-defined]
                    merged.put_nowait(message)

            pumps = [asyncio.create_task(pump(s)) for s in (events, states)]
            await link.publish(commands, Login(agent_id=agent))
            while True:
                message = await merged.get()
                if isinstance(message, AgentStateChanged):
                    say("state", state=message.state.value, call_id=message.call_id)
                    if message.state is AgentState.NOT_READY and not ready_sent:
                        ready_sent = True
                        await link.publish(commands, SetReady(agent_id=agent))
                elif isinstance(message, CallOffered):
                    say("offered", call_id=message.pop.call_id, ani=message.pop.ani)
                    await link.publish(
                        commands, AcceptOffer(agent_id=agent, call_id=message.pop.call_id)
                    )
                elif isinstance(message, CallConnected):
                    say("connected", call_id=message.call_id)
                    await link.publish(commands, HangUp(agent_id=agent, call_id=message.call_id))
                elif isinstance(message, CallEnded):
                    say("ended", call_id=message.call_id, by=message.by)
                    done = CompleteWrapUp(
                        agent_id=agent, call_id=message.call_id, disposition=disposition
                    )
                    wrap_up = done.command_id
                    await link.publish(commands, done)
                if (result := answer(message)) is not None:  # its own, or its event's
                    say("result", command_id=result.command_id, ok=result.ok, error=result.error)
                    if result.command_id == wrap_up and result.ok:
                        say("done")
                        break
            for task in (*pumps, follower):
                task.cancel()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--broker", required=True)
    parser.add_argument("--agent", required=True)
    parser.add_argument("--disposition", default="resolved")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.broker, args.agent, args.disposition)))
