"""The configuration of what a caller hears before the queue: ``[[flows]]`` (one per set
of dialled numbers: greeting, menus of keys), ``[[hours]]`` (opening hours per queue)
and ``[caller]`` (announcements, callback offer, voicemail, the center's recordings).

Clip names are checked for their form only (a file name); whether a clip exists is the
engine's business (it knows the shipped prompts and ``[caller] prompts_dir``). Problems
a validator finds name their place inside the entry (:class:`LocatedError`), so that
``cti config check`` can give the line. docs/voice.md, "Call flows", explains them.
"""

from __future__ import annotations

import itertools
import re
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from cti.config_lines import LocatedError, Path
from cti.fields import RequiredName

KEYS = "0123456789*#"
"""The keys a menu may name (DTMF digits, star and hash)."""
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = get_args(Day)
"""Week days as ``[hours] week`` names them, Monday first (``date.weekday()`` order)."""
TargetKind = Literal["queue", "menu", "voicemail", "repeat", "hangup"]
_KINDS: dict[str, TargetKind] = {kind: kind for kind in get_args(TargetKind)}
_NAMED: tuple[TargetKind, ...] = ("queue", "menu", "voicemail")

_CLIP = r"^([A-Za-z0-9_][A-Za-z0-9_.-]{0,63})?$"
Clip = Annotated[str, Field(pattern=_CLIP, max_length=64)]
"""A prompt clip's name (a file name without ``.wav``: ASCII letters, digits, ``_ . -``,
not starting with a dot); empty: say nothing."""
RequiredClip = Annotated[str, Field(pattern=_CLIP, min_length=1, max_length=64)]
Dnis = Annotated[str, Field(pattern=r"^[A-Za-z0-9+*#_.@-]{1,64}$")]
"""A dialled number as the line reports it (digits, or a SIP user part)."""
_QUEUE_NAME: TypeAdapter[str] = TypeAdapter(RequiredName)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class Target:
    """Where a key leads: ``queue:NAME``, ``menu:NAME``, ``voicemail:QUEUE``, ``repeat``
    (the menu again) or ``hangup`` (goodbye)."""

    kind: TargetKind
    name: str = ""

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}" if self.name else self.kind


def parse_target(text: str) -> Target:
    """A target from its text; ValueError naming what is accepted."""
    word, colon, name = text.partition(":")
    kind = _KINDS.get(word)
    if kind in ("repeat", "hangup") and not colon:
        return Target(kind)
    if kind is None or kind not in _NAMED or not colon:
        raise ValueError(
            f"unknown target {text[:80]!r}: use queue:NAME, menu:NAME, voicemail:QUEUE, "
            "repeat or hangup"
        )
    if kind == "menu":
        if not name or len(name) > 64:
            raise ValueError(f"target {text[:80]!r} names no menu")
    else:
        try:
            _QUEUE_NAME.validate_python(name)
        except ValidationError:
            raise ValueError(f"target {text[:80]!r}: {name[:64]!r} is not a queue name") from None
    return Target(kind, name)


class Menu(_Strict):
    """``[[flows.menus]]``: a prompt, then one key chooses."""

    name: Annotated[str, Field(min_length=1, max_length=64)]
    prompt: RequiredClip
    keys: dict[str, str] = Field(default_factory=dict)
    """Key ("0"-"9", "*", "#") -> target. A key not listed is a wrong key."""
    timeout_s: float = Field(5.0, gt=0, le=120)
    """Seconds to wait for a key once the prompt has ended."""
    max_retries: int = Field(2, ge=0, le=10)
    """Wrong keys or silences after which the caller goes to ``after_retries``."""
    invalid_prompt: Clip = "invalid_key"
    no_key_prompt: Clip = "no_key"
    after_retries: str = ""
    """A target (not ``repeat``); empty: ``queue:`` the flow's queue."""

    @field_validator("keys")
    @classmethod
    def _keys(cls, keys: dict[str, str]) -> dict[str, str]:
        for key, target in keys.items():
            if len(key) != 1 or key not in KEYS:
                raise LocatedError(f"key {key[:16]!r} is not a phone key (0-9, * or #)", key)
            try:
                parse_target(target)
            except ValueError as exc:
                raise LocatedError(f"key {key!r}: {exc}", key) from None
        return keys

    @field_validator("after_retries")
    @classmethod
    def _after(cls, text: str) -> str:
        if text and parse_target(text).kind == "repeat":
            raise ValueError("after_retries cannot be 'repeat' (the menu would never end)")
        return text


