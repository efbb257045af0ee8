"""The SIP line's sockets (the shell's transport layer): the UDP endpoint, where each
message the user agent sends goes, and the host names it must resolve first.

:class:`SipTransports` hands every message received to ``deliver`` with its source,
and sends the user agent's datagrams; nothing a peer sends can stop it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Any

from cti import log_limits
from cti.errors import TelephonyError
from telephony_adapters.sipline.message import SipSyntaxError, parse_uri
from telephony_adapters.sipline.sdp import is_ip
from telephony_adapters.sipline.transaction import Addr

log = logging.getLogger(__name__)

Deliver = Callable[[bytes, Addr], None]
"""Where received messages go: (bytes, source address)."""


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, net: SipTransports) -> None:
        self.net = net

    def datagram_received(self, data: bytes, addr: tuple[str | Any, ...]) -> None:
        self.net.deliver(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        log.info("line %s: UDP error (a peer gone?): %s", self.net.name, exc)


class SipTransports:
    """The line's UDP socket, and the resolution of host names it sends to."""

    def __init__(self, name: str, deliver: Deliver) -> None:
        self.name = name
        self.deliver = deliver
        self._udp: asyncio.DatagramTransport | None = None
        self._resolved: dict[str, str] = {}

    @property
    def local_address(self) -> Addr:
        """Where the UDP socket listens (the real port when configured as 0)."""
        if self._udp is None:
            raise TelephonyError(f"line {self.name!r} is not started")
        host, port = self._udp.get_extra_info("sockname")[:2]
        return str(host), int(port)

    async def open(self, bind_host: str, bind_port: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            self._udp, _ = await loop.create_datagram_endpoint(
                lambda: _Datagrams(self), local_addr=(bind_host, bind_port)
            )
        except OSError as exc:
            raise TelephonyError(
                f"line {self.name!r}: cannot listen on {bind_host}:{bind_port}: {exc}"
            ) from exc

    def close(self) -> None:
        udp, self._udp = self._udp, None
        if udp is not None:
            udp.close()

    def send(self, data: bytes, dest: Addr) -> None:
        transport = self._udp
        if transport is None:
            return
        host = self._resolved.get(dest[0], dest[0])
        if not is_ip(host):
            asyncio.get_running_loop().create_task(self._send_resolved(data, dest))
            return
        try:
            transport.sendto(data, (host, dest[1]))
        except (OSError, ValueError) as exc:
            log_limits.warning(log, "line %s: cannot send to %s:%d: %s", self.name, host,
                               dest[1], exc, key=self.name)  # fmt: skip

    async def _send_resolved(self, data: bytes, dest: Addr) -> None:
        await self.resolve_later(dest[0])
        if is_ip(self._resolved.get(dest[0], "")):
            self.send(data, dest)
        else:
            log_limits.warning(log, "line %s: cannot resolve %r; message dropped", self.name,
                               dest[0], key=self.name)  # fmt: skip

    async def resolve_later(self, text: str) -> None:
        """Resolve the host of ``text`` (``host[:port]`` or a URI) for later sends."""
        try:
            host = parse_uri(text if text.startswith("sip") else f"sip:{text}").host.strip("[]")
        except SipSyntaxError:
            host = text
        if not host or is_ip(host) or host in self._resolved:
            return
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, None, family=socket.AF_INET, type=socket.SOCK_DGRAM
            )
            self._resolved[host] = str(infos[0][4][0])
        except (OSError, IndexError) as exc:
            log_limits.warning(
                log, "line %s: cannot resolve %r: %s", self.name, host, exc, key=self.name
            )


def advertised(bound: str) -> str:
    """The address to put in Via, Contact and SDP when ``public_host`` is not set."""
    if bound not in ("0.0.0.0", "::", ""):
        return bound
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the route's address
        return str(s.getsockname()[0])
    return "127.0.0.1"
