"""Internet callback requests: a small HTTP endpoint in front of the engine service.

A customer (through a web form or an app) asks to be called back; the client's back end
sends the request here, and it becomes a callback in the queue, ranked by the customer's
value like an inbound call. The API, the configuration (``[web]``, ``[web.callbacks]``,
``[[web.clients]]``) and the signing recipe are in ``docs/web_callbacks.md``.

``POST /v1/callbacks``
    JSON ``{"number", "name", "queue", "local_time", "time_zone"}`` (only ``number`` is
    required); ``202`` with ``{"id", "queue", "state", "position", "estimated_wait_s"}``.
``GET /v1/callbacks/{id}``
    The same view, for the client that asked for it (others get ``404``).
``GET /healthz``
    ``200 {"ok": true}``, without credentials.

Every request but ``/healthz`` is authenticated (an API key as a bearer token, or an
HMAC-SHA256 signature over a timestamp, the method, the path and the body, a replay
refused), rate-limited (per client, all clients together, per number), and a callback
must pass the number policy (regions, prefixes, number types: no premium rate, shared
cost or international non-geographic numbers), a horizon for its time, and caps on
the callbacks pending (in all and per number). Every refusal is JSON ``{"error",
"field"}`` naming what was wrong.

The work is done by :meth:`WebCallbacks.handle`, which takes a plain
:class:`HttpRequest` and ``now`` (so tests and the flood test drive it on virtual time);
aiohttp is only the thin shell around it, on the engine's event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import os
import unicodedata
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.typedefs import Handler
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from cti import log_limits
from cti.config import WebCallbackSettings, WebClientSettings, WebSettings
from cti.engine.service import EngineService
from cti.errors import CtiError, RoutingError
from cti.phone import classify
from cti.rate_limit import KeyedBuckets, TokenBucket

log = logging.getLogger(__name__)

#: Largest request body accepted (bytes); more is answered 413.
MAX_BODY = 4096
#: Callback ids created here that ``GET`` can still report on (oldest forgotten first).
_ID_MEMORY = 10_000
#: Idempotency keys remembered, with their answers (oldest forgotten first).
_KEY_MEMORY = 10_000
_MAX_KEY_LEN = 255
#: Signatures remembered (to refuse replays) at most; more: 503 until some expire.
_SEEN_MEMORY = 100_000
#: Shortest HMAC secret accepted (bytes).
_MIN_SECRET = 16
#: Seconds to let requests in flight finish when the server stops.
_SHUTDOWN_TIMEOUT_S = 5.0
#: Retry-After for a refusal because too many callbacks are pending.
_PENDING_RETRY_S = 60

#: The name of the client of anonymous requests (``[web.callbacks] anonymous``).
ANONYMOUS = "-"
CLIENT_HEADER = "X-CTI-Client"
TIMESTAMP_HEADER = "X-CTI-Timestamp"
SIGNATURE_HEADER = "X-CTI-Signature"

#: Router call phases as this API names them.
_STATES = {
    "scheduled": "scheduled",
    "queued": "waiting",
    "offered": "offered",
    "talking": "talking",
    "wrap_up": "wrap_up",
    "done": "done",
}

_EXAMPLE_NUMBER = "+86 138 1234 5678"
_EXAMPLE_BODY = 'a JSON object such as {"number": "+86 138 1234 5678"}'
_FIELDS = ("number", "name", "queue", "local_time", "time_zone")


@dataclass(frozen=True, slots=True)
class _Context:
    region: str
    queues: tuple[str, ...]
    default_queue: str
    default_zone: str


class CallbackRequest(BaseModel):
    """The body of ``POST /v1/callbacks``. Validate with ``context={"web": _Context}``."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    number: str = Field(max_length=40)
    name: str = Field("", max_length=100)
    queue: str = Field("", max_length=100)
    local_time: str = Field("", max_length=40)
    time_zone: str = Field("", max_length=64)

    @field_validator("*")
    @classmethod
    def _plain_text(cls, value: str) -> str:
        bad = next((c for c in value if unicodedata.category(c) in _NOT_TEXT), None)
        if bad is not None:
            raise ValueError(
                f"control or formatting character U+{ord(bad):04X} at {value.index(bad)}; "
                "expected plain text"
            )
        return value

    @field_validator("number")
    @classmethod
    def _a_phone_number(cls, value: str, info: ValidationInfo) -> str:
        ctx = _context(info)
        if classify(value, ctx.region)[1] is None:
            raise ValueError(
                f"{value!r} is not a phone number; expected a number of region {ctx.region} "
                f"or + country code and number, e.g. {_EXAMPLE_NUMBER!r}"
            )
        return value

    @field_validator("queue")
    @classmethod
    def _a_known_queue(cls, value: str, info: ValidationInfo) -> str:
        ctx = _context(info)
        if value and value not in ctx.queues:
            raise ValueError(
                f"no queue named {value!r}; accepted: {', '.join(ctx.queues)} "
                f"(or leave it out for {ctx.default_queue!r})"
            )
        return value

    @field_validator("local_time")
    @classmethod
    def _an_iso_time(cls, value: str) -> str:
        if value:
            try:
                datetime.fromisoformat(value)
            except ValueError:
                raise ValueError(
                    f"{value!r} is not an ISO 8601 time; expected e.g. '2026-11-23T10:30', "
                    "or empty for as soon as possible"
                ) from None
        return value

    @field_validator("time_zone")
    @classmethod
    def _a_known_zone(cls, value: str, info: ValidationInfo) -> str:
        if value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError, OSError):
                raise ValueError(
                    f"unknown time zone {value!r}; expected an IANA name such as "
                    f"'Asia/Shanghai', or empty for the customer's own "
                    f"(else {_context(info).default_zone!r})"
                ) from None
        return value