class CallFlow(_Strict):
    """``[[flows]]``: what callers of these dialled numbers hear before their queue."""

    dnis: tuple[Dnis, ...] = Field(min_length=1)
    language: Literal["en", "zh", "customer"] = "customer"
    """``customer``: the known customer's language, else ``[caller] language``."""
    greeting: Clip = "greeting"
    menu: str = ""
    """The entry menu's name; empty: straight to ``queue`` after the greeting."""
    queue: RequiredName
    menus: tuple[Menu, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> CallFlow:
        if len(set(self.dnis)) != len(self.dnis):
            raise LocatedError(f"a dialled number is listed twice: {list(self.dnis)}", "dnis")
        names = [m.name for m in self.menus]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise LocatedError(f"two menus are named {name!r}", "menus", i, "name")
        if self.menu and self.menu not in names:
            raise LocatedError(f"entry menu {self.menu!r} is not among the menus {names}", "menu")
        for i, m in enumerate(self.menus):
            for key, text in (*m.keys.items(), ("", m.after_retries)):
                target = parse_target(text) if text else None
                if target and target.kind == "menu" and target.name not in names:
                    where = ("keys", key) if key else ("after_retries",)
                    raise LocatedError(
                        f"menu {m.name!r}: {text!r} names no menu (menus: {names})",
                        "menus",
                        i,
                        *where,
                    )
        self._after_retries_end()
        if self.menu and not any(t.kind in ("queue", "voicemail") for t in self._reachable()):
            raise LocatedError(
                f"flow for {self.dnis[0]!r} never reaches a queue or voicemail from menu "
                f"{self.menu!r} (every key and after_retries leads to a menu, repeat or hangup)",
                "menu",
            )
        return self

    def _after_retries_end(self) -> None:
        """A caller who never presses a key must leave: after_retries may not go round."""
        for i, m in enumerate(self.menus):
            seen = [m.name]
            target = self.after_retries(m)
            while target.kind == "menu":
                if target.name in seen:
                    raise LocatedError(
                        f"after_retries go round ({' -> '.join([*seen, target.name])}): a "
                        "caller who presses no key would never leave the menus",
                        "menus",
                        i,
                        "after_retries",
                    )
                seen.append(target.name)
                target = self.after_retries(self.menu_named(target.name))

    def menu_named(self, name: str) -> Menu:
        return next(m for m in self.menus if m.name == name)

    def after_retries(self, menu: Menu) -> Target:
        return parse_target(menu.after_retries or f"queue:{self.queue}")

    def targets(self, menu: Menu) -> list[Target]:
        """Every target of ``menu``: its keys' and after_retries."""
        return [*(parse_target(t) for t in menu.keys.values()), self.after_retries(menu)]

    def _reachable(self) -> set[Target]:
        seen: set[str] = set()
        found: set[Target] = set()
        todo = [self.menu]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            for target in self.targets(self.menu_named(name)):
                found.add(target)
                if target.kind == "menu":
                    todo.append(target.name)
        return found

    def queues(self) -> frozenset[str]:
        """Every queue a caller of this flow can be put in (``queue:`` targets reached
        from the entry menu, or the flow's queue without a menu)."""
        if not self.menu:
            return frozenset({self.queue})
        return frozenset(t.name for t in self._reachable() if t.kind == "queue")

    def named_queues(self) -> Iterable[tuple[str, Path]]:
        """(queue, place in the entry) of every queue this flow names, to check them."""
        yield self.queue, ("queue",)
        for i, m in enumerate(self.menus):
            for key, text in m.keys.items():
                target = parse_target(text)
                if target.kind in ("queue", "voicemail"):
                    yield target.name, ("menus", i, "keys", key)
            target = self.after_retries(m) if m.after_retries else Target("hangup")
            if target.kind in ("queue", "voicemail"):
                yield target.name, ("menus", i, "after_retries")


TimeRanges = tuple[tuple[int, int], ...]
"""A day's opening hours: (start, end) minutes after midnight, sorted, apart."""


def _parse_ranges(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    ranges = []
    for part in (p.strip() for p in value.split(",") if p.strip()):
        m = re.fullmatch(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})", part)
        if not m:
            raise ValueError(f"{part[:40]!r} is not a range like '09:00-12:00'")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
            raise ValueError(f"{part!r}: hours are 00-23 (24:00 ends a day), minutes 00-59")
        ranges.append((h1 * 60 + m1, h2 * 60 + m2))
    return tuple(ranges)


def _check_ranges(ranges: TimeRanges) -> TimeRanges:
    def shown(r: tuple[int, int]) -> str:
        return f"{r[0] // 60:02d}:{r[0] % 60:02d}-{r[1] // 60:02d}:{r[1] % 60:02d}"

    for r in ranges:
        if not 0 <= r[0] < r[1] <= 24 * 60:
            raise ValueError(
                f"{shown(r)} does not end after it starts within the day (a night across "
                "midnight is two ranges: '22:00-24:00' and the next day's '00:00-06:00')"
            )
    ordered = tuple(sorted(ranges))
    for a, b in itertools.pairwise(ordered):
        if b[0] < a[1]:
            raise ValueError(f"ranges {shown(a)} and {shown(b)} overlap")
    return ordered


DayHours = Annotated[TimeRanges, BeforeValidator(_parse_ranges), AfterValidator(_check_ranges)]


class Hours(_Strict):
    """``[[hours]]``: when these queues are open (in ``[caller] time_zone``)."""

    queues: tuple[RequiredName, ...] = Field(min_length=1)
    week: dict[Day, DayHours] = Field(default_factory=dict)
    """Day -> "09:00-12:00,13:00-18:00"; a day not listed (or "") is closed."""
    holidays: tuple[date, ...] = ()
    """Closed all day (TOML dates: 2026-10-01)."""
    closed: Literal["message", "voicemail"] = "message"
    """When closed: the closed prompt then hang up, or the prompt then voicemail."""
    closed_prompt: Clip = "closed"


def _time_zone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name[:64]!r}: an IANA name such as 'Asia/Shanghai'"
        ) from None
    return name


