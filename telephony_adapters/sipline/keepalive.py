"""Keep-alive: OPTIONS sent to the registrar or proxy every ``keepalive_s`` (timer
``keepalive``), and OPTIONS from peers answered with what we support."""

from __future__ import annotations

from telephony_adapters.sipline.agent_core import ALLOW, SUPPORTED, AgentCore
from telephony_adapters.sipline.effects import Effect
from telephony_adapters.sipline.message import Headers, Request, Uri
from telephony_adapters.sipline.transaction import Addr, ClientTransaction, ServerTransaction


class KeepAlive:
    def __init__(self, core: AgentCore) -> None:
        self.core = core
        self.peer_alive: bool | None = None
        """Whether the registrar or proxy answered the last keep-alive (None: unknown)."""

    def start(self, now: float) -> None:
        s = self.core.settings
        if s.keepalive_s > 0 and (s.registrar or s.outbound_proxy):
            self.core.at(now + s.keepalive_s, "keepalive")

    def stop(self) -> None:
        self.core.cancel_timer("keepalive")

    def ping(self, now: float) -> list[Effect]:
        core = self.core
        core.at(now + core.settings.keepalive_s, "keepalive")
        uri = core.uri_of(core.settings.outbound_proxy or core.settings.registrar)
        return send_options(core, Uri(uri.scheme, "", uri.host, uri.port), uri.host_port, now)

    def on_response(self) -> list[Effect]:
        self.peer_alive = True
        return []

    def on_timeout(self, txn: ClientTransaction, now: float) -> list[Effect]:
        if self.peer_alive is not False:
            self.core.warn(
                now, "line %s: keep-alive OPTIONS to %s:%d unanswered", self.core.line, *txn.peer
            )
        self.peer_alive = False
        return []

    def answer(self, request: Request, txn: ServerTransaction, now: float) -> list[Effect]:
        """A peer's OPTIONS: 200 with what we allow, accept and support."""
        capabilities = [
            ("Allow", ALLOW),
            ("Accept", "application/sdp"),
            ("Supported", SUPPORTED),
            ("Contact", self.core.contact()),
        ]
        return self.core.reply(txn, request, 200, now, extra=capabilities)


def send_options(
    core: AgentCore, target: Uri, dest: Addr, now: float, *, context: object = None
) -> list[Effect]:
    """An OPTIONS ping to ``target`` at ``dest`` (its transaction's ``context``: who
    asked, for the response or time-out)."""
    h = Headers()
    h.add("Via", core.via())
    h.add("Max-Forwards", "70")
    h.add("From", f"{core.local_uri()};tag={core.token(4)}")
    h.add("To", f"<{target}>")
    h.add("Call-ID", f"{core.token(8)}@{core.host}")
    h.add("CSeq", "1 OPTIONS")
    h.add("Accept", "application/sdp")
    h.add("User-Agent", core.settings.user_agent)
    request = Request(headers=h, method="OPTIONS", uri=str(target))
    _, out = core.send(request, dest, now, context=context)
    return out
