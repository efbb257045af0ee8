"""Configuration from a TOML file; every key has a documented default.

The defaults, with a comment on each key, are in ``cti/default_config.toml`` (shipped
with the package and printed by ``cti config``). A user's file overrides them key by
key; unknown keys are errors, named with the file and the key.
"""

from __future__ import annotations

import asyncio
import logging
import tomllib
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cti.call_flows import CallerSettings, CallFlow, Hours, check_flows
from cti.config_lines import error_path, key_lines, line_of
from cti.errors import ConfigError
from cti.models import AgentConfig, QueueConfig
from cti.scoring import ValueModel

log = logging.getLogger(__name__)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EngineSettings(_Section):
    default_region: str = "CN"
    max_missed_offers: int = Field(1, ge=1)
    status_interval_s: float = Field(1.0, gt=0)
    dispositions: tuple[str, ...] = (
        "resolved",
        "follow-up",
        "sale",
        "no sale",
        "complaint",
        "wrong number",
    )
    not_ready_reasons: tuple[str, ...] = ("break", "lunch", "meeting", "training", "coaching")
    """Reasons an agent chooses from when going Not Ready (the desk's ``n``, keys 1-9)."""
    default_queue: str = "general"
    dnis_queues: dict[str, str] = Field(default_factory=dict)
    seed: int = 0
    time_zone: str = "Asia/Shanghai"
    callback_max_days_ahead: float = Field(366.0, gt=0)
    """Callbacks further ahead are refused (a far date would keep the journal uncut)."""
    console_grace_s: float = Field(10.0, ge=0)
    """An agent's console gone offline (its last will) this long with the agent logged
    in: the engine logs the agent out, the call handed back (cti/engine/presence.py)."""


class StoreSettings(_Section):
    path: str = ""


class RoleSettings(_Section):
    """What a role may do with the customer base."""

    search: bool = False
    """Search the customer base and read any customer (not only their calls')."""
    members: tuple[str, ...] = ()
    """Agent ids with this role (an agent listed nowhere has ``default_role``)."""


class AccessSettings(_Section):
    """Who may read which customers (docs/customers.md, "Who may read a customer")."""

    default_role: str = "agent"
    recent_calls: int = Field(20, ge=0)
    """An agent reads the customers of their current call and of this many last calls..."""
    recent_hours: float = Field(24.0, ge=0)
    """...ended within this many hours."""
    roles: dict[str, RoleSettings] = Field(
        default_factory=lambda: {
            "agent": RoleSettings(),
            "supervisor": RoleSettings(search=True),
        }
    )

    def role_of(self, agent_id: str) -> str:
        return next(
            (name for name, role in self.roles.items() if agent_id in role.members),
            self.default_role,
        )

    def may_search(self, agent_id: str) -> bool:
        role = self.roles.get(self.role_of(agent_id))
        return role is not None and role.search


class DemoSettings(_Section):
    human_agent: str = "1001"
    bots: int = Field(10, ge=0)
    rate_per_hour: float = Field(180.0, ge=0)
    mean_handle_s: float = Field(180.0, gt=0)
    mean_patience_s: float = Field(120.0, ge=0)
    bot_answer_delay_s: float = Field(2.0, ge=0)
    bot_wrap_up_s: float = Field(5.0, ge=0)
    customers: int = Field(2000, ge=0)
    unknown_share: float = Field(0.15, ge=0, le=1)
    private_share: float = Field(0.05, ge=0, le=1)
    malformed_share: float = Field(0.02, ge=0, le=1)
    seed: int = 7


