"""Session timers (RFC 4028), sans-I/O: a call that nobody refreshes ends.

Carriers end calls whose session is not refreshed within the interval they asked for
(``Session-Expires``). Here:

- an INVITE, re-INVITE or UPDATE asking for an interval below our ``Min-SE`` gets 422
  with our ``Min-SE`` (RFC 4028 §8.1.1);
- the 2xx to a request with ``Session-Expires`` names the refresher: the one the
  request asked for, else us (``refresher=uas``), and ``Require: timer`` if the peer
  supports it (§9);
- our INVITEs carry ``Supported: timer``, ``Session-Expires`` and ``Min-SE``; a 422 is
  answered by asking again with the larger interval it names; a 2xx without
  ``Session-Expires`` leaves us as the refresher of the interval we asked (§7.2);
- the refresher refreshes at half the interval, by UPDATE when the peer allows it (no
  SDP), else by re-INVITE with our SDP as it is (§7.4, §10); the other side sends BYE
  when no refresh came by ``interval - min(32, interval / 3)`` (§10), and so does the
  refresher whose refreshes all failed by the end of the interval. The engine hears
  the caller hung up, as for any BYE.

The state of one call is its :class:`SessionTimer` (``SipCall.session``); the user
agent fires :data:`REFRESH` and :data:`EXPIRE` timers here (:meth:`SessionTimers.fire`).
"""

from __future__ import annotations

from telephony_adapters.sipline.agent_core import AgentCore
from telephony_adapters.sipline.call import SessionTimer, SipCall
from telephony_adapters.sipline.checks import warning_value
from telephony_adapters.sipline.effects import Effect
from telephony_adapters.sipline.message import (
    Request,
    Response,
    SipSyntaxError,
    is_number,
    split_commas,
)
from telephony_adapters.sipline.syntax import split_params
from telephony_adapters.sipline.transaction import ServerTransaction

REFRESH = "st-refresh"
EXPIRE = "st-expire"
RFC_MIN_SE = 90
"""The smallest interval RFC 4028 allows (§4); our own ``Min-SE`` is never below it
except in tests."""
RETRY_S = 2.0
"""A refresh that could not go (another re-INVITE under way, 491) is tried again after
this long (before the session expires)."""


def session_expires(message: Request | Response) -> tuple[int, str] | None:
    """(interval, refresher: ``uac``, ``uas`` or "") of a ``Session-Expires`` (compact
    ``x``); None without one. SipSyntaxError names a malformed one."""
    value = message.headers.get("Session-Expires")
    if value is None:
        return None
    delta, _, rest = value.partition(";")
    delta = delta.strip()
    if not is_number(delta):
        raise SipSyntaxError(f"bad Session-Expires {value[:40]!r}")
    refresher = (split_params(rest).get("refresher") or "").lower()
    if refresher not in ("", "uac", "uas"):
        raise SipSyntaxError(f"bad refresher in Session-Expires {value[:40]!r}")
    return int(delta), refresher


def min_se(message: Request | Response) -> int:
    """The ``Min-SE`` of a message (0: none). SipSyntaxError names a malformed one."""
    value = message.headers.get("Min-SE")
    if value is None:
        return 0
    delta = value.partition(";")[0].strip()
    if not is_number(delta):
        raise SipSyntaxError(f"bad Min-SE {value[:40]!r}")
    return int(delta)


def supports(message: Request | Response, extension: str) -> bool:
    """Whether ``extension`` is in the message's Supported or Require."""
    return any(
        ext.strip().lower() == extension
        for name in ("Supported", "Require")
        for value in message.headers.get_all(name)
        for ext in split_commas(value)
    )


def allows(message: Request | Response, method: str) -> bool:
    """Whether the message's Allow lists ``method``."""
    return any(
        m.strip().upper() == method
        for value in message.headers.get_all("Allow")
        for m in split_commas(value)
    )


