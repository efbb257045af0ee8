"""SRTP keyed by SDES (RFC 4568) in SDP offer/answer: the policy matrix (off, offer,
require), the TLS-only rule, and the user agent's offers and answers carrying keys."""

from __future__ import annotations

import base64
import dataclasses

import pytest
from pydantic import ValidationError

from cti.config import SipLineSettings
from cti.protocol import PhoneRefused
from telephony_adapters.media.srtp import Crypto, format_crypto, new_key, parse_crypto
from telephony_adapters.sipline.line import SipLine
from telephony_adapters.sipline.message import Request, Response
from telephony_adapters.sipline.params import SipLineParams
from telephony_adapters.sipline.sdp import (
    MediaPlan,
    NotAcceptableError,
    Session,
    SrtpPolicy,
    accept_answer,
    answer_offer,
    make_offer,
    parse_sdp,
    secure_offer,
)
from telephony_adapters.sipline.useragent import MediaStart, UserAgent
from telephony_adapters.sipline.voice import SipVoice
from tests.telephony_adapters.sipline.peer import (
    PEER,
    invite,
    make_ua,
    of_type,
    reply,
    request,
    sent,
    statuses,
)
from tests.telephony_adapters.sipline.test_voice import (  # noqa: F401 (the fixture)
    CALL,
    RING,
    FakeLine,
    media,
    voiced,
)

KEY = new_key()
CODECS = ("PCMU", "PCMA")


def peer_offer(proto: str = "RTP/AVP", *crypto: str) -> Session:
    lines = "".join(f"a=crypto:{c}\r\n" for c in crypto)
    return parse_sdp(
        b"v=0\r\no=peer 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n"
        + f"m=audio 4000 {proto} 0 101\r\na=rtpmap:101 telephone-event/8000\r\n{lines}".encode()
    )


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


CRYPTO_80 = format_crypto(Crypto(1, "AES_CM_128_HMAC_SHA1_80", KEY))
CRYPTO_32 = format_crypto(Crypto(7, "AES_CM_128_HMAC_SHA1_32", KEY))
MKI = CRYPTO_80 + "|2^31|1:4"


def answer(offer: Session, srtp: SrtpPolicy) -> tuple[Session, MediaPlan]:
    return answer_offer(offer, "10.0.0.1", 10000, CODECS, session_id="1", version=1, srtp=srtp)


# --- answers: the policy matrix ------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "tls", "offer", "proto", "suite"),
    [
        ("off", True, peer_offer("RTP/AVP", CRYPTO_80), "RTP/AVP", ""),  # declined: plain
        ("off", False, peer_offer(), "RTP/AVP", ""),
        ("offer", True, peer_offer("RTP/AVP", CRYPTO_80), "RTP/AVP", "AES_CM_128_HMAC_SHA1_80"),
        (
            "offer",
            True,
            peer_offer("RTP/SAVP", MKI, CRYPTO_32),
            "RTP/SAVP",
            "AES_CM_128_HMAC_SHA1_32",
        ),
        ("offer", True, peer_offer(), "RTP/AVP", ""),
        ("offer", False, peer_offer("RTP/AVP", CRYPTO_80), "RTP/AVP", ""),  # not over TLS
        ("require", True, peer_offer("RTP/AVP", CRYPTO_80), "RTP/AVP", "AES_CM_128_HMAC_SHA1_80"),
        ("require", True, peer_offer("RTP/SAVP", CRYPTO_80), "RTP/SAVP", "AES_CM_128_HMAC_SHA1_80"),
    ],
)
def test_an_offer_is_answered_as_the_policy_says(
    mode: str, tls: bool, offer: Session, proto: str, suite: str
) -> None:
    ours, plan = answer(offer, SrtpPolicy(mode, tls))
    [media] = ours.media
    assert media.proto == proto
    assert plan.srtp_suite == suite
    if not suite:
        assert media.crypto == []
        assert (plan.srtp_send_key, plan.srtp_recv_key) == ("", "")
        return
    [line] = media.crypto
    mine = parse_crypto(line)
    theirs = next(parse_crypto(c) for c in offer.media[0].crypto if suite in c and "|" not in c)
    assert (mine.tag, mine.suite) == (theirs.tag, theirs.suite)  # the offer's tag answered
    assert mine.key != KEY  # a key of our own
    assert (plan.srtp_send_key, plan.srtp_recv_key) == (b64(mine.key), b64(KEY))
    assert f"a=crypto:{line}\r\n".encode() in bytes(ours)


