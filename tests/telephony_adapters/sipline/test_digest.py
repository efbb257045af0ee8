"""Digest authentication against the RFCs' own examples."""

from __future__ import annotations

import hashlib

import pytest

from telephony_adapters.sipline.digest import (
    Challenge,
    authorization,
    choose_challenge,
    digest_response,
    parse_auth_params,
    parse_challenge,
)
from telephony_adapters.sipline.message import Response, SipSyntaxError, parse


def test_rfc_2617_example_md5_qop_auth() -> None:
    challenge = parse_challenge(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    assert challenge.qop == ("auth", "auth-int")
    assert challenge.algorithm == "MD5"
    response, qop = digest_response(
        challenge,
        username="Mufasa",
        password="Circle Of Life",
        method="GET",
        uri="/dir/index.html",
        cnonce="0a4f113b",
        nc=1,
    )
    assert (response, qop) == ("6629fae49393a05397450978507c4ef1", "auth")


RFC7616 = (
    'realm="http-auth@example.org", qop="auth, auth-int", '
    'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
    'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
)


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc_7616_examples_md5_and_sha_256(algorithm: str, expected: str) -> None:
    challenge = parse_challenge(f"Digest {RFC7616}, algorithm={algorithm}")
    header = authorization(
        challenge,
        username="Mufasa",
        password="Circle of Life",
        method="GET",
        uri="/dir/index.html",
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        nc=1,
    )
    params = parse_auth_params(header.removeprefix("Digest "))
    assert params["response"] == expected
    assert params["nc"] == "00000001"
    assert params["qop"] == "auth"
    assert params["opaque"] == "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
    assert params["algorithm"] == algorithm
    assert params["username"] == "Mufasa"


def test_sess_and_auth_int_and_no_qop_follow_the_formulas() -> None:
    def md5(s: str) -> str:
        return hashlib.md5(s.encode()).hexdigest()

    plain = Challenge(realm="r", nonce="n")
    assert digest_response(plain, username="u", password="p", method="INVITE", uri="sip:x")[
        0
    ] == md5(f"{md5('u:r:p')}:n:{md5('INVITE:sip:x')}")
    sess = Challenge(realm="r", nonce="n", algorithm="MD5-SESS", qop=("auth",))
    ha1 = md5(f"{md5('u:r:p')}:n:c")
    expected = md5(f"{ha1}:n:00000002:c:auth:{md5('INVITE:sip:x')}")
    got = digest_response(
        sess, username="u", password="p", method="INVITE", uri="sip:x", cnonce="c", nc=2
    )
    assert got == (expected, "auth")
    integrity = Challenge(realm="r", nonce="n", qop=("auth-int",))
    body_hash = md5("v=0")
    got = digest_response(
        integrity, username="u", password="p", method="BYE", uri="sip:x", cnonce="c", body=b"v=0"
    )
    assert got == (
        md5(f"{md5('u:r:p')}:n:00000001:c:auth-int:{md5('BYE:sip:x:' + body_hash)}"),
        "auth-int",
    )


def test_choose_challenge_takes_the_first_supported_and_reads_407_as_proxy() -> None:
    resp = parse(
        b"SIP/2.0 407 Proxy Authentication Required\r\n"
        b'Proxy-Authenticate: Digest realm="a", nonce="1", algorithm=SHA-512-256\r\n'
        b'Proxy-Authenticate: Digest realm="a", nonce="2", algorithm=SHA-256, qop="auth",'
        b" stale=TRUE\r\n"
        b'Proxy-Authenticate: Digest realm="a", nonce="3"\r\n\r\n'
    )
    assert isinstance(resp, Response)
    challenge = choose_challenge(resp)
    assert challenge is not None
    assert (challenge.nonce, challenge.algorithm, challenge.stale) == ("2", "SHA-256", True)
    assert challenge.header_name == "Proxy-Authorization"
    none = parse(b'SIP/2.0 401 Unauthorized\r\nWWW-Authenticate: Basic realm="x"\r\n\r\n')
    assert isinstance(none, Response)
    assert choose_challenge(none) is None


@pytest.mark.parametrize(
    "text", ['Basic realm="x"', 'Digest realm="x"', 'Digest nonce="1", realm="unterminated']
)
def test_bad_challenges_raise_protocol_error(text: str) -> None:
    with pytest.raises(SipSyntaxError):
        parse_challenge(text)


def test_auth_params_keep_commas_and_escapes_inside_quotes() -> None:
    assert parse_auth_params('a="x, y", b=z ,c="q\\"r"') == {"a": "x, y", "b": "z", "c": 'q"r'}
