"""Requests inside an established call's dialog: hold and resume by re-INVITE (ours and
the peer's), blind transfer by REFER with its NOTIFY progress, INFO (DTMF), and BYE
both ways."""

from __future__ import annotations

import logging

from cti.errors import TelephonyError
from telephony_adapters.sipline.agent_core import AgentCore
from telephony_adapters.sipline.call import SipCall
from telephony_adapters.sipline.dialog import Dialog
from telephony_adapters.sipline.digest import choose_challenge
from telephony_adapters.sipline.effects import Datagram, Effect, MediaStart, TransferOutcome
from telephony_adapters.sipline.message import Request, Response, SipSyntaxError, Uri, is_number
from telephony_adapters.sipline.sdp import (
    NotAcceptableError,
    accept_answer,
    answer_offer,
    make_offer,
    parse_sdp,
)
from telephony_adapters.sipline.transaction import ClientTransaction, ServerTransaction

log = logging.getLogger(__name__)


class InDialog:
    def __init__(self, core: AgentCore) -> None:
        self.core = core

    def _connected(self, call: SipCall, *, media: bool) -> Dialog:
        """The dialog of a connected call (with our SDP, if ``media``), else raise."""
        if call.state != "confirmed" or call.dialog is None or (media and call.local_sdp is None):
            raise TelephonyError(
                f"line {self.core.line!r}: call {call.call_id!r} is {call.state}, not connected"
            )
        return call.dialog

    # --- our requests ----------------------------------------------------------------

    def hold(self, call: SipCall, now: float, *, hold: bool) -> list[Effect]:
        """Put a connected call on hold (or take it off) by re-INVITE."""
        core = self.core
        dialog = self._connected(call, media=True)
        if call.reinvite_txn is not None or call.pending_ok is not None:
            raise TelephonyError(
                f"line {core.line!r}: call {call.call_id!r} is already being changed"
            )
        call.sdp_version += 1
        call.on_hold = hold
        offer = make_offer(
            core.host,
            call.rtp_port,
            core.settings.codecs,
            session_id=call.session_id,
            version=call.sdp_version,
            direction="sendonly" if hold else "sendrecv",
        )
        call.local_sdp = offer
        request = dialog.request("INVITE", core.via(), contact=core.contact(), body=bytes(offer))
        call.reinvite_txn, out = core.send(request, call.dest, now, context=call)
        return out

    def transfer_uri(self, call: SipCall, target: str) -> Uri:
        """Where a transfer of ``call`` to ``target`` goes: a bare number at the
        registrar's (or proxy's) domain, else at the trunk the call is with."""
        far = self._connected(call, media=False).remote_target
        return self.core.dial_uri(target, peer=f"{far.host}:{far.port}" if far.port else far.host)

    def transfer(self, call: SipCall, target: str, now: float) -> list[Effect]:
        """Blind transfer by REFER (RFC 3515): progress comes as :class:`TransferOutcome`."""
        core = self.core
        dialog = self._connected(call, media=False)
        refer_to = self.transfer_uri(call, target)
        request = dialog.request(
            "REFER",
            core.via(),
            contact=core.contact(),
            headers=[("Refer-To", f"<{refer_to}>"), ("Referred-By", core.local_uri())],
        )
        call.transferring = True
        _, out = core.send(request, call.dest, now, context=call)
        return out

    def send_bye(self, call: SipCall, now: float) -> list[Effect]:
        if call.dialog is None or call.state == "ending":
            return self.core.end(call, by_peer=False)
        bye = call.dialog.request("BYE", self.core.via())
        call.state = "ending"
        call.bye_pending = False
        _, out = self.core.send(bye, call.dest, now, context=call)
        return out + self.core.media_stop(call)

    # --- the answers to our requests -------------------------------------------------

    def on_reinvite_response(
        self, call: SipCall, response: Response, txn: ClientTransaction, now: float
    ) -> list[Effect]:
        if response.status < 200:
            return []
        call.reinvite_txn = None
        if response.status >= 300:
            self.core.warn(
                now,
                "line %s: call %s: re-INVITE refused: %d %s",
                self.core.line,
                call.call_id,
                response.status,
                response.reason,
            )
            call.on_hold = not call.on_hold
            return []
        if call.dialog is None:
            return []
        call.dialog.refresh_target(response)
        ack = call.dialog.request("ACK", self.core.via(), cseq=txn.request.cseq[0])
        out: list[Effect] = [Datagram(bytes(ack), call.dest)]
        try:
            if call.local_sdp is not None and response.body:
                call.plan = accept_answer(call.local_sdp, parse_sdp(response.body))
                out.append(MediaStart(call.call_id, call.rtp_port, call.plan))
        except SipSyntaxError as exc:
            self.core.warn(
                now,
                "line %s: call %s: re-INVITE answer refused: %s",
                self.core.line,
                call.call_id,
                exc,
            )
        return out

    def on_reinvite_timeout(self, call: SipCall, now: float) -> list[Effect]:
        call.reinvite_txn = None
        self.core.warn(
            now, "line %s: call %s: re-INVITE unanswered; ending it", self.core.line, call.call_id
        )
        return self.send_bye(call, now) + self.core.end(call, by_peer=True, keep=True)

    def on_bye_response(
        self, call: SipCall, response: Response, txn: ClientTransaction, now: float
    ) -> list[Effect]:
        """The BYE is answered (challenged: once more with credentials); the call ends."""
        challenge = choose_challenge(response) if response.status in (401, 407) else None
        if (
            challenge is not None
            and call.dialog is not None
            and self.core.may_answer(challenge, call.auth_nonces)
        ):
            retry = self.core.authorized(txn.request, challenge)
            call.dialog.local_seq = retry.cseq[0]
            _, out = self.core.send(retry, call.dest, now, context=call)
            return out
        return self.core.end(call, by_peer=False)

    def on_refer_response(self, call: SipCall, response: Response) -> list[Effect]:
        if response.status >= 300:
            call.transferring = False
        return [TransferOutcome(call.call_id, response.status, response.status >= 300)]

    def on_refer_timeout(self, call: SipCall) -> list[Effect]:
        call.transferring = False
        return [TransferOutcome(call.call_id, 408, True)]

    # --- the peer's requests ---------------------------------------------------------

    def on_reinvite(self, request: Request, txn: ServerTransaction, now: float) -> list[Effect]:
        core = self.core
        call = core.in_dialog(request, request.to.tag)
        if call is None or call.dialog is None or call.state == "ended":
            return core.reply(txn, request, 481, now)
        if not call.dialog.accepts(request):
            return core.reply(txn, request, 500, now, extra=[("Retry-After", "1")])
        if (
            call.reinvite_txn is not None
            or call.pending_ok is not None
            or call.state != "confirmed"
        ):
            return core.reply(txn, request, 491, now)
        txn.context = call
        call.dialog.refresh_target(request)
        body = b""
        if request.body:
            try:
                body = self._answer(call, request.body)
            except NotAcceptableError:
                return core.reply(txn, request, 488, now, to_tag=call.local_tag)
        elif call.local_sdp is not None:
            body = bytes(call.local_sdp)
        ok = core.dialog_response(request, 200, call, body=body)
        out = core.respond(txn, ok, now)
        core.start_ok(call, ok, txn.peer, request.cseq[0], now)
        if call.plan is not None:
            out.append(MediaStart(call.call_id, call.rtp_port, call.plan))
        return out

    def _answer(self, call: SipCall, body: bytes) -> bytes:
        """Our SDP answer to a re-INVITE's offer (on hold still, if we hold the call)."""
        offer = parse_sdp(body)
        call.sdp_version += 1
        answer, plan = answer_offer(
            offer,
            self.core.host,
            call.rtp_port,
            self.core.settings.codecs,
            session_id=call.session_id,
            version=call.sdp_version,
            hold=call.on_hold,
        )
        call.local_sdp, call.plan = answer, plan
        return bytes(answer)

    def on_bye(self, request: Request, txn: ServerTransaction, now: float) -> list[Effect]:
        core = self.core
        call = core.in_dialog(request, request.to.tag)
        if (
            call is None
            or call.state == "ended"
            or (call.dialog and not call.dialog.accepts(request))
        ):
            return core.reply(txn, request, 481, now)
        out = core.reply(txn, request, 200, now, to_tag=call.local_tag)
        if call.inbound and call.state == "ringing" and call.server_txn is not None:
            out += core.respond(call.server_txn, core.dialog_response(call.invite, 487, call), now)
        return out + core.end(call, by_peer=not call.hung_up_by_us and not call.transferring)

    def on_info(self, request: Request, txn: ServerTransaction, now: float) -> list[Effect]:
        call = self.core.in_dialog(request, request.to.tag)
        if call is None:
            return self.core.reply(txn, request, 481, now)
        body = request.body.decode("utf-8", "replace")
        for line in body.splitlines():
            key, _, value = line.partition("=")
            if key.strip().lower() == "signal":
                log.info(
                    "line %s: call %s: DTMF %r (SIP INFO)",
                    self.core.line,
                    call.call_id,
                    value.strip(),
                )
        return self.core.reply(txn, request, 200, now, to_tag=call.local_tag)

    def on_notify(self, request: Request, txn: ServerTransaction, now: float) -> list[Effect]:
        core = self.core
        if not request.to.tag:
            return core.reply(txn, request, 200, now)  # unsolicited (message waiting...)
        call = core.in_dialog(request, request.to.tag)
        if call is None or not call.transferring:
            return core.reply(txn, request, 481, now)
        out = core.reply(txn, request, 200, now, to_tag=call.local_tag)
        status = _sipfrag_status(request.body)
        state = (request.headers.get("Subscription-State") or "").split(";")[0].strip().lower()
        final = status >= 200 or state == "terminated"
        out.append(TransferOutcome(call.call_id, status, final))
        if final:
            call.transferring = False
            if 200 <= status < 300 and call.state == "confirmed":
                log.info("line %s: call %s transferred", core.line, call.call_id)
                call.hung_up_by_us = True
                out += self.send_bye(call, now)
        return out


def _sipfrag_status(body: bytes) -> int:
    """The status of a NOTIFY's message/sipfrag body (``SIP/2.0 200 OK``); 0: none."""
    frag = body.decode("utf-8", "replace").strip().split("\r\n")[0].split("\n")[0]
    parts = frag.split()
    if len(parts) >= 2 and parts[0].upper() == "SIP/2.0" and is_number(parts[1], 3):
        return int(parts[1])
    return 0
