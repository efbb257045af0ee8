"""SIP messages: parse and serialise (RFC 3261 §7, §20, §25), sans-I/O.

:func:`parse` turns one datagram into a :class:`Request` or :class:`Response`, or raises
:class:`SipSyntaxError` naming what was wrong and where. It accepts what real peers send:
header names in any case and in compact form (``v``, ``f``, ``t``, ``i``, ``m``, ``l``,
``c``, ``k``, ``s``...), obsolete line folding, repeated headers and comma-separated
values, bare LF line ends, and a body delimited by ``Content-Length`` (over UDP a missing
``Content-Length`` means the rest of the datagram; extra bytes after it are ignored).

:func:`parse_uri`, :func:`parse_address` (name-addr and addr-spec, with tags and
params) and :func:`parse_via` read the structured headers. Serialising (``bytes(msg)``)
always writes full header names and a correct ``Content-Length``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from telephony_adapters.sipline.syntax import TOKEN, format_params, split_params
from telephony_adapters.sipline.syntax import SipSyntaxError as SipSyntaxError
from telephony_adapters.sipline.syntax import is_number as is_number
from telephony_adapters.sipline.syntax import quote as quote
from telephony_adapters.sipline.syntax import unquote as unquote
from telephony_adapters.sipline.uri import Address as Address
from telephony_adapters.sipline.uri import Uri as Uri
from telephony_adapters.sipline.uri import parse_address as parse_address
from telephony_adapters.sipline.uri import parse_uri as parse_uri

MAX_DATAGRAM = 65_535
"""Nothing larger arrives over UDP; a larger input is refused before it is looked at."""
MAX_HEADERS = 256
"""More header lines than this is hostile, not a telephone."""


COMPACT_FORMS: dict[str, str] = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

_SPECIAL_NAMES = {
    name.lower(): name
    for name in (
        "Call-ID",
        "CSeq",
        "WWW-Authenticate",
        "MIME-Version",
        "Min-SE",
        "P-Asserted-Identity",
        "P-Preferred-Identity",
        "RSeq",
        "RAck",
        "SIP-ETag",
        "SIP-If-Match",
    )
}

_STATUS_LINE = re.compile(r"SIP/2\.0 ([1-6][0-9][0-9])(?: (.*))?", re.IGNORECASE)
_VERSION = re.compile(r"SIP/[0-9]{1,3}\.[0-9]{1,3}", re.IGNORECASE)
_VIA_SENT = re.compile(
    r"\s*SIP\s*/\s*([0-9]{1,3}\.[0-9]{1,3})\s*/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s+(\S+?)\s*$",
    re.IGNORECASE,
)
SINGLE_VALUED = frozenset(
    {
        "Call-ID", "CSeq", "From", "To", "Max-Forwards", "Content-Length", "Content-Type",
        "Content-Disposition", "Date", "Expires", "Min-Expires", "MIME-Version",
        "Organization", "Priority", "Reply-To", "Retry-After", "Server", "Subject",
        "Timestamp", "User-Agent", "RSeq", "RAck", "Refer-To", "Referred-By", "Replaces",
        "Session-Expires", "Min-SE", "Event", "Subscription-State",
    }
)  # fmt: skip
"""Headers a message carries at most once (RFC 3261 §20 and the extensions we read)."""

REASONS: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    422: "Session Interval Too Small",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    603: "Decline",
    600: "Busy Everywhere",
}


def canonical_name(name: str) -> str:
    """``v`` -> ``Via``, ``call-id`` -> ``Call-ID``, ``x-foo-bar`` -> ``X-Foo-Bar``."""
    lower = name.lower()
    if lower in COMPACT_FORMS:
        return COMPACT_FORMS[lower]
    if lower in _SPECIAL_NAMES:
        return _SPECIAL_NAMES[lower]
    return "-".join(part[:1].upper() + part[1:] for part in lower.split("-"))


def split_commas(value: str, *, keep_empty: bool = False) -> list[str]:
    """Split a header value at commas outside quotes and ``<...>``; drop empty parts
    (keep them with ``keep_empty``, to refuse them)."""
    parts: list[str] = []
    start, depth, quoted, escaped = 0, 0, False, False
    for i, ch in enumerate(value):
        if escaped:
            escaped = False
        elif quoted:
            if ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            depth += 1
        elif ch == ">" and depth:
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(value[start:i].strip())
            start = i + 1
    parts.append(value[start:].strip())
    return parts if keep_empty else [p for p in parts if p]


class Headers:
    """Header fields in order. Names are kept canonical (full form, usual case), so
    look-ups are case-insensitive and accept compact forms."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(canonical_name(n), v) for n, v in items]

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first field's value."""
        key = canonical_name(name)
        for n, v in self._items:
            if n == key:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        """Every field of that name, one entry per header line, in order."""
        key = canonical_name(name)
        return [v for n, v in self._items if n == key]

    def values(self, name: str) -> list[str]:
        """Every value of a list header (Via, Route, Contact, Allow...): repeated lines
        and comma-separated values alike, in order."""
        return [part for v in self.get_all(name) for part in split_commas(v)]

    def add(self, name: str, value: str) -> None:
        self._items.append((canonical_name(name), value))

    def set(self, name: str, value: str) -> None:
        """Replace every field of that name by one (where the first was, else at the end)."""
        key = canonical_name(name)
        for i, (n, _) in enumerate(self._items):
            if n == key:
                self._items[i] = (key, value)
                self._items[i + 1 :] = [(n2, v2) for n2, v2 in self._items[i + 1 :] if n2 != key]
                return
        self._items.append((key, value))

    def remove(self, name: str) -> None:
        key = canonical_name(name)
        self._items = [(n, v) for n, v in self._items if n != key]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def copy(self) -> Headers:
        h = Headers()
        h._items = list(self._items)
        return h

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


