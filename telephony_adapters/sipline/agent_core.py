"""What the parts of one SIP user agent share: its settings, transaction table, calls
and timers, its addresses, and the messages and log lines every part makes.

:class:`~.useragent.UserAgent` builds one :class:`AgentCore` and hands it to its parts
(:mod:`.registration`, :mod:`.keepalive`, :mod:`.uas`, :mod:`.uac`, :mod:`.in_dialog`,
:mod:`.saved_calls`). Sans-I/O like them: every method that may send takes ``now``.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from cti.errors import TelephonyError
from cti.log_limits import LogLimiter
from cti.protocol import CallerHungUp
from telephony_adapters.sipline.call import PendingOk, SipCall
from telephony_adapters.sipline.digest import Challenge, authorization
from telephony_adapters.sipline.effects import AgentLegProgress, Effect, MediaStop, datagrams
from telephony_adapters.sipline.message import (
    Request,
    Response,
    SipSyntaxError,
    Uri,
    make_response,
    parse_uri,
    quote,
)
from telephony_adapters.sipline.phone_auth import PhoneSettings
from telephony_adapters.sipline.routing import target_uri, uri_transport
from telephony_adapters.sipline.sdp import MediaPlan, SrtpPolicy, secure_offer
from telephony_adapters.sipline.transaction import (
    Addr,
    ClientTransaction,
    ServerTransaction,
    Timers,
    TransactionTable,
)

log = logging.getLogger(__name__)

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, NOTIFY, INFO, PRACK, UPDATE, REFER"
SUPPORTED = "100rel, timer, replaces"
"""What our requests and OPTIONS answers say we support: reliable provisionals to our
INVITEs (we send none: a ``Require: 100rel`` INVITE gets 420), session timers, Replaces."""
MAX_CHALLENGES = 3
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
    phones: PhoneSettings | None = None
    """The agents' phones (registrar, fixed URIs); None: the line rings no phones."""
    session_expires_s: int = 1800
    """The session interval our INVITEs ask for (RFC 4028)."""
    min_se_s: int = 90
    """The smallest session interval we accept (422 below it; 90 is RFC 4028's floor)."""
    accept_refer: bool = False
    """A peer's REFER is accepted (202) and given to the shell as ``TransferRequested``,
    which must report :meth:`.UserAgent.refer_outcome`; False: 603 with a Warning."""
    refer_from_trunk: bool = True
    """False: only agents' phones may ask a transfer (a REFER on an agent leg); one on a
    trunk call gets 603 with a Warning saying so."""
    refer_timeout_s: float = 120.0
    """A transfer asked by REFER with no final outcome by then is reported failed (408)."""
    srtp: str = "off"
    """SRTP on trunk calls: ``off``, ``offer`` or ``require`` (:class:`.sdp.SrtpPolicy`)."""
    phone_srtp: str = "off"
    """SRTP on the agents' phones' legs, likewise."""


