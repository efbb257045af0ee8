"""The media relay in asyncio: a UDP port per leg around the sans-I/O :class:`MediaCore`.

:class:`MediaRelay` opens each leg's port from a range (even numbers: RTP; RTCP is not
served), hands every datagram to the core with the loop's clock as ``now``, sends the
packets the core returns from that leg's port, and runs one task that sleeps until the
core's next deadline (the 20 ms grid of generated frames, a leg's time-out) and ticks it.
What the core reports beyond packets (DTMF, a silent leg, recording frames, a prompt
that ended) goes to the callbacks of :class:`RelayHooks`: the engine's, which must not
block (a recording is written off this path).

Changing what a leg hears goes through the relay's methods (not the core's), which wake
the task, since a leg that now hears music needs ticks it did not need before.

SRTP stays at this edge (:meth:`MediaRelay.set_srtp`): a leg with an
:class:`~telephony_adapters.media.srtp.SrtpLeg` has what it receives unprotected before
the core sees it (a packet that fails is dropped, counted in the leg's ``garbage``, and
never latches the leg's address) and what it sends protected; the core sees plain RTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TypeVar, cast

from cti import log_limits
from cti.clock import RetryBackoff, wait_for_timer
from cti.errors import TelephonyError
from telephony_adapters.media.bridge import (
    Addr,
    DtmfHeard,
    FrameSource,
    LegSilent,
    MediaCore,
    Out,
    PlayFinished,
    RecordFrame,
    SendPacket,
    Side,
)
from telephony_adapters.media.srtp import SrtpLeg

log = logging.getLogger(__name__)

MAX_BIND_TRIES = 64
"""Ports in use by other programs tried before the range counts as exhausted."""

E = TypeVar("E")


@dataclass(slots=True)
class RelayHooks:
    """Where the core's reports go (each optional; none may block)."""

    on_dtmf: Callable[[DtmfHeard], None] | None = None
    on_silent: Callable[[LegSilent], None] | None = None
    on_record: Callable[[RecordFrame], None] | None = None
    on_play_finished: Callable[[PlayFinished], None] | None = None


