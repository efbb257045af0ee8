"""The line as registrar for agent phones, on a fake clock: digest challenge and answer
(MD5, SHA-256), stale nonces, wrong passwords and unknown users alike, expiry, 423,
un-REGISTER, queries, bounds, reachability and OPTIONS qualify."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from telephony_adapters.sipline.digest import authorization, choose_challenge, parse_challenge
from telephony_adapters.sipline.message import Request, Response, parse_address
from telephony_adapters.sipline.phone_auth import (
    NonceMint,
    PhoneSettings,
    ha1,
    parse_phone_ha1,
)
from telephony_adapters.sipline.useragent import Effect, PhoneReachability, UserAgent
from tests.telephony_adapters.sipline.peer import LINE, make_ua, of_type, reply, sent

PHONE = ("10.0.0.7", 5080)
REALM = "cti-desk"
PASSWORD = "s3cret-pw"


def phone_settings(**kw: object) -> PhoneSettings:
    hashes = {alg: ha1("a1", REALM, PASSWORD, alg) for alg in ("MD5", "SHA-256")}
    kw.setdefault("ha1", {"a1": hashes, "a2": {"MD5": ha1("a2", REALM, "other", "MD5")}})
    return PhoneSettings(realm=REALM, **kw)  # type: ignore[arg-type]


def registrar_ua(**kw: object) -> UserAgent:
    return make_ua(phones=phone_settings(**kw))


class Phone:
    """A phone registering ``sip:<user>@10.0.0.1`` from :data:`PHONE`."""

    def __init__(self, user: str = "a1", password: str = PASSWORD, port: int = PHONE[1]):
        self.user, self.password = user, password
        self.source = (PHONE[0], port)
        self.cseq = 0

    def branch(self) -> str:
        return f"z9hG4bK{self.user}{self.source[1]}r{self.cseq}"

    def register(
        self,
        *,
        expires: str | None = "600",
        contacts: Sequence[str] | None = None,
        auth: str = "",
    ) -> bytes:
        self.cseq += 1
        aor = f"<sip:{self.user}@{LINE[0]}>"
        if contacts is None:
            contacts = [f"<sip:{self.user}@{self.source[0]}:{self.source[1]}>"]
        lines = [
            f"REGISTER sip:{LINE[0]} SIP/2.0",
            f"Via: SIP/2.0/UDP {self.source[0]}:{self.source[1]};branch={self.branch()}",
            "Max-Forwards: 70",
            f"From: {aor};tag=ph",
            f"To: {aor}",
            f"Call-ID: reg-{self.user}-{self.source[1]}",
            f"CSeq: {self.cseq} REGISTER",
            *(f"Contact: {c}" for c in contacts),
            *([f"Expires: {expires}"] if expires is not None else []),
            *([f"Authorization: {auth}"] if auth else []),
            "Content-Length: 0",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def answer(
        self, challenge_response: Response, algorithm: str = "SHA-256", **kw: object
    ) -> bytes:
        """The REGISTER again, answering the 401's challenge of ``algorithm``."""
        challenge = next(
            parse_challenge(v)
            for v in challenge_response.headers.get_all("WWW-Authenticate")
            if f"algorithm={algorithm}" in v
        )
        auth = authorization(
            challenge,
            username=self.user,
            password=self.password,
            method="REGISTER",
            uri=f"sip:{LINE[0]}",
            cnonce="c0ffee",
        )
        return self.register(auth=auth, **kw)  # type: ignore[arg-type]


def one_response(out: Sequence[Effect]) -> Response:
    [msg] = sent(out)
    assert isinstance(msg, Response)
    return msg


def register(
    ua: UserAgent, phone: Phone, now: float, algorithm: str = "SHA-256", **kw: object
) -> tuple[Response, list[Effect]]:
    """Challenge and answer: the final response and every effect of the answer."""
    challenge = one_response(ua.receive(phone.register(**kw), phone.source, now))  # type: ignore[arg-type]
    assert challenge.status == 401
    out = ua.receive(phone.answer(challenge, algorithm, **kw), phone.source, now)
    return one_response(out), out