@pytest.mark.parametrize(
    ("mode", "tls", "offer", "why"),
    [
        ("off", True, peer_offer("RTP/SAVP", CRYPTO_80), "requires SRTP (RTP/SAVP)"),
        ("offer", False, peer_offer("RTP/SAVP", CRYPTO_80), "only over TLS"),
        ("require", False, peer_offer("RTP/AVP", CRYPTO_80), "only over TLS"),
        ("require", True, peer_offer(), "no usable crypto line: no crypto attribute"),
        ("require", True, peer_offer("RTP/AVP", MKI), "MKI '1:4' not supported"),
        (
            "offer",
            True,
            peer_offer("RTP/SAVP", "1 F8_128_HMAC_SHA1_80 inline:x"),
            "suite 'F8_128_HMAC_SHA1_80' not supported",
        ),
    ],
)
def test_an_offer_srtp_cannot_be_had_for_is_not_acceptable(
    mode: str, tls: bool, offer: Session, why: str
) -> None:
    with pytest.raises(NotAcceptableError, match=why.replace("(", r"\(").replace(")", r"\)")):
        answer(offer, SrtpPolicy(mode, tls))


# --- our offers and their answers ----------------------------------------------------


def our_offer(srtp: SrtpPolicy) -> Session:
    offer = make_offer("10.0.0.1", 10000, CODECS, session_id="1", version=1)
    secure_offer(offer, srtp)
    return offer


def test_our_offer_carries_a_key_per_suite_only_over_tls_and_savp_when_required() -> None:
    assert our_offer(SrtpPolicy("off", True)).media[0].crypto == []
    assert our_offer(SrtpPolicy("offer", False)).media[0].crypto == []
    best_effort = our_offer(SrtpPolicy("offer", True)).media[0]
    assert best_effort.proto == "RTP/AVP"
    tags = [parse_crypto(c) for c in best_effort.crypto]
    assert [(c.tag, c.suite) for c in tags] == [
        (1, "AES_CM_128_HMAC_SHA1_80"),
        (2, "AES_CM_128_HMAC_SHA1_32"),
    ]
    assert tags[0].key != tags[1].key
    required = our_offer(SrtpPolicy("require", True))
    assert required.media[0].proto == "RTP/SAVP"
    again = required.media[0].crypto[:]
    secure_offer(required, SrtpPolicy("require", True))  # already keyed: left alone
    assert required.media[0].crypto == again
    assert b"m=audio 10000 RTP/SAVP 0 8 101\r\n" in bytes(required)


def peer_answer(proto: str, *crypto: str) -> Session:
    return peer_offer(proto, *crypto)


def test_the_peers_answer_gives_the_plan_its_keys() -> None:
    offer = our_offer(SrtpPolicy("offer", True))
    ours = {c.tag: c for c in map(parse_crypto, offer.media[0].crypto)}
    plan = accept_answer(offer, peer_answer("RTP/AVP", format_crypto(Crypto(2,
                         "AES_CM_128_HMAC_SHA1_32", KEY))))  # fmt: skip
    assert plan.srtp_suite == "AES_CM_128_HMAC_SHA1_32"
    assert (plan.srtp_send_key, plan.srtp_recv_key) == (b64(ours[2].key), b64(KEY))
    assert accept_answer(offer, peer_answer("RTP/AVP")).srtp_suite == ""  # best effort: plain


@pytest.mark.parametrize(
    ("answer_crypto", "why"),
    [
        ((), "no crypto line for our RTP/SAVP offer"),
        ((format_crypto(Crypto(5, "AES_CM_128_HMAC_SHA1_80", KEY)),), "tag 5 .* was not offered"),
        ((format_crypto(Crypto(1, "AES_CM_128_HMAC_SHA1_32", KEY)),), "tag 1 .* was not offered"),
        (("1 AES_CM_128_HMAC_SHA1_80 inline:AAAA",), "key is 3 bytes"),
    ],
)
def test_an_answer_without_usable_crypto_to_a_required_offer_is_refused(
    answer_crypto: tuple[str, ...], why: str
) -> None:
    offer = our_offer(SrtpPolicy("require", True))
    with pytest.raises(NotAcceptableError, match=why):
        accept_answer(offer, peer_answer("RTP/SAVP", *answer_crypto))


