"""A transfer to a number by a second trunk leg, when the trunk will not take a REFER.

The line asks the trunk first (REFER, :meth:`.line.SipLine.transfer`). When the trunk
refuses the REFER itself (405, 501, 603..., or the REFER unanswered) or says nothing
final within the line's time-out, :func:`bridge_out` places a second outbound call on
the same line to the same place (``<call_id>^out``, Request-URI as the REFER's
Refer-To) and, once it answers, bridges the caller's leg to it in the relay: the
agents' phone legs end, the recording closes, and the engine hears "transferred"
through the usual :meth:`~.line.SipLine.transfer_outcome`. While it rings the caller
hears the call's music (the queue's, as on hold) and the agent silence; if it does not
answer (busy, rejected, no answer within the line's ``dial_timeout_s``) the caller is
back with the agent and the desk gets the reason.

A trunk that took the REFER but reports the target failed (a final NOTIFY that is not
2xx: busy, no answer) is not tried again this way: the number itself failed.

:class:`OutLegs` keeps, per call, its second leg (rung or bridged); the voice
(:class:`~.voice.SipVoice`) owns one and asks it how a call's legs are wired
(:meth:`OutLegs.rewired`) and what the end of a leg means (:meth:`OutLegs.left`): the
bridged pair ends together, and the engine hears one ``CallerHungUp`` for the call,
whichever side hung up (the out leg's own end is never the engine's).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cti.errors import TelephonyError
from telephony_adapters.base import DialEnd, DialOutcome, TransferResult
from telephony_adapters.media.wiring import Wiring
from telephony_adapters.sipline.effects import TransferOutcome

_OUT = "^out"
_GONE_KEPT = 1000


def out_leg_id(call_id: str) -> str:
    """The id of ``call_id``'s second trunk leg (a call of its own on the line)."""
    return f"{call_id}{_OUT}"


def refer_refused(progress: Sequence[TransferOutcome]) -> bool:
    """Whether a failed transfer's progress (the REFER's response, then the NOTIFYs)
    says the trunk would not transfer: the REFER refused or unanswered (its response
    is final and not 2xx), or nothing final at all (no final NOTIFY in time)."""
    if not any(t.final for t in progress):
        return True
    return progress[0].final and progress[0].status >= 300


def caller_aside(new: Wiring, caller: str) -> Wiring:
    """``new`` with ``caller`` out of its room (a pair left of two, a mix of more) and
    hearing the music."""
    if caller not in new.legs:
        return new
    pairs = [pair for pair in new.pairs if caller not in pair]
    mixes: list[tuple[str, ...]] = []
    for group in new.mixes:
        rest = tuple(leg for leg in group if leg != caller)
        if len(rest) == 2:
            pairs.append((rest[0], rest[1]))
        elif len(rest) > 2:
            mixes.append(rest)
    return dataclasses.replace(new, pairs=tuple(pairs), mixes=tuple(mixes),
                               music=new.music | {caller})  # fmt: skip


@dataclass(slots=True)
class _Out:
    call_id: str
    leg: str
    bridged: bool = False


