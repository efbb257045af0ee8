"""A transfer asked by an agent's phone (its transfer key: a REFER on the agent's leg), sans-I/O.

The user agent answers the phone's REFER (202, NOTIFY 100) and hands the line a
:class:`~.effects.TransferRequested` for the leg (``<call>~<agent>``). :class:`PhoneRefers`
turns it into the engine's :class:`~cti.events.TransferAsked` (the caller's call, the
agent, what the phone dialled) or a refusal the phone hears at once:

- **Blind** (Refer-To ``sip:1002@…``, ``tel:+86…``): the target is the Refer-To's user
  part, unescaped; when it is the extension of an agent's fixed phone (the user part of
  ``[[agents]] phone``), ``to_agent`` names that agent (a phone that registers does so
  as its agent's id, which the engine knows itself).
- **Attended** (a ``Replaces`` in the Refer-To): when it names the dialog of another
  agent's leg of the same call (the agent consulted), the engine is asked to hand the
  caller to that agent (``to_agent``); a Replaces naming no dialog of ours is 481, one
  naming any other of ours (the phone's own second call through the line) 501: two
  calls are not joined (docs/voice.md).
- A REFER on a leg in no call (a standing leg between calls) is 603.

The outcome goes back to the phone as the REFER's NOTIFY (:meth:`.UserAgent.refer_outcome`):
the engine's (:meth:`PhoneRefers.outcome_leg`), or, when the line ends the agent's leg
before the engine said (the plan took the agent off the call), :meth:`PhoneRefers.ending`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from cti.events import TransferAsked
from telephony_adapters.sipline.call import SipCall
from telephony_adapters.sipline.effects import Replaces, TransferOutcome, TransferRequested
from telephony_adapters.sipline.message import SipSyntaxError, parse_uri
from telephony_adapters.sipline.syntax import has_control, unescape

#: Longest target passed on (a number or a name: the rest is no one's).
TARGET_CHARS = 64
_KEPT = 1000
NOT_OURS = 481
NOT_JOINED = 501
REFUSED = 603
ENDED = 487

Owner = tuple[str, str]
"""(the caller's call id, the agent id) of an agent leg."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """The phone is told at once: ``status`` and why."""

    status: int
    reason: str


def extensions(phones: Mapping[str, str]) -> dict[str, str]:
    """User part of each agent's fixed phone URI -> the agent (``sip:2002@10.0.0.5``)."""
    found: dict[str, str] = {}
    for agent, uri in phones.items():
        try:
            user = unescape(parse_uri(uri).user)
        except SipSyntaxError:
            continue
        if user:
            found.setdefault(user, agent)
    return found


def dialled(target: str) -> str | Refusal:
    """What a blind Refer-To dials: its user part, unescaped (a tel URI's number)."""
    try:
        user = unescape(parse_uri(target).user)
    except SipSyntaxError as exc:
        return Refusal(REFUSED, f"the Refer-To is not a URI we read ({exc})")
    if not user or has_control(user) or len(user) > TARGET_CHARS:
        return Refusal(REFUSED, "the Refer-To names no number or user to transfer to")
    return user


class PhoneRefers:
    """Agents' phones' REFERs under way on one line (module docstring)."""

    def __init__(self, line: str, phones: Mapping[str, str]) -> None:
        self._line = line
        self._extensions = extensions(phones)
        self._pending: dict[str, Owner] = {}
        """Leg -> its owner, while the engine has not said how the transfer went."""

    def asked(
        self,
        effect: TransferRequested,
        owner: Owner | None,
        named: Callable[[Replaces], Owner | str | None],
    ) -> TransferAsked | Refusal:
        """The engine's event for the phone's REFER on leg ``effect.call_id`` (``owner``:
        whose leg it is, None: in no call), or the phone's refusal. ``named``: the owner
        of the dialog a Replaces names (an agent leg), its call id (another of ours), or
        None (no dialog of ours)."""
        if owner is None:
            return Refusal(REFUSED, "this phone's connection is in no call to transfer")
        call_id, agent = owner
        if effect.replaces is not None:
            other = named(effect.replaces)
            if other is None:
                return Refusal(NOT_OURS, "no dialog of ours matches the Replaces")
            if isinstance(other, str) or other[0] != call_id or other[1] == agent:
                why = "the Replaces names another call: two calls are not joined here"
                return Refusal(NOT_JOINED, why)
            target = to_agent = other[1]
        else:
            user = dialled(effect.target)
            if isinstance(user, Refusal):
                return user
            target, to_agent = user, self._extensions.get(user, "")
        self._pending[effect.call_id] = owner
        while len(self._pending) > _KEPT:
            del self._pending[next(iter(self._pending))]
        return TransferAsked(call_id=call_id, agent_id=agent, target=target,
                             to_agent=to_agent, line=self._line)  # fmt: skip

    def outcome_leg(self, call_id: str, agent_id: str) -> str | None:
        """The leg whose REFER the engine answers now (then forgotten); None: none."""
        for leg, owner in self._pending.items():
            if owner == (call_id, agent_id):
                del self._pending[leg]
                return leg
        return None

    def ending(self, leg: str) -> Owner | None:
        """``leg`` is being ended by the line: its owner if its REFER still waits for
        the engine (the caller the plan took off the agent), then forgotten."""
        return self._pending.pop(leg, None)

    def over(self, leg: str) -> None:
        """``leg`` ended (the phone hung up): nothing left to tell it."""
        self._pending.pop(leg, None)

    def __contains__(self, leg: object) -> bool:
        return leg in self._pending


def dialog_named(
    by_dialog: Mapping[tuple[str, str], SipCall],
    replaces: Replaces,
    owner_of: Callable[[str], Owner | None],
) -> Owner | str | None:
    """The dialog of ours a Replaces names (RFC 3891: its to-tag is ours): the owner
    of that agent leg, else the call id of ours it is; None: no established one."""
    call = by_dialog.get((replaces.call_id, replaces.to_tag))
    if call is None or call.dialog is None or call.state != "confirmed":
        return None
    if call.dialog.remote_tag != replaces.from_tag:
        return None
    return owner_of(call.call_id) or call.call_id


def left_by_transfer(caller_live: bool, progress: Sequence[TransferOutcome]) -> Refusal | None:
    """What a phone whose leg we end before the engine answered its REFER is told:
    nothing to refuse (None: the caller was handed on, it is still here or its transfer
    out worked), or that the call ended (487)."""
    if caller_live or any(t.final and 200 <= t.status < 300 for t in progress):
        return None
    return Refusal(ENDED, "the call ended before the transfer")
