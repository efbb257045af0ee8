"""SRTP per leg (telephony_adapters/media/srtp.py): protect/unprotect against pylibsrtp,
tampered and replayed packets dropped and counted, a=crypto read and written."""

from __future__ import annotations

import base64
import struct

import pylibsrtp
import pytest

from telephony_adapters.media import g711
from telephony_adapters.media.player import ToneSource
from telephony_adapters.media.relay import MediaRelay
from telephony_adapters.media.srtp import (
    SUITES,
    Crypto,
    CryptoError,
    SrtpLeg,
    choose_crypto,
    format_crypto,
    new_key,
    parse_crypto,
)
from telephony_adapters.sipline.rtp import RtpPacket
from tests.audio import tone_frame
from tests.harness import until
from tests.telephony_adapters.media.test_relay import free_range, phone

KEY = bytes(range(30))
B64 = base64.b64encode(KEY).decode()


def rtp(seq: int, payload: bytes = b"\xd5" * 160, ssrc: int = 0x1234) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq, seq * 160, ssrc) + payload


@pytest.mark.parametrize("suite", list(SUITES))
def test_a_leg_and_pylibsrtp_understand_each_other(suite: str) -> None:
    ours, theirs = new_key(), new_key()
    leg = SrtpLeg(suite, ours, theirs)
    profile = SUITES[suite]
    peer_in = pylibsrtp.Session(
        pylibsrtp.Policy(ours, pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=profile)
    )
    peer_out = pylibsrtp.Session(
        pylibsrtp.Policy(theirs, pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile)
    )
    sent = leg.protect(rtp(1))
    assert sent is not None
    assert sent[12:172] != rtp(1)[12:]
    assert len(sent) == 172 + (10 if suite.endswith("_80") else 4)
    assert peer_in.unprotect(sent) == rtp(1)
    assert leg.unprotect(peer_out.protect(rtp(7))) == rtp(7)
    assert (leg.protected, leg.unprotected, leg.garbage) == (1, 1, 0)


def test_tampered_replayed_plain_and_short_packets_are_dropped_and_counted() -> None:
    a_key, b_key = new_key(), new_key()
    a = SrtpLeg("AES_CM_128_HMAC_SHA1_80", a_key, b_key)
    b = SrtpLeg("AES_CM_128_HMAC_SHA1_80", b_key, a_key)
    first = a.protect(rtp(1))
    assert first is not None
    assert b.unprotect(first) == rtp(1)
    assert b.unprotect(first) is None  # replayed
    tampered = bytearray(a.protect(rtp(2)) or b"")
    tampered[20] ^= 0x01
    assert b.unprotect(bytes(tampered)) is None
    assert b.unprotect(rtp(3)) is None  # plain RTP: no valid tag
    assert b.unprotect(b"\x80\x00") is None
    assert b.unprotect(b"\x00" * 40) is None  # not RTP version 2
    wrong = SrtpLeg("AES_CM_128_HMAC_SHA1_80", new_key(), a_key).protect(rtp(4))
    assert wrong is not None
    assert b.unprotect(wrong) is None
    assert (b.unprotected, b.garbage) == (1, 6)
    assert b.unprotect(a.protect(rtp(5)) or b"") == rtp(5)  # still working after all that


def test_a_packet_that_cannot_be_protected_is_counted_not_raised() -> None:
    leg = SrtpLeg("AES_CM_128_HMAC_SHA1_32", new_key(), new_key())
    assert leg.protect(b"\x80") is None
    assert leg.send_failures == 1


def test_a_leg_needs_a_known_suite_and_30_byte_keys() -> None:
    with pytest.raises(CryptoError, match="suite 'F8_128_HMAC_SHA1_80' not supported"):
        SrtpLeg("F8_128_HMAC_SHA1_80", KEY, KEY)
    with pytest.raises(CryptoError, match="the peer's SRTP key is 16 bytes"):
        SrtpLeg("AES_CM_128_HMAC_SHA1_80", KEY, KEY[:16])


def test_crypto_round_trip_and_lifetimes() -> None:
    crypto = Crypto(1, "AES_CM_128_HMAC_SHA1_80", KEY)
    assert format_crypto(crypto) == f"1 AES_CM_128_HMAC_SHA1_80 inline:{B64}"
    assert parse_crypto(format_crypto(crypto)) == crypto
    assert parse_crypto(f"2 AES_CM_128_HMAC_SHA1_32 inline:{B64}|2^31") == Crypto(
        2, "AES_CM_128_HMAC_SHA1_32", KEY
    )
    assert parse_crypto(f"3 AES_CM_128_HMAC_SHA1_80 inline:{B64}|4294967296").tag == 3
    assert "KEY" not in repr(crypto)
    assert B64 not in repr(crypto)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("1 AES_CM_128_HMAC_SHA1_80", "needs tag, suite and key"),
        (f"x AES_CM_128_HMAC_SHA1_80 inline:{B64}", "tag 'x' is not 1-9 digits"),
        (f"1234567890 AES_CM_128_HMAC_SHA1_80 inline:{B64}", "is not 1-9 digits"),
        (f"1 AEAD_AES_256_GCM inline:{B64}", "suite 'AEAD_AES_256_GCM' not supported"),
        (f"1 AES_CM_128_HMAC_SHA1_80 uri:{B64}", "key method 'uri' is not inline"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:@@@@", "is not base64"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:AAAA", "key is 3 bytes"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{B64}|2^20", "below 2^31 packets"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{B64}|1:4", "MKI '1:4' not supported"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{B64}|2^31|1:4", "MKI"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{B64}|never", "lifetime 'never' is not a number"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{B64};inline:{B64}", "several keys"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{B64} UNENCRYPTED_SRTP", "session parameters"),
    ],
)
def test_a_crypto_line_we_cannot_use_is_refused_saying_why(value: str, why: str) -> None:
    with pytest.raises(CryptoError, match=why.replace("^", r"\^").replace("|", r"\|")):
        parse_crypto(value)