def test_a_new_offer_keeps_our_key_and_a_new_key_from_the_peer_is_taken() -> None:
    first, plan = answer(peer_offer("RTP/SAVP", CRYPTO_80), SrtpPolicy("require", True))
    rekeyed = format_crypto(Crypto(1, "AES_CM_128_HMAC_SHA1_80", other := new_key()))
    again, plan2 = answer(peer_offer("RTP/SAVP", rekeyed), SrtpPolicy("require", True, plan))
    assert again.media[0].crypto == first.media[0].crypto  # ours kept
    assert (plan2.srtp_send_key, plan2.srtp_recv_key) == (plan.srtp_send_key, b64(other))
    hold = our_offer(SrtpPolicy("require", True, plan2))  # our re-INVITE: the same key
    [kept] = map(parse_crypto, hold.media[0].crypto)
    assert (kept.suite, b64(kept.key)) == (plan.srtp_suite, plan.srtp_send_key)
    # The peer moves to another suite: our key for it is a new one.
    moved, plan3 = answer(peer_offer("RTP/SAVP", CRYPTO_32), SrtpPolicy("require", True, plan2))
    [line] = map(parse_crypto, moved.media[0].crypto)
    assert (line.tag, line.suite) == (7, "AES_CM_128_HMAC_SHA1_32")
    assert plan3.srtp_send_key == b64(line.key) != plan.srtp_send_key


# --- the user agent ------------------------------------------------------------------

TLS_OFFER = bytes(peer_offer("RTP/SAVP", CRYPTO_80))


def tls_invite(**kw: object) -> bytes:
    return invite(**kw).replace(b"SIP/2.0/UDP", b"SIP/2.0/TLS")


def answered(ua: UserAgent, data: bytes) -> tuple[Response, MediaStart]:
    out = ua.receive(data, PEER, 0.0)
    assert statuses(out) == [100, 180]
    call_id = next(e.call_id for e in out if hasattr(e, "call_id") and e.call_id)
    [ok] = sent(ua.answer(call_id, 10000, 0.1))
    assert isinstance(ok, Response)
    assert ok.status == 200
    out = ua.receive(request("ACK", to_tag=ok.to.tag, branch="z9hG4bKack"), PEER, 0.2)
    [media] = of_type(out, MediaStart)
    return ok, media


def test_an_invite_over_tls_with_crypto_is_answered_with_our_key() -> None:
    ua = make_ua(srtp="require")
    ok, media = answered(ua, tls_invite(body=TLS_OFFER))
    [line] = parse_sdp(ok.body).media[0].crypto
    assert media.plan.srtp_suite == "AES_CM_128_HMAC_SHA1_80"
    assert media.plan.srtp_recv_key == b64(KEY)
    assert media.plan.srtp_send_key == b64(parse_crypto(line).key)
    assert b64(KEY) not in repr(media)  # keys stay out of logs


@pytest.mark.parametrize(
    ("mode", "data", "why"),
    [
        ("require", invite(body=TLS_OFFER), "SRTP keys (SDES) are taken only over TLS"),
        ("require", tls_invite(), "SRTP required and no usable crypto line"),
        ("off", tls_invite(body=TLS_OFFER), "requires SRTP (RTP/SAVP) and srtp is off"),
    ],
)
def test_an_invite_without_acceptable_crypto_gets_488_saying_why(
    mode: str, data: bytes, why: str
) -> None:
    ua = make_ua(srtp=mode)
    out = ua.receive(data, PEER, 0.0)
    [refusal] = sent(out)
    assert isinstance(refusal, Response)
    assert refusal.status == 488
    assert why in (refusal.headers.get("Warning") or "")


