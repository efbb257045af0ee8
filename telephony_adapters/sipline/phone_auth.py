"""Digest authentication, the server side, for agent phones that register to the line
(RFC 3261 §22, RFC 7616; SHA-256 in SIP by RFC 8760): the phones' settings, nonces,
challenges and the check of a phone's credentials against stored HA1 values.

Nonces are bound to time with an HMAC (``<issued ms hex>.<salt>.<mac>``), so nothing is
stored per nonce: a nonce whose MAC is right but older than ``nonce_ttl_s`` is *stale*
(the phone answers the new challenge with the same password), one whose MAC is wrong is
refused. The key is made per process: nonces do not outlive a restart. The nonce count
is not tracked (no state per nonce), so a captured REGISTER can be replayed while its
nonce is fresh; it can only renew the binding it carried.

The HA1 file (written by ``cti phone-credentials``) is TOML::

    realm = "cti-desk"
    [agents."a1"]
    MD5 = "<hex of MD5(a1:cti-desk:password)>"
    SHA-256 = "<hex of SHA-256(a1:cti-desk:password)>"

The line never sees a password: only these hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cti.errors import TelephonyError
from telephony_adapters.sipline.digest import parse_auth_params
from telephony_adapters.sipline.message import SipSyntaxError, quote

ALGORITHMS = ("SHA-256", "MD5")
"""Offered in this order by default (RFC 8760 §2.4: the preferred first)."""
_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
_HEX_LENGTH = {"MD5": 32, "SHA-256": 64}
MAX_AUTH_HEADER = 2048
"""An Authorization header longer than this is refused unread."""
MAX_ID = 64


@dataclass(frozen=True, slots=True)
class PhoneSettings:
    """The line as registrar for agent phones (plain values; see :mod:`.registrar`)."""

    realm: str
    ha1: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """agent id -> algorithm (``MD5``, ``SHA-256``) -> HA1 in hex."""
    phones: Mapping[str, str] = field(default_factory=dict)
    """agent id -> a fixed ``sip:`` URI (a phone that does not register)."""
    min_expires_s: int = 60
    max_expires_s: int = 3600
    default_expires_s: int = 3600
    max_contacts: int = 4
    """Bindings per agent; a new one beyond this replaces the oldest."""
    qualify_s: float = 0.0
    """OPTIONS to each registered or fixed phone this often; 0: none."""
    nonce_ttl_s: float = 300.0
    algorithms: tuple[str, ...] = ALGORITHMS
    """Offered (and accepted) in this order. Phones that answer only the first challenge
    and know only MD5 (SIPp, baresip 1.0) need ``("MD5",)``."""

    def agents(self) -> set[str]:
        return set(self.ha1) | set(self.phones)


def ha1(user: str, realm: str, password: str, algorithm: str) -> str:
    """``H(user:realm:password)`` in hex, as stored in the HA1 file."""
    return _HASHES[algorithm](f"{user}:{realm}:{password}".encode()).hexdigest()


def _h(algorithm: str, text: str) -> str:
    return _HASHES[algorithm](text.encode()).hexdigest()


class NonceMint:
    """Nonces bound to time by an HMAC (see the module docstring)."""

    def __init__(self, ttl_s: float, *, key: bytes | None = None) -> None:
        self.ttl_s = ttl_s
        self._key = key if key is not None else secrets.token_bytes(32)

    def _mac(self, stamp: str, salt: str) -> str:
        return hmac.new(self._key, f"{stamp}.{salt}".encode(), hashlib.sha256).hexdigest()[:32]

    def make(self, now: float) -> str:
        stamp = f"{max(int(now * 1000), 0):x}"
        salt = secrets.token_hex(6)
        return f"{stamp}.{salt}.{self._mac(stamp, salt)}"

    def check(self, nonce: str, now: float) -> str:
        """``ok``, ``stale`` (ours but too old) or ``bad`` (not ours)."""
        parts = nonce.split(".")
        if len(parts) != 3 or len(nonce) > 80:
            return "bad"
        stamp, salt, mac = parts
        if not hmac.compare_digest(mac, self._mac(stamp, salt)):
            return "bad"
        try:
            issued = int(stamp, 16) / 1000
        except ValueError:
            return "bad"
        return "ok" if 0 <= now - issued <= self.ttl_s else "stale"


def challenges(
    realm: str, nonce: str, *, stale: bool, algorithms: tuple[str, ...] = ALGORITHMS
) -> list[tuple[str, str]]:
    """The WWW-Authenticate headers of a 401: one per algorithm, in order."""
    extra = ", stale=true" if stale else ""
    return [
        (
            "WWW-Authenticate",
            f"Digest realm={quote(realm)}, nonce={quote(nonce)}, algorithm={alg}, "
            f'qop="auth"{extra}',
        )
        for alg in algorithms
    ]


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a phone's Authorization header says (RFC 7616 §3.4)."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str
    qop: str
    nc: str
    cnonce: str


def parse_credentials(value: str) -> Credentials:
    """An ``Authorization: Digest ...`` value; SipSyntaxError names what is missing."""
    if len(value) > MAX_AUTH_HEADER:
        raise SipSyntaxError(f"Authorization header of {len(value)} characters")
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise SipSyntaxError(f"not Digest credentials: {scheme[:20]!r}")
    p = parse_auth_params(rest)
    missing = [k for k in ("username", "realm", "nonce", "uri", "response") if not p.get(k)]
    if missing:
        raise SipSyntaxError(f"Digest credentials without {', '.join(missing)}")
    return Credentials(
        username=p["username"],
        realm=p["realm"],
        nonce=p["nonce"],
        uri=p["uri"],
        response=p["response"].lower(),
        algorithm=p.get("algorithm", "MD5").upper(),
        qop=p.get("qop", "").lower(),
        nc=p.get("nc", ""),
        cnonce=p.get("cnonce", ""),
    )


def expected_response(creds: Credentials, stored_ha1: str, method: str) -> str:
    """The response a phone knowing the password computes (qop=auth, or none)."""
    alg = creds.algorithm
    ha2 = _h(alg, f"{method}:{creds.uri}")
    if creds.qop == "auth":
        return _h(alg, f"{stored_ha1}:{creds.nonce}:{creds.nc}:{creds.cnonce}:auth:{ha2}")
    return _h(alg, f"{stored_ha1}:{creds.nonce}:{ha2}")


def check_credentials(creds: Credentials, settings: PhoneSettings, method: str) -> tuple[bool, str]:
    """(right, why not): the user is known, realm and algorithm ours, qop=auth with its
    nc and cnonce, and the response matches the stored HA1. The reason is for the log
    only: the phone is never told which of these failed."""
    if creds.realm != settings.realm:
        return False, f"realm {creds.realm[:40]!r} is not ours"
    if creds.algorithm not in settings.algorithms:
        return False, f"algorithm {creds.algorithm[:20]!r} not offered"
    if creds.qop != "auth" or not creds.nc or not creds.cnonce:
        return False, "no qop=auth with nc and cnonce"
    stored = settings.ha1.get(creds.username, {}).get(creds.algorithm)
    if stored is None:
        # Unknown user: the same work as a known one, so time tells nothing either.
        expected_response(creds, "0" * _HEX_LENGTH[creds.algorithm], method)
        return False, "unknown user or wrong password"
    if not hmac.compare_digest(expected_response(creds, stored, method), creds.response):
        return False, "unknown user or wrong password"
    return True, ""


# --- the HA1 file --------------------------------------------------------------------


def parse_phone_ha1(text: str, source: str) -> tuple[str, dict[str, dict[str, str]]]:
    """(realm, agent -> algorithm -> HA1) from the HA1 file's text; a
    :class:`~cti.errors.TelephonyError` names the fault and ``source``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TelephonyError(f"{source}: not TOML: {exc}") from None
    realm = data.get("realm")
    if not isinstance(realm, str) or not realm or len(realm) > MAX_ID or '"' in realm:
        raise TelephonyError(f"{source}: no usable realm (a string of 1-{MAX_ID} characters)")
    agents = data.get("agents", {})
    if not isinstance(agents, dict):
        raise TelephonyError(f"{source}: [agents] must be a table")
    out: dict[str, dict[str, str]] = {}
    for agent, entry in agents.items():
        if not isinstance(entry, dict) or not 0 < len(agent) <= MAX_ID:
            raise TelephonyError(f"{source}: agents.{agent[:MAX_ID]!r} is not a table")
        hashes: dict[str, str] = {}
        for alg, value in entry.items():
            if alg not in _HASHES:
                raise TelephonyError(f"{source}: agents.{agent!r}: unknown algorithm {alg!r}")
            if not isinstance(value, str) or len(value) != _HEX_LENGTH[alg]:
                raise TelephonyError(f"{source}: agents.{agent!r}.{alg}: not an {alg} hash")
            try:
                int(value, 16)
            except ValueError:
                raise TelephonyError(f"{source}: agents.{agent!r}.{alg}: not hex") from None
            hashes[alg] = value.lower()
        if hashes:
            out[agent] = hashes
    return realm, out


def read_phone_ha1(path: Path) -> tuple[str, dict[str, dict[str, str]]]:
    """The HA1 file at ``path`` (see :func:`parse_phone_ha1`)."""
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TelephonyError(f"phone credentials {path} cannot be read: {exc}") from None
    return parse_phone_ha1(text, str(path))
