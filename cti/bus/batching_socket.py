"""The broker connection's TCP socket with fewer system calls (``docs/mqtt.md``).

paho writes each MQTT packet with its own ``send`` and reads each packet in three
``recv`` calls (its command byte, its length one byte at a time, its body). At hundreds
of calls a second, with about fifteen packets a call, those system calls were the
largest share of the engine's CPU. :class:`BatchingSocket` wraps the plain TCP socket:

* **Writes**: the packets written during one turn of the event loop are sent in one
  ``send`` at the end of that turn (scheduled with ``call_soon``), in order. When the
  kernel's buffer is full the rest waits here and goes out when the socket is writable
  again; above :data:`HIGH_WATER` bytes waiting, ``send`` says ``BlockingIOError`` and
  paho keeps its packets itself (bounded: the bus's in-flight window).
* **Reads**: one ``recv`` of up to :data:`READ_SIZE` bytes serves paho's small reads;
  :meth:`pending` tells aiomqtt's reader there is more buffered (the hook it has for
  TLS sockets), so nothing waits for the socket to become readable again.

With a :class:`~cti.bus.packets.Demux` (the link's), the PUBLISH and PUBACK packets read
are taken by it and paho reads only the rest; the link writes its PUBLISHes with
:meth:`BatchingSocket.write` (:mod:`cti.bus.packets`).

TLS and websocket connections are not wrapped (:func:`batching_sockets`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from typing import Any

from cti import log_limits
from cti.bus.packets import Demux

log = logging.getLogger(__name__)

#: Bytes read from the kernel at once.
READ_SIZE = 64 * 1024
#: Bytes waiting to be sent above which ``send`` refuses more (paho then holds them).
HIGH_WATER = 1024 * 1024


class BatchingSocket:
    """A non-blocking TCP socket whose sends of one loop turn go out in one system call
    and whose reads come from one large ``recv``. Everything else is the socket's."""

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        self._sock = sock
        self._loop = loop
        self._loop_thread: int | None = None
        self._out = bytearray()
        self._flush_due = False
        self._watching = False
        self._in = b""
        self._in_at = 0
        self._error: OSError | None = None
        self._dup: socket.socket | None = None
        self.demux: Demux | None = None
        """Takes the packets read that are not paho's (set before the connection opens)."""
        self.drained: Callable[[], None] | None = None
        """Called once what waits to be sent falls below :data:`HIGH_WATER` again (at
        every flush below it while set: the link sets it only while it holds publishes)."""
        self.sends = 0
        """System calls made to send (a test counts them)."""

    @property
    def waiting(self) -> int:
        """Bytes written by paho and not yet taken by the kernel."""
        return len(self._out)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    # --- writing ------------------------------------------------------------------

    def send(self, data: bytes | bytearray | memoryview) -> int:
        if self._error is not None:
            raise self._error
        if not self._on_loop():
            if not self._out:  # paho's CONNECT, from aiomqtt's connecting thread
                self.sends += 1
                return self._sock.send(data)
            self._out += data
            self._loop.call_soon_threadsafe(self._schedule_flush)
            return len(data)
        if len(self._out) >= HIGH_WATER:
            self._flush()
            if len(self._out) >= HIGH_WATER:
                log_limits.warning(
                    log,
                    "the broker does not read: %d bytes wait to be sent; publishing"
                    " waits (the bus's in-flight window bounds the rest)",
                    len(self._out),
                )
                raise BlockingIOError("the broker does not read: sending waits")
        self._out += data
        self._schedule_flush()
        return len(data)

    def write(self, data: bytes) -> None:
        """Queue a packet of ours (on the loop) for the end of this turn, whatever waits:
        the caller bounds it (:attr:`over_high_water`, the bus's window); the socket's
        error if it failed."""
        if self._error is not None:
            raise self._error
        self._out += data
        if not self._flush_due and not self._watching:  # _schedule_flush, a frame less
            self._flush_due = True
            self._loop.call_soon(self._flush)

    @property
    def over_high_water(self) -> bool:
        """More than :data:`HIGH_WATER` bytes wait for the kernel (the broker does not read)."""
        return len(self._out) >= HIGH_WATER

    def flush_now(self) -> None:
        """Send what waits now rather than at the end of this turn (one more ``send``):
        for a packet someone waits on, ahead of work that would delay it."""
        if self._flush_due and not self._watching:
            self._flush()

    def _on_loop(self) -> bool:
        if self._loop_thread is None:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                return False
            if running is not self._loop:
                return False
            self._loop_thread = threading.get_ident()
        return threading.get_ident() == self._loop_thread

    def _schedule_flush(self) -> None:
        if not self._flush_due and not self._watching:
            self._flush_due = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Send what waits; if the kernel takes only part, wait for the socket to be
        writable (on a duplicate descriptor: paho's writer has the socket's own)."""
        self._flush_due = False
        while self._out and self._error is None:
            try:
                self.sends += 1
                sent = self._sock.send(self._out)
            except BlockingIOError:
                break
            except OSError as exc:
                self._error = exc  # paho sees it at its next send or recv
                self._out.clear()
                log.debug("broker socket: %r", exc)
                break
            del self._out[:sent]
        watch = bool(self._out) and self._error is None
        if watch != self._watching:  # _watch's own test, its frame only when it changes
            self._watch(watch)
        if self.drained is not None and len(self._out) < HIGH_WATER:
            self.drained()

    def _watch(self, on: bool) -> None:
        if on == self._watching:
            return
        self._watching = on
        if on:
            self._loop.add_writer(self._watcher(), self._flush)
        else:
            self._loop.remove_writer(self._watcher())

    def _watcher(self) -> socket.socket:
        if self._dup is None:
            self._dup = self._sock.dup()
        return self._dup

    # --- reading ------------------------------------------------------------------

    def recv(self, size: int) -> bytes:
        if self._error is not None:
            raise self._error
        if self._in_at >= len(self._in):
            data = self._sock.recv(max(size, READ_SIZE))
            if not data:
                return data  # the broker closed the connection
            if self.demux is not None:
                data = self.demux.feed(data)
                if not data:  # all taken: paho has nothing to read now
                    raise BlockingIOError("nothing for paho")
            self._in, self._in_at = data, 0
        chunk = self._in[self._in_at : self._in_at + size]
        self._in_at += len(chunk)
        return chunk

    def read_for_paho(self) -> bool:
        """Read what the kernel has (the demux taking its packets); whether paho has
        anything to read now: bytes left to it, the end of the connection or an error.
        False when everything read was taken (or nothing was there): the link's
        ``loop_read`` then skips paho's read, four frames and an exception raised and
        caught for each read of PUBACKs and PUBLISHes (issue 23)."""
        if self._error is not None or self._in_at < len(self._in):
            return True
        try:
            data = self._sock.recv(READ_SIZE)
        except BlockingIOError:
            return False
        except OSError as exc:
            self._error = exc  # paho's recv raises it
            return True
        if not data:
            return True  # the broker closed: paho's recv reads the end again
        if self.demux is not None:
            data = self.demux.feed(data)
            if not data:
                return False
        self._in, self._in_at = data, 0
        return True

    def pending(self) -> int:
        """Bytes read and not yet handed to paho (aiomqtt's reader reads on while > 0)."""
        return len(self._in) - self._in_at

    # --- closing ------------------------------------------------------------------

    def close(self) -> None:
        """Send what waits (paho's DISCONNECT: else the broker would publish our last
        will), then close."""
        if self._out and self._error is None:
            with contextlib.suppress(OSError):
                sent = self._sock.send(self._out)
                del self._out[:sent]
        if self._watching and not self._loop.is_closed():
            with contextlib.suppress(Exception):
                self._watch(False)
        if self._dup is not None:
            self._dup.close()
        self._sock.close()


def batching_sockets(
    paho_client: Any,
    loop: asyncio.AbstractEventLoop,
    options: Iterable[tuple[int, int, int]] = (),
    opened: Callable[[BatchingSocket], None] | None = None,
) -> None:
    """Make ``paho_client`` (aiomqtt's ``_client``) open its plain TCP connections as
    :class:`BatchingSocket` with ``options`` set (aiomqtt sets its ``socket_options``
    only on a ``socket.socket``, so the wrapped one would lose them) and handed to
    ``opened`` before anything is read (the link sets its demux); a paho without the
    expected method is left as it is."""
    options = tuple(options)
    create: Callable[[], Any] | None = getattr(paho_client, "_create_socket", None)
    if create is None:
        log.warning("paho has no _create_socket: broker writes are not batched")
        return

    def create_batching() -> Any:
        sock = create()
        if type(sock) is socket.socket and not isinstance(sock, ssl.SSLSocket):
            for option in options:  # TCP_NODELAY lost cost ~40 ms a message (Nagle)
                sock.setsockopt(*option)
            wrapped = BatchingSocket(sock, loop)
            if opened is not None:
                opened(wrapped)
            return wrapped
        return sock

    paho_client._create_socket = create_batching
