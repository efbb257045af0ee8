"""The recordings of a SIP line that carries the voice. Split from :mod:`.voice`.

- A call's recording: from the first plan with ``record``, a stereo
  :class:`~telephony_adapters.media.recorder.Recorder` fed by the call's taps (tap id =
  call id) into a file of the line's :class:`~telephony_adapters.media.recording_files.
  RecordingFiles`, paused as the plan says, closed at the call's end with a
  ``RecordingFinished`` event.
- A caller's message (``AudioPlan.message``, voicemail): the caller's voice alone, mono
  (:class:`~.voicemail.MonoRecorder`), into that file (relative to the recordings
  folder) from the first plan that names it until a plan drops it (or the call ends),
  then ``RecordingFinished(kind="message")``; a path that cannot be used is reported
  there in ``error``.
- Open recordings are written on every 100 ms even when no audio comes (held, paused,
  muted), so that a file keeps the call's time.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal, Protocol

from cti.events import MAX_PAUSES
from cti.protocol import RecordingFinished
from telephony_adapters.base import AudioPlan, LineEvent
from telephony_adapters.media.bridge import RecordFrame
from telephony_adapters.media.recorder import Encoding, Recorder, RecordingSummary
from telephony_adapters.media.recording_files import Recording, RecordingFiles, write_due
from telephony_adapters.media.wiring import tap_parts
from telephony_adapters.sipline.voicemail import (
    MESSAGE_LEG,
    MessagePathError,
    MonoRecorder,
    message_path,
)

log = logging.getLogger(__name__)

REASON_CHARS = 200
ENCODINGS = {"pcm16": Encoding.PCM16, "g711": Encoding.MULAW}
Kind = Literal["call", "message"]
_RECORDING_TICK_S = 0.1
"""How often open recordings are written on when no audio comes (held, paused, muted)."""


class Emitter(Protocol):
    """What the recordings ask of the line: its name, and to emit a line event."""

    name: str

    def emit(self, event: LineEvent) -> None: ...


@dataclass(slots=True)
class _Recording:
    recorder: Recorder
    file: Recording


@dataclass(slots=True)
class _Message:
    path: str
    """As the plan names it."""
    recorder: MonoRecorder
    file: Recording


class VoiceRecordings:
    """The open recordings of one line, by call id (module docstring)."""

    def __init__(self, line: Emitter, root: Path, recording_format: str) -> None:
        self._line = line
        self._encoding = ENCODINGS.get(recording_format, Encoding.PCM16)
        self.files = RecordingFiles(root)
        self._calls: dict[str, _Recording] = {}
        self._messages: dict[str, _Message] = {}
        self._finishing: set[asyncio.Task[None]] = set()
        self._ticking: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.files.start()

    def close_all(self) -> None:
        """Stop writing on: every open recording closed (the line stops)."""
        if self._ticking is not None:
            self._ticking.cancel()
        for call_id in [*self._calls, *self._messages]:
            self.close(call_id)

    async def stop(self) -> None:
        """Write out what is queued and wait for the last ``RecordingFinished``."""
        await self.files.stop()
        if self._finishing:
            await asyncio.gather(*self._finishing, return_exceptions=True)

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._calls

    def follow(self, call_id: str, plan: AudioPlan) -> None:
        """The call's recording as ``plan`` says: opened at the first ``record``, paused
        and resumed with ``record_paused`` (kept open when a plan drops ``record``)."""
        rec = self._calls.get(call_id)
        if rec is None and not plan.record:
            return
        now = asyncio.get_running_loop().time()
        if rec is None:
            file = self.files.open(call_id, date.today())
            rec = self._calls[call_id] = _Recording(Recorder(now, self._encoding), file)
            self._tick_soon()
        if plan.record_paused and not rec.recorder.paused:
            rec.recorder.pause(now)
        elif not plan.record_paused and rec.recorder.paused:
            rec.recorder.resume(now)

    def message(self, call_id: str, path: str) -> bool:
        """The call's message as the plan names it (``path``; empty: none): opened, or
        the one open closed (and reported). Whether one is open now."""
        msg = self._messages.get(call_id)
        if msg is not None and msg.path != path:
            self._close_message(call_id)
            msg = None
        if msg is None and path:
            now = asyncio.get_running_loop().time()
            try:
                file = Recording(self.files, message_path(self.files.root, path))
            except MessagePathError as exc:
                log.error("line %s: call %s: message not recorded: %s", self._line.name,
                          call_id, exc)  # fmt: skip
                file = Recording(self.files, self.files.root / "-", str(exc))
            msg = self._messages[call_id] = _Message(path, MonoRecorder(now, self._encoding), file)
            self._tick_soon()
        return msg is not None

    def add(self, frame: RecordFrame) -> None:
        """A tapped leg's frame, to its call's recording or its caller's message."""
        call_id, leg = tap_parts(frame.tap)
        if leg == MESSAGE_LEG:
            if (msg := self._messages.get(call_id)) is not None:
                msg.recorder.add(frame.samples, frame.at)
            return
        rec = self._calls.get(call_id)
        if rec is not None:
            rec.recorder.add_g711(
                frame.side, frame.payload, frame.payload_type, frame.at, leg, emit=False
            )

    def _tick_soon(self) -> None:
        if self._ticking is None or self._ticking.done():
            self._ticking = asyncio.get_running_loop().create_task(
                self._tick_recordings(), name=f"recordings:{self._line.name}"
            )

    async def _tick_recordings(self) -> None:
        """Each open recording's timeline follows the clock, not only its frames: the
        time no audio comes (held, muted, paused) is written as silence as it passes,
        so the file keeps the call's time. Ends when no recording is open."""
        loop = asyncio.get_running_loop()
        while self._calls or self._messages:
            await asyncio.sleep(_RECORDING_TICK_S)
            open_now = [(rec.recorder, rec.file) for rec in self._calls.values()]
            await write_due(open_now, loop.time())
            for msg in list(self._messages.values()):  # few at a time: no turn between
                msg.file.write(msg.recorder.tick(loop.time()))

    def close(self, call_id: str) -> None:
        """The call's recording and message (if any) closed; ``RecordingFinished`` for
        each once written."""
        self._close_message(call_id)
        rec = self._calls.pop(call_id, None)
        if rec is None:
            return
        summary = rec.recorder.close(asyncio.get_running_loop().time())
        self._report(call_id, rec.file, summary, "call")

    def _close_message(self, call_id: str) -> None:
        msg = self._messages.pop(call_id, None)
        if msg is not None:
            summary = msg.recorder.close(asyncio.get_running_loop().time())
            self._report(call_id, msg.file, summary, "message")

    def _report(self, call_id: str, file: Recording, summary: RecordingSummary, kind: Kind) -> None:
        file.write(summary.tail)
        file.close(summary.header)
        task = asyncio.get_running_loop().create_task(
            self._finished(call_id, file, summary, kind), name=f"recording:{call_id}:{kind}"
        )
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    async def _finished(
        self, call_id: str, file: Recording, summary: RecordingSummary, kind: Kind
    ) -> None:
        outcome = await file.outcome()
        try:
            path = str(outcome.path.relative_to(self.files.root))
        except ValueError:
            path = str(outcome.path)
        paused = tuple((p.start_s, p.end_s) for p in summary.pauses)[:MAX_PAUSES]
        self._line.emit(RecordingFinished(
            call_id=call_id, path=path, duration_s=summary.duration_s, paused=paused,
            error=(outcome.error or "")[:REASON_CHARS], line=self._line.name, kind=kind,
        ))  # fmt: skip
