"""Who sent a callback request: an API key (a bearer token) or an HMAC-SHA256 signature
over a timestamp, the method, the path and the body, a replay refused; the clients'
secrets read from the environment or a file (docs/web_callbacks.md)."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cti.config import WebClientSettings
from cti.engine.web_http import HttpRequest, RefusedError
from cti.errors import CtiError

#: Signatures remembered (to refuse replays) at most; more: 503 until some expire.
_SEEN_MEMORY = 100_000
#: Shortest HMAC secret accepted (bytes).
_MIN_SECRET = 16
#: The name of the client of anonymous requests (``[web.callbacks] anonymous``).
ANONYMOUS = "-"
CLIENT_HEADER = "X-CTI-Client"
TIMESTAMP_HEADER = "X-CTI-Timestamp"
SIGNATURE_HEADER = "X-CTI-Signature"


def sign(secret: bytes, method: str, path: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The signature headers (without ``X-CTI-Client``) of a request: hex HMAC-SHA256 of
    ``"{timestamp}\\n{METHOD}\\n{path}\\n"`` followed by the body."""
    message = f"{timestamp}\n{method.upper()}\n{path}\n".encode() + body
    digest = hmac.new(secret, message, hashlib.sha256).hexdigest()
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: digest}


def key_sha256(key: str) -> str:
    """The hex SHA-256 of an API key, as ``[[web.clients]] key_sha256`` keeps it."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class WebClient:
    name: str
    key_hash: bytes | None
    secret: bytes | None


def load_client(settings: WebClientSettings) -> WebClient:
    """The client with its secret read. Raises :class:`CtiError` naming what is missing."""
    where = f"[[web.clients]] {settings.name!r}"
    secret: bytes | None = None
    if settings.secret_env:
        value = os.environ.get(settings.secret_env, "")
        if not value:
            raise CtiError(f"{where}: environment variable {settings.secret_env} is not set")
        secret = value.encode()
    elif settings.secret_file:
        try:
            secret = Path(settings.secret_file).read_bytes().strip()
        except OSError as exc:
            raise CtiError(f"{where}: secret_file {settings.secret_file}: {exc}") from None
    if secret is not None and len(secret) < _MIN_SECRET:
        raise CtiError(f"{where}: the secret is shorter than {_MIN_SECRET} bytes")
    key_hash = bytes.fromhex(settings.key_sha256) if settings.key_sha256 else None
    return WebClient(settings.name, key_hash, secret)


class Authenticator:
    """Who sent a request: a bearer API key (compared as SHA-256 digests, in constant
    time, against every client's) or an HMAC signature with a fresh timestamp that was
    not seen before. Sans-I/O: :meth:`verify` takes ``now`` (epoch seconds)."""

    def __init__(self, clients: list[WebClient], *, anonymous: bool, max_age_s: float) -> None:
        self._clients = clients
        self._by_name = {c.name: c for c in clients}
        self._anonymous = anonymous
        self._max_age_s = max_age_s
        self._seen: OrderedDict[str, float] = OrderedDict()
        """Signatures accepted -> when they expire (a replay before then is refused)."""

    def verify(self, request: HttpRequest, headers: Mapping[str, str], now: float) -> str:
        """The client's name, or :class:`RefusedError` (401; 503 if replay memory is full)."""
        authorization = headers.get("authorization")
        if authorization is not None:
            return self._bearer(authorization)
        if SIGNATURE_HEADER.lower() in headers:
            return self._signed(request, headers, now)
        if self._anonymous:
            return ANONYMOUS
        raise RefusedError(
            401,
            "Authorization",
            "credentials required: 'Authorization: Bearer KEY' or the headers "
            f"{CLIENT_HEADER}, {TIMESTAMP_HEADER} and {SIGNATURE_HEADER}",
            {"WWW-Authenticate": 'Bearer realm="cti-callbacks"'},
        )

    def _bearer(self, authorization: str) -> str:
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not 0 < len(key) <= 256:
            raise RefusedError(401, "Authorization", "expected 'Bearer KEY'")
        digest = hashlib.sha256(key.strip().encode("utf-8", "replace")).digest()
        found = ""
        for client in self._clients:  # all of them, whichever matches: no timing hint
            if client.key_hash is not None and hmac.compare_digest(digest, client.key_hash):
                found = client.name
        if not found:
            raise RefusedError(401, "Authorization", "unknown API key")
        return found

    def _signed(self, request: HttpRequest, headers: Mapping[str, str], now: float) -> str:
        name = headers.get(CLIENT_HEADER.lower(), "")
        stamp = headers.get(TIMESTAMP_HEADER.lower(), "")
        signature = headers.get(SIGNATURE_HEADER.lower(), "").lower()
        if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
            raise RefusedError(401, TIMESTAMP_HEADER, "expected Unix time in whole seconds")
        skew = int(stamp) - now
        if abs(skew) > self._max_age_s:
            raise RefusedError(
                401,
                TIMESTAMP_HEADER,
                f"{stamp} is {abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} the "
                f"engine's clock; accepted within {self._max_age_s:g} s (sign each request anew)",
            )
        client = self._by_name.get(name)
        expected = b""
        if client is not None and client.secret is not None:
            expected = sign(client.secret, request.method, request.path, request.body, int(stamp))[
                SIGNATURE_HEADER
            ].encode()
        if not expected or not hmac.compare_digest(expected, signature.encode("ascii", "replace")):
            raise RefusedError(
                401, SIGNATURE_HEADER, f"does not match (client {name[:64]!r}, timestamp {stamp})"
            )
        self._forget_expired(now)
        seen = f"{name}:{signature}"
        if seen in self._seen:
            raise RefusedError(
                401, SIGNATURE_HEADER, "already used: a replay (sign each request anew)"
            )
        if len(self._seen) >= _SEEN_MEMORY:
            raise RefusedError(503, SIGNATURE_HEADER, "too many signed requests; retry later")
        self._seen[seen] = int(stamp) + self._max_age_s
        return name

    def _forget_expired(self, now: float) -> None:
        while self._seen:
            first, expires = next(iter(self._seen.items()))
            if expires >= now:
                break
            del self._seen[first]