def test_an_sdes_offer_over_udp_is_answered_plain_under_offer() -> None:
    ua = make_ua(srtp="offer")
    ok, media = answered(ua, invite(body=bytes(peer_offer("RTP/AVP", CRYPTO_80))))
    assert parse_sdp(ok.body).media[0].crypto == []
    assert media.plan.srtp_suite == ""


def dial(ua: UserAgent, uri: str) -> Request:
    [inv] = sent(ua.dial(uri, "c1", 20000, now=0.0))
    assert isinstance(inv, Request)
    return inv


def test_a_call_we_place_over_tls_offers_keys_and_takes_the_answers() -> None:
    ua = make_ua(srtp="require")
    inv = dial(ua, "sips:800@10.0.0.2:5062")
    offered = parse_sdp(inv.body).media[0]
    assert offered.proto == "RTP/SAVP"
    mine = parse_crypto(offered.crypto[0])
    theirs = format_crypto(Crypto(mine.tag, mine.suite, KEY))
    out = ua.receive(reply(inv, 200, body=bytes(peer_answer("RTP/SAVP", theirs))), PEER, 0.1)
    [media] = of_type(out, MediaStart)
    assert (media.plan.srtp_send_key, media.plan.srtp_recv_key) == (b64(mine.key), b64(KEY))
    # Hold: the re-INVITE's offer keeps our key.
    [reinvite] = sent(ua.hold("c1", 1.0))
    assert isinstance(reinvite, Request)
    assert parse_sdp(reinvite.body).media[0].crypto == [offered.crypto[0]]


def test_a_call_we_place_without_tls_offers_no_keys() -> None:
    for uri in ("sip:800@10.0.0.2:5062", "sip:800@10.0.0.2:5062;transport=tcp"):
        offered = parse_sdp(dial(make_ua(srtp="offer"), uri).body).media[0]
        assert (offered.proto, offered.crypto) == ("RTP/AVP", [])
    tls = parse_sdp(dial(make_ua(srtp="offer"), "sip:800@10.0.0.2;transport=tls").body)
    assert tls.media[0].proto == "RTP/AVP"
    assert len(tls.media[0].crypto) == 2


def test_a_plain_answer_to_our_required_offer_ends_the_call_with_488() -> None:
    ua = make_ua(srtp="require")
    inv = dial(ua, "sips:800@10.0.0.2:5062")
    out = ua.receive(reply(inv, 200, body=bytes(peer_answer("RTP/AVP"))), PEER, 0.1)
    assert statuses(out)[:2] == ["ACK", "BYE"]
    assert not of_type(out, MediaStart)


# --- configuration -------------------------------------------------------------------


@pytest.mark.parametrize("key", ["srtp", "phone_srtp"])
def test_srtp_on_a_line_without_tls_is_a_configuration_error(key: str) -> None:
    with pytest.raises(ValidationError, match=f"{key} = 'offer' needs tls in transports"):
        SipLineSettings(name="sip", transports=("udp", "tcp"), **{key: "offer"})
    ok = SipLineSettings(name="sip", transports=("udp", "tls"), **{key: "require"})
    assert getattr(ok, key) == "require"
    with pytest.raises(ValidationError, match="'off', 'offer' or 'require'"):
        SipLineSettings(name="sip", transports=("tls",), **{key: "yes"})


def test_srtp_on_a_trunk_line_without_a_voice_path_is_taken() -> None:
    line = SipLine(SipLineParams(name="sip", transports=("tls",), srtp="require"))
    assert not line.capabilities.carries_voice  # its own streams protect (test_media.py)


def test_an_invite_without_offer_over_tls_gets_our_keys_and_the_ack_gives_theirs() -> None:
    ua = make_ua(srtp="offer")
    out = ua.receive(tls_invite(body=b""), PEER, 0.0)
    call_id = next(e.call_id for e in out if hasattr(e, "call_id") and e.call_id)
    [ok] = sent(ua.answer(call_id, 10000, 0.1))
    assert isinstance(ok, Response)
    offered = parse_sdp(ok.body).media[0]
    assert offered.proto == "RTP/AVP"
    mine = parse_crypto(offered.crypto[1])
    theirs = format_crypto(Crypto(mine.tag, mine.suite, KEY))
    ack = request("ACK", to_tag=ok.to.tag, branch="z9hG4bKack", body=bytes(peer_answer(
        "RTP/AVP", theirs))).replace(b"SIP/2.0/UDP", b"SIP/2.0/TLS")  # fmt: skip
    [media] = of_type(ua.receive(ack, PEER, 0.2), MediaStart)
    assert media.plan.srtp_suite == "AES_CM_128_HMAC_SHA1_32"
    assert (media.plan.srtp_send_key, media.plan.srtp_recv_key) == (b64(mine.key), b64(KEY))