@dataclass(slots=True, eq=False)
class _Message:
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    # --- the fields every message has (RFC 3261 §8.1.1) ------------------------------

    @property
    def call_id(self) -> str:
        return self.headers.get("Call-ID") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        """(number, method) of the CSeq header; raises SipSyntaxError if it is bad."""
        return parse_cseq(self.headers.get("CSeq") or "")

    @property
    def vias(self) -> list[Via]:
        return [parse_via(v) for v in self.headers.values("Via")]

    @property
    def top_via(self) -> Via:
        vias = self.headers.values("Via")
        if not vias:
            raise SipSyntaxError("no Via header")
        return parse_via(vias[0])

    @property
    def from_(self) -> Address:
        return parse_address(_required(self.headers, "From"))

    @property
    def to(self) -> Address:
        return parse_address(_required(self.headers, "To"))

    def start_line(self) -> str:
        raise NotImplementedError

    def __bytes__(self) -> bytes:
        lines = [self.start_line()]
        lines.extend(f"{n}: {v}" for n, v in self.headers if n != "Content-Length")
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body


@dataclass(slots=True, eq=False)
class Request(_Message):
    method: str = ""
    uri: str = ""

    def start_line(self) -> str:
        return f"{self.method} {self.uri} SIP/2.0"

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri} call-id={self.call_id!r}>"


@dataclass(slots=True, eq=False)
class Response(_Message):
    status: int = 0
    reason: str = ""

    def start_line(self) -> str:
        return f"SIP/2.0 {self.status} {self.reason}"

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason} call-id={self.call_id!r}>"


Message = Request | Response


# --- parsing ---------------------------------------------------------------------------


