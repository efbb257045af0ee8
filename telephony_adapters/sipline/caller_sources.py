"""What a caller hears when no one talks to it: music, the recording announcement. Split
from :mod:`.voice`.

- Music: ``music_file`` (empty: the line's ``hold_music``, else the shipped piece), read
  once per file off the loop (:class:`~.clips.LineClips`); a file that cannot be played
  is logged once and the shipped piece plays instead.
- The recording announcement: played to a recorded caller once, when it is first to be
  bridged to an agent whose leg is up; meanwhile the caller is out of its room (the
  agents hear silence), and joins it when the announcement ends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from telephony_adapters.base import AudioPlan
from telephony_adapters.media.bridge import FrameSource
from telephony_adapters.media.player import ClipPlayer
from telephony_adapters.media.wiring import Wiring
from telephony_adapters.sipline.clips import LineClips
from telephony_adapters.sipline.params import SipLineParams
from telephony_adapters.sipline.transfer_out import caller_aside


@dataclass(slots=True)
class CallerHears:
    """One call's state of what its caller hears."""

    announced: str = ""
    """The recording announcement: "" not yet, "playing" (the caller hears it, the
    agents silence), "done"."""


class CallerSources:
    """The clips of one line and what each caller hears of them (module docstring)."""

    def __init__(self, line: str, params: SipLineParams) -> None:
        self.clips = LineClips(line, params.hold_music, params.announce_recording)

    async def load(self, plan: AudioPlan) -> None:
        """Read the clips ``plan`` may play (off the loop, once each)."""
        await self.clips.load_music(plan.music_file)
        if plan.record:
            await self.clips.load_announcement()

    def aside(self, hears: CallerHears, caller: str, plan: AudioPlan, new: Wiring) -> Wiring:
        """``new``, or while the recording announcement plays, ``new`` with the caller
        hearing it (its "music") and out of its room. It starts when a recorded caller
        is first to be bridged to an agent whose leg is up."""
        bridged = any(caller in room for room in (*new.pairs, *new.mixes))
        announcement = self.clips.announcement
        if hears.announced == "" and announcement and plan.record and bridged:
            hears.announced = "playing"
        return caller_aside(new, caller) if hears.announced == "playing" else new

    def players(
        self, hears: CallerHears, caller: str, plan: AudioPlan
    ) -> Callable[[str], FrameSource]:
        """What a leg of the call that starts hearing "music" hears: the caller, the
        announcement while it plays; any other, the plan's music."""
        clip = self.clips.music(plan.music_file)
        announcement = self.clips.announcement

        def music(leg: str) -> FrameSource:
            if leg == caller and hears.announced == "playing" and announcement:
                return ClipPlayer(announcement, loop=False)
            return ClipPlayer(clip, loop=True)

        return music

    @staticmethod
    def finished(hears: CallerHears) -> bool:
        """The caller's one-shot clip ended: whether the call must be wired again."""
        if hears.announced != "playing":
            return False
        hears.announced = "done"
        return True