class _LegPort(asyncio.DatagramProtocol):
    """One leg's port. It reads through its asyncio transport; the relay sends on its
    socket directly (the transport's ``sendto`` wrapper costs on every packet, and a
    packet that finds the send buffer full is better dropped than sent late)."""

    def __init__(self, relay: MediaRelay, leg_id: str) -> None:
        self.relay = relay
        self.leg_id = leg_id
        self.transport: asyncio.DatagramTransport | None = None
        self.sock: socket.socket | None = None

    def itself(self) -> _LegPort:
        """The protocol factory (one protocol, tried on port after port)."""
        return self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.relay._received(self.leg_id, data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("media leg %s: %s", self.leg_id, exc)


class MediaRelay:
    """UDP ports for the legs of a :class:`MediaCore`, and its clock."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port_min: int = 20000,
        port_max: int = 20999,
        *,
        hooks: RelayHooks | None = None,
        core: MediaCore | None = None,
    ) -> None:
        self.port_min = port_min + port_min % 2
        if not 1 <= port_min <= port_max <= 65535 or self.port_min > port_max:
            raise TelephonyError(f"RTP port range {port_min}-{port_max} holds no even port")
        self.host = host
        self.port_max = port_max
        self.hooks = hooks or RelayHooks()
        self.core = core or MediaCore()
        self._ports: dict[str, int] = {}
        self._sockets: dict[str, _LegPort] = {}
        self.send_errors = 0
        """Packets not sent (a full send buffer, an unreachable address)."""
        self._send_now = self._sendto  # bound once: the core calls it for every packet
        self._latch: set[str] = set()
        self._srtp: dict[str, SrtpLeg] = {}
        self._cursor = self.port_min
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __aenter__(self) -> MediaRelay:
        self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._task = self._loop.create_task(self._ticker(), name="media:tick")

    async def close(self) -> None:
        for leg_id in list(self._ports):
            self.close_leg(leg_id)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # -- legs ----------------------------------------------------------------------

    async def open_leg(
        self,
        leg_id: str,
        *,
        payload_type: int,
        telephone_event: int | None = None,
        remote: Addr | None = None,
        timeout_s: float | None = None,
        latch: bool = False,
        prefer: int = 0,
    ) -> int:
        """A leg on a port of its own (returned). ``latch``: with no ``remote`` yet,
        answer to where its first packet comes from. ``prefer``: that port if it is in
        the range and free (a leg taken up after a restart keeps the port its peer
        knows), else one from the range. Raises TelephonyError when the range is
        exhausted, the id is taken or the codec is not G.711."""
        if leg_id in self._ports:
            raise TelephonyError(f"media leg {leg_id!r} exists already")
        loop = self._loop or asyncio.get_running_loop()
        self.core.add_leg(
            leg_id,
            payload_type=payload_type,
            telephone_event=telephone_event,
            remote=remote,
            timeout_s=timeout_s,
            now=loop.time(),
        )
        try:
            port, sock = await self._bind(leg_id, prefer)
        except BaseException:
            self.core.remove_leg(leg_id)
            raise
        self._ports[leg_id], self._sockets[leg_id] = port, sock
        if latch:
            self._latch.add(leg_id)
        self._wake.set()
        return port

    def _candidates(self, prefer: int) -> Iterator[int]:
        """``prefer`` (when in the range), then the range from the cursor on, once."""
        if self.port_min <= prefer <= self.port_max and prefer % 2 == 0:
            yield prefer
        for _ in range((self.port_max - self.port_min) // 2 + 1):
            port = self._cursor
            self._cursor = self.port_min if port + 2 > self.port_max else port + 2
            yield port

    async def _bind(self, leg_id: str, prefer: int = 0) -> tuple[int, _LegPort]:
        loop = asyncio.get_running_loop()
        taken = set(self._ports.values())
        tries = 0
        leg = _LegPort(self, leg_id)
        for port in self._candidates(prefer):
            if port in taken:
                continue
            try:
                leg.sock = await self._open_socket(loop, port)
            except OSError:
                tries += 1
                if tries >= MAX_BIND_TRIES:
                    break
                continue
            try:
                await loop.create_datagram_endpoint(leg.itself, sock=leg.sock)
            except BaseException:
                leg.sock.close()
                raise
            return port, leg
        raise TelephonyError(
            f"no free RTP port on {self.host} in {self.port_min}-{self.port_max}"
            f" ({len(self._ports)} legs open, {tries} ports taken by other programs)"
        )

    async def _open_socket(self, loop: asyncio.AbstractEventLoop, port: int) -> socket.socket:
        """A non-blocking UDP socket bound to ``port`` on the relay's host."""
        family, kind, proto, _, addr = (
            await loop.getaddrinfo(self.host, port, type=socket.SOCK_DGRAM)
        )[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.bind(addr)
        except OSError:
            sock.close()
            raise
        return sock

    def close_leg(self, leg_id: str) -> None:
        """The leg's port closes; legs that heard it hear silence. Unknown: no error."""
        self._ports.pop(leg_id, None)
        self._latch.discard(leg_id)
        self._srtp.pop(leg_id, None)
        sock = self._sockets.pop(leg_id, None)
        if sock is not None and sock.transport is not None:
            sock.transport.close()
        self.core.remove_leg(leg_id)

    def port_of(self, leg_id: str) -> int:
        port = self._ports.get(leg_id)
        if port is None:
            raise TelephonyError(f"no media leg {leg_id!r}")
        return port

    def __len__(self) -> int:
        return len(self._ports)

    # -- what each leg hears (the core's, then a wake-up for the tick task) ------------

    def connect(self, a: str, b: str) -> None:
        self._changed(self.core.connect, a, b)

    def hear(self, leg_id: str, other_id: str) -> None:
        self._changed(self.core.hear, leg_id, other_id)

    def play(self, leg_id: str, source: FrameSource) -> None:
        self._changed(self.core.play, leg_id, source)

    def silence(self, leg_id: str) -> None:
        self._changed(self.core.silence, leg_id)

    def mix(self, leg_ids: Sequence[str]) -> None:
        self._changed(self.core.mix, leg_ids)

    def mute(self, leg_id: str, muted: bool) -> None:
        self.core.mute(leg_id, muted)

    def tap(self, leg_id: str, tap: str, side: Side) -> None:
        self.core.tap(leg_id, tap, side)

    def untap(self, leg_id: str, tap: str) -> None:
        self.core.untap(leg_id, tap)

    def set_remote(self, leg_id: str, remote: Addr | None) -> None:
        self._changed(self.core.set_remote, leg_id, remote)

    def set_codec(self, leg_id: str, payload_type: int, telephone_event: int | None) -> None:
        self.core.set_codec(leg_id, payload_type, telephone_event)

    def set_srtp(self, leg_id: str, srtp: SrtpLeg | None) -> None:
        """The leg's SRTP transform from now on (None: plain RTP). Raises TelephonyError
        for an unknown leg."""
        self.port_of(leg_id)
        if srtp is None:
            self._srtp.pop(leg_id, None)
        else:
            self._srtp[leg_id] = srtp

    def srtp_of(self, leg_id: str) -> SrtpLeg | None:
        """The leg's SRTP transform (its counters), None for plain RTP."""
        return self._srtp.get(leg_id)

    def set_timeout(self, leg_id: str, timeout_s: float | None) -> None:
        loop = self._loop or asyncio.get_running_loop()
        self._changed(self.core.set_timeout, leg_id, timeout_s, loop.time())

    def _changed(self, change: Callable[..., None], *args: object) -> None:
        change(*args)
        self._wake.set()

    # -- packets and time ------------------------------------------------------------

    def _received(self, leg_id: str, data: bytes, addr: tuple[str | object, ...]) -> None:
        loop = self._loop or asyncio.get_running_loop()
        srtp = self._srtp.get(leg_id)
        if srtp is not None:
            plain = srtp.unprotect(data)
            if plain is None:
                return
            data = plain
        if leg_id in self._latch and isinstance(addr[0], str) and isinstance(addr[1], int):
            self._latch.discard(leg_id)
            self.set_remote(leg_id, (addr[0], addr[1]))
        outs: list[Out] = []
        self.core.receive_into(leg_id, data, loop.time(), outs, self._send_now)
        if outs:
            self._dispatch(outs)

    async def _ticker(self) -> None:
        loop = asyncio.get_running_loop()
        steady = RetryBackoff()  # never fails: the tick's errors are the hooks', caught
        while True:
            deadline = self.core.next_deadline()
            delay = None if deadline is None else deadline - loop.time()
            if delay is None or delay > 0:
                await wait_for_timer(self._wake, delay, steady, loop.time())
                continue
            self._dispatch(self.core.tick(loop.time()))

    def _dispatch(self, outs: list[Out]) -> None:
        hooks = self.hooks
        for out in outs:
            if isinstance(out, RecordFrame):  # the usual after a packet (sends go direct)
                self._call(hooks.on_record, out)
            elif isinstance(out, SendPacket):
                self._sendto(out.leg_id, out.data, out.addr)
            elif isinstance(out, DtmfHeard):
                self._call(hooks.on_dtmf, out)
            elif isinstance(out, LegSilent):
                self._call(hooks.on_silent, out)
            else:
                self._call(hooks.on_play_finished, out)

    def _sendto(self, leg_id: str, data: bytes, addr: Addr) -> None:
        leg = self._sockets.get(leg_id)
        if leg is None or leg.sock is None:
            return
        srtp = self._srtp.get(leg_id)
        if srtp is not None:
            protected = srtp.protect(data)
            if protected is None:
                return
            data = protected
        try:
            leg.sock.sendto(data, addr)
        except (OSError, ValueError, OverflowError) as exc:  # one leg's fault, not all's
            self.send_errors += 1
            log.debug("media leg %s: sending to %s failed: %s", leg_id, addr, exc)

    @staticmethod
    def _call(hook: Callable[[E], None] | None, event: E) -> None:
        if hook is None:
            return
        try:
            hook(event)
        except Exception:  # a broken hook must not stop the audio
            log_limits.exception(log, "media hook failed on %r", event)