class AgentCore:
    """The state and helpers the user agent's parts share (see the module docstring)."""

    def __init__(
        self, settings: UaSettings, *, token: Callable[[int], str], call_ids: Iterator[str]
    ) -> None:
        self.settings = settings
        self.table = TransactionTable(settings.timers)
        self.calls: dict[str, SipCall] = {}
        """Every call with SIP state, by the engine's call id (ended ones until their
        last transaction is done)."""
        self.by_dialog: dict[tuple[str, str], SipCall] = {}
        """(SIP Call-ID, our tag) -> call."""
        self.token = token
        self.ids = call_ids
        self._timers: list[tuple[float, int, str, str]] = []
        self._timer_at: dict[tuple[str, str], float] = {}
        self._seq = itertools.count()
        self.dropped = 0
        """Datagrams dropped as unreadable or refused as malformed."""
        self.logs = LogLimiter()
        """Every warning a peer can cause is rate-limited on the agent's own clock: a
        flood of bad datagrams writes a line, then a count a minute."""

    # --- addresses -----------------------------------------------------------------

    @property
    def line(self) -> str:
        return self.settings.line

    @property
    def host(self) -> str:
        return self.settings.public_host or self.settings.host

    @property
    def user(self) -> str:
        return self.settings.username or self.settings.line

    def via(self) -> str:
        branch = f"z9hG4bK{self.token(8)}"
        return f"SIP/2.0/UDP {self.host}:{self.settings.port};branch={branch};rport"

    def contact(self) -> str:
        return f"<sip:{self.user}@{self.host}:{self.settings.port}>"

    def uri_of(self, text: str) -> Uri:
        text = text.strip()
        if not text:
            raise TelephonyError(f"line {self.line!r}: no address given")
        return parse_uri(text if text.startswith(("sip:", "sips:")) else f"sip:{text}")

    @property
    def proxy(self) -> Addr | None:
        if not self.settings.outbound_proxy:
            return None
        return self.uri_of(self.settings.outbound_proxy).host_port

    @property
    def domain(self) -> str:
        for text in (self.settings.registrar, self.settings.outbound_proxy):
            if text:
                uri = self.uri_of(text)
                return uri.host if uri.port is None else f"{uri.host}:{uri.port}"
        return ""

    def local_uri(self) -> str:
        name = f"{quote(self.settings.display_name)} " if self.settings.display_name else ""
        return f"{name}<sip:{self.user}@{self.domain or self.host}>"

    def dial_uri(self, number: str, peer: str = "") -> Uri:
        """Where a number (digits, ``user@host`` or a URI) is dialled or transferred: a
        bare number at the registrar's (or proxy's) domain, else at ``peer`` (the far
        end of the call being transferred: the trunk)."""
        text = number.strip()
        try:
            if text.startswith(("sip:", "sips:", "tel:")):
                return parse_uri(text)
            if "@" in text:
                return parse_uri(f"sip:{text}")
        except SipSyntaxError as exc:
            raise TelephonyError(f"line {self.line!r}: cannot dial {number!r}: {exc}") from None
        user = "".join(c for c in text if c.isalnum() or c in "+*#")
        if not user:
            raise TelephonyError(f"line {self.line!r}: cannot dial {number!r}: no digits")
        domain = self.domain or peer
        if not domain:
            raise TelephonyError(
                f"line {self.line!r}: cannot dial {number!r}: no registrar or "
                "outbound proxy is configured (dial a full sip: URI instead)"
            )
        return parse_uri(f"sip:{user}@{domain};user=phone")

    # --- timers of the user agent (beyond the transactions) ------------------------

    def at(self, at: float, kind: str, key: str = "") -> None:
        """Fire timer ``kind`` (of call ``key``) at ``at``, replacing one set before."""
        self._timer_at[(kind, key)] = at
        heapq.heappush(self._timers, (at, next(self._seq), kind, key))

    def cancel_timer(self, kind: str, key: str = "") -> None:
        self._timer_at.pop((kind, key), None)

    def next_timer(self) -> float | None:
        while self._timers:
            at, _, kind, key = self._timers[0]
            if self._timer_at.get((kind, key)) == at:
                return at
            heapq.heappop(self._timers)  # cancelled or replaced
        return None

    def pop_due(self, now: float) -> tuple[str, str] | None:
        """The next timer due by ``now`` as (kind, key), taken off; None: none due."""
        while self._timers and self._timers[0][0] <= now:
            at, _, kind, key = heapq.heappop(self._timers)
            if self._timer_at.get((kind, key)) == at:
                del self._timer_at[(kind, key)]
                return kind, key
        return None

    # --- sending ---------------------------------------------------------------------

    def send(
        self, request: Request, dest: Addr, now: float, *, context: object = None
    ) -> tuple[ClientTransaction, list[Effect]]:
        if isinstance(context, SipCall) and request.method in ("INVITE", "UPDATE"):
            self._secure(request, context)
        txn, outputs = self.table.send(request, dest, now, context=context)
        return txn, datagrams(outputs)

    def _secure(self, request: Request, call: SipCall) -> None:
        """Our SDP offer in ``request`` gets its ``a=crypto`` lines as the call's SRTP
        policy says: every offer of ours (a call placed, a hold) passes here."""
        offer = call.local_sdp
        if offer is None or not request.body or request.body != bytes(offer):
            return
        secure_offer(offer, self.srtp(call))
        request.body = bytes(offer)

    def srtp(self, call: SipCall) -> SrtpPolicy:
        """The SRTP policy of the call's offers and answers (the phones' on an agent leg,
        keeping the call's keys), keys only when its INVITE went over TLS."""
        return self.srtp_for(call.invite, inbound=call.inbound, agent=call.agent, keep=call.plan)

    def srtp_for(
        self, invite: Request, *, inbound: bool, agent: str = "", keep: MediaPlan | None = None
    ) -> SrtpPolicy:
        """The SRTP policy for ``invite``: over TLS when its top Via says so (one that came
        in) or its target URI asks for TLS (``sips:``, ``;transport=tls``: one we send)."""
        mode = self.settings.phone_srtp if agent else self.settings.srtp
        if mode == "off":
            return SrtpPolicy(keep=keep)
        if inbound:
            try:
                tls = invite.top_via.transport == "TLS"
            except SipSyntaxError:
                tls = False
        else:
            uri = target_uri(invite)
            tls = uri is not None and uri_transport(uri) == "TLS"
        return SrtpPolicy(mode, tls, keep)

    def respond(self, txn: ServerTransaction, response: Response, now: float) -> list[Effect]:
        return datagrams(self.table.respond(txn, response, now))

    def reply(
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
            to_tag=to_tag or (self.token(4) if status > 100 else ""),
            headers=[*(extra or []), ("User-Agent", self.settings.user_agent)],
        )
        return self.respond(txn, response, now)

    def dialog_response(
        self,
        request: Request,
        status: int,
        call: SipCall,
        *,
        body: bytes = b"",
        extra: list[tuple[str, str]] | None = None,
    ) -> Response:
        """A response of the call's dialog: our tag, Contact, Record-Route copied."""
        headers = [("Contact", self.contact()), ("Allow", ALLOW), ("Supported", SUPPORTED)]
        headers += [("Record-Route", rr) for rr in request.headers.get_all("Record-Route")]
        headers += extra or []
        headers.append(("User-Agent", self.settings.user_agent))
        if body:
            headers.append(("Content-Type", "application/sdp"))
        return make_response(request, status, to_tag=call.local_tag, headers=headers, body=body)

    def start_ok(self, call: SipCall, ok: Response, dest: Addr, cseq: int, now: float) -> None:
        """Retransmit the 2xx ``ok`` to an INVITE until its ACK (timer ``ok``)."""
        t = self.settings.timers
        call.pending_ok = PendingOk(ok, dest, cseq, t.t1, now + t.t1, now + 64 * t.t1)
        self.at(now + t.t1, "ok", call.call_id)

    # --- credentials -----------------------------------------------------------------

    def may_answer(self, challenge: Challenge | None, nonces: set[str]) -> bool:
        """Whether to answer ``challenge`` (we have credentials, its nonce is fresh and
        not too many were answered); records its nonce when so."""
        if (
            challenge is None
            or not self.settings.username
            or challenge.nonce in nonces
            or len(nonces) >= MAX_CHALLENGES
        ):
            return False
        nonces.add(challenge.nonce)
        return True

    def authorized(self, request: Request, challenge: Challenge) -> Request:
        """``request`` again with credentials, CSeq+1 and a new branch (RFC 3261 §22.2)."""
        again = self.authorized_again(request)
        again.headers.remove(challenge.header_name)
        again.headers.add(*self.credentials(again, challenge))
        return again

    def authorized_again(self, request: Request) -> Request:
        """``request`` again with CSeq+1 and a new branch (credentials it had kept)."""
        h = request.headers.copy()
        h.set("Via", self.via())
        number, method = request.cseq
        h.set("CSeq", f"{number + 1} {method}")
        return Request(headers=h, body=request.body, method=request.method, uri=request.uri)

    def credentials(self, request: Request, challenge: Challenge) -> tuple[str, str]:
        """The (Proxy-)Authorization header answering ``challenge`` for ``request``."""
        value = authorization(
            challenge,
            username=self.settings.username,
            password=self.settings.password,
            method=request.method,
            uri=request.uri,
            cnonce=self.token(8),
            nc=1,
            body=request.body,
        )
        return challenge.header_name, value

    # --- calls -----------------------------------------------------------------------

    def add(self, call: SipCall) -> None:
        self.calls[call.call_id] = call
        self.by_dialog[(call.sip_call_id, call.local_tag)] = call

    def in_dialog(self, request: Request | Response, tag: str) -> SipCall | None:
        """The call whose dialog has this message's Call-ID and our ``tag``."""
        return self.by_dialog.get((request.call_id, tag))

    def media_stop(self, call: SipCall) -> list[Effect]:
        if not call.rtp_port:
            return []
        port, call.rtp_port = call.rtp_port, 0
        return [MediaStop(call.call_id, port)]

    def end(self, call: SipCall, *, by_peer: bool, keep: bool = False) -> list[Effect]:
        """The call is over for the engine. ``keep``: its BYE is still on its way."""
        out: list[Effect] = []
        if by_peer and not call.hung_up_by_us and not call.reported_end:
            if call.agent:  # an agent leg: the phone hung up
                out.append(AgentLegProgress(call.call_id, call.agent, "ended", 0, True))
            else:
                out.append(CallerHungUp(call_id=call.call_id, line=self.line))
        call.reported_end = True
        out += self.media_stop(call)
        for kind in ("ring", "cancel", "st-refresh", "st-expire"):  # st-: .session_timer
            self.cancel_timer(kind, call.call_id)
        if keep:
            call.hung_up_by_us = True
            return out
        call.state = "ended"
        call.pending_ok = None
        self.cancel_timer("ok", call.call_id)
        self.calls.pop(call.call_id, None)
        self.by_dialog.pop((call.sip_call_id, call.local_tag), None)
        return out

    # --- log lines -------------------------------------------------------------------

    def refused(self, now: float, what: str, source: Addr, why: str) -> None:
        """Count a refused datagram and log it (rate-limited: see :attr:`logs`)."""
        self.dropped += 1
        self.logs.log(
            log,
            logging.WARNING,
            "line %s: %s from %s:%d %s",
            self.line,
            what,
            *source,
            why,
            now=now,
            key=why.partition(":")[0],  # "dropped" and "refused" counted apart
        )

    def warn(
        self, now: float, msg: str, *args: object, exc_info: bool = False, error: bool = False
    ) -> None:
        """Log a warning (an error with ``error`` or ``exc_info``), rate-limited."""
        level = logging.ERROR if error or exc_info else logging.WARNING
        self.logs.log(log, level, msg, *args, now=now, exc_info=exc_info, stacklevel=3)
