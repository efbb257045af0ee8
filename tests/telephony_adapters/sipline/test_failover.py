"""RFC 3263 §4.3 failover in the sans-I/O core, on a fake clock: a request to a resolved
host name that times out (Timer B or F) or gets a 503 goes again, on a new branch, to
the next target the transport layer has (its ``failover`` hook, faked here); the user
never sees the time-out or the 503 while a target is left, and keeps its transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cti.protocol import CallerHungUp
from telephony_adapters.sipline.effects import Effect
from telephony_adapters.sipline.message import Headers, Request, Response, parse
from telephony_adapters.sipline.routing import stamp
from telephony_adapters.sipline.transaction import (
    Addr,
    Deliver,
    Timeout,
    Timers,
    TransactionTable,
    Transmit,
)
from telephony_adapters.sipline.useragent import DialProgress, UserAgent
from tests.telephony_adapters.sipline.peer import OFFER, make_ua, of_type, reply, sent, statuses

PBX = ("pbx.example", 5060)


@dataclass
class Targets:
    """The transport layer's hook: ``left`` more targets after the first."""

    left: int
    asked: list[tuple[str, Addr, str, int]] = field(default_factory=list)

    def __call__(self, request: Request, dest: Addr, why: str, tries: int) -> bool:
        self.asked.append((request.method, dest, why, tries))
        if self.left <= 0:
            return False
        self.left -= 1
        return True


def run_until(ua: UserAgent, until: float) -> list[Effect]:
    effects: list[Effect] = []
    while (at := ua.next_deadline()) is not None and at <= until:
        effects += ua.advance(at)
    return effects


def dialled(targets: Targets) -> tuple[UserAgent, Request]:
    ua = make_ua(dial_timeout_s=300.0)
    ua.core.table.failover = targets
    [inv] = sent(ua.dial("sip:800@pbx.example", "c1", 20000, now=0.0))
    assert isinstance(inv, Request)
    return ua, inv


def invites(effects: Sequence[Effect]) -> list[Request]:
    return [m for m in sent(effects) if isinstance(m, Request) and m.method == "INVITE"]


def test_an_invite_that_times_out_goes_to_the_next_target_and_is_answered_there() -> None:
    targets = Targets(left=1)
    ua, first = dialled(targets)
    effects = run_until(ua, 40.0)  # Timer B at 32 s
    assert targets.asked == [("INVITE", PBX, "timed out (Timer B)", 1)]
    assert not of_type(effects, DialProgress)  # no failure while a target is left
    again = invites(effects)[-1]
    assert again.top_via.branch not in ("", first.top_via.branch)
    assert (again.call_id, again.cseq, again.body) == (first.call_id, first.cseq, first.body)
    assert ua.calls["c1"].invite.top_via.branch == again.top_via.branch
    assert statuses(ua.receive(reply(first, 180), PBX, 33.0)) == []  # a stray now
    out = ua.receive(reply(again, 200, body=OFFER), PBX, 33.5)
    assert DialProgress("c1", "answered", 200, True) in out
    assert statuses(out) == ["ACK"]


def test_a_503_goes_to_the_next_target_and_the_503_is_acked_on_its_own_branch() -> None:
    targets = Targets(left=1)
    ua, first = dialled(targets)
    out = ua.receive(reply(first, 503), PBX, 0.2)
    assert targets.asked == [("INVITE", PBX, "answered 503", 1)]
    assert statuses(out) == ["ACK", "INVITE"]
    ack, again = sent(out)
    assert ack.top_via.branch == first.top_via.branch
    assert isinstance(again, Request)
    assert again.top_via.branch != first.top_via.branch
    assert not of_type(out, DialProgress)
    # The 503 retransmitted on the old branch is ACKed again, and reaches no one.
    assert statuses(ua.receive(reply(first, 503), PBX, 0.3)) == ["ACK"]
    assert len(targets.asked) == 1
    ua.receive(reply(again, 180), PBX, 0.4)
    out = ua.hang_up("c1", 0.5)  # the CANCEL names the branch the call is on now
    [cancel] = sent(out)
    assert (cancel.method, cancel.top_via.branch) == ("CANCEL", again.top_via.branch)  # type: ignore[union-attr]


