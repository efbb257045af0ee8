"""The engine's connection to a real Mosquitto keeps its socket options through the
batching wrapper (aiomqtt sets them only on a plain ``socket.socket``): without
TCP_NODELAY, Nagle held each small send for the broker's delayed ACK and a call's offer
arrived ~10-40 ms late at 50 calls/s (issue 23)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from cti import topics
from cti.bus import link as link_module
from cti.bus.batching_socket import BatchingSocket
from cti.bus.broker import BrokerAddress
from cti.bus.link import Link, LinkSettings, aiomqtt_link
from cti.bus.outbox import Outgoing
from cti.protocol import Login
from tests.harness import until
from tests.integration.conftest import Mosquitto, mqtt_bus

pytestmark = [pytest.mark.mosquitto, pytest.mark.integration]


def _settings(mosquitto: Mosquitto, client_id: str) -> LinkSettings:
    """The engine's user on this broker, as ``client_id``."""
    user = "cti-engine"
    address = BrokerAddress(
        "127.0.0.1", mosquitto.port, username=user, password=mosquitto.users[user].password
    )
    return LinkSettings(address=address, client_id=client_id, keepalive_s=30)


async def _round_trip(
    link: Link, topics_used: int, count: int
) -> tuple[list[Outgoing], list[tuple[str, bytes, tuple[int, ...]]]]:
    """``count`` publishes (QoS 0 and 1 in turn) over ``topics_used`` topics of the link's
    own subscription, and the messages the link then reads, as many."""
    sent = [
        Outgoing(f"cti/v1/test/{n % topics_used}", f'{{"n": {n}}}'.encode(), qos=n % 2)
        for n in range(count)
    ]
    received: list[tuple[str, bytes, tuple[int, ...]]] = []
    async with asyncio.timeout(10):
        await asyncio.gather(*(link.publish(item) for item in sent))
        async for message in link.messages():
            received.append(message)
            if len(received) == len(sent):
                break
    return sent, received


async def test_the_broker_connection_is_batched_and_sends_without_nagle(
    mosquitto: Mosquitto,
) -> None:
    async with aiomqtt_link(_settings(mosquitto, "test-socket")) as link:
        sock = link._paho._sock  # type: ignore[attr-defined]
        assert isinstance(sock, BatchingSocket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


async def test_the_link_writes_and_reads_the_hot_packets_itself(mosquitto: Mosquitto) -> None:
    """PUBLISHes written, their PUBACKs and the PUBLISHes received are taken by the
    link's demux (cti/bus/packets.py), in order, with the subscription identifier;
    paho holds none of them (issue 23)."""
    async with aiomqtt_link(_settings(mosquitto, "test-hot-packets")) as link:
        sock = link._paho._sock  # type: ignore[attr-defined]
        assert isinstance(sock, BatchingSocket)
        assert sock.demux is not None
        await link.subscribe("cti/v1/test/+", 7)
        sent, received = await _round_trip(link, topics_used=3, count=40)
        assert received == [(item.topic, item.payload, (7,)) for item in sent]
        assert sock.demux.taken == len(sent) + sum(item.qos for item in sent)
        assert not link._paho._out_messages  # type: ignore[attr-defined]


async def test_an_unwrapped_connection_publishes_and_receives_through_paho(
    mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection the batching socket does not wrap (TLS) goes through paho both
    ways, into the same inbox: publishes acknowledged, messages in order with their
    subscription identifier."""
    monkeypatch.setattr(link_module, "batching_sockets", lambda *args: None)
    async with aiomqtt_link(_settings(mosquitto, "test-through-paho")) as link:
        assert not isinstance(link._paho._sock, BatchingSocket)  # type: ignore[attr-defined]
        await link.subscribe("cti/v1/test/+", 3)
        sent, received = await _round_trip(link, topics_used=2, count=20)
        assert received == [(item.topic, item.payload, (3,)) for item in sent]


async def test_deliver_to_takes_what_waits_first_then_each_message_as_read(
    mosquitto: Mosquitto,
) -> None:
    async with aiomqtt_link(_settings(mosquitto, "test-deliver-to")) as link:
        await link.subscribe("cti/v1/test/+", 4)
        first = [Outgoing("cti/v1/test/a", f"{n}".encode()) for n in range(5)]
        later = [Outgoing("cti/v1/test/b", f"{n}".encode()) for n in range(5, 10)]
        delivered: list[tuple[str, bytes, tuple[int, ...]]] = []
        async with asyncio.timeout(10):
            await asyncio.gather(*(link.publish(item) for item in first))
            inbox = link._inbox  # type: ignore[attr-defined]
            await until(lambda: len(inbox) == len(first), what="read, waiting in the inbox")
            link.deliver_to(lambda *message: delivered.append(message))  # type: ignore[attr-defined]
            assert len(delivered) == len(first)
            await asyncio.gather(*(link.publish(item) for item in later))
            await until(lambda: len(delivered) == len(first) + len(later))
        assert delivered == [(item.topic, item.payload, (4,)) for item in first + later]


async def test_publishes_across_a_broker_restart_all_arrive(mosquitto: Mosquitto) -> None:
    """At least once through the link's own packets: 300 commands published by a
    console while the broker restarts (those in flight, in the outbox and written to a
    socket that broke) all reach the engine's persistent session (issue 23)."""
    received: set[str] = set()
    async with (
        mqtt_bus(mosquitto, "cti-engine", persistent=True) as engine,
        mqtt_bus(mosquitto, "1001") as console,
    ):
        async with asyncio.timeout(10):
            await engine.wait_online()
            await console.wait_online()
        async with engine.subscribe(topics.agent_commands("1001")) as commands:

            async def take() -> None:
                async for _topic, message in commands:
                    received.add(getattr(message, "command_id", ""))

            taker = asyncio.create_task(take())
            topic = topics.agent_commands("1001")
            restarted = None
            for n in range(300):
                await console.publish(topic, Login(agent_id="1001", command_id=f"c{n}"))
                if n == 100:  # publishing goes on while the broker stops and starts
                    restarted = asyncio.create_task(asyncio.to_thread(mosquitto.restart))
                if n % 10 == 0:
                    await asyncio.sleep(0.005)
            assert restarted is not None
            await restarted
            wanted = {f"c{n}" for n in range(300)}
            await until(lambda: received >= wanted, limit_s=30, what="every command")
            taker.cancel()
    assert console.status.connects >= 2
