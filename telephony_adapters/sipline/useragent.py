"""The SIP user agent of one line, sans-I/O: datagrams and requests in, effects out.

:class:`UserAgent` is the one entry the line (:mod:`.line`) uses. Every method takes
``now`` (monotonic seconds) and returns a list of effects (:mod:`.effects`) for the
asyncio shell to carry out: :class:`Datagram` (send these bytes there), line events for
the engine (:class:`~cti.protocol.CallArrived`, :class:`~cti.protocol.CallerHungUp`),
:class:`MediaStart` / :class:`MediaStop` (the RTP stream of a call), and the progress of
our requests (:class:`DialProgress`, :class:`TransferOutcome`). The shell calls
:meth:`UserAgent.advance` at :meth:`UserAgent.next_deadline`.

The agent routes each message, time-out and timer to its part, all sharing one
:class:`~.agent_core.AgentCore`: calls that come in (:mod:`.uas`), calls we make
(:mod:`.uac`), requests inside a call's dialog - hold, REFER, BYE, re-INVITE
(:mod:`.in_dialog`), the registration (:mod:`.registration`), keep-alive OPTIONS
(:mod:`.keepalive`), the calls that survive a restart (:mod:`.saved_calls`), and, with
agents' phones configured, the registrar for them (:mod:`.registrar`) and the calls to
them (agent legs, :meth:`UserAgent.ring_agent`).

A datagram that is not SIP is dropped with a log line; a request we can read enough to
answer but that is malformed gets a 400 naming the fault; an unknown method 405; a
request for an unknown dialog 481. Nothing a peer sends raises out of
:meth:`~UserAgent.receive`.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from cti.errors import TelephonyError
from cti.log_limits import LogLimiter
from telephony_adapters.call_ids import boot_call_ids
from telephony_adapters.sipline.agent_core import ALLOW, AgentCore, UaSettings
from telephony_adapters.sipline.call import SipCall
from telephony_adapters.sipline.checks import (
    check_request,
    check_response,
    unsupported_extensions,
    warning_value,
)
from telephony_adapters.sipline.effects import (
    AgentLegProgress,
    Datagram,
    DialProgress,
    Effect,
    MediaStart,
    MediaStop,
    PhoneReachability,
    TransferOutcome,
    TransferRequested,
    dial_outcome_of,
)
from telephony_adapters.sipline.in_dialog import InDialog
from telephony_adapters.sipline.keepalive import KeepAlive
from telephony_adapters.sipline.message import (
    Request,
    Response,
    SipSyntaxError,
    Via,
    make_response,
    parse,
    parse_via,
    split_commas,
    stamp_received,
)
from telephony_adapters.sipline.refer_in import ReferIn
from telephony_adapters.sipline.registrar import Ping, Registrar
from telephony_adapters.sipline.registration import Registration
from telephony_adapters.sipline.routing import uri_transport
from telephony_adapters.sipline.saved_calls import SavedCalls
from telephony_adapters.sipline.transaction import (
    Addr,
    ClientTransaction,
    Deliver,
    Output,
    ServerTransaction,
    Timeout,
    TransactionTable,
    Transmit,
)
from telephony_adapters.sipline.uac import UacCalls
from telephony_adapters.sipline.uas import UasCalls, caller_identity

__all__ = [
    "ALLOW",
    "AgentLegProgress",
    "Datagram",
    "DialProgress",
    "Effect",
    "MediaStart",
    "MediaStop",
    "PhoneReachability",
    "TransferOutcome",
    "TransferRequested",
    "UaSettings",
    "UserAgent",
    "caller_identity",
    "dial_outcome_of",
    "leg_id",
]

log = logging.getLogger(__name__)


def leg_id(call_id: str, agent_id: str) -> str:
    """The call id of an agent leg: the caller's call and the agent, so the line maps it."""
    return f"{call_id}~{agent_id}"


