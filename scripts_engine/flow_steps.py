"""What a caller's flow asks of its shell: the steps of the greeting, the menu, the
announcements while queued, the callback offer and the voicemail.

The flow cores (:mod:`scripts_engine.flow_runner` for the dialled number's greeting and
menu, :mod:`scripts_engine.waiting_caller` for a queued caller) are sans-I/O: keys and
``now`` in, these steps out. The engine turns them into audio plans and router inputs on
a real line; the simulator turns them into virtual time and random keys. Clips are named
as :mod:`telephony_adapters.media.speech` names them, within a language; the shell finds
the file (the center's own recording, else the shipped one) and its length.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Language = Literal["en", "zh"]

#: How long a clip plays, in seconds: (language, clip name) -> seconds.
ClipLength = Callable[[Language, str], float]


@dataclass(frozen=True, slots=True)
class Say:
    """Play these clips to the caller, once, in order (a new ``Say`` replaces one still
    playing; ``clips`` empty: stop playing)."""

    language: Language
    clips: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Enqueue:
    """The menu is done: the call joins ``queue`` (menu time is not queue wait)."""

    queue: str


@dataclass(frozen=True, slots=True)
class LeaveMessage:
    """The flow is done: start the voicemail dialogue for ``queue`` (a menu key, or the
    queue closed with ``closed = "voicemail"``); its own prompt and beep come from it."""

    queue: str


@dataclass(frozen=True, slots=True)
class RecordMessage:
    """Start recording the caller's message (voicemail for ``queue``), at most ``max_s``
    seconds; the beep has been said before this step."""

    queue: str
    max_s: float


@dataclass(frozen=True, slots=True)
class MessageDone:
    """Stop recording: the caller pressed ``#``, or the message reached its length. The
    message becomes a callback task of its queue, to ``number``."""

    number: str


@dataclass(frozen=True, slots=True)
class CallMeBack:
    """Virtual hold: the caller confirmed ``number``; the call leaves the line and keeps
    its place and age as a callback."""

    number: str


@dataclass(frozen=True, slots=True)
class HangUp:
    """End the call from our side (closed and no voicemail, too many wrong keys, a
    confirmation said). ``reason`` is for the call record and the log."""

    reason: str


FlowStep = Say | Enqueue | LeaveMessage | RecordMessage | MessageDone | CallMeBack | HangUp
