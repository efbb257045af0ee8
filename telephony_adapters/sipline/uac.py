"""Calls we make (the UAC side): the INVITE with our SDP offer; 401/407 answered once
per nonce with digest credentials (CSeq+1, new branch); a session timer asked
(RFC 4028: a 422 is answered by asking its Min-SE); reliable 18x (RFC 3262: Require
100rel, RSeq) acknowledged by PRACK; 18x reported as ``ringing``;
the 2xx ACKed (new branch, to the Contact, along the route set) and media started;
busy, no answer and failures end the call with a :class:`~.effects.DialProgress` and
``CallerHungUp``. Hanging up a ringing call sends CANCEL (only after a provisional
response; a 2xx that crosses it gets ACK then BYE), and a call ringing longer than
``dial_timeout_s`` is cancelled as ``no_answer``.

Agent legs (:meth:`UacCalls.ring_agent`) go the same way (:meth:`UacCalls.place`) to an
agent's phone, never through the trunk's proxy, with the caller on the display; their
progress is an :class:`~.effects.AgentLegProgress` instead (:func:`progress`)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

from cti.errors import TelephonyError
from telephony_adapters.sipline.agent_core import ALLOW, SUPPORTED, AgentCore
from telephony_adapters.sipline.call import SipCall
from telephony_adapters.sipline.dialog import Dialog
from telephony_adapters.sipline.digest import choose_challenge
from telephony_adapters.sipline.effects import (
    LEG_OUTCOMES,
    AgentLegProgress,
    Datagram,
    DialProgress,
    Effect,
    MediaStart,
    dial_outcome_of,
)
from telephony_adapters.sipline.in_dialog import InDialog
from telephony_adapters.sipline.message import (
    Headers,
    Request,
    Response,
    SipSyntaxError,
    Uri,
    is_number,
    quote,
    split_commas,
)
from telephony_adapters.sipline.sdp import accept_answer, make_offer, parse_sdp
from telephony_adapters.sipline.session_timer import min_se, session_expires
from telephony_adapters.sipline.transaction import Addr

log = logging.getLogger(__name__)


class UacCalls:
    def __init__(self, core: AgentCore, in_dialog: InDialog) -> None:
        self.core = core
        self.in_dialog = in_dialog

    def dial(self, number: str, call_id: str, rtp_port: int, now: float) -> list[Effect]:
        """Call ``number`` on the trunk (through the outbound proxy, if any)."""
        core = self.core
        target = core.dial_uri(number)
        route: list[tuple[str, str]] = []
        if core.proxy is not None:
            proxy = core.uri_of(core.settings.outbound_proxy).with_params(lr=None)
            route.append(("Route", f"<{proxy}>"))
        return self.place(
            call_id,
            target,
            core.proxy or target.host_port,
            rtp_port,
            now,
            from_=core.local_uri(),
            headers=route,
            number=number,
            timeout_s=core.settings.dial_timeout_s,
        )

    def ring_agent(
        self,
        leg_id: str,
        agent_id: str,
        phone: Uri,
        dest: Addr,
        rtp_port: int,
        now: float,
        *,
        caller: tuple[str, str],
        auto_answer: bool,
        timeout_s: float,
    ) -> list[Effect]:
        """Call an agent's phone at ``phone`` (sent to ``dest``, never through the trunk's
        proxy): the caller's (name, number) as From's display name, and ``Call-Info:
        answer-after=0`` for a phone that should answer by itself."""
        core = self.core
        name, number = caller
        user = "".join(c for c in number if c.isascii() and (c.isalnum() or c in "+*#"))[:32]
        display = caller_display(name, number)
        shown = f"{quote(display)} " if display else ""
        headers = [("Call-Info", f"<sip:{core.host}>;answer-after=0")] if auto_answer else []
        return self.place(
            leg_id,
            phone,
            dest,
            rtp_port,
            now,
            from_=f"{shown}<sip:{user or core.user}@{core.host}>",
            headers=headers,
            number=str(phone),
            timeout_s=timeout_s,
            agent=agent_id,
        )

    def place(
        self,
        call_id: str,
        target: Uri,
        dest: Addr,
        rtp_port: int,
        now: float,
        *,
        from_: str,
        headers: Sequence[tuple[str, str]],
        number: str,
        timeout_s: float,
        agent: str = "",
    ) -> list[Effect]:
        """Send an INVITE with our SDP offer to ``target`` at ``dest``; cancelled as
        ``no_answer`` after ``timeout_s`` without an answer."""
        core = self.core
        if call_id in core.calls:
            raise TelephonyError(f"line {core.line!r}: call {call_id!r} is already live")
        local_tag = core.token(4)
        sip_call_id = f"{core.token(10)}@{core.host}"
        h = Headers()
        h.add("Via", core.via())
        h.add("Max-Forwards", "70")
        h.add("From", f"{from_};tag={local_tag}")
        h.add("To", f"<{target}>")
        h.add("Call-ID", sip_call_id)
        h.add("CSeq", "1 INVITE")
        for name, value in headers:
            h.add(name, value)
        h.add("Contact", core.contact())
        h.add("Allow", ALLOW)
        h.add("Supported", SUPPORTED)
        for name, value in self.in_dialog.timers.request_headers(None):
            h.add(name, value)
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
            dest=dest,
            number=number,
            agent=agent,
        )
        core.add(call)
        call.ring_deadline = now + timeout_s
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
        if status == 422 and call.state == "dialling" and not call.hung_up_by_us:
            again = self._longer_session(call, response)
            if again is not None:
                call.provisional = False
                return self._send_invite(call, again, now)
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
        return [progress(call, outcome, status), *self.core.end(call, by_peer=True)]

    def _longer_session(self, call: SipCall, response: Response) -> Request | None:
        """Our INVITE again asking the session interval a 422 names (RFC 4028 §7.4;
        CSeq+1, new branch); None if it names none larger than we asked."""
        try:
            floor = min_se(response)
            asked = session_expires(call.invite)
        except SipSyntaxError:
            return None
        if asked is None or not asked[0] < floor <= 86400:
            return None
        again = self.core.authorized_again(call.invite)
        again.headers.set("Session-Expires", str(floor))
        again.headers.set("Min-SE", str(floor))
        return again

    def _on_provisional(self, call: SipCall, response: Response, now: float) -> list[Effect]:
        status = response.status
        if status > 100 and response.to.tag and call.dialog is None:
            with contextlib.suppress(SipSyntaxError):  # an 18x without Contact: no dialog
                call.dialog = Dialog.as_uac(call.invite, response)
        out: list[Effect] = []
        if status > 100 and "100rel" in response_requires(response):
            fresh, out = self._prack(call, response, now)
            if not fresh:
                return out  # a retransmission, or out of order: no news (RFC 3262 §4)
        if not call.provisional:
            call.provisional = True
            if call.cancel_pending:
                return out + self._send_cancel(call, now)
        if status in (180, 183) and call.state == "dialling" and not call.hung_up_by_us:
            out.append(progress(call, "ringing", status))
        return out

    def _prack(self, call: SipCall, response: Response, now: float) -> tuple[bool, list[Effect]]:
        """Acknowledge a reliable provisional response (RFC 3262 §4) with PRACK in its
        early dialog: (whether it was new, what to send). Only the next RSeq in order is
        acknowledged; a retransmission of one acknowledged is dropped (the PRACK's own
        transaction retransmits)."""
        rseq_text = (response.headers.get("RSeq") or "").strip()
        if not is_number(rseq_text) or call.dialog is None:
            return True, []  # no RSeq or no dialog: taken as unreliable
        rseq = int(rseq_text)
        if call.rseq and rseq != call.rseq + 1:
            return False, []
        call.rseq = rseq
        number, method = call.invite.cseq
        prack = call.dialog.request(
            "PRACK", self.core.via(), headers=[("RAck", f"{rseq} {number} {method}")]
        )
        _, out = self.core.send(prack, call.dest, now, context=call)
        return True, out

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
            out.append(progress(call, "failed", 488))
            return (
                out + self.in_dialog.send_bye(call, now) + core.end(call, by_peer=True, keep=True)
            )
        timers = self.in_dialog.timers
        timers.may_update(call, response)
        timers.answered(call, call.invite, response)
        timers.start(call, now)
        out.append(progress(call, "answered", response.status))
        if call.plan is not None:
            out.append(MediaStart(call.call_id, call.rtp_port, call.plan))
        return out

    def on_timeout(self, call: SipCall, now: float) -> list[Effect]:
        """No response to our INVITE (Timer B). Always a final outcome: the dialer waits
        for one even after its hang-up."""
        if call.hung_up_by_us:
            out: list[Effect] = [progress(call, "cancelled", 0)]
        else:
            out = [progress(call, "failed", 0)]
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
            if call.client_txn is not None:  # no answer at all: not tried elsewhere
                call.client_txn.may_fail_over = False
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
        outcome = progress(call, call.cancel_reason or "cancelled", 0)
        return [outcome, *self.core.end(call, by_peer=True)]


MAX_DISPLAY = 64
"""Characters of a caller's name (and of the number) shown on an agent's phone."""


def caller_display(name: str, number: str) -> str:
    """``name <number>`` for a phone's display: control characters and line breaks
    dropped, each part bounded (quoting is :func:`.message.quote`'s)."""

    def clean(text: str) -> str:
        kept = "".join(c if c.isprintable() else " " for c in text)
        return " ".join(kept.split())[:MAX_DISPLAY]

    name, number = clean(name), clean(number)[:32]
    if name and number:
        return f"{name} <{number}>"
    return name or number


def response_requires(response: Response) -> set[str]:
    """The extensions a response's Require names, lower-cased."""
    return {e.lower() for v in response.headers.get_all("Require") for e in split_commas(v)}


def progress(call: SipCall, outcome: str, status: int) -> Effect:
    """The effect reporting a dial's progress: a :class:`DialProgress` on the trunk, an
    :class:`AgentLegProgress` (with the phone's media plan once answered) for an agent
    leg, whose first final outcome is its last."""
    final = outcome != "ringing"
    if not call.agent:
        return DialProgress(call.call_id, outcome, status, final)
    outcome = LEG_OUTCOMES.get(outcome, outcome)
    final = outcome not in ("ringing", "answered")
    if final:
        call.reported_end = True
    plan = call.plan if outcome == "answered" else None
    return AgentLegProgress(call.call_id, call.agent, outcome, status, final, plan)
