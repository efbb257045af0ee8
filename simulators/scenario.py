"""Scenario files: what the simulator runs, as TOML validated by pydantic.

A scenario is a day (or part of one) of a center: its queues (the production
``QueueConfig``), the traffic each queue receives (arrival rates per interval, the
value mix of the callers, handle times, patience, callback take-up), the agents (groups
with skills, queues, shifts and breaks), a warm-up that statistics leave out, and a
seed. See ``simulators/scenarios/*.toml`` for examples; every key is described below.

Times of day are ``"HH:MM"`` from midnight; the simulation clock counts seconds from the
scenario's ``start``.
"""

from __future__ import annotations

import math
import random
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from cti.call_flows import KEYS, CallerSettings, CallFlow, check_flows, flow_for
from cti.errors import SimulationError
from cti.models import QueueConfig, SkillLevel


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- distributions -------------------------------------------------------------------


class Exponential(_Model):
    kind: Literal["exponential"] = "exponential"
    mean_s: float = Field(gt=0)

    def draw(self, rng: random.Random) -> float:
        return rng.expovariate(1.0 / self.mean_s)

    @property
    def mean(self) -> float:
        return self.mean_s


class Lognormal(_Model):
    kind: Literal["lognormal"] = "lognormal"
    mean_s: float = Field(gt=0)
    sd_s: float = Field(gt=0)

    def draw(self, rng: random.Random) -> float:
        # Parameters of the underlying normal from the lognormal's mean and sd.
        sigma2 = math.log(1.0 + (self.sd_s / self.mean_s) ** 2)
        mu = math.log(self.mean_s) - sigma2 / 2.0
        return rng.lognormvariate(mu, math.sqrt(sigma2))

    @property
    def mean(self) -> float:
        return self.mean_s


class Fixed(_Model):
    kind: Literal["fixed"] = "fixed"
    value_s: float = Field(ge=0)

    def draw(self, rng: random.Random) -> float:
        return self.value_s

    @property
    def mean(self) -> float:
        return self.value_s


class Never(_Model):
    """No patience: the caller waits as long as it takes."""

    kind: Literal["none"] = "none"

    def draw(self, rng: random.Random) -> float:
        return math.inf

    @property
    def mean(self) -> float:
        return math.inf


HandleTime = Annotated[Exponential | Lognormal | Fixed, Field(discriminator="kind")]
Patience = Annotated[Exponential | Never, Field(discriminator="kind")]


# --- traffic -------------------------------------------------------------------------


class ValueShare(_Model):
    """A share of the callers whose value (0..100) is uniform in [low, high]."""

    share: float = Field(gt=0)
    low: float = Field(0.0, ge=0, le=100)
    high: float = Field(0.0, ge=0, le=100)
    label: str = ""
    """A name for this group in reports (e.g. "vip"); defaults to the value segment."""

    @model_validator(mode="after")
    def _ordered(self) -> ValueShare:
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must not be below low ({self.low})")
        return self


class CallbackOffer(_Model):
    """After ``offer_after_s`` of waiting, a share ``take_up`` of callers asks for a
    callback (virtual hold: they hang up and keep their place)."""

    offer_after_s: float = Field(ge=0)
    take_up: float = Field(ge=0, le=1)


#: In ``Traffic.keys``: the share of callers who hang up in that menu.
HANG_UP = "hang_up"


