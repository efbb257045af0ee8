"""The line as registrar for its agents' phones, sans-I/O.

A phone registers ``sip:<agent>@<line host>`` with digest credentials (:mod:`.phone_auth`:
401 with a challenge per algorithm, SHA-256 then MD5, qop=auth; ``stale=true`` for an
expired nonce of ours; 403 for a wrong password *and* for an unknown user, so the answer
never tells which). An authenticated REGISTER adds, refreshes or removes its bindings
(``expires`` of each Contact, else the Expires header, else the default; under the
minimum: 423 with Min-Expires; over the maximum: cut to it; ``Contact: *`` with
``Expires: 0`` removes them all); with no Contact it is a query. The 200 lists the
agent's bindings. At most ``max_contacts`` per agent: a new one replaces the oldest.

An agent's phone is *reachable* while it has a binding that has not expired and has not
stopped answering OPTIONS (``qualify_s``), or a fixed ``sip:`` URI that has not stopped
answering them. Each change is reported as :class:`~.effects.PhoneReachability`.
Timers (the user agent's): ``phone-expiry`` per agent at its next binding's expiry,
``phone-qualify`` every ``qualify_s``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from telephony_adapters.sipline.agent_core import AgentCore
from telephony_adapters.sipline.effects import Effect, PhoneReachability
from telephony_adapters.sipline.keepalive import send_options
from telephony_adapters.sipline.message import (
    Request,
    Response,
    SipSyntaxError,
    Uri,
    is_number,
    parse_address,
    parse_uri,
)
from telephony_adapters.sipline.phone_auth import (
    NonceMint,
    PhoneSettings,
    challenges,
    check_credentials,
    parse_credentials,
)
from telephony_adapters.sipline.transaction import Addr, ServerTransaction

log = logging.getLogger(__name__)

MAX_CONTACT_LENGTH = 512
"""A Contact value longer than this makes the REGISTER a 400."""
MAX_CONTACTS_PER_REQUEST = 16


@dataclass(slots=True, eq=False)
class Binding:
    """Where an agent's phone takes calls: a registered Contact or a fixed URI."""

    agent_id: str
    uri: Uri
    dest: Addr
    """Where requests to it go: the Contact's address, or where its REGISTER came from
    when the Contact names another host (the phone is behind a NAT)."""
    expires_at: float
    registered_at: float
    call_id: str = ""
    cseq: int = 0
    alive: bool = True
    """Answered its last OPTIONS (or was not asked yet)."""
    pinging: bool = False


@dataclass(frozen=True, slots=True)
class Ping:
    """The context of a qualify OPTIONS: whose phone it asks."""

    binding: Binding


