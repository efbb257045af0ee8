"""TLS for the SIP line (RFC 3261 §26.2, RFC 5630, RFC 5922): the contexts it listens
and connects with.

A connection we make verifies the peer's certificate against the system's CAs and the
host name we connect to, by default. ``tls_ca_file`` trusts a private CA instead (that
file only); ``tls_pin_sha256`` accepts exactly the certificates with those SHA-256
fingerprints (of the DER certificate, as ``openssl x509 -noout -fingerprint -sha256``
prints it, colons optional) whoever signed them; ``tls_verify = false`` checks nothing
(tests only: it is logged as a warning).
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

from cti.errors import TelephonyError


@dataclass(frozen=True, slots=True)
class TlsSettings:
    cert_file: str = ""
    """Our certificate chain (PEM), to listen for TLS; the client's too when set."""
    key_file: str = ""
    ca_file: str = ""
    """Trust this CA (PEM) instead of the system's."""
    pin_sha256: tuple[str, ...] = ()
    """Accept these certificates only (their SHA-256 fingerprints, hex)."""
    verify: bool = True


def fingerprint(der: bytes) -> str:
    """A certificate's SHA-256 fingerprint as a pin: lower-case hex, no colons."""
    return hashlib.sha256(der).hexdigest()


def normal_pins(pins: Sequence[str]) -> tuple[str, ...]:
    """The pins as :func:`fingerprint` writes them; raises ValueError naming a bad one."""
    out = []
    for pin in pins:
        text = pin.replace(":", "").strip().lower()
        if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
            raise ValueError(f"bad SHA-256 pin {pin!r}: 64 hex digits (colons allowed)")
        out.append(text)
    return tuple(out)


def server_context(settings: TlsSettings) -> ssl.SSLContext:
    if not settings.cert_file or not settings.key_file:
        raise TelephonyError("TLS needs tls_cert_file and tls_key_file to listen")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(settings.cert_file, settings.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise TelephonyError(
            f"cannot load TLS certificate {settings.cert_file!r} / key {settings.key_file!r}: {exc}"
        ) from exc
    return ctx


def client_context(settings: TlsSettings) -> ssl.SSLContext:
    """How we connect: see the module docstring."""
    try:
        ctx = ssl.create_default_context(cafile=settings.ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise TelephonyError(f"cannot load tls_ca_file {settings.ca_file!r}: {exc}") from exc
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.pin_sha256 or not settings.verify:
        ctx.check_hostname = False  # the pin (checked once connected) is the trust
        ctx.verify_mode = ssl.CERT_NONE
    if settings.cert_file and settings.key_file:
        ctx.load_cert_chain(settings.cert_file, settings.key_file)
    return ctx


def pin_refused(settings: TlsSettings, der: bytes | None) -> str:
    """Why a connected peer's certificate is refused by the pins ("" when accepted)."""
    if not settings.pin_sha256:
        return ""
    if der is None:
        return "no certificate from the peer"
    seen = fingerprint(der)
    return "" if seen in settings.pin_sha256 else f"certificate {seen} is not pinned"
