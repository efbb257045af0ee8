"""The SIP user agent of one line, sans-I/O: datagrams and requests in, effects out.

:class:`UserAgent` owns the transaction table, the calls and their dialogs, the
registration and the keep-alive. Every method takes ``now`` (monotonic seconds) and
returns a list of effects for the asyncio shell (:mod:`.line`) to carry out:
:class:`Datagram` (send these bytes there), line events for the engine
(:class:`~cti.protocol.CallArrived`, :class:`~cti.protocol.CallerHungUp`),
:class:`MediaStart` / :class:`MediaStop` (the RTP stream of a call), and the progress of
our requests (:class:`DialOutcome`, :class:`TransferOutcome`). The shell calls
:meth:`UserAgent.advance` at :meth:`UserAgent.next_deadline`.

Inbound (UAS): 100 and 180 at once and ``CallArrived``; 200 with SDP on
:meth:`~UserAgent.answer`, retransmitted (T1 doubling to T2) until the ACK, and after
64xT1 without one the call is ended with a BYE; CANCEL before the answer gives 200 and
487; BYE from the caller gives 200 and ``CallerHungUp``. Caller number and name come
from P-Asserted-Identity, else From; ``Privacy: id`` (or an anonymous From) makes the
caller private (``ani="anonymous"``, no name).

Outbound (UAC): :meth:`~UserAgent.dial` sends an INVITE with our SDP offer; 401/407 are
answered once per nonce with digest credentials (CSeq+1, new branch); 18x reports
``ringing``; the 2xx is ACKed (new branch, to the Contact, along the route set) and
starts media; busy, no answer and failures end the call with a :class:`DialOutcome`
and ``CallerHungUp``. Hanging up a ringing outbound call sends CANCEL (only after a
provisional response; a 2xx that crosses it gets ACK then BYE).

Registration: REGISTER with digest, refreshed before it expires, and withdrawn on
:meth:`~UserAgent.stop`. OPTIONS are answered (200 with Allow) and sent to the
registrar or proxy as keep-alive. Hold/resume by re-INVITE (``a=sendonly``, bumped
``o=`` version); blind transfer by REFER, its NOTIFY progress reported.

A datagram that is not SIP is dropped with a log line; a request we can read enough to
answer but that is malformed gets a 400 naming the fault; an unknown method 405; a
request for an unknown dialog 481. Nothing a peer sends raises out of
:meth:`~UserAgent.receive`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import itertools
import logging
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from cti.errors import TelephonyError
from cti.log_limits import LogLimiter
from cti.protocol import CallArrived, CallerHungUp
from telephony_adapters.call_ids import boot_call_ids
from telephony_adapters.sipline.dialog import Dialog
from telephony_adapters.sipline.digest import Challenge, authorization, choose_challenge
from telephony_adapters.sipline.message import (
    Headers,
    ProtocolError,
    Request,
    Response,
    Uri,
    is_number,
    make_response,
    parse,
    parse_address,
    parse_uri,
    split_commas,
    stamp_received,
)
from telephony_adapters.sipline.sdp import (
    MediaPlan,
    NotAcceptable,
    Session,
    accept_answer,
    answer_offer,
    make_offer,
    parse_sdp,
)
from telephony_adapters.sipline.transaction import (
    Addr,
    ClientTransaction,
    Deliver,
    Output,
    ServerTransaction,
    Timeout,
    Timers,
    TransactionTable,
    Transmit,
)

log = logging.getLogger(__name__)

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, NOTIFY, INFO"
_PRIVATE_ANI = "anonymous"
_MAX_CHALLENGES = 3
"""Fresh nonces answered for one request before giving up: a peer that challenges
again and again (even with ``stale=true``, whose nonce must be new) is refused."""


@dataclass(frozen=True, slots=True)
class UaSettings:
    line: str
    host: str
    """The address we listen on (and, without ``public_host``, advertise)."""
    port: int
    public_host: str = ""
    username: str = ""
    password: str = ""
    registrar: str = ""
    """``host[:port]`` or a ``sip:`` URI; empty: no registration."""
    register_expires_s: int = 3600
    outbound_proxy: str = ""
    codecs: tuple[str, ...] = ("PCMU", "PCMA")
    keepalive_s: float = 30.0
    dial_timeout_s: float = 60.0
    """An outbound call ringing this long is cancelled (outcome ``no_answer``)."""
    display_name: str = ""
    user_agent: str = "CTI-Desk"
    timers: Timers = field(default_factory=Timers)


# --- effects ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Datagram:
    data: bytes
    dest: Addr


@dataclass(frozen=True, slots=True)
class MediaStart:
    """Start (or change) the call's RTP stream: from ``local_port`` as ``plan`` says."""

    call_id: str
    local_port: int
    plan: MediaPlan


@dataclass(frozen=True, slots=True)
class MediaStop:
    """The call is over: stop its RTP stream and free ``local_port``."""

    call_id: str
    local_port: int


@dataclass(frozen=True, slots=True)
class DialOutcome:
    """How an outbound call progressed or ended.

    ``outcome``: ``ringing`` (not final), then one of ``answered``, ``busy``,
    ``no_answer``, ``rejected`` (declined or forbidden), ``unauthorized`` (credentials
    refused or missing), ``cancelled`` (we hung up first), ``failed``. ``status`` is
    the SIP status that decided it (0 for a time-out).
    """

    call_id: str
    outcome: str
    status: int
    final: bool


@dataclass(frozen=True, slots=True)
class TransferOutcome:
    """Progress of a blind transfer: the REFER's response, then each NOTIFY's sipfrag
    status. ``final`` with a 2xx: the far end reached the target and our leg ends."""

    call_id: str
    status: int
    final: bool


Effect = (
    Datagram | CallArrived | CallerHungUp | MediaStart | MediaStop | DialOutcome | TransferOutcome
)


def dial_outcome_of(status: int) -> str:
    if status in (486, 600):
        return "busy"
    if status in (408, 480):
        return "no_answer"
    if status in (403, 603):
        return "rejected"
    if status in (401, 407):
        return "unauthorized"
    if status == 487:
        return "cancelled"
    return "failed"


# --- calls -----------------------------------------------------------------------------


@dataclass(eq=False)
class _PendingOk:
    """A 2xx to an INVITE we retransmit until its ACK (RFC 3261 §13.3.1.4)."""

    response: Response
    dest: Addr
    cseq: int
    interval: float
    next_at: float
    give_up_at: float


@dataclass(eq=False)
class _Call:
    call_id: str
    inbound: bool
    sip_call_id: str
    local_tag: str
    invite: Request
    state: str = "ringing"
    """ringing (inbound, unanswered), dialling (outbound, no final response),
    connecting (inbound: 200 sent, no ACK yet), confirmed, ending (BYE sent), ended."""
    server_txn: ServerTransaction | None = None
    client_txn: ClientTransaction | None = None
    dialog: Dialog | None = None
    dest: Addr = ("", 0)
    """Where our requests of this call go (outbound proxy, first route, or target)."""
    remote_offer: Session | None = None
    local_sdp: Session | None = None
    plan: MediaPlan | None = None
    rtp_port: int = 0
    sdp_version: int = 1
    session_id: str = ""
    on_hold: bool = False
    pending_ok: _PendingOk | None = None
    ack: Request | None = None
    """Our ACK of the 2xx (outbound), sent again for each 2xx retransmission."""
    provisional: bool = False
    cancel_pending: bool = False
    cancel_reason: str = ""
    bye_pending: bool = False
    hung_up_by_us: bool = False
    reported_end: bool = False
    auth_nonces: set[str] = field(default_factory=set)
    reinvite_txn: ClientTransaction | None = None
    transferring: bool = False
    ring_deadline: float | None = None
    number: str = ""


