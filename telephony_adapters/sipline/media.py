"""The RTP side of the line in asyncio: one UDP port per call, silence out, DTMF in.

:class:`MediaPorts` opens a port for a call from the configured range (even numbers,
RTP convention), starts sending 20 ms packets of silence once the call's media plan
says so (one ticker task for every stream), reads what the peer sends for RFC 4733
DTMF events, and closes the port when the call ends. Without ``enabled`` it hands out
port numbers without opening anything (for load tests whose peers send no media).

A plan with SRTP keys (docs/sip.md, SRTP) puts the stream's
:class:`~telephony_adapters.media.srtp.SrtpLeg` at its edge, as the relay does for a
line with phones: what it receives is unprotected first (a packet failing
authentication or the replay check is dropped and counted in ``garbage``), what it sends
is protected. Keys the transform cannot take silence the stream both ways.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import cast

from cti import log_limits
from cti.errors import TelephonyError
from telephony_adapters.media.srtp import CryptoError, SrtpLeg, keyed
from telephony_adapters.sipline.message import SipSyntaxError
from telephony_adapters.sipline.rtp import (
    PACKET_INTERVAL_S,
    DtmfEvent,
    DtmfReceiver,
    SilenceSource,
    parse_rtp,
)
from telephony_adapters.sipline.sdp import MediaPlan, is_ip

log = logging.getLogger(__name__)

DtmfListener = Callable[[str, DtmfEvent], None]


class _Stream(asyncio.DatagramProtocol):
    def __init__(self, call_id: str, on_dtmf: DtmfListener) -> None:
        self.call_id = call_id
        self.on_dtmf = on_dtmf
        self.transport: asyncio.DatagramTransport | None = None
        self.dest: tuple[str, int] | None = None
        self.source: SilenceSource | None = None
        self.dtmf: DtmfReceiver | None = None
        self.srtp: SrtpLeg | None = None
        self.refused = False
        """The plan's SRTP keys were unusable: nothing is sent or taken."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if self.srtp is not None:
            plain = self.srtp.unprotect(data)  # counted and dropped when it fails
            if plain is None:
                return
            data = plain
        if self.dtmf is None or self.refused:
            return
        try:
            packet = parse_rtp(data)
        except SipSyntaxError:
            return  # not RTP (or RTCP): nothing we need from it
        for event in self.dtmf.feed(packet):
            self.on_dtmf(self.call_id, event)

    def error_received(self, exc: Exception) -> None:
        log.debug("call %s: RTP send failed: %s", self.call_id, exc)

    def play(self, plan: MediaPlan) -> None:
        try:
            self.srtp = keyed(plan.srtp_suite, plan.srtp_send_key, plan.srtp_recv_key,
                              self.srtp)  # fmt: skip
            self.refused = False
        except CryptoError as exc:
            log_limits.warning(log, "call %s: SRTP keys not usable (%s); no audio either way",
                               self.call_id, exc)  # fmt: skip
            self.srtp, self.refused, self.dest = None, True, None
            return
        self.dest = (plan.remote_host, plan.remote_port) if plan.sends else None
        if self.dest is not None and not is_ip(plan.remote_host):
            # A name would be looked up (blocking) on every packet: send nothing.
            log_limits.warning(
                log,
                "call %s: RTP address %r is not an IP address; sending no audio",
                self.call_id,
                plan.remote_host[:60],
            )
            self.dest = None
        if self.source is None or self.source.payload_type != plan.payload_type:
            self.source = SilenceSource(
                plan.payload_type, ssrc=random.getrandbits(32), sequence=random.getrandbits(16)
            )
        if plan.telephone_event is None:
            self.dtmf = None
        elif self.dtmf is None:
            self.dtmf = DtmfReceiver(plan.telephone_event)
        else:
            # A re-INVITE (hold, resume) keeps the stream: a key already reported, whose
            # end packets are still coming, must not be reported again.
            self.dtmf.payload_type = plan.telephone_event

    def tick(self) -> None:
        if self.transport is None or self.dest is None or self.source is None:
            return
        packet = self.source.next_packet()
        if self.srtp is not None:
            protected = self.srtp.protect(packet)
            if protected is None:
                return  # counted in send_failures
            packet = protected
        try:
            self.transport.sendto(packet, self.dest)
        except (OSError, ValueError, OverflowError) as exc:  # one call's fault, not all's
            log.debug("call %s: RTP to %s failed: %s", self.call_id, self.dest, exc)


def _factory(stream: _Stream) -> Callable[[], _Stream]:
    return lambda: stream


class MediaPorts:
    def __init__(
        self,
        host: str,
        port_min: int,
        port_max: int,
        *,
        enabled: bool = True,
        on_dtmf: DtmfListener | None = None,
    ) -> None:
        self.host = host
        self.port_min = port_min + port_min % 2
        self.port_max = port_max
        self.enabled = enabled
        self.on_dtmf: DtmfListener = on_dtmf or (lambda call_id, event: None)
        self._streams: dict[str, _Stream] = {}
        self._ports: dict[str, int] = {}
        self._next = self.port_min
        self._ticker: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._ports)

    async def open(self, call_id: str, *, prefer: int = 0) -> int:
        """A port for the call (its RTP), ``prefer`` first if given and free (a call
        taken up after a restart keeps its port); raises TelephonyError if none is free."""
        if call_id in self._ports:
            return self._ports[call_id]
        span = max(1, (self.port_max - self.port_min) // 2 + 1)
        taken = set(self._ports.values())
        loop = asyncio.get_running_loop()
        for attempt in range(min(span, 200) + 1):
            if attempt == 0 and not prefer:
                continue
            port = prefer if attempt == 0 else self._next
            if attempt:
                self._next = self.port_min if port + 2 > self.port_max else port + 2
            if port in taken:
                continue
            if not self.enabled:
                self._ports[call_id] = port
                return port
            stream = _Stream(call_id, self.on_dtmf)
            try:
                await loop.create_datagram_endpoint(_factory(stream), local_addr=(self.host, port))
            except OSError:
                continue
            self._streams[call_id] = stream
            self._ports[call_id] = port
            return port
        raise TelephonyError(f"no free RTP port on {self.host} in {self.port_min}-{self.port_max}")

    def start(self, call_id: str, plan: MediaPlan) -> None:
        stream = self._streams.get(call_id)
        if stream is None:
            return
        stream.play(plan)
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(self._tick(), name="sip:rtp")

    def srtp_of(self, call_id: str) -> SrtpLeg | None:
        """The call's SRTP transform (its counters), None for plain RTP or no stream."""
        stream = self._streams.get(call_id)
        return None if stream is None else stream.srtp

    def close(self, call_id: str) -> None:
        self._ports.pop(call_id, None)
        stream = self._streams.pop(call_id, None)
        if stream is not None and stream.transport is not None:
            stream.transport.close()

    async def close_all(self) -> None:
        for call_id in list(self._ports):
            self.close(call_id)
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None

    async def _tick(self) -> None:
        """Every 20 ms, one packet on every stream that sends; ends when none is left."""
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while any(s.dest is not None for s in self._streams.values()):
            for stream in list(self._streams.values()):
                stream.tick()
            next_at += PACKET_INTERVAL_S
            delay = next_at - loop.time()
            if delay < -0.2:  # fell far behind (a busy loop): do not burst to catch up
                next_at, delay = loop.time(), 0.0
            await asyncio.sleep(max(0.0, delay))