class WebClientSettings(_Section):
    """A client of the callback endpoint (``[[web.clients]]``, docs/web_callbacks.md):
    an API key kept as its SHA-256, and/or an HMAC secret read from the environment or
    a file (never from this file)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    key_sha256: str = Field("", pattern=r"^([0-9a-fA-F]{64})?$")
    secret_env: str = Field("", max_length=128)
    secret_file: str = Field("", max_length=4096)

    @model_validator(mode="after")
    def _some_credential(self) -> WebClientSettings:
        if not (self.key_sha256 or self.secret_env or self.secret_file):
            raise ValueError(f"web client {self.name!r}: set key_sha256, secret_env or secret_file")
        if self.secret_env and self.secret_file:
            raise ValueError(f"web client {self.name!r}: secret_env or secret_file, not both")
        return self


class WebCallbackSettings(_Section):
    """``[web.callbacks]``: who may ask for a callback, how often, for which numbers and
    when (docs/web_callbacks.md)."""

    anonymous: bool = False
    signature_max_age_s: float = Field(300.0, gt=0, le=3600)
    client_rate_per_minute: float = Field(30.0, ge=0)
    client_burst: int = Field(10, ge=1)
    total_rate_per_minute: float = Field(120.0, ge=0)
    total_burst: int = Field(30, ge=1)
    number_rate_per_hour: float = Field(3.0, ge=0)
    number_burst: int = Field(2, ge=1)
    max_pending: int = Field(20, ge=0)
    max_pending_per_number: int = Field(1, ge=0)
    max_days_ahead: float = Field(14.0, gt=0)
    max_minutes_behind: float = Field(5.0, ge=0)
    regions: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    refused_prefixes: tuple[str, ...] = ()
    number_types: tuple[str, ...] = ("fixed_line", "mobile", "fixed_line_or_mobile")
    queues: tuple[str, ...] = ()
    default_queue: str = ""

    @field_validator("prefixes", "refused_prefixes")
    @classmethod
    def _e164_prefixes(cls, prefixes: tuple[str, ...]) -> tuple[str, ...]:
        bad = [p for p in prefixes if not (p.startswith("+") and p[1:].isdigit())]
        if bad:
            raise ValueError(f"prefixes are + and digits (E.164), e.g. '+86138'; got {bad}")
        return prefixes

    @field_validator("number_types")
    @classmethod
    def _known_types(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        import phonenumbers

        known = {
            k.lower() for k in vars(phonenumbers.PhoneNumberType) if k.isupper() and k != "UNKNOWN"
        }
        bad = [n for n in names if n not in known]
        if bad:
            raise ValueError(f"unknown number types {bad}; known: {', '.join(sorted(known))}")
        return names


class WebSettings(_Section):
    callbacks_port: int = Field(0, ge=0, le=65535)
    host: str = "127.0.0.1"
    callbacks: WebCallbackSettings = WebCallbackSettings()
    clients: tuple[WebClientSettings, ...] = ()

    @model_validator(mode="after")
    def _safe(self) -> WebSettings:
        names = [c.name for c in self.clients]
        if len(set(names)) != len(names):
            raise ValueError(f"web client names must be unique, got {names}")
        if self.callbacks.anonymous and self.host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError(
                f"[web.callbacks] anonymous = true only on loopback, not host {self.host!r}"
            )
        return self


class BrokerSettings(_Section):
    """Where the bus runs: empty ``url`` is the in-process bus (the embedded demo)."""

    url: str = ""
    client_id: str = ""
    keepalive_s: float = Field(30.0, gt=0)
    max_in_flight: int = Field(100, ge=1)
    reconnect_min_s: float = Field(0.5, gt=0)
    reconnect_max_s: float = Field(30.0, gt=0)
    ca_file: str = ""


class WallboardSettings(_Section):
    """The supervisor wallboard's colours and alerts (`cti supervisor`)."""

    service_level_goal: float = Field(0.80, ge=0, le=1)
    service_level_alert: float = Field(0.70, ge=0, le=1)
    service_level_min_offered: int = Field(5, ge=0)
    service_level_clear_margin: float = Field(0.02, ge=0, le=1)
    longest_wait_warn_s: float = Field(30.0, gt=0)
    longest_wait_alert_s: float = Field(60.0, gt=0)
    longest_wait_clear_margin_s: float = Field(5.0, ge=0)
    history_minutes: int = Field(60, ge=1, le=24 * 60)

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> WallboardSettings:
        if self.service_level_alert > self.service_level_goal:
            raise ValueError("service_level_alert must not be above service_level_goal")
        if self.longest_wait_warn_s > self.longest_wait_alert_s:
            raise ValueError("longest_wait_warn_s must not be above longest_wait_alert_s")
        return self


class SimLineSettings(_Section):
    """The simulator trunk (the demo's callers)."""

    kind: Literal["sim"] = "sim"
    name: str = "sim"
    queue: str = ""


