"""The plain HTTP request and answer the callback endpoint works on (no aiohttp: the
tests and the flood test drive it on virtual time), and a refusal that names the field
or header at fault (docs/web_callbacks.md)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Largest request body accepted (bytes); more is answered 413.
MAX_BODY = 4096
#: Retry-After for a refusal because too many callbacks are pending.
PENDING_RETRY_S = 60


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What :meth:`WebCallbacks.handle` needs of a request. ``path`` is the raw path
    with its query, as signed; header names in any case."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class RefusedError(Exception):
    """A request refused: its status, the field (or header) at fault, and why."""

    def __init__(
        self, status: int, field: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message if message.startswith(f"{field}:") else f"{field}: {message}")
        self.status = status
        self.field = field
        self.headers = headers or {}

    def answer(self) -> HttpAnswer:
        return HttpAnswer(self.status, {"error": str(self), "field": self.field}, self.headers)


def too_many(field: str, message: str, retry_s: float) -> RefusedError:
    retry = PENDING_RETRY_S if math.isinf(retry_s) else max(1, math.ceil(retry_s))
    return RefusedError(429, field, f"{message}; retry in {retry} s", {"Retry-After": str(retry)})


def too_large() -> RefusedError:
    return RefusedError(413, "body", f"larger than {MAX_BODY} bytes")