#: Unicode categories refused in every text field: controls (NUL, CR, LF...), formatting
#: (RTL overrides, zero-width joiners...), line and paragraph separators, surrogates.
_NOT_TEXT = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _context(info: ValidationInfo) -> _Context:
    ctx = info.context["web"] if isinstance(info.context, dict) else None
    if not isinstance(ctx, _Context):  # pragma: no cover - a programming error
        raise TypeError("CallbackRequest needs context={'web': _Context(...)}")
    return ctx


# --- requests and answers, without HTTP ------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What :meth:`WebCallbacks.handle` needs of a request. ``path`` is the raw path
    with its query, as signed; header names in any case."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class Refused(Exception):
    """A request refused: its status, the field (or header) at fault, and why."""

    def __init__(
        self, status: int, field: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message if message.startswith(f"{field}:") else f"{field}: {message}")
        self.status = status
        self.field = field
        self.headers = headers or {}

    def answer(self) -> HttpAnswer:
        return HttpAnswer(self.status, {"error": str(self), "field": self.field}, self.headers)


def _too_many(field: str, message: str, retry_s: float) -> Refused:
    retry = _PENDING_RETRY_S if math.isinf(retry_s) else max(1, math.ceil(retry_s))
    return Refused(429, field, f"{message}; retry in {retry} s", {"Retry-After": str(retry)})


# --- credentials ----------------------------------------------------------------------


