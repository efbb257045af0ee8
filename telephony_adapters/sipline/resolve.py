"""RFC 3263: where a SIP URI's requests go, as an ordered list of targets to fail over.

NAPTR (``SIP+D2U``, ``SIP+D2T``, ``SIPS+D2T``, the transports the line speaks) -> SRV
(by priority, then weight, RFC 2782) -> A/AAAA; without NAPTR records the SRV names of
each transport; without those the host's A record at 5060 (5061 for ``sips:``). A URI
with a port or a numeric host skips NAPTR and SRV; one with ``;transport=`` skips NAPTR.

The DNS messages are built and read here with the standard library
(:func:`query_message`, :func:`read_answer`); :class:`Resolver` sends them over UDP to
the configured name servers (else those of ``/etc/resolv.conf``), and asks the system
(``getaddrinfo``) for A records when no name server was configured.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from telephony_adapters.sipline.routing import uri_transport
from telephony_adapters.sipline.sdp import is_ip
from telephony_adapters.sipline.transaction import Addr
from telephony_adapters.sipline.uri import Uri

A, NAPTR, SRV, AAAA = 1, 35, 33, 28
SERVICES = {"SIP+D2U": "UDP", "SIP+D2T": "TCP", "SIPS+D2T": "TLS"}
SRV_NAMES = {"UDP": "_sip._udp.", "TCP": "_sip._tcp.", "TLS": "_sips._tcp."}


@dataclass(frozen=True, slots=True)
class Target:
    transport: str
    host: str
    """An IP address."""
    port: int
    name: str = ""
    """The host name the URI gave (TLS checks the certificate against it)."""

    @property
    def addr(self) -> Addr:
        return self.host, self.port


class DnsError(Exception):
    pass


# --- the DNS wire format ---------------------------------------------------------------


def query_message(ident: int, name: str, rtype: int) -> bytes:
    labels = b"".join(bytes([len(p)]) + p for p in name.rstrip(".").encode("idna").split(b".") if p)
    return (
        struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)
        + labels
        + b"\0"
        + struct.pack("!HH", rtype, 1)
    )


def _name(data: bytes, pos: int) -> tuple[str, int]:
    """A (compressed) domain name at ``pos``: the name and the position after it."""
    labels: list[str] = []
    end, jumps = -1, 0
    while True:
        if pos >= len(data):
            raise DnsError("name runs past the message")
        size = data[pos]
        if size & 0xC0 == 0xC0:
            if jumps > 20 or pos + 1 >= len(data):
                raise DnsError("bad name pointer")
            end = pos + 2 if end < 0 else end
            pos, jumps = ((size & 0x3F) << 8) | data[pos + 1], jumps + 1
            continue
        if size == 0:
            return ".".join(labels), (pos + 1 if end < 0 else end)
        labels.append(data[pos + 1 : pos + 1 + size].decode("ascii", "replace"))
        pos += 1 + size


Record = tuple[int, object]
"""(type, data): A/AAAA an address; SRV (priority, weight, port, target); NAPTR (order,
preference, flags, service, replacement)."""


def read_answer(data: bytes, ident: int) -> list[Record]:
    """The answer records of a response to query ``ident``; raises :class:`DnsError`."""
    try:
        return _records(data, ident)
    except (struct.error, IndexError, UnicodeError) as exc:
        raise DnsError(f"unreadable DNS response: {exc}") from None


def _records(data: bytes, ident: int) -> list[Record]:
    if len(data) < 12:
        raise DnsError("short DNS response")
    rid, flags, qd, an = struct.unpack("!HHHH", data[:8])
    if rid != ident:
        raise DnsError("response to another query")
    if flags & 0xF not in (0, 3):  # NOERROR, NXDOMAIN (no records)
        raise DnsError(f"DNS error code {flags & 0xF}")
    pos = 12
    for _ in range(qd):
        pos = _name(data, pos)[1] + 4
    out: list[Record] = []
    for _ in range(an):
        pos = _name(data, pos)[1]
        rtype, _cls, _ttl, size = struct.unpack("!HHIH", data[pos : pos + 10])
        pos += 10
        rdata = data[pos : pos + size]
        if rtype == A and size == 4:
            out.append((A, socket.inet_ntop(socket.AF_INET, rdata)))
        elif rtype == AAAA and size == 16:
            out.append((AAAA, socket.inet_ntop(socket.AF_INET6, rdata)))
        elif rtype == SRV:
            prio, weight, port = struct.unpack("!HHH", rdata[:6])
            out.append((SRV, (prio, weight, port, _name(data, pos + 6)[0])))
        elif rtype == NAPTR:
            order, pref = struct.unpack("!HH", rdata[:4])
            at, texts = pos + 4, []
            for _ in range(3):  # flags, services, regexp
                texts.append(data[at + 1 : at + 1 + data[at]].decode("ascii", "replace"))
                at += 1 + data[at]
            out.append((NAPTR, (order, pref, texts[0], texts[1], _name(data, at)[0])))
        pos += size
    return out


# --- RFC 3263's choices (pure) -----------------------------------------------------------


def srv_order(
    records: Sequence[tuple[int, int, int, str]], rng: random.Random
) -> list[tuple[int, int, int, str]]:
    """SRV records in the order to try (RFC 2782: by priority; within one, weighted
    random)."""
    out: list[tuple[int, int, int, str]] = []
    for prio in sorted({r[0] for r in records}):
        left = [r for r in records if r[0] == prio]
        while left:
            total = sum(r[1] for r in left)
            pick = rng.uniform(0, total) if total else 0
            chosen = left[0]
            for r in left:
                pick -= r[1]
                if pick <= 0:
                    chosen = r
                    break
            out.append(chosen)
            left.remove(chosen)
    return out


def naptr_order(
    records: Sequence[tuple[int, int, str, str, str]], transports: Sequence[str]
) -> list[tuple[str, str]]:
    """(transport, SRV name) of the NAPTR records we can use, in order."""
    usable = [
        r for r in records if r[2].lower() == "s" and SERVICES.get(r[3].upper()) in transports
    ]
    return [(SERVICES[r[3].upper()], r[4]) for r in sorted(usable, key=lambda r: (r[0], r[1]))]


# --- asking -------------------------------------------------------------------------------


def system_nameservers(path: Path = Path("/etc/resolv.conf")) -> list[Addr]:
    try:
        lines = path.read_text("utf-8", "replace").splitlines()
    except OSError:
        return []
    words = [line.split() for line in lines]
    return [(w[1], 53) for w in words if len(w) > 1 and w[0] == "nameserver"][:3]


class _Answer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[object, ...]) -> None:
        self.replies.put_nowait(data)


class Resolver:
    """RFC 3263 over DNS (see the module docstring). ``nameservers``: (host, port);
    empty: the system's (and A records by ``getaddrinfo``)."""

    def __init__(
        self,
        nameservers: Sequence[Addr] = (),
        *,
        timeout_s: float = 2.0,
        rng: random.Random | None = None,
    ) -> None:
        self.own = bool(nameservers)
        self.nameservers = list(nameservers) or system_nameservers()
        self.timeout_s = timeout_s
        self.rng = rng or random.Random()

    async def targets(self, uri: Uri, transports: Sequence[str]) -> list[Target]:
        """Where ``uri``'s requests go, in order (empty: nowhere we can reach)."""
        host = uri.host.strip("[]")
        named = uri_transport(uri)
        secure = uri.scheme == "sips"
        default = named or ("TLS" if secure else "UDP" if "UDP" in transports else "TCP")
        if is_ip(host) or uri.port is not None:
            port = uri.port or (5061 if default == "TLS" else 5060)
            return [Target(default, a, port, host) for a in await self.addresses(host)]
        if named is None:
            choices = naptr_order(
                [r for _, r in await self._ask(host, NAPTR)],  # type: ignore[misc]
                [t for t in transports if t == "TLS" or not secure],
            )
        else:
            choices = []
        if not choices:
            wanted = [named] if named else [t for t in transports if t == "TLS" or not secure]
            choices = [(t, SRV_NAMES[t] + host) for t in wanted if t in SRV_NAMES]
        out: list[Target] = []
        for transport, name in choices:
            records = [r for _, r in await self._ask(name, SRV)]
            for _prio, _weight, port, target in srv_order(records, self.rng):  # type: ignore[arg-type]
                out += [Target(transport, a, port, host) for a in await self.addresses(target)]
        if out:
            return out
        port = 5061 if default == "TLS" else 5060
        return [Target(default, a, port, host) for a in await self.addresses(host)]

    async def addresses(self, host: str) -> list[str]:
        if is_ip(host):
            return [host]
        if self.own:
            found = [str(r) for _, r in await self._ask(host, A)]
            return found or [str(r) for _, r in await self._ask(host, AAAA)]
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_DGRAM)
        except OSError:
            return []
        return list(dict.fromkeys(str(i[4][0]) for i in infos))

    async def _ask(self, name: str, rtype: int) -> list[Record]:
        """The records of ``name`` (none when no server answers or it has none)."""
        loop = asyncio.get_running_loop()
        for server in self.nameservers:
            ident = self.rng.randrange(1, 65535)
            try:
                transport, protocol = await loop.create_datagram_endpoint(
                    _Answer, remote_addr=server
                )
            except OSError:
                continue
            try:
                transport.sendto(query_message(ident, name, rtype))
                async with asyncio.timeout(self.timeout_s):
                    while True:
                        try:
                            records = read_answer(await protocol.replies.get(), ident)
                        except DnsError:
                            continue  # not ours, or unreadable: wait for the real one
                        return [r for r in records if r[0] == rtype]
            except TimeoutError:
                continue
            finally:
                transport.close()
        return []
