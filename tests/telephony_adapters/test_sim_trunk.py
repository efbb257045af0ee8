"""The simulator trunk keeps the adapter contract."""

from __future__ import annotations

import asyncio

import pytest

from cti.errors import TelephonyError
from cti.protocol import CallArrived, CallbackRequested, CallerHungUp
from telephony_adapters.base import LineCapabilities, TelephonyAdapter
from telephony_adapters.sim import SimCallState, SimTrunk


async def test_calls_arrive_once_and_end_once() -> None:
    trunk = SimTrunk("sim", dnis="800")
    assert isinstance(trunk, TelephonyAdapter)
    events = aiter(trunk.events())
    a = trunk.ring("13812345678", caller_name="王")
    b = trunk.ring("P")
    assert a != b
    first = await anext(events)
    assert first == CallArrived(
        call_id=a, ani="13812345678", dnis="800", line="sim", caller_name="王"
    )
    second = await anext(events)
    assert isinstance(second, CallArrived)
    assert second.call_id == b
    assert trunk.caller_hangs_up(b) is True
    assert trunk.caller_hangs_up(b) is False  # at most once
    assert await anext(events) == CallerHungUp(call_id=b, line="sim")


async def test_answer_wakes_the_caller_and_hang_up_ends_the_call() -> None:
    trunk = SimTrunk()
    call_id = trunk.ring("1")
    waiter = asyncio.create_task(trunk.wait_answered(call_id))
    await trunk.answer(call_id)
    await asyncio.wait_for(waiter, 1)
    assert trunk.state(call_id) is SimCallState.ANSWERED
    await trunk.hang_up(call_id)
    assert trunk.state(call_id) is None
    assert trunk.caller_hangs_up(call_id) is False  # our hang-up makes no CallerHungUp


async def test_waiting_for_an_answer_whenever_one_waits() -> None:
    """Issue 23: a ring makes no event to wait on; a waiter gets one. Every waiter wakes
    at the answer, a call answered already (or dialled) returns at once, and a call the
    trunk does not have raises KeyError, as before."""
    trunk = SimTrunk()
    call_id = trunk.ring("1")
    assert not trunk._answered  # nothing made for a call no one waits on
    waiters = [asyncio.create_task(trunk.wait_answered(call_id)) for _ in range(2)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)  # ringing: they wait
    await trunk.answer(call_id)
    await asyncio.wait_for(asyncio.gather(*waiters), 1)
    await asyncio.wait_for(trunk.wait_answered(call_id), 1)  # answered: at once
    dialled = await trunk.dial("+8613812345678")
    await asyncio.wait_for(trunk.wait_answered(dialled), 1)
    await trunk.hang_up(call_id)
    for gone in (call_id, "never"):
        with pytest.raises(KeyError):
            await trunk.wait_answered(gone)
    assert not trunk._answered


async def test_requests_for_calls_the_line_does_not_have_raise_telephony_error() -> None:
    trunk = SimTrunk()
    gone = trunk.ring("1")
    trunk.caller_hangs_up(gone)
    with pytest.raises(TelephonyError, match=gone):
        await trunk.answer(gone)
    with pytest.raises(TelephonyError, match="no live call"):
        await trunk.hang_up("never")
    assert trunk.request_callback(gone) is False  # only a ringing caller can ask


async def test_dial_out_keeps_the_engines_call_id_and_callers_can_ask_for_a_callback() -> None:
    trunk = SimTrunk()
    assert trunk.capabilities.can_dial is True
    assert await trunk.dial("+8613812345678", call_id="cb-1") == "cb-1"
    assert trunk.state("cb-1") is SimCallState.ANSWERED
    assert trunk.dialled == [("cb-1", "+8613812345678")]
    with pytest.raises(TelephonyError, match="already live"):
        await trunk.dial("+8613812345678", call_id="cb-1")
    events = aiter(trunk.events())
    call_id = trunk.ring("13812345678")
    await anext(events)
    assert trunk.request_callback(call_id, "13900000000") is True
    assert await anext(events) == CallbackRequested(
        call_id=call_id, number="13900000000", line="sim"
    )


async def test_hold_resume_mute_and_conference_on_a_connected_call() -> None:
    trunk = SimTrunk()
    caps = trunk.capabilities
    assert (caps.can_hold, caps.can_mute, caps.can_conference) == (True, True, True)
    call_id = trunk.ring("1")
    with pytest.raises(TelephonyError, match="ringing"):
        await trunk.hold(call_id)  # not connected yet
    await trunk.answer(call_id)
    await trunk.hold(call_id)
    assert trunk.held(call_id)
    assert not trunk.conferenced(call_id)
    await trunk.conference(call_id)
    assert trunk.conferenced(call_id)
    assert not trunk.held(call_id)
    await trunk.resume(call_id)
    assert not trunk.held(call_id)
    assert not trunk.conferenced(call_id)
    await trunk.mute(call_id, True)
    assert trunk.muted(call_id)
    await trunk.mute(call_id, False)
    assert not trunk.muted(call_id)
    await trunk.hold(call_id)
    await trunk.mute(call_id, True)
    await trunk.hang_up(call_id)
    assert not trunk.held(call_id)
    assert not trunk.muted(call_id)
    with pytest.raises(TelephonyError, match="not live"):
        await trunk.resume(call_id)


async def test_a_plainer_trunk_refuses_what_it_cannot_do() -> None:
    trunk = SimTrunk(capabilities=LineCapabilities(can_dial=True, can_hold=True))
    call_id = trunk.ring("1")
    await trunk.answer(call_id)
    with pytest.raises(TelephonyError, match="cannot mute"):
        await trunk.mute(call_id, True)
    with pytest.raises(TelephonyError, match="cannot conference"):
        await trunk.conference(call_id)
    assert not trunk.muted(call_id)
