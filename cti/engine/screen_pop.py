"""The screen-pop: who is calling (the customer look-up on arrival) and the card an
agent is offered with the call, cut to fit one bus message (:mod:`cti.engine.card_budget`).

:class:`ScreenPops` keeps, per agent, the offer ringing (``offers``) and the card of the
call in hand (``current``, sent again as :class:`~cti.protocol.CurrentCall` on a
snapshot), and which calls carry a script of their own (a campaign's)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from cti import log_limits
from cti.config import Config
from cti.customers.base import CustomerCard
from cti.engine.built import built, event_line
from cti.engine.card_budget import fit_card, fit_card_encoded
from cti.engine.directory import CustomerCards, CustomerDirectory
from cti.engine.line_book import LineBook
from cti.errors import StoreError
from cti.events import VoiceMessage
from cti.fields import clean_text
from cti.models import CALLER_NAME_MAX_CHARS, CallerInfo, CallerKind, Customer
from cti.phone import classify
from cti.protocol import CallOffered, CallScript, CustomerDetails, ScreenPop, encode
from cti.scoring import score
from queue_engine.priority import explain
from queue_engine.router import Router
from scripts_engine.catalog import LoadedScript, ScriptCatalog

log = logging.getLogger(__name__)


async def identify(
    directory: CustomerDirectory, ani: str, config: Config, caller_name: str = ""
) -> CallerInfo:
    """Classify the number the line gave and look the customer up (one indexed query).

    Every customer holding the number comes back in ``matches``, most valuable first;
    the first sets the call's priority (a family phone: the agent chooses on the
    screen-pop). With a directory that gives cards, the pop also gets the open
    service items and the value explanation. ``caller_name``: the caller-id name the
    line gave, kept (cleaned, cut) for the card of a caller no customer matches.
    """
    caller = await _look_up(directory, ani, config)
    name = clean_text(caller_name.strip(), max_length=CALLER_NAME_MAX_CHARS) if caller_name else ""
    return caller.model_copy(update={"caller_name": name}) if name else caller


#: Scripts whose offered form is kept (:meth:`ScreenPops.call_script`): queues' and
#: campaigns' scripts, a few; a bound all the same.
SCRIPTS_KEPT = 256
#: Caller numbers whose classification is kept (:func:`classify_caller`).
CALLER_NUMBERS_KEPT = 4096


@functools.lru_cache(maxsize=CALLER_NUMBERS_KEPT)
def classify_caller(ani: str, region: str) -> tuple[CallerKind, str | None]:
    """:func:`cti.phone.classify`, kept for the numbers that call again: a number that
    is not plain national digits is parsed (phonenumbers, ~26 us warm, ~150 us at 50
    calls/s on the path to the offer), and it depends on nothing but the number and
    the region (issue 23)."""
    return classify(ani, region)


async def _look_up(directory: CustomerDirectory, ani: str, config: Config) -> CallerInfo:
    kind, e164 = classify_caller(ani, config.engine.default_region)
    if e164 is None:
        return _no_customer(ani, None, kind)
    try:
        matches = sorted(await directory.find_by_number(e164), key=lambda c: (-c.value, c.id))
        if not matches:
            return _no_customer(ani, e164, CallerKind.UNKNOWN)
        customer = matches[0]
        if isinstance(directory, CustomerCards):
            card = await directory.customer_card(customer.id)
        else:
            card = CustomerCard(history=await directory.recent_interactions(customer.id))
    except StoreError as exc:
        # The call matters more than the card: route it as an unknown caller.
        log_limits.error(log, "customer lookup for %s failed, routing as unknown: %s",
                         e164, exc)  # fmt: skip
        return _no_customer(ani, e164, CallerKind.UNKNOWN)
    inputs = card.value_inputs
    return CallerInfo(
        ani=ani,
        e164=e164,
        kind=CallerKind.KNOWN,
        customer=customer,
        history=card.history,
        matches=tuple(matches),
        service_items=card.service_items,
        value_explanation=None if inputs is None else score(inputs, config.customers),
    )


def _no_customer(ani: str, e164: str | None, kind: CallerKind) -> CallerInfo:
    """A caller no customer matches (every new caller), made as validation makes it
    (:mod:`cti.engine.built`: ~2 us warm a call, issue 23)."""
    return built(CallerInfo, {
        "ani": ani, "e164": e164, "kind": kind, "customer": None, "history": (),
        "matches": (), "service_items": (), "value_explanation": None, "caller_name": "",
    })  # fmt: skip


def customers_on(pop: ScreenPop) -> list[int]:
    """The ids of the customers a card shows (its caller and every match), once each."""
    ids = [c.id for c in (pop.customer, *pop.matches) if c is not None]
    return list(dict.fromkeys(ids))


class ScreenPops:
    """The cards offered and in hand, per agent (module docstring)."""

    def __init__(
        self,
        router: Router,
        config: Callable[[], Config],
        scripts: ScriptCatalog,
        lines: LineBook,
        agent_names: dict[str, str],
        *,
        messages: Callable[[str], VoiceMessage | None] = lambda call_id: None,
    ) -> None:
        self._router = router
        self._messages = messages
        """Call -> the voicemail it returns (a callback for a message left), for its card."""
        self._config = config
        self._scripts = scripts
        self._lines = lines
        self.agent_names = agent_names
        """Agent id -> display name, sent with each offer."""
        self.offers: dict[str, CallOffered] = {}
        """Agent -> the offer ringing on its desk."""
        self.current: dict[str, CallOffered] = {}
        """Agent -> the offer of the call it is on (talking or wrap-up): its card, sent
        again as :class:`CurrentCall` when the console asks for a snapshot."""
        self.call_scripts: dict[str, str] = {}
        """Call -> the script its offer carries instead of its queue's (a campaign's)."""
        self._sent_scripts: dict[str, tuple[LoadedScript, CallScript]] = {}
        """Script reference -> the script loaded and what offers send of it, made again
        only when the catalog reads the file again (issue 23: not every offer)."""

    def offer(
        self, call_id: str, agent_id: str, queue: str, deadline: float, now: float, wall: float
    ) -> CallOffered:
        """The offer of ``call_id`` to ``agent_id`` with its card, ringing until ``deadline``."""
        return self.offer_encoded(call_id, agent_id, queue, deadline, now, wall)[0]

    def offer_encoded(
        self,
        call_id: str,
        agent_id: str,
        queue: str,
        deadline: float,
        now: float,
        wall: float,
        consult_from: str = "",
    ) -> tuple[CallOffered, bytes]:
        """:meth:`offer` (from ``consult_from``'s consultation, if named) and its bytes on
        the bus (:func:`~cti.protocol.encode`), made once for its size and to send."""
        offer, payload = fit_card_encoded(self._made(call_id, agent_id, queue, deadline, now, wall))
        if consult_from:  # room was kept for it (card_budget.ENVELOPE_BYTES)
            offer = offer.model_copy(update={"consult_from": consult_from})
            payload = encode(offer)
        return offer, payload

    def _made(
        self, call_id: str, agent_id: str, queue: str, deadline: float, now: float, wall: float
    ) -> CallOffered:
        """The offer as built, its card not yet fitted to one message (the bus would drop
        one over its limit: :meth:`offer_encoded` cuts it)."""
        caller = self._router.call_caller(call_id)
        waited = now - self._router.call_arrived_at(call_id)
        # The caller's lookup, the router's and the configuration's values, validated
        # once already: made as they are (cti.engine.built; ~5 us warm an offer).
        pop = built(ScreenPop, {
            "call_id": call_id,
            "queue": queue,
            "ani": caller.ani,
            "e164": caller.e164,
            "caller_kind": caller.kind,
            "customer": caller.customer,
            "history": caller.history,
            "waited_s": float(waited),
            "priority_reason": explain(self._router.queue_config(queue), caller.value, waited),
            "matches": caller.matches,
            "service_items": caller.service_items,
            "value_explanation": caller.value_explanation,
            "script": self.call_script(queue, call_id),
            "line": self._lines.features(call_id),
            "history_left_out": 0,
            "items_left_out": 0,
            "matches_left_out": 0,
            "message": self._messages(call_id),
            "direction": "inbound",
            "dialled_wall": 0.0,
            "caller_name": event_line(caller.caller_name),
        })  # fmt: skip
        return built(CallOffered, {
            "type": "call_offered",
            "agent_id": agent_id,
            "pop": pop,
            "timeout_s": float(deadline - now),
            "deadline_wall": float(wall + (deadline - now)),
            "dispositions": self._config().engine.dispositions,
            "agent_name": self.agent_names.get(agent_id, ""),
            "consult_from": "",
        })  # fmt: skip

    def connected(self, agent_id: str) -> None:
        """The agent took the offer: its card becomes the call in hand."""
        offered = self.offers.pop(agent_id, None)
        if offered is not None:
            self.current[agent_id] = offered

    def call_over(self, agent_id: str, call_id: str) -> None:
        """The call's record is written: its card is no longer the agent's call in hand."""
        self.call_scripts.pop(call_id, None)
        current = self.current.get(agent_id)
        if current is not None and current.pop.call_id == call_id:
            del self.current[agent_id]

    def call_script(self, queue: str, call_id: str = "") -> CallScript | None:
        """The call's script as sent with an offer (its own, e.g. a campaign's or a manual
        dial's, else its queue's), or None (none, or it cannot be used)."""
        try:
            own = self.call_scripts.get(call_id)
            ref = self._router.queue_config(queue).script if own is None else own
            loaded = self._scripts.get(ref)
        except Exception:  # a script never stops an offer
            log_limits.exception(log, "script of call %s (queue %r) not loaded; it goes without",
                                 call_id, queue, key=queue)  # fmt: skip
            return None
        if loaded is None:
            return None
        kept = self._sent_scripts.get(ref)
        if kept is not None and kept[0] is loaded:
            return kept[1]
        sent = CallScript(
            name=loaded.name,
            version=loaded.version,
            sha256=loaded.sha256,
            file=loaded.file,
            text=loaded.text,
        )
        if len(self._sent_scripts) >= SCRIPTS_KEPT:
            self._sent_scripts.clear()
        self._sent_scripts[ref] = (loaded, sent)
        return sent

    def chosen(
        self, agent_id: str, call_id: str, customer: Customer, card: CustomerDetails
    ) -> None:
        """The agent said who the caller is: the call's card (offered or in hand) shows
        ``customer`` with ``card``'s history, items and value from now on."""
        for book in (self.offers, self.current):
            offer = book.get(agent_id)
            if offer is not None and offer.pop.call_id == call_id:
                pop = offer.pop.model_copy(
                    update={
                        "customer": customer,
                        "caller_kind": CallerKind.KNOWN,
                        "history": card.history,
                        "service_items": card.service_items,
                        "value_explanation": card.value_explanation,
                        "history_left_out": card.history_left_out,
                        "items_left_out": card.items_left_out,
                    }
                )
                book[agent_id] = fit_card(offer.model_copy(update={"pop": pop}))