# --- digest ------------------------------------------------------------------------


def test_register_is_challenged_with_sha256_first_then_md5_and_qop_auth() -> None:
    ua = registrar_ua()
    response = one_response(ua.receive(Phone().register(), PHONE, 0.0))
    assert response.status == 401
    values = response.headers.get_all("WWW-Authenticate")
    algorithms = [parse_challenge(v).algorithm for v in values]
    assert algorithms == ["SHA-256", "MD5"]
    first = choose_challenge(response)
    assert first is not None
    assert first.realm == REALM
    assert first.qop == ("auth",)
    assert not first.stale
    assert len({parse_challenge(v).nonce for v in values}) == 1


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_right_password_registers_and_reports_the_phone_reachable(algorithm: str) -> None:
    ua = registrar_ua()
    assert not ua.reachable("a1", 0.0)
    ok, out = register(ua, Phone(), 1.0, algorithm)
    assert ok.status == 200
    [contact] = ok.headers.values("Contact")
    assert parse_address(contact).uri.port == PHONE[1]
    assert parse_address(contact).params["expires"] == "600"
    assert of_type(out, PhoneReachability) == [
        PhoneReachability("a1", True, f"sip:a1@{PHONE[0]}:{PHONE[1]}")
    ]
    assert ua.reachable("a1", 1.0)


def test_wrong_password_and_unknown_user_get_the_same_403() -> None:
    ua = registrar_ua()
    wrong, out = register(ua, Phone(password="guess"), 0.0)
    unknown, _ = register(ua, Phone(user="nobody"), 0.0)
    assert wrong.status == unknown.status == 403
    assert wrong.reason == unknown.reason
    assert sorted(h for h, _ in wrong.headers) == sorted(h for h, _ in unknown.headers)
    assert not of_type(out, PhoneReachability)
    assert not ua.reachable("a1", 0.0)
    assert ua.dropped == 2  # counted and logged (rate-limited), never which one


def test_an_agent_cannot_register_another_agents_address() -> None:
    ua = registrar_ua()
    phone = Phone(user="a1")
    challenge = one_response(ua.receive(phone.register(), PHONE, 0.0))
    forged = phone.answer(challenge).replace(b"To: <sip:a1@", b"To: <sip:a2@")
    assert one_response(ua.receive(forged, PHONE, 0.0)).status == 403
    assert not ua.reachable("a2", 0.0)


def test_an_expired_nonce_is_challenged_again_as_stale() -> None:
    ua = registrar_ua(nonce_ttl_s=30.0)
    phone = Phone()
    challenge = one_response(ua.receive(phone.register(), PHONE, 0.0))
    late = one_response(ua.receive(phone.answer(challenge), PHONE, 31.0))
    assert late.status == 401
    stale = choose_challenge(late)
    assert stale is not None
    assert stale.stale
    ok = one_response(ua.receive(phone.answer(late), PHONE, 31.0))
    assert ok.status == 200


def test_a_nonce_not_made_here_is_not_stale_but_challenged_afresh() -> None:
    mint, other = NonceMint(300.0), NonceMint(300.0)
    nonce = other.make(0.0)
    assert mint.check(nonce, 1.0) == "bad"
    assert mint.check(mint.make(0.0), 1.0) == "ok"
    assert mint.check(mint.make(0.0), 301.0) == "stale"
    assert mint.check(nonce.replace(".", "x", 1), 1.0) == "bad"


# --- bindings ----------------------------------------------------------------------


def test_binding_expires_and_the_phone_becomes_unreachable() -> None:
    ua = registrar_ua()
    register(ua, Phone(), 0.0, expires="120")
    assert not of_type(ua.advance(119.9), PhoneReachability)
    assert ua.reachable("a1", 119.9)
    out = ua.advance(120.0)
    assert of_type(out, PhoneReachability) == [PhoneReachability("a1", False, "")]
    assert not ua.reachable("a1", 120.0)


