"""SIP dialogs (RFC 3261 §12), sans-I/O.

A dialog is Call-ID plus both tags. It keeps what requests inside it need: our CSeq,
the peer's last CSeq (to refuse requests out of order), the route set (from
Record-Route, reversed on the caller's side) and the remote target (the peer's
Contact, refreshed by a re-INVITE). :meth:`Dialog.request` builds an in-dialog request
with the right Request-URI and Route headers (loose routing, and strict routing for
old proxies, §12.2.1.1).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from telephony_adapters.sipline.message import (
    Address,
    Headers,
    Request,
    Response,
    SipSyntaxError,
    Uri,
    parse_address,
)


def contact_uri(message: Request | Response) -> Uri:
    """The URI of the (first) Contact; raises SipSyntaxError if there is none to use."""
    contacts = message.headers.values("Contact")
    if not contacts or contacts[0] == "*":
        raise SipSyntaxError(f"no Contact in {message.start_line()!r}")
    return parse_address(contacts[0]).uri


def _untagged(address: Address) -> Address:
    return Address(
        address.uri, address.display, {k: v for k, v in address.params.items() if k != "tag"}
    )


@dataclass(slots=True)
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: Address
    remote_uri: Address
    remote_target: Uri
    route_set: list[str] = field(default_factory=list)
    local_seq: int = 0
    remote_seq: int | None = None

    @property
    def id(self) -> tuple[str, str, str]:
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def as_uas(cls, request: Request, local_tag: str) -> Dialog:
        """The dialog a 1xx/2xx with ``local_tag`` creates for the INVITE ``request``."""
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=request.from_.tag,
            local_uri=_untagged(request.to),
            remote_uri=_untagged(request.from_),
            remote_target=contact_uri(request),
            route_set=request.headers.values("Record-Route"),
            local_seq=0,
            remote_seq=request.cseq[0],
        )

    @classmethod
    def as_uac(cls, request: Request, response: Response) -> Dialog:
        """The dialog a 1xx (early) or 2xx to our ``request`` creates."""
        return cls(
            call_id=request.call_id,
            local_tag=request.from_.tag,
            remote_tag=response.to.tag,
            local_uri=_untagged(request.from_),
            remote_uri=_untagged(response.to),
            remote_target=contact_uri(response),
            route_set=list(reversed(response.headers.values("Record-Route"))),
            local_seq=request.cseq[0],
            remote_seq=None,
        )

    def confirm(self, response: Response) -> None:
        """A 2xx ends the early dialog: its route set and Contact are the dialog's
        (§12.1.2, §13.2.2.4)."""
        self.remote_tag = response.to.tag or self.remote_tag
        self.route_set = list(reversed(response.headers.values("Record-Route")))
        self.refresh_target(response)

    def refresh_target(self, message: Request | Response) -> None:
        """A target refresh (re-INVITE or its 2xx) with a Contact moves the remote target."""
        with contextlib.suppress(SipSyntaxError):  # no Contact: the target stays
            self.remote_target = contact_uri(message)

    def accepts(self, request: Request) -> bool:
        """Note the peer's CSeq; False if the request is out of order (answer 500).
        ACK and CANCEL carry the CSeq of what they acknowledge or cancel."""
        number, method = request.cseq
        if method in ("ACK", "CANCEL"):
            return True
        if self.remote_seq is not None and number <= self.remote_seq:
            return False
        self.remote_seq = number
        return True

    def request(
        self,
        method: str,
        via: str,
        *,
        contact: str = "",
        cseq: int | None = None,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        content_type: str = "",
    ) -> Request:
        """An in-dialog request (§12.2.1.1). ``via`` is the whole Via value (with a fresh
        branch). A new CSeq is taken unless ``cseq`` is given (an ACK's is its INVITE's)."""
        if cseq is None:
            self.local_seq += 1
            cseq = self.local_seq
        uri, routes = str(self.remote_target), list(self.route_set)
        if routes and "lr" not in parse_address(routes[0]).uri.params:
            strict = parse_address(routes[0]).uri
            uri = str(Uri(strict.scheme, strict.user, strict.host, strict.port, {}, "", ""))
            routes = [*routes[1:], f"<{self.remote_target}>"]
        h = Headers()
        h.add("Via", via)
        h.add("Max-Forwards", "70")
        h.add("From", str(self.local_uri.with_tag(self.local_tag)))
        h.add("To", str(self.remote_uri.with_tag(self.remote_tag)))
        h.add("Call-ID", self.call_id)
        h.add("CSeq", f"{cseq} {method}")
        for route in routes:
            h.add("Route", route)
        if contact:
            h.add("Contact", contact)
        for name, value in headers or ():
            h.add(name, value)
        if body:
            h.add("Content-Type", content_type or "application/sdp")
        return Request(headers=h, body=body, method=method, uri=uri)

    def next_hop(self) -> tuple[str, int]:
        """Where an in-dialog request goes without an outbound proxy: the first route,
        else the remote target."""
        if self.route_set:
            return parse_address(self.route_set[0]).uri.host_port
        return self.remote_target.host_port
