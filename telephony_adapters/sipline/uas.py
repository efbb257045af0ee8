"""Calls that come in (the UAS side): 100 and 180 at once and ``CallArrived``; the
answer's 200 with SDP (and the session timer the INVITE asked for, RFC 4028; 422 for
an interval below our Min-SE), retransmitted (T1 doubling to T2) until the ACK, the
call ended with a BYE after 64xT1 without one; CANCEL before the answer (200 and 487). Caller
number and name come from P-Asserted-Identity, else From; ``Privacy: id`` (or an
anonymous From) makes the caller private."""

from __future__ import annotations

import logging

from cti.errors import TelephonyError
from cti.protocol import CallArrived
from telephony_adapters.sipline.agent_core import AgentCore
from telephony_adapters.sipline.call import SipCall
from telephony_adapters.sipline.checks import warning_value
from telephony_adapters.sipline.dialog import Dialog
from telephony_adapters.sipline.effects import Datagram, Effect, MediaStart
from telephony_adapters.sipline.in_dialog import InDialog
from telephony_adapters.sipline.message import (
    Request,
    SipSyntaxError,
    parse_address,
    parse_uri,
)
from telephony_adapters.sipline.sdp import (
    NotAcceptableError,
    Session,
    accept_answer,
    answer_offer,
    make_offer,
    parse_sdp,
    secure_offer,
)
from telephony_adapters.sipline.syntax import has_control, unescape
from telephony_adapters.sipline.transaction import ServerTransaction

log = logging.getLogger(__name__)

PRIVATE_ANI = "anonymous"
_SDP_RANGES = ("application/sdp", "application/*", "*/*")


