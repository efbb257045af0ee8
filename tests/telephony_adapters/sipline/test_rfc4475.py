"""RFC 4475 in full: every torture message of its section 3 (``rfc4475.py``) given to the
user agent, each answered as the RFC prefers. The valid ones (§3.1.1) are parsed to the
fields the RFC means and answered as any such request is (a response that matches no
transaction is absorbed); the invalid ones (§3.1.2) are refused with the status the RFC
names and a ``Warning: 399`` saying why, never dropped while they can be answered (a
response and an ACK are never answered: they are dropped and counted); §3.2-§3.4 as the
RFC asks (RFC 2543 matching, 416, 420, 415, 400, 406, and an RFC 2543 INVITE taken)."""

from __future__ import annotations

import pytest

from cti.protocol import CallArrived
from telephony_adapters.sipline.checks import check_response
from telephony_adapters.sipline.message import Request, Response, parse, parse_address
from tests.telephony_adapters.sipline import rfc4475 as rfc
from tests.telephony_adapters.sipline.peer import make_ua, of_type, sent

SOURCE = ("192.0.2.200", 5060)

# (section, file name, message, statuses we send, words of the Warning, if any)
Case = tuple[str, str, bytes, list[int], str]
VALID: list[Case] = [
    ("3.1.1.1", "wsinv", rfc.WSINV, [481], ""),  # a To tag: a dialog we do not have
    ("3.1.1.2", "intmeth", rfc.INTMETH, [501], "unknown method"),
    ("3.1.1.3", "esc01", rfc.ESC01, [100, 180], ""),
    ("3.1.1.4", "escnull", rfc.ESCNULL, [405], ""),  # no registrar on this line
    ("3.1.1.5", "esc02", rfc.ESC02, [501], "unknown method"),  # not REGISTER
    ("3.1.1.6", "lwsdisp", rfc.LWSDISP, [200], ""),
    ("3.1.1.7", "longreq", rfc.LONGREQ, [100, 180], ""),
    ("3.1.1.8", "dblreq", rfc.DBLREQ, [405], ""),
    ("3.1.1.9", "semiuri", rfc.SEMIURI, [200], ""),
    ("3.1.1.10", "transports", rfc.TRANSPORTS, [200], ""),
    ("3.1.1.11", "mpart01", rfc.MPART01, [405], ""),
    ("3.1.1.12", "unreason", rfc.UNREASON, [], ""),  # matches no transaction: absorbed
    ("3.1.1.13", "noreason", rfc.NOREASON, [], ""),
]
INVALID: list[Case] = [
    ("3.1.2.1", "badinv01", rfc.BADINV01, [400], "empty"),
    ("3.1.2.2", "clerr", rfc.CLERR, [400], "Content-Length 9999"),
    ("3.1.2.3", "ncl", rfc.NCL, [400], "bad Content-Length '-999'"),
    ("3.1.2.4", "scalar02", rfc.SCALAR02, [400], "bad CSeq"),
    ("3.1.2.5", "scalarlg", rfc.SCALARLG, [], ""),  # a response: dropped
    ("3.1.2.6", "quotbal", rfc.QUOTBAL, [400], "unterminated display name"),
    ("3.1.2.7", "ltgtruri", rfc.LTGTRURI, [400], "bad URI '<sip:user@example.com>'"),
    ("3.1.2.8", "lwsruri", rfc.LWSRURI, [400], "bad request line"),
    ("3.1.2.9", "lwsstart", rfc.LWSSTART, [400], "bad request line"),
    ("3.1.2.10", "trws", rfc.TRWS, [400], "bad request line"),
    ("3.1.2.11", "escruri", rfc.ESCRURI, [400], "headers in the Request-URI"),
    ("3.1.2.12", "baddate", rfc.BADDATE, [400], "not in GMT"),
    ("3.1.2.13", "regbadct", rfc.REGBADCT, [400], "must be in <>"),
    ("3.1.2.14", "badaspec", rfc.BADASPEC, [400], "bad To"),
    ("3.1.2.15", "baddn", rfc.BADDN, [400], "bad display name 'Bell, Alexander'"),
    ("3.1.2.16", "badvers", rfc.BADVERS, [505], "'SIP/7.0' is not SIP/2.0"),
    ("3.1.2.17", "mismatch01", rfc.MISMATCH01, [400], "CSeq method 'INVITE' differs"),
    ("3.1.2.18", "mismatch02", rfc.MISMATCH02, [501], "unknown method 'NEWMETHOD'"),
    ("3.1.2.19", "bigcode", rfc.BIGCODE, [], ""),  # a response: dropped
]
TRANSACTION: list[Case] = [
    ("3.2.1", "badbranch", rfc.BADBRANCH, [200], ""),
]
APPLICATION: list[Case] = [
    ("3.3.1", "insuf", rfc.INSUF, [400], "no Call-ID"),
    ("3.3.2", "unkscm", rfc.UNKSCM, [416], "unsupported URI scheme"),
    ("3.3.3", "novelsc", rfc.NOVELSC, [416], "unsupported URI scheme 'soap.beep'"),
    ("3.3.4", "unksm2", rfc.UNKSM2, [416], "unsupported URI scheme"),
    ("3.3.5", "bext01", rfc.BEXT01, [420], "nothingSupportsThis"),
    ("3.3.6", "invut", rfc.INVUT, [415], "application/unknownformat"),
    ("3.3.7", "regaut01", rfc.REGAUT01, [405], ""),  # no registrar on this line
    ("3.3.8", "multi01", rfc.MULTI01, [400], "more than one CSeq"),
    ("3.3.9", "mcl01", rfc.MCL01, [400], "more than one Content-Length"),
    ("3.3.10", "bcast", rfc.BCAST, [], ""),  # a 200 matching nothing: absorbed
    ("3.3.11", "zeromf", rfc.ZEROMF, [200], ""),  # we are the target, not a hop
    ("3.3.12", "cparam01", rfc.CPARAM01, [405], ""),
    ("3.3.13", "cparam02", rfc.CPARAM02, [405], ""),
    ("3.3.14", "regescrt", rfc.REGESCRT, [405], ""),
    ("3.3.15", "sdp01", rfc.SDP01, [406], "Accept"),
]
BACKWARD: list[Case] = [
    ("3.4.1", "inv2543", rfc.INV2543, [100, 180], ""),
]
DROPPED = {"scalarlg", "bigcode"}
"""Malformed responses: never answered (RFC 3261 §18.1.2), counted as dropped."""


