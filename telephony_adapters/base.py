"""The contract every telephony line keeps.

A line turns what happens on a wire (a SIP INVITE, a modem's RING with caller ID, a
simulated arrival) into line events, and carries out the engine's requests (answer,
hang up, dial). The engine knows lines only through this class.

Contract:

* :meth:`events` yields :class:`~cti.protocol.CallArrived` once per call, before any
  other event of that call, and :class:`~cti.protocol.CallerHungUp` at most once, when
  the far end leaves (while ringing, waiting or talking). A line whose callers can ask
  for a callback while waiting (a key press) yields
  :class:`~cti.protocol.CallbackRequested`. A line that hears the caller's keys (DTMF)
  may yield :class:`~cti.protocol.DtmfReceived` while a call is connected (answered,
  before it ends), once per key press. ``call_id`` is unique per line
  across restarts and machines (:func:`~telephony_adapters.call_ids.boot_call_ids`):
  the engine's journal and records keep the ids of earlier processes. ``ani`` is the
  number exactly as the line received it: possibly empty, a privacy marker, or
  garbage; the engine normalises it.
* :meth:`answer` connects a ringing call (a call answered already, e.g. by the engine
  for its greeting, stays as it is). :meth:`hang_up` ends a call from our side
  and produces no ``CallerHungUp``. Both raise :class:`~cti.errors.TelephonyError` for
  a call the line does not have (it may have just ended), and never anything else.
* Capabilities say what the line can do; a request beyond them raises
  ``TelephonyError``. Consoles show such actions disabled.
* :meth:`start` and :meth:`stop` open and close the line; ``stop`` is safe to call twice.
* A line whose ``capabilities.reports_dial_outcomes`` is set tells how each of its
  own dials ended: :meth:`dial_outcome` waits for it (see there). Without it, all one
  knows is that :meth:`dial` returned.
* A line that carries the voice keeps standing connections to agents' phones when asked
  (:meth:`keep_phone`, for agents with ``phone_mode = "persistent"``): the phone is
  called once and answers by itself; a plan that rings such an agent bridges the call
  into that leg and the line reports ``PhoneAnswered`` at once; the agent leaving the
  call leaves the leg up (silence); the phone ending it is
  :class:`~cti.protocol.PhoneDisconnected`.
* A line whose agents' phones can transfer their calls themselves (a transfer key: a
  SIP REFER) yields :class:`~cti.events.TransferAsked` (the call, the agent, what the
  phone dialled) and leaves the call as it is; the engine carries it out as the
  desk's transfer and answers with :meth:`transfer_asked_outcome`, which the line
  tells the phone.
* After a restart of the engine, :meth:`adopt` is called once (after ``start``, before
  ``events`` is read) with the calls the engine's journal says are still on this line;
  the line keeps those it still has. See :meth:`adopt`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from cti.errors import TelephonyError
from cti.events import TransferAsked
from cti.protocol import (
    CallArrived,
    CallbackRequested,
    CallerHungUp,
    DtmfReceived,
    PhoneAnswered,
    PhoneDisconnected,
    PhoneHungUp,
    PhoneReachability,
    PhoneRefused,
    RecordingFinished,
)

LineEvent = (
    CallArrived
    | CallerHungUp
    | CallbackRequested
    | DtmfReceived
    | PhoneAnswered
    | PhoneRefused
    | PhoneHungUp
    | PhoneDisconnected
    | PhoneReachability
    | TransferAsked
    | RecordingFinished
)

CALLER = "caller"
"""The caller's side of a call in an :class:`AudioPlan` (every other name is an agent id)."""


@dataclass(frozen=True, slots=True)
class LineCapabilities:
    can_dial: bool = False
    can_transfer: bool = False
    can_hold: bool = False
    can_ring_many: bool = False
    """Can offer one call to several agents at once (ring-all)."""
    can_mute: bool = False
    """Can stop the agent's voice reaching the caller (:meth:`TelephonyAdapter.mute`)."""
    can_conference: bool = False
    """Can bring a held caller into a consultation (:meth:`TelephonyAdapter.conference`)."""
    reports_dial_outcomes: bool = False
    """:meth:`TelephonyAdapter.dial_outcome` says how each dial ended."""
    carries_voice: bool = False
    """The line carries the conversation to the agents' phones (:meth:`TelephonyAdapter.
    plan_audio`) and reports their phones (``Phone*`` events); its hold, mute, transfer
    and conference are the engine's audio plans, not requests to the far end."""


@dataclass(frozen=True, slots=True)
class Ring:
    """Ring an agent's phone for a call, showing ``display`` (the caller's name and number);
    ``auto_answer``: the phone picks up by itself (the agent accepted on the desk)."""

    agent_id: str
    display: str = ""
    auto_answer: bool = False