def test_refresh_moves_the_expiry_and_reports_nothing_new() -> None:
    ua = registrar_ua()
    phone = Phone()
    register(ua, phone, 0.0, expires="120")
    ok, out = register(ua, phone, 100.0, expires="120")
    assert ok.status == 200
    assert not of_type(out, PhoneReachability)
    assert not of_type(ua.advance(120.0), PhoneReachability)
    assert ua.reachable("a1", 219.0)
    assert not ua.reachable("a1", 220.0)


def test_too_brief_an_interval_gets_423_with_min_expires() -> None:
    ua = registrar_ua(min_expires_s=60)
    brief, _ = register(ua, Phone(), 0.0, expires="10")
    assert brief.status == 423
    assert brief.headers.get("Min-Expires") == "60"
    assert not ua.reachable("a1", 0.0)


def test_too_long_an_interval_is_cut_to_the_maximum() -> None:
    ua = registrar_ua(max_expires_s=900)
    ok, _ = register(ua, Phone(), 0.0, expires="86400")
    [contact] = ok.headers.values("Contact")
    assert parse_address(contact).params["expires"] == "900"


def test_unregister_with_expires_0_removes_the_binding() -> None:
    ua = registrar_ua()
    phone = Phone()
    register(ua, phone, 0.0)
    ok, out = register(ua, phone, 5.0, expires="0")
    assert ok.status == 200
    assert ok.headers.values("Contact") == []
    assert of_type(out, PhoneReachability) == [PhoneReachability("a1", False, "")]


def test_unregister_all_with_star() -> None:
    ua = registrar_ua()
    register(ua, Phone(port=5080), 0.0)
    register(ua, Phone(port=5082), 0.0)
    ok, _out = register(ua, Phone(port=5086), 1.0, expires="0", contacts=["*"])
    assert ok.status == 200
    assert ok.headers.values("Contact") == []
    assert not ua.reachable("a1", 1.0)


def test_a_query_lists_the_bindings_and_changes_nothing() -> None:
    ua = registrar_ua()
    register(ua, Phone(port=5080), 0.0, expires="300")
    ok, out = register(ua, Phone(port=5082), 100.0, expires=None, contacts=[])
    assert ok.status == 200
    [contact] = ok.headers.values("Contact")
    address = parse_address(contact)
    assert address.uri.port == 5080
    assert address.params["expires"] == "200"
    assert not of_type(out, PhoneReachability)


def test_contacts_per_agent_are_bounded_and_the_newest_phone_rings() -> None:
    ua = registrar_ua(max_contacts=2)
    for i, port in enumerate((5080, 5082, 5084)):
        register(ua, Phone(port=port), float(i))
    ok, _ = register(ua, Phone(port=5084), 3.0, expires=None, contacts=[])
    ports = sorted(parse_address(c).uri.port or 0 for c in ok.headers.values("Contact"))
    assert ports == [5082, 5084]
    assert ua.registrar is not None
    target = ua.registrar.target("a1", 3.0)
    assert target is not None
    assert target.dest == (PHONE[0], 5084)


def test_malformed_register_gets_400_and_bounds_hold() -> None:
    ua = registrar_ua()
    phone = Phone()
    long_contact = "<sip:a1@10.0.0.7:5080;x=" + "y" * 600 + ">"
    # A bad Expires is refused before any challenge (as every request's is).
    assert one_response(ua.receive(phone.register(expires="soon"), PHONE, 0.0)).status == 400
    for kw in (
        {"contacts": [long_contact]},
        {"contacts": ["*"], "expires": "60"},
        {"contacts": [f"<sip:a1@10.0.0.7:{5000 + i}>" for i in range(20)]},
    ):
        bad, _ = register(ua, phone, 0.0, **kw)
        assert bad.status == 400, kw
    assert not ua.reachable("a1", 0.0)


