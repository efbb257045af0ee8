"""Call ids never repeat across restarts: a restarted engine's new calls are routed.

Before, the SIP user agent and the simulator trunk counted ``line-1``, ``line-2``...
afresh in every process; while the journal still held the old ids, the router refused
the new calls ("already known to the router") and they rang unanswered, unrecorded.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cti.protocol import AcceptOffer, CallArrived, HangUp, Login, SetReady
from cti.store.database import Store
from cti.store.journal import Journal, journal_path_for
from telephony_adapters.sim import SimTrunk
from telephony_adapters.sipline.useragent import UserAgent
from tests.cti.test_journal import engine
from tests.harness import until, virtual
from tests.telephony_adapters.sipline.peer import PEER, invite, make_ua, of_type

pytestmark = pytest.mark.recovery


def _inbound_id(ua: UserAgent) -> str:
    [arrived] = of_type(ua.receive(invite(), PEER, 0.0), CallArrived)
    return arrived.call_id


def test_two_user_agents_of_one_line_never_give_the_same_id() -> None:
    before, after = make_ua(), make_ua()  # the same line before and after a restart
    first = [_inbound_id(before), before.next_call_id()]
    second = [_inbound_id(after), after.next_call_id()]
    assert len(set(first + second)) == 4
    assert all(call_id.startswith("sip-") for call_id in first + second)


async def test_two_simulator_trunks_of_one_name_never_give_the_same_id() -> None:
    before, after = SimTrunk("trunk"), SimTrunk("trunk")
    ids = [before.ring("1"), await before.dial("2"), after.ring("1"), await after.dial("2")]
    assert len(set(ids)) == 4


def test_a_restarted_engine_routes_new_calls_while_its_journal_holds_old_ids(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        store = await Store.open(tmp_path / "cti.db")
        journal = Journal.open(journal_path_for(tmp_path / "cti.db"))
        try:
            first_trunk = SimTrunk()  # no ledger: this trunk's calls die with the process
            async with engine(journal, first_trunk, store, ["1001"]) as first:
                hand = first.hand("1001")
                await hand.send(Login(agent_id="1001"), SetReady(agent_id="1001"))
                old = first_trunk.ring("13800000001")
                await asyncio.sleep(1)
                await hand.send(AcceptOffer(agent_id="1001", call_id=old))
                await hand.send(HangUp(agent_id="1001", call_id=old))  # now in wrap-up
                waiting = first_trunk.ring("13800000002")
                await asyncio.sleep(1)
            old_ids = {old, waiting}
            assert journal.has_uncut_rows  # the center was not empty: nothing cut

            second_trunk = SimTrunk()  # the same line in a new process
            async with engine(journal, second_trunk, store, ["1001"]) as second:
                service = second.service
                assert set(service.router.active_call_ids()) == {old}  # the waiting one
                # caller went with the old process; the wrap-up goes on.
                new = [second_trunk.ring(f"1390000000{n}") for n in range(3)]
                await until(lambda: len(service.router.waiting_in_order("general")) == 3)
                assert not old_ids & set(new)
                # Every new call is the router's (none refused as already known), and the
                # first is offered to the agent as soon as the wrap-up ends.
                assert service.router.waiting_in_order("general") == new
                await asyncio.sleep(61)
                assert service.router.agent("1001").call_id == new[0]
        finally:
            journal.close()
            await store.close()

    virtual(body)