@dataclass(frozen=True, slots=True)
class Prompt:
    """Clips (WAV files, 8 kHz mono) played once, in order, to the caller: a greeting, a
    menu, a place in line. ``serial`` tells one playing from the next: the same files with
    a new serial play again from the start; a plan that drops the prompt (or names another
    serial) stops it at once (the caller pressed a key)."""

    serial: int
    files: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AudioPlan:
    """Who hears whom on one call, as the engine wants it now (a line that carries the voice
    makes it so). The parties are :data:`CALLER` and agent ids.

    ``rooms``: each room's parties hear each other (two: a bridge; three or more: a
    conference, each hearing the sum of the others). ``music``: parties that hear the hold
    music (``music_file``; empty: the line's own). ``muted``: parties nobody hears. An agent
    named anywhere in the plan (``ring`` included) keeps or gets a leg to its phone; an agent
    the plan no longer names has its leg ended. A caller in no room and not in ``music``
    hears silence. ``record``: record the call (stereo, caller and agents) while agents talk
    to the caller; ``record_paused``: recording paused (written as silence, marked).

    ``prompt``: played to the caller while it is in no room, in place of music or silence
    (which resume when it ends). ``message``: a voicemail being left: the caller's voice
    alone is recorded to this file (relative to the recordings folder) until a plan drops
    it, then the line reports :class:`~cti.protocol.RecordingFinished` with ``kind =
    "message"``.
    """

    ring: tuple[Ring, ...] = ()
    rooms: tuple[frozenset[str], ...] = ()
    music: frozenset[str] = frozenset()
    music_file: str = ""
    muted: frozenset[str] = frozenset()
    record: bool = False
    record_paused: bool = False
    prompt: Prompt | None = None
    message: str = ""

    def agents(self) -> frozenset[str]:
        """Every agent the plan keeps a phone leg for."""
        named = {r.agent_id for r in self.ring} | self.music | set().union(*self.rooms)
        return frozenset(named - {CALLER})


class DialEnd(StrEnum):
    """How a dial placed by :meth:`TelephonyAdapter.dial` ended, as far as the line knows."""

    ANSWERED = "answered"
    """The far end picked up (a person, or something the line cannot tell from one)."""
    MACHINE = "machine"
    """An answering machine picked up (only a line that detects them says so)."""
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    """It rang out, or we gave up ringing (our own time-out)."""
    REJECTED = "rejected"
    """Declined by the called party, or refused by the network (``detail`` says which)."""
    FAILED = "failed"
    """Not placed or not reached: no dial tone, a bad number, refused credentials, no
    response, the line going away."""


@dataclass(frozen=True, slots=True)
class DialOutcome:
    """The end of one dial's progress: ``call_id`` answered, or gone with the reason.

    ``detail`` is the line's own words (``486 Busy Here``, ``NO DIALTONE``) for logs and
    people; ``end`` is what a program goes by. After ``ANSWERED`` and ``MACHINE`` the call
    is up (hang it up when done); after any other end it is over on the line, which also
    yields ``CallerHungUp`` for it."""

    call_id: str
    end: DialEnd
    detail: str = ""


@dataclass(frozen=True, slots=True)
class TransferResult:
    """How a blind transfer by :meth:`TelephonyAdapter.transfer` ended: ``transferred``
    (the call has left this line, no ``CallerHungUp`` follows) or not (the caller is still
    connected here); ``detail`` is the line's word (``603 Declined``) for people. A line
    that transferred by bridging the caller to a second call of its own (a SIP trunk that
    refuses REFER) keeps the caller's leg up and yields one ``CallerHungUp`` when that
    pair ends: for the engine, a repeat of the end it saw at the transfer."""

    call_id: str
    transferred: bool
    detail: str = ""


