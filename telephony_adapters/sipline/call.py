"""One call of the SIP user agent: its state, transactions, dialog and media, inbound
or outbound."""

from __future__ import annotations

from dataclasses import dataclass, field

from telephony_adapters.sipline.dialog import Dialog
from telephony_adapters.sipline.message import Request, Response
from telephony_adapters.sipline.sdp import MediaPlan, Session
from telephony_adapters.sipline.transaction import Addr, ClientTransaction, ServerTransaction


@dataclass(eq=False)
class PendingOk:
    """A 2xx to an INVITE we retransmit until its ACK (RFC 3261 §13.3.1.4)."""

    response: Response
    dest: Addr
    cseq: int
    interval: float
    next_at: float
    give_up_at: float


@dataclass(slots=True)
class SessionTimer:
    """The session timer of a call (RFC 4028, :mod:`.session_timer`)."""

    interval: int
    we_refresh: bool
    expires_at: float = 0.0


@dataclass(eq=False)
class SipCall:
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
    pending_ok: PendingOk | None = None
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
    agent: str = ""
    """An agent leg (a call to this agent's phone); "": a call on the trunk."""
    session: SessionTimer | None = None
    peer_update: bool = False
    """The peer's Allow lists UPDATE (a session refresh may use it)."""
    refreshing: bool = False
    """``reinvite_txn`` (or ``update_txn``) is a session refresh, not a hold."""
    update_txn: ClientTransaction | None = None
    referred: bool = False
    """A transfer the peer asked by REFER is under way (:mod:`.refer_in`)."""
    rseq: int = 0
    """The RSeq of the last reliable provisional response we acknowledged (PRACK)."""
