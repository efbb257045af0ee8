"""What a caller hears when no one talks to it: music, a prompt, the recording
announcement. Split from :mod:`.voice`.

- Music: ``music_file`` (empty: the line's ``hold_music``, else the shipped piece), read
  once per file off the loop (:class:`~.clips.LineClips`); a file that cannot be played
  is logged once and the shipped piece plays instead. The caller's place in the piece
  is kept while a prompt plays: the music resumes where it was.
- A prompt (``AudioPlan.prompt``): its files played once, in order, while the caller is
  up and talks to no one (in no room, or on hold), in place of music or silence, which
  come back when it ends. A plan with another serial plays it from the start; a plan
  without one stops it at once; a caller bridged meanwhile ends it. Files that cannot be
  played are logged once and skipped.
- The recording announcement: played to a recorded caller once, when it is first to be
  bridged to an agent whose leg is up; meanwhile the caller is out of its room (the
  agents hear silence), and joins it when the announcement ends.

What the caller's player plays is named (:attr:`CallerHears.playing`): when the name
changes, the voice starts the new player even if the caller was hearing "music" before.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from telephony_adapters.base import AudioPlan, Prompt
from telephony_adapters.media.bridge import FrameSource
from telephony_adapters.media.player import Clip, ClipPlayer, SequencePlayer
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
    prompt: Prompt | None = None
    """The plan's prompt, as last taken."""
    prompted: str = ""
    """That prompt: "" not started yet, "playing", "done"."""
    prompt_clips: tuple[Clip, ...] = ()
    playing: str = ""
    """What the caller's one-shot player plays: "prompt <serial>", "announcement", or ""
    (none: music or something else)."""
    heard: str = ""
    """What the caller's player played at the last wiring: as ``playing``, or "music"."""
    music: ClipPlayer | None = None
    """The caller's cursor in its music, kept while a prompt plays."""


class CallerSources:
    """The clips of one line and what each caller hears of them (module docstring)."""

    def __init__(self, line: str, params: SipLineParams) -> None:
        self.clips = LineClips(line, params.hold_music, params.announce_recording)

    async def load(self, plan: AudioPlan) -> tuple[Clip, ...]:
        """Read the clips ``plan`` may play (off the loop, once each): its prompt's
        clips that can be played."""
        await self.clips.load_music(plan.music_file)
        if plan.record:
            await self.clips.load_announcement()
        return await self.clips.load_prompt(plan.prompt.files) if plan.prompt else ()

    @staticmethod
    def take(hears: CallerHears, plan: AudioPlan, clips: tuple[Clip, ...]) -> None:
        """A new plan: a prompt of another serial is to play (from the start); none
        stops the one playing."""
        prompt = plan.prompt
        if prompt is None:
            hears.prompt, hears.prompted, hears.prompt_clips = None, "", ()
        elif hears.prompt is None or hears.prompt.serial != prompt.serial:
            hears.prompt, hears.prompted, hears.prompt_clips = prompt, "", clips

    def aside(self, hears: CallerHears, caller: str, plan: AudioPlan, new: Wiring) -> Wiring:
        """``new`` with what the caller hears instead of it: while the prompt plays (the
        caller up and in no room), the prompt; while the recording announcement plays
        (from when a recorded caller is first bridged to an agent whose leg is up), the
        announcement, the caller out of its room. Either is the caller's "music"."""
        bridged = any(caller in room for room in (*new.pairs, *new.mixes))
        if hears.prompted == "playing" and bridged:
            hears.prompted = "done"  # someone talks to the caller: the prompt is over
        elif hears.prompted == "" and hears.prompt and caller in new.legs and not bridged:
            hears.prompted = "playing"
        if hears.prompted == "playing":
            hears.playing = f"prompt {hears.prompt.serial if hears.prompt else ''}"
            return dataclasses.replace(new, music=new.music | {caller})
        announcement = self.clips.announcement
        if hears.announced == "" and announcement and plan.record and bridged:
            hears.announced = "playing"
        if hears.announced == "playing":
            hears.playing = "announcement"
            return caller_aside(new, caller)
        hears.playing = ""
        return new

    @staticmethod
    def restarted(
        hears: CallerHears, caller: str, new: Wiring, old: Wiring | None
    ) -> Wiring | None:
        """``old`` (the call's wiring so far), without the caller's "music" if its player
        is to play something else in ``new`` (so that the new player starts)."""
        now = hears.playing or ("music" if caller in new.music else "")
        was, hears.heard = hears.heard, now
        if old is None or now == was or caller not in old.music:
            return old
        return dataclasses.replace(old, music=old.music - {caller})

    def players(
        self, hears: CallerHears, caller: str, plan: AudioPlan
    ) -> Callable[[str], FrameSource]:
        """What a leg of the call that starts hearing "music" hears: the caller, its
        prompt or the announcement while it plays, else its own cursor in the plan's
        music; any other leg, the plan's music from the start."""
        clip = self.clips.music(plan.music_file)
        announcement = self.clips.announcement

        def music(leg: str) -> FrameSource:
            if leg != caller:
                return ClipPlayer(clip, loop=True)
            if hears.playing.startswith("prompt"):
                return SequencePlayer(hears.prompt_clips)
            if hears.playing == "announcement" and announcement:
                return ClipPlayer(announcement, loop=False)
            if hears.music is None or hears.music.clip is not clip:
                hears.music = ClipPlayer(clip, loop=True)
            return hears.music

        return music

    @staticmethod
    def finished(hears: CallerHears) -> bool:
        """The caller's one-shot clip (prompt or announcement) ended: whether the call
        must be wired again."""
        if hears.playing.startswith("prompt") and hears.prompted == "playing":
            hears.prompted = "done"
        elif hears.playing == "announcement" and hears.announced == "playing":
            hears.announced = "done"
        else:
            return False
        return True