class ModemLineSettings(_Section):
    """A serial voice modem on one analogue line."""

    kind: Literal["modem"] = "modem"
    name: str
    port: str
    baud: int = Field(115200, gt=0)
    queue: str = ""
    dnis: str = ""
    init: tuple[str, ...] = ()
    ring_timeout_s: float = Field(8.0, gt=0)
    answer_timeout_s: float = Field(10.0, gt=0)
    dial_timeout_s: float = Field(60.0, gt=0)


SIP_CODECS = ("PCMU", "PCMA")
"""The codecs the SIP line speaks (G.711); telephone-event (DTMF) is always offered too."""


class SipLineSettings(_Section):
    """A SIP trunk or PBX connection over UDP."""

    kind: Literal["sip"] = "sip"
    name: str
    bind_host: str = "127.0.0.1"
    bind_port: int = Field(5060, ge=0, le=65535)
    public_host: str = ""
    queue: str = ""
    registrar: str = ""
    username: str = ""
    password: str = ""
    register_expires_s: int = Field(3600, ge=60)
    outbound_proxy: str = ""
    codecs: tuple[str, ...] = ("PCMU", "PCMA")
    rtp_port_min: int = Field(10000, ge=1024, le=65535)
    rtp_port_max: int = Field(20000, ge=1024, le=65535)
    keepalive_s: float = Field(30.0, ge=0)
    phone_credentials: str = ""
    """The HA1 file of the agents' phones (``cti phone-credentials``): with it the line is
    the registrar of its agents' phones. "": phones do not register here."""
    phone_qualify_s: float = Field(30.0, ge=0)
    """OPTIONS to each agent's phone this often (one that stops answering is unreachable);
    0: none."""
    phone_algorithms: tuple[Literal["SHA-256", "MD5"], ...] = Field(
        ("SHA-256", "MD5"), min_length=1
    )
    """Digest algorithms offered to the phones, in order (``["MD5"]`` for phones that
    answer only the first challenge and know only MD5, such as baresip 1.0)."""
    transports: tuple[Literal["udp", "tcp", "tls"], ...] = Field(("udp",), min_length=1)
    """What the line listens on (docs/sip.md, Transports): udp and tcp at ``bind_port``,
    tls at ``tls_port``; it sends by whichever the target asks for."""
    tls_port: int = Field(5061, ge=0, le=65535)
    tls_cert_file: str = ""
    """Our certificate chain (PEM), needed to listen for TLS."""
    tls_key_file: str = ""
    tls_ca_file: str = ""
    """Trust this CA (PEM) for the peers' certificates instead of the system's."""
    tls_pin_sha256: tuple[str, ...] = ()
    """Accept only peer certificates with these SHA-256 fingerprints (hex, colons allowed)."""
    tls_verify: bool = True
    """false: peers' certificates are not checked at all (tests only)."""
    dns_servers: tuple[str, ...] = ()
    """``host[:port]`` name servers for NAPTR/SRV/A (RFC 3263); empty: the system's."""
    stream_idle_s: float = Field(600.0, gt=0)
    """A TCP or TLS connection idle this long is closed."""
    srtp: Literal["off", "offer", "require"] = "off"
    """SRTP keyed by SDES on trunk calls (docs/sip.md, SRTP); needs "tls" in transports."""
    phone_srtp: Literal["off", "offer", "require"] = "off"
    """SRTP on the legs to the agents' phones, likewise."""

    @model_validator(mode="after")
    def _srtp_over_tls(self) -> SipLineSettings:
        for key in ("srtp", "phone_srtp"):
            mode = getattr(self, key)
            if mode != "off" and "tls" not in self.transports:
                raise ValueError(
                    f"{key} = {mode!r} needs tls in transports: SRTP keys (SDES) travel "
                    f"in the SDP, in clear over {' and '.join(self.transports)}"
                )
        return self

    @field_validator("codecs")
    @classmethod
    def _known_codecs(cls, codecs: tuple[str, ...]) -> tuple[str, ...]:
        """Known names only (any case; duplicates dropped), at least one of them."""
        unknown = [c for c in codecs if c.strip().upper() not in SIP_CODECS]
        if unknown:
            raise ValueError(
                f"unknown codec {', '.join(map(repr, unknown))}: the SIP line speaks "
                f"{' and '.join(SIP_CODECS)} (telephone-event is always offered besides)"
            )
        names = tuple(dict.fromkeys(c.strip().upper() for c in codecs))
        if not names:
            raise ValueError(f"no codec: list at least one of {', '.join(SIP_CODECS)}")
        return names


