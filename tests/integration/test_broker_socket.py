"""The engine's connection to a real Mosquitto keeps its socket options through the
batching wrapper (aiomqtt sets them only on a plain ``socket.socket``): without
TCP_NODELAY, Nagle held each small send for the broker's delayed ACK and a call's offer
arrived ~10-40 ms late at 50 calls/s (issue 23)."""

from __future__ import annotations

import socket

import pytest

from cti.bus.batching_socket import BatchingSocket
from cti.bus.broker import BrokerAddress
from cti.bus.link import LinkSettings, aiomqtt_link
from tests.integration.conftest import Mosquitto

pytestmark = [pytest.mark.mosquitto, pytest.mark.integration]


async def test_the_broker_connection_is_batched_and_sends_without_nagle(
    mosquitto: Mosquitto,
) -> None:
    user = "cti-engine"
    address = BrokerAddress(
        "127.0.0.1", mosquitto.port, username=user, password=mosquitto.users[user].password
    )
    settings = LinkSettings(address=address, client_id="test-socket", keepalive_s=30)
    async with aiomqtt_link(settings) as link:
        sock = link._paho._sock  # type: ignore[attr-defined]
        assert isinstance(sock, BatchingSocket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
