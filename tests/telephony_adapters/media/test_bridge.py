"""The media core on virtual time: relay, transcoding, mixing, DTMF, mute, players,
recording taps, time-outs and hostile input."""

from __future__ import annotations

import random
import struct

import pytest

from cti.errors import TelephonyError
from telephony_adapters.media import g711
from telephony_adapters.media.bridge import (
    DtmfHeard,
    HearLeg,
    HearSilence,
    LegSilent,
    MediaCore,
    Out,
    PlayFinished,
    RecordFrame,
    SendPacket,
)
from telephony_adapters.sipline.rtp import RtpPacket, dtmf_packets, parse_rtp
from tests.audio import tone_frame, tone_power_ratio

FRAME = 0.02
ADDR = {"a": ("10.0.0.1", 4000), "b": ("10.0.0.2", 4002), "c": ("10.0.0.3", 4004),
        "d": ("10.0.0.4", 4006)}  # fmt: skip
SSRC = {"a": 0xA, "b": 0xB, "c": 0xC, "d": 0xD}


def make_core(*types: tuple[str, int], te: int | None = 101) -> MediaCore:
    core = MediaCore(rng=random.Random(3))
    for leg, pt in types:
        core.add_leg(leg, payload_type=pt, telephone_event=te, remote=ADDR[leg], now=0.0)
    return core


def rtp(leg: str, i: int, payload: bytes, pt: int = 0) -> bytes:
    return bytes(RtpPacket(pt, 1000 + i, 5000 + 160 * i, SSRC[leg], payload))


def sends(outs: list[Out], to: str | None = None) -> list[RtpPacket]:
    return [parse_rtp(o.data) for o in outs if isinstance(o, SendPacket) and to in (None, o.leg_id)]


def heard(packets: list[RtpPacket], pt: int) -> list[int]:
    return [s for p in packets for s in g711.samples(g711.decode(p.payload, pt))]


def test_same_codec_relay_passes_the_payload_and_rewrites_the_header() -> None:
    core = make_core(("a", 0), ("b", 0))
    core.connect("a", "b")
    payloads = [bytes(random.Random(i).getrandbits(8) for _ in range(160)) for i in range(5)]
    got = [sends(core.receive("a", rtp("a", i, payloads[i]), i * FRAME)) for i in range(5)]
    assert all(len(g) == 1 for g in got)
    packets = [g[0] for g in got]
    assert [p.payload for p in packets] == payloads
    ssrcs = {p.ssrc for p in packets}
    assert len(ssrcs) == 1
    assert SSRC["a"] not in ssrcs
    assert [(p.sequence - packets[0].sequence) % 0x10000 for p in packets] == [0, 1, 2, 3, 4]
    assert [p.marker for p in packets] == [True, False, False, False, False]
    # And the other way, to a's address.
    back = core.receive("b", rtp("b", 0, payloads[0]), 0.1)
    assert isinstance(back[0], SendPacket)
    assert back[0].addr == ADDR["a"]


@pytest.mark.parametrize(("src", "dst"), [(g711.PCMU, g711.PCMA), (g711.PCMA, g711.PCMU)])
def test_transcoding_between_pcmu_and_pcma(src: int, dst: int) -> None:
    core = make_core(("a", src), ("b", dst))
    core.connect("a", "b")
    received: list[RtpPacket] = []
    for i in range(10):
        payload = g711.encode(tone_frame(1000, i), src)
        received += sends(core.receive("a", rtp("a", i, payload, pt=src), i * FRAME), "b")
        assert received[-1].payload == g711.translate(payload, src, dst)
    assert {p.payload_type for p in received} == {dst}
    audio = heard(received, dst)
    assert tone_power_ratio(audio, 1000) > 0.99


def test_three_leg_mix_each_hears_the_other_two() -> None:
    core = make_core(("a", 0), ("b", 8), ("c", 0))
    core.mix(["a", "b", "c"])
    freqs = {"a": 500, "b": 800, "c": 1300}
    got: dict[str, list[RtpPacket]] = {leg: [] for leg in freqs}
    for i in range(25):
        now = i * FRAME
        for leg, f in freqs.items():
            pt = 8 if leg == "b" else 0
            payload = g711.encode(tone_frame(f, i), pt)
            assert core.receive(leg, rtp(leg, i, payload, pt), now) == []  # mixed, not relayed
        for out in core.tick(now + 0.001):
            assert isinstance(out, SendPacket)
            got[out.leg_id].append(parse_rtp(out.data))
    for leg, f in freqs.items():
        assert len(got[leg]) == 25
        audio = heard(got[leg], 8 if leg == "b" else 0)[-4 * 160 :]
        others = [g for other, g in freqs.items() if other != leg]
        assert tone_power_ratio(audio, f) < 0.01, leg
        for g in others:
            assert 0.4 < tone_power_ratio(audio, g) < 0.6, (leg, g)
        seqs = [p.sequence for p in got[leg]]
        assert [(s - seqs[0]) % 0x10000 for s in seqs] == list(range(25))