class SessionTimers:
    """The session timers of the user agent's calls (module docstring)."""

    def __init__(self, core: AgentCore) -> None:
        self.core = core

    @property
    def min_se(self) -> int:
        return self.core.settings.min_se_s

    # --- requests that may set or refresh a timer --------------------------------------

    def too_small(
        self, request: Request, txn: ServerTransaction, now: float, *, to_tag: str = ""
    ) -> list[Effect] | None:
        """422 with our Min-SE for a request asking an interval below it, else None."""
        asked = session_expires(request)
        if asked is None or asked[0] >= self.min_se:
            return None
        floor = max(self.min_se, min_se(request))
        why = f"Session-Expires {asked[0]} is below our Min-SE {floor}"
        extra = [("Min-SE", str(floor)), ("Warning", warning_value(self.core.host, why))]
        return self.core.reply(txn, request, 422, now, extra=extra, to_tag=to_tag)

    def answer_headers(self, call: SipCall, request: Request) -> list[tuple[str, str]]:
        """Take the timer a request (INVITE, re-INVITE, UPDATE) asks for, and the headers
        of our 2xx saying so. A request without ``Session-Expires`` keeps the call's timer
        (with us refreshing it) or none."""
        asked = session_expires(request)
        if asked is None:
            if call.session is None:
                return []
            call.session.we_refresh = True
            interval, refresher = call.session.interval, "uas"
        else:
            interval, refresher = asked
            refresher = refresher or "uas"
            call.session = SessionTimer(interval, refresher == "uas")
        headers = [("Session-Expires", f"{interval};refresher={refresher}")]
        if supports(request, "timer"):
            headers.append(("Require", "timer"))
        return headers

    def request_headers(self, call: SipCall | None) -> list[tuple[str, str]]:
        """What our INVITE, re-INVITE or UPDATE says of the session timer: the interval
        (the call's, else the one we ask for) and who refreshes it, if known."""
        if call is None or call.session is None:
            interval = max(self.core.settings.session_expires_s, self.min_se)
            return [("Session-Expires", str(interval)), ("Min-SE", str(self.min_se))]
        refresher = "uac" if call.session.we_refresh else "uas"
        return [
            ("Session-Expires", f"{call.session.interval};refresher={refresher}"),
            ("Min-SE", str(self.min_se)),
        ]

    def answered(self, call: SipCall, request: Request, response: Response) -> None:
        """A 2xx to our INVITE, re-INVITE or UPDATE: the timer it names; without one, we
        refresh the interval we asked for (RFC 4028 §7.2)."""
        try:
            granted = session_expires(response)
        except SipSyntaxError:
            granted = None
        if granted is not None:
            interval, refresher = granted
            call.session = SessionTimer(interval, refresher != "uas")
            return
        asked = session_expires(request)
        if asked is not None:
            call.session = SessionTimer(asked[0], True)

    def may_update(self, call: SipCall, message: Request | Response) -> None:
        """Note whether the peer takes UPDATE (its Allow, in its INVITE or 2xx)."""
        if message.headers.get_all("Allow"):
            call.peer_update = allows(message, "UPDATE")

    def retry_after_422(self, call: SipCall, response: Response) -> int | None:
        """The interval to ask again after a 422 (its Min-SE), or None to give up."""
        floor = min_se(response) if "Min-SE" in response.headers else 0
        current = call.session.interval if call.session is not None else 0
        if floor <= current or floor > 86400:
            return None
        return floor

    # --- the timers --------------------------------------------------------------------

    def start(self, call: SipCall, now: float) -> None:
        """The session was set up or refreshed at ``now``: time its refresh or its end."""
        timer = call.session
        self.core.cancel_timer(REFRESH, call.call_id)
        if timer is None:
            self.core.cancel_timer(EXPIRE, call.call_id)
            return
        if timer.we_refresh:
            timer.expires_at = now + timer.interval
            self.core.at(now + timer.interval / 2, REFRESH, call.call_id)
        else:
            timer.expires_at = now + timer.interval - min(32, timer.interval / 3)
        self.core.at(timer.expires_at, EXPIRE, call.call_id)

    def retry(self, call: SipCall, now: float) -> None:
        """A refresh that could not go now: once more soon, while the session lasts."""
        timer = call.session
        if timer is not None and timer.we_refresh and now + RETRY_S < timer.expires_at:
            self.core.at(now + RETRY_S, REFRESH, call.call_id)

    def stop(self, call: SipCall) -> None:
        self.core.cancel_timer(REFRESH, call.call_id)
        self.core.cancel_timer(EXPIRE, call.call_id)
