"""SRTP (RFC 3711) for one media leg, keyed by SDES (RFC 4568), sans-I/O, over pylibsrtp.

:class:`SrtpLeg` protects what the relay sends on a leg with our master key and
unprotects what it receives with the peer's; a packet that fails authentication or the
replay check is dropped and counted (``garbage``), never raised. RTCP is not served by
the relay, so only RTP is transformed.

The SDP side: :func:`parse_crypto` and :func:`format_crypto` read and write the value of
an ``a=crypto:`` attribute (``<tag> <suite> inline:<key||salt base64>[|lifetime][|MKI:len]``);
:func:`choose_crypto` picks the first acceptable one of an offer. Suites:
``AES_CM_128_HMAC_SHA1_80`` and ``AES_CM_128_HMAC_SHA1_32``, each with a 30-byte master
key and salt. An MKI is refused (one key per direction and leg), and so is a lifetime
shorter than 2^31 packets (we never re-key in mid-stream).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass, field

import pylibsrtp

SUITES: dict[str, int] = {
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}
"""The crypto suites we speak, in our order of preference."""
KEY_BYTES = 30
"""Master key (16) and master salt (14) of both suites."""
MIN_LIFETIME = 2**31
"""A key that must be replaced sooner than this many packets is refused (RFC 3711's
default is 2^48 for SRTP; we never re-key within a call's stream)."""
MAX_TAG = 999_999_999
"""RFC 4568 §9.1: a tag is 1*9DIGIT."""


class CryptoError(ValueError):
    """An ``a=crypto`` line we cannot use (the message says why)."""


@dataclass(frozen=True, slots=True)
class Crypto:
    """One ``a=crypto`` attribute: its tag, suite and master key+salt."""

    tag: int
    suite: str
    key: bytes = field(repr=False)


def new_key() -> bytes:
    """A fresh master key and salt."""
    return secrets.token_bytes(KEY_BYTES)


def format_crypto(crypto: Crypto) -> str:
    """The attribute's value: ``1 AES_CM_128_HMAC_SHA1_80 inline:<base64>``."""
    return f"{crypto.tag} {crypto.suite} inline:{base64.b64encode(crypto.key).decode()}"


def parse_crypto(value: str) -> Crypto:
    """Read the value of an ``a=crypto:`` attribute (what follows ``crypto:``). Raises
    :class:`CryptoError` naming what is wrong or unsupported."""
    parts = value.split()
    if len(parts) < 3:
        raise CryptoError(f"crypto attribute needs tag, suite and key: {value[:80]!r}")
    tag_text, suite, params = parts[0], parts[1], parts[2]
    if not (tag_text.isascii() and tag_text.isdigit() and len(tag_text) <= 9):
        raise CryptoError(f"crypto tag {tag_text[:20]!r} is not 1-9 digits")
    if suite not in SUITES:
        raise CryptoError(f"crypto suite {suite[:40]!r} not supported ({', '.join(SUITES)})")
    if len(parts) > 3:
        raise CryptoError(f"session parameters {' '.join(parts[3:])[:40]!r} not supported")
    if ";" in params:
        raise CryptoError("several keys in one crypto attribute are not supported")
    method, _, key_info = params.partition(":")
    if method != "inline":
        raise CryptoError(f"key method {method[:20]!r} is not inline")
    key_text, *rest = key_info.split("|")
    try:
        key = base64.b64decode(key_text, validate=True)
    except (binascii.Error, ValueError):
        raise CryptoError(f"crypto key {key_text[:12]!r}... is not base64") from None
    if len(key) != KEY_BYTES:
        raise CryptoError(f"crypto key is {len(key)} bytes, {suite} needs {KEY_BYTES}")
    for extra in rest:
        _key_option(extra)
    return Crypto(int(tag_text), suite, key)


def _key_option(text: str) -> None:
    """A lifetime we accept, else CryptoError (an MKI, a short or bad lifetime)."""
    if ":" in text:
        raise CryptoError(f"MKI {text[:20]!r} not supported (one key per direction)")
    lifetime = text[2:] if text.startswith("2^") else text
    if not (lifetime.isascii() and lifetime.isdigit() and len(lifetime) <= 20):
        raise CryptoError(f"crypto key lifetime {text[:20]!r} is not a number")
    packets = 2 ** int(lifetime) if text.startswith("2^") else int(lifetime)
    if packets < MIN_LIFETIME:
        raise CryptoError(f"crypto key lifetime {text} is below 2^31 packets (no re-keying)")


def choose_crypto(values: list[str]) -> tuple[Crypto | None, str]:
    """The first ``a=crypto`` value we can use, or None and why none was (the reasons of
    the lines refused, or that there were none)."""
    reasons: list[str] = []
    for value in values:
        try:
            return parse_crypto(value), ""
        except CryptoError as exc:
            reasons.append(str(exc))
    return None, "; ".join(reasons) if reasons else "no crypto attribute"


def keyed(suite: str, send_key: str, recv_key: str, current: SrtpLeg | None) -> SrtpLeg | None:
    """The transform for keys agreed in SDP (base64, as a media plan holds them): None
    without a suite (plain RTP), ``current`` when its keys did not change (a hold keeps
    the stream's replay window and counters), else a new one. Raises
    :class:`CryptoError` for keys the transform cannot take."""
    if not suite:
        return None
    try:
        send = base64.b64decode(send_key, validate=True)
        recv = base64.b64decode(recv_key, validate=True)
    except (binascii.Error, ValueError):
        raise CryptoError("SRTP key of the media plan is not base64") from None
    if current is not None and current.same_keys(suite, send, recv):
        return current
    return SrtpLeg(suite, send, recv)


class SrtpLeg:
    """The SRTP transform of one leg: protect with ``send_key``, unprotect with
    ``recv_key``, both of ``suite``."""

    def __init__(self, suite: str, send_key: bytes, recv_key: bytes) -> None:
        profile = SUITES.get(suite)
        if profile is None:
            raise CryptoError(f"crypto suite {suite!r} not supported")
        for what, key in (("our", send_key), ("the peer's", recv_key)):
            if len(key) != KEY_BYTES:
                raise CryptoError(f"{what} SRTP key is {len(key)} bytes, not {KEY_BYTES}")
        self.suite, self.send_key, self.recv_key = suite, send_key, recv_key
        out = pylibsrtp.Policy(send_key, pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile)
        out.allow_repeat_tx = True  # a frame sent again (same sequence) is not an error
        self._out = pylibsrtp.Session(out)
        inbound = pylibsrtp.Policy(recv_key, pylibsrtp.Policy.SSRC_ANY_INBOUND,
                                   srtp_profile=profile)  # fmt: skip
        self._in = pylibsrtp.Session(inbound)
        self.protected = 0
        self.unprotected = 0
        """Packets received that authenticated."""
        self.garbage = 0
        """Packets received and dropped: not SRTP, a bad tag, a replay."""
        self.send_failures = 0

    def same_keys(self, suite: str, send_key: bytes, recv_key: bytes) -> bool:
        return (suite, send_key, recv_key) == (self.suite, self.send_key, self.recv_key)

    def protect(self, packet: bytes) -> bytes | None:
        """The SRTP packet of an RTP packet; None (counted) if it is not RTP."""
        try:
            out = self._out.protect(packet)
        except (pylibsrtp.Error, ValueError, TypeError):
            self.send_failures += 1
            return None
        self.protected += 1
        return out

    def unprotect(self, packet: bytes) -> bytes | None:
        """The RTP packet of an SRTP packet; None (counted in ``garbage``) if it fails
        authentication, is a replay or is not SRTP at all."""
        if len(packet) < 12 or packet[0] >> 6 != 2:
            self.garbage += 1
            return None
        try:
            plain = self._in.unprotect(packet)
        except (pylibsrtp.Error, ValueError, TypeError):
            self.garbage += 1
            return None
        self.unprotected += 1
        return plain