class Registrar:
    """See the module docstring."""

    def __init__(self, core: AgentCore, settings: PhoneSettings) -> None:
        self.core = core
        self.settings = settings
        self.nonces = NonceMint(settings.nonce_ttl_s)
        self.bindings: dict[str, list[Binding]] = {}
        self.fixed: dict[str, Binding] = {}
        for agent, text in settings.phones.items():
            uri = parse_uri(text)
            self.fixed[agent] = Binding(agent, uri, uri.host_port, math.inf, 0.0)
        self._reported: dict[str, bool] = {}

    # --- what the user agent and the engine read ------------------------------------

    def live(self, agent_id: str, now: float) -> list[Binding]:
        """The agent's usable bindings, the newest registration first, a fixed URI last."""
        regs = [b for b in self.bindings.get(agent_id, ()) if b.expires_at > now and b.alive]
        regs.sort(key=lambda b: b.registered_at, reverse=True)
        fixed = self.fixed.get(agent_id)
        return regs + ([fixed] if fixed is not None and fixed.alive else [])

    def reachable(self, agent_id: str, now: float) -> bool:
        return bool(self.live(agent_id, now))

    def target(self, agent_id: str, now: float) -> Binding | None:
        """Where a call to the agent goes now (None: unreachable)."""
        live = self.live(agent_id, now)
        return live[0] if live else None

    def start(self, now: float) -> list[Effect]:
        """Report the fixed phones as reachable, and start qualifying."""
        if self.settings.qualify_s > 0:
            self.core.at(now + self.settings.qualify_s, "phone-qualify")
        out: list[Effect] = []
        for agent in self.fixed:
            out += self._report(agent, now)
        return out

    def stop(self) -> None:
        self.core.cancel_timer("phone-qualify")
        for agent in self.bindings:
            self.core.cancel_timer("phone-expiry", agent)

    # --- REGISTER --------------------------------------------------------------------

    def on_register(self, request: Request, txn: ServerTransaction, now: float) -> list[Effect]:
        core = self.core
        aor = request.to.uri
        if aor.scheme not in ("sip", "sips") or not aor.user or len(aor.user) > 64:
            return core.reply(txn, request, 404, now)
        header = request.headers.get("Authorization")
        if header is None:
            return self._challenge(request, txn, now, stale=False)
        try:
            creds = parse_credentials(header)
        except SipSyntaxError as exc:
            return self._refuse(request, txn, now, str(exc))
        freshness = self.nonces.check(creds.nonce, now)
        if freshness != "ok":
            return self._challenge(request, txn, now, stale=freshness == "stale")
        right, why = check_credentials(creds, self.settings, request.method)
        if right and creds.username != aor.user:
            right, why = False, f"user {creds.username[:64]!r} registering {aor.user[:64]!r}"
        if not right:
            return self._refuse(request, txn, now, why)
        return self._update(aor.user, request, txn, now)

    def _challenge(
        self, request: Request, txn: ServerTransaction, now: float, *, stale: bool
    ) -> list[Effect]:
        nonce = self.nonces.make(now)
        s = self.settings
        extra = challenges(s.realm, nonce, stale=stale, algorithms=s.algorithms)
        return self.core.reply(txn, request, 401, now, extra=extra)

    def _refuse(
        self, request: Request, txn: ServerTransaction, now: float, why: str
    ) -> list[Effect]:
        """403, the same whatever was wrong; the reason goes to the (rate-limited) log."""
        self.core.refused(
            now, f"REGISTER of {request.to.uri.user[:64]!r}", txn.peer, f"refused: {why}"
        )
        return self.core.reply(txn, request, 403, now)

    def _update(
        self, agent: str, request: Request, txn: ServerTransaction, now: float
    ) -> list[Effect]:
        """An authenticated REGISTER: 423 for too brief an interval, else the bindings
        changed as asked and a 200 listing them."""
        core = self.core
        wanted = self._wanted(request)
        s = self.settings
        if any(0 < expires < s.min_expires_s for _, expires in wanted):
            return core.reply(txn, request, 423, now, extra=[("Min-Expires", str(s.min_expires_s))])
        if wanted and wanted[0][0] is None:  # Contact: *
            self.bindings.pop(agent, None)
        for uri, expires in wanted:
            if uri is not None:
                self._bind(agent, uri, expires, request, txn.peer, now)
        self._schedule_expiry(agent)
        contacts = [
            ("Contact", f"<{b.uri}>;expires={max(int(b.expires_at - now), 0)}")
            for b in self.bindings.get(agent, ())
        ]
        out = core.reply(txn, request, 200, now, extra=contacts)
        return out + self._report(agent, now)

    def _wanted(self, request: Request) -> list[tuple[Uri | None, int]]:
        """(contact URI or None for ``*``, seconds) for each Contact; SipSyntaxError (a
        400) for a malformed one."""
        s = self.settings
        header = (request.headers.get("Expires") or "").strip()
        if header and not is_number(header):
            raise SipSyntaxError(f"bad Expires {header[:20]!r}")
        default = int(header) if header else s.default_expires_s
        values = request.headers.values("Contact")
        if len(values) > MAX_CONTACTS_PER_REQUEST:
            raise SipSyntaxError(f"{len(values)} Contacts in one REGISTER")
        if any(v.strip() == "*" for v in values):
            if len(values) != 1 or default != 0:
                raise SipSyntaxError("Contact: * needs Expires: 0 and no other Contact")
            return [(None, 0)]
        wanted: list[tuple[Uri | None, int]] = []
        for value in values:
            if len(value) > MAX_CONTACT_LENGTH:
                raise SipSyntaxError(f"Contact of {len(value)} characters")
            address = parse_address(value)
            if address.uri.scheme not in ("sip", "sips"):
                raise SipSyntaxError(f"Contact {str(address.uri)[:60]!r} is not a sip: URI")
            param = (address.params.get("expires") or "").strip()
            if param and not is_number(param):
                raise SipSyntaxError(f"bad expires {param[:20]!r} in Contact")
            expires = int(param) if param else default
            wanted.append((address.uri, min(expires, s.max_expires_s)))
        return wanted

    def _bind(
        self, agent: str, uri: Uri, expires: int, request: Request, source: Addr, now: float
    ) -> None:
        bindings = self.bindings.setdefault(agent, [])
        key = str(uri)
        old = next((b for b in bindings if str(b.uri) == key), None)
        cseq = request.cseq[0]
        if old is not None:
            if old.call_id == request.call_id and old.cseq >= cseq:
                return  # an older REGISTER that arrived late (RFC 3261 §10.3 step 7)
            bindings.remove(old)
        if expires == 0:
            return
        # The Contact's address when it is the source's host; else the source (a NAT).
        dest = uri.host_port if uri.host_port[0] == source[0] else source
        bindings.append(Binding(agent, uri, dest, now + expires, now, request.call_id, cseq))
        while len(bindings) > self.settings.max_contacts:
            bindings.remove(min(bindings, key=lambda b: b.registered_at))

    # --- time --------------------------------------------------------------------------

    def _schedule_expiry(self, agent: str) -> None:
        bindings = self.bindings.get(agent)
        if bindings:
            self.core.at(min(b.expires_at for b in bindings), "phone-expiry", agent)
        else:
            self.bindings.pop(agent, None)
            self.core.cancel_timer("phone-expiry", agent)

    def fire(self, kind: str, key: str, now: float) -> list[Effect]:
        """Timer ``phone-expiry`` (of agent ``key``) or ``phone-qualify``."""
        if kind == "phone-expiry":
            kept = [b for b in self.bindings.get(key, ()) if b.expires_at > now]
            self.bindings[key] = kept
            self._schedule_expiry(key)
            return self._report(key, now)
        if kind == "phone-qualify":
            return self._qualify(now)
        return []

    def _qualify(self, now: float) -> list[Effect]:
        self.core.at(now + self.settings.qualify_s, "phone-qualify")
        out: list[Effect] = []
        every = [*self.fixed.values()] + [b for bs in self.bindings.values() for b in bs]
        for binding in every:
            if binding.pinging:
                continue
            binding.pinging = True
            target = Uri(binding.uri.scheme, binding.uri.user, binding.uri.host, binding.uri.port)
            out += send_options(self.core, target, binding.dest, now, context=Ping(binding))
        return out

    def on_ping_response(self, ping: Ping, response: Response, now: float) -> list[Effect]:
        """Any final response (even a 404) shows the phone is there."""
        if response.status < 200:
            return []
        ping.binding.pinging = False
        ping.binding.alive = True
        return self._report(ping.binding.agent_id, now)

    def on_ping_timeout(self, ping: Ping, now: float) -> list[Effect]:
        binding = ping.binding
        binding.pinging = False
        if binding.alive:
            self.core.warn(
                now,
                "line %s: phone of agent %s at %s does not answer OPTIONS",
                self.core.line,
                binding.agent_id,
                binding.uri,
            )
        binding.alive = False
        return self._report(binding.agent_id, now)

    def _report(self, agent: str, now: float) -> list[Effect]:
        """A :class:`PhoneReachability` if the agent's reachability changed."""
        target = self.target(agent, now)
        reachable = target is not None
        if self._reported.get(agent, False) == reachable:
            return []
        self._reported[agent] = reachable
        log.info(
            "line %s: phone of agent %s %s",
            self.core.line,
            agent,
            f"reachable at {target.uri}" if target is not None else "unreachable",
        )
        return [PhoneReachability(agent, reachable, str(target.uri) if target else "")]