def test_mix_clips_instead_of_wrapping() -> None:
    core = make_core(("a", 0), ("b", 0), ("c", 0))
    core.mix(["a", "b", "c"])
    loud = g711.encode(g711.to_bytes_list([30000] * 160), 0)
    core.receive("a", rtp("a", 0, loud), 0.0)
    core.receive("b", rtp("b", 0, loud), 0.0)
    core.receive("c", rtp("c", 0, g711.silence(0)), 0.0)
    to_c = sends(core.tick(0.001), "c")
    assert set(heard(to_c, 0)) == {g711.ULAW_DECODE[0x80]}  # the top code, not a wrap


def test_a_conference_member_leaving_turns_the_rest_into_a_relay() -> None:
    core = make_core(("a", 0), ("b", 0), ("c", 0))
    core.mix(["a", "b", "c"])
    core.remove_leg("c")
    assert core.source_of("a") == HearLeg("b")
    assert core.source_of("b") == HearLeg("a")
    payload = g711.silence(0)
    assert sends(core.receive("a", rtp("a", 0, payload), 0.0), "b")[0].payload == payload


def test_source_changes_keep_one_stream_with_markers() -> None:
    core = make_core(("a", 0), ("b", 0))
    core.connect("a", "b")
    packets = sends(core.receive("b", rtp("b", 0, b"\x01" * 160), 0.0), "a")
    frames = [tone_frame(400, i) for i in range(2)]

    class Music:
        def next_frame(self, now: float) -> bytes | None:
            return frames.pop(0) if frames else None

    core.play("a", Music())
    outs = [o for i in range(1, 5) for o in core.tick(i * FRAME)]
    assert PlayFinished("a") in outs
    packets += sends(outs, "a")
    core.hear("a", "b")
    packets += sends(core.receive("b", rtp("b", 5, b"\x02" * 160), 5 * FRAME), "a")
    # relay, 2 music frames, silence after the prompt ended (2 ticks), relay again
    assert [p.payload[:1] for p in packets] == [
        b"\x01",
        *[g711.encode(f, 0)[:1] for f in [tone_frame(400, 0), tone_frame(400, 1)]],
        b"\xff",
        b"\xff",
        b"\x02",
    ]
    assert [p.marker for p in packets] == [True, True, False, True, False, True]
    seqs = [p.sequence for p in packets]
    assert [(s - seqs[0]) % 0x10000 for s in seqs] == list(range(6))
    stamps = [(p.timestamp - packets[0].timestamp) % 2**32 for p in packets]
    assert stamps == [160 * i for i in range(6)]
    assert {p.ssrc for p in packets} == {packets[0].ssrc}


def test_dtmf_is_passed_through_and_reported_once() -> None:
    core = MediaCore(rng=random.Random(1))
    core.add_leg("a", payload_type=0, telephone_event=101, remote=ADDR["a"], now=0.0)
    core.add_leg("b", payload_type=8, telephone_event=96, remote=ADDR["b"], now=0.0)
    core.connect("a", "b")
    outs: list[Out] = []
    for i, data in enumerate(
        dtmf_packets("5", payload_type=101, ssrc=SSRC["a"], sequence=10, timestamp=800)
    ):
        outs += core.receive("a", data, i * FRAME)
    assert [o for o in outs if isinstance(o, DtmfHeard)] == [DtmfHeard("a", "5", 200)]
    forwarded = sends(outs, "b")
    assert len(forwarded) == 6
    assert {p.payload_type for p in forwarded} == {96}
    assert len({p.timestamp for p in forwarded}) == 1  # one event
    assert forwarded[0].payload[0] == 5
    assert forwarded[-1].payload[1] & 0x80  # the end bit
    # A muted leg's keys are still reported, not forwarded.
    core.mute("a", True)
    outs = []
    for i, data in enumerate(
        dtmf_packets("#", payload_type=101, ssrc=SSRC["a"], sequence=20, timestamp=8000)
    ):
        outs += core.receive("a", data, 1 + i * FRAME)
    assert outs == [DtmfHeard("a", "#", 200)]