def _one_line(what: str, text: str) -> None:
    if "\r" in text or "\n" in text:
        raise ValueError(f"{what} must be one line (no CR or LF): a mail header")


class MailTemplate(_Section):
    """A mail a script's ``send_email`` names (``[mail.templates.NAME]``; docs/scripts.md):
    subject and body with the call's variables (``{customer.name}``), the body given here
    or read from a UTF-8 file (relative to the working folder) when the mail is sent."""

    subject: str = Field(min_length=1, max_length=200)
    body: str = Field("", max_length=100_000)
    body_file: str = Field("", max_length=4096)

    @model_validator(mode="after")
    def _one_body(self) -> MailTemplate:
        _one_line("a template's subject", self.subject)
        if bool(self.body) == bool(self.body_file):
            raise ValueError("a mail template has body or body_file (one of them)")
        return self


class MailSettings(_Section):
    """``[mail]``: the SMTP server that sends scripts' ``send_email`` (cti/engine/mail.py).
    Empty ``host``: nothing is sent (the mails wait in the outbox)."""

    host: str = Field("", max_length=253)
    port: int = Field(0, ge=0, le=65535)
    """0: 25, 587 with starttls, 465 with tls."""
    tls: Literal["none", "starttls", "tls"] = "starttls"
    ca_file: str = Field("", max_length=4096)
    user: str = Field("", max_length=256)
    password_file: str = Field("", max_length=4096)
    """The password, read from this file when sending (never kept in the config)."""
    from_address: str = Field("", max_length=254)
    from_name: str = Field("", max_length=100)
    timeout_s: float = Field(30.0, gt=0, le=600)
    max_attempts: int = Field(5, ge=1, le=50)
    retry_first_s: float = Field(60.0, gt=0)
    retry_most_s: float = Field(3600.0, gt=0)
    templates: dict[str, MailTemplate] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _complete(self) -> MailSettings:
        _one_line("[mail] from_address", self.from_address)
        _one_line("[mail] from_name", self.from_name)
        if self.host and not self.from_address:
            raise ValueError("[mail] host is set: set from_address too")
        if bool(self.user) != bool(self.password_file):
            raise ValueError("[mail] user and password_file go together (both or neither)")
        return self


RecordShare = Literal["all", "none"] | Annotated[float, Field(ge=0, le=100)]
"""Which calls to record: all, none, or a percentage of them (chosen per call)."""


class VoiceSettings(_Section):
    """The conversation on lines that carry the voice (SIP): music, recording, phones."""

    hold_music: str = ""
    """A WAV file (8 kHz mono) for callers on hold; empty: the piece shipped with CTI Desk."""
    queue_music: dict[str, str] = Field(default_factory=dict)
    """Per queue, its own hold music (queue name -> WAV file)."""
    record: RecordShare = "all"
    record_queues: dict[str, RecordShare] = Field(default_factory=dict)
    """Per queue, overrides ``record``."""
    recordings_dir: str = "recordings"
    """Where recordings go (relative to the working folder), one file per call id."""
    recording_format: Literal["pcm16", "g711"] = "pcm16"
    retention_days: float = Field(90.0, gt=0)
    """Recordings older than this are deleted (their call records stay)."""
    announce_recording: str = ""
    """A WAV file played to the caller before the agent is connected ("this call may be
    recorded"); empty: none."""
    phone_silence_s: float = Field(30.0, ge=5, le=3600)
    """A phone that sends no audio for this long has left the call."""
    require_phone: bool = True
    """With a voice line, an agent goes Ready only with a reachable phone."""


LineSettings = Annotated[
    SimLineSettings | ModemLineSettings | SipLineSettings, Field(discriminator="kind")
]


