"""The modem line on a real pty against the emulator: alone, several at once, and end to
end through the engine service (ring -> screen-pop -> answer -> hang-up -> record).

Every wait is for an event (a bus message, an emulator note, the line's ``ready``);
``asyncio.timeout`` only keeps a broken run from hanging.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from cti import topics
from cti.bus.memory import InMemoryBus
from cti.config import LineSettings, ModemLineSettings, SimLineSettings, load_config
from cti.engine.lines import build_line, build_lines
from cti.engine.service import EngineService
from cti.errors import ConfigError
from cti.models import CallDetailRecord, CallerKind, Customer, PhoneNumber, Segment
from cti.protocol import (
    AcceptOffer,
    CallArrived,
    CallConnected,
    CallEnded,
    CallerHungUp,
    CallOffered,
    CompleteWrapUp,
    HangUp,
    Message,
)
from cti.store.database import Store
from simulators.modem_emulator import CallSpec, DialSpec, ModemEmulator, PtyModem
from telephony_adapters.base import LineEvent
from telephony_adapters.call_ids import boot_call_ids
from telephony_adapters.modem.line import ModemLine
from telephony_adapters.sim import SimTrunk
from tests.cti.test_service import Agent, ready
from tests.harness import engine_center, until_async

pytestmark = pytest.mark.modem

STAMP = "03211405"
SAFETY = 20.0  # seconds: only a broken run gets near this

CUSTOMER = Customer(
    id=7,
    name="王小明 [b]VIP[/b]",
    phones=(PhoneNumber(raw="138 1234 5678", e164="+8613812345678"),),
    value=88.0,
    segment=Segment.GOLD,
)


def emulator(tmp_path: Path, chipset: str = "conexant", name: str = "modem0") -> PtyModem:
    core = ModemEmulator(chipset, ring_interval_s=0.4, caller_id_delay_s=0.1, quiet_gap_s=2.0)
    return PtyModem(core, tmp_path / name, stamp=lambda: STAMP)


def modem_line(port: Path, name: str = "modem1", **kw: float) -> ModemLine:
    options: dict[str, float] = {
        "settle_s": 0.05,
        "ring_timeout_s": 1.2,
        "answer_timeout_s": 5.0,
        "reply_timeout_s": 0.5,
        "backoff_min_s": 0.05,
        "backoff_max_s": 0.4,
        **kw,
    }
    return ModemLine(name, str(port), **options)  # type: ignore[arg-type]


async def next_event(events: AsyncIterator[LineEvent]) -> LineEvent:
    async with asyncio.timeout(SAFETY):
        return await anext(events)


async def wait_ready(line: ModemLine) -> None:
    async with asyncio.timeout(SAFETY):
        await line.ready.wait()


@asynccontextmanager
async def running(line: ModemLine, *modems: PtyModem) -> AsyncIterator[ModemLine]:
    for modem in modems:
        await modem.open()
    await line.start()
    try:
        await wait_ready(line)
        yield line
    finally:
        await line.stop()
        for modem in modems:
            await modem.close()


# --- the line alone ---------------------------------------------------------------


async def test_start_up_ring_answer_hang_up(tmp_path: Path) -> None:
    modem = emulator(tmp_path, "rockwell")  # caller ID only with AT#CID=1: a fallback
    async with running(modem_line(tmp_path / "modem0"), modem) as line:
        assert modem.core.heard[:4] == ["ATZ", "ATE0V1Q0S0=0", "AT+VCID=1", "AT#CID=1"]
        assert line.session.startup.caller_id_command == "AT#CID=1"
        events = line.events()
        modem.ring(CallSpec(number="13812345678", name="王小明", rings=30))
        arrived = await next_event(events)
        assert isinstance(arrived, CallArrived)
        assert (arrived.ani, arrived.caller_name, arrived.line) == (
            "13812345678",
            "王小明",
            "modem1",
        )
        await line.answer(arrived.call_id)
        await asyncio.wait_for(modem.wait_for("answered"), SAFETY)
        await line.wait_for(lambda: bool(line.outcomes))
        assert line.outcomes[-1].outcome == "connected"
        await line.hang_up(arrived.call_id)
        await asyncio.wait_for(modem.wait_for("hung_up"), SAFETY)
        assert line._events.empty()  # our own hang-up makes no CallerHungUp


async def test_several_lines_at_once(tmp_path: Path) -> None:
    first, second = emulator(tmp_path, "conexant", "a"), emulator(tmp_path, "etsi", "b")
    line_a = modem_line(tmp_path / "a", "front")
    line_b = modem_line(tmp_path / "b", "back")
    async with running(line_a, first), running(line_b, second):
        events_a, events_b = line_a.events(), line_b.events()
        first.ring(CallSpec(number="111", rings=2))
        second.ring(CallSpec(number="222", rings=2))
        got_a = [await next_event(events_a), await next_event(events_a)]
        got_b = [await next_event(events_b), await next_event(events_b)]
        assert [type(e) for e in got_a] == [CallArrived, CallerHungUp]  # ring stopped
        assert [type(e) for e in got_b] == [CallArrived, CallerHungUp]
        a, b = got_a[0], got_b[0]
        assert isinstance(a, CallArrived)
        assert isinstance(b, CallArrived)
        assert (a.ani, a.line, b.ani, b.line) == ("111", "front", "222", "back")
        assert a.call_id.startswith("front-")
        assert b.call_id.startswith("back-")
        assert line_b.session.startup.caller_id_command == "AT-STE=1;+VCID=1"


async def test_garbage_never_crashes_the_line_nor_invents_a_call(tmp_path: Path) -> None:
    modem = emulator(tmp_path)
    async with running(modem_line(tmp_path / "modem0"), modem) as line:
        rng = random.Random(9)
        noise = bytes(b for b in rng.randbytes(20_000) if b not in b"Rr2")
        for i in range(0, len(noise), 997):
            modem.send(noise[i : i + 997])
        modem.send(b"\r\n")
        events = line.events()
        modem.ring(CallSpec(number="13812345678", rings=2))  # the line still works
        arrived = await next_event(events)
        assert isinstance(arrived, CallArrived)
        assert arrived.ani == "13812345678"
        assert line.session.garbage > 0  # the noise did arrive
        assert line.ready.is_set()
        assert line.connections == 1


async def test_dial_outcomes_through_the_pty(tmp_path: Path) -> None:
    modem = emulator(tmp_path)
    modem.core.dials = [
        DialSpec(outcome="BUSY", ringing=1, after_s=0.1),
        DialSpec(outcome="VCON", after_s=0.1),
    ]
    async with running(modem_line(tmp_path / "modem0"), modem) as line:
        events = line.events()
        call_id = await line.dial("5551234", call_id="cb-1")
        assert call_id == "cb-1"
        assert await next_event(events) == CallerHungUp(call_id="cb-1", line="modem1")
        assert [o.outcome for o in line.outcomes] == ["ringing", "busy"]
        assert "ATDT5551234;" in modem.core.heard
        second = await line.dial("5551234")
        await asyncio.wait_for(modem.wait_for("dial_outcome", after=len(modem.notes)), SAFETY)
        await line.wait_for(lambda: line.outcomes[-1].outcome == "connected")
        await line.hang_up(second)
        await asyncio.wait_for(modem.wait_for("hung_up"), SAFETY)


async def test_device_vanishes_mid_call_and_comes_back(tmp_path: Path) -> None:
    modem = emulator(tmp_path)
    async with running(modem_line(tmp_path / "modem0"), modem) as line:
        events = line.events()
        modem.ring(CallSpec(number="13812345678", rings=30))
        arrived = await next_event(events)
        assert isinstance(arrived, CallArrived)
        await line.answer(arrived.call_id)
        await asyncio.wait_for(modem.wait_for("answered"), SAFETY)
        modem.vanish()  # unplugged mid-call
        assert await next_event(events) == CallerHungUp(call_id=arrived.call_id, line="modem1")
        assert not line.ready.is_set()
        await modem.open()  # plugged back in (a new pty behind the same link)
        await wait_ready(line)
        assert line.connections == 2
        modem.ring(CallSpec(number="13812345678", rings=2))
        again = await next_event(events)
        assert isinstance(again, CallArrived)
        assert again.call_id != arrived.call_id


async def test_a_modem_that_stops_answering_is_restarted(tmp_path: Path) -> None:
    modem = emulator(tmp_path)
    line = modem_line(tmp_path / "modem0", probe_interval_s=0.2, reply_timeout_s=0.1)
    async with running(line, modem):
        answers = modem.core.received
        modem.core.received = lambda data, now: []  # type: ignore[method-assign]  # wedged
        # closed, opened again, start-up failed, again
        await line.wait_for(lambda: line.connections >= 3)
        assert not line.ready.is_set()
        modem.core.received = answers  # type: ignore[method-assign]
        await wait_ready(line)


async def test_missing_port_keeps_trying(tmp_path: Path) -> None:
    line = modem_line(tmp_path / "nothing")
    await line.start()
    try:
        await line.wait_for(lambda: line.session.failures >= 3)
        assert line.status == "down"
        assert line.connections == 0
        modem = emulator(tmp_path, name="nothing")
        await modem.open()
        try:
            await wait_ready(line)
        finally:
            await line.stop()
            await modem.close()
    finally:
        await line.stop()  # twice is harmless


async def test_a_port_that_is_not_a_modem_is_named_in_the_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plain = tmp_path / "not-a-tty"
    plain.write_text("")
    line = modem_line(plain)
    await line.start()
    try:
        await line.wait_for(lambda: line.session.failures >= 1)
    finally:
        await line.stop()
    assert line.status == "down"
    assert line.connections == 0
    assert f"line modem1: cannot open the modem: {plain}: " in caplog.text


# --- the factory --------------------------------------------------------------------


def test_build_line_from_settings() -> None:
    sim = build_line(SimLineSettings(name="trunk"))
    assert isinstance(sim, SimTrunk)
    assert sim.name == "trunk"
    settings = ModemLineSettings(
        name="desk", port="/dev/ttyACM0", baud=57600, dnis="800", init=("ATL1",), ring_timeout_s=9
    )
    modem = build_line(settings)
    assert isinstance(modem, ModemLine)
    assert (modem.name, modem.port, modem.baud) == ("desk", "/dev/ttyACM0", 57600)
    assert modem.session.call.ring_timeout == 9
    assert modem.session.call.dnis == "800"
    assert modem.session.startup.init == ("ATL1",)
    assert modem.capabilities.can_dial
    unknown = cast(LineSettings, SimpleNamespace(name="trunk2", kind="isdn"))
    with pytest.raises(ConfigError, match="line 'trunk2': lines of kind 'isdn'"):
        build_line(unknown)
    config = load_config(
        overrides={
            "lines": [{"kind": "sim", "name": "s"}, {"kind": "modem", "name": "m", "port": "/x"}]
        }
    )
    assert [line.name for line in build_lines(config)] == ["s", "m"]


def test_call_ids_unique_across_restarts() -> None:
    before = boot_call_ids("m1", at=1_700_000_000, salt="k2x9")
    after = boot_call_ids("m1", at=1_700_000_060)
    same_second = boot_call_ids("m1", at=1_700_000_000)
    first = next(before)
    assert first == "m1-s44we8k2x9-1"
    assert int("s44we8", 36) == 1_700_000_000
    assert next(before) == "m1-s44we8k2x9-2"
    assert next(after) != first
    assert next(same_second) != first  # a restart within the second: the salt differs


# --- end to end through the engine ----------------------------------------------------


@dataclass
class Center:
    service: EngineService
    store: Store
    modem: PtyModem
    line: ModemLine
    agent: Agent


@asynccontextmanager
async def center(tmp_path: Path) -> AsyncIterator[Center]:
    config = load_config(overrides={"queues": [{"name": "general", "wrap_up_s": 60.0}]})
    bus = InMemoryBus()
    modem = emulator(tmp_path)
    await modem.open()
    line = modem_line(tmp_path / "modem0")
    agent = Agent(bus, "1001")
    try:
        async with (
            bus.subscribe(topics.agent_events("1001")) as ev,
            bus.subscribe(topics.agent_state("1001")) as st,
        ):

            async def pump(sub: AsyncIterator[tuple[str, Message]]) -> None:
                async for _, message in sub:
                    agent.inbox.put_nowait(message)

            pumps = [asyncio.create_task(pump(aiter(ev))), asyncio.create_task(pump(aiter(st)))]
            try:
                async with engine_center(
                    tmp_path / "cti.db", config=config, agents={"1001": ["general"]},
                    lines=[line], customers=[CUSTOMER], bus=bus,
                ) as c:  # fmt: skip
                    await wait_ready(line)
                    yield Center(c.service, c.store, modem, line, agent)
            finally:
                for task in pumps:
                    task.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
    finally:
        await modem.close()


async def ring_and_accept(c: Center) -> str:
    await ready(c.agent)
    c.modem.ring(CallSpec(number="13812345678", name="WANG XIAOMING", rings=40))
    offer = await c.agent.expect(CallOffered)
    pop = offer.pop
    assert pop.ani == "13812345678"
    assert pop.caller_kind is CallerKind.KNOWN
    assert pop.customer == CUSTOMER  # the screen-pop of that customer
    await c.agent.send(AcceptOffer(agent_id="1001", call_id=pop.call_id))
    await c.agent.expect(CallConnected)
    await asyncio.wait_for(c.modem.wait_for("answered"), SAFETY)  # the emulator saw ATA
    assert "ATA" in c.modem.core.heard
    return pop.call_id


async def test_end_to_end_ring_pop_answer_agent_hangs_up_record(tmp_path: Path) -> None:
    async with center(tmp_path) as c:
        call_id = await ring_and_accept(c)
        await c.agent.send(HangUp(agent_id="1001", call_id=call_id))
        ended = await c.agent.expect(CallEnded)
        assert ended.by == "agent"
        await asyncio.wait_for(c.modem.wait_for("hung_up"), SAFETY)  # the emulator saw ATH
        done = await c.agent.do(
            CompleteWrapUp(agent_id="1001", call_id=call_id, disposition="sale")
        )
        assert done.ok
        await c.service.flush()
        (record,) = await c.store.calls.records()
        assert (record.call_id, record.outcome, record.customer_id) == (call_id, "answered", 7)
        assert record.disposition == "sale"
        assert record.agent_id == "1001"


async def test_end_to_end_caller_hangs_up_while_talking(tmp_path: Path) -> None:
    async with center(tmp_path) as c:
        call_id = await ring_and_accept(c)
        c.modem.caller_hangs_up()  # NO CARRIER
        ended = await c.agent.expect(CallEnded)
        assert (ended.call_id, ended.by) == (call_id, "caller")
        done = await c.agent.do(
            CompleteWrapUp(agent_id="1001", call_id=call_id, disposition="sale")
        )
        assert done.ok
        await c.service.flush()
        (record,) = await c.store.calls.records()
        assert (record.call_id, record.outcome) == (call_id, "answered")


async def test_end_to_end_ring_stops_before_anyone_answers(tmp_path: Path) -> None:
    async with center(tmp_path) as c:
        # nobody is ready: the call waits, the caller gives up, the rings stop
        c.modem.ring(CallSpec(number="13812345678", rings=2))
        await asyncio.wait_for(c.modem.wait_for("caller_left"), SAFETY)

        async def recorded() -> list[CallDetailRecord]:
            await c.service.flush()
            return await c.store.calls.records()

        (record,) = await until_async(
            recorded, SAFETY, every_s=0.05, what="the abandoned call's record"
        )
        assert record.outcome == "abandoned"
        assert record.customer_id == 7
