"""SIP over a byte stream (TCP, TLS): messages cut out by ``Content-Length``, sans-I/O.

RFC 3261 §18.3: on a stream the body is exactly ``Content-Length`` bytes (none when the
header is missing). CRLFs between messages are skipped (§7.5); a double CRLF there is an
RFC 5626 §4.4.1 keep-alive ping, to be answered with one CRLF (a pong, which is
skipped). What cannot be framed (no SIP start line, a bad or repeated length, a header
block or message over the bounds) is a :class:`FramingError`: the connection is closed,
since nothing after it can be found again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_HEADER = 16_384
"""Bytes of a header block (start line and headers) at most."""
MAX_MESSAGE = 65_535
"""Bytes of a whole message at most (as for UDP)."""
PING = b"\r\n\r\n"
PONG = b"\r\n"

_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*?)[ \t]*\r?$", re.I | re.M)
_START = re.compile(rb"^(?:[A-Za-z!%*_+`'~.-]+ [^ \r\n]+ SIP/|SIP/)")


class FramingError(Exception):
    """The stream cannot be read on (the message says why)."""


@dataclass(frozen=True, slots=True)
class Ping:
    """A keep-alive ping (CRLF CRLF) to answer with :data:`PONG`."""


class StreamFramer:
    """Bytes in (:meth:`feed`), whole messages and pings out."""

    def __init__(self, max_message: int = MAX_MESSAGE, max_header: int = MAX_HEADER) -> None:
        self.max_message = max_message
        self.max_header = max_header
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes | Ping]:
        """The messages (bytes, as for a datagram) and pings now complete; raises
        :class:`FramingError` when the stream is beyond repair."""
        buf = self._buffer
        buf += data
        out: list[bytes | Ping] = []
        while buf:
            if buf[0] in b"\r\n":
                if buf.startswith(PING):
                    out.append(Ping())
                    del buf[:4]
                elif bytes(buf) in (b"\r", b"\r\n", b"\r\n\r"):
                    break  # a pong, or the start of a ping: wait for the next bytes
                else:
                    del buf[: 2 if buf.startswith(PONG) else 1]
                continue
            message = self._message()
            if message is None:
                break
            out.append(message)
        return out

    def _message(self) -> bytes | None:
        buf = self._buffer
        line_end = buf.find(b"\n")
        if line_end >= 0 and not _START.match(buf):
            raise FramingError(f"not a SIP message: starts {bytes(buf[:40])!r}")
        crlf, lf = buf.find(b"\r\n\r\n"), buf.find(b"\n\n")
        if crlf < 0 and lf < 0:
            if len(buf) > self.max_header:
                raise FramingError(f"header block over {self.max_header} bytes")
            return None
        head_end = crlf + 4 if crlf >= 0 and (lf < 0 or crlf <= lf) else lf + 2
        if head_end > self.max_header:
            raise FramingError(f"header block of {head_end} bytes (over {self.max_header})")
        lengths = {m.group(1) for m in _LENGTH.finditer(buf, 0, head_end)}
        if len(lengths) > 1:
            raise FramingError("two different Content-Lengths")
        text = lengths.pop() if lengths else b"0"
        if not text.isdigit() or len(text) > 9:
            raise FramingError(f"bad Content-Length {text[:20]!r}")
        total = head_end + int(text)
        if total > self.max_message:
            raise FramingError(f"message of {total} bytes (over {self.max_message})")
        if len(buf) < total:
            return None
        message = bytes(buf[:total])
        del buf[:total]
        return message
