"""The line's registration: REGISTER with digest credentials, refreshed before it
expires, retried after a refusal or silence, and withdrawn when the line stops."""

from __future__ import annotations

import logging

from telephony_adapters.sipline.agent_core import ALLOW, AgentCore
from telephony_adapters.sipline.digest import Challenge, choose_challenge
from telephony_adapters.sipline.effects import Effect
from telephony_adapters.sipline.message import (
    Headers,
    Request,
    Response,
    SipSyntaxError,
    Uri,
    is_number,
    parse_address,
)
from telephony_adapters.sipline.transaction import ClientTransaction

log = logging.getLogger(__name__)

RETRY_SILENT_S = 30.0
"""After a REGISTER nobody answered, try again this much later."""
RETRY_REFUSED_S = 60.0
"""After a REGISTER refused, try again this much later."""


class Registration:
    """The REGISTER side of the user agent (timer ``register``)."""

    def __init__(self, core: AgentCore) -> None:
        self.core = core
        self.registered = False
        self.expires_at: float | None = None
        self._call_id = f"{core.token(8)}@{core.host}"
        self._tag = core.token(4)
        self._cseq = 0
        self._nonces: set[str] = set()
        self._expires = core.settings.register_expires_s
        self._withdrawing = False

    def start(self, now: float) -> list[Effect]:
        return self.register(now) if self.core.settings.registrar else []

    def stop(self, now: float) -> list[Effect]:
        """Withdraw the registration (REGISTER with ``expires=0``) and refresh no more."""
        out: list[Effect] = []
        if self.registered:
            self._withdrawing = True
            out = self.register(now, expires=0)
        self.core.cancel_timer("register")
        return out

    def register(
        self, now: float, *, expires: int | None = None, challenge: Challenge | None = None
    ) -> list[Effect]:
        core = self.core
        registrar = core.uri_of(core.settings.registrar)
        if challenge is None:
            self._nonces.clear()  # a new attempt: each challenge may be answered again
        expires = self._expires if expires is None else expires
        self._cseq += 1
        aor = f"<sip:{core.user}@{core.domain}>"
        h = Headers()
        h.add("Via", core.via())
        h.add("Max-Forwards", "70")
        h.add("From", f"{aor};tag={self._tag}")
        h.add("To", aor)
        h.add("Call-ID", self._call_id)
        h.add("CSeq", f"{self._cseq} REGISTER")
        h.add("Contact", f"{core.contact()};expires={expires}")
        h.add("Expires", str(expires))
        h.add("Allow", ALLOW)
        h.add("User-Agent", core.settings.user_agent)
        uri = str(Uri(registrar.scheme, "", registrar.host, registrar.port))
        request = Request(headers=h, method="REGISTER", uri=uri)
        if challenge is not None:
            h.add(*core.credentials(request, challenge))
        _, out = core.send(request, core.proxy or registrar.host_port, now)
        return out

    def on_response(self, txn: ClientTransaction, response: Response, now: float) -> list[Effect]:
        status = response.status
        if status < 200:
            return []
        asked = int((txn.request.headers.get("Expires") or "0").strip() or 0)
        if 200 <= status < 300:
            self._registered(asked, response, now)
            return []
        if status in (401, 407):
            challenge = choose_challenge(response)
            if challenge is not None and self.core.may_answer(challenge, self._nonces):
                return self.register(now, expires=asked, challenge=challenge)
        if status == 423:
            minimum = (response.headers.get("Min-Expires") or "").strip()
            if is_number(minimum) and int(minimum) > asked:
                self._expires = int(minimum)
                return self.register(now)
        self.core.warn(
            now, "line %s: registration refused: %d %s", self.core.line, status, response.reason
        )
        self.registered = False
        if asked:
            self.core.at(now + RETRY_REFUSED_S, "register")
        return []

    def _registered(self, asked: int, response: Response, now: float) -> None:
        """A 2xx: registered for as long as the registrar granted (or withdrawn)."""
        if asked == 0:
            self.registered = False
            self.expires_at = None
            return
        granted = max(self._granted(asked, response), 1)
        self.registered = True
        self._nonces.clear()
        self.expires_at = now + granted
        self.core.at(now + max(granted - 30, granted / 2), "register")
        log.info(
            "line %s: registered at %s for %d s",
            self.core.line,
            self.core.settings.registrar,
            granted,
        )

    def _granted(self, asked: int, response: Response) -> int:
        """Seconds the registrar granted: our Contact's ``expires``, else the Expires
        header (when no Contact has one), else what we asked."""
        granted = asked
        for contact in response.headers.values("Contact"):
            try:
                address = parse_address(contact)
            except SipSyntaxError:
                continue
            value = address.params.get("expires") or ""
            if address.uri.user == self.core.user and is_number(value):
                granted = int(value)
        header = (response.headers.get("Expires") or "").strip()
        if is_number(header) and not any(
            "expires=" in c for c in response.headers.values("Contact")
        ):
            granted = int(header)
        return granted

    def on_timeout(self, now: float) -> list[Effect]:
        core = self.core
        core.warn(now, "line %s: registrar %s does not answer", core.line, core.settings.registrar)
        self.registered = False
        if not self._withdrawing:
            core.at(now + RETRY_SILENT_S, "register")
        return []