class TelephonyAdapter(ABC):
    """One line (trunk, modem, simulator). See the module docstring for the contract."""

    name: str
    capabilities: LineCapabilities

    def keep_state_beside(self, journal: Path) -> None:  # noqa: B027 - optional hook
        """Called before :meth:`start` by an engine that journals (``journal`` is its
        journal's file): a line whose calls outlive the engine's process (SIP dialogs)
        keeps what it needs to take them up again in a file beside it. The default keeps
        nothing."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open the line. The default does nothing."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Close the line. The default does nothing."""

    @abstractmethod
    def events(self) -> AsyncIterator[LineEvent]:
        """The line's call events, in the order they happened."""

    @abstractmethod
    async def answer(self, call_id: str) -> None:
        """Connect a ringing call."""

    @abstractmethod
    async def hang_up(self, call_id: str) -> None:
        """End a call from our side."""

    async def adopt(self, call_ids: Sequence[str]) -> Sequence[str]:
        """After a restart, the engine believes these calls are live: return those the line
        still has.

        ``call_ids`` are this line's calls that the engine, having replayed its journal,
        has not finished: waiting, offered, talking, or in wrap-up (whose caller may be
        gone already). The line returns the ones it still has (the far end kept them
        while the engine was down); from then on they keep this contract as if they had
        arrived in this process (``answer``, ``hang_up``, one ``CallerHungUp``). The
        engine routes every other one as hung up by the caller, so nothing is left
        dangling. Live calls the engine did not name (they arrived as it died, or while
        it was down) the line announces with ``CallArrived`` as usual.

        The default keeps nothing: right for a line whose calls drop with the engine's
        process (a modem on our serial port).
        """
        return []

    async def dial(self, number: str, *, call_id: str | None = None) -> str:
        """Place an outbound call; returns its call id (``call_id`` if given, so that a
        callback keeps the id the engine knows it by). The far end hanging up later is a
        :class:`~cti.protocol.CallerHungUp` like any other."""
        raise TelephonyError(f"line {self.name!r} cannot dial out (asked to dial {number!r})")

    async def dial_outcome(self, call_id: str) -> DialOutcome:
        """Wait until the dial of ``call_id`` is answered or has ended
        (``capabilities.reports_dial_outcomes``); return at once if it already has.

        The line keeps each outcome for a while after the dial ends (at least its last
        100 dials), so the waiter may come late. It does not time out by itself beyond the
        line's own dial time-out: wrap it in ``asyncio.timeout`` and :meth:`hang_up` (which
        cancels the ringing call) when the caller stops waiting. Raises
        :class:`~cti.errors.TelephonyError` for a line that does not report outcomes and
        for a call it never dialled.
        """
        raise TelephonyError(
            f"line {self.name!r} does not report how its dials end (asked for {call_id!r})"
        )

    async def hold(self, call_id: str) -> None:
        """Put a connected call on hold (``capabilities.can_hold``)."""
        raise TelephonyError(f"line {self.name!r} cannot hold calls (asked for {call_id!r})")

    async def resume(self, call_id: str) -> None:
        """Take a held call off hold (``capabilities.can_hold``)."""
        raise TelephonyError(f"line {self.name!r} cannot hold calls (asked for {call_id!r})")

    async def transfer(self, call_id: str, target: str) -> None:
        """Blind-transfer a connected call to ``target`` (``capabilities.can_transfer``).
        When the far end reports success the call ends on this line, as after
        :meth:`hang_up` (no ``CallerHungUp``); on failure it stays connected."""
        raise TelephonyError(
            f"line {self.name!r} cannot transfer calls (asked to send {call_id!r} to {target!r})"
        )

    async def transfer_outcome(self, call_id: str) -> TransferResult:
        """Wait until the transfer of ``call_id`` asked last has worked or failed (the line
        gives up by itself after its own time-out). Raises
        :class:`~cti.errors.TelephonyError` for a call with no transfer asked."""
        raise TelephonyError(f"line {self.name!r} cannot transfer calls (asked for {call_id!r})")

    async def mute(self, call_id: str, muted: bool) -> None:
        """Stop (``muted``) or let through again the agent's voice to the caller on a
        connected call (``capabilities.can_mute``)."""
        raise TelephonyError(f"line {self.name!r} cannot mute calls (asked for {call_id!r})")

    async def plan_audio(self, call_id: str, plan: AudioPlan) -> None:
        """Make the audio of ``call_id`` follow ``plan`` (``capabilities.carries_voice``).
        Idempotent: the engine sends the whole plan after every change. Raises
        :class:`~cti.errors.TelephonyError` for a call the line does not have."""
        raise TelephonyError(f"line {self.name!r} carries no voice (asked for {call_id!r})")

    async def keep_phone(self, agent_id: str, keep: bool) -> None:
        """Hold (``keep``) or end the standing connection to ``agent_id``'s phone
        (``capabilities.carries_voice``; see the module docstring). Idempotent: keeping a
        connection that is up or being set up, or releasing one there is not, does nothing.
        Raises :class:`~cti.errors.TelephonyError` when the phone cannot be called (not
        reachable on this line); a refused or unanswered call comes later as
        :class:`~cti.protocol.PhoneDisconnected`."""
        raise TelephonyError(
            f"line {self.name!r} carries no voice (asked to keep the phone of {agent_id!r})"
        )

    async def transfer_asked_outcome(  # noqa: B027 - optional hook
        self, call_id: str, agent_id: str, status: int, reason: str = ""
    ) -> None:
        """How the transfer ``agent_id``'s phone asked (:class:`~cti.events.TransferAsked`)
        went, for the line to tell the phone: ``status`` 200 transferred, 480 the target
        cannot take it now (an agent not Ready, a number that did not answer), 603
        refused (no such target, not allowed); ``reason`` says why for people. The
        default does nothing (a line that never yields ``TransferAsked``)."""

    async def conference(self, call_id: str) -> None:
        """Bring a held caller back into a consultation, so caller and both agents talk
        together (``capabilities.can_conference``)."""
        raise TelephonyError(f"line {self.name!r} cannot hold a conference (asked for {call_id!r})")
