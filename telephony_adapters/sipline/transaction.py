"""The SIP transaction layer (RFC 3261 §17, with RFC 6026's Accepted state), sans-I/O.

Four state machines over an unreliable transport (UDP):

* client INVITE: Calling (Timer A retransmits from T1, doubling; Timer B gives up at
  64xT1), Proceeding, Accepted after a 2xx (Timer M, 64xT1: the 2xx retransmissions go
  to the user, who ACKs them), Completed after a 3xx-6xx (the ACK is sent here, on the
  INVITE's branch; Timer D, 32 s, absorbs the final response's retransmissions);
* client non-INVITE: Trying (Timer E retransmits from T1, doubling up to T2; Timer F
  gives up at 64xT1), Proceeding (E at T2), Completed (Timer K, T4);
* server INVITE: Proceeding (a retransmitted INVITE gets the last provisional again),
  Accepted after a 2xx (Timer L, 64xT1; the user retransmits its 2xx), Completed after
  a 3xx-6xx (Timer G retransmits it from T1 doubling up to T2 until the ACK; Timer H
  gives up at 64xT1), Confirmed (Timer I, T4, absorbs further ACKs);
* server non-INVITE: Trying, Proceeding, Completed (Timer J, 64xT1, answers
  retransmissions with the final response).

Over TCP and TLS (the request's top Via says so) nothing is retransmitted and timers D,
I, J and K are zero (§17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2); the shell's transport
layer may stamp a request's Via and Contact for the transport it picks
(:attr:`TransactionTable.stamp`, :mod:`.routing`) before the transaction keeps it.

A client transaction to a host name that RFC 3263 resolved fails over (§4.3): when it
times out (Timer B or F) or gets a 503, the shell's :attr:`TransactionTable.failover`
sets that target aside and says whether another is left; if so the same request goes
again on a new branch (the same transaction object, so its user keeps it; an INVITE's
503 stays absorbed on the old branch), instead of the time-out or the 503 reaching the
user. A CANCEL never fails over (it goes where its INVITE went).

Nothing here reads a clock or touches a socket: every call takes ``now`` (monotonic
seconds) and returns what to do (:class:`Transmit`, :class:`Deliver`, :class:`Timeout`).
:class:`TransactionTable` matches messages to transactions (§17.1.3, §17.2.3), keeps
their deadlines in a heap (:meth:`~TransactionTable.next_deadline`) and forgets each
transaction as it terminates, so the tables never grow without bound.
"""

from __future__ import annotations

import enum
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from telephony_adapters.sipline.message import (
    Headers,
    Message,
    Request,
    Response,
    SipSyntaxError,
    Via,
    parse_via,
    split_commas,
)

Addr = tuple[str, int]
MAGIC_COOKIE = "z9hG4bK"
Stamp = Callable[[Message, Addr, str | None], None]
"""The transport layer's: make a request (transport None: its pick) or a response (the
request's transport) say the transport it goes by."""
Failover = Callable[[Request, Addr, str, int], bool]
"""The transport layer's (RFC 3263 §4.3): ``request`` to ``dest`` failed (why: "timed
out", "answered 503"), after this many targets tried: set its target aside; True when
another target is left for it."""


@dataclass(frozen=True, slots=True)
class Timers:
    """RFC 3261's timer values (§17, Table 4), in seconds."""

    t1: float = 0.5
    """Round-trip estimate."""
    t2: float = 4.0
    """Longest retransmit interval for non-INVITE requests and INVITE responses."""
    t4: float = 5.0
    """Longest time a message stays in the network."""

    @property
    def b(self) -> float:
        """INVITE transaction timeout (client)."""
        return 64 * self.t1

    f = h = j = l = m = b  # noqa: E741 - the RFC's names
    """F: non-INVITE timeout; H: wait for ACK; J: absorb non-INVITE retransmissions;
    L, M (RFC 6026): the Accepted states."""

    @property
    def d(self) -> float:
        """Absorb retransmitted INVITE final responses (client): at least 32 s on UDP."""
        return max(32.0, 64 * self.t1)

    @property
    def i(self) -> float:
        """Absorb ACK retransmissions (server, Confirmed)."""
        return self.t4

    @property
    def k(self) -> float:
        """Absorb response retransmissions (client non-INVITE, Completed)."""
        return self.t4


