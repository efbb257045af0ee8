"""Calls we make (the UAC side): the INVITE with our SDP offer; 401/407 answered once
per nonce with digest credentials (CSeq+1, new branch); 18x reported as ``ringing``;
the 2xx ACKed (new branch, to the Contact, along the route set) and media started;
busy, no answer and failures end the call with a :class:`~.effects.DialProgress` and
``CallerHungUp``. Hanging up a ringing call sends CANCEL (only after a provisional
response; a 2xx that crosses it gets ACK then BYE), and a call ringing longer than
``dial_timeout_s`` is cancelled as ``no_answer``."""

from __future__ import annotations

import contextlib
import logging

from cti.errors import TelephonyError
from telephony_adapters.sipline.agent_core import ALLOW, AgentCore
from telephony_adapters.sipline.call import SipCall
from telephony_adapters.sipline.dialog import Dialog
from telephony_adapters.sipline.digest import choose_challenge
from telephony_adapters.sipline.effects import (
    Datagram,
    DialProgress,
    Effect,
    MediaStart,
    dial_outcome_of,
)
from telephony_adapters.sipline.in_dialog import InDialog
from telephony_adapters.sipline.message import Headers, Request, Response, SipSyntaxError
from telephony_adapters.sipline.sdp import accept_answer, make_offer, parse_sdp

log = logging.getLogger(__name__)


