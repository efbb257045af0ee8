"""Token buckets, sans-I/O: every call takes ``now`` (seconds, any monotonic clock)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    """``burst`` tokens at most, refilled at ``rate`` tokens a second; one per request."""

    rate: float
    burst: float
    tokens: float = -1.0
    at: float = 0.0

    def take(self, now: float) -> float:
        """Take a token: 0.0 if one was there, else the seconds until one will be."""
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        if self.rate <= 0:
            return float("inf")
        return (1.0 - self.tokens) / self.rate

    def full(self, now: float) -> bool:
        """Whether the bucket is back to ``burst`` (so forgetting it changes nothing)."""
        self._refill(now)
        return self.tokens >= self.burst

    def _refill(self, now: float) -> None:
        if self.tokens < 0:  # new: full
            self.tokens, self.at = self.burst, now
            return
        if now > self.at:
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now


class KeyedBuckets:
    """One :class:`TokenBucket` per key (client, number...), at most ``limit`` of them.

    Full buckets are forgotten when room is needed (a new bucket is full too); when all
    are in use, :meth:`take` refuses new keys (``inf``) rather than grow without bound.
    """

    def __init__(self, rate: float, burst: float, limit: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.limit = limit
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, key: str, now: float) -> float:
        """As :meth:`TokenBucket.take` for ``key``'s bucket."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.limit:
                self._forget_full(now)
                if len(self._buckets) >= self.limit:
                    return float("inf")
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst)
        self._buckets.move_to_end(key)
        return bucket.take(now)

    def __len__(self) -> int:
        return len(self._buckets)

    def _forget_full(self, now: float) -> None:
        for key in [k for k, b in self._buckets.items() if b.full(now)]:
            del self._buckets[key]