class State(enum.Enum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    ACCEPTED = "accepted"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True)
class Transmit:
    """Send ``message`` to ``dest``."""

    message: Message
    dest: Addr


@dataclass(frozen=True, slots=True)
class Deliver:
    """A message for the user of the transaction: a response to a client transaction,
    or an ACK that reached a server INVITE transaction in Accepted."""

    transaction: Transaction
    message: Message


@dataclass(frozen=True, slots=True)
class Timeout:
    """The transaction gave up: no final response (Timer B or F), or no ACK for a
    final response (Timer H)."""

    transaction: Transaction
    timer: str


Output = Transmit | Deliver | Timeout


@dataclass(eq=False)
class _Base:
    request: Request
    timers: Timers
    peer: Addr
    """Where requests go (client) or responses go (server)."""
    context: object = None
    """Whatever the user wants to find again with the transaction (its call)."""
    state: State = State.TRYING
    deadlines: dict[str, float] = field(default_factory=dict)
    intervals: dict[str, float] = field(default_factory=dict)
    scheduled: float | None = None
    """The deadline last put in the table's heap (to push each deadline once)."""
    reliable: bool = False
    """Over TCP or TLS: no retransmissions, no waiting for them (set by ``start``)."""

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def is_invite(self) -> bool:
        return self.request.method == "INVITE"

    @property
    def terminated(self) -> bool:
        return self.state is State.TERMINATED

    def next_deadline(self) -> float | None:
        return min(self.deadlines.values(), default=None)

    def _start(self, name: str, now: float, interval: float) -> None:
        if self.reliable and name in "AEG":
            return
        if self.reliable and name in "DIJK":
            interval = 0.0
        self.intervals[name] = interval
        self.deadlines[name] = now + interval

    def _terminate(self) -> None:
        self.state = State.TERMINATED
        self.deadlines.clear()

    def _due(self, now: float) -> list[str]:
        return sorted(
            (n for n, at in self.deadlines.items() if at <= now), key=lambda n: self.deadlines[n]
        )


