"""Call ids unique across restarts and machines: one scheme for every line.

An id is ``<line>-<boot><salt>-<n>``: ``boot`` is when this process opened the line (Unix
seconds in base 36), ``salt`` four random base-36 characters (two engines or two
restarts in the same second differ), ``n`` counts from 1 in this process. The engine's
journal and call records keep old ids across restarts, so a line that counted from 1
afresh would hand the router ids it already knows (and the store ids it has records
for). Only letters, digits and ``-``: safe in topics, file names and logs.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Iterator

_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def base36(number: int) -> str:
    """``number`` (>= 0) in base 36, lower case."""
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = _DIGITS[rest] + out
        if number == 0:
            return out


def boot_call_ids(line: str, *, at: float | None = None, salt: str | None = None) -> Iterator[str]:
    """``<line>-<boot><salt>-1``, ``-2``, ...: unique per line across restarts and
    machines. ``at`` (epoch seconds) and ``salt`` are for tests; by default now and
    random."""
    boot = base36(int(time.time() if at is None else at))
    if salt is None:
        salt = "".join(secrets.choice(_DIGITS) for _ in range(4))
    return (f"{line}-{boot}{salt}-{n}" for n in itertools.count(1))
