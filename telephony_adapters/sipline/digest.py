"""HTTP digest authentication for SIP (RFC 3261 §22, RFC 2617, RFC 7616; SHA-256 in SIP
by RFC 8760), the client side: read a challenge, compute the credentials.

Algorithms MD5, MD5-sess, SHA-256 and SHA-256-sess; qop ``auth`` (preferred) and
``auth-int``, or none (RFC 2069 servers). When a 401/407 offers several challenges, the
first one whose algorithm we know is taken (servers list their preference first).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from telephony_adapters.sipline.message import Response, SipSyntaxError, quote, unquote

_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


@dataclass(frozen=True, slots=True)
class Challenge:
    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    proxy: bool = False
    """From a 407 (Proxy-Authenticate): answer with Proxy-Authorization."""

    @property
    def header_name(self) -> str:
        return "Proxy-Authorization" if self.proxy else "Authorization"


def parse_auth_params(text: str) -> dict[str, str]:
    """``a="x, y", b=z`` -> {"a": "x, y", "b": "z"} (names lower-cased, values unquoted)."""
    params: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t,":
            i += 1
        eq = text.find("=", i)
        if eq < 0:
            if text[i:].strip():
                raise SipSyntaxError(f"bad auth parameter {text[i : i + 40]!r}")
            break
        name = text[i:eq].strip().lower()
        j = eq + 1
        while j < n and text[j] in " \t":
            j += 1
        if j < n and text[j] == '"':
            k = j + 1
            while k < n and text[k] != '"':
                k += 2 if text[k] == "\\" else 1
            if k >= n:
                raise SipSyntaxError(f"unterminated quoted value for {name!r}")
            value, i = unquote(text[j : k + 1]), k + 1
        else:
            k = text.find(",", j)
            k = n if k < 0 else k
            value, i = text[j:k].strip(), k
        if not name:
            raise SipSyntaxError(f"bad auth parameter in {text[:60]!r}")
        params[name] = value
    return params


def parse_challenge(value: str, *, proxy: bool = False) -> Challenge:
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise SipSyntaxError(f"not a Digest challenge: {value[:60]!r}")
    p = parse_auth_params(rest)
    if "nonce" not in p or "realm" not in p:
        raise SipSyntaxError(f"Digest challenge without realm or nonce: {value[:80]!r}")
    qop = tuple(q.strip().lower() for q in p.get("qop", "").split(",") if q.strip())
    return Challenge(
        realm=p["realm"],
        nonce=p["nonce"],
        algorithm=p.get("algorithm", "MD5").upper(),
        qop=qop,
        opaque=p.get("opaque"),
        stale=p.get("stale", "").lower() == "true",
        proxy=proxy,
    )


def supported(challenge: Challenge) -> bool:
    base = challenge.algorithm.removesuffix("-SESS")
    qop_ok = not challenge.qop or bool({"auth", "auth-int"} & set(challenge.qop))
    return base in _HASHES and qop_ok


def choose_challenge(response: Response) -> Challenge | None:
    """The first challenge we can answer in a 401 or 407; None if there is none."""
    proxy = response.status == 407
    name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
    for value in response.headers.get_all(name):
        try:
            challenge = parse_challenge(value, proxy=proxy)
        except SipSyntaxError:
            continue
        if supported(challenge):
            return challenge
    return None


def digest_response(
    challenge: Challenge,
    *,
    username: str,
    password: str,
    method: str,
    uri: str,
    cnonce: str = "",
    nc: int = 1,
    body: bytes = b"",
) -> tuple[str, str]:
    """(response hash, qop used: ``auth``, ``auth-int`` or "")."""
    algorithm = challenge.algorithm
    base = algorithm.removesuffix("-SESS")
    if base not in _HASHES:
        raise SipSyntaxError(f"digest algorithm {algorithm!r} is not supported")
    hasher = _HASHES[base]

    def h(text: str | bytes) -> str:
        return hasher(text.encode() if isinstance(text, str) else text).hexdigest()

    qop = "auth" if "auth" in challenge.qop else ("auth-int" if challenge.qop else "")
    ha1 = h(f"{username}:{challenge.realm}:{password}")
    if algorithm.endswith("-SESS"):
        ha1 = h(f"{ha1}:{challenge.nonce}:{cnonce}")
    a2 = f"{method}:{uri}" + (f":{h(body)}" if qop == "auth-int" else "")
    ha2 = h(a2)
    if qop:
        return h(f"{ha1}:{challenge.nonce}:{nc:08x}:{cnonce}:{qop}:{ha2}"), qop
    return h(f"{ha1}:{challenge.nonce}:{ha2}"), ""


def authorization(
    challenge: Challenge,
    *,
    username: str,
    password: str,
    method: str,
    uri: str,
    cnonce: str,
    nc: int = 1,
    body: bytes = b"",
) -> str:
    """The value of the Authorization (or Proxy-Authorization) header."""
    response, qop = digest_response(
        challenge,
        username=username,
        password=password,
        method=method,
        uri=uri,
        cnonce=cnonce,
        nc=nc,
        body=body,
    )
    parts = [
        f"username={quote(username)}",
        f"realm={quote(challenge.realm)}",
        f"nonce={quote(challenge.nonce)}",
        f"uri={quote(uri)}",
        f"response={quote(response)}",
        f"algorithm={challenge.algorithm}",
    ]
    if qop:
        parts += [f"cnonce={quote(cnonce)}", f"qop={qop}", f"nc={nc:08x}"]
    if challenge.opaque is not None:
        parts.append(f"opaque={quote(challenge.opaque)}")
    return "Digest " + ", ".join(parts)