class Config(_Section):
    engine: EngineSettings = EngineSettings()
    queues: tuple[QueueConfig, ...] = (QueueConfig(name="general", wrap_up_s=60.0),)
    agents: tuple[AgentConfig, ...] = ()
    store: StoreSettings = StoreSettings()
    demo: DemoSettings = DemoSettings()
    web: WebSettings = WebSettings()
    broker: BrokerSettings = BrokerSettings()
    lines: tuple[LineSettings, ...] = ()
    customers: ValueModel = ValueModel()
    wallboard: WallboardSettings = WallboardSettings()
    access: AccessSettings = AccessSettings()
    voice: VoiceSettings = VoiceSettings()
    flows: tuple[CallFlow, ...] = ()
    hours: tuple[Hours, ...] = ()
    caller: CallerSettings = CallerSettings()
    mail: MailSettings = MailSettings()

    @model_validator(mode="after")
    def _queues_consistent(self) -> Config:
        names = [q.name for q in self.queues]
        if not names:
            raise ValueError("at least one [[queues]] table is required")
        if len(set(names)) != len(names):
            raise ValueError(f"queue names must be unique, got {names}")
        targets = {self.engine.default_queue, *self.engine.dnis_queues.values()}
        for q in self.queues:
            exits = (q.exits.max_wait, q.exits.max_length, q.exits.no_agents)
            targets.update(e.queue for e in exits if e is not None and e.queue)
        for a in self.agents:
            targets.update(a.queues)
        targets.update(line.queue for line in self.lines if line.queue)
        targets.update(self.web.callbacks.queues)
        targets.update(
            [self.web.callbacks.default_queue] if self.web.callbacks.default_queue else []
        )
        missing = sorted(targets - set(names))
        if missing:
            raise ValueError(f"routing, exits or agents name undefined queues: {missing}")
        ids = [a.id for a in self.agents]
        if len(set(ids)) != len(ids):
            raise ValueError(f"agent ids must be unique, got {ids}")
        line_names = [line.name for line in self.lines]
        if len(set(line_names)) != len(line_names):
            raise ValueError(f"line names must be unique, got {line_names}")
        check_flows(self.flows, self.hours, set(names), self.caller.queue_languages)
        return self

    def queue(self, name: str) -> QueueConfig:
        for q in self.queues:
            if q.name == name:
                return q
        raise ConfigError(f"no queue named {name!r}")


def default_config_text() -> str:
    """The shipped defaults file, with its comments."""
    return resources.files("cti").joinpath("default_config.toml").read_text("utf-8")


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults, then the file at ``path`` (if any), then ``overrides`` (section -> keys)."""
    data: dict[str, Any] = tomllib.loads(default_config_text())
    where = "the defaults"
    text = ""
    if path is not None:
        where = str(path)
        try:
            text = Path(path).read_text("utf-8")
            user = tomllib.loads(text)
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} cannot be read: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        _merge(data, user)
    if overrides:
        _merge(data, overrides)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        lines = []
        found = key_lines(text)
        for err in exc.errors():
            loc = error_path(err)
            key = ".".join(str(p) for p in loc) or "(top level)"
            got = err.get("input")
            shown = f" (got {_escaped(got)})" if isinstance(got, str) else ""
            line = line_of(found, loc)
            at = f"line {line}: " if line else ""
            lines.append(f"  {at}{key}: {err['msg']}{shown}")
        raise ConfigError(f"config from {where} is not valid:\n" + "\n".join(lines)) from None


def _escaped(text: str, limit: int = 80) -> str:
    """A bad value for an error line: quoted, control characters escaped (repr), cut."""
    return repr(text[:limit]) + ("…" if len(text) > limit else "")


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    """Merge ``extra`` into ``base``: tables key by key, everything else replaced."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


async def watch_config(path: str | Path, interval_s: float = 2.0) -> AsyncIterator[Config]:
    """Yield the configuration from ``path`` each time the file changes and is valid.

    A file that does not load is logged with the reason (file and key) and skipped; the
    last good configuration stays in force. Polls the file's modification time.
    """
    path = Path(path)
    seen = _stamp(path)
    while True:
        await asyncio.sleep(interval_s)
        stamp = _stamp(path)
        if stamp == seen:
            continue
        seen = stamp
        try:
            config = load_config(path)
        except ConfigError as exc:
            log.error("configuration not reloaded: %s", exc)
            continue
        log.info("configuration reloaded from %s", path)
        yield config


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)
