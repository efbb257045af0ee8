"""The simulator trunk: a line whose calls come from a traffic model, not a wire.

The simulator calls :meth:`SimTrunk.ring` and :meth:`SimTrunk.caller_hangs_up`; the
engine sees ordinary line events. It keeps the adapter contract exactly, so tests and
the demo exercise the same engine code as a modem or a SIP trunk.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from enum import StrEnum

from cti.errors import TelephonyError
from cti.protocol import CallArrived, CallbackRequested, CallerHungUp
from telephony_adapters.base import LineCapabilities, LineEvent, TelephonyAdapter


class SimCallState(StrEnum):
    RINGING = "ringing"
    ANSWERED = "answered"


class SimTrunk(TelephonyAdapter):
    """A simulated trunk: rings on request, tells the caller when they are answered."""

    def __init__(self, name: str = "sim", *, dnis: str = "") -> None:
        self.name = name
        self.capabilities = LineCapabilities(can_dial=True)
        self._dnis = dnis
        self._events: asyncio.Queue[LineEvent] = asyncio.Queue()
        self._state: dict[str, SimCallState] = {}
        self._answered: dict[str, asyncio.Event] = {}
        self._ids = itertools.count(1)
        self.dialled: list[tuple[str, str]] = []
        """(call id, number) of every call dialled out, in order."""

    # --- the simulator's side ------------------------------------------------------

    def ring(self, ani: str, *, caller_name: str = "") -> str:
        """A caller rings in; returns the new call id."""
        call_id = f"{self.name}-{next(self._ids)}"
        self._state[call_id] = SimCallState.RINGING
        self._answered[call_id] = asyncio.Event()
        self._events.put_nowait(
            CallArrived(
                call_id=call_id, ani=ani, dnis=self._dnis, line=self.name, caller_name=caller_name
            )
        )
        return call_id

    def caller_hangs_up(self, call_id: str) -> bool:
        """The caller leaves. Returns False if the call had already ended."""
        if call_id not in self._state:
            return False
        self._end(call_id)
        self._events.put_nowait(CallerHungUp(call_id=call_id, line=self.name))
        return True

    async def wait_answered(self, call_id: str) -> None:
        """Return once the engine has answered the call."""
        await self._answered[call_id].wait()

    def state(self, call_id: str) -> SimCallState | None:
        """The live call's state; None once it ended (or never existed)."""
        return self._state.get(call_id)

    # --- the engine's side (the adapter contract) -----------------------------------

    async def events(self) -> AsyncIterator[LineEvent]:
        while True:
            yield await self._events.get()

    async def answer(self, call_id: str) -> None:
        if self._state.get(call_id) is not SimCallState.RINGING:
            raise TelephonyError(
                f"line {self.name!r}: cannot answer call {call_id!r}: "
                f"it is {self._state.get(call_id) or 'not live'}"
            )
        self._state[call_id] = SimCallState.ANSWERED
        self._answered[call_id].set()

    async def hang_up(self, call_id: str) -> None:
        if call_id not in self._state:
            raise TelephonyError(f"line {self.name!r}: no live call {call_id!r} to hang up")
        self._end(call_id)

    async def dial(self, number: str, *, call_id: str | None = None) -> str:
        """The simulated far end answers at once (the simulator models who hangs up)."""
        call_id = call_id or f"{self.name}-out-{next(self._ids)}"
        if call_id in self._state:
            raise TelephonyError(f"line {self.name!r}: call {call_id!r} is already live")
        self._state[call_id] = SimCallState.ANSWERED
        self.dialled.append((call_id, number))
        return call_id

    def request_callback(self, call_id: str, number: str = "") -> bool:
        """The waiting caller presses the callback key. False if the call is not ringing."""
        if self._state.get(call_id) is not SimCallState.RINGING:
            return False
        self._events.put_nowait(CallbackRequested(call_id=call_id, number=number, line=self.name))
        return True

    def _end(self, call_id: str) -> None:
        # Forget ended calls entirely so a long run does not grow; unknown == ended.
        self._state.pop(call_id, None)
        self._answered.pop(call_id, None)