def test_dtmf_to_a_leg_without_telephone_event_is_reported_only() -> None:
    core = MediaCore(rng=random.Random(1))
    core.add_leg("a", payload_type=0, telephone_event=101, remote=ADDR["a"], now=0.0)
    core.add_leg("b", payload_type=0, telephone_event=None, remote=ADDR["b"], now=0.0)
    core.connect("a", "b")
    outs: list[Out] = []
    for data in dtmf_packets("1", payload_type=101, ssrc=SSRC["a"], sequence=1, timestamp=1):
        outs += core.receive("a", data, 0.0)
    assert outs == [DtmfHeard("a", "1", 200)]
    assert core.dropped["dtmf_not_forwarded"] == 6


def test_mute_forwards_nothing_and_the_other_side_hears_silence() -> None:
    core = make_core(("a", 0), ("b", 0))
    core.connect("a", "b")
    core.mute("a", True)
    assert core.receive("a", rtp("a", 0, b"\x10" * 160), 0.0) == []
    to_b = sends(core.tick(0.001), "b")
    assert [p.payload for p in to_b] == [g711.silence(0)]
    core.mute("a", False)
    relayed = sends(core.receive("a", rtp("a", 1, b"\x10" * 160), 0.01), "b")
    assert relayed[0].payload == b"\x10" * 160
    assert relayed[0].marker
    # While a talks, b gets no filler; after 100 ms of nothing it does, every 20 ms.
    steps = [sends(core.tick(0.001 + i * FRAME), "b") for i in range(1, 11)]
    assert steps[:4] == [[]] * 4  # 0.021-0.081: a spoke at 0.01
    fill = steps[5:]  # 0.121 on
    assert [[p.payload for p in f] for f in fill] == [[g711.silence(0)]] * 5
    assert [p.marker for f in fill for p in f] == [True, False, False, False, False]


def test_a_late_loop_sends_no_filler_until_the_source_is_quiet_for_real() -> None:
    """A step 150 ms late (the loop lagged, packets may wait unread) fills no relayed
    leg, nor do the catch-up steps at that instant; once the loop keeps up, a source
    that really sent nothing is filled, and one that sends is relayed."""
    core = make_core(("a", 0), ("b", 0), ("c", 0), ("d", 0))
    core.connect("a", "b")
    core.connect("c", "d")
    for i in range(3):  # both calls talk until 0.04 on a steady grid
        core.tick(i * FRAME)
        for leg in "abcd":
            core.receive(leg, rtp(leg, i, b"\x10" * 160), i * FRAME + 0.001)
    late = 0.04 + 0.15
    assert sends(core.tick(late)) == []  # nothing fills: the loop lagged
    assert sends(core.tick(late)) == []  # nor catching up at the same instant
    for leg in "abc":  # what waited unread comes in; d (heard by c) has stopped
        core.receive(leg, rtp(leg, 3, b"\x10" * 160), late + 0.001)
    step = core.tick(late + FRAME)  # the next step, on time
    assert [p.payload for p in sends(step, "c")] == [g711.silence(0)]  # d: quiet for real
    assert sends(step, "a") + sends(step, "b") + sends(step, "d") == []


def test_a_source_quiet_while_others_speak_is_filled_even_on_a_late_loop() -> None:
    core = make_core(("a", 0), ("b", 0), ("c", 0), ("d", 0))
    core.connect("a", "b")
    core.connect("c", "d")
    core.tick(0.0)
    core.receive("a", rtp("a", 0, b"\x10" * 160), 0.001)  # a speaks once, then stops
    for i in range(1, 9):  # c goes on; every step is 30 ms late
        core.receive("c", rtp("c", i, b"\x10" * 160), i * FRAME)
        to_b = sends(core.tick(i * FRAME + 0.03), "b")
        # from c's packet of 0.12 on, c was heard 100 ms after a's last: a is quiet
        assert [p.payload for p in to_b] == ([g711.silence(0)] if i >= 6 else []), i


