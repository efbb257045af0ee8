"""What the SIP user agent asks of its shell (:mod:`.line`): datagrams to send, line
events for the engine, RTP streams to start and stop, and the progress of our dials
and transfers."""

from __future__ import annotations

from dataclasses import dataclass

from cti.protocol import CallArrived, CallerHungUp
from telephony_adapters.sipline.sdp import MediaPlan
from telephony_adapters.sipline.transaction import Addr, Output, Transmit


@dataclass(frozen=True, slots=True)
class Datagram:
    data: bytes
    dest: Addr


@dataclass(frozen=True, slots=True)
class MediaStart:
    """Start (or change) the call's RTP stream: from ``local_port`` as ``plan`` says."""

    call_id: str
    local_port: int
    plan: MediaPlan


@dataclass(frozen=True, slots=True)
class MediaStop:
    """The call is over: stop its RTP stream and free ``local_port``."""

    call_id: str
    local_port: int


@dataclass(frozen=True, slots=True)
class DialProgress:
    """How an outbound call progressed or ended.

    ``outcome``: ``ringing`` (not final), then one of ``answered``, ``busy``,
    ``no_answer``, ``rejected`` (declined or forbidden), ``unauthorized`` (credentials
    refused or missing), ``cancelled`` (we hung up first), ``failed``. ``status`` is
    the SIP status that decided it (0 for a time-out).
    """

    call_id: str
    outcome: str
    status: int
    final: bool


@dataclass(frozen=True, slots=True)
class TransferOutcome:
    """Progress of a blind transfer: the REFER's response, then each NOTIFY's sipfrag
    status. ``final`` with a 2xx: the far end reached the target and our leg ends."""

    call_id: str
    status: int
    final: bool


@dataclass(frozen=True, slots=True)
class Replaces:
    """A ``Replaces`` (RFC 3891): the dialog a new INVITE takes the place of.
    ``to_tag`` is the tag of the side that receives the INVITE, ``from_tag`` the other."""

    call_id: str
    to_tag: str
    from_tag: str
    early_only: bool = False


@dataclass(frozen=True, slots=True)
class TransferRequested:
    """The peer of call ``call_id`` asks us, by REFER (RFC 3515), to transfer it to
    ``target`` (a SIP or tel URI): blind, or attended when ``replaces`` names the dialog
    (at the target) the call is to take the place of. The line carries it out and
    reports how it went with :meth:`.UserAgent.refer_outcome` (a SIP status: the
    peer's NOTIFY says it)."""

    call_id: str
    target: str
    replaces: Replaces | None
    referred_by: str


@dataclass(frozen=True, slots=True)
class PhoneReachability:
    """An agent's phone became reachable or unreachable (registered, expired, removed,
    answering OPTIONS or not). ``contact``: the URI calls to the agent now go to
    ("" when unreachable)."""

    agent_id: str
    reachable: bool
    contact: str


@dataclass(frozen=True, slots=True)
class AgentLegProgress:
    """How a call to an agent's phone (an agent leg, :meth:`.UserAgent.ring_agent`)
    progressed or ended. ``call_id`` is the leg's own id (``<call id>~<agent>``).

    ``outcome``: ``ringing`` (not final), ``answered`` (not final: the leg is up, with the
    phone's media ``plan``), then one final of ``declined`` (busy, 603, 403...),
    ``no_answer`` (rang too long, 480, 408), ``cancelled`` (we withdrew it), ``failed``,
    or ``ended`` (the phone hung up an answered leg). ``status``: the SIP status that
    decided it (0 for a time-out or a BYE).
    """

    call_id: str
    agent_id: str
    outcome: str
    status: int
    final: bool
    plan: MediaPlan | None = None


Effect = (
    Datagram
    | CallArrived
    | CallerHungUp
    | MediaStart
    | MediaStop
    | DialProgress
    | TransferOutcome
    | TransferRequested
    | PhoneReachability
    | AgentLegProgress
)

#: :attr:`DialProgress.outcome` -> :attr:`AgentLegProgress.outcome`.
LEG_OUTCOMES = {
    "busy": "declined",
    "rejected": "declined",
    "unauthorized": "failed",
}


def dial_outcome_of(status: int) -> str:
    """The :attr:`DialProgress.outcome` of a final failure status to our INVITE."""
    if status in (486, 600):
        return "busy"
    if status in (408, 480):
        return "no_answer"
    if status in (403, 603):
        return "rejected"
    if status in (401, 407):
        return "unauthorized"
    if status == 487:
        return "cancelled"
    return "failed"


def datagrams(outputs: list[Output]) -> list[Effect]:
    """The messages a transaction sends as it starts or responds (only ever
    :class:`~.transaction.Transmit`; deliveries and time-outs come from receiving and
    advancing, which the user agent routes itself)."""
    return [Datagram(bytes(o.message), o.dest) for o in outputs if isinstance(o, Transmit)]
