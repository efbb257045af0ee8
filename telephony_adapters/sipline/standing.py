"""Standing legs: the persistent connection to an agent's phone (``phone_mode =
"persistent"``).

The engine asks the line to keep an agent's phone at login (and again on each Ready)
and to release it at logout (:meth:`~telephony_adapters.base.TelephonyAdapter.
keep_phone`). :class:`StandingLegs` calls the phone once, with auto-answer, on a leg of
its own (``standing~<agent>~<token>``, no call's) that hears silence between calls and
has no silence time-out while idle. A call whose plan rings that agent takes the leg
(:meth:`StandingLegs.take`) instead of ringing: the caller is bridged into it at once.
When the plan no longer names the agent the leg is given back (:meth:`StandingLegs.
give_back`: silence, unmuted, not recorded), never hung up; release ends it (BYE).

This module keeps the legs and their media; :class:`~.voice.SipVoice` ties them to its
calls and reports to the engine (``PhoneAnswered`` when a call takes the leg,
``PhoneDisconnected`` when the phone ends it).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Protocol

from cti.errors import TelephonyError
from telephony_adapters.base import LineEvent

DISPLAY = "CTI Desk"
"""What the phone's screen shows for its standing connection."""


class StandingLine(Protocol):
    """What standing legs ask of the line (:class:`~.voice.LineSide` extends it)."""

    async def ring_agent(
        self,
        call_id: str,
        agent_id: str,
        *,
        caller: tuple[str, str] = ("", ""),
        auto_answer: bool = False,
        timeout_s: float | None = None,
        leg: str = "",
    ) -> str: ...

    def end_leg(self, leg: str) -> None: ...

    def emit(self, event: LineEvent) -> None: ...


class StandingMedia(Protocol):
    """What standing legs ask of the media relay."""

    def close_leg(self, leg_id: str) -> None: ...
    def silence(self, leg_id: str) -> None: ...
    def mute(self, leg_id: str, muted: bool) -> None: ...
    def untap(self, leg_id: str, tap: str) -> None: ...
    def set_timeout(self, leg_id: str, timeout_s: float | None) -> None: ...


@dataclass(slots=True)
class StandingLeg:
    """One agent's standing connection."""

    agent_id: str
    leg_id: str
    answered: bool = False
    media: bool = False
    """Its media started (the relay knows where to send)."""
    expects_audio: bool = True
    """The phone said it sends audio (not on hold): a silence time-out applies in calls."""
    call_id: str = ""
    """The call it is bridged into ("" between calls)."""

    @property
    def up(self) -> bool:
        return self.answered and self.media


class StandingLegs:
    """The standing legs of one line, by agent (module docstring). ``withdrawn``: the
    voice's set of legs whose late progress and media are ignored (shared)."""

    def __init__(
        self,
        line: StandingLine,
        media: StandingMedia,
        *,
        silence_s: float,
        withdrawn: set[str],
    ) -> None:
        self._line = line
        self._media = media
        self._silence_s = silence_s
        self._withdrawn = withdrawn
        self._legs: dict[str, StandingLeg] = {}
        self._by_leg: dict[str, str] = {}

    def __contains__(self, leg_id: object) -> bool:
        return leg_id in self._by_leg

    def of_leg(self, leg_id: str) -> StandingLeg | None:
        agent = self._by_leg.get(leg_id)
        return self._legs.get(agent) if agent is not None else None

    def of_agent(self, agent_id: str) -> StandingLeg | None:
        return self._legs.get(agent_id)

    async def keep(self, agent_id: str) -> None:
        """Call the phone (auto-answer) unless its standing leg is up or being set up.
        Raises TelephonyError when it cannot be called (not reachable)."""
        if agent_id in self._legs:
            return
        leg_id = f"standing~{agent_id}~{secrets.token_hex(6)}"
        standing = self._legs[agent_id] = StandingLeg(agent_id, leg_id)
        self._by_leg[leg_id] = agent_id
        try:
            await self._line.ring_agent(leg_id, agent_id, caller=(DISPLAY, ""),
                                        auto_answer=True, leg=leg_id)  # fmt: skip
        except TelephonyError:
            self._forget(standing)
            raise
        if self._legs.get(agent_id) is not standing:  # released meanwhile
            self._withdrawn.add(leg_id)
            self._line.end_leg(leg_id)

    def release(self, agent_id: str) -> StandingLeg | None:
        """End the agent's standing leg (BYE, or CANCEL while it rings); returns it, so
        that the call it was in (``call_id``) lets it go."""
        standing = self._legs.get(agent_id)
        if standing is not None:
            self.over(standing.leg_id)
            self._withdrawn.add(standing.leg_id)
            self._line.end_leg(standing.leg_id)
        return standing

    def over(self, leg_id: str) -> StandingLeg | None:
        """The leg is gone (ended, refused, failed): forgotten, its port closed."""
        standing = self.of_leg(leg_id)
        if standing is not None:
            self._forget(standing)
            self._media.close_leg(leg_id)
        return standing

    def answered(self, leg_id: str) -> None:
        standing = self.of_leg(leg_id)
        if standing is not None:
            standing.answered = True

    def media_started(self, leg_id: str, *, expects_audio: bool) -> StandingLeg | None:
        """The phone's media was agreed (answer or re-INVITE); a silence time-out only
        while in a call."""
        standing = self.of_leg(leg_id)
        if standing is not None:
            standing.media = True
            standing.expects_audio = expects_audio
            self._time_out(standing)
        return standing

    def take(self, agent_id: str, call_id: str) -> str | None:
        """Bridge ``call_id`` into the agent's standing leg, if it is up and in no other
        call: the leg's id, else None (the phone is rung as usual)."""
        standing = self._legs.get(agent_id)
        if standing is None or not standing.up or standing.call_id not in ("", call_id):
            return None
        standing.call_id = call_id
        self._time_out(standing)
        return standing.leg_id

    def give_back(self, leg_id: str) -> bool:
        """The call lets the leg go: it hears silence, unmuted, out of the call's
        recording, with no silence time-out. False: not a standing leg."""
        standing = self.of_leg(leg_id)
        if standing is None:
            return False
        tap, standing.call_id = standing.call_id, ""
        try:
            self._media.silence(leg_id)
            self._media.mute(leg_id, False)
            self._media.untap(leg_id, tap)
            self._time_out(standing)
        except TelephonyError:  # its port is not open yet: nothing to undo
            pass
        return True

    def clear(self) -> None:
        self._legs.clear()
        self._by_leg.clear()

    def _time_out(self, standing: StandingLeg) -> None:
        if not standing.media:
            return
        in_call = bool(standing.call_id) and standing.expects_audio
        self._media.set_timeout(standing.leg_id, self._silence_s if in_call else None)

    def _forget(self, standing: StandingLeg) -> None:
        if self._legs.get(standing.agent_id) is standing:
            del self._legs[standing.agent_id]
        self._by_leg.pop(standing.leg_id, None)
