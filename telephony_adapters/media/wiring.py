"""From an audio plan to what each media leg hears (sans-I/O).

The engine says who hears whom as an :class:`~telephony_adapters.base.AudioPlan` over
parties (the caller, agent ids); the line knows which parties have a leg up (answered,
with media). :func:`wiring` turns the two into one :class:`Wiring` per call: each up
leg's source (another leg, a conference, music, silence), the muted legs, and the legs
recorded on either side. Parties without a leg up are left out: a room of one agent and
a caller still ringing is silence for the agent until the caller's leg is up.
:func:`apply` makes a :class:`~.bridge.MediaCore` (or the relay in front of it) so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from telephony_adapters.base import CALLER, AudioPlan
from telephony_adapters.media.bridge import FrameSource, Side

RECORDING_TAP = "recording"


@dataclass(frozen=True, slots=True)
class Wiring:
    """What every up leg of one call hears. ``pairs``: two-way relays; ``mixes``:
    conferences (three or more legs); ``music``: legs hearing the hold music; every
    other up leg hears silence. ``recorded``: leg -> the side of the recording it is on."""

    legs: frozenset[str] = frozenset()
    pairs: tuple[tuple[str, str], ...] = ()
    mixes: tuple[tuple[str, ...], ...] = ()
    music: frozenset[str] = frozenset()
    muted: frozenset[str] = frozenset()
    recorded: Mapping[str, Side] = field(default_factory=dict)


def wiring(plan: AudioPlan, up: Mapping[str, str]) -> Wiring:
    """The wiring of one call: ``up`` maps each party whose leg is up to its leg id."""
    pairs: list[tuple[str, str]] = []
    mixes: list[tuple[str, ...]] = []
    placed: set[str] = set()
    for room in plan.rooms:
        legs = sorted(up[party] for party in room if party in up and party not in plan.music)
        legs = [leg for leg in legs if leg not in placed]
        placed.update(legs)
        if len(legs) == 2:
            pairs.append((legs[0], legs[1]))
        elif len(legs) > 2:
            mixes.append(tuple(legs))
    music = frozenset(up[party] for party in plan.music if party in up)
    muted = frozenset(up[party] for party in plan.muted if party in up)
    recorded: dict[str, Side] = {}
    if plan.record and CALLER in up:
        caller_room = next((room for room in plan.rooms if CALLER in room), frozenset())
        agents = [up[p] for p in caller_room if p != CALLER and p in up]
        if agents and CALLER not in plan.music:
            recorded[up[CALLER]] = "caller"
            recorded.update(dict.fromkeys(agents, "agent"))
    return Wiring(frozenset(up.values()), tuple(pairs), tuple(mixes), music, muted, recorded)


class Wirable(Protocol):
    """What :func:`apply` needs: a :class:`~.bridge.MediaCore` or a relay in front of one."""

    def connect(self, a: str, b: str) -> None: ...
    def mix(self, leg_ids: list[str]) -> None: ...
    def play(self, leg_id: str, source: FrameSource) -> None: ...
    def silence(self, leg_id: str) -> None: ...
    def mute(self, leg_id: str, muted: bool) -> None: ...
    def tap(self, leg_id: str, tap: str, side: Side) -> None: ...
    def untap(self, leg_id: str, tap: str) -> None: ...


def apply(
    media: Wirable,
    new: Wiring,
    old: Wiring | None,
    music: Callable[[str], FrameSource],
    tap: str = RECORDING_TAP,
) -> None:
    """Make ``media`` hear as ``new`` says. ``old`` is what it was (None: nothing yet): a
    leg that keeps hearing music keeps its place in the piece; ``music(leg)`` makes a
    player for a leg that starts hearing it. ``tap``: the id the call's recording frames
    carry (one per call, e.g. its call id, since a frame names only its tap)."""
    before = old or Wiring()
    for leg in new.legs:
        if leg in new.music:
            if leg not in before.music:
                media.play(leg, music(leg))
        elif not _relayed(leg, new):
            media.silence(leg)
    for a, b in new.pairs:
        if (a, b) not in before.pairs:
            media.connect(a, b)
    for group in new.mixes:
        if group not in before.mixes:
            media.mix(list(group))
    for leg in new.legs:
        media.mute(leg, leg in new.muted)
        _retap(media, leg, new.recorded.get(leg), before.recorded.get(leg), tap)


def _retap(media: Wirable, leg: str, side: Side | None, was: Side | None, tap: str) -> None:
    tap = leg_tap(tap, leg)
    if side is None and was is not None:
        media.untap(leg, tap)
    elif side is not None and side != was:
        media.tap(leg, tap, side)


def leg_tap(tap: str, leg: str) -> str:
    """The tap id of one leg of a call's recording: the call's tap and the leg, so that
    a frame tells its call and its speaker (a conference has two agents on one side)."""
    return f"{tap}|{leg}"


def tap_parts(leg_tap_id: str) -> tuple[str, str]:
    """(the call's tap, the leg) of :func:`leg_tap`."""
    tap, _, leg = leg_tap_id.partition("|")
    return tap, leg


def _relayed(leg: str, w: Wiring) -> bool:
    return any(leg in pair for pair in w.pairs) or any(leg in group for group in w.mixes)
