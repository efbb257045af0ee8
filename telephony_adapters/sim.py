"""The simulator trunk: a line whose calls come from a traffic model, not a wire.

The simulator calls :meth:`SimTrunk.ring` and :meth:`SimTrunk.caller_hangs_up`; the
engine sees ordinary line events. It keeps the adapter contract exactly, so tests and
the demo exercise the same engine code as a modem or a SIP trunk.

A real trunk's far end (the carrier, the PBX) keeps its calls when the engine dies.
For the simulator to do the same across a restart of the engine's process, give it a
*ledger*: a file where the far end notes each call as it rings, is answered and ends.
A ``SimTrunk`` opened on an existing ledger starts with the calls still live in it
and in :meth:`SimTrunk.adopt` keeps the calls
the engine names and announces the others afresh.

Call control: by default the trunk can dial, hold, mute and hold a conference (the
agent desk's actions); pass ``capabilities`` to model a plainer line (a test of what
the desk shows disabled). Held, muted and conferenced calls are kept in
:meth:`SimTrunk.held`, :meth:`SimTrunk.muted` and :meth:`SimTrunk.conferenced`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator, Sequence
from enum import StrEnum
from pathlib import Path

from cti import log_limits
from cti.bus.queues import OneReaderQueue
from cti.errors import TelephonyError
from cti.protocol import CallArrived, CallbackRequested, CallerHungUp
from telephony_adapters.base import (
    DialEnd,
    DialOutcome,
    LineCapabilities,
    LineEvent,
    TelephonyAdapter,
)
from telephony_adapters.call_ids import boot_call_ids

log = logging.getLogger(__name__)


class SimCallState(StrEnum):
    RINGING = "ringing"
    ANSWERED = "answered"


FULL_CONTROL = LineCapabilities(
    can_dial=True,
    can_hold=True,
    can_mute=True,
    can_conference=True,
    reports_dial_outcomes=True,
)
"""What a simulator trunk can do unless told otherwise."""


class SimTrunk(TelephonyAdapter):
    """A simulated trunk: rings on request, tells the caller when they are answered.

    ``ledger``: the far end's file of its calls (see the module docstring), or None.
    """

    def __init__(
        self,
        name: str = "sim",
        *,
        dnis: str = "",
        ledger: str | os.PathLike[str] | None = None,
        capabilities: LineCapabilities = FULL_CONTROL,
    ) -> None:
        self.name = name
        self.capabilities = capabilities
        self._held: set[str] = set()
        self._muted: set[str] = set()
        self._conferenced: set[str] = set()
        self._dnis = dnis
        self._events: OneReaderQueue[LineEvent] = OneReaderQueue()
        """The line events, read by the engine's line task alone (issue 23: ~4 Python calls
        an event, asyncio.Queue's ~12)."""
        self._state: dict[str, SimCallState] = {}
        self._answered: dict[str, asyncio.Event] = {}
        """The ringing calls someone waits to see answered (:meth:`wait_answered`): made
        for a waiter only, not for every call that rings (issue 23: ring -> offer)."""
        self._ids = boot_call_ids(name)
        """New calls' ids (unique across restarts: the engine's journal keeps old ones)."""
        self.dialled: list[tuple[str, str]] = []
        """(call id, number) of every call dialled out, in order."""
        self.far_end: dict[str, DialEnd] = {}
        """How a dial to a number ends (the simulator sets it); any other is answered."""
        self._dial_outcomes: dict[str, DialOutcome] = {}
        self._restored: dict[str, tuple[str, str]] = {}
        """Calls found live in the ledger: call id -> (ani, caller name)."""
        self._ledger: int | None = None
        if ledger is not None:
            self._open_ledger(Path(ledger))

    # --- the simulator's side ------------------------------------------------------

    def ring(self, ani: str, *, caller_name: str = "", dnis: str = "") -> str:
        """A caller rings in (to ``dnis``; empty: the trunk's number); returns the new
        call id."""
        call_id = next(self._ids)
        self._note({"ring": call_id, "ani": ani, "name": caller_name})
        self._state[call_id] = SimCallState.RINGING
        self._announce(call_id, ani, caller_name, dnis or self._dnis)
        return call_id

    def caller_hangs_up(self, call_id: str) -> bool:
        """The caller leaves. Returns False if the call had already ended."""
        if call_id not in self._state:
            return False
        self._end(call_id)
        self._events.put_nowait(CallerHungUp(call_id=call_id, line=self.name))
        return True

    async def wait_answered(self, call_id: str) -> None:
        """Return once the engine has answered the call. Raises ``KeyError`` for a call
        the trunk does not have (ended, or never rung)."""
        state = self._state[call_id]
        if state is SimCallState.RINGING:
            await self._answered.setdefault(call_id, asyncio.Event()).wait()

    def state(self, call_id: str) -> SimCallState | None:
        """The live call's state; None once it ended (or never existed)."""
        return self._state.get(call_id)

    def calls(self) -> dict[str, SimCallState]:
        """Every live call and its state."""
        return dict(self._state)

    def held(self, call_id: str) -> bool:
        """Whether the live call is on hold."""
        return call_id in self._held

    def muted(self, call_id: str) -> bool:
        """Whether the agent's voice is kept from the caller on the live call."""
        return call_id in self._muted

    def conferenced(self, call_id: str) -> bool:
        """Whether the caller was brought into a consultation (all talk together)."""
        return call_id in self._conferenced

    # --- the engine's side (the adapter contract) -----------------------------------

    async def events(self) -> AsyncIterator[LineEvent]:
        while True:
            yield await self._events.get()

    async def answer(self, call_id: str) -> None:
        if self._state.get(call_id) is SimCallState.ANSWERED:
            return  # answered already (for its greeting): the agent's accept changes nothing
        if self._state.get(call_id) is not SimCallState.RINGING:
            raise TelephonyError(
                f"line {self.name!r}: cannot answer call {call_id!r}: "
                f"it is {self._state.get(call_id) or 'not live'}"
            )
        self._note({"answer": call_id})
        self._state[call_id] = SimCallState.ANSWERED
        waited = self._answered.pop(call_id, None)
        if waited is not None:
            waited.set()

    async def hang_up(self, call_id: str) -> None:
        if call_id not in self._state:
            raise TelephonyError(f"line {self.name!r}: no live call {call_id!r} to hang up")
        self._end(call_id)

    async def dial(self, number: str, *, call_id: str | None = None) -> str:
        """The simulated far end answers at once (the simulator models who hangs up),
        unless :attr:`far_end` says otherwise for the number: then the call ends so
        (with ``CallerHungUp``, or up for a machine)."""
        call_id = call_id or next(self._ids)
        if call_id in self._state:
            raise TelephonyError(f"line {self.name!r}: call {call_id!r} is already live")
        self._note({"dial": call_id, "number": number})
        self._state[call_id] = SimCallState.ANSWERED
        self.dialled.append((call_id, number))
        end = self.far_end.get(number, DialEnd.ANSWERED)
        self._dial_outcomes[call_id] = DialOutcome(call_id, end, f"simulated {end.value}")
        while len(self._dial_outcomes) > 1000:
            del self._dial_outcomes[next(iter(self._dial_outcomes))]
        if end not in (DialEnd.ANSWERED, DialEnd.MACHINE):
            self.caller_hangs_up(call_id)
        return call_id

    async def dial_outcome(self, call_id: str) -> DialOutcome:
        """At once: the simulated far end decides as the number is dialled
        (:attr:`far_end`)."""
        outcome = self._dial_outcomes.get(call_id)
        if outcome is None:
            raise TelephonyError(f"line {self.name!r} did not dial {call_id!r} (or long ago)")
        return outcome

    async def hold(self, call_id: str) -> None:
        self._connected(call_id, "hold", self.capabilities.can_hold)
        self._held.add(call_id)

    async def resume(self, call_id: str) -> None:
        self._connected(call_id, "resume", self.capabilities.can_hold)
        self._held.discard(call_id)
        self._conferenced.discard(call_id)

    async def mute(self, call_id: str, muted: bool) -> None:
        self._connected(call_id, "mute", self.capabilities.can_mute)
        if muted:
            self._muted.add(call_id)
        else:
            self._muted.discard(call_id)

    async def conference(self, call_id: str) -> None:
        self._connected(call_id, "conference", self.capabilities.can_conference)
        self._held.discard(call_id)
        self._conferenced.add(call_id)

    def request_callback(self, call_id: str, number: str = "") -> bool:
        """The waiting caller presses the callback key. False if the call is not ringing."""
        if self._state.get(call_id) is not SimCallState.RINGING:
            return False
        self._events.put_nowait(CallbackRequested(call_id=call_id, number=number, line=self.name))
        return True

    async def adopt(self, call_ids: Sequence[str]) -> Sequence[str]:
        """Keep the named calls the trunk still has; announce the ledger's others anew."""
        kept = [call_id for call_id in call_ids if call_id in self._state]
        named = set(call_ids)
        for call_id, (ani, caller_name) in self._restored.items():
            if call_id not in named and call_id in self._state:
                # The engine never heard of it: it rang as the engine died.
                self._state[call_id] = SimCallState.RINGING
                self._announce(call_id, ani, caller_name, self._dnis)
        self._restored.clear()
        return kept

    async def stop(self) -> None:
        ledger, self._ledger = self._ledger, None
        if ledger is not None:
            os.close(ledger)

    # --- internals -----------------------------------------------------------------

    def _announce(self, call_id: str, ani: str, caller_name: str, dnis: str) -> None:
        self._events.put_nowait(
            CallArrived(
                call_id=call_id, ani=ani, dnis=dnis, line=self.name, caller_name=caller_name
            )
        )

    def _connected(self, call_id: str, what: str, can: bool) -> None:
        """Raise unless the line can do ``what`` and ``call_id`` is connected."""
        if not can:
            raise TelephonyError(f"line {self.name!r} cannot {what} calls (asked for {call_id!r})")
        if self._state.get(call_id) is not SimCallState.ANSWERED:
            raise TelephonyError(
                f"line {self.name!r}: cannot {what} call {call_id!r}: "
                f"it is {self._state.get(call_id) or 'not live'}"
            )

    def _end(self, call_id: str) -> None:
        # Forget ended calls entirely so a long run does not grow; unknown == ended.
        self._note({"end": call_id})
        self._state.pop(call_id, None)
        self._answered.pop(call_id, None)
        self._held.discard(call_id)
        self._muted.discard(call_id)
        self._conferenced.discard(call_id)

    def _note(self, entry: dict[str, str]) -> None:
        """Append one line to the ledger: one unbuffered write, kept if the process dies."""
        if self._ledger is not None:
            os.write(self._ledger, (json.dumps(entry, ensure_ascii=False) + "\n").encode())

    def _open_ledger(self, path: Path) -> None:
        """Take up the calls still live in the ledger at ``path``, then append to it."""
        try:
            text = path.read_text("utf-8", errors="replace")
        except FileNotFoundError:
            text = ""
        except OSError as exc:
            raise TelephonyError(
                f"line {self.name!r}: cannot read its ledger {path}: {exc}"
            ) from exc
        for line_no, raw in enumerate(text.splitlines(), start=1):
            try:
                entry = json.loads(raw)
                if "ring" in entry:
                    call_id = str(entry["ring"])
                    self._restored[call_id] = (str(entry["ani"]), str(entry.get("name", "")))
                    self._state[call_id] = SimCallState.RINGING
                elif "dial" in entry:  # a call the engine placed: it knows it already
                    call_id = str(entry["dial"])
                    self._state[call_id] = SimCallState.ANSWERED
                elif "answer" in entry and str(entry["answer"]) in self._state:
                    self._state[str(entry["answer"])] = SimCallState.ANSWERED
                elif "end" in entry:
                    self._state.pop(str(entry["end"]), None)
                    self._restored.pop(str(entry["end"]), None)
            except (ValueError, KeyError, TypeError, AttributeError):
                # A line cut short when the process died: the write never happened.
                log_limits.warning(log, "ledger %s: line %d ignored: %r", path, line_no, raw[:80])
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._ledger = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise TelephonyError(
                f"line {self.name!r}: cannot open its ledger {path}: {exc}"
            ) from exc