# --- the voice: the relay leg follows the plan's keys ---------------------------------


async def test_the_callers_relay_leg_keeps_re_keys_and_drops_srtp_as_the_plan_says(
    voiced: tuple[SipVoice, FakeLine],  # noqa: F811 (the fixture)
) -> None:
    voice, _ = voiced
    port = await voice.open(CALL)
    suite = "AES_CM_128_HMAC_SHA1_80"
    keyed = dataclasses.replace(media(), srtp_suite=suite, srtp_send_key=b64(KEY),
                                srtp_recv_key=b64(other := new_key()))  # fmt: skip
    voice.media_start(MediaStart(CALL, port, keyed))
    first = voice.relay.srtp_of(CALL)
    assert first is not None
    assert first.same_keys(suite, KEY, other)
    voice.media_start(MediaStart(CALL, port, dataclasses.replace(keyed, direction="sendonly")))
    assert voice.relay.srtp_of(CALL) is first  # a hold: the same context goes on
    rekeyed = dataclasses.replace(keyed, srtp_recv_key=b64(new := new_key()))
    voice.media_start(MediaStart(CALL, port, rekeyed))
    second = voice.relay.srtp_of(CALL)
    assert second is not None
    assert second is not first
    assert second.same_keys(suite, KEY, new)
    voice.media_start(MediaStart(CALL, port, media()))
    assert voice.relay.srtp_of(CALL) is None


async def test_keys_the_relay_cannot_take_end_the_phones_leg_not_the_engine(
    voiced: tuple[SipVoice, FakeLine],  # noqa: F811 (the fixture)
) -> None:
    voice, line = voiced
    await voice.plan_audio(CALL, RING, live=True)
    [(leg, *_)] = line.rung
    bad = dataclasses.replace(media(), srtp_suite="AES_CM_128_HMAC_SHA1_80",
                              srtp_send_key=b64(KEY), srtp_recv_key="AAAA")  # fmt: skip
    voice.media_start(MediaStart(leg, voice.relay.port_of(leg), bad))
    assert leg in line.ended
    [refused] = line.events
    assert isinstance(refused, PhoneRefused)
    assert "SRTP keys not usable" in refused.reason


def test_an_invite_with_replaces_gets_keys_over_tls_and_488_over_udp_under_require() -> None:
    ua = make_ua(srtp="require")
    call_id, tag = connect_tls(ua)
    headers = [f"Replaces: call-1;to-tag={tag};from-tag=ft"]
    plain_hop = invite(call_id="new-1", from_tag="nt", branch="z9hG4bKnew", headers=headers,
                       body=TLS_OFFER)  # fmt: skip
    [refusal] = sent(ua.receive(plain_hop, PEER, 2.0))
    assert isinstance(refusal, Response)
    assert refusal.status == 488
    assert "only over TLS" in (refusal.headers.get("Warning") or "")
    assert ua.call_state(call_id) == "confirmed"  # the call goes on as it was
    tls = plain_hop.replace(b"SIP/2.0/UDP", b"SIP/2.0/TLS").replace(b"z9hG4bKnew", b"z9hG4bKn2")
    ok = sent(ua.receive(tls, PEER, 2.1))[0]
    assert isinstance(ok, Response)
    assert ok.status == 200
    [line] = parse_sdp(ok.body).media[0].crypto
    assert parse_crypto(line).tag == 1


def connect_tls(ua: UserAgent) -> tuple[str, str]:
    """An inbound call over TLS with SRTP, answered and ACKed: (call id, our tag)."""
    ok, media = answered(ua, tls_invite(body=TLS_OFFER))
    assert media.plan.srtp_suite
    return media.call_id, ok.to.tag