def parse(data: bytes) -> Message:
    """One SIP message from one datagram. Raises :class:`SipSyntaxError` if it is not one:
    with the message as far as it was read (``partial``) when only its start line, a
    header line, a repeated single-valued header or its length was wrong, so that a
    request can still be answered (400, or 505 for another SIP version)."""
    if len(data) > MAX_DATAGRAM:
        raise SipSyntaxError(f"datagram of {len(data)} bytes is larger than any SIP message")
    data = data.lstrip(b"\r\n")  # RFC 3261 §7.5: ignore CRLFs before a message
    crlf, lf = data.find(b"\r\n\r\n"), data.find(b"\n\n")
    if crlf < 0 and lf < 0:
        raise SipSyntaxError("no empty line ending the headers")
    if crlf >= 0 and (lf < 0 or crlf <= lf):
        head_bytes, rest = data[:crlf], data[crlf + 4 :]
    else:
        head_bytes, rest = data[:lf], data[lf + 2 :]
    try:
        head = head_bytes.decode("utf-8")
    except UnicodeDecodeError:
        head = head_bytes.decode("latin-1")  # a legacy display name: keep the call
    lines = head.replace("\r\n", "\n").split("\n")
    start = lines[0]
    if not start or start[0] in " \t":
        raise SipSyntaxError(f"bad start line {start[:80]!r}")
    headers, fault = _parse_header_lines(lines[1:])
    msg = _start(start, headers)
    fault = fault or _repeated(headers)
    if fault is None:
        try:
            msg.body = _body(headers, rest)
        except SipSyntaxError as exc:
            fault = str(exc)
    if fault is not None:
        raise SipSyntaxError(fault, partial=msg)
    return msg


def _start(start: str, headers: Headers) -> Message:
    """The message of this start line; raises SipSyntaxError (with the message as far as
    it goes) if the line is bad."""
    if start[:4].upper() == "SIP/" and " " in start:
        m = _STATUS_LINE.fullmatch(start)
        if m is None:
            raise SipSyntaxError(f"bad status line {start[:80]!r} (expected SIP/2.0 NNN Reason)")
        return Response(headers=headers, status=int(m.group(1)), reason=m.group(2) or "")
    parts = start.split(" ")
    method = parts[0] if TOKEN.fullmatch(parts[0]) else ""
    uri = parts[1] if len(parts) > 1 else ""
    msg = Request(headers=headers, method=method, uri=uri)
    version = parts[-1] if len(parts) > 2 else ""
    if _VERSION.fullmatch(version) and version.upper() != "SIP/2.0":
        raise SipSyntaxError(
            f"SIP version {version[:20]!r} is not SIP/2.0", status=505, partial=msg
        )
    if len(parts) != 3 or version.upper() != "SIP/2.0":
        raise SipSyntaxError(
            f"bad request line {start[:80]!r} (expected METHOD SP Request-URI SP SIP/2.0)",
            partial=msg,
        )
    if not method:
        raise SipSyntaxError(f"bad method {parts[0][:40]!r} in the request line", partial=msg)
    if ":" not in uri:
        raise SipSyntaxError(f"bad Request-URI {uri[:80]!r}", partial=msg)
    return msg


def _parse_header_lines(lines: list[str]) -> tuple[Headers, str | None]:
    """The header fields, and the first fault among the lines (a line that is no header
    field is left out), if any."""
    items: list[tuple[str, str]] = []
    fault: str | None = None
    for number, line in enumerate(lines, start=2):
        if line[:1] in (" ", "\t"):
            if not items:
                raise SipSyntaxError(f"line {number}: continuation line with no header before it")
            name, value = items[-1]
            items[-1] = (name, f"{value} {line.strip()}".strip())
            continue
        if not line:
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not TOKEN.fullmatch(name):
            fault = fault or f"line {number}: not a header field: {line[:80]!r}"
            continue
        items.append((name, value.strip()))
        if len(items) > MAX_HEADERS:
            raise SipSyntaxError(f"more than {MAX_HEADERS} header fields")
    return Headers(items), fault


def _repeated(headers: Headers) -> str | None:
    """The fault of a single-valued header given twice (RFC 3261 §7.3.1), if any."""
    seen: set[str] = set()
    for name, _ in headers:
        if name in SINGLE_VALUED and name in seen:
            return f"more than one {name} header"
        seen.add(name)
    return None


def _body(headers: Headers, rest: bytes) -> bytes:
    text = headers.get("Content-Length")
    if text is None:
        return rest
    if not is_number(text, 6):
        raise SipSyntaxError(f"bad Content-Length {text[:20]!r}")
    length = int(text)
    if length > len(rest):
        raise SipSyntaxError(f"Content-Length {length} but only {len(rest)} bytes of body")
    return rest[:length]


def _required(headers: Headers, name: str) -> str:
    value = headers.get(name)
    if value is None:
        raise SipSyntaxError(f"no {name} header")
    return value


