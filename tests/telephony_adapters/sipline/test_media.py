"""SDP offer/answer and RTP: silence packets and RFC 4733 DTMF."""

from __future__ import annotations

import base64
import contextlib
import dataclasses

import pylibsrtp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cti.config import SIP_CODECS
from telephony_adapters.media.srtp import SUITES, new_key
from telephony_adapters.sipline.media import _Stream
from telephony_adapters.sipline.message import SipSyntaxError
from telephony_adapters.sipline.rtp import (
    DtmfReceiver,
    RtpPacket,
    SilenceSource,
    dtmf_packets,
    parse_rtp,
)
from telephony_adapters.sipline.sdp import (
    STATIC_CODECS,
    MediaPlan,
    NotAcceptableError,
    accept_answer,
    answer_offer,
    make_offer,
    parse_sdp,
)

SIPP_OFFER = (
    b"v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\n"
    b"c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def test_an_offer_with_pcmu_is_answered_with_pcmu_at_our_address() -> None:
    offer = parse_sdp(SIPP_OFFER)
    answer, plan = answer_offer(
        offer, "127.0.0.1", 10002, ("PCMA", "PCMU"), session_id="7", version=1
    )
    assert (plan.remote_host, plan.remote_port, plan.payload_type, plan.codec) == (
        "127.0.0.1",
        6000,
        0,
        "PCMU",
    )
    assert plan.telephone_event is None
    assert plan.direction == "sendrecv"
    assert plan.sends
    again = parse_sdp(bytes(answer))
    assert again.media[0].port == 10002
    assert again.media[0].formats == ["0"]
    assert again.connection == "127.0.0.1"
    assert again.version == 1


def test_the_first_codec_of_the_offer_we_take_wins_and_telephone_event_is_kept() -> None:
    offer = parse_sdp(
        b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\n"
        b"m=video 5000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
        b"m=audio 4000 RTP/AVP 18 8 0 97\r\nc=IN IP4 10.0.0.2\r\n"
        b"a=rtpmap:97 telephone-event/8000\r\na=fmtp:97 0-15\r\na=sendonly\r\n"
    )
    answer, plan = answer_offer(offer, "h", 1, ("PCMU", "PCMA"), session_id="1", version=1)
    assert (plan.payload_type, plan.telephone_event, plan.remote_host) == (8, 97, "10.0.0.2")
    assert plan.direction == "recvonly"
    assert plan.on_hold
    assert not plan.sends
    assert [m.port for m in answer.media] == [0, 1]  # the video declined in its place
    assert answer.media[1].fmtp == {97: "0-15"}


def test_an_offer_without_a_codec_we_take_is_not_acceptable() -> None:
    offer = parse_sdp(
        b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 h\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18\r\n"
    )
    with pytest.raises(NotAcceptableError):
        answer_offer(offer, "h", 1, ("PCMU",), session_id="1", version=1)


def test_our_offer_and_its_answer_and_hold() -> None:
    offer = make_offer("192.0.2.1", 10000, ("PCMU", "PCMA"), session_id="42", version=3)
    parsed = parse_sdp(bytes(offer))
    assert parsed.media[0].formats == ["0", "8", "101"]
    assert parsed.media[0].fmtp[101] == "0-16"
    assert parsed.media[0].ptime == 20
    answer, _ = answer_offer(parsed, "192.0.2.2", 20000, ("PCMA",), session_id="9", version=1)
    plan = accept_answer(offer, parse_sdp(bytes(answer)))
    assert (plan.remote_port, plan.payload_type, plan.telephone_event) == (20000, 8, 101)
    held = make_offer(
        "192.0.2.1", 10000, ("PCMU",), session_id="42", version=4, direction="sendonly"
    )
    _, plan_held = answer_offer(
        parse_sdp(bytes(held)), "h", 1, ("PCMU",), session_id="9", version=2
    )
    assert plan_held.direction == "recvonly"
    _, hold_ours = answer_offer(parsed, "h", 1, ("PCMU",), session_id="9", version=2, hold=True)
    assert hold_ours.direction == "sendonly"


@pytest.mark.parametrize(
    "body",
    [
        b"o=- 1 1 IN IP4 h\r\n",
        b"v=0\r\nm=audio x RTP/AVP 0\r\n",
        b"v=0\r\nbad\r\n",
        b"\xff",
        b"v=0\r\nm=audio 70000 RTP/AVP 0\r\n",  # no such UDP port
        b"v=0\r\nm=audio 4000 RTP/AVP 0\r\na=ptime:inf\r\n",  # int(inf): OverflowError
    ],
)
def test_bad_sdp_raises_protocol_error(body: bytes) -> None:
    with pytest.raises(SipSyntaxError):
        parse_sdp(body)


@given(st.binary(max_size=300))
def test_random_sdp_never_crashes(body: bytes) -> None:
    try:
        session = parse_sdp(body)
    except SipSyntaxError:
        return
    with contextlib.suppress(SipSyntaxError):
        answer_offer(session, "h", 1, ("PCMU",), session_id="1", version=1)


def test_silence_is_20_ms_of_g711_with_running_sequence_and_timestamp() -> None:
    source = SilenceSource(8, ssrc=0x1234, sequence=65535, timestamp=0)
    first, second = parse_rtp(source.next_packet()), parse_rtp(source.next_packet())
    assert first.payload == b"\xd5" * 160
    assert first.marker
    assert not second.marker
    assert (first.sequence, second.sequence) == (65535, 0)
    assert second.timestamp - first.timestamp == 160
    assert second.ssrc == 0x1234
    with pytest.raises(SipSyntaxError):
        SilenceSource(18, ssrc=1)


def test_rtp_parsing_handles_csrc_extension_and_padding() -> None:
    header = bytes([0x80 | 0x20 | 0x10 | 0x01, 0x00]) + b"\x00\x01" + b"\x00\x00\x00\x02"
    header += b"\x00\x00\x00\x03" + b"\x00\x00\x00\x04"  # ssrc, one csrc
    ext = b"\xbe\xde\x00\x01" + b"\x00\x00\x00\x00"
    data = header + ext + b"abc" + b"\x00\x02"
    p = parse_rtp(data)
    assert (p.sequence, p.timestamp, p.ssrc, p.payload) == (1, 2, 3, b"abc")
    for bad in (b"", b"\x40" + b"\x00" * 11, b"\x90" + b"\x00" * 11):
        with pytest.raises(SipSyntaxError):
            parse_rtp(bad)
    assert parse_rtp(bytes(RtpPacket(0, 1, 2, 3, b"x", marker=True))).marker


def test_each_dtmf_key_is_reported_once_even_when_its_end_is_lost() -> None:
    rx = DtmfReceiver(101)
    keys = []
    for packet in dtmf_packets("5", payload_type=101, ssrc=1, sequence=0, timestamp=800):
        keys += rx.feed(parse_rtp(packet))
    assert [(k.key, k.duration_ms, k.volume_dbm0) for k in keys] == [("5", 200, -10)]
    # '#' whose three end packets are all lost, then '1': both reported once.
    hash_packets = dtmf_packets("#", payload_type=101, ssrc=1, sequence=10, timestamp=4000)[:3]
    one = dtmf_packets("1", payload_type=101, ssrc=1, sequence=20, timestamp=8000)
    names = [k.key for p in [*hash_packets, *one] for k in rx.feed(parse_rtp(p))]
    assert names == ["#", "1"]
    assert rx.feed(RtpPacket(0, 1, 1, 1, b"\xff" * 160)) == []  # audio is not DTMF


def test_a_re_invite_mid_key_does_not_report_the_key_again() -> None:
    heard: list[tuple[str, str]] = []
    stream = _Stream("sip-1", lambda call_id, event: heard.append((call_id, event.key)))
    plan = MediaPlan("127.0.0.1", 6000, 0, "PCMU", 96, "sendrecv")
    stream.play(plan)
    two = dtmf_packets("2", payload_type=96, ssrc=1, sequence=0, timestamp=800)
    for packet in two[:4]:  # the first end packet: reported
        stream.datagram_received(packet, ("127.0.0.1", 6000))
    stream.play(MediaPlan("127.0.0.1", 6000, 0, "PCMU", 96, "sendonly"))  # we hold
    stream.play(plan)  # and resume, while the key's repeated ends still arrive
    for packet in two[4:]:
        stream.datagram_received(packet, ("127.0.0.1", 6000))
    for packet in dtmf_packets("3", payload_type=96, ssrc=1, sequence=10, timestamp=4000):
        stream.datagram_received(packet, ("127.0.0.1", 6000))
    assert heard == [("sip-1", "2"), ("sip-1", "3")]


def test_the_configured_codec_names_are_the_ones_sdp_speaks() -> None:
    assert set(SIP_CODECS) == set(STATIC_CODECS)


def test_a_format_with_unicode_digits_is_skipped_not_a_crash() -> None:
    offer = parse_sdp("v=0\r\nc=IN IP4 10.0.0.2\r\nm=audio 4000 RTP/AVP \u00b3 0\r\n".encode())
    _, plan = answer_offer(offer, "h", 1, ("PCMU",), session_id="1", version=1)
    assert plan.payload_type == 0


class Transport:
    """What a stream sends (a bad port raises as asyncio's does)."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple[str, int]]] = []

    def sendto(self, data: bytes, dest: tuple[str, int]) -> None:
        if not 0 <= dest[1] < 65536:
            raise OverflowError("port must be 0-65535.")
        self.sent.append((data, dest))


def test_a_stream_to_a_host_name_or_a_bad_port_sends_nothing_and_never_raises() -> None:
    stream = _Stream("c1", lambda call_id, event: None)
    stream.transport = transport = Transport()  # type: ignore[assignment]
    sent = transport.sent
    stream.play(MediaPlan("media.example.com", 4000, 0, "PCMU", None, "sendrecv"))
    stream.tick()  # a name would be resolved, blocking, on every packet: nothing is sent
    assert stream.dest is None
    assert sent == []
    stream.play(MediaPlan("10.0.0.2", 70000, 0, "PCMU", None, "sendrecv"))
    stream.tick()  # the fault stays with this call: the ticker of every call goes on
    stream.play(MediaPlan("10.0.0.2", 4000, 0, "PCMU", None, "sendrecv"))
    stream.tick()
    assert [dest for _, dest in sent] == [("10.0.0.2", 4000)]


SUITE = "AES_CM_128_HMAC_SHA1_80"


def peer_session(key: bytes, direction: int) -> pylibsrtp.Session:
    policy = pylibsrtp.Policy(key, direction, srtp_profile=SUITES[SUITE])
    return pylibsrtp.Session(policy)


def test_a_line_stream_with_srtp_keys_protects_its_silence_and_unprotects_dtmf() -> None:
    ours, theirs = new_key(), new_key()
    keys = base64.b64encode(ours).decode(), base64.b64encode(theirs).decode()
    keyed = MediaPlan("10.0.0.2", 4000, 0, "PCMU", 101, "sendrecv", SUITE, *keys)
    heard: list[str] = []
    stream = _Stream("c1", lambda call_id, event: heard.append(event.key))
    stream.transport = transport = Transport()  # type: ignore[assignment]
    stream.play(keyed)
    srtp = stream.srtp
    assert srtp is not None
    stream.tick()
    stream.tick()
    peer_in = peer_session(ours, pylibsrtp.Policy.SSRC_ANY_INBOUND)
    packets = [data for data, _ in transport.sent]
    assert len(packets) == 2
    assert all(len(p) == 12 + 160 + 10 for p in packets)  # the 80-bit tag appended
    plain = [parse_rtp(peer_in.unprotect(p)) for p in packets]
    assert [p.payload for p in plain] == [b"\xff" * 160] * 2  # PCMU silence, encrypted
    assert all(p[12:172] != b"\xff" * 160 for p in packets)

    peer_out = peer_session(theirs, pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
    press = dtmf_packets("5", payload_type=101, ssrc=9, sequence=100, timestamp=800)
    for packet in dtmf_packets("7", payload_type=101, ssrc=9, sequence=10, timestamp=80):
        stream.datagram_received(packet, ("10.0.0.2", 4000))  # plain RTP: not taken
    other = dtmf_packets("9", payload_type=101, ssrc=9, sequence=50, timestamp=400)[0]
    tampered = bytearray(peer_out.protect(other))
    tampered[20] ^= 1
    stream.datagram_received(bytes(tampered), ("10.0.0.2", 4000))
    assert heard == []
    assert srtp.garbage == 7
    protected = [peer_out.protect(p) for p in press]
    for packet in protected:
        stream.datagram_received(packet, ("10.0.0.2", 4000))
    stream.datagram_received(protected[-1], ("10.0.0.2", 4000))  # a replay
    assert heard == ["5"]
    assert (srtp.unprotected, srtp.garbage, srtp.protected) == (6, 8, 2)

    stream.play(dataclasses.replace(keyed, direction="recvonly"))  # held: same keys
    assert stream.srtp is srtp
    stream.play(dataclasses.replace(keyed, srtp_recv_key=base64.b64encode(new_key()).decode()))
    assert stream.srtp is not srtp  # the peer re-keyed
    stream.play(dataclasses.replace(keyed, srtp_suite=""))
    assert stream.srtp is None  # plain again


def test_a_line_stream_with_keys_it_cannot_take_is_silent_both_ways() -> None:
    heard: list[str] = []
    stream = _Stream("c1", lambda call_id, event: heard.append(event.key))
    stream.transport = transport = Transport()  # type: ignore[assignment]
    stream.play(MediaPlan("10.0.0.2", 4000, 0, "PCMU", 101, "sendrecv", SUITE, "c2hvcnQ=",
                          base64.b64encode(new_key()).decode()))  # fmt: skip
    stream.tick()
    for packet in dtmf_packets("5", payload_type=101, ssrc=9, sequence=1, timestamp=8):
        stream.datagram_received(packet, ("10.0.0.2", 4000))
    assert (transport.sent, heard, stream.srtp) == ([], [], None)  # never plain instead