def test_the_first_usable_crypto_line_is_chosen_and_refusals_are_named() -> None:
    mki = f"1 AES_CM_128_HMAC_SHA1_80 inline:{B64}|2^31|1:4"
    ok = f"2 AES_CM_128_HMAC_SHA1_32 inline:{B64}"
    assert choose_crypto([mki, ok]) == (Crypto(2, "AES_CM_128_HMAC_SHA1_32", KEY), "")
    chosen, why = choose_crypto([mki, "9 NULL inline:x"])
    assert chosen is None
    assert "MKI" in why
    assert "'NULL' not supported" in why
    assert choose_crypto([]) == (None, "no crypto attribute")


async def test_the_relay_carries_srtp_on_one_leg_and_plain_rtp_on_the_other() -> None:
    a, b = await phone(), await phone()
    a_key, relay_key = new_key(), new_key()
    suite = "AES_CM_128_HMAC_SHA1_80"
    a_srtp = SrtpLeg(suite, a_key, relay_key)  # the phone on the secure side
    low, high = free_range(40)
    async with MediaRelay("127.0.0.1", low, high) as relay:
        port_a = await relay.open_leg("a", payload_type=0, remote=a.addr)
        port_b = await relay.open_leg("b", payload_type=0, remote=b.addr)
        leg = SrtpLeg(suite, relay_key, a_key)
        relay.set_srtp("a", leg)
        assert relay.srtp_of("a") is leg
        assert relay.srtp_of("b") is None
        relay.connect("a", "b")
        sent = [g711.encode(tone_frame(1000, i), 0) for i in range(10)]
        protected = [a_srtp.protect(bytes(RtpPacket(0, 9 + i, 160 * i, 0xA, s))) for i, s in
                     enumerate(sent)]  # fmt: skip
        for i, data in enumerate(protected):
            assert data is not None
            a.send(data, port_a)
            if i == 3:
                a.send(data, port_a)  # a replay
                a.send(data[:20] + bytes([data[20] ^ 1]) + data[21:], port_a)  # tampered
        a.send(bytes(RtpPacket(0, 99, 0, 0xA, sent[0])), port_a)  # plain RTP on an SRTP leg
        b.send(bytes(RtpPacket(0, 5, 0, 0xB, b"\x5a" * 160)), port_b)
        await until(lambda: len(b.packets(0)) >= 10 and leg.garbage == 3 and len(a.got) > 0)
        heard = [p.payload for p in b.packets(0) if p.payload in set(sent)]
        assert heard == sent  # b hears a's tone in clear, each frame once
        assert (leg.unprotected, leg.garbage) == (10, 3)
        # What a gets is encrypted: not the plain frame, and it opens with a's key only.
        first = bytes(a.got[0][0])  # the header is in clear: the packet as it came
        assert b"\x5a" * 160 not in first
        assert len(first) == 12 + 160 + 10
        assert a_srtp.unprotect(first) is not None
        assert relay.core.dropped == {}
        relay.close_leg("a")
        assert relay.srtp_of("a") is None


async def test_a_packet_that_fails_authentication_never_latches_the_legs_address() -> None:
    forger, peer = await phone(), await phone()
    key, relay_key = new_key(), new_key()
    suite = "AES_CM_128_HMAC_SHA1_32"
    low, high = free_range(20)
    async with MediaRelay("127.0.0.1", low, high) as relay:
        port = await relay.open_leg("a", payload_type=0, latch=True)
        leg = SrtpLeg(suite, relay_key, key)
        relay.set_srtp("a", leg)
        relay.play("a", ToneSource(1000))
        forged = SrtpLeg(suite, new_key(), new_key()).protect(rtp(1))
        assert forged is not None
        forger.send(forged, port)
        await until(lambda: leg.garbage == 1)
        genuine = SrtpLeg(suite, key, relay_key).protect(rtp(2))
        assert genuine is not None
        peer.send(genuine, port)
        await until(lambda: len(peer.got) > 0)
        assert forger.got == []  # the leg answers only where authentic packets come from
        assert leg.unprotected == 1