def test_with_no_target_left_the_time_out_and_the_503_reach_the_dial() -> None:
    targets = Targets(left=0)
    ua, first = dialled(targets)
    out = ua.receive(reply(first, 503), PBX, 0.2)
    assert targets.asked == [("INVITE", PBX, "answered 503", 1)]
    assert of_type(out, DialProgress)[0].final
    assert CallerHungUp(call_id="c1", line="sip") in out
    targets = Targets(left=2)
    ua, first = dialled(targets)
    effects = run_until(ua, 200.0)
    assert [a[3] for a in targets.asked] == [1, 2, 3]  # three targets, each timed out
    assert len({i.top_via.branch for i in invites(effects)} | {first.top_via.branch}) == 3
    assert DialProgress("c1", "failed", 0, True) in effects


def test_a_dial_hung_up_before_any_answer_is_not_tried_elsewhere() -> None:
    targets = Targets(left=1)
    ua, _ = dialled(targets)
    assert ua.hang_up("c1", 1.0) == []  # no provisional yet: the CANCEL waits
    effects = run_until(ua, 40.0)
    assert targets.asked == []
    assert DialProgress("c1", "cancelled", 0, True) in effects


def options(branch: str = "z9hG4bKo1", method: str = "OPTIONS") -> Request:
    h = Headers(
        [
            ("Via", f"SIP/2.0/UDP 10.0.0.1:5060;branch={branch};rport"),
            ("From", "<sip:a@10.0.0.1>;tag=f1"),
            ("To", "<sip:pbx.example>"),
            ("Call-ID", "o-1"),
            ("CSeq", f"1 {method}"),
        ]
    )
    return Request(headers=h, method=method, uri="sip:pbx.example")


def test_a_non_invite_fails_over_on_timer_f_and_a_cancel_never_does() -> None:
    table = TransactionTable(Timers())
    targets = Targets(left=5)
    table.failover = targets
    txn, _ = table.send(options(), PBX, 0.0)
    table.advance(31.9)  # Timer E's retransmissions
    out = table.advance(32.0)  # Timer F: 64 x T1
    [again] = [o for o in out if isinstance(o, Transmit)]
    assert not [o for o in out if isinstance(o, Timeout)]
    assert again.message is txn.request
    assert txn.request.top_via.branch != "z9hG4bKo1"
    assert table.clients[txn.key] is txn
    assert len(table) == 1  # the timed-out branch is forgotten
    cancel, _ = table.send(options("z9hG4bKc1", "CANCEL"), PBX, 0.0)
    out = table.advance(40.0)
    assert [o.timer for o in out if isinstance(o, Timeout) and o.transaction is cancel] == ["F"]
    assert [a[0] for a in targets.asked] == ["OPTIONS"]


def response(request: Request, status: int) -> Response:
    message = parse(reply(request, status))
    assert isinstance(message, Response)
    return message


def test_a_response_on_the_new_branch_is_delivered_to_the_same_transaction() -> None:
    table = TransactionTable(Timers())
    table.failover = Targets(left=1)
    txn, _ = table.send(options(), PBX, 0.0)
    out = table.receive_response(response(txn.request, 503), 0.1)
    assert out is not None
    assert [type(o) for o in out] == [Transmit]  # the request again, no Deliver of the 503
    ok = response(txn.request, 200)
    assert table.receive_response(ok, 0.2) == [Deliver(txn, ok)]


def test_a_request_that_cannot_be_sent_fails_over_or_ends_at_once() -> None:
    """A connection that failed (RFC 3261 §17.1.4): the request's transaction is asked
    to fail over as for a time-out; with no target left the dial fails now, not at
    Timer B."""
    targets = Targets(left=1)
    ua, first = dialled(targets)
    out = ua.transport_failed(bytes(first), 0.1)
    assert targets.asked == [("INVITE", PBX, "cannot be reached", 1)]
    [again] = invites(out)
    assert again.top_via.branch != first.top_via.branch
    out = ua.transport_failed(bytes(again), 0.2)
    assert DialProgress("c1", "failed", 0, True) in out
    assert CallerHungUp(call_id="c1", line="sip") in out
    assert ua.transport_failed(bytes(again), 0.3) == []  # its transaction is gone
    assert len(ua.core.table) == 0


def test_a_request_failing_over_to_a_target_of_another_transport_gets_its_via_again() -> None:
    """A TLS target failed, the next is UDP: the Via says UDP and our UDP port again (the
    Contact stays: we listen where it says)."""
    request = options()
    ports = {"UDP": 5060, "TLS": 5061}
    stamp(request, "TLS", "10.0.0.1", ports)
    assert (request.top_via.transport, request.top_via.port) == ("TLS", 5061)
    stamp(request, "UDP", "10.0.0.1", ports)
    assert (request.top_via.transport, request.top_via.port) == ("UDP", 5060)
    assert request.top_via.branch == "z9hG4bKo1"
