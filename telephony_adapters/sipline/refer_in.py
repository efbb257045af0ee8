"""What a peer asks of a call it has with us: a transfer by REFER (RFC 3515), and a new
INVITE that replaces one of our dialogs (RFC 3891), sans-I/O.

**REFER.** A trunk, PBX or agent's phone asks us to transfer the call to the
``Refer-To`` (blind; attended when the Refer-To carries a ``Replaces``). With
``accept_refer`` the REFER gets 202, the peer a NOTIFY ``SIP/2.0 100 Trying``, and the
shell a :class:`~.effects.TransferRequested`; it carries the transfer out (its own
transfer machinery) and reports each status with :meth:`ReferIn.outcome`, which the
peer hears as NOTIFY ``message/sipfrag`` (a final one ends the subscription). No final
outcome within ``refer_timeout_s``: 408. Without ``accept_refer`` the REFER gets 603
with a Warning; a Refer-To with a method other than INVITE 501; a second REFER while one
is under way 491; a REFER outside an established call 603; with ``refer_from_trunk``
off, a REFER on a trunk call (not an agent leg) 603 with a Warning.

**Replaces.** An INVITE with ``Replaces`` naming one of our established dialogs takes
its place: the new dialog is answered at once (our SDP answer on the call's RTP port,
so the media follows the new far end at its ACK), the old one gets a BYE, and the
engine sees the same call go on. A Replaces matching none of ours gets 481 (also for an
early dialog we did not start, RFC 3891 §3), ``early-only`` for an established one 486,
and one for a call we are still dialling 603 with a Warning.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote as url_unquote

from telephony_adapters.sipline.agent_core import AgentCore
from telephony_adapters.sipline.call import SipCall
from telephony_adapters.sipline.checks import warning_value
from telephony_adapters.sipline.dialog import Dialog
from telephony_adapters.sipline.effects import Effect, Replaces, TransferRequested
from telephony_adapters.sipline.in_dialog import InDialog
from telephony_adapters.sipline.message import (
    Request,
    Response,
    SipSyntaxError,
    Uri,
    make_response,
    parse_address,
)
from telephony_adapters.sipline.sdp import Session, answer_offer, make_offer, secure_offer
from telephony_adapters.sipline.syntax import split_params
from telephony_adapters.sipline.transaction import ClientTransaction, ServerTransaction
from telephony_adapters.sipline.uas import UasCalls, take_contact

log = logging.getLogger(__name__)

EXPIRE = "refer-expire"
SIPFRAG = "message/sipfrag;version=2.0"
_REASON_CHARS = 120


def parse_replaces(value: str) -> Replaces:
    """``call-id;to-tag=a;from-tag=b[;early-only]``; SipSyntaxError names the fault."""
    call_id, _, rest = value.strip().partition(";")
    params = split_params(rest)
    to_tag, from_tag = params.get("to-tag"), params.get("from-tag")
    if not call_id.strip() or not to_tag or not from_tag:
        raise SipSyntaxError(f"bad Replaces {value[:80]!r} (Call-ID, to-tag and from-tag)")
    return Replaces(call_id.strip(), to_tag, from_tag, "early-only" in params)


def refer_target(request: Request) -> tuple[Uri, Replaces | None]:
    """The Refer-To's URI (without its headers) and the Replaces it carries, if any."""
    values = request.headers.values("Refer-To")
    if len(values) != 1:
        raise SipSyntaxError(f"a REFER needs exactly one Refer-To (it has {len(values)})")
    uri = parse_address(values[0]).uri
    method = uri.params.get("method")
    if method is not None and method.upper() != "INVITE":
        raise SipSyntaxError(f"Refer-To method {method[:20]!r} is not carried out", status=501)
    replaces = None
    for header in uri.headers.split("&") if uri.headers else ():
        name, _, value = header.partition("=")
        if name.lower() == "replaces":
            replaces = parse_replaces(url_unquote(value))
    bare = Uri(uri.scheme, uri.user, uri.host, uri.port, dict(uri.params), "", uri.password)
    return bare, replaces