class UserAgent:
    """The SIP side of one line. See the module docstring."""

    def __init__(
        self,
        settings: UaSettings,
        *,
        token: Callable[[int], str] = secrets.token_hex,
        call_ids: Iterator[str] | None = None,
    ) -> None:
        self.settings = settings
        self.table = TransactionTable(settings.timers)
        self.calls: dict[str, _Call] = {}
        """Every call with SIP state, by the engine's call id (ended ones until their
        last transaction is done)."""
        self._by_dialog: dict[tuple[str, str], _Call] = {}
        """(SIP Call-ID, our tag) -> call."""
        self._token = token
        self._ids = call_ids if call_ids is not None else boot_call_ids(settings.line)
        self._saved: dict[str, tuple[object, ...] | None] = {}
        """Call -> the fingerprint of its snapshot last handed out (:meth:`saved_changes`)."""
        self._restored: list[str] = []
        """Calls taken up by :meth:`restore`, until :meth:`adopt`."""
        self._timers: list[tuple[float, int, str, str]] = []
        self._timer_at: dict[tuple[str, str], float] = {}
        self._seq = itertools.count()
        self.dropped = 0
        """Datagrams dropped as unreadable or refused as malformed."""
        self.logs = LogLimiter()
        """Every warning a peer can cause is rate-limited on the agent's own clock: a
        flood of bad datagrams writes a line, then a count a minute."""
        self.registered = False
        self.registration_expires_at: float | None = None
        self._reg_call_id = f"{self._token(8)}@{self.host}"
        self._reg_tag = self._token(4)
        self._reg_cseq = 0
        self._reg_nonces: set[str] = set()
        self._reg_expires = settings.register_expires_s
        self._unregistering = False
        self.peer_alive: bool | None = None
        """Whether the registrar or proxy answered the last keep-alive (None: unknown)."""

    # --- addresses -----------------------------------------------------------------

    @property
    def host(self) -> str:
        return self.settings.public_host or self.settings.host

    @property
    def user(self) -> str:
        return self.settings.username or self.settings.line

    def _via(self) -> str:
        branch = f"z9hG4bK{self._token(8)}"
        return f"SIP/2.0/UDP {self.host}:{self.settings.port};branch={branch};rport"

    def _contact(self) -> str:
        return f"<sip:{self.user}@{self.host}:{self.settings.port}>"

    def _uri_of(self, text: str) -> Uri:
        text = text.strip()
        if not text:
            raise TelephonyError(f"line {self.settings.line!r}: no address given")
        return parse_uri(text if text.startswith(("sip:", "sips:")) else f"sip:{text}")

    @property
    def _proxy(self) -> Addr | None:
        if not self.settings.outbound_proxy:
            return None
        return self._uri_of(self.settings.outbound_proxy).host_port

    @property
    def _domain(self) -> str:
        for text in (self.settings.registrar, self.settings.outbound_proxy):
            if text:
                uri = self._uri_of(text)
                return uri.host if uri.port is None else f"{uri.host}:{uri.port}"
        return ""

    def _local_uri(self) -> str:
        name = f'"{self.settings.display_name}" ' if self.settings.display_name else ""
        return f"{name}<sip:{self.user}@{self._domain or self.host}>"

    # --- timers of the user agent (beyond the transactions) ------------------------

    def _at(self, at: float, kind: str, key: str = "") -> None:
        self._timer_at[(kind, key)] = at
        heapq.heappush(self._timers, (at, next(self._seq), kind, key))

    def _cancel_timer(self, kind: str, key: str = "") -> None:
        self._timer_at.pop((kind, key), None)

    def next_deadline(self) -> float | None:
        while self._timers:
            at, _, kind, key = self._timers[0]
            if self._timer_at.get((kind, key)) == at:
                break
            heapq.heappop(self._timers)
        own = self._timers[0][0] if self._timers else None
        txn = self.table.next_deadline()
        if own is None:
            return txn
        return own if txn is None else min(own, txn)

    def advance(self, now: float) -> list[Effect]:
        """Fire everything due by ``now``."""
        self.logs.flush(now)
        out = self._process(self.table.advance(now), now)
        while self._timers and self._timers[0][0] <= now:
            at, _, kind, key = heapq.heappop(self._timers)
            if self._timer_at.get((kind, key)) != at:
                continue
            del self._timer_at[(kind, key)]
            out += self._fire(kind, key, now)
        return out

    def _fire(self, kind: str, key: str, now: float) -> list[Effect]:
        if kind == "register":
            return self._register(now)
        if kind == "keepalive":
            return self._keepalive(now)
        call = self.calls.get(key)
        if call is None:
            return []
        if kind == "ok":
            return self._retransmit_ok(call, now)
        if kind == "ring" and call.state == "dialling":
            log.info("line %s: call %s not answered in time; cancelling", self.settings.line, key)
            return self._cancel_outbound(call, now, reason="no_answer")
        if kind == "cancel" and call.state == "dialling":
            return self._cancel_expired(call, now)
        return []

    # --- start and stop ------------------------------------------------------------

    def start(self, now: float) -> list[Effect]:
        out: list[Effect] = []
        if self.settings.registrar:
            out += self._register(now)
        if self.settings.keepalive_s > 0 and (
            self.settings.registrar or self.settings.outbound_proxy
        ):
            self._at(now + self.settings.keepalive_s, "keepalive")
        return out

    def stop(self, now: float) -> list[Effect]:
        """End every call (BYE, CANCEL or 480) and withdraw the registration."""
        out: list[Effect] = []
        for call in list(self.calls.values()):
            if call.state != "ended" and not call.hung_up_by_us:
                out += self._hang_up(call, now)
        if self.registered:
            self._unregistering = True
            out += self._register(now, expires=0)
        self._cancel_timer("register")
        self._cancel_timer("keepalive")
        return out

    # --- the engine's requests -----------------------------------------------------

    def next_call_id(self) -> str:
        """A new call id (inbound or outbound), unique across restarts and machines."""
        return next(self._ids)

    def live(self, call_id: str) -> bool:
        """The engine may still act on this call (not ended, not hung up by us)."""
        call = self.calls.get(call_id)
        return call is not None and call.state != "ended" and not call.hung_up_by_us

    def call_state(self, call_id: str) -> str | None:
        call = self.calls.get(call_id)
        return None if call is None or not self.live(call_id) else call.state

    def _live_call(self, call_id: str, action: str) -> _Call:
        if not self.live(call_id):
            raise TelephonyError(
                f"line {self.settings.line!r}: no live call {call_id!r} to {action}"
            )
        return self.calls[call_id]

    def answer(self, call_id: str, rtp_port: int, now: float) -> list[Effect]:
        call = self._live_call(call_id, "answer")
        if not call.inbound or call.state != "ringing" or call.server_txn is None:
            raise TelephonyError(
                f"line {self.settings.line!r}: cannot answer call {call_id!r}: it is {call.state}"
            )
        call.rtp_port = rtp_port
        body = b""
        if call.remote_offer is not None:
            answer, plan = answer_offer(
                call.remote_offer,
                self.host,
                rtp_port,
                self.settings.codecs,
                session_id=call.session_id,
                version=call.sdp_version,
            )
            call.local_sdp, call.plan, body = answer, plan, bytes(answer)
        else:  # no offer in the INVITE: ours goes in the 200, the answer in the ACK
            call.local_sdp = make_offer(
                self.host,
                rtp_port,
                self.settings.codecs,
                session_id=call.session_id,
                version=call.sdp_version,
            )
            body = bytes(call.local_sdp)
        ok = self._response(call.invite, 200, call, body=body)
        call.state = "connecting"
        out = self._respond(call.server_txn, ok, now)
        self._start_ok(call, ok, call.server_txn.peer, call.invite.cseq[0], now)
        return out

    def hang_up(self, call_id: str, now: float) -> list[Effect]:
        return self._hang_up(self._live_call(call_id, "hang up"), now)

    def dial(self, number: str, call_id: str, rtp_port: int, now: float) -> list[Effect]:
        if call_id in self.calls:
            raise TelephonyError(f"line {self.settings.line!r}: call {call_id!r} is already live")
        target = self._dial_uri(number)
        local_tag = self._token(4)
        sip_call_id = f"{self._token(10)}@{self.host}"
        h = Headers()
        h.add("Via", self._via())
        h.add("Max-Forwards", "70")
        h.add("From", f"{self._local_uri()};tag={local_tag}")
        h.add("To", f"<{target}>")
        h.add("Call-ID", sip_call_id)
        h.add("CSeq", "1 INVITE")
        if self._proxy is not None:
            h.add("Route", f"<{self._uri_of(self.settings.outbound_proxy).with_params(lr=None)}>")
        h.add("Contact", self._contact())
        h.add("Allow", ALLOW)
        h.add("User-Agent", self.settings.user_agent)
        session_id = str(int(now * 1000) % 10**9 + 1)
        offer = make_offer(
            self.host, rtp_port, self.settings.codecs, session_id=session_id, version=1
        )
        h.add("Content-Type", "application/sdp")
        invite = Request(headers=h, body=bytes(offer), method="INVITE", uri=str(target))
        call = _Call(
            call_id=call_id,
            inbound=False,
            sip_call_id=sip_call_id,
            local_tag=local_tag,
            invite=invite,
            state="dialling",
            local_sdp=offer,
            rtp_port=rtp_port,
            session_id=session_id,
            dest=self._proxy or target.host_port,
            number=number,
        )
        self.calls[call_id] = call
        self._by_dialog[(sip_call_id, local_tag)] = call
        call.ring_deadline = now + self.settings.dial_timeout_s
        self._at(call.ring_deadline, "ring", call_id)
        return self._send_invite(call, invite, now)

    def hold(self, call_id: str, now: float, *, hold: bool = True) -> list[Effect]:
        """Put a connected call on hold (or take it off, ``hold=False``) by re-INVITE."""
        call = self._live_call(call_id, "hold" if hold else "resume")
        if call.state != "confirmed" or call.dialog is None or call.local_sdp is None:
            raise TelephonyError(
                f"line {self.settings.line!r}: call {call_id!r} is {call.state}, not connected"
            )
        if call.reinvite_txn is not None or call.pending_ok is not None:
            raise TelephonyError(
                f"line {self.settings.line!r}: call {call_id!r} is already being changed"
            )
        call.sdp_version += 1
        call.on_hold = hold
        offer = make_offer(
            self.host,
            call.rtp_port,
            self.settings.codecs,
            session_id=call.session_id,
            version=call.sdp_version,
            direction="sendonly" if hold else "sendrecv",
        )
        call.local_sdp = offer
        request = call.dialog.request(
            "INVITE", self._via(), contact=self._contact(), body=bytes(offer)
        )
        txn, outputs = self.table.send(request, call.dest, now, context=call)
        call.reinvite_txn = txn
        return self._process(outputs, now)

    def transfer(self, call_id: str, target: str, now: float) -> list[Effect]:
        """Blind transfer by REFER (RFC 3515): progress comes as :class:`TransferOutcome`."""
        call = self._live_call(call_id, "transfer")
        if call.state != "confirmed" or call.dialog is None:
            raise TelephonyError(
                f"line {self.settings.line!r}: call {call_id!r} is {call.state}, not connected"
            )
        refer_to = self._dial_uri(target)
        request = call.dialog.request(
            "REFER",
            self._via(),
            contact=self._contact(),
            headers=[("Refer-To", f"<{refer_to}>"), ("Referred-By", self._local_uri())],
        )
        call.transferring = True
        _, outputs = self.table.send(request, call.dest, now, context=call)
        return self._process(outputs, now)

    def _dial_uri(self, number: str) -> Uri:
        text = number.strip()
        try:
            if text.startswith(("sip:", "sips:", "tel:")):
                return parse_uri(text)
            if "@" in text:
                return parse_uri(f"sip:{text}")
        except ProtocolError as exc:
            raise TelephonyError(
                f"line {self.settings.line!r}: cannot dial {number!r}: {exc}"
            ) from None
        user = "".join(c for c in text if c.isalnum() or c in "+*#")
        if not user:
            raise TelephonyError(f"line {self.settings.line!r}: cannot dial {number!r}: no digits")
        if not self._domain:
            raise TelephonyError(
                f"line {self.settings.line!r}: cannot dial {number!r}: no registrar or "
                "outbound proxy is configured (dial a full sip: URI instead)"
            )
        return parse_uri(f"sip:{user}@{self._domain};user=phone")

    # --- surviving a restart of the process ------------------------------------------

    def saved_changes(self) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """What to write to the line's dialog store since the last call: the calls whose
        saved form changed (call id -> snapshot) and those to forget. A call is saved
        while it is ringing, being dialled or up and not being ended by us: enough to
        answer, end or carry on its dialog in a new process (see :meth:`restore`)."""
        changed: dict[str, dict[str, Any]] = {}
        for call_id, call in self.calls.items():
            print_ = _fingerprint(call)
            if print_ is None:
                continue
            if self._saved.get(call_id) != print_:
                self._saved[call_id] = print_
                changed[call_id] = _snapshot(call)
        gone = [
            call_id
            for call_id in self._saved
            if call_id not in changed
            and (call_id not in self.calls or _fingerprint(self.calls[call_id]) is None)
        ]
        for call_id in gone:
            del self._saved[call_id]
        return changed, gone

    def restore(self, saved: list[dict[str, Any]], now: float) -> list[str]:
        """Take up calls saved by an earlier process (before :meth:`adopt`). Returns the
        ids of snapshots that could not be read (logged; the caller forgets them)."""
        bad: list[str] = []
        for snapshot in saved:
            call_id = str(snapshot.get("call_id", "?"))
            try:
                call = self._revive(snapshot, now)
            except (ProtocolError, KeyError, TypeError, ValueError) as exc:
                self._warn(
                    now,
                    "line %s: saved call %s unreadable, forgotten: %s",
                    self.settings.line,
                    call_id,
                    exc,
                    error=True,
                )
                bad.append(call_id)
                continue
            self.calls[call.call_id] = call
            self._by_dialog[(call.sip_call_id, call.local_tag)] = call
            self._saved[call.call_id] = _fingerprint(call)
            self._restored.append(call.call_id)
        return bad

    def _revive(self, saved: dict[str, Any], now: float) -> _Call:
        invite = parse(str(saved["invite"]).encode("latin-1"))
        if not isinstance(invite, Request):
            raise ProtocolError("the saved INVITE is a response")
        state = str(saved["state"])
        call = _Call(
            call_id=str(saved["call_id"]),
            inbound=bool(saved["inbound"]),
            sip_call_id=invite.call_id,
            local_tag=str(saved["local_tag"]),
            invite=invite,
            state="confirmed" if state == "connecting" else state,
            dest=_addr(saved["dest"]),
            rtp_port=int(saved["rtp_port"]),
            sdp_version=int(saved["sdp_version"]),
            session_id=str(saved["session_id"]),
            on_hold=bool(saved["on_hold"]),
            provisional=bool(saved["provisional"]),
            number=str(saved["number"]),
        )
        if saved.get("local_sdp"):
            call.local_sdp = parse_sdp(str(saved["local_sdp"]).encode("latin-1"))
        if saved.get("plan"):
            call.plan = MediaPlan(**saved["plan"])
        d = saved.get("dialog")
        if d:
            call.dialog = Dialog(
                call_id=invite.call_id,
                local_tag=call.local_tag,
                remote_tag=str(d["remote_tag"]),
                local_uri=parse_address(str(d["local_uri"])),
                remote_uri=parse_address(str(d["remote_uri"])),
                remote_target=parse_uri(str(d["remote_target"])),
                route_set=[str(r) for r in d["route_set"]],
                local_seq=int(d["local_seq"]),
                remote_seq=None if d["remote_seq"] is None else int(d["remote_seq"]),
            )
        if call.state == "ringing":
            if invite.body:
                call.remote_offer = parse_sdp(invite.body)
            txn = self.table.create_server(invite, _addr(saved["source"]), now, context=call)
            call.server_txn = txn
        elif call.state == "dialling":
            call.client_txn = self.table.resume_client(invite, call.dest, now, context=call)
        elif call.state != "confirmed" or call.dialog is None:
            raise ValueError(f"cannot take up a call that was {state!r}")
        return call

    def adopt(self, call_ids: Sequence[str], now: float) -> tuple[list[str], list[Effect]]:
        """After :meth:`restore`: the engine names the calls it believes live. Returns the
        named ones kept and the effects: a named caller still ringing stays ringing (180
        again), an unnamed one is announced again (``CallArrived``: it reached us as the
        old process died); a named call that is up stays up (its media restarts when the
        shell calls :meth:`resume_media`), an unnamed one gets a BYE; a call we were
        dialling is cancelled (its dialer died with the process); a named call we do not
        have is not kept (the engine ends it)."""
        named = set(call_ids)
        kept: list[str] = []
        out: list[Effect] = []
        restored, self._restored = self._restored, []
        for call_id in restored:
            call = self.calls.get(call_id)
            if call is None or call.state == "ended":
                continue
            if call.state == "ringing" and call.server_txn is not None:
                out += self._respond(call.server_txn, self._response(call.invite, 180, call), now)
                if call_id in named:
                    kept.append(call_id)
                else:
                    log.info(
                        "line %s: call %s rings on: announced again", self.settings.line, call_id
                    )
                    out.append(self._arrival(call))
            elif call.state == "confirmed" and call_id in named:
                kept.append(call_id)
            else:
                log.info(
                    "line %s: call %s (%s) not taken up after the restart: ending it",
                    self.settings.line,
                    call_id,
                    call.state,
                )
                out += self._hang_up(call, now)
        return kept, out

    def resume_media(self, call_id: str, rtp_port: int, now: float) -> list[Effect]:
        """An adopted call's RTP port is open again: on the port it had, its stream
        restarts; on another one, a re-INVITE tells the peer where."""
        call = self.calls.get(call_id)
        if call is None or call.state != "confirmed":
            return []
        if rtp_port == call.rtp_port:
            return [MediaStart(call_id, rtp_port, call.plan)] if call.plan is not None else []
        call.rtp_port = rtp_port
        return self.hold(call_id, now, hold=call.on_hold)

    # --- receiving -------------------------------------------------------------------

    def receive(self, data: bytes, source: Addr, now: float) -> list[Effect]:
        """One datagram from ``source``. Never raises."""
        if not data.strip(b"\r\n\t \x00"):
            return []  # a keep-alive (RFC 5626 CRLF)
        try:
            msg = parse(data)
        except ProtocolError as exc:
            self._refused(now, f"datagram of {len(data)} bytes", source, f"dropped: {exc}")
            return []
        except Exception:  # a parser bug: the datagram is lost, never the line
            self.dropped += 1
            self._warn(
                now,
                "line %s: unreadable datagram of %d bytes from %s:%d; dropped",
                self.settings.line,
                len(data),
                source[0],
                source[1],
                exc_info=True,
            )
            return []
        try:
            if isinstance(msg, Response):
                return self._on_response(msg, now)
            return self._on_request(msg, source, now)
        except ProtocolError as exc:
            self._refused(now, msg.start_line()[:60], source, f"refused: {exc}")
            if isinstance(msg, Request) and msg.method != "ACK":
                return self._stateless(msg, source, 400, warning=str(exc))
            return []
        except Exception:
            self.dropped += 1
            self._warn(
                now,
                "line %s: unexpected failure on %s from %s:%d; the line goes on",
                self.settings.line,
                msg.start_line()[:60],
                source[0],
                source[1],
                exc_info=True,
            )
            return []

    def _refused(self, now: float, what: str, source: Addr, why: str) -> None:
        """Count a refused datagram and log it (rate-limited: see :attr:`logs`)."""
        self.dropped += 1
        self.logs.log(
            log,
            logging.WARNING,
            "line %s: %s from %s:%d %s",
            self.settings.line,
            what,
            *source,
            why,
            now=now,
            key=why.partition(":")[0],  # "dropped" and "refused" counted apart
        )

    def _warn(
        self, now: float, msg: str, *args: object, exc_info: bool = False, error: bool = False
    ) -> None:
        """Log a warning (an error with ``error`` or ``exc_info``), rate-limited."""
        level = logging.ERROR if error or exc_info else logging.WARNING
        self.logs.log(log, level, msg, *args, now=now, exc_info=exc_info, stacklevel=3)

    def _check(self, request: Request) -> None:
        """The fields every request needs (RFC 3261 §8.1.1); ProtocolError names a bad one."""
        request.top_via  # noqa: B018 - parses, or raises naming the fault
        if not request.call_id:
            raise ProtocolError("no Call-ID header")
        _number, method = request.cseq
        if method != request.method:
            raise ProtocolError(f"CSeq method {method!r} differs from the request's")
        request.from_  # noqa: B018
        request.to  # noqa: B018
        parse_uri(request.uri)
        forwards = request.headers.get("Max-Forwards")
        if forwards is not None and not is_number(forwards.strip()):
            raise ProtocolError(f"bad Max-Forwards {forwards[:20]!r}")

    def _stateless(
        self, request: Request, source: Addr, status: int, *, warning: str = ""
    ) -> list[Effect]:
        """A response with no transaction (to a request too broken for one)."""
        text = warning[:120].replace('"', "'").replace("\\", "/")
        headers = [("Warning", f'399 {self.host} "{text}"')] if warning else []
        try:
            dest = request.top_via.response_address(source)
        except ProtocolError:
            dest = source
        try:
            response = make_response(request, status, to_tag=self._token(4), headers=headers)
        except ProtocolError:
            return []
        return [Datagram(bytes(response), dest)]

    def _on_request(self, request: Request, source: Addr, now: float) -> list[Effect]:
        self._check(request)
        stamp_received(request, source)
        # Max-Forwards: 0 is no fault here: we are where the request ends, never a hop
        # (483 is a proxy's answer, RFC 3261 §16.3; an OPTIONS ping often carries 0).
        outputs = self.table.receive_request(request, now)
        if outputs is not None:
            return self._process(outputs, now)  # a retransmission, or a non-2xx's ACK
        method = request.method
        if method == "ACK":
            return self._on_ack(request, now)
        txn = self.table.create_server(request, source, now)
        try:
            return self._dispatch(request, txn, now)
        except ProtocolError as exc:
            self._refused(now, request.start_line()[:60], txn.peer, f"refused: {exc}")
            text = str(exc)[:120].replace('"', "'").replace("\\", "/")
            return self._reply(
                txn, request, 400, now, extra=[("Warning", f'399 {self.host} "{text}"')]
            )
        except Exception:
            self._warn(
                now,
                "line %s: failure on %s",
                self.settings.line,
                request.start_line()[:60],
                exc_info=True,
            )
            return self._reply(txn, request, 500, now)

    def _dispatch(self, request: Request, txn: ServerTransaction, now: float) -> list[Effect]:
        method = request.method
        if method == "INVITE":
            if request.to.tag:
                return self._on_reinvite(request, txn, now)
            return self._on_invite(request, txn, now)
        if method == "CANCEL":
            return self._on_cancel(request, txn, now)
        if method == "OPTIONS":
            return self._reply(txn, request, 200, now, extra=self._capabilities())
        if method == "BYE":
            return self._on_bye(request, txn, now)
        if method == "NOTIFY":
            return self._on_notify(request, txn, now)
        if method == "INFO":
            return self._on_info(request, txn, now)
        return self._reply(txn, request, 405, now, extra=[("Allow", ALLOW)])

    def _capabilities(self) -> list[tuple[str, str]]:
        return [
            ("Allow", ALLOW),
            ("Accept", "application/sdp"),
            ("Supported", "replaces"),
            ("Contact", self._contact()),
        ]

    def _reply(
        self,
        txn: ServerTransaction,
        request: Request,
        status: int,
        now: float,
        *,
        extra: list[tuple[str, str]] | None = None,
        to_tag: str = "",
    ) -> list[Effect]:
        response = make_response(
            request,
            status,
            to_tag=to_tag or (self._token(4) if status > 100 else ""),
            headers=[*(extra or []), ("User-Agent", self.settings.user_agent)],
        )
        return self._respond(txn, response, now)

    def _respond(self, txn: ServerTransaction, response: Response, now: float) -> list[Effect]:
        return self._process(self.table.respond(txn, response, now), now)

    def _response(
        self, request: Request, status: int, call: _Call, *, body: bytes = b""
    ) -> Response:
        """A response of the call's dialog: our tag, Contact, Record-Route copied."""
        headers = [("Contact", self._contact()), ("Allow", ALLOW)]
        headers += [("Record-Route", rr) for rr in request.headers.get_all("Record-Route")]
        headers.append(("User-Agent", self.settings.user_agent))
        if body:
            headers.append(("Content-Type", "application/sdp"))
        return make_response(request, status, to_tag=call.local_tag, headers=headers, body=body)

    # --- inbound calls ---------------------------------------------------------------

    def _on_invite(self, request: Request, txn: ServerTransaction, now: float) -> list[Effect]:
        unsupported = [
            ext
            for ext in (
                e.lower() for v in request.headers.get_all("Require") for e in split_commas(v)
            )
            if ext not in ("replaces",)
        ]
        if unsupported:
            return self._reply(
                txn, request, 420, now, extra=[("Unsupported", ", ".join(unsupported))]
            )
        offer: Session | None = None
        if request.body:
            content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if content_type != "application/sdp":
                return self._reply(txn, request, 415, now, extra=[("Accept", "application/sdp")])
            try:
                offer = parse_sdp(request.body)
                answer_offer(offer, self.host, 9, self.settings.codecs, session_id="0", version=0)
            except NotAcceptable as exc:
                return self._reply(
                    txn, request, 488, now, extra=[("Warning", f'304 {self.host} "{exc}"')]
                )
        if not request.headers.values("Contact"):
            raise ProtocolError("INVITE without Contact")
        parse_address(request.headers.values("Contact")[0])
        call_id = self.next_call_id()
        call = _Call(
            call_id=call_id,
            inbound=True,
            sip_call_id=request.call_id,
            local_tag=self._token(4),
            invite=request,
            server_txn=txn,
            remote_offer=offer,
            session_id=str(int(now * 1000) % 10**9 + 1),
        )
        txn.context = call
        call.dialog = Dialog.as_uas(request, call.local_tag)
        call.dest = self._proxy or call.dialog.next_hop()
        self.calls[call_id] = call
        self._by_dialog[(request.call_id, call.local_tag)] = call
        out = self._reply(txn, request, 100, now)
        out += self._respond(txn, self._response(request, 180, call), now)
        arrived = self._arrival(call)
        out.append(arrived)
        log.info(
            "line %s: call %s from %r (%s) to %r",
            self.settings.line,
            call_id,
            arrived.ani,
            arrived.caller_name,
            arrived.dnis,
        )
        return out

    def _arrival(self, call: _Call) -> CallArrived:
        """The engine's news of an inbound call (who calls, which number they dialled)."""
        ani, name = caller_identity(call.invite)
        dnis = parse_uri(call.invite.uri).user or call.invite.to.uri.user
        return CallArrived(
            call_id=call.call_id, ani=ani, dnis=dnis, line=self.settings.line, caller_name=name
        )

    def _on_cancel(self, request: Request, txn: ServerTransaction, now: float) -> list[Effect]:
        invite_txn = self.table.find_invite(request)
        if invite_txn is None or not isinstance(invite_txn.context, _Call):
            return self._reply(txn, request, 481, now)
        call = invite_txn.context
        out = self._reply(txn, request, 200, now, to_tag=call.local_tag)
        if call.state == "ringing":
            out += self._respond(invite_txn, self._response(call.invite, 487, call), now)
            out += self._end(call, by_peer=True)
        return out

    def _on_ack(self, request: Request, now: float) -> list[Effect]:
        call = self._by_dialog.get((request.call_id, request.to.tag))
        pending = call.pending_ok if call is not None else None
        if call is None or pending is None or request.cseq[0] != pending.cseq:
            return []  # an ACK for nothing we wait for: absorbed (never answered)
        call.pending_ok = None
        self._cancel_timer("ok", call.call_id)
        if call.state == "ended":
            return []
        if request.body and call.plan is None and call.local_sdp is not None:
            try:
                call.plan = accept_answer(call.local_sdp, parse_sdp(request.body))
            except ProtocolError as exc:
                self._warn(
                    now,
                    "line %s: call %s: bad SDP in ACK: %s",
                    self.settings.line,
                    call.call_id,
                    exc,
                )
        call.state = "confirmed"
        out: list[Effect] = []
        if call.plan is not None:
            out.append(MediaStart(call.call_id, call.rtp_port, call.plan))
        if call.bye_pending:
            out += self._send_bye(call, now)
        return out

    def _start_ok(self, call: _Call, ok: Response, dest: Addr, cseq: int, now: float) -> None:
        t = self.settings.timers
        call.pending_ok = _PendingOk(ok, dest, cseq, t.t1, now + t.t1, now + 64 * t.t1)
        self._at(now + t.t1, "ok", call.call_id)

    def _retransmit_ok(self, call: _Call, now: float) -> list[Effect]:
        pending = call.pending_ok
        if pending is None:
            return []
        if now >= pending.give_up_at:
            call.pending_ok = None
            self._warn(
                now,
                "line %s: call %s: no ACK for our 200 in 64xT1; ending it",
                self.settings.line,
                call.call_id,
            )
            if call.state == "ended":
                return []
            call.state = "confirmed"
            return self._send_bye(call, now) + self._end(call, by_peer=True, keep=True)
        pending.interval = min(2 * pending.interval, self.settings.timers.t2)
        pending.next_at = min(now + pending.interval, pending.give_up_at)
        self._at(pending.next_at, "ok", call.call_id)
        return [Datagram(bytes(pending.response), pending.dest)]

    def _on_reinvite(self, request: Request, txn: ServerTransaction, now: float) -> list[Effect]:
        call = self._by_dialog.get((request.call_id, request.to.tag))
        if call is None or call.dialog is None or call.state == "ended":
            return self._reply(txn, request, 481, now)
        if not call.dialog.accepts(request):
            return self._reply(txn, request, 500, now, extra=[("Retry-After", "1")])
        if (
            call.reinvite_txn is not None
            or call.pending_ok is not None
            or call.state != "confirmed"
        ):
            return self._reply(txn, request, 491, now)
        txn.context = call
        call.dialog.refresh_target(request)
        body = b""
        if request.body:
            try:
                offer = parse_sdp(request.body)
                call.sdp_version += 1
                answer, plan = answer_offer(
                    offer,
                    self.host,
                    call.rtp_port,
                    self.settings.codecs,
                    session_id=call.session_id,
                    version=call.sdp_version,
                    hold=call.on_hold,
                )
            except NotAcceptable:
                return self._reply(txn, request, 488, now, to_tag=call.local_tag)
            call.local_sdp, call.plan, body = answer, plan, bytes(answer)
        elif call.local_sdp is not None:
            body = bytes(call.local_sdp)
        ok = self._response(request, 200, call, body=body)
        out = self._respond(txn, ok, now)
        self._start_ok(call, ok, txn.peer, request.cseq[0], now)
        if call.plan is not None:
            out.append(MediaStart(call.call_id, call.rtp_port, call.plan))
        return out

    def _on_bye(self, request: Request, txn: ServerTransaction, now: float) -> list[Effect]:
        call = self._by_dialog.get((request.call_id, request.to.tag))
        if (
            call is None
            or call.state == "ended"
            or (call.dialog and not call.dialog.accepts(request))
        ):
            return self._reply(txn, request, 481, now)
        out = self._reply(txn, request, 200, now, to_tag=call.local_tag)
        if call.inbound and call.state == "ringing" and call.server_txn is not None:
            out += self._respond(call.server_txn, self._response(call.invite, 487, call), now)
        return out + self._end(call, by_peer=not call.hung_up_by_us and not call.transferring)

    def _on_info(self, request: Request, txn: ServerTransaction, now: float) -> list[Effect]:
        call = self._by_dialog.get((request.call_id, request.to.tag))
        if call is None:
            return self._reply(txn, request, 481, now)
        body = request.body.decode("utf-8", "replace")
        for line in body.splitlines():
            key, _, value = line.partition("=")
            if key.strip().lower() == "signal":
                log.info(
                    "line %s: call %s: DTMF %r (SIP INFO)",
                    self.settings.line,
                    call.call_id,
                    value.strip(),
                )
        return self._reply(txn, request, 200, now, to_tag=call.local_tag)

    def _on_notify(self, request: Request, txn: ServerTransaction, now: float) -> list[Effect]:
        if not request.to.tag:
            return self._reply(txn, request, 200, now)  # unsolicited (message waiting...)
        call = self._by_dialog.get((request.call_id, request.to.tag))
        if call is None or not call.transferring:
            return self._reply(txn, request, 481, now)
        out = self._reply(txn, request, 200, now, to_tag=call.local_tag)
        status = 0
        frag = request.body.decode("utf-8", "replace").strip().split("\r\n")[0].split("\n")[0]
        parts = frag.split()
        if len(parts) >= 2 and parts[0].upper() == "SIP/2.0" and is_number(parts[1], 3):
            status = int(parts[1])
        state = (request.headers.get("Subscription-State") or "").split(";")[0].strip().lower()
        final = status >= 200 or state == "terminated"
        out.append(TransferOutcome(call.call_id, status, final))
        if final:
            call.transferring = False
            if 200 <= status < 300 and call.state == "confirmed":
                log.info("line %s: call %s transferred", self.settings.line, call.call_id)
                call.hung_up_by_us = True
                out += self._send_bye(call, now)
        return out

    # --- outbound calls --------------------------------------------------------------

    def _send_invite(self, call: _Call, invite: Request, now: float) -> list[Effect]:
        call.invite = invite
        txn, outputs = self.table.send(invite, call.dest, now, context=call)
        call.client_txn = txn
        return self._process(outputs, now)

    def _on_invite_response(
        self, call: _Call, response: Response, txn: ClientTransaction, now: float
    ) -> list[Effect]:
        if txn is call.reinvite_txn:
            return self._on_reinvite_response(call, response, txn, now)
        status = response.status
        out: list[Effect] = []
        if status < 200:
            if status > 100 and response.to.tag and call.dialog is None:
                with contextlib.suppress(ProtocolError):  # an 18x without Contact: no dialog
                    call.dialog = Dialog.as_uac(call.invite, response)
            if not call.provisional:
                call.provisional = True
                if call.cancel_pending:
                    return self._send_cancel(call, now)
            if status in (180, 183) and call.state == "dialling" and not call.hung_up_by_us:
                out.append(DialOutcome(call.call_id, "ringing", status, False))
            return out
        self._cancel_timer("ring", call.call_id)
        if status < 300:
            return self._on_outbound_ok(call, response, now)
        challenge = choose_challenge(response) if status in (401, 407) else None
        if (
            challenge is not None
            and call.state == "dialling"
            and not call.hung_up_by_us
            and self.settings.username
            and challenge.nonce not in call.auth_nonces
            and len(call.auth_nonces) < _MAX_CHALLENGES
        ):
            call.auth_nonces.add(challenge.nonce)
            call.provisional = False  # a CANCEL waits for a provisional to the new INVITE
            return self._send_invite(call, self._authorized(call.invite, challenge), now)
        outcome = dial_outcome_of(status)
        if status == 487 and call.cancel_reason:
            outcome = call.cancel_reason
        log.info(
            "line %s: call %s to %r: %d %s (%s)",
            self.settings.line,
            call.call_id,
            call.number,
            status,
            response.reason,
            outcome,
        )
        out.append(DialOutcome(call.call_id, outcome, status, True))
        return out + self._end(call, by_peer=True)

    def _on_outbound_ok(self, call: _Call, response: Response, now: float) -> list[Effect]:
        if call.ack is not None:  # a retransmitted 2xx: ACK it again
            return [Datagram(bytes(call.ack), call.dest)]
        if not response.headers.values("Contact"):
            response.headers.add("Contact", f"<{call.invite.uri}>")  # lenient: target stays
        if call.dialog is None or call.dialog.remote_tag != response.to.tag:
            call.dialog = Dialog.as_uac(call.invite, response)
        else:
            call.dialog.confirm(response)
        dialog = call.dialog
        if self._proxy is None:
            call.dest = dialog.next_hop()
        self._by_dialog[(call.sip_call_id, call.local_tag)] = call
        call.ack = dialog.request("ACK", self._via(), cseq=call.invite.cseq[0])
        out: list[Effect] = [Datagram(bytes(call.ack), call.dest)]
        if call.hung_up_by_us or call.state != "dialling":
            call.state = "confirmed"
            return out + self._send_bye(call, now)  # the 2xx crossed our CANCEL
        call.state = "confirmed"
        try:
            if call.local_sdp is not None and response.body:
                call.plan = accept_answer(call.local_sdp, parse_sdp(response.body))
        except ProtocolError as exc:
            self._warn(
                now,
                "line %s: call %s: answer SDP refused: %s; hanging up",
                self.settings.line,
                call.call_id,
                exc,
            )
            out.append(DialOutcome(call.call_id, "failed", 488, True))
            return out + self._send_bye(call, now) + self._end(call, by_peer=True, keep=True)
        out.append(DialOutcome(call.call_id, "answered", response.status, True))
        if call.plan is not None:
            out.append(MediaStart(call.call_id, call.rtp_port, call.plan))
        return out

    def _on_reinvite_response(
        self, call: _Call, response: Response, txn: ClientTransaction, now: float
    ) -> list[Effect]:
        if response.status < 200:
            return []
        call.reinvite_txn = None
        if response.status >= 300:
            self._warn(
                now,
                "line %s: call %s: re-INVITE refused: %d %s",
                self.settings.line,
                call.call_id,
                response.status,
                response.reason,
            )
            call.on_hold = not call.on_hold
            return []
        if call.dialog is None:
            return []
        call.dialog.refresh_target(response)
        ack = call.dialog.request("ACK", self._via(), cseq=txn.request.cseq[0])
        out: list[Effect] = [Datagram(bytes(ack), call.dest)]
        try:
            if call.local_sdp is not None and response.body:
                call.plan = accept_answer(call.local_sdp, parse_sdp(response.body))
                out.append(MediaStart(call.call_id, call.rtp_port, call.plan))
        except ProtocolError as exc:
            self._warn(
                now,
                "line %s: call %s: re-INVITE answer refused: %s",
                self.settings.line,
                call.call_id,
                exc,
            )
        return out

    def _authorized(self, request: Request, challenge: Challenge) -> Request:
        """``request`` again with credentials, CSeq+1 and a new branch (RFC 3261 §22.2)."""
        h = request.headers.copy()
        h.set("Via", self._via())
        number, method = request.cseq
        h.set("CSeq", f"{number + 1} {method}")
        h.remove(challenge.header_name)
        again = Request(headers=h, body=request.body, method=request.method, uri=request.uri)
        h.add(*self._credentials(again, challenge))
        return again

    def _credentials(self, request: Request, challenge: Challenge) -> tuple[str, str]:
        """The (Proxy-)Authorization header answering ``challenge`` for ``request``."""
        value = authorization(
            challenge,
            username=self.settings.username,
            password=self.settings.password,
            method=request.method,
            uri=request.uri,
            cnonce=self._token(8),
            nc=1,
            body=request.body,
        )
        return challenge.header_name, value

    def _cancel_outbound(self, call: _Call, now: float, *, reason: str) -> list[Effect]:
        call.cancel_reason = reason
        if not call.provisional:
            call.cancel_pending = True
            return []
        return self._send_cancel(call, now)

    def _send_cancel(self, call: _Call, now: float) -> list[Effect]:
        invite = call.invite
        h = Headers()
        h.add("Via", invite.headers.values("Via")[0])
        h.add("Max-Forwards", "70")
        for name in ("From", "To", "Call-ID"):
            h.add(name, invite.headers.get(name) or "")
        h.add("CSeq", f"{invite.cseq[0]} CANCEL")
        for route in invite.headers.get_all("Route"):
            h.add("Route", route)
        cancel = Request(headers=h, method="CANCEL", uri=invite.uri)
        try:
            _, outputs = self.table.send(cancel, call.dest, now, context=call)
        except ProtocolError:
            return []  # a CANCEL of this INVITE is already on its way
        self._at(now + 64 * self.settings.timers.t1, "cancel", call.call_id)
        return self._process(outputs, now)

    def _cancel_expired(self, call: _Call, now: float) -> list[Effect]:
        """No final response 64xT1 after our CANCEL (RFC 3261 §9.1): the INVITE is
        taken as cancelled and its transaction forgotten, so the call and the dialer's
        wait for its outcome end."""
        self._warn(
            now,
            "line %s: call %s to %r: no final response to our CANCEL; taken as cancelled",
            self.settings.line,
            call.call_id,
            call.number,
        )
        if call.client_txn is not None:
            self.table.abandon(call.client_txn)
        outcome = DialOutcome(call.call_id, call.cancel_reason or "cancelled", 0, True)
        return [outcome, *self._end(call, by_peer=True)]

    # --- ending calls ----------------------------------------------------------------

    def _hang_up(self, call: _Call, now: float) -> list[Effect]:
        call.hung_up_by_us = True
        self._cancel_timer("ring", call.call_id)
        if call.state == "ringing" and call.server_txn is not None:  # inbound, unanswered
            out = self._respond(call.server_txn, self._response(call.invite, 480, call), now)
            return out + self._end(call, by_peer=False)
        if call.state == "dialling":
            return self._cancel_outbound(call, now, reason="cancelled")
        if call.state == "connecting":
            call.bye_pending = True  # no BYE before the ACK (RFC 3261 §15)
            return []
        if call.state == "confirmed":
            return self._send_bye(call, now)
        return []

    def _send_bye(self, call: _Call, now: float) -> list[Effect]:
        if call.dialog is None or call.state == "ending":
            return self._end(call, by_peer=False)
        bye = call.dialog.request("BYE", self._via())
        call.state = "ending"
        call.bye_pending = False
        _, outputs = self.table.send(bye, call.dest, now, context=call)
        return self._process(outputs, now) + self._media_stop(call)

    def _media_stop(self, call: _Call) -> list[Effect]:
        if not call.rtp_port:
            return []
        port, call.rtp_port = call.rtp_port, 0
        return [MediaStop(call.call_id, port)]

    def _end(self, call: _Call, *, by_peer: bool, keep: bool = False) -> list[Effect]:
        """The call is over for the engine. ``keep``: its BYE is still on its way."""
        out: list[Effect] = []
        if by_peer and not call.hung_up_by_us and not call.reported_end:
            out.append(CallerHungUp(call_id=call.call_id, line=self.settings.line))
        call.reported_end = True
        out += self._media_stop(call)
        self._cancel_timer("ring", call.call_id)
        self._cancel_timer("cancel", call.call_id)
        if keep:
            call.hung_up_by_us = True
            return out
        call.state = "ended"
        call.pending_ok = None
        self._cancel_timer("ok", call.call_id)
        self.calls.pop(call.call_id, None)
        self._by_dialog.pop((call.sip_call_id, call.local_tag), None)
        return out

    # --- responses -------------------------------------------------------------------

    def _on_response(self, response: Response, now: float) -> list[Effect]:
        response.top_via  # noqa: B018
        _number, method = response.cseq
        outputs = self.table.receive_response(response, now)
        if outputs is not None:
            return self._process(outputs, now)
        if method == "INVITE" and 200 <= response.status < 300:
            # A 2xx retransmission after the transaction ended: ACK it again.
            call = self._by_dialog.get((response.call_id, response.from_.tag))
            if call is not None and call.ack is not None:
                return [Datagram(bytes(call.ack), call.dest)]
        return []

    def _process(self, outputs: list[Output], now: float) -> list[Effect]:
        out: list[Effect] = []
        for o in outputs:
            if isinstance(o, Transmit):
                out.append(Datagram(bytes(o.message), o.dest))
            elif isinstance(o, Deliver):
                txn = o.transaction
                if isinstance(txn, ClientTransaction) and isinstance(o.message, Response):
                    out += self._on_client_response(txn, o.message, now)
                elif isinstance(o.message, Request) and o.message.method == "ACK":
                    out += self._on_ack(o.message, now)
            elif isinstance(o, Timeout):
                out += self._on_timeout(o, now)
        return out

    def _on_client_response(
        self, txn: ClientTransaction, response: Response, now: float
    ) -> list[Effect]:
        method = txn.request.method
        call = txn.context if isinstance(txn.context, _Call) else None
        if method == "REGISTER":
            return self._on_register_response(txn, response, now)
        if method == "OPTIONS":
            self.peer_alive = True
            return []
        if call is None:
            return []
        if method == "INVITE":
            return self._on_invite_response(call, response, txn, now)
        if method == "BYE" and response.status >= 200:
            challenge = choose_challenge(response) if response.status in (401, 407) else None
            if (
                challenge is not None
                and call.dialog is not None
                and self.settings.username
                and challenge.nonce not in call.auth_nonces
                and len(call.auth_nonces) < _MAX_CHALLENGES
            ):
                call.auth_nonces.add(challenge.nonce)
                retry = self._authorized(txn.request, challenge)
                call.dialog.local_seq = retry.cseq[0]
                _, outputs = self.table.send(retry, call.dest, now, context=call)
                return self._process(outputs, now)
            return self._end(call, by_peer=False)
        if method == "REFER" and response.status >= 200:
            if response.status >= 300:
                call.transferring = False
            return [TransferOutcome(call.call_id, response.status, response.status >= 300)]
        return []

    def _on_timeout(self, timeout: Timeout, now: float) -> list[Effect]:
        txn = timeout.transaction
        method = txn.request.method
        call = txn.context if isinstance(txn.context, _Call) else None
        if method == "REGISTER":
            self._warn(
                now,
                "line %s: registrar %s does not answer",
                self.settings.line,
                self.settings.registrar,
            )
            self.registered = False
            if not self._unregistering:
                self._at(now + 30.0, "register")
            return []
        if method == "OPTIONS" and isinstance(txn, ClientTransaction):
            if self.peer_alive is not False:
                self._warn(
                    now,
                    "line %s: keep-alive OPTIONS to %s:%d unanswered",
                    self.settings.line,
                    *txn.peer,
                )
            self.peer_alive = False
            return []
        if call is None:
            return []
        if isinstance(txn, ServerTransaction):
            return []  # Timer H on a 4xx-6xx to an INVITE: nothing more to do
        if method == "INVITE" and txn is call.reinvite_txn:
            call.reinvite_txn = None
            self._warn(
                now,
                "line %s: call %s: re-INVITE unanswered; ending it",
                self.settings.line,
                call.call_id,
            )
            return self._send_bye(call, now) + self._end(call, by_peer=True, keep=True)
        if method == "INVITE":
            # Always a final outcome: the dialer waits for one even after its hang-up.
            if call.hung_up_by_us:
                out: list[Effect] = [DialOutcome(call.call_id, "cancelled", 0, True)]
            else:
                out = [DialOutcome(call.call_id, "failed", 0, True)]
                self._warn(
                    now,
                    "line %s: call %s to %r: no response",
                    self.settings.line,
                    call.call_id,
                    call.number,
                )
            return out + self._end(call, by_peer=True)
        if method == "BYE":
            return self._end(call, by_peer=False)
        if method == "REFER":
            call.transferring = False
            return [TransferOutcome(call.call_id, 408, True)]
        return []

    # --- registration and keep-alive --------------------------------------------------

    def _register(
        self, now: float, *, expires: int | None = None, challenge: Challenge | None = None
    ) -> list[Effect]:
        registrar = self._uri_of(self.settings.registrar)
        if challenge is None:
            self._reg_nonces.clear()  # a new attempt: each challenge may be answered again
        expires = self._reg_expires if expires is None else expires
        self._reg_cseq += 1
        aor = f"<sip:{self.user}@{self._domain}>"
        h = Headers()
        h.add("Via", self._via())
        h.add("Max-Forwards", "70")
        h.add("From", f"{aor};tag={self._reg_tag}")
        h.add("To", aor)
        h.add("Call-ID", self._reg_call_id)
        h.add("CSeq", f"{self._reg_cseq} REGISTER")
        h.add("Contact", f"{self._contact()};expires={expires}")
        h.add("Expires", str(expires))
        h.add("Allow", ALLOW)
        h.add("User-Agent", self.settings.user_agent)
        uri = str(Uri(registrar.scheme, "", registrar.host, registrar.port))
        request = Request(headers=h, method="REGISTER", uri=uri)
        if challenge is not None:
            h.add(*self._credentials(request, challenge))
        _, outputs = self.table.send(request, self._proxy or registrar.host_port, now)
        return self._process(outputs, now)

    def _on_register_response(
        self, txn: ClientTransaction, response: Response, now: float
    ) -> list[Effect]:
        status = response.status
        if status < 200:
            return []
        asked = int((txn.request.headers.get("Expires") or "0").strip() or 0)
        if 200 <= status < 300:
            if asked == 0:
                self.registered = False
                self.registration_expires_at = None
                return []
            granted = asked
            for contact in response.headers.values("Contact"):
                try:
                    address = parse_address(contact)
                except ProtocolError:
                    continue
                value = address.params.get("expires") or ""
                if address.uri.user == self.user and is_number(value):
                    granted = int(value)
            header = (response.headers.get("Expires") or "").strip()
            if is_number(header) and not any(
                "expires=" in c for c in response.headers.values("Contact")
            ):
                granted = int(header)
            granted = max(granted, 1)
            self.registered = True
            self._reg_nonces.clear()
            self.registration_expires_at = now + granted
            self._at(now + max(granted - 30, granted / 2), "register")
            log.info(
                "line %s: registered at %s for %d s",
                self.settings.line,
                self.settings.registrar,
                granted,
            )
            return []
        if status in (401, 407):
            challenge = choose_challenge(response)
            if (
                challenge is not None
                and self.settings.username
                and challenge.nonce not in self._reg_nonces
                and len(self._reg_nonces) < _MAX_CHALLENGES
            ):
                self._reg_nonces.add(challenge.nonce)
                return self._register(now, expires=asked, challenge=challenge)
        if status == 423:
            minimum = (response.headers.get("Min-Expires") or "").strip()
            if is_number(minimum) and int(minimum) > asked:
                self._reg_expires = int(minimum)
                return self._register(now)
        self._warn(
            now, "line %s: registration refused: %d %s", self.settings.line, status, response.reason
        )
        self.registered = False
        if asked:
            self._at(now + 60.0, "register")
        return []

    def _keepalive(self, now: float) -> list[Effect]:
        self._at(now + self.settings.keepalive_s, "keepalive")
        target = self.settings.outbound_proxy or self.settings.registrar
        uri = self._uri_of(target)
        h = Headers()
        h.add("Via", self._via())
        h.add("Max-Forwards", "70")
        h.add("From", f"{self._local_uri()};tag={self._token(4)}")
        h.add("To", f"<{Uri(uri.scheme, '', uri.host, uri.port)}>")
        h.add("Call-ID", f"{self._token(8)}@{self.host}")
        h.add("CSeq", "1 OPTIONS")
        h.add("Accept", "application/sdp")
        h.add("User-Agent", self.settings.user_agent)
        request = Request(
            headers=h, method="OPTIONS", uri=str(Uri(uri.scheme, "", uri.host, uri.port))
        )
        _, outputs = self.table.send(request, uri.host_port, now)
        return self._process(outputs, now)