def test_register_without_agent_credentials_is_405() -> None:
    ua = make_ua()
    response = one_response(ua.receive(Phone().register(), PHONE, 0.0))
    assert response.status == 405
    assert not ua.reachable("a1", 0.0)


# --- qualify and fixed phones --------------------------------------------------------


def test_a_phone_that_stops_answering_options_becomes_unreachable() -> None:
    ua = registrar_ua(qualify_s=30.0)
    ua.start(0.0)
    register(ua, Phone(), 0.0)
    out = ua.advance(30.0)
    [ping] = sent(out)
    assert isinstance(ping, Request)
    assert ping.method == "OPTIONS"
    assert ping.uri == f"sip:a1@{PHONE[0]}:{PHONE[1]}"
    assert ua.receive(reply(ping, 200), PHONE, 30.1) == []  # answered: still reachable
    out = ua.advance(60.0)
    [ping] = sent(out)
    lost: list[Effect] = []
    while (deadline := ua.next_deadline()) is not None and deadline <= 92.0:
        lost += ua.advance(deadline)  # the OPTIONS retransmitted; at 90 no second ping
    assert {m.method for m in sent(lost) if isinstance(m, Request)} == {"OPTIONS"}
    assert of_type(lost, PhoneReachability) == [PhoneReachability("a1", False, "")]
    assert not ua.reachable("a1", 92.0)
    assert ua.receive(reply(ping, 200), PHONE, 92.0) == []  # too late: its transaction is gone
    out = ua.advance(120.0)
    [ping] = sent(out)
    back = ua.receive(reply(ping, 404), PHONE, 120.1)  # any answer shows it is there
    assert of_type(back, PhoneReachability) == [
        PhoneReachability("a1", True, f"sip:a1@{PHONE[0]}:{PHONE[1]}")
    ]


def test_fixed_phone_is_reported_reachable_at_start() -> None:
    ua = make_ua(phones=PhoneSettings(realm=REALM, phones={"a3": "sip:a3@10.0.0.9:5090"}))
    out = ua.start(0.0)
    assert of_type(out, PhoneReachability) == [
        PhoneReachability("a3", True, "sip:a3@10.0.0.9:5090")
    ]
    assert ua.reachable("a3", 0.0)
    response = one_response(ua.receive(Phone(user="a3").register(), PHONE, 0.0))
    assert response.status == 405  # no credentials: the line is no registrar


def test_ha1_file_is_read_and_its_faults_named() -> None:
    text = f'realm = "{REALM}"\n[agents.a1]\nMD5 = "{ha1("a1", REALM, "pw", "MD5")}"\n'
    realm, hashes = parse_phone_ha1(text, "phones.toml")
    assert realm == REALM
    assert list(hashes["a1"]) == ["MD5"]
    with pytest.raises(Exception, match=r"phones.toml: agents.'a1'.MD5: not an MD5 hash"):
        parse_phone_ha1('realm = "r"\n[agents.a1]\nMD5 = "abc"\n', "phones.toml")
    with pytest.raises(Exception, match=r"phones.toml: no usable realm"):
        parse_phone_ha1("[agents]\n", "phones.toml")


def test_an_md5_only_line_offers_and_accepts_md5_alone() -> None:
    ua = registrar_ua(algorithms=("MD5",))
    response = one_response(ua.receive(Phone().register(), PHONE, 0.0))
    offered = [parse_challenge(v).algorithm for v in response.headers.get_all("WWW-Authenticate")]
    assert offered == ["MD5"]
    ok, _ = register(ua, Phone(port=5082), 0.0, "MD5")
    assert ok.status == 200
    # SHA-256 credentials (a phone that made its own challenge up) are refused
    phone = Phone(port=5084)
    sha = response.headers.get_all("WWW-Authenticate")[0].replace("MD5", "SHA-256")
    forged = Response(headers=response.headers.copy(), status=401, reason="Unauthorized")
    forged.headers.set("WWW-Authenticate", sha)
    assert one_response(ua.receive(phone.answer(forged), PHONE, 0.0)).status == 403
