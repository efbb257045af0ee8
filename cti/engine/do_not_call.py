"""Do-not-call requests from call scripts (``add_to_dnc``), carried out from the outbox.

A caller who asks not to be called again is put on the global do-not-call list the
dialer reads (:meth:`~cti.store.campaigns.CampaignRows.do_not_call`): the number the call
came from (kept with the request when the call is wrapped up, :mod:`.script_runs`) and
every number of the customer on file. The request is marked done and the customer's
history says so ("added to do-not-call"), in one transaction. A request with no number
to add (a withheld caller, no customer) is closed as failed with the reason, on the
history too where there is a customer, and logged: the agent can add it by hand
(``cti campaign dnc``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from cti import log_limits
from cti.clock import wall_time
from cti.errors import StoreError
from cti.models import Interaction, OutboxItem
from cti.store.database import Store

log = logging.getLogger(__name__)

#: Seconds between two looks at the outbox when nothing woke the task (a request left by
#: another engine on a shared store, or one put off by a store failure).
LOOK_S = 60.0
CHANNEL = "do-not-call"
ADDED = "added to do-not-call"
NOT_ADDED = "do-not-call not added"


class DoNotCall:
    """Carries out the outbox's ``add_to_dnc`` requests (module docstring)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._rows = store.script_runs
        self._wake = asyncio.Event()

    async def serve(self) -> None:
        """Carry out what waits, then wait for a new request; until cancelled."""
        self._rows.queued.append(self._wake.set)
        try:
            while True:
                self._wake.clear()
                try:
                    await self.carry_out(wall_time())
                except StoreError as exc:
                    log_limits.warning(log, "do-not-call: %s (tried again later)", exc)
                except Exception:  # a fault here must not end the engine's task group
                    log.exception("do-not-call: the outbox's round failed (tried again later)")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), LOOK_S)
        finally:
            self._rows.queued.remove(self._wake.set)

    async def carry_out(self, wall: float) -> int:
        """Every request waiting, at ``wall``; how many were carried out."""
        pending = await self._rows.dnc_pending()
        for item in pending:
            await self._one(item, wall)
        return len(pending)

    async def _one(self, item: OutboxItem, wall: float) -> None:
        numbers = {str(item.args["number"])} if item.args.get("number") else set()
        if item.customer_id is not None:
            customer = await self._store.get_customer(item.customer_id)
            if customer is not None:
                numbers.update(p.e164 for p in customer.phones if p.e164)
        reason = f"asked on call {item.call_id}"
        if not numbers:
            reason = f"call {item.call_id}: no number to add (withheld, and no customer on file)"
            log.warning("do-not-call request %d: %s", item.id, reason)
        history = None
        if item.customer_id is not None:
            said = ADDED if numbers else NOT_ADDED
            note = ", ".join(sorted(numbers)) if numbers else reason
            entry = Interaction(at=wall, channel=CHANNEL, disposition=said, note=note,
                                call_id=item.call_id)  # fmt: skip
            history = (item.customer_id, entry)
        await self._rows.dnc_done(item.id, sorted(numbers), wall, reason, history)
