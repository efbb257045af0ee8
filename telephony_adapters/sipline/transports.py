"""The SIP line's sockets (the shell's transport layer, RFC 3261 §18): UDP, TCP and TLS
listeners, the connections (:mod:`.connections`), and where each message the user agent
sends goes.

A request goes by the transport its target URI names (``;transport=``, ``sips:``), else
the one RFC 3263 gives for a host name (:mod:`.resolve`, looked up once and kept), else
by an open TCP/TLS connection to that peer, else UDP; our top Via and Contact are made
to say so (:mod:`.routing`) before the transaction layer keeps the request. A response
goes by its request's transport (the connection it came on). When a connection to a
resolved target fails, or a request to it times out or is answered 503 (the
transaction layer asks :meth:`SipTransports.failover`), the target is set aside for
:data:`DOWN_S` and the message goes to the next one (RFC 3263 §4.3). A request that
could not be sent at all (its connection failed) goes back to its transaction
(:attr:`SipTransports.unsent`), which fails over or ends at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from cti import log_limits
from cti.errors import TelephonyError
from telephony_adapters.sipline.connections import ConnectionTable, Limits
from telephony_adapters.sipline.message import Message, Request, SipSyntaxError, parse
from telephony_adapters.sipline.params import SipLineParams
from telephony_adapters.sipline.resolve import Resolver, Target
from telephony_adapters.sipline.routing import (
    STREAMS,
    stamp,
    target_uri,
    uri_transport,
    wire_transport,
)
from telephony_adapters.sipline.sdp import is_ip
from telephony_adapters.sipline.tls import TlsSettings, client_context, normal_pins, server_context
from telephony_adapters.sipline.transaction import Addr
from telephony_adapters.sipline.uri import parse_uri

log = logging.getLogger(__name__)

Deliver = Callable[[bytes, Addr], None]
"""Where received messages go: (bytes, source address)."""
DOWN_S = 30.0
"""A target that failed is passed over this long."""
SENT_KEPT = 4096
"""Requests whose resolved target is remembered (by branch) for a failover."""
_BIND_TRIES = 20
SDES_KEYS = b"\na=crypto:"
"""An SDP body carrying SRTP keys (RFC 4568) has this line."""


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, net: SipTransports) -> None:
        self.net = net

    def datagram_received(self, data: bytes, addr: tuple[str | Any, ...]) -> None:
        self.net.received(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        log.info("line %s: UDP error (a peer gone?): %s", self.net.name, exc)


def _host_port(text: str, default: int) -> Addr:
    host, _, port = text.rpartition(":") if text.count(":") == 1 else (text, "", "")
    return (host or text), int(port) if port.isdigit() else default


class SipTransports:
    """See the module docstring. ``host``: the address we advertise (set once known)."""

    def __init__(self, params: SipLineParams, deliver: Deliver) -> None:
        self.name = params.name
        self.params = params
        self.deliver = deliver
        self.host = ""
        self.ports: dict[str, int] = {}
        """Transport -> the port we listen on for it."""
        self.enabled = tuple(t.upper() for t in params.transports) or ("UDP",)
        self._udp: asyncio.DatagramTransport | None = None
        try:
            pins = normal_pins(params.tls_pin_sha256)
        except ValueError as exc:
            raise TelephonyError(f"line {self.name!r}: tls_pin_sha256: {exc}") from None
        self.tls = TlsSettings(
            params.tls_cert_file, params.tls_key_file, params.tls_ca_file, pins, params.tls_verify
        )
        self.streams = ConnectionTable(
            self.name,
            self.received,
            tls=self.tls,
            limits=Limits(idle_s=params.stream_idle_s, ping_s=params.keepalive_s),
        )
        servers = [_host_port(s, 53) for s in params.dns_servers]
        self.resolver = Resolver(servers)
        self._targets: dict[str, list[Target]] = {}
        self._down: dict[Target, float] = {}
        self.unsent: Callable[[bytes], None] | None = None
        """Set by the line: a request whose connection could not be made goes here."""
        self._sent_to: dict[str, Target] = {}
        """Branch -> the target a request went to (the latest :data:`SENT_KEPT`)."""
        self._resolving: dict[str, asyncio.Task[None]] = {}
        self.keys_kept = 0
        """Messages with SDES keys not sent because their hop was not TLS."""

    @property
    def local_address(self) -> Addr:
        """Where the UDP socket listens (the real port when configured as 0)."""
        return self.address("UDP")

    def address(self, transport: str) -> Addr:
        port = self.ports.get(transport.upper())
        if port is None:
            raise TelephonyError(f"line {self.name!r} does not listen on {transport}")
        return self.params.bind_host, port

    async def open(self) -> None:
        p = self.params
        unknown = set(self.enabled) - {"UDP", "TCP", "TLS"}
        if unknown:
            raise TelephonyError(f"line {self.name!r}: unknown transport {sorted(unknown)}")
        if "TLS" in self.enabled or p.tls_ca_file or p.tls_pin_sha256 or not p.tls_verify:
            self.streams.client_ssl = client_context(self.tls)
            if not p.tls_verify and not p.tls_pin_sha256:
                log.warning("line %s: TLS certificates are not verified", self.name)
        for attempt in range(_BIND_TRIES):
            try:
                await self._listen(p.bind_port)
                break
            except OSError as exc:
                await self.close()
                if p.bind_port or attempt == _BIND_TRIES - 1:
                    raise TelephonyError(
                        f"line {self.name!r}: cannot listen on {p.bind_host}:{p.bind_port}: {exc}"
                    ) from exc
        if "TLS" in self.enabled:
            try:
                bound = await self.streams.listen(
                    "TLS", p.bind_host, p.tls_port, server_context(self.tls)
                )
            except OSError as exc:
                raise TelephonyError(
                    f"line {self.name!r}: cannot listen for TLS on {p.bind_host}:{p.tls_port}: "
                    f"{exc}"
                ) from exc
            self.ports["TLS"] = bound[1]

    async def _listen(self, port: int) -> None:
        """UDP and TCP at one port (any free one for both when 0: tried again if TCP
        finds the UDP socket's port taken)."""
        loop = asyncio.get_running_loop()
        host = self.params.bind_host
        self._udp, _ = await loop.create_datagram_endpoint(
            lambda: _Datagrams(self), local_addr=(host, port)
        )
        port = int(self._udp.get_extra_info("sockname")[1])
        if "UDP" in self.enabled:
            self.ports["UDP"] = port
        if "TCP" in self.enabled:
            self.ports["TCP"] = (await self.streams.listen("TCP", host, port, None))[1]
        self.ports.setdefault("UDP", port)  # our Via's port as the user agent writes it

    async def close(self) -> None:
        udp, self._udp = self._udp, None
        if udp is not None:
            udp.close()
        for task in self._resolving.values():
            task.cancel()
        await self.streams.close()

    # --- receiving ---------------------------------------------------------------------

    def received(self, data: bytes, source: Addr) -> None:
        self.deliver(data, source)

    # --- choosing and stamping (the transaction layer's hook) ---------------------------

    def choose(self, request: Request, dest: Addr) -> tuple[str, Target | None]:
        """The transport of ``request`` to ``dest``, and the resolved target if any."""
        uri = target_uri(request)
        named = uri_transport(uri) if uri is not None else None
        target = self._target(dest, named)
        if named is not None:
            return named, target
        if target is not None:
            return target.transport, target
        for transport in ("TLS", "TCP"):
            if self.streams.has(transport, dest):
                return transport, None
        return ("UDP" if "UDP" in self.enabled else self.enabled[0]), None

    def stamp(self, message: Message, dest: Addr, transport: str | None) -> None:
        if transport is None and isinstance(message, Request):
            transport = self.choose(message, dest)[0]
        if transport is not None:
            stamp(message, transport, self.host, self.ports)

    # --- sending -------------------------------------------------------------------------

    def send(self, data: bytes, dest: Addr) -> None:
        if self._udp is None:
            return
        transport = wire_transport(data)
        target = None
        if not data.startswith(b"SIP/"):
            data, transport, target = self._request_route(data, dest, transport)
        if target is not None:
            dest = target.addr
        elif not is_ip(dest[0]):
            # Not resolved yet; or resolved without a target of the transport the URI
            # names (a sips: host whose NAPTR lists only plain ones): asked for that.
            named = transport if dest[0] in self._targets else None
            self._resolve_then(data, dest, named)
            return
        if transport != "TLS" and SDES_KEYS in data:
            self._keys_kept(data, transport, dest)
            return
        self._send_on(transport, dest, data, target)

    def _keys_kept(self, data: bytes, transport: str, dest: Addr) -> None:
        """A message with SDES keys in its SDP that would go by ``transport``, not TLS:
        never sent (the keys would be readable on the way). A request other than an ACK
        goes back to its transaction, which ends as if unreachable (docs/sip.md, SRTP)."""
        self.keys_kept += 1
        first = data[:80].split(b"\r\n", 1)[0].decode("ascii", "replace")
        log_limits.warning(log, "line %s: %r with SRTP keys not sent to %s:%d over %s (SDES "
                           "keys go over TLS only)", self.name, first, dest[0], dest[1],
                           transport, key=f"{self.name}:sdes")  # fmt: skip
        if self.unsent is not None and not data.startswith((b"SIP/", b"ACK ")):
            asyncio.get_running_loop().call_soon(self.unsent, data)

    def _request_route(
        self, data: bytes, dest: Addr, transport: str
    ) -> tuple[bytes, str, Target | None]:
        """A request as it goes: stamped again when its transport is not the one written
        (an ACK of a 2xx, a target resolved later, a failover to another transport)."""
        if (
            transport == "UDP"
            and is_ip(dest[0])
            and not self.streams.conns
            and (not data.startswith(b"ACK "))
        ):
            return data, transport, None  # the usual case, without reading the message
        try:
            request = parse(data)
        except SipSyntaxError:
            return data, transport, None
        if not isinstance(request, Request):
            return data, transport, None
        chosen, target = self.choose(request, dest)
        if target is not None and target.transport != chosen:
            chosen = target.transport
        if target is not None and request.method not in ("ACK", "CANCEL"):
            self._remember(request, target)
        if chosen != transport:
            stamp(request, chosen, self.host, self.ports)
            data = bytes(request)
        return data, chosen, target

    def _send_on(self, transport: str, dest: Addr, data: bytes, target: Target | None) -> None:
        if transport in STREAMS:
            name = target.name if target is not None else ""

            def failed(waiting: list[bytes], why: str) -> None:
                if target is not None:
                    self._set_aside(target.addr, why)
                for message in waiting:
                    if self.unsent is not None and not message.startswith((b"SIP/", b"ACK ")):
                        self.unsent(message)  # its transaction fails over, or ends now
                    elif target is not None:
                        self.send(message, (target.name, dest[1]))

            self.streams.send(transport, dest, data, name, failed)
            return
        udp = self._udp
        try:
            if udp is not None:
                udp.sendto(data, dest)
        except (OSError, ValueError) as exc:
            log_limits.warning(log, "line %s: cannot send to %s:%d: %s", self.name, dest[0],
                               dest[1], exc, key=self.name)  # fmt: skip

    # --- RFC 3263 --------------------------------------------------------------------------

    def _target(self, dest: Addr, transport: str | None) -> Target | None:
        """The first target of host name ``dest`` not set aside (resolved before)."""
        if is_ip(dest[0]):
            return None
        targets = self._targets.get(dest[0], [])
        now = asyncio.get_running_loop().time()
        usable = [t for t in targets if transport is None or t.transport == transport]
        for target in usable:
            if self._down.get(target, 0.0) <= now:
                return target
        return usable[0] if usable else None  # all down: try again from the first

    def _remember(self, request: Request, target: Target) -> None:
        try:
            branch = request.top_via.branch
        except SipSyntaxError:
            return
        self._sent_to.pop(branch, None)
        self._sent_to[branch] = target
        if len(self._sent_to) > SENT_KEPT:
            del self._sent_to[next(iter(self._sent_to))]

    def failover(self, request: Request, dest: Addr, why: str, tries: int) -> bool:
        """The transaction layer's hook (RFC 3263 §4.3): ``request`` to host name
        ``dest`` failed (``why``) after ``tries`` targets: its target is set aside; True
        when a target not set aside is left and fewer than all have been tried."""
        if is_ip(dest[0]):
            return False
        try:
            gone = self._sent_to.pop(request.top_via.branch, None)
        except SipSyntaxError:
            return False
        uri = target_uri(request)
        named = uri_transport(uri) if uri is not None else None
        gone = gone or self._target(dest, named)
        if gone is None:
            return False
        self._set_aside(gone.addr, why)
        usable = [
            t for t in self._targets.get(dest[0], []) if named is None or t.transport == named
        ]
        now = asyncio.get_running_loop().time()
        left = [t for t in usable if self._down.get(t, 0.0) <= now]
        return bool(left) and tries < len(usable)

    def _set_aside(self, addr: Addr, why: str) -> None:
        now = asyncio.get_running_loop().time()
        for targets in self._targets.values():
            for target in targets:
                if target.addr == addr and self._down.get(target, 0.0) <= now:
                    self._down[target] = now + DOWN_S
                    log_limits.warning(log, "line %s: target %s %s:%d %s; the next one for "
                                       "%g s", self.name, target.transport, *addr, why, DOWN_S,
                                       key=f"{self.name}:failover")  # fmt: skip

    def _resolve_then(self, data: bytes, dest: Addr, transport: str | None) -> None:
        """Resolve host name ``dest`` (for ``transport``: a URI naming it), then send;
        with no target (of that transport) found, a request goes back to its
        transaction (it fails over or ends now) and anything else is dropped."""

        async def later() -> None:
            await self.resolve_later(dest[0], dest[1], transport)
            targets = self._targets.get(dest[0], [])
            if any(transport in (None, t.transport) for t in targets):
                self.send(data, dest)
                return
            log_limits.warning(log, "line %s: %r has no %starget; message dropped",
                               self.name, dest[0], f"{transport} " if transport else "",
                               key=self.name)  # fmt: skip
            if self.unsent is not None and not data.startswith((b"SIP/", b"ACK ")):
                self.unsent(data)

        asyncio.get_running_loop().create_task(later())

    async def resolve_later(
        self, text: str, port: int | None = None, transport: str | None = None
    ) -> None:
        """Resolve ``text`` (``host[:port]`` or a URI) by RFC 3263, for later sends;
        ``transport``: for a URI that names it (``TLS``: as ``sips:``, only ``SIPS+D2T``,
        ``_sips._tcp`` and port 5061), its targets added to the host's."""
        try:
            uri = parse_uri(text if text.startswith("sip") else f"sip:{text}")
        except SipSyntaxError:
            return
        host = uri.host.strip("[]")
        known = self._targets.get(host, [])
        if not host or is_ip(host) or any(transport in (None, t.transport) for t in known):
            return
        if port is not None and port not in (5060, 5061):
            uri = replace(uri, port=port)
        if transport == "TLS":
            uri = replace(uri, scheme="sips", params={})
        elif transport is not None:
            uri = replace(uri, params={"transport": transport.lower()})
        try:
            targets = await self.resolver.targets(uri, ("UDP", "TCP", "TLS"))
        except OSError as exc:
            targets = []
            log_limits.warning(log, "line %s: cannot resolve %r: %s", self.name, host, exc,
                               key=self.name)  # fmt: skip
        if transport is not None:
            targets = [t for t in targets if t.transport == transport]
        if targets:
            self._targets[host] = known + [t for t in targets if t not in known]
            log.info("line %s: %s resolves to %s", self.name, host,
                     ", ".join(f"{t.transport} {t.host}:{t.port}" for t in targets))  # fmt: skip


def advertised(bound: str) -> str:
    """The address to put in Via, Contact and SDP when ``public_host`` is not set."""
    if bound not in ("0.0.0.0", "::", ""):
        return bound
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the route's address
        return str(s.getsockname()[0])
    return "127.0.0.1"
