"""The dialogue with one queued caller: place in line and wait announced every so often,
the callback offer (virtual hold) and its number confirmation, and the voicemail.

Sans-I/O: the shell gives ``now``, the caller's keys and, at each :meth:`WaitingCaller.tick`,
the place in line and estimated wait it computed (the router's order: calls of higher
rank only); the core answers with :mod:`scripts_engine.flow_steps`. Music is the shell's:
a ``Say`` plays in its place and music resumes when it ends. The shell calls ``tick`` when
the call joins the queue, then at :meth:`~WaitingCaller.next_deadline` (and may call it
more often). Clips are made by the functions the shell hands in (:class:`ClipMakers`,
speech's ``position``/``wait``/``digits``), so the core knows no file and no line.

Rules:

- The first announcement ``first_announce_s`` after joining the queue, then every
  ``announce_every_s``. The caller at the head (place 1) is told nothing.
- The wait said never goes up by more than ``wait_tolerance_s`` from one announcement to
  the next in the same queue (what is said is clamped); a change of queue starts afresh.
- With the callback offer on, each announcement ends with the offer (its clip says the
  key: "press 1"); the key works from the first offer on. The number is read back
  digit by digit (the caller id, or without a usable one the caller keys one in, ``#``
  ends, ``*`` starts over, a pause ends a number begun) with "press 1 to confirm, 2 to
  enter another number"; 1 says the confirmation, then :class:`CallMeBack`.
- Wrong keys and timeouts in the dialogue are re-prompted up to ``max_retries`` times,
  then the caller is back to waiting without a callback. Keys the waiting caller is not
  offered are ignored. A key while a prompt plays barges in.
- Voicemail (:class:`MessageTaking`): prompt and beep, :class:`RecordMessage` when the
  beep ends, ``#`` or the maximum length: :class:`MessageDone`, thanks, :class:`HangUp`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Final, Protocol

from cti.call_flows import CallerSettings
from scripts_engine.flow_steps import (
    CallMeBack,
    ClipLength,
    FlowStep,
    HangUp,
    Language,
    MessageDone,
    RecordMessage,
    Say,
)

#: The keys of a telephone keypad (DTMF).
DTMF_KEYS: Final = frozenset("0123456789*#ABCD")
#: Fixed keys of the number confirmation (the ``confirm_or_other`` clip says them).
CONFIRM_KEY: Final = "1"
OTHER_NUMBER_KEY: Final = "2"
#: Ends a keyed number, and a voicemail message.
END_KEY: Final = "#"
#: Starts a keyed number over.
RESTART_KEY: Final = "*"
#: The keys the callback or voicemail offer may name (only waiting callers press them).
_OFFER_KEYS: Final = frozenset("0123456789*#")
#: The longest number a caller keys in (E.164's 15 digits).
MAX_NUMBER_DIGITS: Final = 15
#: A caller id that can be read back and called: digits, an optional leading +.
_USABLE_NUMBER: Final = re.compile(r"\+?[0-9]{3,15}")
#: Transitions one tick may chain (clips of zero length end at once): a loop guard.
_MAX_CHAIN: Final = 8

#: Clip names this module says (besides those of :class:`ClipMakers`).
CALLBACK_OFFER: Final = "callback_offer"
VOICEMAIL_OFFER: Final = "voicemail_offer"
WE_WILL_CALL_YOU_AT: Final = "we_will_call_you_at"
CONFIRM_OR_OTHER: Final = "confirm_or_other"
ENTER_NUMBER: Final = "enter_number"
CALLBACK_CONFIRMED: Final = "callback_confirmed"
INVALID_KEY: Final = "invalid_key"
NO_KEY: Final = "no_key"
VOICEMAIL_PROMPT: Final = "voicemail_prompt"
BEEP: Final = "beep"
MESSAGE_THANKS: Final = "message_thanks"
CLIP_NAMES: Final = (CALLBACK_OFFER, VOICEMAIL_OFFER, WE_WILL_CALL_YOU_AT, CONFIRM_OR_OTHER,
    ENTER_NUMBER, CALLBACK_CONFIRMED, INVALID_KEY, NO_KEY, VOICEMAIL_PROMPT, BEEP,
    MESSAGE_THANKS)  # fmt: skip


class ClipMakers(Protocol):
    """The clip-making functions (speech's): clip names, in order, in ``lang``."""

    def position(self, place: int, lang: Language, /) -> Sequence[str]:
        """A place in line, 1 at the head."""
        ...

    def wait(self, seconds: float, lang: Language, /) -> Sequence[str]:
        """An estimated wait."""
        ...

    def digits(self, number: str, lang: Language, /) -> Sequence[str]:
        """A phone number read digit by digit (a leading + too)."""
        ...


@dataclass(frozen=True, slots=True)
class WaitingSettings:
    """The ``[caller]`` settings this dialogue uses (the config's schema maps onto it).
    ``voicemail_key`` None: no voicemail from the queue."""

    announce_every_s: float = 60.0
    first_announce_s: float = 30.0
    wait_tolerance_s: float = 60.0
    callback_offer: bool = True
    callback_key: str = "1"
    voicemail_max_s: float = 120.0
    voicemail_key: str | None = None
    key_timeout_s: float = 8.0
    max_retries: int = 2

    def __post_init__(self) -> None:
        _positive("announce_every_s", self.announce_every_s)
        _positive("voicemail_max_s", self.voicemail_max_s)
        _positive("key_timeout_s", self.key_timeout_s)
        _positive("first_announce_s", self.first_announce_s, zero=True)
        _positive("wait_tolerance_s", self.wait_tolerance_s, zero=True)
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise ValueError(f"max_retries {self.max_retries!r}: not a whole number")
        if self.max_retries < 0:
            raise ValueError(f"max_retries {self.max_retries}: must be >= 0")
        for name, key in (
            ("callback_key", self.callback_key),
            ("voicemail_key", self.voicemail_key),
        ):
            if key is not None and (not isinstance(key, str) or key not in _OFFER_KEYS):
                raise ValueError(f"{name} {key!r}: must be one of the keys 0-9, * or #")
        if self.voicemail_key is not None and self.voicemail_key == self.callback_key:
            raise ValueError(f"voicemail_key {self.voicemail_key!r}: is the callback_key too")


def waiting_settings(caller: CallerSettings) -> WaitingSettings:
    """The waiting caller's settings from ``[caller]`` (the engine's and the simulator's)."""
    return WaitingSettings(
        announce_every_s=caller.announce_every_s,
        first_announce_s=caller.first_announce_s,
        wait_tolerance_s=caller.wait_tolerance_s,
        callback_offer=caller.callback_offer,
        callback_key=caller.callback_key,
        voicemail_max_s=caller.voicemail_max_s,
        voicemail_key=caller.voicemail_key or None,
        key_timeout_s=caller.key_timeout_s,
        max_retries=caller.max_retries,
    )


def _positive(name: str, value: float, *, zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} {value!r}: not a finite number of seconds")
    if value < 0 or (value == 0 and not zero):
        raise ValueError(f"{name} {value}: must be {'>= 0' if zero else '> 0'}")


def play_time(clip_length: ClipLength, language: Language, clips: Sequence[str]) -> float:
    """How long ``clips`` play one after the other; a length that is no finite number
    of seconds >= 0 (a broken file) counts as 0, so deadlines stay in order."""
    total = 0.0
    for clip in clips:
        seconds = clip_length(language, clip)
        if isinstance(seconds, int | float) and math.isfinite(seconds) and seconds > 0:
            total += seconds
    return total


def usable_number(raw: str | None) -> str | None:
    """The caller id to read back and call (spaces, dashes, dots and brackets dropped),
    or None when it is no number (withheld, a SIP name, too short or too long)."""
    if not isinstance(raw, str):
        return None
    text = re.sub(r"[\s\-.()]", "", raw)
    return text if _USABLE_NUMBER.fullmatch(text) else None


class _Phase(Enum):
    WAITING = "waiting"
    CONFIRM = "confirm"  # the number read back, 1 or 2 awaited
    ENTER = "enter"  # keying in a number
    CONFIRMED = "confirmed"  # the confirmation playing, then CallMeBack
    MESSAGE = "message"  # voicemail (MessageTaking)
    DONE = "done"


class _MessagePhase(Enum):
    PROMPT = "prompt"
    RECORDING = "recording"
    THANKS = "thanks"
    DONE = "done"


class MessageTaking:
    """The voicemail dialogue: prompt and beep, :class:`RecordMessage` when the beep ends,
    ``#`` or ``max_s`` -> :class:`MessageDone` (to ``number``: the callback task's number,
    empty when the caller has none), thanks, :class:`HangUp`. Usable on its own (a menu
    key, closed hours) or from :class:`WaitingCaller`."""

    def __init__(
        self, language: Language, number: str, max_s: float, clip_length: ClipLength
    ) -> None:
        _positive("max_s", max_s)
        self.language: Language = language
        self.number = number
        self.max_s = max_s
        self._clip_length = clip_length
        self._phase: _MessagePhase | None = None
        self._queue = ""
        self._deadline: float | None = None

    @property
    def done(self) -> bool:
        """True once the HangUp has been given."""
        return self._phase is _MessagePhase.DONE

    @property
    def recording(self) -> bool:
        """True between RecordMessage and MessageDone."""
        return self._phase is _MessagePhase.RECORDING

    def start(self, queue: str, now: float) -> list[FlowStep]:
        """Say the prompt and the beep; recording starts when the beep ends."""
        if self._phase is not None:
            return []
        self._queue = queue
        self._phase = _MessagePhase.PROMPT
        return [self._say(now, VOICEMAIL_PROMPT, BEEP)]

    def next_deadline(self) -> float | None:
        """When :meth:`tick` is due (the beep's end, the maximum length, the thanks' end)."""
        return self._deadline

    def tick(self, now: float) -> list[FlowStep]:
        """Whatever is due at ``now``."""
        steps: list[FlowStep] = []
        for _ in range(_MAX_CHAIN):
            if self._deadline is None or now < self._deadline:
                break
            steps += self._due(now)
        return steps

    def key(self, key: str, now: float) -> list[FlowStep]:
        """``#`` ends a message being recorded; other keys are ignored."""
        if self._phase is _MessagePhase.RECORDING and key == END_KEY:
            return self._finish(now)
        return []

    def _due(self, now: float) -> list[FlowStep]:
        if self._phase is _MessagePhase.PROMPT:
            self._phase = _MessagePhase.RECORDING
            self._deadline = now + self.max_s
            return [RecordMessage(self._queue, self.max_s)]
        if self._phase is _MessagePhase.RECORDING:
            return self._finish(now)
        self._phase = _MessagePhase.DONE
        self._deadline = None
        return [HangUp("voicemail left")]

    def _finish(self, now: float) -> list[FlowStep]:
        self._phase = _MessagePhase.THANKS
        return [MessageDone(self.number), self._say(now, MESSAGE_THANKS)]

    def _say(self, now: float, *clips: str) -> Say:
        self._deadline = now + play_time(self._clip_length, self.language, clips)
        return Say(self.language, clips)


_DIGIT_KEYS: Final = frozenset("0123456789")


class WaitingCaller:
    """One queued caller's dialogue. ``caller_number`` is the caller id as the line gave
    it (None or unusable: a callback number is keyed in; a message gets no number)."""

    def __init__(
        self,
        settings: WaitingSettings,
        language: Language,
        caller_number: str | None,
        clips: ClipMakers,
        clip_length: ClipLength,
    ) -> None:
        self.settings = settings
        self.language: Language = language
        self.caller_id = usable_number(caller_number)
        self._clips = clips
        self._clip_length = clip_length
        self._phase = _Phase.WAITING
        self._queue: str | None = None
        self._next_announce: float | None = None
        self._said_wait: float | None = None  # in this queue, as said (clamped)
        self._callback_offered = False
        self._voicemail_offered = False
        self._deadline: float | None = None  # of the callback dialogue
        self._say_end = -math.inf
        self._number = ""  # being confirmed
        self._entered = ""  # being keyed in
        self._failures = 0
        self._confirmed: str | None = None
        self._message: MessageTaking | None = None

    @property
    def in_dialogue(self) -> bool:
        """True while the callback dialogue or the voicemail goes on: no music then."""
        return self._phase not in (_Phase.WAITING, _Phase.DONE)

    @property
    def done(self) -> bool:
        """True once CallMeBack or the voicemail's HangUp has been given: nothing more."""
        return self._phase is _Phase.DONE

    @property
    def confirmed_number(self) -> str | None:
        """The number the caller confirmed (from the key, before the confirmation clip
        ends and :class:`CallMeBack` is given): a caller who hangs up meanwhile asked."""
        return self._confirmed

    def next_deadline(self) -> float | None:
        """When :meth:`tick` is due: the next announcement, a prompt's timeout, a clip's
        end. None before the first tick and once done."""
        if self._phase is _Phase.WAITING:
            return self._next_announce
        if self._phase is _Phase.MESSAGE:
            assert self._message is not None
            return self._message.next_deadline()
        return self._deadline

    def tick(self, now: float, position: int, wait_s: float | None, queue: str) -> list[FlowStep]:
        """The shell's view at ``now``: the caller's ``position`` (1 at the head, calls
        of higher rank only), the estimated wait (None: unknown) and the ``queue``. The
        first tick is the call joining the queue."""
        if queue != self._queue:
            self._queue = queue
            self._said_wait = None  # a new queue: its estimate is not clamped
        if self._next_announce is None:
            self._next_announce = now + self.settings.first_announce_s
        steps: list[FlowStep] = []
        for _ in range(_MAX_CHAIN):
            due = self.next_deadline()
            if due is None or now < due:
                break
            steps += self._due(now, position, wait_s)
        return steps

    def key(self, key: str, now: float) -> list[FlowStep]:
        """A key the caller pressed (one DTMF character)."""
        if self._phase is _Phase.WAITING:
            return self._waiting_key(key, now)
        if self._phase is _Phase.CONFIRM:
            return self._confirm_key(key, now)
        if self._phase is _Phase.ENTER:
            return self._enter_key(key, now)
        if self._phase is _Phase.MESSAGE:
            assert self._message is not None
            return self._message.key(key, now)
        return []

    def leave_message(self, queue: str, now: float) -> list[FlowStep]:
        """Start the voicemail for ``queue`` (the queue's exit, or the voicemail key);
        ends a callback dialogue in progress. Nothing once the callback is confirmed, in
        voicemail already, or done."""
        if self._phase in (_Phase.CONFIRMED, _Phase.MESSAGE, _Phase.DONE):
            return []
        self._phase = _Phase.MESSAGE
        self._deadline = None
        self._message = MessageTaking(
            self.language, self.caller_id or "", self.settings.voicemail_max_s, self._clip_length
        )
        return self._message.start(queue, now)

    # -- what is due at a tick

    def _due(self, now: float, position: int, wait_s: float | None) -> list[FlowStep]:
        if self._phase is _Phase.WAITING:
            return self._announce(now, position, wait_s)
        if self._phase is _Phase.MESSAGE:
            assert self._message is not None
            steps = self._message.tick(now)
            if self._message.done:
                self._phase = _Phase.DONE
            return steps
        if self._phase is _Phase.CONFIRMED:
            assert self._confirmed is not None
            self._phase = _Phase.DONE
            self._deadline = None
            return [CallMeBack(self._confirmed)]
        if self._phase is _Phase.ENTER and self._entered:
            return self._read_back(now, self._entered)  # a pause ends a number begun
        return self._fail(now, NO_KEY)

    def _announce(self, now: float, position: int, wait_s: float | None) -> list[FlowStep]:
        every = self.settings.announce_every_s
        self._next_announce = now + every
        if isinstance(position, bool) or not isinstance(position, int) or position < 2:
            return []  # the head is told nothing
        clips = list(self._clips.position(position, self.language))
        said = self._clamp(wait_s)
        if said is not None:
            clips += self._clips.wait(said, self.language)
        if self.settings.callback_offer:
            clips.append(CALLBACK_OFFER)  # the clip says the key
            self._callback_offered = True
        if self.settings.voicemail_key is not None:
            clips.append(VOICEMAIL_OFFER)
            self._voicemail_offered = True
        say = self._say(now, clips)
        self._next_announce = max(now + every, self._say_end)  # never cut one short
        return [say]

    def _clamp(self, wait_s: float | None) -> float | None:
        """The wait to say: never more than the tolerance above the last one said in
        this queue; None when the shell has no usable estimate."""
        if isinstance(wait_s, bool) or not isinstance(wait_s, int | float):
            return None
        if not math.isfinite(wait_s):
            return None
        said = max(0.0, float(wait_s))
        if self._said_wait is not None:
            said = min(said, self._said_wait + self.settings.wait_tolerance_s)
        self._said_wait = said
        return said

    # -- the callback dialogue

    def _waiting_key(self, key: str, now: float) -> list[FlowStep]:
        settings = self.settings
        if self._callback_offered and settings.callback_offer and key == settings.callback_key:
            self._failures = 0
            if self.caller_id is not None:
                return self._read_back(now, self.caller_id)
            return self._ask_number(now)
        if self._voicemail_offered and key == settings.voicemail_key:
            return self.leave_message(self._queue or "", now)
        return []  # not offered: ignored

    def _confirm_key(self, key: str, now: float) -> list[FlowStep]:
        if key == CONFIRM_KEY:
            self._phase = _Phase.CONFIRMED
            self._confirmed = self._number
            say = self._say(now, [CALLBACK_CONFIRMED])
            self._deadline = self._say_end
            return [say]
        if key == OTHER_NUMBER_KEY:
            return self._ask_number(now)
        return self._fail(now, INVALID_KEY)

    def _enter_key(self, key: str, now: float) -> list[FlowStep]:
        if key in _DIGIT_KEYS:
            if len(self._entered) >= MAX_NUMBER_DIGITS:
                return self._fail(now, INVALID_KEY)
            self._entered += key
            self._deadline = now + self.settings.key_timeout_s
            if now < self._say_end:  # barge in: the prompt stops
                self._say_end = now
                return [Say(self.language, ())]
            return []
        if key == END_KEY and self._entered:
            return self._read_back(now, self._entered)
        if key == RESTART_KEY:
            return self._ask_number(now)
        return self._fail(now, INVALID_KEY)

    def _read_back(self, now: float, number: str) -> list[FlowStep]:
        self._phase = _Phase.CONFIRM
        self._number = number
        return [self._prompt(now, self._read_back_clips())]

    def _read_back_clips(self) -> list[str]:
        digits = self._clips.digits(self._number, self.language)
        return [WE_WILL_CALL_YOU_AT, *digits, CONFIRM_OR_OTHER]

    def _ask_number(self, now: float) -> list[FlowStep]:
        self._phase = _Phase.ENTER
        self._entered = ""
        return [self._prompt(now, [ENTER_NUMBER])]

    def _fail(self, now: float, why: str) -> list[FlowStep]:
        """A wrong key or a timeout: say why and ask again, or after too many, back to
        waiting (music) without a callback."""
        self._failures += 1
        if self._failures > self.settings.max_retries:
            self._phase = _Phase.WAITING
            self._deadline = None
            self._next_announce = now + self.settings.announce_every_s
            self._say_end = now
            return [Say(self.language, ())]
        if self._phase is _Phase.CONFIRM:
            return [self._prompt(now, [why, *self._read_back_clips()])]
        self._entered = ""
        return [self._prompt(now, [why, ENTER_NUMBER])]

    def _prompt(self, now: float, clips: Sequence[str]) -> Say:
        """A prompt that awaits a key: it times out ``key_timeout_s`` after it ends."""
        say = self._say(now, clips)
        self._deadline = self._say_end + self.settings.key_timeout_s
        return say

    def _say(self, now: float, clips: Sequence[str]) -> Say:
        self._say_end = now + play_time(self._clip_length, self.language, clips)
        return Say(self.language, tuple(clips))
