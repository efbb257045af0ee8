"""The transaction layer: every RFC 3261 timer on a fake clock (no sleeping)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from telephony_adapters.sipline.message import (
    Headers,
    Request,
    Response,
    SipSyntaxError,
    make_response,
    parse,
)
from telephony_adapters.sipline.transaction import (
    ClientTransaction,
    Deliver,
    ServerTransaction,
    State,
    Timeout,
    Timers,
    TransactionTable,
    Transmit,
)

PEER = ("127.0.0.1", 5070)
T = Timers()  # T1 0.5, T2 4, T4 5


def request(method: str, branch: str = "z9hG4bKabc", cseq: int = 1) -> Request:
    h = Headers(
        [
            ("Via", f"SIP/2.0/UDP 127.0.0.1:5070;branch={branch};rport"),
            ("Max-Forwards", "70"),
            ("From", "<sip:a@127.0.0.1>;tag=f1"),
            ("To", "<sip:b@127.0.0.1>"),
            ("Call-ID", "call-1"),
            ("CSeq", f"{cseq} {method}"),
            ("Route", "<sip:proxy;lr>"),
        ]
    )
    return Request(headers=h, method=method, uri="sip:b@127.0.0.1")


def reply(req: Request, status: int) -> Response:
    return make_response(req, status, to_tag="t1")


def sent(out: Sequence[object]) -> list[str]:
    """What was transmitted: the request method or the response status."""
    names = []
    for o in out:
        if isinstance(o, Transmit):
            m = o.message
            names.append(m.method if isinstance(m, Request) else str(m.status))
    return names


def fire_all(table: TransactionTable, until: float) -> list[tuple[float, list[object]]]:
    """Step the fake clock from deadline to deadline up to ``until``."""
    steps: list[tuple[float, list[object]]] = []
    while (at := table.next_deadline()) is not None and at <= until:
        steps.append((at, list(table.advance(at))))
    return steps


# --- client INVITE: Timers A, B, D, M ---------------------------------------------------


def test_timer_a_retransmits_the_invite_doubling_from_t1_and_timer_b_gives_up_at_64_t1() -> None:
    table = TransactionTable(T)
    txn, out = table.send(request("INVITE"), PEER, now=0.0)
    assert sent(out) == ["INVITE"]
    assert txn.state is State.CALLING
    steps = fire_all(table, until=100.0)
    times = [at for at, o in steps if sent(o) == ["INVITE"]]
    # A fires at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 (intervals 0.5, 1, 2, 4, 8, 16: no T2 cap)
    assert times == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    last_at, last = steps[-1]
    assert last_at == 32.0  # Timer B = 64 x T1
    assert len(last) == 1
    assert isinstance(last[0], Timeout)
    assert last[0].timer == "B"
    assert txn.terminated
    assert len(table) == 0
    assert table.next_deadline() is None


def test_a_provisional_response_stops_timer_a_and_timer_b() -> None:
    table = TransactionTable(T)
    req = request("INVITE")
    txn, _ = table.send(req, PEER, now=0.0)
    out = table.receive_response(reply(req, 180), now=0.2)
    assert out is not None
    assert isinstance(out[0], Deliver)
    assert txn.state is State.PROCEEDING
    assert table.next_deadline() is None  # the user's own no-answer timer takes over
    assert fire_all(table, until=1000.0) == []


def test_timer_d_absorbs_final_response_retransmissions_and_the_ack_is_on_the_same_branch() -> None:
    table = TransactionTable(T)
    req = request("INVITE")
    txn, _ = table.send(req, PEER, now=0.0)
    busy = reply(req, 486)
    out = table.receive_response(busy, now=1.0)
    assert out is not None
    assert sent(out) == ["ACK"]
    ack = out[0].message  # type: ignore[union-attr]
    assert isinstance(ack, Request)
    assert ack.top_via.branch == "z9hG4bKabc"
    assert ack.cseq == (1, "ACK")
    assert ack.to.tag == "t1"
    assert ack.uri == req.uri
    assert ack.headers.get_all("Route") == ["<sip:proxy;lr>"]
    assert [type(o) for o in out] == [Transmit, Deliver]
    assert txn.state is State.COMPLETED
    again = table.receive_response(busy, now=2.0)
    assert again is not None
    assert sent(again) == ["ACK"]
    assert table.next_deadline() == 33.0  # Timer D: 32 s on UDP
    assert table.advance(32.9) == []
    assert len(table) == 1
    assert table.advance(33.0) == []
    assert len(table) == 0


def test_timer_m_keeps_an_accepted_invite_to_deliver_2xx_retransmissions() -> None:
    table = TransactionTable(T)
    req = request("INVITE")
    txn, _ = table.send(req, PEER, now=0.0)
    ok = reply(req, 200)
    first = table.receive_response(ok, now=1.0)
    assert first is not None
    assert [type(o) for o in first] == [Deliver]
    assert txn.state is State.ACCEPTED
    again = table.receive_response(ok, now=1.5)
    assert again is not None
    assert [type(o) for o in again] == [Deliver]
    assert table.next_deadline() == 33.0  # Timer M = 64 x T1
    table.advance(33.0)
    assert len(table) == 0
    assert table.receive_response(ok, now=34.0) is None  # a stray for the user


# --- client non-INVITE: Timers E, F, K --------------------------------------------------


def test_timer_e_doubles_up_to_t2_and_timer_f_gives_up_at_64_t1() -> None:
    table = TransactionTable(T)
    txn, _ = table.send(request("OPTIONS"), PEER, now=0.0)
    assert txn.state is State.TRYING
    steps = fire_all(table, until=100.0)
    times = [at for at, o in steps if sent(o) == ["OPTIONS"]]
    # E: 0.5, 1, 2, 4, 4, 4, ... (capped at T2) until F at 32
    assert times == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert steps[-1][0] == 32.0
    assert isinstance(steps[-1][1][0], Timeout)
    assert steps[-1][1][0].timer == "F"
    assert len(table) == 0


def test_timer_e_is_t2_after_a_provisional_response() -> None:
    table = TransactionTable(T)
    req = request("BYE")
    txn, _ = table.send(req, PEER, now=0.0)
    table.advance(0.5)  # E fired once: next interval 1 s
    table.receive_response(reply(req, 100), now=0.6)
    assert txn.state is State.PROCEEDING
    steps = fire_all(table, until=12.0)
    assert [at for at, o in steps if sent(o) == ["BYE"]] == [1.5, 5.5, 9.5]


def test_timer_k_absorbs_response_retransmissions_for_t4() -> None:
    table = TransactionTable(T)
    req = request("BYE")
    txn, _ = table.send(req, PEER, now=0.0)
    ok = reply(req, 200)
    out = table.receive_response(ok, now=0.1)
    assert out is not None
    assert [type(o) for o in out] == [Deliver]
    assert txn.state is State.COMPLETED
    assert table.receive_response(ok, now=0.2) == []  # absorbed
    assert table.next_deadline() == pytest.approx(5.1)  # Timer K = T4
    table.advance(5.1)
    assert len(table) == 0


# --- server INVITE: Timers G, H, I, L ---------------------------------------------------


def test_a_retransmitted_invite_gets_the_last_provisional_response_again() -> None:
    table = TransactionTable(T)
    req = request("INVITE")
    txn = table.create_server(req, ("127.0.0.1", 40000), now=0.0)
    assert txn.peer == ("127.0.0.1", 40000)  # rport: back to the source port
    assert table.receive_request(req, now=0.1) == []  # nothing sent yet: nothing to repeat
    table.respond(txn, reply(req, 100), now=0.0)
    table.respond(txn, reply(req, 180), now=0.0)
    out = table.receive_request(req, now=0.5)
    assert out is not None
    assert sent(out) == ["180"]


def test_timer_g_retransmits_a_final_error_until_timer_h_gives_up() -> None:
    table = TransactionTable(T)
    req = request("INVITE")
    txn = table.create_server(req, PEER, now=0.0)
    out = table.respond(txn, reply(req, 486), now=0.0)
    assert sent(out) == ["486"]
    assert txn.state is State.COMPLETED
    steps = fire_all(table, until=100.0)
    times = [at for at, o in steps if sent(o) == ["486"]]
    # G: 0.5, 1, 2, 4, 4, ... capped at T2; H at 64 x T1 = 32
    assert times == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert steps[-1][0] == 32.0
    assert isinstance(steps[-1][1][0], Timeout)
    assert steps[-1][1][0].timer == "H"
    assert len(table) == 0


def test_the_ack_stops_timer_g_and_timer_i_absorbs_further_acks() -> None:
    table = TransactionTable(T)
    req = request("INVITE")
    txn = table.create_server(req, PEER, now=0.0)
    table.respond(txn, reply(req, 487), now=0.0)
    table.advance(0.5)
    ack = request("ACK")
    assert table.receive_request(ack, now=0.7) == []
    assert txn.state is State.CONFIRMED
    assert table.receive_request(req, now=0.8) == []  # a late INVITE copy: absorbed
    assert table.receive_request(ack, now=1.0) == []
    assert table.next_deadline() == pytest.approx(5.7)  # Timer I = T4
    table.advance(5.7)
    assert len(table) == 0


def test_timer_l_keeps_an_accepted_invite_absorbing_retransmissions() -> None:
    table = TransactionTable(T)
    req = request("INVITE")
    txn = table.create_server(req, PEER, now=0.0)
    ok = reply(req, 200)
    assert sent(table.respond(txn, ok, now=1.0)) == ["200"]
    assert txn.state is State.ACCEPTED
    assert table.receive_request(req, now=1.2) == []  # absorbed; the user repeats its 2xx
    assert sent(table.respond(txn, ok, now=1.5)) == ["200"]
    same_branch_ack = request("ACK")
    out = table.receive_request(same_branch_ack, now=1.6)
    assert out is not None
    assert isinstance(out[0], Deliver)
    assert table.next_deadline() == 33.0  # Timer L = 64 x T1
    table.advance(33.0)
    assert len(table) == 0


# --- server non-INVITE: Timer J -------------------------------------------------------


def test_timer_j_answers_retransmissions_with_the_final_response_for_64_t1() -> None:
    table = TransactionTable(T)
    req = request("BYE")
    txn = table.create_server(req, PEER, now=0.0)
    assert txn.state is State.TRYING
    assert table.receive_request(req, now=0.1) == []  # no response yet
    table.respond(txn, reply(req, 200), now=0.2)
    out = table.receive_request(req, now=3.0)
    assert out is not None
    assert sent(out) == ["200"]
    assert table.next_deadline() == pytest.approx(32.2)
    table.advance(32.2)
    assert len(table) == 0
    assert table.receive_request(req, now=40.0) is None  # now it would be a new request


# --- matching --------------------------------------------------------------------------


def test_cancel_finds_its_invite_and_a_response_needs_the_same_branch_and_method() -> None:
    table = TransactionTable(T)
    invite = request("INVITE")
    txn = table.create_server(invite, PEER, now=0.0)
    assert table.find_invite(request("CANCEL")) is txn
    assert table.find_invite(request("CANCEL", branch="z9hG4bKother")) is None
    out_req = request("OPTIONS", branch="z9hG4bKout")
    client, _ = table.send(out_req, PEER, now=0.0)
    wrong = reply(request("BYE", branch="z9hG4bKout"), 200)
    assert table.receive_response(wrong, now=0.1) is None
    assert isinstance(client, ClientTransaction)
    assert isinstance(txn, ServerTransaction)
    with pytest.raises(SipSyntaxError, match="ACK never starts"):
        table.create_server(request("ACK"), PEER, now=0.0)


def test_rfc_2543_branches_match_by_the_older_fields() -> None:
    table = TransactionTable(T)
    old = parse(
        b"INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP old.example\r\nFrom: <sip:a@o>;tag=1\r\n"
        b"To: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 5 INVITE\r\n\r\n"
    )
    assert isinstance(old, Request)
    txn = table.create_server(old, ("192.0.2.9", 5060), now=0.0)
    table.respond(txn, reply(old, 180), now=0.0)
    out = table.receive_request(old, now=0.5)
    assert out is not None
    assert sent(out) == ["180"]


def test_timers_scale_with_t1() -> None:
    fast = Timers(t1=0.1, t2=0.8, t4=1.0)
    assert (fast.b, fast.f, fast.h, fast.j, fast.l, fast.m) == (6.4,) * 6
    assert fast.d == 32.0
    assert fast.i == fast.k == 1.0
