"""A scripted stand-in for the engine on the in-memory bus, for the console's own tests.

It follows ``topics.ALL_AGENT_COMMANDS`` and answers each command the way the engine
would in the happy path, publishing the agent's state retained on its state topic and a
:class:`CommandResult` on its events topic, or, as the engine answers an accept, reject
or hang-up, the event naming the command (``command_id``) and no result:

* ``Login`` -> not ready, ``SetReady`` -> ready, ``SetNotReady`` -> not ready (reason);
* ``AcceptOffer`` -> ``CallConnected`` + talking; ``RejectOffer`` -> ``OfferWithdrawn``
  + ready; ``HangUp`` -> ``CallEnded`` + wrap-up (each its command's answer);
  ``CompleteWrapUp`` -> ready;
* ``Logout`` -> logged out.

:meth:`FakeEngine.offer` offers a call (``CallOffered`` + reserved). A command can be
refused once with :meth:`FakeEngine.refuse_next`. Every command received is kept in
:attr:`FakeEngine.commands`, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Literal, Self

from cti import topics
from cti.bus.memory import InMemoryBus
from cti.clock import wall_time
from cti.models import AgentState
from cti.protocol import (
    COMMAND_TYPES,
    AcceptOffer,
    AgentStateChanged,
    CallConnected,
    CallEnded,
    CallOffered,
    CommandResult,
    CompleteWrapUp,
    HangUp,
    Login,
    Logout,
    Message,
    OfferWithdrawn,
    QueueStatus,
    RejectOffer,
    ScreenPop,
    SetNotReady,
    SetReady,
)

DISPOSITIONS = ("sale", "no sale", "callback", "complaint")


class FakeEngine:
    """Use as ``async with FakeEngine(bus) as engine:``; it answers until the block ends."""

    def __init__(
        self,
        bus: InMemoryBus,
        *,
        clock: Callable[[], float] = wall_time,
        offer_timeout_s: float = 15.0,
        wrap_up_s: float | None = 30.0,
    ) -> None:
        self.bus = bus
        self.clock = clock
        self.offer_timeout_s = offer_timeout_s
        self.wrap_up_s = wrap_up_s
        self.commands: list[Message] = []
        self.phone_reachable: bool | None = None
        """What each state published says of the agent's phone (None: no voice line)."""
        self.states: dict[str, AgentState] = {}
        self._refusals: dict[type[Message], str] = {}
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        attached = asyncio.Event()
        self._task = asyncio.create_task(self._serve(attached), name="fake-engine")
        await attached.wait()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def commands_of(self, kind: type[Message]) -> list[Message]:
        return [command for command in self.commands if isinstance(command, kind)]

    def refuse_next(self, kind: type[Message], error: str) -> None:
        """Refuse the next command of ``kind`` with ``error`` (state unchanged)."""
        self._refusals[kind] = error

    # --- scripted engine events --------------------------------------------------

    async def offer(
        self,
        call_id: str,
        pop: ScreenPop,
        *,
        agent_id: str = "1001",
        dispositions: Sequence[str] = DISPOSITIONS,
        agent_name: str = "",
    ) -> CallOffered:
        """Offer ``call_id`` to ``agent_id``: ``CallOffered``, then reserved."""
        now = self.clock()
        offered = CallOffered(
            agent_id=agent_id,
            pop=pop,
            timeout_s=self.offer_timeout_s,
            deadline_wall=now + self.offer_timeout_s,
            dispositions=tuple(dispositions),
            agent_name=agent_name,
        )
        await self.bus.publish(topics.agent_events(agent_id), offered)
        await self._set_state(agent_id, AgentState.RESERVED, call_id=call_id)
        return offered

    async def withdraw(
        self, call_id: str, reason: str, *, agent_id: str = "1001", command_id: str = ""
    ) -> None:
        """The offer is gone (timeout, caller hung up): ``OfferWithdrawn``, then ready."""
        withdrawn = OfferWithdrawn(
            agent_id=agent_id, call_id=call_id, reason=reason, command_id=command_id
        )
        await self.bus.publish(topics.agent_events(agent_id), withdrawn)
        await self._set_state(agent_id, AgentState.READY)

    async def caller_hangs_up(self, call_id: str, *, agent_id: str = "1001") -> None:
        """The caller ends the conversation: ``CallEnded(by="caller")``, then wrap-up."""
        await self._end_call(agent_id, call_id, by="caller")

    async def queue_status(self, queue: str, *, waiting: int, longest_wait_s: float) -> None:
        await self.bus.publish(
            topics.queue_status(queue),
            QueueStatus(
                queue=queue,
                waiting=waiting,
                longest_wait_s=longest_wait_s,
                agents_ready=1,
                agents_busy=0,
                agents_logged_in=1,
                offered=0,
                answered=0,
                abandoned=0,
                service_level=None,
                asa_s=None,
                at_wall=self.clock(),
            ),
            retain=True,
        )

    # --- answering commands ------------------------------------------------------

    async def _serve(self, attached: asyncio.Event) -> None:
        async with self.bus.subscribe(topics.ALL_AGENT_COMMANDS) as commands:
            attached.set()
            async for _topic, message in commands:
                if isinstance(message, COMMAND_TYPES):
                    self.commands.append(message)
                    await self._answer(message)

    async def _answer(self, command: Message) -> None:
        assert isinstance(command, COMMAND_TYPES)
        agent = command.agent_id
        error = self._refusals.pop(type(command), None)
        if error is not None:
            await self._result(command.agent_id, command.command_id, error)
            return
        if isinstance(command, Login):
            await self._set_state(agent, AgentState.NOT_READY, reason="login")
        elif isinstance(command, Logout):
            await self._set_state(agent, AgentState.LOGGED_OUT)
        elif isinstance(command, SetReady):
            await self._set_state(agent, AgentState.READY)
        elif isinstance(command, SetNotReady):
            await self._set_state(agent, AgentState.NOT_READY, reason=command.reason)
        elif isinstance(command, AcceptOffer):
            connected = CallConnected(agent_id=agent, call_id=command.call_id,
                                      command_id=command.command_id)  # fmt: skip
            await self.bus.publish(topics.agent_events(agent), connected)
            await self._set_state(agent, AgentState.TALKING, call_id=command.call_id)
        elif isinstance(command, RejectOffer):
            await self.withdraw(command.call_id, "rejected", agent_id=agent,
                                command_id=command.command_id)  # fmt: skip
        elif isinstance(command, HangUp):
            await self._end_call(agent, command.call_id, by="agent", command_id=command.command_id)
        elif isinstance(command, CompleteWrapUp):
            await self._set_state(agent, AgentState.READY)
        if not isinstance(command, AcceptOffer | RejectOffer | HangUp):  # else: its event
            await self._result(agent, command.command_id)

    async def _end_call(
        self, agent_id: str, call_id: str, *, by: Literal["agent", "caller"], command_id: str = ""
    ) -> None:
        ended = CallEnded(agent_id=agent_id, call_id=call_id, by=by, command_id=command_id)
        await self.bus.publish(topics.agent_events(agent_id), ended)
        deadline = None if self.wrap_up_s is None else self.clock() + self.wrap_up_s
        await self._set_state(
            agent_id, AgentState.WRAP_UP, call_id=call_id, wrap_up_deadline_wall=deadline
        )

    async def _set_state(
        self,
        agent_id: str,
        state: AgentState,
        *,
        reason: str = "",
        call_id: str | None = None,
        wrap_up_deadline_wall: float | None = None,
    ) -> None:
        self.states[agent_id] = state
        await self.bus.publish(
            topics.agent_state(agent_id),
            AgentStateChanged(
                agent_id=agent_id,
                state=state,
                reason=reason,
                since_wall=self.clock(),
                call_id=call_id,
                wrap_up_deadline_wall=wrap_up_deadline_wall,
                phone_reachable=self.phone_reachable,
            ),
            retain=True,
        )

    async def _result(self, agent_id: str, command_id: str, error: str = "") -> None:
        await self.bus.publish(
            topics.agent_events(agent_id),
            CommandResult(command_id=command_id, ok=not error, error=error),
        )
