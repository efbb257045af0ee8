"""The SIP line's TCP and TLS connections: the ones peers opened to us and the ones we
opened, in one table keyed by (transport, peer address), reused for every message to
that peer (responses go back on the connection their request came on, RFC 3261
§18.2.2; a peer's connection is also found under its Via's sent-by when that is the
same host, so in-dialog requests to it reuse it).

Bounded: at most ``max_connections`` (a new one beyond is closed at once), at most
``max_buffered`` bytes waiting to be written on one (a peer that does not read is cut
off), and each message by :mod:`.stream`. A connection idle for ``idle_s`` is closed.
On the connections we opened a CRLF CRLF ping goes every ``ping_s`` (RFC 5626 §4.4.1);
without its CRLF pong within 10 s the connection is closed. Every fault is logged
rate-limited with the reason and the peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from cti import log_limits
from telephony_adapters.sipline.routing import wire_sent_by
from telephony_adapters.sipline.stream import PING, PONG, FramingError, Ping, StreamFramer
from telephony_adapters.sipline.tls import TlsSettings, pin_refused
from telephony_adapters.sipline.transaction import Addr

log = logging.getLogger(__name__)

Key = tuple[str, str, int]
"""(transport, peer host, peer port)."""
PONG_WAIT_S = 10.0


@dataclass(frozen=True, slots=True)
class Limits:
    max_connections: int = 1000
    max_buffered: int = 1 << 20
    idle_s: float = 600.0
    ping_s: float = 30.0
    connect_s: float = 5.0


class Connection(asyncio.Protocol):
    def __init__(self, table: ConnectionTable, transport: str, outbound: bool) -> None:
        self.table = table
        self.kind = transport
        self.outbound = outbound
        self.framer = StreamFramer()
        self.stream: asyncio.Transport | None = None
        self.peer: Addr = ("", 0)
        self.keys: list[Key] = []
        self.last = 0.0
        self.pinged_at: float | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.stream = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = (str(peer[0]), int(peer[1])) if peer else ("", 0)
        self.last = self.table.now()
        why = self.table.admit(self)
        if not why and self.kind == "TLS":
            sslobj = transport.get_extra_info("ssl_object")
            der = sslobj.getpeercert(binary_form=True) if sslobj is not None else None
            why = pin_refused(self.table.tls, der) if self.outbound else ""
        if why:
            self.close(why)

    def data_received(self, data: bytes) -> None:
        self.last = self.table.now()
        try:
            frames = self.framer.feed(data)
        except FramingError as exc:
            self.close(str(exc))
            return
        for frame in frames:
            if isinstance(frame, Ping):
                self.write(PONG)
            else:
                self.table.received(self, frame)
        if self.pinged_at is not None and not self.framer.buffered:
            self.pinged_at = None  # any traffic, a pong included, answers a ping

    def connection_lost(self, exc: Exception | None) -> None:
        self.table.forget(self)

    def write(self, data: bytes) -> bool:
        stream = self.stream
        if stream is None or stream.is_closing():
            return False
        if stream.get_write_buffer_size() + len(data) > self.table.limits.max_buffered:
            self.close(f"over {self.table.limits.max_buffered} bytes waiting to be sent")
            return False
        stream.write(data)
        self.last = self.table.now()
        return True

    def close(self, why: str) -> None:
        self.table.warn(f"{self.kind} connection {self.peer[0]}:{self.peer[1]} closed: {why}")
        if self.stream is not None:
            self.stream.close()
        self.table.forget(self)


class ConnectionTable:
    """See the module docstring. ``deliver(data, source)`` gets each message."""

    def __init__(
        self,
        name: str,
        deliver: Callable[[bytes, Addr], None],
        *,
        tls: TlsSettings | None = None,
        client_ssl: ssl.SSLContext | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.name = name
        self.deliver = deliver
        self.tls = tls or TlsSettings()
        self.client_ssl = client_ssl
        self.limits = limits or Limits()
        self.conns: dict[Key, Connection] = {}
        self._all: set[Connection] = set()
        self._pending: dict[Key, list[bytes]] = {}
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self.opened = 0
        """Connections taken or made so far."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def warn(self, what: str) -> None:
        log_limits.warning(log, "line %s: %s", self.name, what, key=f"{self.name}:stream")

    # --- listening ---------------------------------------------------------------------

    async def listen(
        self, transport: str, host: str, port: int, server_ssl: ssl.SSLContext | None
    ) -> Addr:
        server = await asyncio.get_running_loop().create_server(
            lambda: Connection(self, transport, outbound=False), host, port, ssl=server_ssl
        )
        self._servers.append(server)
        self._sweeping()
        bound = server.sockets[0].getsockname()
        return str(bound[0]), int(bound[1])

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for conn in list(self._all):
            if conn.stream is not None:
                conn.stream.close()
        for task in [*self._tasks, *([self._sweeper] if self._sweeper else [])]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._servers.clear()
        self.conns.clear()
        self._all.clear()

    # --- the table -----------------------------------------------------------------------

    def admit(self, conn: Connection) -> str:
        if len(self._all) >= self.limits.max_connections:
            return f"over {self.limits.max_connections} connections"
        self._all.add(conn)
        self.opened += 1
        self._alias(conn, (conn.kind, *conn.peer))
        return ""

    def _alias(self, conn: Connection, key: Key) -> None:
        if key not in conn.keys:
            conn.keys.append(key)
        self.conns[key] = conn

    def forget(self, conn: Connection) -> None:
        self._all.discard(conn)
        for key in conn.keys:
            if self.conns.get(key) is conn:
                del self.conns[key]

    def received(self, conn: Connection, data: bytes) -> None:
        sent_by = wire_sent_by(data) if not data.startswith(b"SIP/") else None
        if sent_by is not None and sent_by[0] == conn.peer[0] and sent_by[1] != conn.peer[1]:
            self._alias(conn, (conn.kind, *sent_by))  # the peer's listening port
        self.deliver(data, conn.peer)

    def has(self, transport: str, addr: Addr) -> bool:
        return (transport, *addr) in self.conns

    # --- sending ---------------------------------------------------------------------

    def send(
        self,
        transport: str,
        addr: Addr,
        data: bytes,
        server_name: str = "",
        failed: Callable[[list[bytes], str], None] | None = None,
    ) -> None:
        """Send on the connection to ``addr``, opening one when there is none
        (``failed`` gets the messages waiting for it if that fails)."""
        key = (transport, *addr)
        conn = self.conns.get(key)
        if conn is not None and conn.write(data):
            return
        if key in self._pending:
            self._pending[key].append(data)
            return
        self._pending[key] = [data]
        self._sweeping()
        task = asyncio.get_running_loop().create_task(
            self._connect(key, server_name or addr[0], failed)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(
        self, key: Key, server_name: str, failed: Callable[[list[bytes], str], None] | None
    ) -> None:
        transport, host, port = key
        loop = asyncio.get_running_loop()
        tls = transport == "TLS"
        try:
            async with asyncio.timeout(self.limits.connect_s):
                _, conn = await loop.create_connection(
                    lambda: Connection(self, transport, outbound=True),
                    host,
                    port,
                    ssl=(self.client_ssl or ssl.create_default_context()) if tls else None,
                    server_hostname=server_name if tls else None,
                )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            waiting = self._pending.pop(key, [])
            why = str(exc) or type(exc).__name__
            self.warn(f"cannot connect over {transport} to {host}:{port}: {why}")
            if failed is not None:
                failed(waiting, why)
            return
        for data in self._pending.pop(key, []):
            if not conn.write(data):
                break

    def _sweeping(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def _sweep(self) -> None:
        limits = self.limits
        step = max(0.05, min(limits.idle_s, limits.ping_s or limits.idle_s, PONG_WAIT_S) / 4)
        while True:
            await asyncio.sleep(step)
            now = self.now()
            for conn in list(self._all):
                if now - conn.last > limits.idle_s:
                    conn.close(f"idle for {limits.idle_s:g} s")
                elif conn.pinged_at is not None and now - conn.pinged_at > PONG_WAIT_S:
                    conn.close(f"no pong within {PONG_WAIT_S:g} s of a keep-alive ping")
                elif (
                    conn.outbound
                    and limits.ping_s
                    and now - conn.last > limits.ping_s
                    and conn.write(PING)
                ):
                    conn.pinged_at = now
