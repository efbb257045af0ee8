"""Internet callback requests: a small HTTP endpoint in front of the engine service.

A customer (through a web form or an app) asks to be called back; the request becomes a
callback in the queue, ranked by the customer's value like an inbound call (the number is
looked up in the store by :meth:`~cti.service.EngineService.schedule_callback`).

``POST /v1/callbacks``
    JSON ``{"number": "...", "name": "...", "queue": "...", "local_time":
    "2026-11-23T10:30", "time_zone": "Asia/Shanghai"}``; only ``number`` is required.
    An empty ``local_time`` means as soon as possible; ``time_zone`` defaults to the
    customer's, else the engine's. Answers ``202`` with ``{"id", "queue", "state",
    "position", "estimated_wait_s"}`` and a ``Location`` header; ``400`` with
    ``{"error", "field"}`` naming the bad field and what is accepted; ``413`` for a body
    over 4 KiB. An ``Idempotency-Key`` header makes a retry harmless: the same key (with
    the same body) gets the first answer again, scheduled once; with another body, ``422``.
``GET /v1/callbacks/{id}``
    ``{"id", "queue", "state", "position", "estimated_wait_s"}``; ``state`` is one of
    ``scheduled``, ``waiting``, ``offered``, ``talking``, ``wrap_up``, ``done``;
    ``position`` (1 = next) and ``estimated_wait_s`` are ``null`` unless waiting (the
    estimate also when nobody is there to answer). ``404`` for ids this endpoint did not
    create (or created so long ago that it forgot them).
``GET /healthz``
    ``200 {"ok": true}``.

It listens on loopback by default. The host can be changed (``[web] host``), but this
server has no TLS, no authentication and no rate limiting: to take requests from the
internet, put a reverse proxy that terminates TLS and limits request rates per client in
front of it. None of that is built here.

Built on aiohttp (asyncio-native server and client, well maintained). The server runs on
the engine's event loop, so on the virtual-time loop of ``cti demo --headless`` it still
answers, but engine time runs a day in seconds; try it by hand with ``--realtime``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from cti.errors import CtiError, RoutingError
from cti.phone import classify
from cti.service import EngineService

log = logging.getLogger(__name__)

#: Largest request body accepted (bytes); more is answered 413.
MAX_BODY = 4096
#: Callback ids created here that ``GET`` can still report on (oldest forgotten first).
_ID_MEMORY = 10_000
#: Idempotency keys remembered, with their answers (oldest forgotten first).
_KEY_MEMORY = 10_000
_MAX_KEY_LEN = 255
#: Seconds to let requests in flight finish when the server stops.
_SHUTDOWN_TIMEOUT_S = 5.0

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


def _context(info: ValidationInfo) -> _Context:
    ctx = info.context["web"] if isinstance(info.context, dict) else None
    if not isinstance(ctx, _Context):  # pragma: no cover - a programming error
        raise TypeError("CallbackRequest needs context={'web': _Context(...)}")
    return ctx


class _BadRequest(Exception):
    """A bad request body: ``field`` is the first bad field, the message names them all."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(slots=True)
class _Keyed:
    """An idempotency key's request fingerprint and (eventual) answer."""

    fingerprint: str
    answer: asyncio.Future[tuple[int, dict[str, Any]]]