class OutLegs:
    """The second trunk legs of one line's calls (module docstring)."""

    def __init__(self) -> None:
        self._targets: dict[str, str] = {}
        """Call id -> where its transfer asked last goes (a SIP URI)."""
        self._by_call: dict[str, _Out] = {}
        self._by_leg: dict[str, _Out] = {}
        self._gone: dict[str, None] = {}
        """Out legs over (the last 1,000): their late ends are no caller's."""

    def asked(self, call_id: str, target: str) -> None:
        """A transfer of ``call_id`` to ``target`` was asked of the trunk."""
        self._targets[call_id] = target

    def target(self, call_id: str) -> str:
        return self._targets.get(call_id, "")

    def ringing(self, call_id: str) -> str:
        """``call_id``'s second leg is being placed: its id (the caller hears music)."""
        out = _Out(call_id, out_leg_id(call_id))
        self._by_call[call_id] = self._by_leg[out.leg] = out
        return out.leg

    def bridge(self, call_id: str) -> None:
        if (out := self._by_call.get(call_id)) is not None:
            out.bridged = True

    def bridged(self, call_id: str) -> bool:
        """Whether the caller of ``call_id`` talks to its second leg (no agent left)."""
        out = self._by_call.get(call_id)
        return out is not None and out.bridged

    def call_of(self, leg: str) -> str | None:
        """The call whose second leg ``leg`` is (None: not one, or over)."""
        out = self._by_leg.get(leg)
        return out.call_id if out is not None else None

    def drop(self, call_id: str) -> str | None:
        """Forget ``call_id``'s second leg (failed, or the call is over): its id."""
        self._targets.pop(call_id, None)
        out = self._by_call.pop(call_id, None)
        if out is None:
            return None
        del self._by_leg[out.leg]
        self._gone[out.leg] = None
        while len(self._gone) > _GONE_KEPT:
            del self._gone[next(iter(self._gone))]
        return out.leg

    def left(self, leg: str) -> tuple[bool, str]:
        """The far end of ``leg`` left: (whether it is a second leg, and if so the call
        whose caller must be hung up now: its bridged partner, else "")."""
        out = self._by_leg.get(leg)
        if out is None:
            return leg in self._gone, ""
        self.drop(out.call_id)
        return True, out.call_id if out.bridged else ""

    def rewired(self, call_id: str, new: Wiring) -> Wiring:
        """The call's wiring with its second leg: while it rings the caller hears music;
        bridged, the caller and the leg hear each other (nothing else is up)."""
        out = self._by_call.get(call_id)
        if out is None:
            return new
        if not out.bridged:
            return caller_aside(new, call_id)
        pair = (call_id, out.leg)
        return Wiring(legs=frozenset(pair), pairs=(pair,))

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._by_call


class BridgingLine(Protocol):
    """What :func:`bridge_out` asks of the line."""

    async def dial(self, number: str, *, call_id: str | None = None) -> str: ...
    async def dial_outcome(self, call_id: str) -> DialOutcome: ...
    def end_leg(self, leg: str) -> None: ...


class BridgingVoice(Protocol):
    """What :func:`bridge_out` asks of the voice (:class:`~.voice.SipVoice`)."""

    outs: OutLegs

    def out_leg(self, call_id: str, *, bridged: bool = False) -> bool:
        """Wire the call again as its second leg is (``bridged``: also end the agents'
        legs and the recording); False: no such call."""


async def bridge_out(
    line: BridgingLine, voice: BridgingVoice, call_id: str, refused: str
) -> TransferResult:
    """Transfer ``call_id`` by a second leg to the target of its last transfer
    (``refused``: how the REFER failed, for the desk's note)."""
    said = f"the REFER: {refused}"
    outs, target = voice.outs, voice.outs.target(call_id)
    if not target or call_id in outs:
        return TransferResult(call_id, False, said)
    leg = outs.ringing(call_id)
    if not voice.out_leg(call_id):  # the caller is gone
        outs.drop(call_id)
        return TransferResult(call_id, False, said)
    try:
        await line.dial(target, call_id=leg)
        outcome = await line.dial_outcome(leg)
    except TelephonyError as exc:
        outcome = DialOutcome(leg, DialEnd.FAILED, str(exc))
    if outcome.end is DialEnd.ANSWERED:
        if call_id in outs:
            outs.bridge(call_id)
            voice.out_leg(call_id, bridged=True)
            return TransferResult(call_id, True, f"{said}; bridged to a second trunk leg")
        line.end_leg(leg)  # the caller left as it answered
        outcome = DialOutcome(leg, DialEnd.FAILED, "the caller hung up")
    outs.drop(call_id)
    voice.out_leg(call_id)  # back with the agent, as the engine's plan says
    return TransferResult(call_id, False, f"{said}; the second trunk leg: "
                          f"{outcome.detail or outcome.end.value}")  # fmt: skip