class UserAgent:
    """The SIP side of one line. See the module docstring."""

    def __init__(
        self,
        settings: UaSettings,
        *,
        token: Callable[[int], str] = secrets.token_hex,
        call_ids: Iterator[str] | None = None,
    ) -> None:
        ids = call_ids if call_ids is not None else boot_call_ids(settings.line)
        self.core = AgentCore(settings, token=token, call_ids=ids)
        self.registration = Registration(self.core)
        self.keepalive = KeepAlive(self.core)
        self.in_dialog = InDialog(self.core)
        self.uas = UasCalls(self.core, self.in_dialog)
        self.uac = UacCalls(self.core, self.in_dialog)
        self.refer_in = ReferIn(self.core, self.in_dialog, self.uas)
        self.saved = SavedCalls(self.core)
        phones = settings.phones
        self.registrar = Registrar(self.core, phones) if phones is not None else None

    # --- what the line and the tests read ------------------------------------------

    @property
    def settings(self) -> UaSettings:
        return self.core.settings

    @property
    def table(self) -> TransactionTable:
        return self.core.table

    @property
    def calls(self) -> dict[str, SipCall]:
        """Every call with SIP state, by the engine's call id."""
        return self.core.calls

    @property
    def dropped(self) -> int:
        """Datagrams dropped as unreadable or refused as malformed."""
        return self.core.dropped

    @property
    def logs(self) -> LogLimiter:
        return self.core.logs

    @property
    def registered(self) -> bool:
        return self.registration.registered

    @property
    def registration_expires_at(self) -> float | None:
        return self.registration.expires_at

    @property
    def peer_alive(self) -> bool | None:
        """Whether the registrar or proxy answered the last keep-alive (None: unknown)."""
        return self.keepalive.peer_alive

    # --- time ------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        own = self.core.next_timer()
        txn = self.table.next_deadline()
        if own is None:
            return txn
        return own if txn is None else min(own, txn)

    def advance(self, now: float) -> list[Effect]:
        """Fire everything due by ``now``."""
        self.logs.flush(now)
        out = self._process(self.table.advance(now), now)
        while (due := self.core.pop_due(now)) is not None:
            out += self._fire(*due, now)
        return out

    def _fire(self, kind: str, key: str, now: float) -> list[Effect]:
        if kind == "register":
            return self.registration.register(now)
        if kind == "keepalive":
            return self.keepalive.ping(now)
        if kind.startswith("phone-") and self.registrar is not None:
            return self.registrar.fire(kind, key, now)
        call = self.calls.get(key)
        if call is None:
            return []
        if kind == "ok":
            return self.uas.retransmit_ok(call, now)
        if kind == "ring" and call.state == "dialling":
            return self.uac.ring_expired(call, now)
        if kind == "cancel" and call.state == "dialling":
            return self.uac.cancel_expired(call, now)
        if kind.startswith("st-"):
            return self.in_dialog.fire(kind, call, now)
        if kind.startswith("refer-"):
            return self.refer_in.fire(kind, call, now)
        return []

    # --- start and stop ------------------------------------------------------------

    def start(self, now: float) -> list[Effect]:
        out = self.registration.start(now)
        self.keepalive.start(now)
        if self.registrar is not None:
            out += self.registrar.start(now)
        return out

    def stop(self, now: float) -> list[Effect]:
        """End every call (BYE, CANCEL or 480) and withdraw the registration."""
        out: list[Effect] = []
        for call in list(self.calls.values()):
            if call.state != "ended" and not call.hung_up_by_us:
                out += self._hang_up(call, now)
        out += self.registration.stop(now)
        self.keepalive.stop()
        if self.registrar is not None:
            self.registrar.stop()
        return out

    # --- the engine's requests -----------------------------------------------------

    def next_call_id(self) -> str:
        """A new call id (inbound or outbound), unique across restarts and machines."""
        return next(self.core.ids)

    def live(self, call_id: str) -> bool:
        """The engine may still act on this call (not ended, not hung up by us)."""
        call = self.calls.get(call_id)
        return call is not None and call.state != "ended" and not call.hung_up_by_us

    def call_state(self, call_id: str) -> str | None:
        call = self.calls.get(call_id)
        return None if call is None or not self.live(call_id) else call.state

    def _live_call(self, call_id: str, action: str) -> SipCall:
        if not self.live(call_id):
            raise TelephonyError(
                f"line {self.settings.line!r}: no live call {call_id!r} to {action}"
            )
        return self.calls[call_id]

    def answer(self, call_id: str, rtp_port: int, now: float) -> list[Effect]:
        return self.uas.answer(self._live_call(call_id, "answer"), rtp_port, now)

    def hang_up(self, call_id: str, now: float) -> list[Effect]:
        return self._hang_up(self._live_call(call_id, "hang up"), now)

    def dial(self, number: str, call_id: str, rtp_port: int, now: float) -> list[Effect]:
        return self.uac.dial(number, call_id, rtp_port, now)

    def reachable(self, agent_id: str, now: float) -> bool:
        """Whether a call to the agent's phone can be placed now (see :mod:`.registrar`)."""
        return self.registrar is not None and self.registrar.reachable(agent_id, now)

    def ring_agent(
        self,
        call_id: str,
        agent_id: str,
        rtp_port: int,
        now: float,
        *,
        caller: tuple[str, str] = ("", ""),
        auto_answer: bool = False,
        timeout_s: float | None = None,
        leg: str = "",
    ) -> list[Effect]:
        """Ring the agent's phone for call ``call_id`` (the caller's (name, number) on
        its display): a new leg ``leg`` (default :func:`leg_id`; a second leg to the same
        phone while the first is ending needs its own), whose progress comes as
        :class:`AgentLegProgress`; :meth:`hang_up` of the leg withdraws it (CANCEL) or
        ends it (BYE). Raises :class:`TelephonyError` if the phone is unreachable."""
        target = self.registrar.target(agent_id, now) if self.registrar is not None else None
        if target is None:
            raise TelephonyError(
                f"line {self.settings.line!r}: the phone of agent {agent_id!r} is not reachable"
            )
        if self.settings.phone_srtp == "require" and uri_transport(target.uri) != "TLS":
            raise TelephonyError(
                f"line {self.settings.line!r}: phone_srtp = require and the phone of agent "
                f"{agent_id!r} is not reached over TLS ({str(target.uri)[:80]})"
            )
        return self.uac.ring_agent(
            leg or leg_id(call_id, agent_id),
            agent_id,
            target.uri,
            target.dest,
            rtp_port,
            now,
            caller=caller,
            auto_answer=auto_answer,
            timeout_s=self.settings.dial_timeout_s if timeout_s is None else timeout_s,
        )

    def hold(self, call_id: str, now: float, *, hold: bool = True) -> list[Effect]:
        """Put a connected call on hold (or take it off, ``hold=False``) by re-INVITE."""
        call = self._live_call(call_id, "hold" if hold else "resume")
        return self.in_dialog.hold(call, now, hold=hold)

    def transfer(self, call_id: str, target: str, now: float) -> list[Effect]:
        """Blind transfer by REFER (RFC 3515): progress comes as :class:`TransferOutcome`."""
        return self.in_dialog.transfer(self._live_call(call_id, "transfer"), target, now)

    def refer_outcome(
        self, call_id: str, status: int, now: float, reason: str = ""
    ) -> list[Effect]:
        """How a transfer the peer asked (:class:`TransferRequested`) went: a SIP status
        (1xx under way, 2xx done, else failed; ``reason``: why, in the sipfrag's reason
        phrase), told to the peer by NOTIFY."""
        call = self.calls.get(call_id)
        return self.refer_in.outcome(call, status, now, reason) if call is not None else []

    def transfer_uri(self, call_id: str, target: str) -> str:
        """Where :meth:`transfer` sends the call (the Refer-To's URI)."""
        return str(self.in_dialog.transfer_uri(self._live_call(call_id, "transfer"), target))

    def _hang_up(self, call: SipCall, now: float) -> list[Effect]:
        call.hung_up_by_us = True
        self.core.cancel_timer("ring", call.call_id)
        if call.state == "ringing" and call.server_txn is not None:  # inbound, unanswered
            return self.uas.refuse(call, call.server_txn, now)
        if call.state == "dialling":
            return self.uac.cancel(call, now, reason="cancelled")
        if call.state == "connecting":
            call.bye_pending = True  # no BYE before the ACK (RFC 3261 §15)
            return []
        if call.state == "confirmed":
            return self.in_dialog.send_bye(call, now)
        return []

    # --- surviving a restart of the process ------------------------------------------

    def saved_changes(self) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """What to write to the line's dialog store (see :meth:`.SavedCalls.changes`)."""
        return self.saved.changes()

    def restore(self, saved: list[dict[str, Any]], now: float) -> list[str]:
        """Take up calls saved by an earlier process (before :meth:`adopt`). Returns the
        ids of snapshots that could not be read (logged; the caller forgets them)."""
        return self.saved.restore(saved, now)

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
        restored, self.saved.restored = self.saved.restored, []
        for call_id in restored:
            call = self.calls.get(call_id)
            if call is None or call.state == "ended":
                continue
            if call.state == "ringing" and call.server_txn is not None:
                out += self.uas.ring_again(call, call.server_txn, now)
                if call_id in named:
                    kept.append(call_id)
                else:
                    log.info(
                        "line %s: call %s rings on: announced again", self.settings.line, call_id
                    )
                    out.append(self.uas.arrival(call))
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
        except SipSyntaxError as exc:
            return self._refuse(exc.partial, exc, source, now, f"datagram of {len(data)} bytes")
        except Exception:  # a parser bug: the datagram is lost, never the line
            return self._failed(f"datagram of {len(data)} bytes", source, now)
        try:
            if isinstance(msg, Response):
                check_response(msg)
                return self._on_response(msg, now)
            check_request(msg)
            return self._on_request(msg, source, now)
        except SipSyntaxError as exc:
            return self._refuse(msg, exc, source, now, msg.start_line()[:60])
        except Exception:
            return self._failed(msg.start_line()[:60], source, now)

    def _failed(self, what: str, source: Addr, now: float) -> list[Effect]:
        self.core.dropped += 1
        self.core.warn(
            now,
            "line %s: unexpected failure on %s from %s:%d; the line goes on",
            self.settings.line,
            what,
            *source,
            exc_info=True,
        )
        return []

    def _refuse(
        self,
        msg: Request | Response | None,
        exc: SipSyntaxError,
        source: Addr,
        now: float,
        what: str,
    ) -> list[Effect]:
        """A message we cannot take: a request we can answer gets ``exc.status`` with a
        Warning saying why; anything else (a response, an ACK, a request without a Via we
        can read) is dropped. Both are counted and logged, rate-limited."""
        answer = isinstance(msg, Request) and msg.method != "ACK" and _top_via(msg) is not None
        self.core.refused(now, what, source, f"{'refused' if answer else 'dropped'}: {exc}")
        if not isinstance(msg, Request) or not answer:
            return []
        return self._stateless(msg, source, exc.status, warning=str(exc))

    def _stateless(
        self, request: Request, source: Addr, status: int, *, warning: str = ""
    ) -> list[Effect]:
        """A response with no transaction (to a request too broken for one)."""
        via = _top_via(request)
        dest = via.response_address(source) if via is not None else source
        headers = [("Warning", warning_value(self.core.host, warning))] if warning else []
        response = make_response(request, status, to_tag=self.core.token(4), headers=headers)
        return [Datagram(bytes(response), dest)]

    def _on_request(self, request: Request, source: Addr, now: float) -> list[Effect]:
        stamp_received(request, source)
        # Max-Forwards: 0 is no fault here: we are where the request ends, never a hop
        # (483 is a proxy's answer, RFC 3261 §16.3; an OPTIONS ping often carries 0).
        outputs = self.table.receive_request(request, now)
        if outputs is not None:
            return self._process(outputs, now)  # a retransmission, or a non-2xx's ACK
        if request.method == "ACK":
            return self.uas.on_ack(request, now)
        txn = self.table.create_server(request, source, now)
        unsupported = unsupported_extensions(request)
        if unsupported:
            lacking = ", ".join(unsupported)
            why = warning_value(self.core.host, f"Require of extensions we lack: {lacking}")
            extra = [("Unsupported", lacking), ("Warning", why)]
            return self.core.reply(txn, request, 420, now, extra=extra)
        try:
            return self._dispatch(request, txn, now)
        except SipSyntaxError as exc:
            self.core.refused(now, request.start_line()[:60], txn.peer, f"refused: {exc}")
            warning = [("Warning", warning_value(self.core.host, str(exc)))]
            return self.core.reply(txn, request, exc.status, now, extra=warning)
        except Exception:
            self.core.warn(
                now,
                "line %s: failure on %s",
                self.settings.line,
                request.start_line()[:60],
                exc_info=True,
            )
            return self.core.reply(txn, request, 500, now)

    def _dispatch(self, request: Request, txn: ServerTransaction, now: float) -> list[Effect]:
        method = request.method
        if method == "INVITE":
            if request.to.tag:
                return self.in_dialog.on_reinvite(request, txn, now)
            if "Replaces" in request.headers:
                return self.refer_in.on_replacing_invite(request, txn, now)
            return self.uas.on_invite(request, txn, now)
        handlers = {
            "CANCEL": self.uas.on_cancel,
            "OPTIONS": self.keepalive.answer,
            "BYE": self.in_dialog.on_bye,
            "NOTIFY": self.in_dialog.on_notify,
            "INFO": self.in_dialog.on_info,
            "UPDATE": self.in_dialog.on_update,
            "PRACK": self.in_dialog.on_prack,
            "REFER": self.refer_in.on_refer,
        }
        if self.registrar is not None and self.registrar.settings.ha1:
            handlers["REGISTER"] = self.registrar.on_register
        handler = handlers.get(method)
        if handler is None:
            return self.core.reply(txn, request, 405, now, extra=[("Allow", ALLOW)])
        return handler(request, txn, now)

    # --- responses, deliveries and time-outs -------------------------------------------

    def _on_response(self, response: Response, now: float) -> list[Effect]:
        _number, method = response.cseq
        outputs = self.table.receive_response(response, now)
        if outputs is not None:
            return self._process(outputs, now)
        if method == "INVITE" and 200 <= response.status < 300:
            # A 2xx retransmission after the transaction ended: ACK it again.
            call = self.core.in_dialog(response, response.from_.tag)
            if call is not None and call.ack is not None:
                return [Datagram(bytes(call.ack), call.dest)]
        return []

    def transport_failed(self, data: bytes, now: float) -> list[Effect]:
        """The shell could not send ``data`` (its connection failed): a request's
        transaction fails over or ends now (:meth:`TransactionTable.transport_error`)."""
        try:
            request = parse(data)
            if not isinstance(request, Request) or request.method == "ACK":
                return []
            outputs = self.table.transport_error(request.top_via.branch, request.method, now)
        except SipSyntaxError:
            return []
        return self._process(outputs, now)

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
                    out += self.uas.on_ack(o.message, now)
            elif isinstance(o, Timeout):
                out += self._on_timeout(o, now)
        return out

    def _on_client_response(
        self, txn: ClientTransaction, response: Response, now: float
    ) -> list[Effect]:
        method = txn.request.method
        call = txn.context if isinstance(txn.context, SipCall) else None
        if method == "REGISTER":
            return self.registration.on_response(txn, response, now)
        if method == "OPTIONS":
            if isinstance(txn.context, Ping) and self.registrar is not None:
                return self.registrar.on_ping_response(txn.context, response, now)
            return self.keepalive.on_response()
        if call is None:
            return []
        if method == "INVITE":
            if txn is call.reinvite_txn:
                return self.in_dialog.on_reinvite_response(call, response, txn, now)
            return self.uac.on_response(call, response, now)
        if method == "BYE" and response.status >= 200:
            return self.in_dialog.on_bye_response(call, response, txn, now)
        if method == "REFER" and response.status >= 200:
            return self.in_dialog.on_refer_response(call, response)
        if method == "UPDATE":
            return self.in_dialog.on_update_response(call, response, txn, now)
        if method == "NOTIFY":
            return self.refer_in.on_notify_response(call, response, txn, now)
        return []

    def _on_timeout(self, timeout: Timeout, now: float) -> list[Effect]:
        txn = timeout.transaction
        method = txn.request.method
        call = txn.context if isinstance(txn.context, SipCall) else None
        if method == "REGISTER":
            return self.registration.on_timeout(now)
        if method == "OPTIONS" and isinstance(txn, ClientTransaction):
            if isinstance(txn.context, Ping) and self.registrar is not None:
                return self.registrar.on_ping_timeout(txn.context, now)
            return self.keepalive.on_timeout(txn, now)
        if call is None or isinstance(txn, ServerTransaction):
            return []  # Timer H on a 4xx-6xx to an INVITE: nothing more to do
        if method == "INVITE" and txn is call.reinvite_txn:
            return self.in_dialog.on_reinvite_timeout(call, now)
        if method == "INVITE":
            return self.uac.on_timeout(call, now)
        if method == "BYE":
            return self.core.end(call, by_peer=False)
        if method == "REFER":
            return self.in_dialog.on_refer_timeout(call)
        if method == "UPDATE" and txn is call.update_txn:
            return self.in_dialog.on_update_timeout(call, now)
        return []


def _top_via(request: Request) -> Via | None:
    """The request's first Via, if it can be read: where a response would go. Its
    parameters are read if they can be (``rport``), else left out (RFC 4475 §3.1.2.1:
    a Via with empty parameters still gets its 400)."""
    lines = request.headers.get_all("Via")
    first = split_commas(lines[0], keep_empty=True)[0] if lines else ""
    for text in (first, first.partition(";")[0]):
        try:
            return parse_via(text)
        except SipSyntaxError:
            continue
    return None