class WebCallbacks:
    """The callback endpoint for ``service``, on ``host``:``port`` (0: any free port).

    ``await start()`` returns the bound port (and keeps it in ``port``, so a restart
    binds the same one); ``await stop()`` closes the socket and every connection. Also an
    async context manager.
    """

    def __init__(self, service: EngineService, host: str = "127.0.0.1", port: int = 0) -> None:
        self.service = service
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self._created: OrderedDict[str, str] = OrderedDict()
        """Callback id -> queue, of the callbacks created here."""
        self._keys: OrderedDict[str, _Keyed] = OrderedDict()

    # --- lifecycle -----------------------------------------------------------------

    async def start(self) -> int:
        """Listen; returns the bound port. Raises :class:`CtiError` if it cannot."""
        if self._runner is not None:
            raise CtiError("the callback endpoint is already started")
        app = web.Application(client_max_size=MAX_BODY, middlewares=[_json_errors])
        app.router.add_post("/v1/callbacks", self._post_callback)
        app.router.add_get("/v1/callbacks/{id}", self._get_callback)
        app.router.add_get("/healthz", self._healthz)
        runner = web.AppRunner(app, shutdown_timeout=_SHUTDOWN_TIMEOUT_S)
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

    # --- handlers ------------------------------------------------------------------

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _post_callback(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _too_large()
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _too_large()
        key = request.headers.get("Idempotency-Key")
        if key is not None and (
            not 0 < len(key) <= _MAX_KEY_LEN or not key.isascii() or not key.isprintable()
        ):
            return _error(
                400,
                "Idempotency-Key",
                f"expected 1 to {_MAX_KEY_LEN} printable ASCII characters, e.g. a UUID",
            )
        fingerprint = hashlib.sha256(body).hexdigest()
        if key is not None and (keyed := self._keys.get(key)) is not None:
            if keyed.fingerprint != fingerprint:
                return _error(
                    422,
                    "Idempotency-Key",
                    f"{key!r} was already used with a different request; use a new key",
                )
            status, answer = await asyncio.shield(keyed.answer)
            return web.json_response(
                answer, status=status, headers=_location(answer, {"Idempotent-Replayed": "true"})
            )
        try:
            callback = self._parse(body)
        except _BadRequest as exc:
            return _error(400, exc.field, str(exc))
        if key is None:
            status, answer = await self._schedule(callback)
            return web.json_response(answer, status=status, headers=_location(answer))
        # Registered before the first await: a concurrent retry waits for this answer.
        keyed = _Keyed(fingerprint, asyncio.get_running_loop().create_future())
        self._keys[key] = keyed
        try:
            status, answer = await self._schedule(callback)
        except BaseException:  # cancelled as the server stops: let a retry try again
            keyed.answer.set_result((503, {"error": "the server is stopping; retry later"}))
            self._keys.pop(key, None)
            raise
        keyed.answer.set_result((status, answer))
        if status == 202:
            _trim(self._keys, _KEY_MEMORY)
        else:
            self._keys.pop(key, None)  # only a scheduled callback is worth replaying
        return web.json_response(answer, status=status, headers=_location(answer))

    async def _get_callback(self, request: web.Request) -> web.Response:
        call_id = request.match_info["id"]
        queue = self._created.get(call_id)
        if queue is None:
            return _error(404, "id", f"no callback {call_id!r} was requested here")
        return web.json_response(self._view(call_id, queue))

    # --- the work ------------------------------------------------------------------

    def _parse(self, body: bytes) -> CallbackRequest:
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            raise _BadRequest("body", f"body: not JSON; expected {_EXAMPLE_BODY}") from None
        engine = self.service.config.engine
        ctx = _Context(
            region=engine.default_region,
            queues=tuple(self.service.router.queue_names),
            default_queue=engine.default_queue,
            default_zone=engine.time_zone,
        )
        try:
            return CallbackRequest.model_validate(data, context={"web": ctx})
        except ValidationError as exc:
            raise _describe(exc) from None

    async def _schedule(self, req: CallbackRequest) -> tuple[int, dict[str, Any]]:
        try:
            call_id = await self.service.schedule_callback(
                req.number, req.local_time, req.time_zone, req.queue
            )
        except CtiError as exc:
            # What validation could not know (e.g. the customer's zone on file is bad).
            return 400, {"error": str(exc), "field": None}
        except Exception:
            log.exception("callback request for queue %r failed", req.queue)
            return 500, {"error": "internal error; the request was not scheduled"}
        queue = req.queue or self.service.config.engine.default_queue
        self._created[call_id] = queue
        _trim(self._created, _ID_MEMORY)
        return 202, self._view(call_id, queue)

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


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error as JSON; an unexpected one is logged and answered 500."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status in (404, 405):
            return _error(
                exc.status,
                "path",
                f"{request.method} {request.path}: {exc.reason}; accepted: "
                "POST /v1/callbacks, GET /v1/callbacks/{id}, GET /healthz",
            )
        return web.json_response({"error": exc.reason, "field": None}, status=exc.status)
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return web.json_response({"error": "internal error"}, status=500)


def _describe(exc: ValidationError) -> _BadRequest:
    """The first validation error, naming the field and what would be accepted."""
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
            field = where
        messages.append(f"{where}: {text}")
    return _BadRequest(field, "; ".join(messages))


def _error(status: int, field: str, message: str) -> web.Response:
    text = message if message.startswith(f"{field}:") else f"{field}: {message}"
    return web.json_response({"error": text, "field": field}, status=status)


def _too_large() -> web.Response:
    return _error(413, "body", f"larger than {MAX_BODY} bytes")


def _location(answer: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, str]:
    out = dict(headers or {})
    if "id" in answer and "state" in answer:
        out["Location"] = f"/v1/callbacks/{answer['id']}"
    return out


def _trim(memory: OrderedDict[str, Any], limit: int) -> None:
    while len(memory) > limit:
        memory.popitem(last=False)