def sign(secret: bytes, method: str, path: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The signature headers (without ``X-CTI-Client``) of a request: hex HMAC-SHA256 of
    ``"{timestamp}\\n{METHOD}\\n{path}\\n"`` followed by the body."""
    message = f"{timestamp}\n{method.upper()}\n{path}\n".encode() + body
    digest = hmac.new(secret, message, hashlib.sha256).hexdigest()
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: digest}


def key_sha256(key: str) -> str:
    """The hex SHA-256 of an API key, as ``[[web.clients]] key_sha256`` keeps it."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class _Client:
    name: str
    key_hash: bytes | None
    secret: bytes | None


def _load_client(settings: WebClientSettings) -> _Client:
    """The client with its secret read. Raises :class:`CtiError` naming what is missing."""
    where = f"[[web.clients]] {settings.name!r}"
    secret: bytes | None = None
    if settings.secret_env:
        value = os.environ.get(settings.secret_env, "")
        if not value:
            raise CtiError(f"{where}: environment variable {settings.secret_env} is not set")
        secret = value.encode()
    elif settings.secret_file:
        try:
            secret = Path(settings.secret_file).read_bytes().strip()
        except OSError as exc:
            raise CtiError(f"{where}: secret_file {settings.secret_file}: {exc}") from None
    if secret is not None and len(secret) < _MIN_SECRET:
        raise CtiError(f"{where}: the secret is shorter than {_MIN_SECRET} bytes")
    key_hash = bytes.fromhex(settings.key_sha256) if settings.key_sha256 else None
    return _Client(settings.name, key_hash, secret)


class Authenticator:
    """Who sent a request: a bearer API key (compared as SHA-256 digests, in constant
    time, against every client's) or an HMAC signature with a fresh timestamp that was
    not seen before. Sans-I/O: :meth:`verify` takes ``now`` (epoch seconds)."""

    def __init__(self, clients: list[_Client], *, anonymous: bool, max_age_s: float) -> None:
        self._clients = clients
        self._by_name = {c.name: c for c in clients}
        self._anonymous = anonymous
        self._max_age_s = max_age_s
        self._seen: OrderedDict[str, float] = OrderedDict()
        """Signatures accepted -> when they expire (a replay before then is refused)."""

    def verify(self, request: HttpRequest, headers: Mapping[str, str], now: float) -> str:
        """The client's name, or :class:`Refused` (401; 503 if replay memory is full)."""
        authorization = headers.get("authorization")
        if authorization is not None:
            return self._bearer(authorization)
        if SIGNATURE_HEADER.lower() in headers:
            return self._signed(request, headers, now)
        if self._anonymous:
            return ANONYMOUS
        raise Refused(
            401,
            "Authorization",
            "credentials required: 'Authorization: Bearer KEY' or the headers "
            f"{CLIENT_HEADER}, {TIMESTAMP_HEADER} and {SIGNATURE_HEADER}",
            {"WWW-Authenticate": 'Bearer realm="cti-callbacks"'},
        )

    def _bearer(self, authorization: str) -> str:
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not 0 < len(key) <= 256:
            raise Refused(401, "Authorization", "expected 'Bearer KEY'")
        digest = hashlib.sha256(key.strip().encode("utf-8", "replace")).digest()
        found = ""
        for client in self._clients:  # all of them, whichever matches: no timing hint
            if client.key_hash is not None and hmac.compare_digest(digest, client.key_hash):
                found = client.name
        if not found:
            raise Refused(401, "Authorization", "unknown API key")
        return found

    def _signed(self, request: HttpRequest, headers: Mapping[str, str], now: float) -> str:
        name = headers.get(CLIENT_HEADER.lower(), "")
        stamp = headers.get(TIMESTAMP_HEADER.lower(), "")
        signature = headers.get(SIGNATURE_HEADER.lower(), "").lower()
        if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
            raise Refused(401, TIMESTAMP_HEADER, "expected Unix time in whole seconds")
        skew = int(stamp) - now
        if abs(skew) > self._max_age_s:
            raise Refused(
                401,
                TIMESTAMP_HEADER,
                f"{stamp} is {abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} the "
                f"engine's clock; accepted within {self._max_age_s:g} s (sign each request anew)",
            )
        client = self._by_name.get(name)
        expected = b""
        if client is not None and client.secret is not None:
            expected = sign(client.secret, request.method, request.path, request.body, int(stamp))[
                SIGNATURE_HEADER
            ].encode()
        if not expected or not hmac.compare_digest(expected, signature.encode("ascii", "replace")):
            raise Refused(
                401, SIGNATURE_HEADER, f"does not match (client {name[:64]!r}, timestamp {stamp})"
            )
        self._forget_expired(now)
        seen = f"{name}:{signature}"
        if seen in self._seen:
            raise Refused(401, SIGNATURE_HEADER, "already used: a replay (sign each request anew)")
        if len(self._seen) >= _SEEN_MEMORY:
            raise Refused(503, SIGNATURE_HEADER, "too many signed requests; retry later")
        self._seen[seen] = int(stamp) + self._max_age_s
        return name

    def _forget_expired(self, now: float) -> None:
        while self._seen:
            first, expires = next(iter(self._seen.items()))
            if expires >= now:
                break
            del self._seen[first]


# --- the number policy ----------------------------------------------------------------


class NumberPolicy:
    """Which numbers may be called back: regions, prefixes and number types."""

    def __init__(self, settings: WebCallbackSettings, default_region: str) -> None:
        self.default_region = default_region
        self.regions = tuple(r.upper() for r in settings.regions) or (default_region.upper(),)
        self.prefixes = settings.prefixes
        self.refused_prefixes = settings.refused_prefixes
        self.types = settings.number_types

    def check(self, raw: str) -> str:
        """The E.164 form of ``raw``, or :class:`Refused` (400, ``number``) saying why."""
        try:
            number = phonenumbers.parse(raw, self.default_region)
        except phonenumbers.NumberParseException:
            raise Refused(400, "number", f"{raw!r} is not a phone number") from None
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        region = phonenumbers.region_code_for_number(number)
        if region in (None, "", "001", "ZZ"):
            raise Refused(
                400,
                "number",
                f"{e164} is an international non-geographic number (+{number.country_code}); "
                f"accepted: numbers of {', '.join(self.regions)}",
            )
        if region not in self.regions:
            raise Refused(
                400,
                "number",
                f"{e164} is a number of {region}; accepted: numbers of {', '.join(self.regions)}",
            )
        if not phonenumbers.is_valid_number(number):
            raise Refused(
                400, "number", f"{e164} is not a valid number of {region} (no such range)"
            )
        if self.prefixes and not e164.startswith(self.prefixes):
            raise Refused(
                400, "number", f"{e164} is not in the accepted ranges {', '.join(self.prefixes)}"
            )
        if self.refused_prefixes and e164.startswith(self.refused_prefixes):
            raise Refused(400, "number", f"{e164} is in a refused range")
        kind = phonenumbers.PhoneNumberType.to_string(phonenumbers.number_type(number)).lower()
        if kind not in self.types:
            raise Refused(
                400,
                "number",
                f"{e164} is a {kind.replace('_', ' ')} number; accepted: "
                f"{', '.join(t.replace('_', ' ') for t in self.types)} numbers",
            )
        return e164


# --- the endpoint ---------------------------------------------------------------------


@dataclass(slots=True)
class _Keyed:
    """An idempotency key's request fingerprint and (eventual) answer."""

    fingerprint: str
    answer: asyncio.Future[HttpAnswer]


@dataclass(frozen=True, slots=True)
class _Created:
    client: str
    queue: str


class WebCallbacks:
    """The callback endpoint for ``service``, on ``host``:``port`` (0: any free port),
    with ``settings`` (default: the service's ``[web]``; its host and port are not used).

    ``await start()`` returns the bound port (and keeps it in ``port``, so a restart
    binds the same one); ``await stop()`` closes the socket and every connection. Also an
    async context manager. Raises :class:`CtiError` if a client's secret cannot be read.
    """

    def __init__(
        self,
        service: EngineService,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        settings: WebSettings | None = None,
    ) -> None:
        self.service = service
        self.host = host
        self.port = port
        web_settings = settings or service.config.web
        self.settings = s = web_settings.callbacks
        self.auth = Authenticator(
            [_load_client(c) for c in web_settings.clients],
            anonymous=s.anonymous,
            max_age_s=s.signature_max_age_s,
        )
        self.policy = NumberPolicy(s, service.config.engine.default_region)
        self._clients = KeyedBuckets(s.client_rate_per_minute / 60, s.client_burst)
        self._numbers = KeyedBuckets(s.number_rate_per_hour / 3600, s.number_burst)
        self._total = TokenBucket(s.total_rate_per_minute / 60, s.total_burst)
        self._runner: web.AppRunner | None = None
        self._created: OrderedDict[str, _Created] = OrderedDict()
        """Callback id -> who asked and its queue, of the callbacks created here."""
        self._pending: dict[str, str] = {}
        """Callbacks created here and not finished (and ``?n`` reservations) -> number."""
        self._keys: OrderedDict[str, _Keyed] = OrderedDict()
        self.refusals: dict[int, int] = {}
        """Requests refused, by status (for tests and the log)."""

    @property
    def pending(self) -> int:
        """Callbacks created here that are not finished yet."""
        self._forget_finished()
        return len(self._pending)

    # --- lifecycle -----------------------------------------------------------------

    async def start(self) -> int:
        """Listen; returns the bound port. Raises :class:`CtiError` if it cannot."""
        if self._runner is not None:
            raise CtiError("the callback endpoint is already started")
        app = web.Application(client_max_size=MAX_BODY, middlewares=[_json_errors])
        app.router.add_post("/v1/callbacks", self._serve)
        app.router.add_get("/v1/callbacks/{id}", self._serve)
        app.router.add_get("/healthz", self._serve)
        runner = web.AppRunner(
            app, shutdown_timeout=_SHUTDOWN_TIMEOUT_S, access_log_class=_AccessLog, access_log=log
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError as exc:
            await runner.cleanup()
            raise CtiError(
                f"cannot listen for callback requests on {self.host}:{self.port}: {exc}"
            ) from None
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        log.info("callback requests on http://%s:%d/v1/callbacks", self.host, self.port)
        return self.port

    async def stop(self) -> None:
        """Stop listening and close every connection (harmless if not started)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- the HTTP shell ------------------------------------------------------------

    async def _serve(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _respond(_too_large().answer())
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _respond(_too_large().answer())
        plain = HttpRequest(request.method, request.raw_path, request.headers, body)
        return _respond(await self.handle(plain, self.service.now()))

    # --- the work ------------------------------------------------------------------

    async def handle(self, request: HttpRequest, now: float) -> HttpAnswer:
        """Answer ``request`` at ``now`` (epoch seconds, the engine's clock)."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            if request.method == "GET" and request.path == "/healthz":
                return HttpAnswer(200, {"ok": True})
            if request.method == "POST" and request.path == "/v1/callbacks":
                client = self._admit(request, headers, now)
                return await self._post(client, headers, request.body, now)
            if request.method == "GET" and request.path.startswith("/v1/callbacks/"):
                client = self._admit(request, headers, now)
                return self._get(client, request.path.removeprefix("/v1/callbacks/"))
            raise Refused(404, "path", f"{request.method} {request.path[:100]}: not found")
        except Refused as refusal:
            self.refusals[refusal.status] = self.refusals.get(refusal.status, 0) + 1
            return refusal.answer()

    def _admit(self, request: HttpRequest, headers: Mapping[str, str], now: float) -> str:
        """The client, authenticated and within its rate, or :class:`Refused`."""
        client = self.auth.verify(request, headers, now)
        wait = self._clients.take(client, now)
        if wait > 0:
            raise _too_many(
                "client",
                f"{client!r} sent more than {self.settings.client_rate_per_minute:g} "
                f"requests a minute (burst {self.settings.client_burst})",
                wait,
            )
        return client

    async def _post(
        self, client: str, headers: Mapping[str, str], body: bytes, now: float
    ) -> HttpAnswer:
        key = headers.get("idempotency-key")
        if key is not None and (
            not 0 < len(key) <= _MAX_KEY_LEN or not key.isascii() or not key.isprintable()
        ):
            raise Refused(
                400,
                "Idempotency-Key",
                f"expected 1 to {_MAX_KEY_LEN} printable ASCII characters, e.g. a UUID",
            )
        fingerprint = hashlib.sha256(body).hexdigest()
        scoped = f"{client}\n{key}"  # one client's keys never meet another's
        if key is not None and (keyed := self._keys.get(scoped)) is not None:
            if keyed.fingerprint != fingerprint:
                raise Refused(
                    422,
                    "Idempotency-Key",
                    f"{key!r} was already used with a different request; use a new key",
                )
            first = await asyncio.shield(keyed.answer)
            return HttpAnswer(
                first.status, first.body, {**first.headers, "Idempotent-Replayed": "true"}
            )
        request = self._parse(body)
        if key is None:
            return await self._schedule(client, request, now)
        # Registered before the first await: a concurrent retry waits for this answer.
        keyed = _Keyed(fingerprint, asyncio.get_running_loop().create_future())
        self._keys[scoped] = keyed
        try:
            answer = await self._schedule(client, request, now)
        except Refused as refusal:
            keyed.answer.set_result(refusal.answer())
            self._keys.pop(scoped, None)  # only a scheduled callback is worth replaying
            raise
        except BaseException:  # cancelled as the server stops: let a retry try again
            keyed.answer.set_result(
                HttpAnswer(503, {"error": "the server is stopping; retry later", "field": None})
            )
            self._keys.pop(scoped, None)
            raise
        keyed.answer.set_result(answer)
        if answer.status == 202:
            _trim(self._keys, _KEY_MEMORY)
        else:
            self._keys.pop(scoped, None)
        return answer

    def _get(self, client: str, call_id: str) -> HttpAnswer:
        created = self._created.get(call_id)
        if created is None or created.client != client:
            # Another client's callback is as unknown as one that never was.
            raise Refused(404, "id", f"no callback {call_id[:64]!r} was requested here by you")
        return HttpAnswer(200, self._view(call_id, created.queue))

    def _parse(self, body: bytes) -> CallbackRequest:
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            raise Refused(400, "body", f"not JSON; expected {_EXAMPLE_BODY}") from None
        engine = self.service.config.engine
        queues = self.settings.queues or tuple(self.service.router.queue_names)
        ctx = _Context(
            region=engine.default_region,
            queues=queues,
            default_queue=self._default_queue,
            default_zone=engine.time_zone,
        )
        try:
            return CallbackRequest.model_validate(data, context={"web": ctx})
        except ValidationError as exc:
            raise _describe(exc) from None

    @property
    def _default_queue(self) -> str:
        return self.settings.default_queue or self.service.config.engine.default_queue

    async def _schedule(self, client: str, req: CallbackRequest, now: float) -> HttpAnswer:
        s = self.settings
        e164 = self.policy.check(req.number)
        self._forget_finished()
        theirs = sum(1 for n in self._pending.values() if n == e164)
        if theirs >= s.max_pending_per_number:
            raise _too_many(
                "number",
                f"{e164} already has {theirs} callback(s) pending, the most allowed",
                _PENDING_RETRY_S,
            )
        if len(self._pending) >= s.max_pending:
            raise _too_many(
                "callbacks",
                f"{len(self._pending)} web callbacks are pending, the most allowed",
                _PENDING_RETRY_S,
            )
        wait = self._numbers.take(e164, now)
        if wait > 0:
            raise _too_many(
                "number",
                f"{e164} was asked for more than {s.number_rate_per_hour:g} times an hour",
                wait,
            )
        wait = self._total.take(now)
        if wait > 0:
            raise _too_many(
                "rate",
                f"more than {s.total_rate_per_minute:g} callback requests a minute in all",
                wait,
            )
        queue = req.queue or self._default_queue
        reservation = f"?{len(self._created)}:{id(req)}"  # counted while the store is asked
        self._pending[reservation] = e164
        try:
            call_id = await self.service.schedule_callback(
                e164,
                req.local_time,
                req.time_zone,
                queue,
                max_days_ahead=s.max_days_ahead,
                max_s_behind=s.max_minutes_behind * 60,
            )
        except CtiError as exc:
            # What validation could not know: the horizon in the customer's zone, a bad
            # zone on file.
            text = str(exc)
            where = "local_time" if text.startswith("callback time") else "time_zone"
            raise Refused(400, where, text) from None
        finally:
            del self._pending[reservation]
        self._pending[call_id] = e164
        self._created[call_id] = _Created(client, queue)
        _trim(self._created, _ID_MEMORY)
        view = self._view(call_id, queue)
        return HttpAnswer(202, view, {"Location": f"/v1/callbacks/{call_id}"})

    def _forget_finished(self) -> None:
        router = self.service.router
        for call_id in [c for c in self._pending if not c.startswith("?")]:
            try:
                done = router.call_phase(call_id).value == "done"
            except RoutingError:
                done = True  # the router forgets finished calls
            if done:
                del self._pending[call_id]

    def _view(self, call_id: str, queue: str) -> dict[str, Any]:
        router = self.service.router
        try:
            phase = router.call_phase(call_id).value
            queue = router.call_queue(call_id)
        except RoutingError:
            phase = "done"  # the router forgets finished calls
        position: int | None = None
        wait: float | None = None
        if phase == "queued":
            for estimate in router.estimated_waits(queue, self.service.now()):
                if estimate.call_id == call_id:
                    position = estimate.position
                    wait = None if estimate.wait_s == float("inf") else round(estimate.wait_s, 1)
                    break
        return {
            "id": call_id,
            "queue": queue,
            "state": _STATES.get(phase, phase),
            "position": position,
            "estimated_wait_s": wait,
        }


def _respond(answer: HttpAnswer) -> web.Response:
    return web.json_response(answer.body, status=answer.status, headers=answer.headers)


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error as JSON; an unexpected one is logged and answered 500."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status in (404, 405):
            return _respond(
                Refused(
                    exc.status,
                    "path",
                    f"{request.method} {request.path[:100]}: {exc.reason}; accepted: "
                    "POST /v1/callbacks, GET /v1/callbacks/{id}, GET /healthz",
                ).answer()
            )
        return web.json_response({"error": exc.reason, "field": None}, status=exc.status)
    except Exception:
        log_limits.exception(log, "%s %s failed", request.method, request.path[:100])
        return web.json_response({"error": "internal error", "field": None}, status=500)


class _AccessLog(AbstractAccessLogger):
    """aiohttp's access log writes a line per request: a flood of refused requests
    would flood the log. Accepted ones are logged; refusals rate-limited per status."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        method, path, status = request.method, request.path[:100], response.status
        if status < 400:
            self.logger.info("%s %s: %d", method, path, status)
        else:
            log_limits.warning(self.logger, "%s %s: %d", method, path, status, key=str(status))


def _describe(exc: ValidationError) -> Refused:
    """The validation errors, naming the first bad field and what would be accepted."""
    messages = []
    field = "body"
    for i, err in enumerate(exc.errors()):
        where = ".".join(str(p) for p in err["loc"]) or "body"
        kind = err["type"]
        if kind == "missing":
            text = f"required: a phone number such as {_EXAMPLE_NUMBER!r}"
        elif kind == "extra_forbidden":
            text = f"unknown field; accepted: {', '.join(_FIELDS)}"
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            text = f"expected {_EXAMPLE_BODY}"
        elif kind == "string_type":
            text = "expected a string"
        else:
            text = str(err["msg"]).removeprefix("Value error, ")
        if i == 0:
            field = where[:40]
        messages.append(f"{where[:40]}: {text}")
    return Refused(400, field, "; ".join(messages))


def _too_large() -> Refused:
    return Refused(413, "body", f"larger than {MAX_BODY} bytes")


def _trim(memory: OrderedDict[str, Any], limit: int) -> None:
    while len(memory) > limit:
        memory.popitem(last=False)
