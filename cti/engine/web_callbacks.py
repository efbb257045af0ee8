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

Authentication is :mod:`cti.engine.web_auth`, what a request may ask
:mod:`cti.engine.web_policy`, the plain request and answer :mod:`cti.engine.web_http`.
The work is done by :meth:`WebCallbacks.handle`, which takes a plain
:class:`HttpRequest` and ``now`` (so tests and the flood test drive it on virtual time);
aiohttp is only the thin shell around it, on the engine's event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.typedefs import Handler

from cti import log_limits
from cti.config import WebSettings
from cti.engine.service import EngineService
from cti.engine.web_auth import CLIENT_HEADER, Authenticator, key_sha256, load_client, sign
from cti.engine.web_http import (
    MAX_BODY,
    PENDING_RETRY_S,
    HttpAnswer,
    HttpRequest,
    RefusedError,
    too_large,
    too_many,
)
from cti.engine.web_policy import CallbackRequest, NumberPolicy, RequestContext, parse_request
from cti.errors import CtiError, RoutingError
from cti.rate_limit import KeyedBuckets, TokenBucket

__all__ = [
    "CLIENT_HEADER",
    "MAX_BODY",
    "HttpAnswer",
    "HttpRequest",
    "WebCallbacks",
    "key_sha256",
    "sign",
]

log = logging.getLogger(__name__)

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
            [load_client(c) for c in web_settings.clients],
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
            return _respond(too_large().answer())
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _respond(too_large().answer())
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
            raise RefusedError(404, "path", f"{request.method} {request.path[:100]}: not found")
        except RefusedError as refusal:
            self.refusals[refusal.status] = self.refusals.get(refusal.status, 0) + 1
            return refusal.answer()

    def _admit(self, request: HttpRequest, headers: Mapping[str, str], now: float) -> str:
        """The client, authenticated and within its rate, or :class:`RefusedError`."""
        client = self.auth.verify(request, headers, now)
        wait = self._clients.take(client, now)
        if wait > 0:
            raise too_many(
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
            raise RefusedError(
                400,
                "Idempotency-Key",
                f"expected 1 to {_MAX_KEY_LEN} printable ASCII characters, e.g. a UUID",
            )
        fingerprint = hashlib.sha256(body).hexdigest()
        scoped = f"{client}\n{key}"  # one client's keys never meet another's
        if key is not None and (keyed := self._keys.get(scoped)) is not None:
            if keyed.fingerprint != fingerprint:
                raise RefusedError(
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
        except RefusedError as refusal:
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
            raise RefusedError(404, "id", f"no callback {call_id[:64]!r} was requested here by you")
        return HttpAnswer(200, self._view(call_id, created.queue))

    def _parse(self, body: bytes) -> CallbackRequest:
        engine = self.service.config.engine
        queues = self.settings.queues or tuple(self.service.router.queue_names)
        context = RequestContext(
            region=engine.default_region,
            queues=queues,
            default_queue=self._default_queue,
            default_zone=engine.time_zone,
        )
        return parse_request(body, context)

    @property
    def _default_queue(self) -> str:
        return self.settings.default_queue or self.service.config.engine.default_queue

    async def _schedule(self, client: str, req: CallbackRequest, now: float) -> HttpAnswer:
        s = self.settings
        e164 = self.policy.check(req.number)
        self._forget_finished()
        theirs = sum(1 for n in self._pending.values() if n == e164)
        if theirs >= s.max_pending_per_number:
            raise too_many(
                "number",
                f"{e164} already has {theirs} callback(s) pending, the most allowed",
                PENDING_RETRY_S,
            )
        if len(self._pending) >= s.max_pending:
            raise too_many(
                "callbacks",
                f"{len(self._pending)} web callbacks are pending, the most allowed",
                PENDING_RETRY_S,
            )
        wait = self._numbers.take(e164, now)
        if wait > 0:
            raise too_many(
                "number",
                f"{e164} was asked for more than {s.number_rate_per_hour:g} times an hour",
                wait,
            )
        wait = self._total.take(now)
        if wait > 0:
            raise too_many(
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
            raise RefusedError(400, where, text) from None
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
                RefusedError(
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


def _trim(memory: OrderedDict[str, Any], limit: int) -> None:
    while len(memory) > limit:
        memory.popitem(last=False)
