"""A flood of bad SIP datagrams writes a bounded number of log lines: each
kind of complaint is logged once, then counted once a minute (cti.log_limits), on the
user agent's own clock."""

from __future__ import annotations

import logging
import random
import re

import pytest

from telephony_adapters.sipline.message import Request
from telephony_adapters.sipline.useragent import UserAgent
from tests.telephony_adapters.sipline.peer import PEER, make_ua, request

pytestmark = pytest.mark.security

FLOOD = 10_000
GAP_S = 0.1  # 10,000 datagrams over 1,000 s of virtual time


def _bad(rng: random.Random, i: int) -> bytes:
    kind = i % 4
    if kind == 0:
        return b"\x16\x03" + rng.randbytes(rng.randrange(1, 200))  # not SIP at all
    if kind == 1:
        return request("OPTIONS", branch=f"z9hG4bK{i}")[: rng.randrange(10, 60)]  # cut short
    if kind == 2:
        return request("OPTIONS", branch=f"z9hG4bK{i}").replace(b"Call-ID: call-1\r\n", b"")
    return request("NOTIFY", branch=f"z9hG4bK{i}", call_id=f"bug-{i}")  # hits the bug below


def test_ten_thousand_bad_datagrams_write_a_bounded_log(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    ua = make_ua()
    failures = 0
    dispatch = UserAgent._dispatch

    def buggy(self: UserAgent, req: Request, *args: object) -> object:
        # A bug that fails on every message of one kind: the line must go on quietly.
        nonlocal failures
        if req.call_id.startswith("bug-"):
            failures += 1
            raise RuntimeError("a bug")
        return dispatch(self, req, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(UserAgent, "_dispatch", buggy)
    caplog.set_level(logging.WARNING, logger="telephony_adapters.sipline")
    rng = random.Random(17)
    now = 0.0
    for i in range(FLOOD):
        now = i * GAP_S
        ua.receive(_bad(rng, i), PEER, now)
        if i % 100 == 0:
            ua.advance(now)  # the line's timer loop runs now and then
    ua.advance(now + 61.0)  # the last counts come out

    assert failures == FLOOD // 4
    assert ua.dropped >= FLOOD // 2
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    written = len([r for r in records if "repeated" not in r.getMessage()])
    assert written == 3  # the first of each kind: dropped, refused, failed
    # Then one count a minute per kind (1,000 s: 17 of them) and the last counts.
    assert len(records) <= written * (1 + 17 + 1)
    # Nothing was lost from view: the lines written and the counts add up to the flood.
    counted = sum(
        int(m.group(1).replace(",", ""))
        for r in records
        if (m := re.search(r"repeated ([\d,]+) times", r.getMessage()))
    )
    assert written + counted == ua.dropped + failures
    assert sum(bool(r.exc_info) for r in records) == 1  # one traceback, not 2,500