def _addr(value: Any) -> Addr:
    host, port = value
    return str(host), int(port)


def _fingerprint(call: _Call) -> tuple[object, ...] | None:
    """What a saved call's snapshot depends on; None: not to be saved (over, or being
    ended by us: a new process has nothing to do for it)."""
    if call.state not in ("ringing", "dialling", "connecting", "confirmed"):
        return None
    if call.hung_up_by_us or call.reported_end:
        return None
    d = call.dialog
    dialog = None if d is None else (d.remote_tag, str(d.remote_target), d.local_seq, d.remote_seq)
    return (
        call.state,
        id(call.invite),
        dialog,
        call.dest,
        call.rtp_port,
        call.sdp_version,
        call.on_hold,
        call.provisional,
        call.plan,
    )


def _snapshot(call: _Call) -> dict[str, Any]:
    """A call as JSON-ready data, for :meth:`UserAgent.restore` in another process."""
    d = call.dialog
    txn = call.server_txn
    return {
        "call_id": call.call_id,
        "inbound": call.inbound,
        "state": call.state,
        "invite": bytes(call.invite).decode("latin-1"),
        "source": list(txn.peer) if txn is not None else list(call.dest),
        "local_tag": call.local_tag,
        "dest": list(call.dest),
        "rtp_port": call.rtp_port,
        "sdp_version": call.sdp_version,
        "session_id": call.session_id,
        "on_hold": call.on_hold,
        "provisional": call.provisional,
        "number": call.number,
        "local_sdp": bytes(call.local_sdp).decode("latin-1") if call.local_sdp else "",
        "plan": dataclasses.asdict(call.plan) if call.plan is not None else None,
        "dialog": None
        if d is None
        else {
            "remote_tag": d.remote_tag,
            "local_uri": str(d.local_uri),
            "remote_uri": str(d.remote_uri),
            "remote_target": str(d.remote_target),
            "route_set": list(d.route_set),
            "local_seq": d.local_seq,
            "remote_seq": d.remote_seq,
        },
    }


def caller_identity(request: Request) -> tuple[str, str]:
    """(ani, name) of an INVITE: P-Asserted-Identity first, else From; ``anonymous``
    and no name when the caller asked for privacy (RFC 3323/3325)."""
    privacy = {
        p.strip().lower()
        for v in request.headers.get_all("Privacy")
        for p in v.replace(",", ";").split(";")
    }
    source = request.from_
    for value in request.headers.values("P-Asserted-Identity"):
        try:
            asserted = parse_address(value)
        except ProtocolError:
            continue
        if asserted.uri.scheme in ("sip", "sips", "tel"):
            source = asserted
            break
    user = source.uri.user.split(";")[0]
    anonymous = (
        source.uri.host.endswith("anonymous.invalid")
        or user.lower() in ("anonymous", "restricted", "unavailable")
        or source.display.strip().lower() == "anonymous"
    )
    if "id" in privacy or "user" in privacy or "header" in privacy or anonymous:
        return _PRIVATE_ANI, ""
    return user, source.display
