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

from cti.errors import TelephonyError

MAX_DATAGRAM = 65_535
"""Nothing larger arrives over UDP; a larger input is refused before it is looked at."""
MAX_HEADERS = 256
"""More header lines than this is hostile, not a telephone."""


class SipSyntaxError(TelephonyError):
    """A SIP message is malformed: the text says what and where."""


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
        "P-Asserted-Identity",
        "P-Preferred-Identity",
        "RSeq",
        "RAck",
        "SIP-ETag",
        "SIP-If-Match",
    )
}

_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_STATUS_LINE = re.compile(r"SIP/2\.0 ([1-6][0-9][0-9])(?: (.*))?", re.IGNORECASE)
_VIA_SENT = re.compile(r"\s*SIP\s*/\s*2\.0\s*/\s*([A-Za-z0-9\-]+)\s+(\S+?)\s*$", re.IGNORECASE)

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
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    415: "Unsupported Media Type",
    420: "Bad Extension",
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
    603: "Decline",
    600: "Busy Everywhere",
}


def is_number(text: str, max_digits: int = 10) -> bool:
    """``text`` is 1 to ``max_digits`` ASCII digits: safe for ``int()``. (``str.isdigit``
    alone accepts ``"³"``, on which ``int()`` raises, and any length.)"""
    return 0 < len(text) <= max_digits and text.isascii() and text.isdigit()


def canonical_name(name: str) -> str:
    """``v`` -> ``Via``, ``call-id`` -> ``Call-ID``, ``x-foo-bar`` -> ``X-Foo-Bar``."""
    lower = name.lower()
    if lower in COMPACT_FORMS:
        return COMPACT_FORMS[lower]
    if lower in _SPECIAL_NAMES:
        return _SPECIAL_NAMES[lower]
    return "-".join(part[:1].upper() + part[1:] for part in lower.split("-"))


def split_commas(value: str) -> list[str]:
    """Split a header value at commas outside quotes and ``<...>``; drop empty parts."""
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
    return [p for p in parts if p]


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
    """One SIP message from one datagram. Raises :class:`SipSyntaxError` if it is not one."""
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
    headers = _parse_header_lines(lines[1:])
    body = _body(headers, rest)
    msg: Message
    if start[:8].upper() == "SIP/2.0 ":
        m = _STATUS_LINE.fullmatch(start)
        if m is None:
            raise SipSyntaxError(f"bad status line {start[:80]!r} (expected SIP/2.0 NNN Reason)")
        msg = Response(headers=headers, body=body, status=int(m.group(1)), reason=m.group(2) or "")
    else:
        parts = start.split(" ")
        if len(parts) != 3 or parts[2].upper() != "SIP/2.0":
            raise SipSyntaxError(
                f"bad request line {start[:80]!r} (expected METHOD Request-URI SIP/2.0)"
            )
        method, uri, _ = parts
        if not _TOKEN.fullmatch(method):
            raise SipSyntaxError(f"bad method {method[:40]!r} in the request line")
        if not uri or ":" not in uri:
            raise SipSyntaxError(f"bad Request-URI {uri[:80]!r}")
        msg = Request(headers=headers, body=body, method=method, uri=uri)
    return msg


def _parse_header_lines(lines: list[str]) -> Headers:
    items: list[tuple[str, str]] = []
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
        if not colon or not _TOKEN.fullmatch(name):
            raise SipSyntaxError(f"line {number}: not a header field: {line[:80]!r}")
        items.append((name, value.strip()))
        if len(items) > MAX_HEADERS:
            raise SipSyntaxError(f"more than {MAX_HEADERS} header fields")
    return Headers(items)


def _body(headers: Headers, rest: bytes) -> bytes:
    lengths = {v.strip() for v in headers.get_all("Content-Length")}
    if not lengths:
        return rest
    if len(lengths) > 1:
        raise SipSyntaxError(f"conflicting Content-Length headers {sorted(lengths)}")
    text = lengths.pop()
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
    if number >= 2**31 or not _TOKEN.fullmatch(parts[1]):
        raise SipSyntaxError(f"bad CSeq {value[:40]!r}")
    return number, parts[1]


