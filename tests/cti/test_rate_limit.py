"""Token buckets (sans-I/O): refill with ``now``, and a bounded number of keys."""

from __future__ import annotations

import math

import pytest

from cti.rate_limit import KeyedBuckets, TokenBucket

pytestmark = pytest.mark.security


def test_a_bucket_gives_its_burst_then_one_token_per_interval() -> None:
    bucket = TokenBucket(rate=0.5, burst=2)
    assert [bucket.take(100.0) for _ in range(3)] == [0.0, 0.0, 2.0]
    assert bucket.take(101.0) == pytest.approx(1.0)  # half a token back after 1 s
    assert bucket.take(102.0) == 0.0
    assert bucket.take(1000.0) == 0.0
    assert bucket.take(1000.0) == 0.0
    assert bucket.take(1000.0) > 0
    never = TokenBucket(rate=0.0, burst=1)  # one token, never refilled
    assert never.take(0.0) == 0.0
    assert math.isinf(never.take(99.0))


def test_keyed_buckets_forget_full_ones_and_refuse_new_keys_when_all_are_in_use() -> None:
    buckets = KeyedBuckets(rate=1.0, burst=1, limit=2)
    assert buckets.take("a", 0.0) == 0.0
    assert buckets.take("b", 0.0) == 0.0
    assert math.isinf(buckets.take("c", 0.0))  # a and b still owe: no room for c
    assert buckets.take("a", 0.5) == pytest.approx(0.5)
    assert buckets.take("c", 5.0) == 0.0  # a and b refilled: forgotten, c gets room
    assert len(buckets) == 1