class Traffic(_Model):
    """The calls one queue receives, or (``flow``) the calls of one dialled number whose
    flow (greeting, menus) chooses the queue."""

    queue: str = ""
    """The queue the calls join; or give ``flow``."""
    flow: str = ""
    """A dialled number of one of the scenario's ``[[flows]]``: callers hear its greeting
    and menus (the shipped prompts' lengths) and press keys as ``keys`` says."""
    keys: dict[str, dict[str, float]] = Field(default_factory=dict)
    """With ``flow``: menu name -> {key: share of callers who press it each time the
    menu's prompt plays}; ``hang_up``: the share who hang up there; the rest press
    nothing (the menu's no-key prompt, then its ``after_retries``)."""
    key_delay_s: float = Field(2.0, ge=0)
    """With ``flow``: seconds after a prompt ends that a caller presses its key."""
    callback_take_up: float = Field(0.0, ge=0, le=1)
    """With ``flow``: the share of callers who accept each callback offer they hear
    (``[caller] callback_offer``: at each announcement, from ``first_announce_s``)."""
    message_s: HandleTime = Fixed(value_s=30.0)
    """With ``flow``: how long a voicemail message is (then ``#``; ``voicemail_max_s``
    cuts it)."""
    rate_per_hour: float | None = Field(None, ge=0)
    """A constant Poisson rate; or give ``rates_per_hour`` per interval."""
    interval_minutes: Literal[15, 30, 60] = 30
    rates_per_hour: tuple[Annotated[float, Field(ge=0)], ...] = ()
    """Poisson rate of each interval from the start; the last one holds to the end."""
    values: tuple[ValueShare, ...] = (ValueShare(share=1.0),)
    handle: HandleTime = Exponential(mean_s=180.0)
    patience: Patience = Never()
    callback: CallbackOffer | None = None

    @model_validator(mode="after")
    def _one_rate(self) -> Traffic:
        if (self.rate_per_hour is None) == (not self.rates_per_hour):
            raise ValueError("give either rate_per_hour or rates_per_hour, not both or neither")
        if bool(self.queue) == bool(self.flow):
            raise ValueError("give either queue or flow (a dialled number), not both or neither")
        if not self.flow and (self.keys or self.callback_take_up):
            raise ValueError("keys and callback_take_up need a flow")
        if self.flow and self.callback is not None:
            raise ValueError(
                "with a flow the callback is offered at the [caller] announcements: "
                "give callback_take_up instead of callback"
            )
        for menu, shares in self.keys.items():
            for key, share in shares.items():
                if key != HANG_UP and (len(key) != 1 or key not in KEYS):
                    raise ValueError(f"keys.{menu}: {key!r} is no phone key (0-9, * or #) "
                                     f"nor {HANG_UP}")  # fmt: skip
                if not 0 <= share <= 1:
                    raise ValueError(f"keys.{menu}.{key}: share {share} is not in [0, 1]")
            if math.fsum(shares.values()) > 1 + 1e-9:
                raise ValueError(f"keys.{menu}: the shares add up to more than 1")
        return self

    def rate_at(self, t: float) -> float:
        """Arrivals per hour at ``t`` seconds from the start."""
        if self.rate_per_hour is not None:
            return self.rate_per_hour
        i = min(int(t // (self.interval_minutes * 60)), len(self.rates_per_hour) - 1)
        return self.rates_per_hour[i]

    def next_change(self, t: float) -> float:
        """When the rate next changes after ``t`` (inf if never)."""
        if self.rate_per_hour is not None:
            return math.inf
        width = self.interval_minutes * 60.0
        i = int(t // width) + 1
        return i * width if i < len(self.rates_per_hour) else math.inf

    def draw_value(self, rng: random.Random) -> tuple[float, str]:
        total = sum(v.share for v in self.values)
        u = rng.random() * total
        for v in self.values:
            u -= v.share
            if u <= 0:
                break
        value = v.low if v.high == v.low else rng.uniform(v.low, v.high)
        return value, v.label


# --- agents --------------------------------------------------------------------------


def _clock(text: str) -> float:
    """``"HH:MM"`` -> seconds from midnight."""
    try:
        hours, minutes = text.split(":")
        h, m = int(hours), int(minutes)
    except ValueError:
        raise ValueError(f"{text!r} is not a time of day (expected HH:MM, e.g. 08:30)") from None
    if not (0 <= h <= 24 and 0 <= m < 60) or (h == 24 and m):
        raise ValueError(f"{text!r} is not a time of day (expected HH:MM between 00:00 and 24:00)")
    return h * 3600.0 + m * 60.0


def _time_of_day(text: str) -> str:
    _clock(text)
    return text


TimeOfDay = Annotated[str, Field(pattern=r"^\d{1,2}:\d{2}$"), AfterValidator(_time_of_day)]
"""``"HH:MM"``, checked where it is given (so an error names that key)."""


class Break(_Model):
    start: TimeOfDay
    minutes: float = Field(gt=0)


class Shift(_Model):
    start: TimeOfDay
    end: TimeOfDay
    breaks: tuple[Break, ...] = ()

    @model_validator(mode="after")
    def _inside(self) -> Shift:
        start, end = _clock(self.start), _clock(self.end)
        if end <= start:
            raise ValueError(f"shift ends ({self.end}) before it starts ({self.start})")
        for b in self.breaks:
            at = _clock(b.start)
            if not start <= at < end:
                raise ValueError(f"break at {b.start} is outside the shift {self.start}-{self.end}")
        return self


class AgentGroup(_Model):
    """``count`` agents alike: ids ``{name}-1`` .. ``{name}-{count}``."""

    name: str = "agent"
    count: int = Field(ge=1)
    skills: dict[str, SkillLevel] = Field(default_factory=dict)
    queues: dict[str, float] = Field(default_factory=dict)
    """Queue -> this group's priority (rank bonus) for it."""
    shifts: tuple[Shift, ...] = ()
    """Empty: on duty for the whole scenario."""
    wrap_up: HandleTime = Fixed(value_s=0.0)
    """How long these agents take over wrap-up (the queue's wrap_up_s caps it)."""


# --- the scenario --------------------------------------------------------------------


class Scenario(_Model):
    name: str
    description: str = ""
    start: TimeOfDay = "08:00"
    hours: float = Field(8.0, gt=0)
    """Arrivals run for this long; calls still in progress then are finished."""
    warm_up_minutes: float = Field(0.0, ge=0)
    """Calls arriving in the warm-up are left out of the statistics."""
    seed: int = 1
    replications: int = Field(20, ge=1)
    max_missed_offers: int = Field(1, ge=1)
    queues: tuple[QueueConfig, ...]
    traffic: tuple[Traffic, ...]
    agents: tuple[AgentGroup, ...]
    flows: tuple[CallFlow, ...] = ()
    """Call flows as in the configuration file (``[[flows]]``); a traffic's ``flow``
    names one by a dialled number."""
    caller: CallerSettings = CallerSettings()
    """What queued callers of a flow hear (``[caller]``: announcements, callback offer)."""

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        names = [q.name for q in self.queues]
        if len(set(names)) != len(names):
            raise ValueError(f"queue names must be unique, got {names}")
        check_flows(self.flows, (), set(names))
        for i, t in enumerate(self.traffic):
            if t.flow:
                _check_flow_traffic(i, t, self.flows)
            elif t.queue not in names:
                raise ValueError(f"traffic[{i}].queue {t.queue!r} is not one of {names}")
        for i, group in enumerate(self.agents):
            if not group.queues:
                raise ValueError(f"agents[{i}] ({group.name}) serves no queue")
            for q in group.queues:
                if q not in names:
                    raise ValueError(
                        f"agents[{i}] ({group.name}) names queue {q!r}, not one of {names}"
                    )
        ids = [g.name for g in self.agents]
        if len(set(ids)) != len(ids):
            raise ValueError(f"agent group names must be unique, got {ids}")
        if self.warm_up_minutes * 60 >= self.hours * 3600:
            raise ValueError("the warm-up must be shorter than the scenario")
        return self

    @property
    def start_s(self) -> float:
        """The scenario's start as seconds from midnight."""
        return _clock(self.start)

    @property
    def duration_s(self) -> float:
        return self.hours * 3600.0

    @property
    def warm_up_s(self) -> float:
        return self.warm_up_minutes * 60.0

    def on_duty(self, group: AgentGroup) -> list[tuple[float, float, list[tuple[float, float]]]]:
        """Each shift of ``group`` as (login, logout, [(break start, break end)]) in
        scenario seconds; the whole scenario (and drain) if the group has no shifts."""
        if not group.shifts:
            return [(0.0, math.inf, [])]
        out = []
        base = self.start_s
        for shift in group.shifts:
            breaks = [
                (_clock(b.start) - base, _clock(b.start) - base + b.minutes * 60.0)
                for b in shift.breaks
            ]
            out.append((_clock(shift.start) - base, _clock(shift.end) - base, breaks))
        return out


def _check_flow_traffic(i: int, traffic: Traffic, flows: tuple[CallFlow, ...]) -> None:
    flow = flow_for(flows, traffic.flow)
    if flow is None:
        numbers = [n for f in flows for n in f.dnis]
        raise ValueError(f"traffic[{i}].flow {traffic.flow!r} is no dialled number of the "
                         f"[[flows]] {numbers}")  # fmt: skip
    menus = [m.name for m in flow.menus]
    for menu in traffic.keys:
        if menu not in menus:
            raise ValueError(f"traffic[{i}].keys names menu {menu!r}, not one of {menus}")


def scenario_flow(scenario: Scenario, traffic: Traffic) -> CallFlow:
    """The flow of a traffic that has one (the scenario checked it exists)."""
    flow = flow_for(scenario.flows, traffic.flow)
    if flow is None:
        raise SimulationError(f"no flow has the dialled number {traffic.flow!r}")
    return flow


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; errors name the file and the key."""
    path = Path(path)
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise SimulationError(f"scenario file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SimulationError(f"scenario file {path} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SimulationError(f"scenario file {path} is not valid TOML: {exc}") from None
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            lines.append(f"  {key}: {err['msg']}")
        raise SimulationError(f"scenario {path} is not valid:\n" + "\n".join(lines)) from None


SCENARIO_DIR = Path(__file__).parent / "scenarios"
"""The scenarios shipped with CTI Desk."""