@dataclass(eq=False)
class ClientTransaction(_Base):
    """One request we sent, until its final response (see the module docstring)."""

    last_response: Response | None = None
    ack: Request | None = None
    tries: int = 1
    """Targets tried (RFC 3263 failover: see the module docstring)."""
    may_fail_over: bool = True
    """False once its user gave up on it (a dial hung up before any provisional)."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.request.top_via.branch, self.request.method)

    def start(self, now: float) -> list[Output]:
        t = self.timers
        self.reliable = self.request.top_via.transport != "UDP"
        if self.is_invite:
            self.state = State.CALLING
            self._start("A", now, t.t1)
            self._start("B", now, t.b)
        else:
            self.state = State.TRYING
            self._start("E", now, t.t1)
            self._start("F", now, t.f)
        return [Transmit(self.request, self.peer)]

    def receive(self, response: Response, now: float) -> list[Output]:
        status, state, t = response.status, self.state, self.timers
        if self.is_invite:
            if state in (State.CALLING, State.PROCEEDING):
                self.deadlines.pop("A", None)
                self.deadlines.pop("B", None)
                self.last_response = response
                if status < 200:
                    self.state = State.PROCEEDING
                elif status < 300:
                    self.state = State.ACCEPTED
                    self._start("M", now, t.m)
                else:
                    self.state = State.COMPLETED
                    self.ack = ack_for(self.request, response)
                    self._start("D", now, t.d)
                    return [Transmit(self.ack, self.peer), Deliver(self, response)]
                return [Deliver(self, response)]
            if state is State.ACCEPTED and 200 <= status < 300:
                return [Deliver(self, response)]  # the user ACKs each 2xx it sees
            if state is State.COMPLETED and status >= 300 and self.ack is not None:
                return [Transmit(self.ack, self.peer)]
            return []
        if state in (State.TRYING, State.PROCEEDING):
            self.last_response = response
            if status < 200:
                self.state = State.PROCEEDING
            else:
                self.state = State.COMPLETED
                self.deadlines.clear()
                self._start("K", now, t.k)
            return [Deliver(self, response)]
        return []

    def fire(self, now: float) -> list[Output]:
        out: list[Output] = []
        t = self.timers
        for name in self._due(now):
            if name not in self.deadlines:
                continue
            if name in ("A", "E"):
                out.append(Transmit(self.request, self.peer))
                if name == "A":
                    self._start("A", now, 2 * self.intervals["A"])
                elif self.state is State.PROCEEDING:
                    self._start("E", now, t.t2)
                else:
                    self._start("E", now, min(2 * self.intervals["E"], t.t2))
            elif name in ("B", "F"):
                self._terminate()
                out.append(Timeout(self, name))
            else:  # D, K, M
                self._terminate()
        return out


@dataclass(eq=False)
class ServerTransaction(_Base):
    """One request we received, until its final response has settled."""

    last_response: Response | None = None

    def start(self, now: float) -> list[Output]:
        self.reliable = self.request.top_via.transport != "UDP"
        self.state = State.PROCEEDING if self.is_invite else State.TRYING
        return []

    def respond(self, response: Response, now: float) -> list[Output]:
        """Send a response (the user's). Ignored once the transaction is past it."""
        status, state, t = response.status, self.state, self.timers
        if self.is_invite:
            if state is State.ACCEPTED and 200 <= status < 300:
                return [Transmit(response, self.peer)]  # the user's 2xx retransmission
            if state is not State.PROCEEDING:
                return []
            self.last_response = response
            if status >= 300:
                self.state = State.COMPLETED
                self._start("G", now, t.t1)
                self._start("H", now, t.h)
            elif status >= 200:
                self.state = State.ACCEPTED
                self._start("L", now, t.l)
            return [Transmit(response, self.peer)]
        if state not in (State.TRYING, State.PROCEEDING):
            return []
        self.last_response = response
        if status < 200:
            self.state = State.PROCEEDING
        else:
            self.state = State.COMPLETED
            self._start("J", now, t.j)
        return [Transmit(response, self.peer)]

    def receive(self, request: Request, now: float) -> list[Output]:
        """A retransmission of our request, or (INVITE) its ACK."""
        state = self.state
        if request.method == "ACK":
            if state is State.COMPLETED:
                self.state = State.CONFIRMED
                self.deadlines.clear()
                self._start("I", now, self.timers.i)
            elif state is State.ACCEPTED:
                return [Deliver(self, request)]
            return []
        if state in (State.PROCEEDING, State.COMPLETED) and self.last_response is not None:
            return [Transmit(self.last_response, self.peer)]
        return []

    def fire(self, now: float) -> list[Output]:
        out: list[Output] = []
        for name in self._due(now):
            if name not in self.deadlines:
                continue
            if name == "G":
                assert self.last_response is not None
                out.append(Transmit(self.last_response, self.peer))
                self._start("G", now, min(2 * self.intervals["G"], self.timers.t2))
            elif name == "H":
                self._terminate()
                out.append(Timeout(self, name))
            else:  # I, J, L
                self._terminate()
        return out


Transaction = ClientTransaction | ServerTransaction


def server_key(request: Request) -> tuple[str, ...]:
    """The key matching a request to its server transaction (RFC 3261 §17.2.3): the top
    Via's branch and sent-by and the method (an ACK matches its INVITE); for a branch
    without the magic cookie (RFC 2543 peers), or that is only the cookie (RFC 4475
    §3.2.1), the older fields."""
    via = request.top_via
    method = "INVITE" if request.method == "ACK" else request.method
    if via.branch.startswith(MAGIC_COOKIE) and len(via.branch) > len(MAGIC_COOKIE):
        return (via.branch, via.sent_by, method)
    number, _ = request.cseq
    return (
        "",
        request.uri,
        request.call_id,
        request.from_.tag,
        str(number),
        via.sent_by,
        method,
    )


def ack_for(invite: Request, response: Response) -> Request:
    """The ACK of a non-2xx final response (RFC 3261 §17.1.1.3): on the INVITE's branch."""
    h = Headers()
    h.add("Via", invite.headers.values("Via")[0])
    for name in ("Max-Forwards", "From"):
        value = invite.headers.get(name)
        if value is not None:
            h.add(name, value)
    h.add("To", response.headers.get("To") or invite.headers.get("To") or "")
    h.add("Call-ID", invite.call_id)
    h.add("CSeq", f"{invite.cseq[0]} ACK")
    for route in invite.headers.get_all("Route"):
        h.add("Route", route)
    return Request(headers=h, method="ACK", uri=invite.uri)


def rebranch(request: Request, branch: str) -> None:
    """Give ``request``'s top Via a new branch (a new transaction for the same request)."""
    lines = request.headers.get_all("Via")
    first, *others = split_commas(lines[0])
    via = parse_via(first)
    again = str(Via(via.transport, via.host, via.port, {**via.params, "branch": branch},
                    via.version))  # fmt: skip
    request.headers = Headers(
        [("Via", ", ".join([again, *others])), *(("Via", v) for v in lines[1:]),
         *((n, v) for n, v in request.headers if n != "Via")]
    )  # fmt: skip


class TransactionTable:
    """Every live transaction, matched by key, with one heap of their deadlines."""

    def __init__(self, timers: Timers | None = None) -> None:
        self.timers = timers or Timers()
        self.clients: dict[tuple[str, str], ClientTransaction] = {}
        self.servers: dict[tuple[str, ...], ServerTransaction] = {}
        self._heap: list[tuple[float, int, Transaction]] = []
        self._seq = itertools.count()
        self.stamp: Stamp | None = None
        """Set by the shell when it speaks more than UDP (see the module docstring)."""
        self.failover: Failover | None = None
        """Set by the shell that resolves host names (see the module docstring)."""

    def __len__(self) -> int:
        return len(self.clients) + len(self.servers)

    # --- client side ---------------------------------------------------------------

    def send(
        self, request: Request, dest: Addr, now: float, context: object = None
    ) -> tuple[ClientTransaction, list[Output]]:
        """Start a client transaction for ``request`` (its top Via has a fresh branch)."""
        if self.stamp is not None:
            self.stamp(request, dest, None)
        txn = ClientTransaction(request, self.timers, dest, context)
        if txn.key in self.clients:
            raise SipSyntaxError(f"a client transaction with branch {txn.key[0]!r} exists")
        out = txn.start(now)
        self.clients[txn.key] = txn
        self._schedule(txn)
        return txn, out

    def resume_client(
        self, request: Request, dest: Addr, now: float, context: object = None
    ) -> ClientTransaction:
        """A client INVITE transaction sent by an earlier process, taken up waiting for
        its final response (no retransmissions: the peer had it, or it is cancelled and
        given up with our CANCEL's time-out). Its 2xx and 3xx-6xx are handled as usual."""
        txn = ClientTransaction(request, self.timers, dest, context)
        txn.state = State.PROCEEDING
        self.clients[txn.key] = txn
        return txn

    def receive_response(self, response: Response, now: float) -> list[Output] | None:
        """Hand a response to its client transaction; None if none matches (a stray,
        or a 2xx retransmission after the transaction ended: the user decides)."""
        vias = response.headers.values("Via")
        if not vias:
            raise SipSyntaxError("response without Via")
        key = (parse_via(vias[0]).branch, response.cseq[1])
        if key[1] == "ACK":
            return None
        txn = self.clients.get(key)
        if txn is None:
            return None
        out = txn.receive(response, now)
        if response.status == 503 and Deliver(txn, response) in out:
            again = self._fail_over(txn, "answered 503", now)
            if again is not None:  # the 503's ACK (INVITE), then the request elsewhere
                return [o for o in out if not isinstance(o, Deliver)] + again
        self._settle(txn)
        return out

    # --- server side ---------------------------------------------------------------

    def match(self, request: Request) -> ServerTransaction | None:
        return self.servers.get(server_key(request))

    def receive_request(self, request: Request, now: float) -> list[Output] | None:
        """A request for an existing server transaction (a retransmission, or an ACK of
        a non-2xx): what it does. None if it starts a new transaction (or is an ACK
        that matches none: a 2xx's ACK, for the dialog)."""
        txn = self.match(request)
        if txn is None:
            return None
        out = txn.receive(request, now)
        self._settle(txn)
        return out

    def create_server(
        self, request: Request, source: Addr, now: float, context: object = None
    ) -> ServerTransaction:
        """A server transaction for a new request (never an ACK); responses go where the
        top Via says (RFC 3581 rport honoured)."""
        if request.method == "ACK":
            raise SipSyntaxError("an ACK never starts a transaction")
        peer = request.top_via.response_address(source)
        txn = ServerTransaction(request, self.timers, peer, context)
        txn.start(now)
        self.servers[server_key(request)] = txn
        return txn

    def respond(self, txn: ServerTransaction, response: Response, now: float) -> list[Output]:
        if self.stamp is not None:
            self.stamp(response, txn.peer, txn.request.top_via.transport)
        out = txn.respond(response, now)
        self._settle(txn)
        return out

    def abandon(self, txn: Transaction) -> None:
        """Forget ``txn`` now: its user gave up on it (a client INVITE still without a
        final response 64xT1 after our CANCEL, RFC 3261 §9.1). Anything that arrives for
        it later is a stray."""
        txn.state = State.TERMINATED
        txn.deadlines.clear()
        self._settle(txn)

    def find_invite(self, cancel: Request) -> ServerTransaction | None:
        """The INVITE server transaction a CANCEL names (same branch and sent-by)."""
        key = server_key(cancel)
        return self.servers.get((*key[:-1], "INVITE"))

    # --- time ----------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap:
            at, _, txn = heap[0]
            if txn.terminated or txn.next_deadline() != at:
                heapq.heappop(heap)  # stale: the transaction moved on
                continue
            return at
        return None

    def advance(self, now: float) -> list[Output]:
        """Fire every timer due by ``now``."""
        out: list[Output] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            at, _, txn = heapq.heappop(heap)
            if txn.scheduled == at:
                txn.scheduled = None
            if txn.terminated:
                continue
            due = txn.next_deadline()
            if due is None or due > now:
                self._schedule(txn)  # a stale entry: make sure the real one is there
                continue
            for o in txn.fire(now):
                again = None
                if isinstance(o, Timeout) and isinstance(txn, ClientTransaction):
                    again = self._fail_over(txn, f"timed out (Timer {o.timer})", now)
                out.extend([o] if again is None else again)
            self._settle(txn)
        return out

    def transport_error(self, branch: str, method: str, now: float) -> list[Output]:
        """The transport could not send the request of client transaction (``branch``,
        ``method``): its connection failed (RFC 3261 §17.1.4, §8.1.3.1: as a 503). It
        fails over to the next target as on a time-out, else ends with a
        :class:`Timeout` ("transport") now rather than at Timer B or F."""
        txn = self.clients.get((branch, method))
        if txn is None or txn.terminated:
            return []
        txn._terminate()
        again = self._fail_over(txn, "cannot be reached", now)
        self._settle(txn)
        return [Timeout(txn, "transport")] if again is None else again

    def _fail_over(self, txn: ClientTransaction, why: str, now: float) -> list[Output] | None:
        """``txn``'s request again on a new branch, to the next target if the shell has
        one (RFC 3263 §4.3); None when not. A transaction still absorbing its final
        response (an INVITE's 503: its ACK) leaves a stand-in on the old branch."""
        request = txn.request
        if (
            self.failover is None
            or not txn.may_fail_over
            or request.method == "CANCEL"
            or not self.failover(request, txn.peer, why, txn.tries)
        ):
            return None
        if self.clients.get(txn.key) is txn:
            del self.clients[txn.key]
        if txn.deadlines and not txn.reliable:
            old = Request(request.headers.copy(), request.body, request.method, request.uri)
            stand_in = ClientTransaction(old, self.timers, txn.peer, None, txn.state)
            stand_in.deadlines, stand_in.reliable = dict(txn.deadlines), txn.reliable
            stand_in.ack = txn.ack
            self.clients[stand_in.key] = stand_in
            self._schedule(stand_in)
        txn.tries += 1
        rebranch(request, f"{request.top_via.branch}.{txn.tries}")
        if self.stamp is not None:
            self.stamp(request, txn.peer, None)
        txn.deadlines.clear()
        txn.scheduled = txn.ack = txn.last_response = None
        out = txn.start(now)
        self.clients[txn.key] = txn
        self._schedule(txn)
        return out

    def _settle(self, txn: Transaction) -> None:
        if txn.terminated:
            if isinstance(txn, ClientTransaction):
                if self.clients.get(txn.key) is txn:
                    del self.clients[txn.key]
            else:
                key = server_key(txn.request)
                if self.servers.get(key) is txn:
                    del self.servers[key]
            return
        self._schedule(txn)

    def _schedule(self, txn: Transaction) -> None:
        at = txn.next_deadline()
        if at is not None and at != txn.scheduled:
            txn.scheduled = at
            heapq.heappush(self._heap, (at, next(self._seq), txn))