# --- structured values -----------------------------------------------------------------


def _split_params(text: str) -> dict[str, str | None]:
    """``;a=1;b;c="x;y"`` -> {"a": "1", "b": None, "c": '"x;y"'} (names lower-cased)."""
    params: dict[str, str | None] = {}
    for part in _split_outside_quotes(text, ";"):
        part = part.strip()
        if not part:
            continue
        name, eq, value = part.partition("=")
        name = name.strip().lower()
        if not name:
            raise SipSyntaxError(f"bad parameter {part[:40]!r}")
        params[name] = value.strip() if eq else None
    return params


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    start, quoted, escaped = 0, False, False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _format_params(params: dict[str, str | None]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def unquote(text: str) -> str:
    """A quoted-string's content (``"a \\"b\\""`` -> ``a "b"``); other text stripped."""
    text = text.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class Uri:
    """A ``sip:``, ``sips:`` or ``tel:`` URI. ``params`` are the URI's own parameters."""

    scheme: str
    user: str = ""
    host: str = ""
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict, hash=False)
    headers: str = ""
    password: str = ""

    def __str__(self) -> str:
        if self.scheme == "tel":
            return f"tel:{self.user}{_format_params(self.params)}"
        userinfo = self.user + (f":{self.password}" if self.password else "")
        text = f"{self.scheme}:{userinfo + '@' if userinfo else ''}{self.host}"
        if self.port is not None:
            text += f":{self.port}"
        text += _format_params(self.params)
        return text + (f"?{self.headers}" if self.headers else "")

    @property
    def host_port(self) -> tuple[str, int]:
        """Where to send to when resolving by the URI alone (no DNS SRV): 5060 by default."""
        return self.host.strip("[]"), self.port or (5061 if self.scheme == "sips" else 5060)

    def with_params(self, **params: str | None) -> Uri:
        return Uri(
            self.scheme,
            self.user,
            self.host,
            self.port,
            {**self.params, **params},
            self.headers,
            self.password,
        )


def parse_uri(text: str) -> Uri:
    text = text.strip()
    scheme, colon, rest = text.partition(":")
    scheme = scheme.lower()
    if not colon or scheme not in ("sip", "sips", "tel") or not rest:
        raise SipSyntaxError(f"bad URI {text[:80]!r} (expected sip:, sips: or tel:)")
    if scheme == "tel":
        number, _, params = rest.partition(";")
        if not number:
            raise SipSyntaxError(f"bad tel URI {text[:80]!r}")
        return Uri("tel", user=number, params=_split_params(params))
    rest, _, uri_headers = rest.partition("?")
    userinfo, at, hostpart = rest.rpartition("@")
    if not at:
        userinfo, hostpart = "", rest
    user, _, password = userinfo.partition(":")
    if any(c in userinfo for c in ' \t<>"'):
        raise SipSyntaxError(f"bad user part in URI {text[:80]!r}")
    hostport, _, params = hostpart.partition(";")
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise SipSyntaxError(f"bad IPv6 host in URI {text[:80]!r}")
        host, port_text = hostport[: end + 1], hostport[end + 1 :].removeprefix(":")
    else:
        host, _, port_text = hostport.partition(":")
    if not host or any(c in host for c in " \t<>\"'"):
        raise SipSyntaxError(f"bad host in URI {text[:80]!r}")
    port: int | None = None
    if port_text:
        if not is_number(port_text, 5) or not 0 < int(port_text) < 65536:
            raise SipSyntaxError(f"bad port {port_text[:10]!r} in URI {text[:80]!r}")
        port = int(port_text)
    return Uri(scheme, user, host.lower(), port, _split_params(params), uri_headers, password)


