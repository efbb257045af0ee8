"""The music, the recording announcement and the prompts of a SIP line that carries
the voice.

Each file is read once, off the event loop. A music file that cannot be played is
logged once and the shipped piece plays instead; an announcement that cannot be played
is logged once and none is played; a prompt's file that cannot be played is logged once
and skipped (the rest of the prompt plays). Split from :mod:`.voice`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from telephony_adapters.media.player import Clip, WavError, shipped_clip

log = logging.getLogger(__name__)

MAX_PROMPT_FILES = 1000
"""Prompt files kept read (a center's clips in two languages are a few hundred); past
it the oldest read is dropped, and read again when next played."""


class LineClips:
    """The clips of one line: ``hold_music`` when a plan names none (empty: the shipped
    piece), and ``announce_file`` (empty: no announcement)."""

    def __init__(self, line: str, hold_music: str, announce_file: str) -> None:
        self._line = line
        self._hold_music = hold_music
        self._announce_file = announce_file
        self._announce_read = False
        self.announcement: Clip | None = None
        """The recording announcement once read (None: none, or not playable)."""
        self._clips: dict[str, Clip] = {}
        self._prompts: dict[str, Clip | None] = {}
        """Prompt files by path as given, as read (None: not playable, logged once)."""

    async def load_announcement(self) -> None:
        """Read the recording announcement once (off the loop); a bad one is logged
        once and none is played."""
        if self._announce_read or not self._announce_file:
            return
        self._announce_read = True
        try:
            self.announcement = await asyncio.to_thread(Clip.from_file, self._announce_file)
        except WavError as exc:
            log.warning("line %s: recording announcement %s; none is played", self._line, exc)

    async def load_music(self, name: str) -> None:
        """Read the plan's music once per file (off the loop); a bad one logged once."""
        key = name or self._hold_music
        if key in self._clips:
            return
        try:
            clip = await asyncio.to_thread(Clip.from_file, key) if key else self._shipped()
        except WavError as exc:
            log.warning("line %s: music %s; the shipped piece plays instead", self._line, exc)
            clip = self._shipped()
        self._clips[key] = clip

    async def load_prompt(self, files: Sequence[str]) -> tuple[Clip, ...]:
        """The clips of a prompt's ``files`` that can be played, in order, each read once
        (off the loop) and kept; a file that cannot be read or played is logged once and
        skipped."""
        for path in dict.fromkeys(files):
            if path not in self._prompts:
                self._prompts[path] = await self._read_prompt(path)
                while len(self._prompts) > MAX_PROMPT_FILES:
                    del self._prompts[next(iter(self._prompts))]
        return tuple(clip for path in files if (clip := self._prompts.get(path)) is not None)

    async def _read_prompt(self, path: str) -> Clip | None:
        try:
            if not path:
                raise WavError("a prompt file with no name")
            return await asyncio.to_thread(Clip.from_file, path)
        except WavError as exc:
            log.warning("line %s: prompt %s; skipped", self._line, exc)
            return None

    def music(self, name: str) -> Clip:
        """The plan's music (``name``; empty: the line's), as loaded."""
        return self._clips.get(name or self._hold_music) or self._shipped()

    def _shipped(self) -> Clip:
        clip = self._clips.get("")
        if clip is None:
            try:
                clip = shipped_clip()
            except WavError as exc:  # a broken install: silence rather than no call
                log.error("line %s: %s; callers on hold hear silence", self._line, exc)
                clip = Clip(bytes(320), "silence")
            self._clips[""] = clip
        return clip
