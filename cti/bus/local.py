"""The demo centre's in-memory bus, shared with the boards of the same user on a local
socket: ``cti demo`` serves it, ``cti supervisor`` (in a terminal or each browser's
session of ``--web``) watches it, so every board shows the same centre.

A unix socket next to the demo's database (``cti.db.bus``, mode 0600) and a token file
beside it (``cti.db.bus-token``, 0600, new each run): a client's first line is the token.
Then one JSON object a line each way::

    client: {"op": "sub", "id": 1, "pattern": "cti/v1/queues/+/status"}
            {"op": "unsub", "id": 1}
            {"op": "pub", "topic": "...", "payload": "<message JSON>", "retain": false}
    server: {"id": 1, "topic": "...", "payload": "<message JSON>"}

Payloads go through :meth:`InMemoryBus.publish_payload`, which drops (and logs) what does
not decode, as a broker's client would be treated; a line that is not one of these is
logged and skipped. Lines, subscriptions and what a slow client may fall behind are
bounded; a client past a bound is disconnected.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from cti import log_limits
from cti.bus.memory import InMemoryBus
from cti.errors import ConfigError, CtiError
from cti.protocol import Message, decode, encode

log = logging.getLogger(__name__)

#: Longest line either way (a card with its script is well under it).
MAX_LINE_BYTES = 4 * 1024 * 1024
#: Most subscriptions one client holds.
MAX_SUBSCRIPTIONS = 64
#: Most messages one subscription of a client may fall behind before it is disconnected.
MAX_BEHIND = 20_000
#: Longest socket path (AF_UNIX: 108 bytes with the final NUL).
MAX_PATH_BYTES = 107
_CONNECT_TIMEOUT_S = 2.0


class NoCentreError(CtiError):
    """No demo centre answers on the socket, or it stopped."""


def socket_path(db_path: Path) -> Path:
    """Where the demo centre using ``db_path`` serves its bus."""
    return db_path.with_name(db_path.name + ".bus")


def token_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".bus-token")


def _checked(path: Path) -> str:
    where = str(path)
    if len(os.fsencode(where)) > MAX_PATH_BYTES:
        raise ConfigError(
            f"the demo's bus socket {where} is longer than {MAX_PATH_BYTES} bytes: "
            "give --db a shorter path"
        )
    return where


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


# --- the server ------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def serving(bus: InMemoryBus, db_path: Path) -> AsyncIterator[Path]:
    """Serve ``bus`` on :func:`socket_path` for the body of the ``async with``.

    Refuses (:class:`NoCentreError` is not it: :class:`CtiError`) when a centre already
    answers there; a socket left by a centre that died is replaced."""
    path = socket_path(db_path)
    where = _checked(path)
    if await centre_answers(db_path):
        raise CtiError(f"a demo centre already runs on {db_path} (its bus is {path})")
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    token = secrets.token_hex(16)
    tokens = token_path(db_path)
    tokens.unlink(missing_ok=True)
    fd = os.open(tokens, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token)
    clients: set[asyncio.Task[None]] = set()

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        clients.add(task)
        try:
            await _serve_client(bus, token, reader, writer)
        finally:
            clients.discard(task)

    server = await asyncio.start_unix_server(client, where, limit=MAX_LINE_BYTES)
    os.chmod(where, 0o600)
    try:
        yield path
    finally:
        server.close()
        for task in list(clients):
            task.cancel()
        await asyncio.gather(*clients, return_exceptions=True)
        await server.wait_closed()
        path.unlink(missing_ok=True)
        tokens.unlink(missing_ok=True)


async def _serve_client(
    bus: InMemoryBus, token: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    forwards: dict[int, asyncio.Task[None]] = {}
    try:
        first = await reader.readline()
        if not first:  # a look whether a centre answers (:func:`centre_answers`)
            return
        if not hmac.compare_digest(first.strip(), token.encode()):
            log_limits.warning(log, "local bus: a client without the token; disconnected")
            return
        while line := await reader.readline():
            try:
                _handle(json.loads(line), bus, forwards, writer)
            except (ValueError, KeyError, TypeError) as exc:
                log_limits.warning(log, "local bus: line skipped: %s", exc)
    except (ConnectionError, asyncio.LimitOverrunError, ValueError) as exc:
        log_limits.warning(log, "local bus: client disconnected: %s", exc)
    finally:
        for task in forwards.values():
            task.cancel()
        await asyncio.gather(*forwards.values(), return_exceptions=True)
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def _handle(
    request: Any,
    bus: InMemoryBus,
    forwards: dict[int, asyncio.Task[None]],
    writer: asyncio.StreamWriter,
) -> None:
    """One line of a client: publish, subscribe or unsubscribe."""
    op = request["op"]
    if op == "pub":
        payload = str(request["payload"]).encode()
        bus.publish_payload(str(request["topic"]), payload, retain=bool(request.get("retain")))
    elif op == "sub" and len(forwards) < MAX_SUBSCRIPTIONS:
        ident = int(request["id"])
        if ident not in forwards:
            forward = _forward(bus, ident, str(request["pattern"]), writer)
            forwards[ident] = asyncio.create_task(forward, name=f"local-bus-sub-{ident}")
    elif op == "unsub":
        task = forwards.pop(int(request["id"]), None)
        if task is not None:
            task.cancel()
    else:
        raise ValueError(f"{op!r} refused (or over {MAX_SUBSCRIPTIONS} subscriptions)")


async def _forward(
    bus: InMemoryBus, ident: int, pattern: str, writer: asyncio.StreamWriter
) -> None:
    async with bus.subscribe(pattern) as subscription:
        async for topic, message in subscription:
            if subscription.queue.qsize() > MAX_BEHIND:
                log_limits.warning(
                    log, "local bus: a client fell %d behind; disconnected", MAX_BEHIND
                )
                writer.close()
                return
            line = _line({"id": ident, "topic": topic, "payload": encode(message).decode()})
            writer.write(line)
            await writer.drain()


# --- the client ------------------------------------------------------------------------


async def centre_answers(db_path: Path) -> bool:
    """Whether a demo centre serves its bus for ``db_path`` (its socket answers)."""
    path = socket_path(db_path)
    if not path.exists():
        return False
    try:
        async with asyncio.timeout(_CONNECT_TIMEOUT_S):
            _reader, writer = await asyncio.open_unix_connection(_checked(path))
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return True


class _Subscription:
    def __init__(self, bus: LocalBus, pattern: str) -> None:
        self._bus = bus
        self.pattern = pattern
        self.ident = 0
        self.queue: asyncio.Queue[tuple[str, Message] | None] = asyncio.Queue()

    async def __aenter__(self) -> Self:
        self.ident = await self._bus._subscribe(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._bus._unsubscribe(self.ident)

    def __aiter__(self) -> AsyncIterator[tuple[str, Message]]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[tuple[str, Message]]:
        while (item := await self.queue.get()) is not None:  # None: the centre is gone
            yield item


class LocalBus:
    """A :class:`~cti.bus.memory.Bus` on a demo centre's socket (:func:`connect`).
    When the centre goes, subscriptions end and :attr:`gone` is set."""

    def __init__(
        self, where: Path, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.where = where
        self._reader = reader
        self._writer = writer
        self._subs: dict[int, _Subscription] = {}
        self._next = 0
        self.gone = asyncio.Event()
        self._task = asyncio.create_task(self._read(), name="local-bus-read")

    async def publish(self, topic: str, message: Message, *, retain: bool = False) -> None:
        if self.gone.is_set():
            raise NoCentreError(f"the demo centre at {self.where} stopped")
        payload = encode(message).decode()
        await self._send({"op": "pub", "topic": topic, "payload": payload, "retain": retain})

    def subscribe(self, pattern: str) -> _Subscription:
        return _Subscription(self, pattern)

    async def _send(self, request: dict[str, Any]) -> None:
        self._writer.write(_line(request))
        await self._writer.drain()

    async def _subscribe(self, sub: _Subscription) -> int:
        self._next += 1
        self._subs[self._next] = sub
        if self.gone.is_set():
            sub.queue.put_nowait(None)
        else:
            await self._send({"op": "sub", "id": self._next, "pattern": sub.pattern})
        return self._next

    async def _unsubscribe(self, ident: int) -> None:
        if self._subs.pop(ident, None) is not None and not self.gone.is_set():
            with contextlib.suppress(ConnectionError):
                await self._send({"op": "unsub", "id": ident})

    async def _read(self) -> None:
        try:
            while line := await self._reader.readline():
                try:
                    item = json.loads(line)
                    sub = self._subs.get(int(item["id"]))
                    topic = str(item["topic"])
                    message = decode(str(item["payload"]).encode(), where=topic)
                except (ValueError, KeyError, TypeError, CtiError) as exc:
                    log_limits.warning(log, "local bus: line from the centre skipped: %s", exc)
                    continue
                if sub is not None:
                    sub.queue.put_nowait((topic, message))
        except (ConnectionError, ValueError) as exc:
            log.warning("local bus: connection to %s lost: %s", self.where, exc)
        finally:
            self.gone.set()
            for sub in self._subs.values():
                sub.queue.put_nowait(None)

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.asynccontextmanager
async def connect(db_path: Path) -> AsyncIterator[LocalBus]:
    """``async with connect(db) as bus:`` the bus of the demo centre using ``db_path``;
    :class:`NoCentreError` when none answers."""
    path = socket_path(db_path)
    try:
        token = token_path(db_path).read_text().strip()
        async with asyncio.timeout(_CONNECT_TIMEOUT_S):
            reader, writer = await asyncio.open_unix_connection(
                _checked(path), limit=MAX_LINE_BYTES
            )
    except (OSError, TimeoutError) as exc:
        raise NoCentreError(f"no demo centre runs on {db_path} ({path}: {exc})") from None
    writer.write(token.encode() + b"\n")
    bus = LocalBus(path, reader, writer)
    try:
        yield bus
    finally:
        await bus.close()