class UacCalls:
    def __init__(self, core: AgentCore, in_dialog: InDialog) -> None:
        self.core = core
        self.in_dialog = in_dialog

    def dial(self, number: str, call_id: str, rtp_port: int, now: float) -> list[Effect]:
        core = self.core
        if call_id in core.calls:
            raise TelephonyError(f"line {core.line!r}: call {call_id!r} is already live")
        target = core.dial_uri(number)
        local_tag = core.token(4)
        sip_call_id = f"{core.token(10)}@{core.host}"
        h = Headers()
        h.add("Via", core.via())
        h.add("Max-Forwards", "70")
        h.add("From", f"{core.local_uri()};tag={local_tag}")
        h.add("To", f"<{target}>")
        h.add("Call-ID", sip_call_id)
        h.add("CSeq", "1 INVITE")
        if core.proxy is not None:
            h.add("Route", f"<{core.uri_of(core.settings.outbound_proxy).with_params(lr=None)}>")
        h.add("Contact", core.contact())
        h.add("Allow", ALLOW)
        h.add("User-Agent", core.settings.user_agent)
        session_id = str(int(now * 1000) % 10**9 + 1)
        offer = make_offer(
            core.host, rtp_port, core.settings.codecs, session_id=session_id, version=1
        )
        h.add("Content-Type", "application/sdp")
        invite = Request(headers=h, body=bytes(offer), method="INVITE", uri=str(target))
        call = SipCall(
            call_id=call_id,
            inbound=False,
            sip_call_id=sip_call_id,
            local_tag=local_tag,
            invite=invite,
            state="dialling",
            local_sdp=offer,
            rtp_port=rtp_port,
            session_id=session_id,
            dest=core.proxy or target.host_port,
            number=number,
        )
        core.add(call)
        call.ring_deadline = now + core.settings.dial_timeout_s
        core.at(call.ring_deadline, "ring", call_id)
        return self._send_invite(call, invite, now)

    def _send_invite(self, call: SipCall, invite: Request, now: float) -> list[Effect]:
        call.invite = invite
        call.client_txn, out = self.core.send(invite, call.dest, now, context=call)
        return out

    # --- responses -------------------------------------------------------------------

    def on_response(self, call: SipCall, response: Response, now: float) -> list[Effect]:
        """A response to our INVITE (not a re-INVITE)."""
        status = response.status
        if status < 200:
            return self._on_provisional(call, response, now)
        self.core.cancel_timer("ring", call.call_id)
        if status < 300:
            return self._on_ok(call, response, now)
        challenge = choose_challenge(response) if status in (401, 407) else None
        if (
            challenge is not None
            and call.state == "dialling"
            and not call.hung_up_by_us
            and self.core.may_answer(challenge, call.auth_nonces)
        ):
            call.provisional = False  # a CANCEL waits for a provisional to the new INVITE
            return self._send_invite(call, self.core.authorized(call.invite, challenge), now)
        outcome = dial_outcome_of(status)
        if status == 487 and call.cancel_reason:
            outcome = call.cancel_reason
        log.info(
            "line %s: call %s to %r: %d %s (%s)",
            self.core.line,
            call.call_id,
            call.number,
            status,
            response.reason,
            outcome,
        )
        return [
            DialProgress(call.call_id, outcome, status, True),
            *self.core.end(call, by_peer=True),
        ]

    def _on_provisional(self, call: SipCall, response: Response, now: float) -> list[Effect]:
        status = response.status
        if status > 100 and response.to.tag and call.dialog is None:
            with contextlib.suppress(SipSyntaxError):  # an 18x without Contact: no dialog
                call.dialog = Dialog.as_uac(call.invite, response)
        if not call.provisional:
            call.provisional = True
            if call.cancel_pending:
                return self._send_cancel(call, now)
        if status in (180, 183) and call.state == "dialling" and not call.hung_up_by_us:
            return [DialProgress(call.call_id, "ringing", status, False)]
        return []

    def _on_ok(self, call: SipCall, response: Response, now: float) -> list[Effect]:
        core = self.core
        if call.ack is not None:  # a retransmitted 2xx: ACK it again
            return [Datagram(bytes(call.ack), call.dest)]
        if not response.headers.values("Contact"):
            response.headers.add("Contact", f"<{call.invite.uri}>")  # lenient: target stays
        if call.dialog is None or call.dialog.remote_tag != response.to.tag:
            call.dialog = Dialog.as_uac(call.invite, response)
        else:
            call.dialog.confirm(response)
        dialog = call.dialog
        if core.proxy is None:
            call.dest = dialog.next_hop()
        core.by_dialog[(call.sip_call_id, call.local_tag)] = call
        call.ack = dialog.request("ACK", core.via(), cseq=call.invite.cseq[0])
        out: list[Effect] = [Datagram(bytes(call.ack), call.dest)]
        if call.hung_up_by_us or call.state != "dialling":
            call.state = "confirmed"
            return out + self.in_dialog.send_bye(call, now)  # the 2xx crossed our CANCEL
        call.state = "confirmed"
        try:
            if call.local_sdp is not None and response.body:
                call.plan = accept_answer(call.local_sdp, parse_sdp(response.body))
        except SipSyntaxError as exc:
            core.warn(
                now,
                "line %s: call %s: answer SDP refused: %s; hanging up",
                core.line,
                call.call_id,
                exc,
            )
            out.append(DialProgress(call.call_id, "failed", 488, True))
            return (
                out + self.in_dialog.send_bye(call, now) + core.end(call, by_peer=True, keep=True)
            )
        out.append(DialProgress(call.call_id, "answered", response.status, True))
        if call.plan is not None:
            out.append(MediaStart(call.call_id, call.rtp_port, call.plan))
        return out

    def on_timeout(self, call: SipCall, now: float) -> list[Effect]:
        """No response to our INVITE (Timer B). Always a final outcome: the dialer waits
        for one even after its hang-up."""
        if call.hung_up_by_us:
            out: list[Effect] = [DialProgress(call.call_id, "cancelled", 0, True)]
        else:
            out = [DialProgress(call.call_id, "failed", 0, True)]
            self.core.warn(
                now,
                "line %s: call %s to %r: no response",
                self.core.line,
                call.call_id,
                call.number,
            )
        return out + self.core.end(call, by_peer=True)

    # --- giving up -------------------------------------------------------------------

    def ring_expired(self, call: SipCall, now: float) -> list[Effect]:
        """Timer ``ring``: rung ``dial_timeout_s`` with no answer."""
        log.info("line %s: call %s not answered in time; cancelling", self.core.line, call.call_id)
        return self.cancel(call, now, reason="no_answer")

    def cancel(self, call: SipCall, now: float, *, reason: str) -> list[Effect]:
        call.cancel_reason = reason
        if not call.provisional:
            call.cancel_pending = True
            return []
        return self._send_cancel(call, now)

    def _send_cancel(self, call: SipCall, now: float) -> list[Effect]:
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
            _, out = self.core.send(cancel, call.dest, now, context=call)
        except SipSyntaxError:
            return []  # a CANCEL of this INVITE is already on its way
        self.core.at(now + 64 * self.core.settings.timers.t1, "cancel", call.call_id)
        return out

    def cancel_expired(self, call: SipCall, now: float) -> list[Effect]:
        """Timer ``cancel``: no final response 64xT1 after our CANCEL (RFC 3261 §9.1):
        the INVITE is taken as cancelled and its transaction forgotten, so the call and
        the dialer's wait for its outcome end."""
        self.core.warn(
            now,
            "line %s: call %s to %r: no final response to our CANCEL; taken as cancelled",
            self.core.line,
            call.call_id,
            call.number,
        )
        if call.client_txn is not None:
            self.core.table.abandon(call.client_txn)
        outcome = DialProgress(call.call_id, call.cancel_reason or "cancelled", 0, True)
        return [outcome, *self.core.end(call, by_peer=True)]