def test_recording_taps_give_linear_frames_timed_by_rtp() -> None:
    core = make_core(("a", 0), ("b", 0))
    core.connect("a", "b")
    core.tap("a", "call-1", "caller")
    core.tap("b", "call-1", "agent")
    rnd = random.Random(2)
    frames: list[RecordFrame] = []
    for i in range(20):
        arrival = 10.0 + i * FRAME + rnd.uniform(0, 0.015)  # jittery arrivals
        payload = g711.encode(tone_frame(600, i), 0)
        frames += [
            o
            for o in core.receive("a", rtp("a", i, payload), arrival)
            if isinstance(o, RecordFrame)
        ]
    assert {(f.tap, f.side) for f in frames} == {("call-1", "caller")}
    assert [round(f.at - frames[0].at, 6) for f in frames] == [
        round(i * FRAME, 6) for i in range(20)
    ]
    samples = [s for f in frames for s in g711.samples(f.samples)]
    assert tone_power_ratio(samples, 600) > 0.99
    agent = core.receive("b", rtp("b", 0, g711.silence(0)), 11.0)
    assert [(o.side, o.at) for o in agent if isinstance(o, RecordFrame)] == [("agent", 11.0)]
    core.untap("a", "call-1")
    assert not [
        o
        for o in core.receive("a", rtp("a", 20, g711.silence(0)), 10.4)
        if isinstance(o, RecordFrame)
    ]


def test_media_time_out_is_reported_once_per_silence() -> None:
    core = MediaCore(rng=random.Random(1))
    core.add_leg("a", payload_type=0, remote=None, now=0.0, timeout_s=5.0)
    assert core.next_deadline() == 5.0
    assert core.tick(4.9) == []
    assert core.tick(5.0) == [LegSilent("a", 0.0)]
    assert core.tick(6.0) == []
    assert core.next_deadline() is None
    core.receive("a", rtp("a", 0, g711.silence(0)), 7.0)
    assert core.next_deadline() == 12.0
    assert core.tick(12.5) == [LegSilent("a", 7.0)]
    core.set_timeout("a", None, 13.0)
    assert core.next_deadline() is None


def test_next_deadline_follows_the_20ms_grid() -> None:
    core = make_core(("a", 0))
    assert core.next_deadline() == 0.0
    assert len(sends(core.tick(0.0))) == 1  # a fresh leg hears silence
    assert core.next_deadline() == pytest.approx(FRAME)
    assert core.tick(0.01) == []
    assert len(sends(core.tick(0.02))) == 1
    # A loop that fell far behind restarts the grid rather than bursting.
    assert len(sends(core.tick(1.0))) == 1
    assert core.next_deadline() == pytest.approx(1.02)


def test_optional_header_parts_are_read_past_and_plain_headers_keep_their_fields() -> None:
    """The core reads plain headers itself and the others (CSRCs, an extension, padding)
    through parse_rtp: the same payload and sequence either way."""
    core = make_core(("a", 0), ("b", 0))
    core.connect("a", "b")
    payload = bytes(range(160))
    head = struct.pack("!BBHII", 0x80, 0x80, 7, 1120, SSRC["a"])  # plain, marker set
    csrc = struct.pack("!BBHII", 0x82, 0, 8, 1280, SSRC["a"]) + bytes(8)
    extension = struct.pack("!BBHII", 0x90, 0, 9, 1440, SSRC["a"]) + b"\xbe\xde\0\1" + bytes(4)
    padded = struct.pack("!BBHII", 0xA0, 0, 10, 1600, SSRC["a"]) + payload + b"\0\0\3"
    got = [
        sends(core.receive("a", data + body, i * FRAME), "b")
        for i, (data, body) in enumerate(
            [(head, payload), (csrc, payload), (extension, payload), (padded, b"")]
        )
    ]
    assert [len(g) for g in got] == [1, 1, 1, 1]
    assert [g[0].payload for g in got] == [payload] * 4
    assert [(g[0].sequence - got[0][0].sequence) % 0x10000 for g in got] == [0, 1, 2, 3]
    assert core.stats("a").received == 4
    assert core.stats("a").lost == 0


