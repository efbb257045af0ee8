"""What every message must hold before the user agent acts on it (RFC 3261 §8.1.1,
§8.2, §20; RFC 4475), sans-I/O.

:func:`check_request` and :func:`check_response` read every field the stack will use
with the same parser it writes with, and raise :class:`SipSyntaxError` naming the fault
(its ``status`` is the answer: 400, 416 for a URI scheme we do not serve, 501 for a
method we do not know). So a Contact or Record-Route that our own requests could not
carry (whitespace in its URI's parameters, an empty parameter) never becomes a dialog's
target: the message that brought it is refused (a request) or dropped (a response).

:func:`unsupported_extensions` lists a request's ``Require`` we lack (420, RFC 3261
§8.2.2.3; never for ACK or CANCEL). The parser (:func:`~.message.parse`) has already
refused what is wrong with the framing: start line, SIP version (505), header lines, a
repeated single-valued header, Content-Length.
"""

from __future__ import annotations

import re

from telephony_adapters.sipline.message import (
    Request,
    Response,
    SipSyntaxError,
    is_number,
    parse_address,
    parse_uri,
    parse_via,
    split_commas,
)

KNOWN_METHODS = frozenset(
    {"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER", "INFO", "NOTIFY", "REFER",
     "SUBSCRIBE", "MESSAGE", "PRACK", "UPDATE", "PUBLISH"}
)  # fmt: skip
"""Methods we know (RFC 3261 and its extensions): one we do not take gets 405 with
Allow; any other 501 (RFC 3261 §21.5.2, RFC 4475 §3.1.2.18)."""

SUPPORTED = frozenset({"replaces", "timer"})
"""The extensions a request may require of us (not ``100rel``: we send no reliable
provisional responses, so an INVITE requiring them gets 420)."""

_CALL_ID_WORD = r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+"
_CALL_ID = re.compile(rf"{_CALL_ID_WORD}(?:@{_CALL_ID_WORD})?")
_ROUTE_HEADERS = ("Route", "Record-Route")


def check_request(request: Request) -> None:
    """The fields a request needs, each read; SipSyntaxError names the first bad one."""
    _check_common(request)
    if request.method not in KNOWN_METHODS:
        raise SipSyntaxError(f"unknown method {request.method[:40]!r}", status=501)
    _number, method = request.cseq
    if method != request.method:
        raise SipSyntaxError(f"CSeq method {method!r} differs from the request's")
    uri = parse_uri(request.uri)
    if uri.headers:
        raise SipSyntaxError("headers in the Request-URI (RFC 3261 §19.1.1)")
    forwards = request.headers.get("Max-Forwards")
    if forwards is not None and not (is_number(forwards) and int(forwards) <= 255):
        raise SipSyntaxError(f"bad Max-Forwards {forwards[:20]!r} (0 to 255)")
    expires = request.headers.get("Expires")
    if expires is not None and not (is_number(expires) and int(expires) < 2**32):
        raise SipSyntaxError(f"bad Expires {expires[:20]!r}")
    date = request.headers.get("Date")
    if date is not None and not date.endswith(" GMT"):
        raise SipSyntaxError(f"Date {date[:40]!r} is not in GMT (RFC 3261 §20.17)")


def check_response(response: Response) -> None:
    """The fields of a response the stack reads; SipSyntaxError names the first bad one."""
    _check_common(response)
    response.cseq  # noqa: B018 - parses, or raises naming the fault


def _check_common(msg: Request | Response) -> None:
    vias = _elements(msg, "Via")
    if not vias:
        raise SipSyntaxError("no Via header")
    for via in vias:
        parse_via(via)
    call_id = msg.headers.get("Call-ID")
    if not call_id:
        raise SipSyntaxError("no Call-ID header")
    if not _CALL_ID.fullmatch(call_id):
        raise SipSyntaxError(f"bad Call-ID {call_id[:60]!r}")
    msg.cseq  # noqa: B018
    for name in ("From", "To"):
        try:
            parse_address(msg.headers.get(name) or "")
        except SipSyntaxError as exc:
            text = f"no {name} header" if name not in msg.headers else f"bad {name}: {exc}"
            raise SipSyntaxError(text, status=exc.status) from None
    check_targets(msg)


def check_targets(msg: Request | Response) -> None:
    """Contact and Record-Route/Route: each value an address our parser reads (``*``
    alone for a REGISTER's Contact), so none becomes a target we could not write."""
    for name in ("Contact", *_ROUTE_HEADERS):
        for value in _elements(msg, name):
            if name == "Contact" and value == "*":
                continue
            try:
                parse_address(value)
            except SipSyntaxError as exc:
                raise SipSyntaxError(f"bad {name}: {exc}", status=exc.status) from None


def unsupported_extensions(request: Request) -> list[str]:
    """The request's ``Require`` values we do not support (none for ACK and CANCEL,
    which RFC 3261 §8.2.2.3 exempts)."""
    if request.method in ("ACK", "CANCEL"):
        return []
    return [
        ext
        for value in request.headers.get_all("Require")
        for ext in split_commas(value)
        if ext.lower() not in SUPPORTED
    ]


def _elements(msg: Request | Response, name: str) -> list[str]:
    """Every comma-separated value of a list header; an empty one raises."""
    out: list[str] = []
    for line in msg.headers.get_all(name):
        parts = split_commas(line, keep_empty=True)
        if any(not p for p in parts):
            raise SipSyntaxError(f"empty {name} value in {line[:60]!r}")
        out += parts
    return out


def warning_value(host: str, text: str) -> str:
    """A ``Warning`` value (code 399, RFC 3261 §20.43) carrying ``text``, made safe for a
    quoted string: no quote, backslash or control character."""
    clean = "".join(c if c.isprintable() else " " for c in text[:120])
    return f'399 {host} "{clean.replace(chr(34), chr(39)).replace(chr(92), "/")}"'
