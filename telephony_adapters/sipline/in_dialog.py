"""Requests inside a call's dialog: hold and resume by re-INVITE (ours and the peer's,
whose new address or codec the media follows; an offer we cannot take gets 488 and the
call keeps its media), UPDATE (RFC 3311: a session refresh or a new offer, in early and
confirmed dialogs), session refreshes (RFC 4028, :mod:`.session_timer`), blind transfer
by REFER with its NOTIFY progress, INFO (DTMF), a stray PRACK (481: we send no
reliable provisional responses), and BYE both ways."""

from __future__ import annotations

import logging

from cti.errors import TelephonyError
from telephony_adapters.sipline.agent_core import SUPPORTED, AgentCore
from telephony_adapters.sipline.call import SipCall
from telephony_adapters.sipline.checks import warning_value
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
from telephony_adapters.sipline.session_timer import EXPIRE, REFRESH, SessionTimers
from telephony_adapters.sipline.transaction import ClientTransaction, ServerTransaction

log = logging.getLogger(__name__)


class InDialog:
    def __init__(self, core: AgentCore) -> None:
        self.core = core
        self.timers = SessionTimers(core)

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
        call.refreshing = False
        return self._reinvite(call, dialog, bytes(offer), now)

    def _reinvite(self, call: SipCall, dialog: Dialog, body: bytes, now: float) -> list[Effect]:
        core = self.core
        request = dialog.request(
            "INVITE", core.via(), contact=core.contact(), headers=self._st_headers(call), body=body
        )
        call.reinvite_txn, out = core.send(request, call.dest, now, context=call)
        return out

    def _st_headers(self, call: SipCall) -> list[tuple[str, str]]:
        """Supported, and the call's session timer, on a re-INVITE or UPDATE of ours."""
        st = self.timers.request_headers(call) if call.session is not None else []
        return [("Supported", SUPPORTED), *st]

    def _busy(self, call: SipCall) -> bool:
        """An offer or refresh of ours, or our 2xx awaiting its ACK, is under way."""
        return (
            call.reinvite_txn is not None
            or call.update_txn is not None
            or call.pending_ok is not None
        )

    # --- session timers (RFC 4028) -----------------------------------------------------

    def fire(self, kind: str, call: SipCall, now: float) -> list[Effect]:
        """Timer :data:`.session_timer.REFRESH` or :data:`.session_timer.EXPIRE`."""
        if call.state != "confirmed" or call.session is None:
            return []
        if kind == EXPIRE:
            self.core.warn(
                now,
                "line %s: call %s: session not refreshed in %d s (RFC 4028); ending it",
                self.core.line,
                call.call_id,
                call.session.interval,
            )
            return self.send_bye(call, now) + self.core.end(call, by_peer=True, keep=True)
        if kind == REFRESH:
            return self.refresh(call, now)
        return []

    def refresh(self, call: SipCall, now: float) -> list[Effect]:
        """Refresh the session: UPDATE if the peer takes it, else re-INVITE with our SDP
        as it is (same version: nothing changed)."""
        core = self.core
        dialog = call.dialog
        if dialog is None or call.state != "confirmed":
            return []
        if self._busy(call):
            self.timers.retry(call, now)
            return []
        call.refreshing = True
        if call.peer_update:
            request = dialog.request(
                "UPDATE", core.via(), contact=core.contact(), headers=self._st_headers(call)
            )
            call.update_txn, out = core.send(request, call.dest, now, context=call)
            return out
        body = bytes(call.local_sdp) if call.local_sdp is not None else b""
        return self._reinvite(call, dialog, body, now)

    def _refresh_failed(self, call: SipCall, response: Response, now: float) -> list[Effect]:
        """Our refresh (or an offer of ours, which refreshes too) was refused: 422 asks a
        longer interval (ask again), 481 or 408 say the dialog is gone (RFC 3261
        §12.2.1.2: the call ends), 405/501 to an UPDATE: re-INVITE instead; anything
        else is tried again while the session lasts."""
        status = response.status
        call.refreshing = False
        if status in (481, 408):
            return self.core.end(call, by_peer=True)
        if call.session is None:
            return []
        if status == 422 and (floor := self.timers.retry_after_422(call, response)) is not None:
            call.session.interval = floor
            return self.refresh(call, now)
        if status in (405, 501) and response.cseq[1] == "UPDATE":
            call.peer_update = False
            return self.refresh(call, now)
        self.timers.retry(call, now)
        return []

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
            if not call.refreshing:
                call.on_hold = not call.on_hold
            return self._refresh_failed(call, response, now)
        if call.dialog is None:
            return []
        call.refreshing = False
        call.dialog.refresh_target(response)
        ack = call.dialog.request("ACK", self.core.via(), cseq=txn.request.cseq[0])
        out: list[Effect] = [Datagram(bytes(ack), call.dest)]
        self.timers.answered(call, txn.request, response)
        self.timers.start(call, now)
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

    def on_update_response(
        self, call: SipCall, response: Response, txn: ClientTransaction, now: float
    ) -> list[Effect]:
        """The answer to our UPDATE (a session refresh, no SDP)."""
        if response.status < 200 or txn is not call.update_txn:
            return []
        call.update_txn = None
        if response.status >= 300:
            return self._refresh_failed(call, response, now)
        call.refreshing = False
        self.timers.answered(call, txn.request, response)
        self.timers.start(call, now)
        return []

    def on_update_timeout(self, call: SipCall, now: float) -> list[Effect]:
        call.update_txn = None
        self.core.warn(
            now, "line %s: call %s: UPDATE unanswered; ending it", self.core.line, call.call_id
        )
        return self.send_bye(call, now) + self.core.end(call, by_peer=True, keep=True)

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
        if self._busy(call) or call.state != "confirmed":
            return core.reply(txn, request, 491, now)
        if (small := self.timers.too_small(request, txn, now, to_tag=call.local_tag)) is not None:
            return small
        txn.context = call
        body = b""
        if request.body:
            try:
                body = self._answer(call, request.body)
            except NotAcceptableError as exc:
                return self._not_acceptable(call, request, txn, now, exc)
        elif call.local_sdp is not None:
            body = bytes(call.local_sdp)
        call.dialog.refresh_target(request)
        self.timers.may_update(call, request)
        extra = self.timers.answer_headers(call, request)
        ok = core.dialog_response(request, 200, call, body=body, extra=extra)
        out = core.respond(txn, ok, now)
        core.start_ok(call, ok, txn.peer, request.cseq[0], now)
        self.timers.start(call, now)
        if request.body and call.plan is not None:
            out.append(MediaStart(call.call_id, call.rtp_port, call.plan))
        return out

    def _not_acceptable(
        self,
        call: SipCall,
        request: Request,
        txn: ServerTransaction,
        now: float,
        exc: SipSyntaxError,
    ) -> list[Effect]:
        """488 to an offer we cannot take (RFC 3261 §14.2): the call keeps its media."""
        warning = [("Warning", f'304 {self.core.host} "{exc}"')]
        return self.core.reply(txn, request, 488, now, extra=warning, to_tag=call.local_tag)

    def _answer(self, call: SipCall, body: bytes) -> bytes:
        """Our SDP answer to a re-INVITE's or UPDATE's offer (on hold still, if we hold
        the call): the media plan follows the offer's address and codec. Raises
        NotAcceptableError (the call's SDP and plan unchanged) for one we cannot take."""
        offer = parse_sdp(body)
        answer, plan = answer_offer(
            offer,
            self.core.host,
            call.rtp_port,
            self.core.settings.codecs,
            session_id=call.session_id,
            version=call.sdp_version + 1,
            hold=call.on_hold,
            srtp=self.core.srtp(call),
        )
        call.sdp_version += 1
        call.local_sdp, call.plan, call.remote_offer = answer, plan, offer
        return bytes(answer)

    def on_update(self, request: Request, txn: ServerTransaction, now: float) -> list[Effect]:
        """The peer's UPDATE (RFC 3311) in an early or confirmed dialog: a session refresh
        (no body) or a new offer, answered in the 200 (the media follows it at once)."""
        core = self.core
        call = core.in_dialog(request, request.to.tag)
        if call is None or call.dialog is None or call.state in ("ending", "ended"):
            return core.reply(txn, request, 481, now)
        if not call.dialog.accepts(request):
            return core.reply(txn, request, 500, now, extra=[("Retry-After", "1")])
        if (small := self.timers.too_small(request, txn, now, to_tag=call.local_tag)) is not None:
            return small
        txn.context = call
        body = b""
        if request.body:
            if call.reinvite_txn is not None:
                return core.reply(txn, request, 491, now, to_tag=call.local_tag)
            if call.plan is None or call.rtp_port == 0:
                # The first offer and answer are not done (RFC 3311 §5.2).
                extra = [("Retry-After", "1")]
                return core.reply(txn, request, 500, now, extra=extra, to_tag=call.local_tag)
            try:
                body = self._answer(call, request.body)
            except NotAcceptableError as exc:
                return self._not_acceptable(call, request, txn, now, exc)
        call.dialog.refresh_target(request)
        extra = self.timers.answer_headers(call, request)
        ok = core.dialog_response(request, 200, call, body=body, extra=extra)
        out = core.respond(txn, ok, now)
        if call.state == "confirmed":
            self.timers.start(call, now)
        if body and call.plan is not None and call.state == "confirmed":
            out.append(MediaStart(call.call_id, call.rtp_port, call.plan))
        return out

    def on_prack(self, request: Request, txn: ServerTransaction, now: float) -> list[Effect]:
        """We send no reliable provisional responses (RFC 3262): a PRACK acknowledges
        none of ours (481, RFC 3262 §3)."""
        why = warning_value(self.core.host, "we sent no reliable provisional response")
        return self.core.reply(txn, request, 481, now, extra=[("Warning", why)])

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