def _ids(cases: list[Case]) -> list[str]:
    return [f"{section}-{name}" for section, name, *_ in cases]


def _run(case: Case) -> tuple[list[Request | Response], int, list[object]]:
    """Give the message to a fresh line: (what we sent, parsed; datagrams dropped; effects)."""
    _section, name, data, statuses, warning = case
    ua = make_ua()
    out = ua.receive(data, SOURCE, 0.0)
    replies = sent(out)  # every datagram we send, parsed back by our own parser
    assert [m.status for m in replies if isinstance(m, Response)] == statuses, name
    assert not [m for m in replies if isinstance(m, Request)], name
    final = replies[-1] if replies else None
    if warning:
        assert isinstance(final, Response)
        text = final.headers.get("Warning") or ""
        assert text.startswith("399 "), (name, text)
        assert warning in text, (name, text)
    if final is None:
        assert ua.dropped == (1 if name in DROPPED else 0), name
    return replies, ua.dropped, list(out)


@pytest.mark.parametrize("case", VALID, ids=_ids(VALID))
def test_rfc4475_3_1_1_valid_messages_are_parsed_and_answered(case: Case) -> None:
    replies, dropped, _ = _run(case)
    assert dropped == (1 if case[3] and case[3][-1] == 501 else 0)  # 501: counted refusal
    for reply in replies:
        assert isinstance(reply, Response)
        check_response(reply)  # what we answer passes our own checks


@pytest.mark.parametrize("case", INVALID, ids=_ids(INVALID))
def test_rfc4475_3_1_2_invalid_messages_are_refused_with_the_named_status(case: Case) -> None:
    _replies, dropped, _ = _run(case)
    assert dropped == 1  # every refusal is counted (and logged, rate-limited)


@pytest.mark.parametrize("case", TRANSACTION, ids=_ids(TRANSACTION))
def test_rfc4475_3_2_transaction_layer_semantics(case: Case) -> None:
    _run(case)


@pytest.mark.parametrize("case", APPLICATION, ids=_ids(APPLICATION))
def test_rfc4475_3_3_application_layer_semantics(case: Case) -> None:
    _run(case)


@pytest.mark.parametrize("case", BACKWARD, ids=_ids(BACKWARD))
def test_rfc4475_3_4_backward_compatibility(case: Case) -> None:
    _run(case)


def test_rfc4475_the_suite_holds_every_message_of_section_3() -> None:
    cases = VALID + INVALID + TRANSACTION + APPLICATION + BACKWARD
    assert (len(VALID), len(INVALID), len(TRANSACTION), len(APPLICATION), len(BACKWARD)) == (
        13,
        19,
        1,
        15,
        1,
    )
    written = {n.lower() for n in dir(rfc) if n.isupper() and n[0] != "_"}
    assert written - {"unreason_phrase"} == {name for _s, name, *_ in cases}