class CallerSettings(_Strict):
    """``[caller]``: what a caller hears while waiting, and the center's recordings."""

    time_zone: Annotated[str, AfterValidator(_time_zone)] = "Asia/Shanghai"
    """The center's time zone, in which ``[[hours]]`` are read."""
    language: Literal["en", "zh"] = "en"
    """Prompts' language when the flow says "customer" and the customer is unknown."""
    first_announce_s: float = Field(30.0, ge=0)
    announce_every_s: float = Field(60.0, gt=0)
    wait_tolerance_s: float = Field(60.0, ge=0)
    """An announced wait never goes up by more than this from one to the next unless
    the queue changed."""
    callback_offer: bool = True
    callback_key: Annotated[str, Field(min_length=1, max_length=1, pattern=r"^[0-9*#]$")] = "1"
    voicemail_key: Annotated[str, Field(max_length=1, pattern=r"^[0-9*#]?$")] = ""
    """A key that leaves a message from the queue (offered with the callback); empty: none."""
    key_timeout_s: float = Field(8.0, gt=0, le=120)
    """Time for a key in the callback dialogue (confirm, enter the number)."""
    max_retries: int = Field(2, ge=0, le=10)
    """Wrong keys or silences in the callback dialogue before it gives up."""
    voicemail_max_s: float = Field(120.0, gt=0, le=3600)
    prompts_dir: str = Field("", max_length=4096)
    """A folder of the center's own recordings (<lang>/<clip>.wav); empty: shipped only."""
    queue_languages: dict[str, Literal["en", "zh"]] = Field(default_factory=dict, max_length=1000)
    """Per queue, the language its waiting callers hear (a known customer's own language,
    under a flow with language = "customer", comes first)."""

    @model_validator(mode="after")
    def _keys_apart(self) -> CallerSettings:
        if self.voicemail_key and self.voicemail_key == self.callback_key:
            raise LocatedError(
                f"voicemail_key {self.voicemail_key!r} is the callback_key too", "voicemail_key"
            )
        return self


def check_flows(
    flows: Sequence[CallFlow],
    hours: Sequence[Hours],
    queues: set[str],
    languages: Iterable[str] = (),
) -> None:
    """What one flow alone cannot check: dialled numbers in two flows, queues that do not
    exist, a queue with two ``[[hours]]``. Raises :class:`LocatedError` (from
    ``Config``'s validator, so its place is from the top: ``flows.1.queue``)."""
    owner: dict[str, int] = {}
    for i, flow in enumerate(flows):
        for j, number in enumerate(flow.dnis):
            if number in owner:
                raise LocatedError(
                    f"dialled number {number!r} is in flows {owner[number]} and {i}",
                    "flows",
                    i,
                    "dnis",
                    j,
                )
            owner[number] = i
        for queue, where in flow.named_queues():
            if queue not in queues:
                raise LocatedError(
                    f"flow for {flow.dnis[0]!r} names queue {queue!r}, which is not among "
                    f"the [[queues]] {sorted(queues)}",
                    "flows",
                    i,
                    *where,
                )
    for queue in languages:
        if queue not in queues:
            raise LocatedError(
                f"[caller] queue_languages names queue {queue!r}, not among the [[queues]] "
                f"{sorted(queues)}",
                "caller",
                "queue_languages",
                queue,
            )
    ruled: dict[str, int] = {}
    for i, h in enumerate(hours):
        for j, queue in enumerate(h.queues):
            if queue not in queues:
                raise LocatedError(
                    f"[[hours]] names queue {queue!r}, not among the [[queues]] {sorted(queues)}",
                    "hours",
                    i,
                    "queues",
                    j,
                )
            if queue in ruled:
                raise LocatedError(
                    f"queue {queue!r} has two [[hours]] tables ({ruled[queue]} and {i})",
                    "hours",
                    i,
                    "queues",
                    j,
                )
            ruled[queue] = i


def flow_for(flows: Iterable[CallFlow], dnis: str) -> CallFlow | None:
    """The flow of a dialled number, if one lists it."""
    return next((f for f in flows if dnis in f.dnis), None)


def language_for(
    flow: CallFlow, caller: CallerSettings, customer_language: str | None
) -> Literal["en", "zh"]:
    """The prompts' language of a call: the flow's, or for "customer" the known
    customer's ("zh", "zh-CN", "en-GB"...), else ``[caller] language``."""
    if flow.language != "customer":
        return flow.language
    spoken = (customer_language or "").strip().lower()
    if spoken.startswith("zh"):
        return "zh"
    if spoken.startswith("en"):
        return "en"
    return caller.language