class ReferIn:
    """The peers' REFERs and replacing INVITEs (module docstring)."""

    def __init__(self, core: AgentCore, in_dialog: InDialog, uas: UasCalls) -> None:
        self.core = core
        self.in_dialog = in_dialog
        self.uas = uas

    def _refuse(
        self,
        txn: ServerTransaction,
        request: Request,
        status: int,
        why: str,
        now: float,
        *,
        to_tag: str = "",
    ) -> list[Effect]:
        extra = [("Warning", warning_value(self.core.host, why))]
        return self.core.reply(txn, request, status, now, extra=extra, to_tag=to_tag)

    # --- REFER -------------------------------------------------------------------------

    def on_refer(self, request: Request, txn: ServerTransaction, now: float) -> list[Effect]:
        core = self.core
        call = core.in_dialog(request, request.to.tag)
        if call is None or call.dialog is None or call.state == "ended":
            return core.reply(txn, request, 481, now)
        if not call.dialog.accepts(request):
            return core.reply(txn, request, 500, now, extra=[("Retry-After", "1")])
        tag = call.local_tag
        if call.state != "confirmed" or call.hung_up_by_us:
            why = "only an established call can be transferred"
            return self._refuse(txn, request, 603, why, now, to_tag=tag)
        target, replaces = refer_target(request)
        if not core.settings.accept_refer:
            why = "this line does not carry out transfers its peers ask for"
            return self._refuse(txn, request, 603, why, now, to_tag=tag)
        if not call.agent and not core.settings.refer_from_trunk:
            why = "the caller's side is not transferred by REFER here; only agents' phones ask"
            return self._refuse(txn, request, 603, why, now, to_tag=tag)
        if call.referred or call.transferring:
            why = "a transfer of this call is already under way"
            return self._refuse(txn, request, 491, why, now, to_tag=tag)
        txn.context = call
        call.dialog.refresh_target(request)
        call.referred = True
        out = core.respond(txn, core.dialog_response(request, 202, call), now)
        out += self._notify(call, 100, now)
        core.at(now + core.settings.refer_timeout_s, EXPIRE, call.call_id)
        referred_by = request.headers.get("Referred-By") or ""
        log.info(
            "line %s: call %s: the peer asks a transfer to %s%s",
            core.line,
            call.call_id,
            target,
            " (attended)" if replaces else "",
        )
        out.append(TransferRequested(call.call_id, str(target), replaces, referred_by[:200]))
        return out

    def outcome(self, call: SipCall, status: int, now: float, reason: str = "") -> list[Effect]:
        """How the transfer the peer asked went (a SIP status; 1xx: under way; ``reason``:
        the sipfrag's reason phrase, else the status's own)."""
        if not call.referred or call.state != "confirmed":
            return []
        if status >= 200:
            call.referred = False
            self.core.cancel_timer(EXPIRE, call.call_id)
        return self._notify(call, status, now, reason)

    def fire(self, kind: str, call: SipCall, now: float) -> list[Effect]:
        if kind != EXPIRE or not call.referred:
            return []
        self.core.warn(
            now,
            "line %s: call %s: the transfer the peer asked has no outcome; reported failed",
            self.core.line,
            call.call_id,
        )
        return self.outcome(call, 408, now)

    def _notify(self, call: SipCall, status: int, now: float, reason: str = "") -> list[Effect]:
        core = self.core
        if call.dialog is None:
            return []
        final = status >= 200
        state = "terminated;reason=noresource" if final else "active;expires=120"
        said = " ".join("".join(c for c in reason if c.isprintable()).split())[:_REASON_CHARS]
        reason = said or make_response(call.invite, status).reason or "Unknown"
        request = call.dialog.request(
            "NOTIFY",
            core.via(),
            contact=core.contact(),
            headers=[("Event", "refer"), ("Subscription-State", state)],
            body=f"SIP/2.0 {status} {reason}\r\n".encode(),
            content_type=SIPFRAG,
        )
        _, out = core.send(request, call.dest, now, context=call)
        return out

    def on_notify_response(
        self, call: SipCall, response: Response, txn: ClientTransaction, now: float
    ) -> list[Effect]:
        """A NOTIFY of ours answered: 481 (the subscription or dialog is gone) ends the
        reports; the call is the peer's to end."""
        if response.status == 481 and call.referred:
            call.referred = False
            self.core.cancel_timer(EXPIRE, call.call_id)
        return []

    # --- INVITE with Replaces ----------------------------------------------------------

    def on_replacing_invite(
        self, request: Request, txn: ServerTransaction, now: float
    ) -> list[Effect]:
        core = self.core
        replaces = parse_replaces(request.headers.get("Replaces") or "")
        old = core.by_dialog.get((replaces.call_id, replaces.to_tag))
        if (
            old is None
            or old.dialog is None
            or old.dialog.remote_tag != replaces.from_tag
            or old.state in ("ending", "ended")
            or old.hung_up_by_us
        ):
            return self._refuse(txn, request, 481, "no dialog of ours matches the Replaces", now)
        if old.state != "confirmed":
            if old.inbound:  # an early dialog we did not start (RFC 3891 §3)
                return self._refuse(txn, request, 481, "the Replaces names a ringing call", now)
            why = "a call still being dialled is not replaced"
            return self._refuse(txn, request, 603, why, now)
        if replaces.early_only:
            return self._refuse(txn, request, 486, "the call to replace is established", now)
        refused, offer = self.uas.check_invite(request, txn, now, agent=old.agent)
        if refused is not None:
            return refused
        if (small := self.in_dialog.timers.too_small(request, txn, now)) is not None:
            return small
        take_contact(request)
        ghost = self._set_aside(old)
        self._take_dialog(old, request, txn)
        out = self._answer(old, request, txn, offer, now)
        out += self.in_dialog.send_bye(ghost, now)
        log.info(
            "line %s: call %s: its dialog replaced by a new INVITE (RFC 3891)",
            core.line,
            old.call_id,
        )
        return out

    def _set_aside(self, call: SipCall) -> SipCall:
        """The call's old dialog, as a call of its own that only ends (no event)."""
        core = self.core
        ghost = SipCall(
            call_id=f"{call.call_id}#replaced-{core.token(4)}",
            inbound=call.inbound,
            sip_call_id=call.sip_call_id,
            local_tag=call.local_tag,
            invite=call.invite,
            state="confirmed",
            dialog=call.dialog,
            dest=call.dest,
            hung_up_by_us=True,
            reported_end=True,
            agent=call.agent,
        )
        core.by_dialog.pop((call.sip_call_id, call.local_tag), None)
        core.add(ghost)
        return ghost

    def _take_dialog(self, call: SipCall, request: Request, txn: ServerTransaction) -> None:
        """The call goes on in the new INVITE's dialog (we are its UAS)."""
        core = self.core
        self.in_dialog.timers.stop(call)
        call.sip_call_id = request.call_id
        call.local_tag = core.token(4)
        call.invite = request
        call.inbound = True
        call.server_txn, call.client_txn = txn, None
        call.reinvite_txn = call.update_txn = None
        call.ack, call.session = None, None
        call.refreshing = call.referred = call.transferring = False
        call.dialog = Dialog.as_uas(request, call.local_tag)
        call.dest = core.proxy or call.dialog.next_hop()
        core.by_dialog[(call.sip_call_id, call.local_tag)] = call
        txn.context = call

    def _answer(
        self,
        call: SipCall,
        request: Request,
        txn: ServerTransaction,
        offer: Session | None,
        now: float,
    ) -> list[Effect]:
        core = self.core
        call.sdp_version += 1
        s = core.settings
        srtp = core.srtp_for(request, inbound=True, agent=call.agent, keep=call.plan)
        if offer is not None:
            call.remote_offer = offer
            call.local_sdp, call.plan = answer_offer(
                offer,
                core.host,
                call.rtp_port,
                s.codecs,
                session_id=call.session_id,
                version=call.sdp_version,
                hold=call.on_hold,
                srtp=srtp,
            )
        else:
            call.remote_offer, call.plan = None, None
            call.local_sdp = make_offer(
                core.host,
                call.rtp_port,
                s.codecs,
                session_id=call.session_id,
                version=call.sdp_version,
                direction="sendonly" if call.on_hold else "sendrecv",
            )
            secure_offer(call.local_sdp, srtp)
        self.in_dialog.timers.may_update(call, request)
        extra = self.in_dialog.timers.answer_headers(call, request)
        ok = core.dialog_response(request, 200, call, body=bytes(call.local_sdp), extra=extra)
        call.state = "connecting"
        out = core.respond(txn, ok, now)
        core.start_ok(call, ok, txn.peer, request.cseq[0], now)
        return out
