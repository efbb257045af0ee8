"""Two clients of one broker user do not fight for ever (issue 17).

The generated ``mosquitto.conf`` sets ``use_username_as_clientid``: a console opened
twice as agent 1001 has one client id at the broker, and each new connection throws the
other off (MQTT v5 DISCONNECT 0x8E, "session taken over"; Mosquitto 2.0.11 closes the
socket without saying so, seen as connections closed at once). Each bus waits after a
takeover and stops reconnecting at :data:`~cti.bus.mqtt.MAX_TAKEOVERS` in a row, saying
why on its status (the console's banner); the newer one keeps the session.
"""

from __future__ import annotations

import asyncio

import pytest

from agent_console.connection import LinkStatus, banner_text
from cti.bus.mqtt import MAX_TAKEOVERS, QUICK_LOSSES, BusStatus, ConnectionState, MqttBus
from tests.integration.conftest import Mosquitto, mqtt_bus

pytestmark = [pytest.mark.mosquitto, pytest.mark.integration, pytest.mark.security]

#: Safety net only: the takeovers come within a second on 127.0.0.1.
WAIT_S = 20.0


async def _gave_up(bus: MqttBus) -> BusStatus:
    async for status in bus.watch():
        if status.gave_up:
            return status
    raise AssertionError("the bus status feed ended")


async def test_two_consoles_of_one_agent_stop_fighting(mosquitto: Mosquitto) -> None:
    first = mqtt_bus(mosquitto, "1001", presence="1001", takeover_wait_s=0.05)
    second = mqtt_bus(mosquitto, "1001", presence="1001", takeover_wait_s=0.05)
    first.client_id, second.client_id = "console-a", "console-b"  # the broker uses "1001"
    async with first:
        async with asyncio.timeout(WAIT_S):
            await first.wait_online()
        async with second:
            status = await asyncio.wait_for(_gave_up(first), WAIT_S)
            # The first, thrown off first, gives up after MAX_TAKEOVERS; the second stays.
            assert status.taken_over == MAX_TAKEOVERS
            assert status.state is ConnectionState.OFFLINE
            assert status.retry_in_s is None
            assert status.error.startswith(
                "another console logged in as 1001 took over this session"
            )
            async with asyncio.timeout(WAIT_S):
                await second.wait_online()
            assert not second.status.gave_up
            # Bounded: a takeover is seen within QUICK_LOSSES connections (this Mosquitto
            # closes without saying 0x8E), and the first stops at MAX_TAKEOVERS of them.
            bound = 1 + MAX_TAKEOVERS * QUICK_LOSSES
            assert first.status.connects <= bound
            assert second.status.connects <= bound
            # The console says so, with no retry promised.
            text = banner_text(LinkStatus(bus=first.status)).plain
            assert "another console logged in as 1001 took over this session" in text
            assert "retrying" not in text
            # Taking it back is the user's choice: reconnect() does it once.
            first.reconnect()
            async with asyncio.timeout(WAIT_S):
                await first.wait_online()


def test_the_brokers_0x8e_is_recognised_through_aiomqtt() -> None:
    import aiomqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.reasoncodes import ReasonCode

    from cti.bus.link import taken_over

    def lost(code: int) -> BaseException:
        cause = aiomqtt.MqttCodeError(ReasonCode(PacketTypes.DISCONNECT, identifier=code), "x")
        try:
            raise aiomqtt.MqttError("Disconnected during message iteration") from cause
        except aiomqtt.MqttError as exc:
            return exc

    assert taken_over(lost(0x8E))
    assert not taken_over(lost(0x80))
    assert not taken_over(lost(0x8B))


async def test_the_engine_never_backs_off_for_a_takeover(mosquitto: Mosquitto) -> None:
    # Routing must resume within seconds: a client with the engine's credentials (or a
    # flapping broker, which looks the same) never makes the engine wait the long takeover
    # wait nor give up; it comes back on its usual backoff and the other one yields.
    engine = mqtt_bus(mosquitto, "cti-engine", persistent=True, takeover_wait_s=3600.0)
    rival = mqtt_bus(mosquitto, "cti-engine", takeover_wait_s=3600.0)
    engine.client_id, rival.client_id = "engine-a", "engine-b"
    seen: list[BusStatus] = []
    thrown_off = asyncio.Event()

    async def record() -> None:
        async for status in engine.watch():
            seen.append(status)
            if status.connects >= 2:
                thrown_off.set()

    async def yielded() -> BusStatus:
        if rival.status.taken_over and rival.status.retry_in_s:
            return rival.status  # it already did
        async for status in rival.watch():
            if status.taken_over and status.retry_in_s:
                return status
        raise AssertionError("the rival's status feed ended")

    async with engine:
        async with asyncio.timeout(WAIT_S):
            await engine.wait_online()
        recorder = asyncio.create_task(record(), name="test:engine-status")
        try:
            async with rival:
                await asyncio.wait_for(thrown_off.wait(), WAIT_S)
                assert (await asyncio.wait_for(yielded(), WAIT_S)).retry_in_s == 3600.0
                # The rival waits; the engine is back on its usual backoff (a long wait
                # would time out here) and never counted a takeover nor gave up.
                async with asyncio.timeout(WAIT_S):
                    await engine.wait_online()
        finally:
            recorder.cancel()
    assert not any(s.gave_up or s.taken_over for s in seen)
    assert all(s.retry_in_s is None or s.retry_in_s <= 0.5 for s in seen)
