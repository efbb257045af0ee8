"""A caller who asks not to be called again (a script's add_to_dnc) is on the global
do-not-call list the dialer reads once the call is wrapped up: the number the call came
from and every number of the customer on file; the customer's history says so. A
request with no number to add is closed, and says why."""

from __future__ import annotations

from pathlib import Path

from cti.bus.memory import InMemoryBus
from cti.engine.do_not_call import ADDED, NOT_ADDED, DoNotCall
from cti.models import Customer, Interaction, OutboxItem, PhoneNumber, ScriptAction, ScriptRun
from cti.store.campaigns import CampaignStore
from cti.store.database import Store
from telephony_adapters.sim import SimTrunk
from tests.cti.scripted_call import wrapped_up_call
from tests.harness import center_config, engine_center, until_async

LI = Customer(
    id=9,
    name="李雷",
    phones=(
        PhoneNumber(raw="13812345678", e164="+8613812345678"),
        PhoneNumber(raw="010 6512 3456", e164="+861065123456"),
    ),
)


async def test_the_engine_puts_a_caller_who_asked_on_do_not_call(tmp_path: Path) -> None:
    bus, trunk = InMemoryBus(), SimTrunk()
    async with engine_center(tmp_path / "cti.db", config=center_config(), customers=[LI],
                             lines=[trunk], bus=bus) as c:  # fmt: skip
        dnc = ScriptAction(node="dnc", action="add_to_dnc")
        call_id = await wrapped_up_call(bus, trunk, "138-1234-5678", LI, [dnc],
                                        disposition="do_not_call")  # fmt: skip
        store = c.store

        async def said() -> list[Interaction]:  # with the numbers, in one transaction
            history = await store.recent_interactions(9)
            return [i for i in history if i.disposition == ADDED]

        [entry] = await until_async(said, what="the request on the customer's history")
        assert await CampaignStore(store).do_not_call(None) == {"+8613812345678", "+861065123456"}
        assert entry.call_id == call_id
        assert "+8613812345678" in entry.note
        assert await store.script_runs.dnc_pending() == []


async def test_a_request_with_no_number_is_closed_and_says_why(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "cti.db")
    try:
        await store.add_customers([Customer(id=3, name="No Phone")])
        run = ScriptRun(call_id="c1", agent_id="1001", customer_id=3, script="s",
                        version="1", recorded_wall=1.0)  # fmt: skip
        request = OutboxItem(call_id="c1", customer_id=3, action="add_to_dnc",
                             created_wall=1.0)  # fmt: skip
        await store.script_runs.record(run, [request])
        assert await DoNotCall(store).carry_out(2.0) == 1
        assert await CampaignStore(store).do_not_call(None) == set()
        [entry] = [i for i in await store.recent_interactions(3) if i.disposition == NOT_ADDED]
        assert "no number to add" in entry.note
        assert await store.script_runs.dnc_pending() == []
        assert await DoNotCall(store).carry_out(3.0) == 0  # closed: not tried again
    finally:
        await store.close()
