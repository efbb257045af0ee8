"""The small pieces of SIP's grammar (RFC 3261 §25.1) the parser is built from: tokens,
parameters, quoted strings, %-escapes, and the error every refusal raises.

Parameters are read strictly: an empty one (``;;``), a name that is not a token, a
value that is neither a token, a host nor a quoted string, or ``=`` with nothing after
it raises :class:`SipSyntaxError`. Whitespace around ``;`` and ``=`` is allowed
(``SEMI`` and ``EQUAL`` are ``SWS ";" SWS`` and ``SWS "=" SWS``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import unquote as _percent_decode

from cti.errors import TelephonyError

if TYPE_CHECKING:
    from telephony_adapters.sipline.message import Message


class SipSyntaxError(TelephonyError):
    """A SIP message is malformed: the text says what and where.

    ``status`` is the response a request with this fault gets (400 unless the fault has
    its own: 505 for a SIP version we do not speak, 416 for a URI scheme we do not
    serve); ``partial`` is the message as far as it could be read (its headers), when
    the parser itself refused it, so that the refusal can still be answered."""

    def __init__(self, text: str, *, status: int = 400, partial: Message | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.partial = partial


TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_HOST_VALUE = re.compile(r"\[[0-9A-Fa-f:.]+\]")
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def is_number(text: str, max_digits: int = 10) -> bool:
    """``text`` is 1 to ``max_digits`` ASCII digits: safe for ``int()``. (``str.isdigit``
    alone accepts ``"³"``, on which ``int()`` raises, and any length.)"""
    return 0 < len(text) <= max_digits and text.isascii() and text.isdigit()


def split_outside_quotes(text: str, sep: str) -> list[str]:
    """``text`` split at ``sep`` where it is not inside a quoted string."""
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


def is_quoted_string(text: str) -> bool:
    """``"..."`` with its inner quotes and backslashes escaped, and no CR or LF."""
    if len(text) < 2 or text[0] != '"' or text[-1] != '"' or "\r" in text or "\n" in text:
        return False
    i, end = 1, len(text) - 1
    while i < end:
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return False
        i += 1
    return i == end


def split_params(text: str) -> dict[str, str | None]:
    """Header parameters ``;a=1;b;c="x;y"`` (the leading ``;`` optional) ->
    ``{"a": "1", "b": None, "c": '"x;y"'}``, names lower-cased; strict (module docstring)."""
    params: dict[str, str | None] = {}
    text = text.strip()
    if not text:
        return params
    for part in split_outside_quotes(text.removeprefix(";"), ";"):
        name, eq, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not name:
            raise SipSyntaxError(f"empty parameter in {text[:60]!r}")
        if not TOKEN.fullmatch(name):
            raise SipSyntaxError(f"bad parameter name {name[:30]!r}")
        if eq and not (
            TOKEN.fullmatch(value) or _HOST_VALUE.fullmatch(value) or is_quoted_string(value)
        ):
            raise SipSyntaxError(f"bad value {value[:30]!r} of parameter {name[:30]!r}")
        params[name.lower()] = value if eq else None
    return params


def format_params(params: dict[str, str | None]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def unquote(text: str) -> str:
    """A quoted-string's content (``"a \\"b\\""`` -> ``a "b"``); other text stripped."""
    text = text.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1], flags=re.DOTALL)
    return text


def quote(text: str) -> str:
    """``text`` as a quoted-string. CR and LF cannot be escaped in one (RFC 3261 §25.1
    quoted-pair), so they become spaces: a display name never splits a header."""
    text = text.replace("\r", " ").replace("\n", " ")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unescape(text: str) -> str:
    """``%38%30%30`` -> ``800`` (RFC 3261 §19.1.2); a ``%`` that starts no escape stays."""
    return _percent_decode(text, errors="surrogateescape") if "%" in text else text


def has_control(text: str) -> bool:
    """``text`` holds a control character (C0, DEL, or an undecodable escape)."""
    return any(ord(c) < 0x20 or ord(c) == 0x7F or 0xDC80 <= ord(c) <= 0xDCFF for c in text)


def bad_escape(text: str) -> bool:
    """``text`` has a ``%`` that is not followed by two hex digits."""
    return text.count("%") != len(_ESCAPE.findall(text))
