"""SIP URIs and addresses (RFC 3261 §19.1, §20.10, §25.1), read strictly.

:func:`parse_uri` reads ``sip:``, ``sips:`` and ``tel:`` URIs by their grammar: the
user part ends at the ``@`` (it may hold ``?``, ``;``, ``/``... as RFC 4475 §3.1.1.2 and
§3.1.1.9 show), then host, port, parameters and headers. Whitespace anywhere, an empty
parameter, a character outside the part's set or a broken %-escape raises
:class:`SipSyntaxError` (status 400); another URI scheme that is well formed raises it
with status 416 (RFC 3261 §8.2.2.1). Escapes are kept as they came (``user`` is
``%38%30%30``): :func:`~.syntax.unescape` reads them when the value is used, so that
what we write back is what we read.

:func:`parse_address` reads name-addr (``"Name" <sip:a@b>;tag=1``, ``Name <sip:a@b>``)
and addr-spec (``sip:a@b;tag=1``: its parameters belong to the header, and a URI holding
``?`` or ``,`` must be in ``<>``, §20). An unquoted display name is tokens and spaces
(non-ASCII letters allowed, as some PBXs send them); a comma or other separator in it
is refused (RFC 4475 §3.1.2.15).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from telephony_adapters.sipline.syntax import (
    TOKEN,
    SipSyntaxError,
    bad_escape,
    format_params,
    is_number,
    quote,
    split_params,
    unquote,
)

_UNRESERVED = r"A-Za-z0-9\-_.!~*'()"
_USER = re.compile(rf"[{_UNRESERVED}%&=+$,;?/]+")
_PASSWORD = re.compile(rf"[{_UNRESERVED}%&=+$,]*")
_PARAMCHAR = re.compile(rf"[{_UNRESERVED}%\[\]/:&+$]+")
_HNAME = re.compile(rf"[{_UNRESERVED}%\[\]/?:+$]+")
_HVALUE = re.compile(rf"[{_UNRESERVED}%\[\]/?:+$]*")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_IPV6 = re.compile(r"\[[0-9A-Fa-f:.]+\]")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_TEL_NUMBER = re.compile(r"[0-9A-Fa-f+*#\-.()pPwW]+")
_ABSOLUTE_REST = re.compile(r"[^\s<>\"]+")


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
            return f"tel:{self.user}{format_params(self.params)}"
        userinfo = self.user + (f":{self.password}" if self.password else "")
        text = f"{self.scheme}:{userinfo + '@' if userinfo else ''}{self.host}"
        if self.port is not None:
            text += f":{self.port}"
        text += format_params(self.params)
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


def _fault(text: str, what: str) -> SipSyntaxError:
    return SipSyntaxError(f"{what} in URI {text[:80]!r}")


def parse_uri(text: str) -> Uri:
    """A URI by RFC 3261's grammar (see the module docstring); never strips whitespace."""
    scheme, colon, rest = text.partition(":")
    lower = scheme.lower()
    if not colon or not rest or lower not in ("sip", "sips", "tel"):
        if colon and rest and _SCHEME.fullmatch(scheme) and _ABSOLUTE_REST.fullmatch(rest):
            raise SipSyntaxError(f"unsupported URI scheme {scheme[:20]!r}", status=416)
        raise SipSyntaxError(f"bad URI {text[:80]!r} (expected sip:, sips: or tel:)")
    if lower == "tel":
        number, _, params = rest.partition(";")
        if not _TEL_NUMBER.fullmatch(number):
            raise _fault(text, "bad telephone number")
        return Uri("tel", user=number, params=_uri_params(params, text))
    userinfo, at, hostpart = rest.partition("@")
    if not at:
        userinfo, hostpart = "", rest
    elif "@" in hostpart:
        raise _fault(text, "a second '@'")
    user, _, password = userinfo.partition(":")
    if at and not (
        _USER.fullmatch(user) and _PASSWORD.fullmatch(password) and not bad_escape(userinfo)
    ):
        raise _fault(text, "bad user part")
    hostpart, question, uri_headers = hostpart.partition("?")
    hostport, _, params = hostpart.partition(";")
    host, port = _host_port(hostport, text)
    if question and not _headers_ok(uri_headers):
        raise _fault(text, "bad headers")
    return Uri(lower, user, host.lower(), port, _uri_params(params, text), uri_headers, password)


def _host_port(hostport: str, text: str) -> tuple[str, int | None]:
    if hostport.startswith("["):
        end = hostport.find("]")
        host, port_text = hostport[: end + 1], hostport[end + 1 :]
        if end < 0 or not _IPV6.fullmatch(host) or (port_text and port_text[0] != ":"):
            raise _fault(text, "bad IPv6 host")
        port_text = port_text[1:]
    else:
        host, colon, port_text = hostport.partition(":")
        if colon and not port_text:
            raise _fault(text, "empty port")
        if not _HOSTNAME.fullmatch(host):
            raise _fault(text, "bad host")
    if not port_text:
        return host, None
    if not is_number(port_text, 5) or not 0 < int(port_text) < 65536:
        raise _fault(text, f"bad port {port_text[:10]!r}")
    return host, int(port_text)


def _uri_params(text: str, uri: str) -> dict[str, str | None]:
    """``a=1;b`` (after the first ``;``) by the URI grammar: paramchars only, none empty."""
    params: dict[str, str | None] = {}
    if not text and not uri.endswith(";"):
        return params
    for part in text.split(";"):
        name, eq, value = part.partition("=")
        if not _PARAMCHAR.fullmatch(name) or (eq and not _PARAMCHAR.fullmatch(value)):
            raise _fault(uri, f"bad parameter {part[:30]!r}")
        if bad_escape(part):
            raise _fault(uri, f"bad escape in parameter {part[:30]!r}")
        params[name.lower()] = value if eq else None
    return params


def _headers_ok(text: str) -> bool:
    for header in text.split("&"):
        name, eq, value = header.partition("=")
        if not eq or not _HNAME.fullmatch(name) or not _HVALUE.fullmatch(value):
            return False
        if bad_escape(header):
            return False
    return True


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
        return f"{name}<{self.uri}>{format_params(self.params)}"


def parse_address(text: str) -> Address:
    """``"Name" <sip:a@b>;tag=1``, ``Name <sip:a@b>``, ``sip:a@b;tag=1`` (in the last form
    the parameters belong to the header, RFC 3261 §20.10). See the module docstring."""
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
            display = _unquoted_display(text[:lt])
        uri = parse_uri(text[lt + 1 : gt])
        return Address(uri, display, split_params(text[gt + 1 :]))
    uri_text, _, params_text = text.partition(";")
    uri_text = uri_text.rstrip(" \t")
    if "?" in uri_text or "," in uri_text:
        raise SipSyntaxError(f"a URI with '?' or ',' must be in <>: {text[:80]!r}")
    return Address(parse_uri(uri_text), "", split_params(params_text))


def _unquoted_display(text: str) -> str:
    words = text.split()
    for word in words:
        if not TOKEN.fullmatch(word) and (word.isascii() or not _plain(word)):
            raise SipSyntaxError(f"bad display name {text.strip()[:60]!r} (quote it)")
    return " ".join(words)


def _plain(word: str) -> bool:
    """No ASCII separator in a word of an unquoted display name."""
    return word.isprintable() and not any(c in word for c in '()<>@,;:\\"/[]?={}')