class UasCalls:
    def __init__(self, core: AgentCore, in_dialog: InDialog) -> None:
        self.core = core
        self.in_dialog = in_dialog

    # --- the INVITE ------------------------------------------------------------------

    def on_invite(self, request: Request, txn: ServerTransaction, now: float) -> list[Effect]:
        core = self.core
        refused, offer = self.check_invite(request, txn, now)
        if refused is not None:
            return refused
        if (small := self.in_dialog.timers.too_small(request, txn, now)) is not None:
            return small
        take_contact(request)
        dnis = unescape(parse_uri(request.uri).user or request.to.uri.user)
        if has_control(dnis):
            why = f"the number dialled {dnis!r} holds control characters"
            warning = [("Warning", warning_value(core.host, why))]
            return core.reply(txn, request, 404, now, extra=warning)
        call = SipCall(
            call_id=next(core.ids),
            inbound=True,
            sip_call_id=request.call_id,
            local_tag=core.token(4),
            invite=request,
            server_txn=txn,
            remote_offer=offer,
            session_id=str(int(now * 1000) % 10**9 + 1),
        )
        txn.context = call
        call.dialog = Dialog.as_uas(request, call.local_tag)
        call.dest = core.proxy or call.dialog.next_hop()
        core.add(call)
        out = core.reply(txn, request, 100, now)
        out += core.respond(txn, core.dialog_response(request, 180, call), now)
        arrived = self.arrival(call)
        out.append(arrived)
        log.info(
            "line %s: call %s from %r (%s) to %r",
            core.line,
            call.call_id,
            arrived.ani,
            arrived.caller_name,
            arrived.dnis,
        )
        return out

    def check_invite(
        self, request: Request, txn: ServerTransaction, now: float, *, agent: str = ""
    ) -> tuple[list[Effect] | None, Session | None]:
        """(our refusal, None) of an INVITE we cannot take (406, 415, 488), else
        (None, its SDP offer if it has one). ``agent``: it replaces a leg to that agent's
        phone (the phones' SRTP policy applies)."""
        core = self.core
        accept = [a.split(";")[0].strip().lower() for a in request.headers.values("Accept")]
        if "Accept" in request.headers and not any(a in _SDP_RANGES for a in accept):
            why = warning_value(core.host, "our answer is SDP, which the Accept header refuses")
            extra = [("Accept", "application/sdp"), ("Warning", why)]
            return core.reply(txn, request, 406, now, extra=extra), None
        if not request.body:
            return None, None
        content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/sdp":
            why = warning_value(core.host, f"a body of type {content_type[:40]!r}, not SDP")
            extra = [("Accept", "application/sdp"), ("Warning", why)]
            return core.reply(txn, request, 415, now, extra=extra), None
        try:
            offer = parse_sdp(request.body)
            srtp = core.srtp_for(request, inbound=True, agent=agent)
            answer_offer(offer, core.host, 9, core.settings.codecs, session_id="0", version=0,
                         srtp=srtp)  # fmt: skip
        except NotAcceptableError as exc:
            extra = [("Warning", f'304 {core.host} "{exc}"')]
            return core.reply(txn, request, 488, now, extra=extra), None
        return None, offer

    def arrival(self, call: SipCall) -> CallArrived:
        """The engine's news of an inbound call (who calls, which number they dialled)."""
        ani, name = caller_identity(call.invite)
        dnis = unescape(parse_uri(call.invite.uri).user or call.invite.to.uri.user)
        return CallArrived(
            call_id=call.call_id, ani=ani, dnis=dnis, line=self.core.line, caller_name=name
        )

    def ring_again(self, call: SipCall, txn: ServerTransaction, now: float) -> list[Effect]:
        """180 once more (a ringing call taken up after a restart)."""
        return self.core.respond(txn, self.core.dialog_response(call.invite, 180, call), now)

    # --- answering, refusing, cancelled ----------------------------------------------

    def answer(self, call: SipCall, rtp_port: int, now: float) -> list[Effect]:
        core = self.core
        txn = call.server_txn
        if not call.inbound or call.state != "ringing" or txn is None:
            raise TelephonyError(
                f"line {core.line!r}: cannot answer call {call.call_id!r}: it is {call.state}"
            )
        call.rtp_port = rtp_port
        if call.remote_offer is not None:
            answer, plan = answer_offer(
                call.remote_offer,
                core.host,
                rtp_port,
                core.settings.codecs,
                session_id=call.session_id,
                version=call.sdp_version,
                srtp=core.srtp(call),
            )
            call.local_sdp, call.plan = answer, plan
        else:  # no offer in the INVITE: ours goes in the 200, the answer in the ACK
            call.local_sdp = make_offer(
                core.host,
                rtp_port,
                core.settings.codecs,
                session_id=call.session_id,
                version=call.sdp_version,
            )
            secure_offer(call.local_sdp, core.srtp(call))
        timers = self.in_dialog.timers
        timers.may_update(call, call.invite)
        extra = timers.answer_headers(call, call.invite)
        ok = core.dialog_response(call.invite, 200, call, body=bytes(call.local_sdp), extra=extra)
        call.state = "connecting"
        out = core.respond(txn, ok, now)
        core.start_ok(call, ok, txn.peer, call.invite.cseq[0], now)
        return out

    def refuse(self, call: SipCall, txn: ServerTransaction, now: float) -> list[Effect]:
        """We hang up a call still ringing: 480."""
        out = self.core.respond(txn, self.core.dialog_response(call.invite, 480, call), now)
        return out + self.core.end(call, by_peer=False)

    def on_cancel(self, request: Request, txn: ServerTransaction, now: float) -> list[Effect]:
        core = self.core
        invite_txn = core.table.find_invite(request)
        if invite_txn is None or not isinstance(invite_txn.context, SipCall):
            return core.reply(txn, request, 481, now)
        call = invite_txn.context
        out = core.reply(txn, request, 200, now, to_tag=call.local_tag)
        if call.state == "ringing":
            out += core.respond(invite_txn, core.dialog_response(call.invite, 487, call), now)
            out += core.end(call, by_peer=True)
        return out

    # --- our 2xx until its ACK ---------------------------------------------------------

    def on_ack(self, request: Request, now: float) -> list[Effect]:
        core = self.core
        call = core.in_dialog(request, request.to.tag)
        pending = call.pending_ok if call is not None else None
        if call is None or pending is None or request.cseq[0] != pending.cseq:
            return []  # an ACK for nothing we wait for: absorbed (never answered)
        call.pending_ok = None
        core.cancel_timer("ok", call.call_id)
        if call.state == "ended":
            return []
        if request.body and call.plan is None and call.local_sdp is not None:
            try:
                call.plan = accept_answer(call.local_sdp, parse_sdp(request.body))
            except SipSyntaxError as exc:
                core.warn(now, "line %s: call %s: bad SDP in ACK: %s", core.line, call.call_id, exc)
        call.state = "confirmed"
        self.in_dialog.timers.start(call, now)
        out: list[Effect] = []
        if call.plan is not None:
            out.append(MediaStart(call.call_id, call.rtp_port, call.plan))
        if call.bye_pending:
            out += self.in_dialog.send_bye(call, now)
        return out

    def retransmit_ok(self, call: SipCall, now: float) -> list[Effect]:
        """Timer ``ok``: our 2xx again (T1 doubling to T2); after 64xT1, a BYE."""
        pending = call.pending_ok
        if pending is None:
            return []
        if now >= pending.give_up_at:
            call.pending_ok = None
            self.core.warn(
                now,
                "line %s: call %s: no ACK for our 200 in 64xT1; ending it",
                self.core.line,
                call.call_id,
            )
            if call.state == "ended":
                return []
            call.state = "confirmed"
            return self.in_dialog.send_bye(call, now) + self.core.end(call, by_peer=True, keep=True)
        pending.interval = min(2 * pending.interval, self.core.settings.timers.t2)
        pending.next_at = min(now + pending.interval, pending.give_up_at)
        self.core.at(pending.next_at, "ok", call.call_id)
        return [Datagram(bytes(pending.response), pending.dest)]


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
        except SipSyntaxError:
            continue
        if asserted.uri.scheme in ("sip", "sips", "tel"):
            source = asserted
            break
    user = unescape(source.uri.user.split(";")[0])
    if has_control(user):
        user = source.uri.user.split(";")[0]  # kept escaped: never a control character
    anonymous = (
        source.uri.host.endswith("anonymous.invalid")
        or user.lower() in ("anonymous", "restricted", "unavailable")
        or source.display.strip().lower() == "anonymous"
    )
    if "id" in privacy or "user" in privacy or "header" in privacy or anonymous:
        return PRIVATE_ANI, ""
    return user, source.display


def take_contact(request: Request) -> None:
    """An INVITE needs a Contact (RFC 3261 §8.1.1.8): the dialog's target. One from an
    RFC 2543 peer (no ``z9hG4bK`` branch) may lack it: the From is the target then
    (RFC 2543 §6.13, RFC 4475 §3.4.1)."""
    if request.headers.values("Contact"):
        return
    if request.top_via.branch.startswith("z9hG4bK"):
        raise SipSyntaxError("INVITE without Contact")
    request.headers.add("Contact", f"<{request.from_.uri}>")