@dataclass(frozen=True, slots=True)
class Address:
    """A name-addr or addr-spec with header params: From, To, Contact, Route, PAI."""

    uri: Uri
    display: str = ""
    params: dict[str, str | None] = field(default_factory=dict, hash=False)

    @property
    def tag(self) -> str:
        return self.params.get("tag") or ""

    def with_tag(self, tag: str) -> Address:
        return Address(self.uri, self.display, {**self.params, "tag": tag})

    def __str__(self) -> str:
        name = f"{quote(self.display)} " if self.display else ""
        return f"{name}<{self.uri}>{_format_params(self.params)}"


def parse_address(text: str) -> Address:
    """``"Name" <sip:a@b>;tag=1``, ``Name <sip:a@b>``, ``sip:a@b;tag=1`` (in the last form
    the parameters belong to the header, RFC 3261 §20.10)."""
    text = text.strip()
    display = ""
    if text.startswith('"'):
        end = 1
        while end < len(text) and text[end] != '"':
            end += 2 if text[end] == "\\" else 1
        if end >= len(text):
            raise SipSyntaxError(f"unterminated display name in {text[:80]!r}")
        display = unquote(text[: end + 1])
        text = text[end + 1 :].lstrip()
        if not text.startswith("<"):
            raise SipSyntaxError(f"display name without <URI> in {text[:80]!r}")
    lt = text.find("<")
    if lt >= 0:
        gt = text.find(">", lt)
        if gt < 0:
            raise SipSyntaxError(f"unterminated <URI> in {text[:80]!r}")
        if not display:
            display = text[:lt].strip()
        uri = parse_uri(text[lt + 1 : gt])
        params = _split_params(text[gt + 1 :].strip().removeprefix(";"))
        return Address(uri, display, params)
    uri_text, _, params_text = text.partition(";")
    return Address(parse_uri(uri_text), "", _split_params(params_text))


@dataclass(frozen=True, slots=True)
class Via:
    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict, hash=False)

    @property
    def branch(self) -> str:
        return self.params.get("branch") or ""

    @property
    def sent_by(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def response_address(self, source: tuple[str, int]) -> tuple[str, int]:
        """Where responses go (RFC 3261 §18.2.2, RFC 3581): the packet's source address if
        ``rport`` was asked, else its source host at the Via's port."""
        if "rport" in self.params:
            return source
        return source[0], self.port or 5060

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"SIP/2.0/{self.transport} {self.host}{port}{_format_params(self.params)}"


def parse_via(text: str) -> Via:
    sent, _, params = text.partition(";")
    m = _VIA_SENT.match(sent)
    if m is None:
        raise SipSyntaxError(f"bad Via {text[:80]!r} (expected SIP/2.0/UDP host[:port];...)")
    transport, hostport = m.group(1).upper(), m.group(2)
    if hostport.startswith("["):
        end = hostport.find("]")
        host, port_text = hostport[: end + 1], hostport[end + 1 :].removeprefix(":")
    else:
        host, _, port_text = hostport.partition(":")
    if not host or _bad_host(host):
        raise SipSyntaxError(f"bad host in Via {text[:80]!r}")
    if port_text and (not is_number(port_text, 5) or not 0 < int(port_text) < 65536):
        raise SipSyntaxError(f"bad port in Via {text[:80]!r}")
    return Via(transport, host, int(port_text) if port_text else None, _split_params(params))


def _bad_host(host: str) -> bool:
    return any(c in host for c in " \t<>\"',")


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
    first, *others = split_commas(vias[0])
    via = parse_via(first)
    params = dict(via.params)
    params["received"] = source[0]
    if "rport" in params:
        params["rport"] = str(source[1])
    stamped = str(Via(via.transport, via.host, via.port, params))
    rebuilt = [", ".join([stamped, *others]), *vias[1:]]
    request.headers.remove("Via")
    items = list(request.headers)
    request.headers = Headers([*(("Via", v) for v in rebuilt), *items])
