"""Which transport a message goes by, and our headers made to say so (sans-I/O).

The user agent writes its Via and Contact for UDP; the shell's transport layer
(:mod:`.transports`) picks the transport of each request (the target URI's
``;transport=`` or ``sips:``, RFC 3263 for a host name, an open connection to the
peer) and :func:`stamp` rewrites our top Via (``SIP/2.0/TCP``, the port we listen on
for it) and our Contact (``;transport=tcp``, ``sips:`` or ``;transport=tls``) before the
transaction layer keeps the request, so its retransmissions and timers follow the
transport (RFC 3261 §17: none over TCP and TLS). A response goes by the transport of the
request's top Via, on the connection the request came on (§18.2.2).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from telephony_adapters.sipline.message import (
    Headers,
    Message,
    Request,
    SipSyntaxError,
    Via,
    parse_via,
    split_commas,
)
from telephony_adapters.sipline.uri import Uri, parse_address, parse_uri

TRANSPORTS = ("UDP", "TCP", "TLS")
STREAMS = frozenset({"TCP", "TLS"})
_VIA = re.compile(rb"\n(?:Via|v)[ \t]*:[ \t]*SIP[ \t]*/[ \t]*2\.0[ \t]*/[ \t]*([A-Za-z]+)", re.I)


def wire_transport(data: bytes) -> str:
    """The transport named by the first Via of a serialised message (UDP if none)."""
    m = _VIA.search(data, 0, 4096)
    return m.group(1).decode("ascii").upper() if m else "UDP"


def uri_transport(uri: Uri) -> str | None:
    """The transport a URI asks for (RFC 3263 §4.1): ``;transport=``, else TLS for
    ``sips:``; None when the URI leaves it to DNS or the default."""
    named = uri.params.get("transport")
    if named:
        return named.upper()
    return "TLS" if uri.scheme == "sips" else None


def target_uri(request: Request) -> Uri | None:
    """The URI that decides where a request goes: the first Route if loose (``;lr``),
    else the Request-URI (RFC 3261 §8.1.2)."""
    try:
        routes = request.headers.values("Route")
        if routes:
            first = parse_address(routes[0]).uri
            if "lr" in first.params:
                return first
        return parse_uri(request.uri)
    except SipSyntaxError:
        return None


def stamp(message: Message, transport: str, host: str, ports: Mapping[str, int]) -> None:
    """Make our top Via (a request's) and our Contact (``host`` at our UDP port) say
    ``transport`` and its port. Other messages' headers are left as they are. A request
    stamped before for another transport (failing over to a target of another one) gets
    its Via again; its Contact stays (we listen where it says)."""
    vias = message.headers.get_all("Via") if isinstance(message, Request) else []
    if transport == "UDP" and (not vias or vias[0].startswith("SIP/2.0/UDP ")):
        return
    port = ports.get(transport) or ports.get("UDP", 5060)  # not listening: the connection's
    if vias:
        first, *others = split_commas(vias[0])
        via = parse_via(first) if first else None
        if via is not None and via.transport != transport and via.host == host:
            again = str(Via(transport, via.host, port, dict(via.params), via.version))
            rebuilt = [", ".join([again, *others]), *vias[1:]]
            message.headers.remove("Via")
            message.headers = Headers([*(("Via", v) for v in rebuilt), *message.headers])
    if transport == "UDP":
        return
    contact = message.headers.get("Contact") or ""
    head, _, tail = contact.partition(">")
    user, at, hostport = head.removeprefix("<sip:").partition("@")
    if not head.startswith("<sip:") or not at or hostport != f"{host}:{ports.get('UDP')}":
        return
    if transport == "TLS" and isinstance(message, Request) and message.uri.startswith("sips:"):
        new = f"<sips:{user}@{host}:{port}>"
    else:
        new = f"<sip:{user}@{host}:{port};transport={transport.lower()}>"
    message.headers.set("Contact", new + tail)


_SENT_BY = re.compile(
    rb"\n(?:Via|v)[ \t]*:[ \t]*SIP[ \t]*/[ \t]*2\.0[ \t]*/[ \t]*[A-Za-z]+[ \t]+"
    rb"([0-9A-Za-z.-]+|\[[0-9A-Fa-f:.]+\])(?:[ \t]*:[ \t]*([0-9]{1,5}))?",
    re.I,
)


def wire_sent_by(data: bytes) -> tuple[str, int] | None:
    """The sent-by (host, port; 5060 when none) of a serialised message's first Via."""
    m = _SENT_BY.search(data, 0, 4096)
    if m is None:
        return None
    return m.group(1).decode("ascii").strip("[]"), int(m.group(2) or 5060)
