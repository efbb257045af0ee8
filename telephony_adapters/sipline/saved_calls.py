"""Calls that survive a restart of the process: what the line's dialog store keeps of
each call (a JSON-ready snapshot, written when it changes) and how a new process takes
the calls up again (:meth:`SavedCalls.restore`; the engine then names the ones it
believes live, :meth:`~.useragent.UserAgent.adopt`)."""

from __future__ import annotations

import dataclasses
from typing import Any

from telephony_adapters.sipline.agent_core import AgentCore
from telephony_adapters.sipline.call import SipCall
from telephony_adapters.sipline.dialog import Dialog
from telephony_adapters.sipline.message import (
    Request,
    SipSyntaxError,
    parse,
    parse_address,
    parse_uri,
)
from telephony_adapters.sipline.sdp import MediaPlan, parse_sdp
from telephony_adapters.sipline.transaction import Addr


class SavedCalls:
    def __init__(self, core: AgentCore) -> None:
        self.core = core
        self._saved: dict[str, tuple[object, ...] | None] = {}
        """Call -> the fingerprint of its snapshot last handed out (:meth:`changes`)."""
        self.restored: list[str] = []
        """Calls taken up by :meth:`restore`, until the engine adopts them."""

    def changes(self) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """What to write to the line's dialog store since the last call: the calls whose
        saved form changed (call id -> snapshot) and those to forget. A call is saved
        while it is ringing, being dialled or up and not being ended by us: enough to
        answer, end or carry on its dialog in a new process (see :meth:`restore`)."""
        calls = self.core.calls
        changed: dict[str, dict[str, Any]] = {}
        for call_id, call in calls.items():
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
            and (call_id not in calls or _fingerprint(calls[call_id]) is None)
        ]
        for call_id in gone:
            del self._saved[call_id]
        return changed, gone

    def restore(self, saved: list[dict[str, Any]], now: float) -> list[str]:
        """Take up calls saved by an earlier process (before the engine adopts them).
        Returns the ids of snapshots that could not be read (logged; the caller forgets
        them)."""
        bad: list[str] = []
        for snapshot in saved:
            call_id = str(snapshot.get("call_id", "?"))
            try:
                call = self._revive(snapshot, now)
            except (SipSyntaxError, KeyError, TypeError, ValueError) as exc:
                self.core.warn(
                    now,
                    "line %s: saved call %s unreadable, forgotten: %s",
                    self.core.line,
                    call_id,
                    exc,
                    error=True,
                )
                bad.append(call_id)
                continue
            self.core.add(call)
            self._saved[call.call_id] = _fingerprint(call)
            self.restored.append(call.call_id)
        return bad

    def _revive(self, saved: dict[str, Any], now: float) -> SipCall:
        invite = parse(str(saved["invite"]).encode("latin-1"))
        if not isinstance(invite, Request):
            raise SipSyntaxError("the saved INVITE is a response")
        state = str(saved["state"])
        call = SipCall(
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
            agent=str(saved.get("agent", "")),
        )
        if saved.get("local_sdp"):
            call.local_sdp = parse_sdp(str(saved["local_sdp"]).encode("latin-1"))
        if saved.get("plan"):
            call.plan = MediaPlan(**saved["plan"])
        if saved.get("dialog"):
            call.dialog = _dialog(saved["dialog"], invite.call_id, call.local_tag)
        table = self.core.table
        if call.state == "ringing":
            if invite.body:
                call.remote_offer = parse_sdp(invite.body)
            call.server_txn = table.create_server(invite, _addr(saved["source"]), now, context=call)
        elif call.state == "dialling":
            call.client_txn = table.resume_client(invite, call.dest, now, context=call)
        elif call.state != "confirmed" or call.dialog is None:
            raise ValueError(f"cannot take up a call that was {state!r}")
        return call


def _addr(value: Any) -> Addr:
    host, port = value
    return str(host), int(port)


def _dialog(d: dict[str, Any], call_id: str, local_tag: str) -> Dialog:
    return Dialog(
        call_id=call_id,
        local_tag=local_tag,
        remote_tag=str(d["remote_tag"]),
        local_uri=parse_address(str(d["local_uri"])),
        remote_uri=parse_address(str(d["remote_uri"])),
        remote_target=parse_uri(str(d["remote_target"])),
        route_set=[str(r) for r in d["route_set"]],
        local_seq=int(d["local_seq"]),
        remote_seq=None if d["remote_seq"] is None else int(d["remote_seq"]),
    )


def _fingerprint(call: SipCall) -> tuple[object, ...] | None:
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


def _snapshot(call: SipCall) -> dict[str, Any]:
    """A call as JSON-ready data, for :meth:`SavedCalls.restore` in another process."""
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
        "agent": call.agent,
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
