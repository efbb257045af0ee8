"""Outgoing rewriting (sequence, timestamp, marker across source changes and wrap-around)
and incoming statistics (loss, duplicates, late packets, jitter, foreign SSRCs)."""

from __future__ import annotations

import random

from telephony_adapters.media.stream import InStream, OutStream, Verdict

FRAME = 0.02


def test_relay_keeps_one_stream_across_source_changes_and_wraps() -> None:
    out = OutStream(ssrc=0x1234, sequence=0xFFFE, timestamp=0xFFFFFF00)
    sent = [out.relay("caller", 500 + i, 9000 + 160 * i, 160, i * FRAME) for i in range(3)]
    assert [s[0] for s in sent] == [0xFFFE, 0xFFFF, 0]
    assert [s[1] for s in sent] == [0xFFFFFF00, 0xFFFFFFA0, 0x40]
    assert [s[2] for s in sent] == [True, False, False]
    # Music from the next tick on: one on in sequence, one frame on in time, marked.
    music = [out.generated("music", (3 + i) * FRAME) for i in range(2)]
    assert music == [(1, 0xE0, True), (2, 0x180, False)]
    # Another leg with its own numbering takes over 100 ms later: 4 frames of quiet.
    seq, ts, marker = out.relay("agent2", 7, 123456, 160, 4 * FRAME + 0.1)
    assert (seq, ts, marker) == (3, 0x220 + 4 * 160, True)
    # Its own spacing stays: a lost packet stays a gap, a late one stays late.
    assert out.relay("agent2", 9, 123456 + 320, 160, 4 * FRAME + 0.14)[:2] == (5, 0x220 + 6 * 160)
    assert out.relay("agent2", 8, 123456 + 160, 160, 4 * FRAME + 0.141)[:2] == (4, 0x220 + 5 * 160)
    # Back to generated frames: on after the newest sequence and sample, not the late one.
    assert out.generated("silence", 4 * FRAME + 0.16) == (6, 0x220 + 7 * 160, True)


def test_source_ssrc_wrap_is_continuous() -> None:
    out = OutStream(ssrc=1, sequence=100, timestamp=0)
    results = [
        out.relay("a", (0xFFFD + i) % 0x10000, (0xFFFFFF60 + 160 * i) % 2**32, 160, i * FRAME)
        for i in range(6)
    ]
    assert [r[0] for r in results] == list(range(100, 106))
    assert [r[1] for r in results] == [160 * i for i in range(6)]


def feed(stream: InStream, seqs: list[int], *, ssrc: int = 7, jitter: float = 0.0) -> list[Verdict]:
    rnd = random.Random(1)
    return [
        stream.accept(ssrc, s % 0x10000, (s * 160) % 2**32, s * FRAME + rnd.uniform(0, jitter))
        for s in seqs
    ]


def test_loss_duplicates_and_late_packets() -> None:
    stream = InStream()
    verdicts = feed(stream, [65530, 65531, 65533, 65532, 65533, 65534, 2, 3, 3])
    assert verdicts == [
        Verdict.NEW, Verdict.NEW, Verdict.NEW, Verdict.LATE, Verdict.DUPLICATE,
        Verdict.NEW, Verdict.NEW, Verdict.NEW, Verdict.DUPLICATE,
    ]  # fmt: skip
    stats = stream.stats()
    assert stats.expected == 10  # 65530 .. 3 across the wrap
    assert stats.received == 7
    assert stats.lost == 3  # 65535, 0, 1
    assert stats.duplicates == 2
    assert stats.late == 1


def test_jitter_follows_rfc3550() -> None:
    steady = InStream()
    feed(steady, list(range(200)))
    assert steady.stats().jitter_ms < 0.01
    shaky = InStream()
    feed(shaky, list(range(2000)), jitter=0.010)
    # Uniform 0-10 ms delays: mean |D| is 10/3 ms, which the estimator tends to.
    assert 2.5 < shaky.stats().jitter_ms < 4.2


def test_dtmf_packets_leave_jitter_alone() -> None:
    stream = InStream()
    for i in range(10):
        stream.accept(7, i, 1000, i * FRAME, timed=False)  # one event: a fixed timestamp
    assert stream.stats().jitter_ms == 0.0
    assert stream.stats().received == 10


def test_a_storm_of_other_ssrcs_is_dropped_and_counted() -> None:
    stream = InStream()
    rnd = random.Random(5)
    verdicts = []
    for i in range(50):
        verdicts.append(stream.accept(7, i, i * 160, i * FRAME))
        for _ in range(20):
            verdicts.append(stream.accept(rnd.getrandbits(32), rnd.getrandbits(16), 0, i * FRAME))
    assert verdicts.count(Verdict.FOREIGN) == 1000
    stats = stream.stats()
    assert stats.ssrc == 7
    assert stats.foreign == 1000
    assert stats.lost == 0
    # Even once the real stream goes quiet, random SSRCs never take over.
    for _ in range(100):
        stream.accept(rnd.getrandbits(32), rnd.getrandbits(16), 0, 5.0)
    assert stream.stats().ssrc == 7


def test_a_new_ssrc_takes_over_when_the_old_one_is_quiet() -> None:
    stream = InStream()
    feed(stream, list(range(10)))
    # While the old SSRC still talks, a newcomer in sequence is refused.
    assert stream.accept(99, 500, 0, 9 * FRAME + 0.01) is Verdict.FOREIGN
    assert stream.accept(99, 501, 160, 9 * FRAME + 0.015) is Verdict.FOREIGN
    # Quiet for 60 ms: two in a row take it over.
    assert stream.accept(99, 502, 320, 9 * FRAME + 0.07) is Verdict.NEW
    assert stream.accept(99, 503, 480, 9 * FRAME + 0.09) is Verdict.NEW
    assert stream.accept(7, 10, 1600, 9 * FRAME + 0.1) is Verdict.FOREIGN
    assert stream.stats().ssrc == 99
    assert stream.stats().lost == 0


def test_a_sequence_restart_is_believed_on_the_second_packet() -> None:
    stream = InStream()
    feed(stream, list(range(10)))
    assert stream.accept(7, 30000, 0, 1.0) is Verdict.FOREIGN
    assert stream.accept(7, 30001, 160, 1.02) is Verdict.NEW
    assert stream.accept(7, 30002, 320, 1.04) is Verdict.NEW
    assert stream.stats().lost == 0
