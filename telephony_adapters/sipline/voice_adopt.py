"""Agent legs across a restart of the process, on a line that carries the voice.

The line saves every agent leg as it saves the caller's call (:mod:`.saved_calls`:
the dialog with the phone, its media plan, our RTP port, the agent). When the new
process adopts the engine's calls (:meth:`.line.SipLine.adopt`):

- an answered leg to a phone (``<call>~<agent>`` or ``<call>~<agent>~<n>``) whose call
  the engine names is kept with it: named to the user agent beside its call, taken up
  by the voice as that call's answered :class:`~.phone_legs.PhoneLeg`
  (:meth:`.voice.SipVoice.take_up`), its relay leg opened on its saved port (a
  re-INVITE when that port is taken), so the engine's first plan after the restart
  bridges it without ringing the phone;
- such a leg whose call is not kept is hung up (BYE);
- a persistent agent's standing leg (``standing~<agent>~<token>``) is hung up (BYE) and
  reported ``PhoneDisconnected``: the restarted engine has not asked for it, and the
  agent's next Ready calls the phone again. A leg still ringing is cancelled (the
  user agent's rule for calls we were dialling); the plan rings the phone again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cti.protocol import PhoneDisconnected
from telephony_adapters.base import LineEvent
from telephony_adapters.sipline.useragent import UserAgent

STANDING_PREFIX = "standing~"
RESTART_REASON = "the engine restarted; the phone is called again when the agent is Ready"


@dataclass(frozen=True, slots=True)
class SavedLeg:
    """An answered agent leg taken up from the dialog store."""

    leg_id: str
    call_id: str
    agent_id: str
    n: int
    """The leg's number among the call's legs to that phone (1 for ``<call>~<agent>``)."""


@dataclass(slots=True)
class RestoredLegs:
    """The agent legs among the calls a new process restored, before :meth:`adopt`."""

    in_calls: dict[str, SavedLeg] = field(default_factory=dict)
    """By leg id: answered legs to a phone in a caller's call."""
    standing: dict[str, str] = field(default_factory=dict)
    """Leg id -> agent: persistent agents' standing legs."""

    def named(self, call_ids: Sequence[str]) -> list[str]:
        """``call_ids`` and the legs in those calls: what the user agent keeps."""
        calls = set(call_ids)
        legs = [leg.leg_id for leg in self.in_calls.values() if leg.call_id in calls]
        return [*call_ids, *legs]


def call_of_leg(leg_id: str, agent_id: str) -> tuple[str, int] | None:
    """The caller's call and the leg's number of an agent leg id ``<call>~<agent>``
    or ``<call>~<agent>~<n>``; None for any other form."""
    head, _, tail = leg_id.rpartition("~")
    n = 1
    if tail.isdigit() and head.endswith(f"~{agent_id}"):
        leg_id, n = head, int(tail)
    call_id, sep, agent = leg_id.rpartition("~")
    if not sep or not call_id or agent != agent_id or n < 1:
        return None
    return call_id, n


def restored_legs(ua: UserAgent) -> RestoredLegs:
    """The agent legs among ``ua``'s restored calls (read before it adopts them)."""
    found = RestoredLegs()
    for leg_id in ua.saved.restored:
        call = ua.calls.get(leg_id)
        if call is None or not call.agent:
            continue
        if leg_id.startswith(STANDING_PREFIX):
            found.standing[leg_id] = call.agent
            continue
        parent = call_of_leg(leg_id, call.agent)
        if parent is not None and call.state == "confirmed":
            found.in_calls[leg_id] = SavedLeg(leg_id, parent[0], call.agent, parent[1])
    return found


class AdoptingVoice(Protocol):
    """What taking legs up asks of the voice (:class:`.voice.SipVoice`)."""

    def take_up(self, leg_id: str, call_id: str, agent_id: str, n: int) -> None: ...


class AdoptingLine(Protocol):
    """What taking legs up asks of the line."""

    name: str

    def end_leg(self, leg: str) -> None: ...
    def emit(self, event: LineEvent) -> None: ...


def take_up_legs(
    voice: AdoptingVoice, line: AdoptingLine, legs: RestoredLegs, kept: Sequence[str]
) -> tuple[list[str], list[str]]:
    """After the user agent adopted ``legs.named(...)`` and kept ``kept``: the voice
    takes up the legs whose call is kept, the others are hung up, standing legs'
    agents hear ``PhoneDisconnected``. Returns (the callers' calls kept, the legs
    taken up): both have their media resumed."""
    kept_set = set(kept)
    callers = [c for c in kept if c not in legs.in_calls and c not in legs.standing]
    taken: list[str] = []
    for leg in legs.in_calls.values():
        if leg.leg_id not in kept_set:
            continue  # not named (its call is gone): the user agent ended it
        if leg.call_id in kept_set:
            voice.take_up(leg.leg_id, leg.call_id, leg.agent_id, leg.n)
            taken.append(leg.leg_id)
        else:
            line.end_leg(leg.leg_id)
    for agent in sorted(set(legs.standing.values())):
        line.emit(PhoneDisconnected(agent_id=agent, reason=RESTART_REASON, line=line.name))
    return callers, taken
