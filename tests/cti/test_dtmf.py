"""DTMF from a line reaches the agent on the call (engine service, virtual time).

A line yields :class:`~cti.protocol.DtmfReceived` while a call is connected; the engine
publishes it, unchanged, on the events topic of the agent talking on that call, in
order with the agent's other events. A key on a call no agent is on (queued, offered,
over, unknown) is ignored without error, and the engine carries on.
"""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from cti import topics
from cti.errors import ProtocolError
from cti.protocol import (
    AcceptOffer,
    CallConnected,
    CallEnded,
    CallOffered,
    CompleteWrapUp,
    DtmfReceived,
    HangUp,
    Login,
    SetReady,
    decode,
    encode,
)
from tests.cti.test_service import Agent, Center, center, drain, ready
from tests.harness import virtual


async def connect(c: Center, agent: Agent, ani: str = "13812345678") -> str:
    """Ring a call, have ``agent`` accept it; returns the call id once connected."""
    call_id = c.trunk.ring(ani)
    offer = await agent.expect(CallOffered)
    assert offer.pop.call_id == call_id
    await agent.send(AcceptOffer(agent_id=agent.agent_id, call_id=call_id))
    await agent.expect(CallConnected)
    return call_id


def test_keys_on_a_connected_call_reach_its_agent_in_order() -> None:
    async def body() -> None:
        async with center(["1001"]) as c:
            a = c.agents["1001"]
            await ready(a)
            call_id = await connect(c, a)
            keys = [DtmfReceived(call_id=call_id, key=k, line="sim") for k in "4*2#"]
            for key in keys:
                await c.service.handle_line_event(key)
            got = [await a.expect(DtmfReceived) for _ in keys]
            assert got == keys

    virtual(body)


def test_only_the_agent_on_that_call_hears_its_keys() -> None:
    async def body() -> None:
        async with center(["1001", "1002"]) as c:
            first, second = c.agents["1001"], c.agents["1002"]
            await ready(first)
            call_1 = await connect(c, first)
            await ready(second)
            call_2 = await connect(c, second, "13912345678")
            await c.service.handle_line_event(DtmfReceived(call_id=call_2, key="9", line="sim"))
            await c.service.handle_line_event(DtmfReceived(call_id=call_1, key="1", line="sim"))
            # One bus, in order: had the first key gone to the first agent, it would come
            # before the second.
            assert await first.expect(DtmfReceived) == DtmfReceived(
                call_id=call_1, key="1", line="sim"
            )
            assert await second.expect(DtmfReceived) == DtmfReceived(
                call_id=call_2, key="9", line="sim"
            )
            assert not any(isinstance(m, DtmfReceived) for m in drain(first) + drain(second))

    virtual(body)


def test_keys_on_calls_without_an_agent_are_ignored_and_the_engine_goes_on() -> None:
    async def body() -> None:
        async with center(["1001"]) as c:
            a = c.agents["1001"]
            published: asyncio.Queue[DtmfReceived] = asyncio.Queue()
            async with c.bus.subscribe("cti/v1/#") as everything:

                async def collect() -> None:
                    async for _topic, message in everything:
                        if isinstance(message, DtmfReceived):
                            published.put_nowait(message)

                collector = asyncio.create_task(collect())
                try:
                    queued = c.trunk.ring("13812345678")  # nobody logged in: it waits
                    for call_id in (queued, "no-such-call", ""):
                        await c.service.handle_line_event(
                            DtmfReceived(call_id=call_id, key="5", line="sim")
                        )
                    await a.send(Login(agent_id="1001"))
                    await a.send(SetReady(agent_id="1001"))
                    await a.expect(CallOffered)  # offered, not yet accepted
                    await c.service.handle_line_event(DtmfReceived(call_id=queued, key="6"))
                    await a.send(AcceptOffer(agent_id="1001", call_id=queued))
                    await a.expect(CallConnected)
                    await a.send(HangUp(agent_id="1001", call_id=queued))
                    await a.expect(CallEnded)  # in wrap-up: the caller is gone
                    await c.service.handle_line_event(DtmfReceived(call_id=queued, key="7"))
                    done = await a.do(
                        CompleteWrapUp(agent_id="1001", call_id=queued, disposition="resolved")
                    )
                    assert done.ok
                    await a.send(SetReady(agent_id="1001"))
                    talking = await connect(c, a, "13912345678")  # the engine goes on
                    heard = DtmfReceived(call_id=talking, key="8", line="sim")
                    await c.service.handle_line_event(heard)
                    # One bus, in order: any key published before would come first.
                    assert await asyncio.wait_for(published.get(), 60) == heard
                finally:
                    collector.cancel()
                    await asyncio.gather(collector, return_exceptions=True)
            assert published.empty()

    virtual(body)


def test_a_key_is_checked_on_the_wire() -> None:
    key = DtmfReceived(call_id="sip-1", key="#", line="trunk")
    assert decode(encode(key), where=topics.agent_events("1001")) == key
    for bad in ("x", "55", "", "flash", "a"):
        with pytest.raises(ValidationError):
            DtmfReceived(call_id="sip-1", key=bad)
    with pytest.raises(ProtocolError, match="key"):
        decode(b'{"type": "dtmf_received", "call_id": "sip-1", "key": "<b>1</b>"}', where="t")
