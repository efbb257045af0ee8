"""MqttBus pieces that need no broker: the outbox, the in-flight window, backoff,
broker URLs and settings, and the bus itself over a fake link (reconnection, re-subscribe,
offline queue, back-pressure, resend of what was in flight)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator

import pytest

from cti import topics
from cti.bus.broker import (
    BrokerAddress,
    BrokerError,
    broker_url,
    parse_broker_url,
    resolve_broker_settings,
)
from cti.bus.link import Backoff
from cti.bus.memory import InMemoryBus
from cti.bus.mqtt import BusStatus, ConnectionState, MqttBus
from cti.bus.outbox import InFlightWindow, Outbox, Outgoing, qos_for
from cti.bus.roles import make_bus, open_bus
from cti.config import BrokerSettings
from cti.errors import ConfigError
from cti.models import AgentState
from cti.protocol import (
    AgentPresence,
    ColleagueState,
    CommandResult,
    Login,
    Message,
    decode,
    encode,
)
from tests.harness import until

# --- outbox ---------------------------------------------------------------------------


def _item(n: int, topic: str = "cti/v1/agents/1/events", retain: bool = False) -> Outgoing:
    return Outgoing(topic, str(n).encode(), 1, retain)


def test_outbox_keeps_order_and_drops_the_oldest_when_full() -> None:
    box = Outbox(limit=3)
    assert [box.put(_item(n)) for n in range(3)] == [None, None, None]
    dropped = box.put(_item(3))
    assert dropped == _item(0)
    assert box.dropped == 1
    assert [box.pop().payload for _ in range(len(box))] == [b"1", b"2", b"3"]


def test_outbox_retained_publish_replaces_the_older_one_of_its_topic() -> None:
    box = Outbox(limit=10)
    box.put(_item(1, "cti/v1/agents/1/state", retain=True))
    box.put(_item(2))
    box.put(_item(3, "cti/v1/agents/1/state", retain=True))
    box.put(_item(4, "cti/v1/agents/2/state", retain=True))
    assert [i.payload for i in box] == [b"2", b"3", b"4"]


def test_outbox_put_back_goes_first_in_order_and_overflow_drops_oldest() -> None:
    box = Outbox(limit=4)
    box.put(_item(3))
    box.put(_item(4))
    dropped = box.put_back([_item(0), _item(1), _item(2)])
    assert dropped == [_item(0)]
    assert [i.payload for i in box] == [b"1", b"2", b"3", b"4"]


# --- in-flight window -----------------------------------------------------------------


def test_window_bounds_in_flight_and_returns_unacknowledged_oldest_first() -> None:
    window = InFlightWindow(2)
    a = window.add(_item(1))
    window.add(_item(2))
    assert not window.has_room
    with pytest.raises(RuntimeError):
        window.add(_item(3))
    window.done(a)
    assert window.has_room
    window.add(_item(3))
    assert window.take_all() == [_item(2), _item(3)]
    assert len(window) == 0


# --- backoff --------------------------------------------------------------------------


def test_backoff_doubles_within_bounds_and_resets() -> None:
    backoff = Backoff(0.5, 4.0, jitter=0.0)
    assert [backoff.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_backoff_jitter_stays_between_min_and_max() -> None:
    backoff = Backoff(1.0, 8.0, jitter=0.2, rng=random.Random(3))
    delays = [backoff.next_delay() for _ in range(50)]
    assert all(1.0 <= d <= 8.0 for d in delays)
    assert len(set(delays)) > 5


def test_backoff_rejects_min_above_max() -> None:
    with pytest.raises(ConfigError, match="reconnect_min_s"):
        Backoff(5.0, 1.0)


# --- URLs and settings ----------------------------------------------------------------


def test_parse_broker_url_forms() -> None:
    assert parse_broker_url("mqtt://h") == BrokerAddress("h", 1883)
    assert parse_broker_url("mqtts://u:p%40ss@h:9000") == BrokerAddress(
        "h", 9000, tls=True, username="u", password="p@ss"
    )
    assert parse_broker_url("mqtts://h").port == 8883
    address = parse_broker_url("mqtt://坐席:密码@127.0.0.1:1884")
    assert (address.username, address.password) == ("坐席", "密码")
    assert parse_broker_url(broker_url(address)) == address


@pytest.mark.parametrize(
    ("url", "fault"),
    [
        ("http://h", "scheme 'http'"),
        ("mqtt://", "names no host"),
        ("mqtt://h:notaport", "not valid"),
        ("mqtt://h/path", "path or query"),
        ("h:1883", "scheme"),
    ],
)
def test_parse_broker_url_errors_name_the_url(url: str, fault: str) -> None:
    with pytest.raises(ConfigError, match=fault):
        parse_broker_url(url)


def test_bad_url_error_hides_the_password() -> None:
    with pytest.raises(ConfigError) as info:
        parse_broker_url("mqtt://agent:secret@h:bad")
    assert "secret" not in str(info.value)


def test_resolve_settings_file_then_env_then_option() -> None:
    base = BrokerSettings(url="mqtt://file:1883", keepalive_s=10)
    env = {"CTI_BROKER_URL": "mqtt://env:1883", "CTI_BROKER_MAX_IN_FLIGHT": "7"}
    got = resolve_broker_settings(base, env=env)
    assert (got.url, got.max_in_flight, got.keepalive_s) == ("mqtt://env:1883", 7, 10)
    assert resolve_broker_settings(base, url="mqtt://cli:1", env=env).url == "mqtt://cli:1"
    assert resolve_broker_settings(base, env={}).url == "mqtt://file:1883"


def test_resolve_settings_credentials_from_env() -> None:
    env = {"CTI_BROKER_USERNAME": "1001", "CTI_BROKER_PASSWORD": "p:w@d"}
    got = resolve_broker_settings(BrokerSettings(url="mqtt://x:y@h:1"), env=env)
    address = parse_broker_url(got.url)
    assert (address.username, address.password, address.host) == ("1001", "p:w@d", "h")


def test_resolve_settings_default_username_keeps_the_env_password() -> None:
    env = {"CTI_BROKER_PASSWORD": "pw"}
    got = resolve_broker_settings(
        BrokerSettings(url="mqtts://h:8883"), env=env, default_username="1001"
    )
    address = parse_broker_url(got.url)
    assert (address.username, address.password, address.tls) == ("1001", "pw", True)
    named = resolve_broker_settings(
        BrokerSettings(url="mqtt://sup@h"), env={}, default_username="1001"
    )
    assert parse_broker_url(named.url).username == "sup"


def test_resolve_settings_bad_env_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="CTI_BROKER_MAX_IN_FLIGHT"):
        resolve_broker_settings(BrokerSettings(), env={"CTI_BROKER_MAX_IN_FLIGHT": "lots"})


def test_qos_policy() -> None:
    assert qos_for(topics.queue_status("general")) == 0
    assert qos_for(topics.queue_calls("general")) == 0
    assert qos_for(topics.agent_events("1001")) == 1
    assert qos_for(topics.agent_state("1001")) == 1
    assert qos_for(topics.agent_commands("1001")) == 1
    # Advisory and retained, superseded by the next: no acknowledgement to wait for.
    assert qos_for(topics.colleague_state("1001")) == 0


def test_make_bus_in_memory_for_empty_url() -> None:
    assert isinstance(make_bus(BrokerSettings(), "console"), InMemoryBus)
    with pytest.raises(ConfigError, match="role"):
        make_bus(BrokerSettings(), "janitor")


async def test_make_bus_roles() -> None:
    settings = BrokerSettings(url="mqtt://h:1")
    engine = make_bus(settings, "engine")
    console = make_bus(settings, "console", agent_id="1001")
    assert isinstance(engine, MqttBus)
    assert isinstance(console, MqttBus)
    assert engine.persistent
    assert engine.presence_agent is None
    assert not console.persistent
    assert console.presence_agent == "1001"
    assert "1001" in console.client_id


# --- the bus over a fake link ---------------------------------------------------------


class FakeLink:
    """One fake connection: records what is published and subscribed."""

    def __init__(self, broker: FakeBroker) -> None:
        self.broker = broker
        self.incoming: asyncio.Queue[tuple[str, bytes, tuple[int, ...]] | None] = asyncio.Queue()
        self.subscribed: dict[str, int] = {}

    async def publish(self, item: Outgoing) -> None:
        self.broker.published.append(item)
        if item.topic in self.broker.disconnect_on:  # as Mosquitto does for a bad topic
            self.incoming.put_nowait(None)
            await asyncio.Event().wait()  # never acknowledged
        if item.topic in self.broker.refuse_publish:
            raise BrokerError(f"refused the publish to {item.topic!r}: Not authorized")
        if self.broker.hold_acks is not None:
            await self.broker.hold_acks.wait()
        for link in self.broker.links:
            for pattern, ident in link.subscribed.items():
                if topics.matches(pattern, item.topic):
                    link.incoming.put_nowait((item.topic, item.payload, (ident,)))

    async def subscribe(self, pattern: str, ident: int) -> None:
        if pattern in self.broker.refuse:
            raise BrokerError(f"refused the subscription to {pattern!r}: Not authorized")
        self.subscribed[pattern] = ident
        self.broker.subscribes.append(pattern)

    async def unsubscribe(self, pattern: str) -> None:
        self.subscribed.pop(pattern, None)

    async def messages(self) -> AsyncIterator[tuple[str, bytes, tuple[int, ...]]]:
        while True:
            item = await self.incoming.get()
            if item is None:
                raise ConnectionError("connection lost")
            yield item


class FakeBroker:
    def __init__(self) -> None:
        self.up = asyncio.Event()
        self.up.set()
        self.links: list[FakeLink] = []
        self.published: list[Outgoing] = []
        self.subscribes: list[str] = []
        self.refuse: set[str] = set()
        self.refuse_publish: set[str] = set()
        self.disconnect_on: set[str] = set()
        self.hold_acks: asyncio.Event | None = None
        self.attempts = 0

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[FakeLink]:
        self.attempts += 1
        if not self.up.is_set():
            raise ConnectionRefusedError("[Errno 111] Connection refused")
        link = FakeLink(self)
        self.links.append(link)
        try:
            yield link
        finally:
            self.links.remove(link)

    def crash(self) -> None:
        self.up.clear()
        for link in self.links:
            link.incoming.put_nowait(None)


def _bus(broker: FakeBroker, **kwargs: object) -> MqttBus:
    return MqttBus(
        "mqtt://fake:1883",
        connector=broker.connect,
        reconnect_min_s=0.01,
        reconnect_max_s=0.02,
        **kwargs,  # type: ignore[arg-type]
    )


def _payloads(broker: FakeBroker) -> list[str]:
    out = []
    for item in broker.published:
        message = decode(item.payload)
        out.append(getattr(message, "command_id", message.type))
    return out


async def test_round_trip_and_status() -> None:
    broker = FakeBroker()
    async with _bus(broker) as bus:
        async with asyncio.timeout(5):
            await bus.wait_online()
        assert bus.status.online
        assert bus.status.connects == 1
        async with bus.subscribe(topics.agent_events("1001")) as sub:
            await bus.publish(topics.agent_events("1001"), CommandResult(command_id="a", ok=True))
            topic, message = await anext(aiter(sub))
        assert topic == topics.agent_events("1001")
        assert message == CommandResult(command_id="a", ok=True)
        assert (bus.sent, bus.received) == (1, 1)  # bench_bus's messages a call
    assert bus.status.state is ConnectionState.CLOSED


async def test_offline_publishes_queue_and_go_out_in_order_on_reconnect() -> None:
    broker = FakeBroker()
    broker.up.clear()
    seen: list[BusStatus] = []
    bus = _bus(broker)
    bus.add_listener(seen.append)
    async with bus:
        await until(lambda: bus.status.state is ConnectionState.OFFLINE)
        assert "connection refused" in bus.status.error
        for n in range(3):
            await bus.publish(
                topics.agent_commands("1001"), Login(agent_id="1001", command_id=f"c{n}")
            )
        assert bus.status.queued == 3
        assert broker.published == []
        broker.up.set()
        async with asyncio.timeout(5):
            await bus.wait_online()
        await until(lambda: len(broker.published) == 3)
    assert _payloads(broker) == ["c0", "c1", "c2"]
    states = [s.state for s in seen]
    assert ConnectionState.OFFLINE in states
    assert states.index(ConnectionState.OFFLINE) < len(states)
    assert any(s.queued == 3 and not s.online for s in seen)


async def test_a_call_s_states_queued_offline_go_out_once_each_topic() -> None:
    # An agent's states through one call (offered, talking, wrap-up, ready) with the
    # call's events between them, queued while the broker is away: the events go out in
    # order, the state and the colleague state once each (the last, in its place).
    broker = FakeBroker()
    broker.up.clear()
    async with _bus(broker) as bus:
        await until(lambda: bus.status.state is ConnectionState.OFFLINE)
        for n, state in enumerate(("reserved", "talking", "wrap_up", "ready")):
            for topic in (topics.agent_state("1"), topics.colleague_state("1")):
                bus.publish_payload(topic, state.encode(), retain=True)
            bus.publish_payload(topics.agent_events("1"), f"event {n}".encode())
        assert bus.status.queued == 6
        broker.up.set()
        await until(lambda: len(broker.published) == 6)
    sent = [(item.topic, item.payload.decode(), item.qos) for item in broker.published]
    events = [(topics.agent_events("1"), f"event {n}", 1) for n in range(4)]
    assert sent == [
        *events[:3],
        (topics.agent_state("1"), "ready", 1),
        (topics.colleague_state("1"), "ready", 0),
        events[3],
    ]


async def test_resubscribes_and_resends_unacknowledged_after_the_link_breaks() -> None:
    broker = FakeBroker()
    async with _bus(broker) as bus:
        async with asyncio.timeout(5):
            await bus.wait_online()
        async with bus.subscribe(topics.agent_events("1001")) as sub:
            assert broker.subscribes == [topics.agent_events("1001")]
            broker.hold_acks = asyncio.Event()  # the broker stops acknowledging
            await bus.publish(topics.agent_commands("1001"), Login(agent_id="1001", command_id="x"))
            await until(lambda: bus.status.in_flight == 1)
            broker.crash()
            await until(lambda: not bus.status.online)
            assert bus.status.queued == 1  # back in the outbox, not lost
            broker.hold_acks = None
            broker.up.set()
            async with asyncio.timeout(5):
                await bus.wait_online()
            assert broker.subscribes == [topics.agent_events("1001")] * 2
            await until(lambda: _payloads(broker).count("x") == 2)
            # the subscription made before the break still receives
            await bus.publish(topics.agent_events("1001"), CommandResult(command_id="e", ok=True))
            _, message = await anext(aiter(sub))
            assert message == CommandResult(command_id="e", ok=True)


async def test_in_flight_window_limits_unacknowledged_publishes() -> None:
    broker = FakeBroker()
    async with _bus(broker, max_in_flight=2) as bus:
        async with asyncio.timeout(5):
            await bus.wait_online()
        broker.hold_acks = asyncio.Event()
        for n in range(5):
            bus.publish_payload(
                topics.agent_events("1"), encode(CommandResult(command_id=f"{n}", ok=True))
            )
        await until(lambda: len(broker.published) == 2)
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(broker.published) == 2
        assert bus.status.in_flight == 2
        # publish() itself waits while the window is full and the outbox backs up
        blocked = asyncio.create_task(
            bus.publish(topics.agent_events("1"), CommandResult(command_id="late", ok=True))
        )
        for _ in range(20):
            await asyncio.sleep(0)
        assert not blocked.done()
        broker.hold_acks.set()
        await asyncio.wait_for(blocked, 5)
        await until(lambda: len(broker.published) == 6)
    assert _payloads(broker) == ["0", "1", "2", "3", "4", "late"]


async def test_close_waits_for_the_last_acknowledgement() -> None:
    # Acknowledgements wake only a sender with publishes waiting, or close(): here the
    # outbox is empty and close() must still see the window empty.
    broker = FakeBroker()
    bus = _bus(broker)
    await bus.start()
    async with asyncio.timeout(5):
        await bus.wait_online()
    broker.hold_acks = asyncio.Event()
    bus.publish_payload(topics.agent_events("1"), encode(CommandResult(command_id="a", ok=True)))
    await until(lambda: len(broker.published) == 1)
    closing = asyncio.create_task(bus.close(drain_s=60))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not closing.done()
    assert bus.status.in_flight == 1
    broker.hold_acks.set()
    async with asyncio.timeout(5):  # not the 60 s of drain_s
        await closing
    assert bus.status.in_flight == 0


async def test_a_refused_publish_frees_its_place_in_the_window() -> None:
    broker = FakeBroker()
    refused, fine = topics.agent_events("1"), topics.agent_events("2")
    broker.refuse_publish.add(refused)
    async with _bus(broker, max_in_flight=1) as bus:
        async with asyncio.timeout(5):
            await bus.wait_online()
        bus.publish_payload(refused, encode(CommandResult(command_id="no", ok=True)))
        bus.publish_payload(fine, encode(CommandResult(command_id="yes", ok=True)))
        # the window of one is full until the refusal; then the next one goes out
        await until(lambda: len(broker.published) == 2 and bus.status.in_flight == 0)
        assert bus.status.online
    assert _payloads(broker) == ["no", "yes"]


@pytest.mark.parametrize(
    ("topic", "message", "qos"),
    [
        (topics.agent_events("1"), CommandResult(command_id="s", ok=True), 1),
        # QoS 0: one lost with the connection is made good by this resend.
        (topics.colleague_state("1"), ColleagueState(agent_id="1", state=AgentState.READY), 0),
    ],
)
async def test_retained_state_is_sent_again_after_reconnecting(
    topic: str, message: Message, qos: int
) -> None:
    broker = FakeBroker()
    async with _bus(broker) as bus:
        async with asyncio.timeout(5):
            await bus.wait_online()
        await bus.publish(topic, message, retain=True)
        await until(lambda: len(broker.published) == 1)
        assert (broker.published[0].qos, broker.published[0].retain) == (qos, True)
        broker.crash()
        await until(lambda: not bus.status.online)
        broker.up.set()
        async with asyncio.timeout(5):
            await bus.wait_online()
        await until(lambda: len(broker.published) == 2)
    assert broker.published[0] == broker.published[1]


async def test_console_announces_presence_and_says_goodbye() -> None:
    broker = FakeBroker()
    async with _bus(broker, presence="1001") as bus:
        async with asyncio.timeout(5):
            await bus.wait_online()
        await until(lambda: len(broker.published) == 1)
    first, last = (decode(i.payload) for i in (broker.published[0], broker.published[-1]))
    assert isinstance(first, AgentPresence)
    assert first.online
    assert isinstance(last, AgentPresence)
    assert not last.online
    assert broker.published[0].retain
    assert broker.published[0].topic == topics.agent_presence("1001")


async def test_refused_subscription_raises_when_online() -> None:
    broker = FakeBroker()
    broker.refuse.add(topics.agent_events("1001"))
    async with _bus(broker) as bus:
        async with asyncio.timeout(5):
            await bus.wait_online()
        with pytest.raises(BrokerError, match="Not authorized"):
            async with bus.subscribe(topics.agent_events("1001")):
                pass


async def test_refused_subscription_made_offline_fails_its_iterator() -> None:
    broker = FakeBroker()
    broker.refuse.add(topics.agent_events("1001"))
    broker.up.clear()
    async with _bus(broker) as bus, bus.subscribe(topics.agent_events("1001")) as sub:
        broker.up.set()
        with pytest.raises(BrokerError, match="Not authorized"):
            await asyncio.wait_for(anext(aiter(sub)), 5)


async def test_bad_payload_is_dropped_and_the_rest_delivered() -> None:
    broker = FakeBroker()
    async with _bus(broker) as bus:
        async with asyncio.timeout(5):
            await bus.wait_online()
        async with bus.subscribe("cti/v1/agents/+/events") as sub:
            link = broker.links[0]
            ident = link.subscribed["cti/v1/agents/+/events"]
            link.incoming.put_nowait(("cti/v1/agents/1/events", b"{not json", (ident,)))
            await bus.publish(topics.agent_events("1"), CommandResult(command_id="ok", ok=True))
            _, message = await anext(aiter(sub))
    assert message == CommandResult(command_id="ok", ok=True)
    assert bus.dropped == 1


async def test_offline_outbox_overflow_drops_the_oldest() -> None:
    broker = FakeBroker()
    broker.up.clear()
    async with _bus(broker, offline_limit=2) as bus:
        for n in range(3):
            await bus.publish(topics.agent_commands("1"), Login(agent_id="1", command_id=f"c{n}"))
        assert bus.status.dropped == 1
        assert bus.status.queued == 2
        broker.up.set()
        async with asyncio.timeout(5):
            await bus.wait_online()
        await until(lambda: len(broker.published) == 2)
    assert _payloads(broker) == ["c1", "c2"]


async def test_open_bus_in_memory_and_unreachable_broker() -> None:
    async with open_bus(BrokerSettings(), "tool") as bus:
        assert isinstance(bus, InMemoryBus)
    settings = BrokerSettings(url="mqtt://127.0.0.1:1", reconnect_min_s=0.05, reconnect_max_s=0.1)
    with pytest.raises(BrokerError, match="cannot reach the broker"):
        async with open_bus(settings, "tool", wait_online_s=0.5):
            pass


async def test_messages_follow_subscriptions_that_come_and_go_after_the_first() -> None:
    # The subscriptions a message's identifiers name are kept between messages; one that
    # comes (same pattern) or goes must be seen by the next message.
    broker = FakeBroker()
    topic = topics.agent_events("1")
    async with _bus(broker) as bus:
        async with asyncio.timeout(5):
            await bus.wait_online()
        async with bus.subscribe(topic) as first:
            messages = aiter(first)
            await bus.publish(topic, CommandResult(command_id="a", ok=True))
            assert (await anext(messages))[1] == CommandResult(command_id="a", ok=True)
            async with bus.subscribe(topic) as second:
                await bus.publish(topic, CommandResult(command_id="b", ok=True))
                async with asyncio.timeout(5):
                    got = await anext(aiter(second))
                assert got[1] == CommandResult(command_id="b", ok=True)
                assert (await anext(messages))[1] == CommandResult(command_id="b", ok=True)
            await bus.publish(topic, CommandResult(command_id="c", ok=True))
            assert (await anext(messages))[1] == CommandResult(command_id="c", ok=True)
            assert second.queue.empty()


async def test_a_payload_that_does_not_decode_is_logged_with_its_topic(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The log line (and a command's refusal) names the topic, escaped, though the bus
    decodes a message without it (issue 23)."""
    broker = FakeBroker()
    async with _bus(broker) as bus:
        async with asyncio.timeout(5):
            await bus.wait_online()
        async with bus.subscribe("cti/v1/agents/+/events") as sub:
            ident = broker.links[0].subscribed["cti/v1/agents/+/events"]
            with caplog.at_level(logging.ERROR, logger="cti.bus.mqtt"):
                topic = "cti/v1/agents/b\u202e1/events"
                broker.links[0].incoming.put_nowait((topic, b'{"type": "nope"}', (ident,)))
                await bus.publish(topics.agent_events("1"), CommandResult(command_id="a", ok=True))
                await anext(aiter(sub))
    assert bus.dropped == 1
    assert "bad message on cti/v1/agents/b\\u202e1/events: " in caplog.text