def parse_cseq(value: str) -> tuple[int, str]:
    parts = value.split()
    if len(parts) != 2 or not is_number(parts[0]):
        raise SipSyntaxError(f"bad CSeq {value[:40]!r} (expected a number and a method)")
    number = int(parts[0])
    if number >= 2**31 or not TOKEN.fullmatch(parts[1]):
        raise SipSyntaxError(f"bad CSeq {value[:40]!r}")
    return number, parts[1]


# --- structured values -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Via:
    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict, hash=False)
    version: str = "2.0"
    """The SIP version in ``SIP/2.0/UDP`` (another one is read, and refused with 505)."""

    @property
    def branch(self) -> str:
        return self.params.get("branch") or ""

    @property
    def sent_by(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def response_address(self, source: tuple[str, int]) -> tuple[str, int]:
        """Where responses go (RFC 3261 §18.2.2, RFC 3581): the packet's source address if
        ``rport`` was asked, else its source host at the Via's port; over TCP and TLS
        the source, the connection it came on."""
        if "rport" in self.params or self.transport != "UDP":
            return source
        return source[0], self.port or 5060

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        sent = f"SIP/{self.version}/{self.transport} {self.host}{port}"
        return sent + format_params(self.params)


def parse_via(text: str) -> Via:
    """One Via value, ``SIP/2.0/UDP host[:port];params`` (whitespace allowed around the
    slashes, RFC 4475 §3.1.1.1); an empty value or parameter raises SipSyntaxError."""
    sent, semi, params = text.partition(";")
    m = _VIA_SENT.match(sent)
    if m is None:
        raise SipSyntaxError(f"bad Via {text[:80]!r} (expected SIP/2.0/UDP host[:port];...)")
    version, transport, hostport = m.group(1), m.group(2).upper(), m.group(3)
    try:
        host, port = _via_host(hostport)
        return Via(transport, host, port, split_params(semi + params), version)
    except SipSyntaxError as exc:
        raise SipSyntaxError(f"bad Via {text[:80]!r}: {exc}") from None


def _via_host(hostport: str) -> tuple[str, int | None]:
    uri = parse_uri(f"sip:{hostport}")
    if uri.params or uri.headers or uri.user:
        raise SipSyntaxError(f"bad sent-by {hostport[:60]!r}")
    host = hostport if uri.port is None else hostport.rsplit(":", 1)[0]
    return host, uri.port  # the host as it came: the peer's own spelling


# --- building --------------------------------------------------------------------------


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str = "",
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> Response:
    """A response to ``request`` (RFC 3261 §8.2.6): its Vias, From, Call-ID and CSeq, its
    To with ``to_tag`` added if it had none, then ``headers``."""
    h = Headers()
    for via in request.headers.get_all("Via"):
        h.add("Via", via)
    for name in ("From", "To", "Call-ID", "CSeq"):
        value = request.headers.get(name)
        if value is not None:
            h.add(name, value)
    if to_tag:
        to = h.get("To")
        try:
            tagged = to is not None and bool(parse_address(to).tag)
        except SipSyntaxError:
            tagged = True  # leave a To we cannot read as it is
        if to is not None and not tagged:
            h.set("To", f"{to};tag={to_tag}")
    for name, value in headers:
        h.add(name, value)
    return Response(headers=h, body=body, status=status, reason=reason or REASONS.get(status, ""))


def stamp_received(request: Request, source: tuple[str, int]) -> None:
    """Note on the top Via where the request came from (RFC 3261 §18.2.1, RFC 3581):
    ``received`` always, and the source port in an empty ``rport``."""
    vias = request.headers.get_all("Via")
    if not vias:
        return
    parts = split_commas(vias[0])
    if not parts:
        raise SipSyntaxError("empty Via header")
    first, *others = parts
    via = parse_via(first)
    params = dict(via.params)
    params["received"] = source[0]
    if "rport" in params:
        params["rport"] = str(source[1])
    stamped = str(Via(via.transport, via.host, via.port, params, via.version))
    rebuilt = [", ".join([stamped, *others]), *vias[1:]]
    request.headers.remove("Via")
    items = list(request.headers)
    request.headers = Headers([*(("Via", v) for v in rebuilt), *items])