def test_garbage_is_counted_and_dropped() -> None:
    core = make_core(("a", 0), ("b", 0))
    core.connect("a", "b")
    rnd = random.Random(9)
    garbage = [
        b"",
        b"\x80",
        b"hello, this is not RTP",
        bytes([0x40]) + bytes(20),  # version 1
        bytes([0x8F]) + bytes(20),  # 15 CSRCs in 21 bytes
        bytes([0xA0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xA, 200]),  # padding longer than the packet
        rtp("a", 0, b"\0" * 2000),  # oversized
        rtp("a", 0, b"\0" * 160, pt=8),  # not a's codec
        rtp("a", 0, b""),  # no payload
        struct.pack("!BBHI", 0x81, 200, 6, 0xA) + bytes(20),  # RTCP sender report
        *(bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 300))) for _ in range(500)),
    ]
    for data in garbage:
        for out in core.receive("a", data, 0.0):
            assert isinstance(out, SendPacket)  # random bytes may be RTP by chance
    assert core.receive("nobody", rtp("a", 0, b"\0" * 160), 0.0) == []
    for reason in ("not_rtp", "oversized", "payload_type", "empty", "rtcp", "unknown_leg"):
        assert core.dropped[reason] >= 1, reason
    # A storm of other SSRCs changes nothing for the real stream.
    core2 = make_core(("a", 0), ("b", 0))
    core2.connect("a", "b")
    relayed = 0
    for i in range(50):
        relayed += len(core2.receive("a", rtp("a", i, b"\x33" * 160), i * FRAME))
        for _ in range(10):
            storm = RtpPacket(0, rnd.getrandbits(16), 0, rnd.getrandbits(32), b"\x44" * 160)
            relayed += len(core2.receive("a", bytes(storm), i * FRAME))
    assert relayed == 50
    assert core2.dropped["foreign"] == 500
    assert core2.stats("a").lost == 0


def test_loss_and_jitter_are_kept_per_leg() -> None:
    core = make_core(("a", 0), ("b", 0))
    core.connect("a", "b")
    for i in [0, 1, 2, 4, 3, 3, 6, 7]:
        core.receive("a", rtp("a", i, g711.silence(0)), i * FRAME + (0.005 if i % 2 else 0))
    stats = core.stats("a")
    assert (stats.expected, stats.received, stats.lost, stats.duplicates, stats.late) == (
        8,
        7,
        1,
        1,
        1,
    )
    assert stats.jitter_ms > 0
    assert core.dropped["duplicate"] == 1


def test_bounds_and_bad_requests_are_clear_errors() -> None:
    core = MediaCore(max_legs=2)
    core.add_leg("a", payload_type=0, now=0.0)
    with pytest.raises(TelephonyError, match="exists already"):
        core.add_leg("a", payload_type=0, now=0.0)
    with pytest.raises(TelephonyError, match=r"payload type 9 is not G\.711"):
        core.add_leg("x", payload_type=9, now=0.0)
    with pytest.raises(TelephonyError, match="telephone-event payload type 0"):
        core.add_leg("x", payload_type=0, telephone_event=0, now=0.0)
    core.add_leg("b", payload_type=0, now=0.0)
    with pytest.raises(TelephonyError, match="full"):
        core.add_leg("c", payload_type=0, now=0.0)
    with pytest.raises(TelephonyError, match="no media leg 'z'"):
        core.connect("a", "z")
    with pytest.raises(TelephonyError, match="itself"):
        core.hear("a", "a")
    with pytest.raises(TelephonyError, match="distinct"):
        core.mix(["a", "a", "b"])
    core.remove_leg("b")
    core.remove_leg("b")  # twice: no error
    assert core.source_of("a") == HearSilence()


def test_a_muted_conference_member_is_left_out_of_the_mix() -> None:
    core = make_core(("a", 0), ("b", 0), ("c", 0))
    core.mix(["a", "b", "c"])
    to_b: list[RtpPacket] = []
    for i in range(12):
        if i == 1:
            core.mute("a", True)  # a's first frame was queued: it must not come out later
        if i == 6:
            core.mute("a", False)
        a_tone = 500 if i < 6 else 700
        for leg, f in (("a", a_tone), ("c", 1300)):
            core.receive(leg, rtp(leg, i, g711.encode(tone_frame(f, i), 0)), i * FRAME)
        if i >= 1:
            to_b += sends(core.tick(i * FRAME + 0.001), "b")
    muted, after = heard(to_b[:5], 0), heard(to_b[5:], 0)
    assert tone_power_ratio(muted, 1300) > 0.99
    assert tone_power_ratio(muted + after, 500) < 0.001
    assert tone_power_ratio(after, 700) > 0.3