# --- what the valid messages carry, read as the RFC means it ----------------------------


def test_rfc4475_3_1_1_1_wsinv_fields_through_folding_and_whitespace() -> None:
    msg = parse(rfc.WSINV)
    assert isinstance(msg, Request)
    assert (msg.to.tag, msg.from_.tag, msg.from_.display) == (
        "1918181833n",
        "98asjd8",
        'J Rosenberg \\"',
    )
    assert msg.cseq == (9, "INVITE")
    assert msg.headers.get("Max-Forwards") == "0068"
    assert [(v.transport, v.host, v.branch) for v in msg.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    contact = parse_address(msg.headers.values("Contact")[0])
    assert contact.display == 'Quoted string ""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert len(msg.body) == 150


def test_rfc4475_3_1_1_2_intmeth_user_part_holds_question_marks_and_semicolons() -> None:
    msg = parse(rfc.INTMETH)
    assert isinstance(msg, Request)
    from telephony_adapters.sipline.message import parse_uri

    uri = parse_uri(msg.uri)
    assert uri.host == "example.com"  # the '?' in the user part starts no headers
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert (uri.params, uri.headers) == ({}, "")
    assert msg.cseq == (139122385, msg.method)
    assert msg.to.display == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert msg.from_.display == "token1~` token2'+_ token3*%!.-"
    assert msg.from_.params["fromparam''~+*_!.-%"] == '"работающий"'


def test_rfc4475_3_1_1_3_esc01_the_engine_hears_unescaped_numbers() -> None:
    _replies, _dropped, out = _run(VALID[2])
    [arrived] = of_type(out, CallArrived)  # type: ignore[arg-type]
    assert arrived.dnis == "sips:user@example.com"
    assert arrived.ani == "I have spaces"


def test_rfc4475_3_1_1_5_esc02_c6fntact_is_not_a_contact() -> None:
    msg = parse(rfc.ESC02)
    assert msg.headers.values("Contact") == [
        "<sip:alias1@host1.example.com>",
        "<sip:alias3@host3.example.com>",
    ]


def test_rfc4475_3_1_1_6_to_3_1_1_13_fields() -> None:
    lwsdisp, semiuri, transports = parse(rfc.LWSDISP), parse(rfc.SEMIURI), parse(rfc.TRANSPORTS)
    assert lwsdisp.from_.display == "caller"
    assert isinstance(semiuri, Request)
    assert semiuri.uri == "sip:user;par=u%40example.net@example.com"
    assert [v.transport for v in transports.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert len(parse(rfc.LONGREQ).vias) == 34
    dblreq = parse(rfc.DBLREQ)
    assert isinstance(dblreq, Request)
    assert (dblreq.method, dblreq.body) == ("REGISTER", b"")
    assert parse(rfc.MPART01).body == rfc.MPART01[-len(parse(rfc.MPART01).body) :]
    unreason, noreason = parse(rfc.UNREASON), parse(rfc.NOREASON)
    assert isinstance(unreason, Response)
    assert unreason.reason == rfc.UNREASON_PHRASE
    assert isinstance(noreason, Response)
    assert (noreason.status, noreason.reason) == (100, "")


def test_rfc4475_3_2_1_badbranch_is_matched_the_rfc_2543_way() -> None:
    ua = make_ua()
    first = sent(ua.receive(rfc.BADBRANCH, SOURCE, 0.0))
    again = sent(ua.receive(rfc.BADBRANCH, SOURCE, 0.1))  # a retransmission
    assert [bytes(m) for m in again] == [bytes(m) for m in first]
    [key] = ua.table.servers
    assert key[0] == ""  # not the branch: it is only the magic cookie


def test_rfc4475_3_3_5_bext01_420_lists_what_we_lack_and_proxy_require_is_ignored() -> None:
    [reply] = _run(APPLICATION[4])[0]
    assert reply.headers.get("Unsupported") == "nothingSupportsThis, nothingSupportsThisEither"


def test_rfc4475_3_4_1_inv2543_rings_and_its_from_is_the_target() -> None:
    ua = make_ua()
    out = ua.receive(rfc.INV2543, SOURCE, 0.0)
    [arrived] = of_type(out, CallArrived)
    assert arrived.dnis == "UserB"
    call = ua.calls[arrived.call_id]
    assert call.dialog is not None
    assert str(call.dialog.remote_target) == "sip:+13035551111@ift.client.example.net;user=phone"
