"""The desk's call keys and what they send: the agent's commands to the engine (each
published within :data:`PUBLISH_TIMEOUT_S`, its answer awaited before the keys work
again), and the call control behind the keys (hold, mute, recording, transfer, consult,
hand over, conference, more wrap-up time, dial) with the prompts they open.

:class:`CallKeys` is a component the desk (:class:`~agent_console.desktop.AgentDesktop`)
holds, like :class:`~agent_console.customer_actions.CustomerActions`: the desk's
``action_*`` methods hand each key to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from textual.app import App

from agent_console.colleagues import Colleagues
from agent_console.desk_dial import number_to_dial
from agent_console.desk_model import EXTEND_WRAP_UP_S, DeskModel, Send
from agent_console.dialogs import Prompt, open_dialog, transfer_target, transfer_target_problem
from cti import topics
from cti.bus.memory import Bus
from cti.protocol import (
    AcceptOffer,
    AnyCommand,
    CancelConsult,
    CompleteConsult,
    ConferenceCall,
    ConsultCall,
    DialNumber,
    ExtendWrapUp,
    HangUp,
    HoldCall,
    MuteCall,
    PauseRecording,
    RejectOffer,
    ResumeCall,
    TransferCall,
)

#: How long a command may take to get onto the bus before the agent is told.
PUBLISH_TIMEOUT_S = 5.0

CallCommand = type[
    AcceptOffer | RejectOffer | HangUp | CompleteConsult | CancelConsult | ConferenceCall
]


def _no_spaces(value: str) -> str | None:
    """A queue or agent id has no spaces (the prompt's check)."""
    return f"{value!r} has a space: a queue name or an agent id has none." if " " in value else None


class CallKeys:
    """Sends the agent's commands and carries out the call keys (module docstring)."""

    def __init__(
        self, app: App[Any], bus: Bus, model: DeskModel, *, clock: Callable[[], float]
    ) -> None:
        self.app = app
        self.bus = bus
        self.model = model
        self.clock = clock
        self.colleagues = Colleagues()

    def follow_colleagues(self) -> None:
        """Follow the other agents' states (from the desk's start: they are retained)."""
        self.app.run_worker(
            self.colleagues.follow(self.bus), name="desk-colleagues", group="colleagues"
        )

    @property
    def agent_id(self) -> str:
        return self.model.agent_id

    # --- sending -------------------------------------------------------------------

    async def send(self, command: AnyCommand, *, awaits_answer: bool = False) -> bool:
        """Publish ``command``; whether it got onto the bus in time (the agent is told
        if not)."""
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                await self.bus.publish(topics.agent_commands(command.agent_id), command)
        except TimeoutError:
            self.app.notify(
                f"Could not send {command.type} within {PUBLISH_TIMEOUT_S:g} s: "
                "is the engine's bus reachable?",
                severity="error",
                markup=False,
            )
            return False
        if awaits_answer:
            self.model.sent(command, self.clock())
            self.app.refresh_bindings()
        return True

    async def send_all(self, sends: list[Send]) -> None:
        for send in sends:  # in order: a wrap-up goes after the callbacks it carries
            await self.send(send.command, awaits_answer=send.awaits_answer)

    def command(self, command: AnyCommand, name: str) -> None:
        """Send ``command`` and wait for its answer before the keys work again."""
        self.app.run_worker(self.send(command, awaits_answer=True), name=name)

    async def call_command(self, kind: CallCommand) -> None:
        """A command about the call in hand (nothing when there is none)."""
        call_id = self.model.call_id
        if call_id is not None:
            await self.send(kind(agent_id=self.agent_id, call_id=call_id), awaits_answer=True)

    # --- the call in hand ----------------------------------------------------------

    async def hold(self) -> None:
        call_id = self.model.call_id
        if call_id is None:
            return
        held = self.model.control is not None and self.model.control.held
        kind = ResumeCall if held else HoldCall
        await self.send(kind(agent_id=self.agent_id, call_id=call_id), awaits_answer=True)

    async def mute(self) -> None:
        call_id = self.model.call_id
        if call_id is None:
            return
        if not self.model.line.mute:
            if self.model.toggle_local_mute():
                self.app.notify(
                    "Muted on this desk only: the line cannot mute, so the caller may still "
                    "hear you. Use your headset's mute too.",
                    title="Mute",
                    severity="warning",
                    markup=False,
                )
            return
        muted = self.model.control is not None and self.model.control.muted
        command = MuteCall(agent_id=self.agent_id, call_id=call_id, muted=not muted)
        await self.send(command, awaits_answer=True)

    async def pause_recording(self) -> None:
        call_id = self.model.call_id
        if call_id is not None:
            paused = not self.model.recording_paused
            command = PauseRecording(agent_id=self.agent_id, call_id=call_id, paused=paused)
            await self.send(command, awaits_answer=True)

    def _queues(self) -> set[str]:
        """The queues the desk knows: those with figures, and the call's own."""
        queues = set(self.model.queue_statuses)
        if self.model.offer is not None:
            queues.add(self.model.offer.pop.queue)
        return queues

    def transfer(self) -> None:
        prompt = Prompt(
            "Transfer to (blind)",
            "Type a queue, an agent id (e.g. 1002) or a phone number (+86 138..., 7 digits "
            "or more), or ↓ to choose below. Enter: transfer · Esc: cancel",
            check=transfer_target_problem,
            choices=self.colleagues.targets(self.agent_id, self._queues(), consult=False),
        )
        open_dialog(self.app, prompt, self._on_transfer_target)

    def _on_transfer_target(self, target: str | None) -> None:
        call_id = self.model.call_id
        if not target or call_id is None:
            return
        queue, to_agent, number = transfer_target(target, self._queues())
        command = TransferCall(agent_id=self.agent_id, call_id=call_id, queue=queue,
                               to_agent=to_agent, number=number)  # fmt: skip
        self.command(command, "desk-transfer")

    def consult(self) -> None:
        prompt = Prompt(
            "Consult an agent",
            "Type the agent id (e.g. 1002) or ↓ to choose below: the caller waits on hold. "
            "Enter: call · Esc: cancel",
            check=_no_spaces,
            choices=self.colleagues.targets(self.agent_id, (), consult=True),
        )
        open_dialog(self.app, prompt, self._on_consult_target)

    def _on_consult_target(self, agent: str | None) -> None:
        call_id = self.model.call_id
        if agent and call_id is not None:
            command = ConsultCall(agent_id=self.agent_id, call_id=call_id, to_agent=agent)
            self.command(command, "desk-consult")

    async def extend_wrap_up(self) -> None:
        call_id = self.model.call_id
        if call_id is not None:
            command = ExtendWrapUp(
                agent_id=self.agent_id, call_id=call_id, seconds=EXTEND_WRAP_UP_S
            )
            await self.send(command, awaits_answer=True)

    def dial(self) -> None:
        prompt = Prompt(
            "Dial",
            "The number to call (e.g. +86 138 0000 0001). Enter: dial · Esc: cancel",
            number_to_dial(self.model),
        )
        open_dialog(self.app, prompt, self.dial_number)

    def dial_number(self, number: str | None) -> None:
        """Call ``number`` for this agent (Ready or Not Ready); a customer card may use it."""
        if number:
            self.command(DialNumber(agent_id=self.agent_id, number=number), "desk-dial")
