"""paho's Properties with shared tables (cti/bus/paho_tables.py): the same tables as
paho's own constructor, values still per instance, still checked, and packed and
unpacked as before; paho's DEBUG lines dropped only where its logger drops them."""

from __future__ import annotations

import logging

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt import MQTTException
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cti.bus.paho_tables import quiet_debug_lines, share_property_tables


def _paho_made(packet_type: int) -> Properties:
    made = Properties.__new__(Properties)
    init = getattr(Properties.__init__, "__wrapped__", Properties.__init__)
    init(made, packet_type)
    return made


def test_shared_tables_are_paho_s_own() -> None:
    assert share_property_tables()
    assert share_property_tables()  # once per process; again is harmless
    for packet_type in (PacketTypes.PUBLISH, PacketTypes.PUBACK, PacketTypes.SUBSCRIBE):
        shared, own = Properties(packet_type), _paho_made(packet_type)  # type: ignore[no-untyped-call]
        assert shared is not own
        assert vars(shared) == vars(own)
    first, second = Properties(PacketTypes.PUBACK), Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    assert first.names is second.names  # built once, not per packet
    assert first.properties is second.properties


def test_values_stay_per_instance_and_checked() -> None:
    share_property_tables()
    one = Properties(PacketTypes.SUBSCRIBE)  # type: ignore[no-untyped-call]
    other = Properties(PacketTypes.SUBSCRIBE)  # type: ignore[no-untyped-call]
    one.SubscriptionIdentifier = 7
    assert vars(one)["SubscriptionIdentifier"] == [7]
    assert "SubscriptionIdentifier" not in vars(other)
    with pytest.raises(MQTTException, match="does not apply"):
        Properties(PacketTypes.PUBACK).SessionExpiryInterval = 10  # type: ignore[no-untyped-call]


def test_pack_and_unpack_as_before() -> None:
    share_property_tables()
    sent = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    sent.SubscriptionIdentifier = 300
    sent.UserProperty = ("k", "v")
    wire = sent.pack()  # type: ignore[no-untyped-call]
    assert wire == _packed_by_paho()
    got = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    got.unpack(wire)  # type: ignore[no-untyped-call]
    assert vars(got)["SubscriptionIdentifier"] == [300]
    assert vars(got)["UserProperty"] == [("k", "v")]


def _packed_by_paho() -> bytes:
    own = _paho_made(PacketTypes.PUBLISH)
    own.SubscriptionIdentifier = 300
    own.UserProperty = ("k", "v")
    packed: bytes = own.pack()  # type: ignore[no-untyped-call]
    return packed


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.levelno, record.getMessage()))


@pytest.mark.parametrize("level", [logging.INFO, logging.DEBUG])
def test_debug_lines_dropped_only_below_the_logger_s_level(level: int) -> None:
    logger = logging.getLogger(f"test-paho-lines-{level}")
    logger.setLevel(level)
    lines = _Lines()
    logger.addHandler(lines)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.enable_logger(logger)
    assert quiet_debug_lines(client) is (level > logging.DEBUG)
    client._easy_log(mqtt.MQTT_LOG_DEBUG, "Sending PUBLISH (m%d)", 1)
    client._easy_log(mqtt.MQTT_LOG_WARNING, "failed %s", "x")
    client._easy_log(mqtt.MQTT_LOG_ERR, "Caught exception in on_publish: %s", "y")
    debug = [(logging.DEBUG, "Sending PUBLISH (m1)")] if level == logging.DEBUG else []
    assert lines.lines == [
        *debug,
        (logging.WARNING, "failed x"),
        (logging.ERROR, "Caught exception in on_publish: y"),
    ]


def test_debug_lines_kept_for_an_on_log_callback() -> None:
    seen: list[str] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.enable_logger(logging.getLogger("test-paho-on-log"))
    client.on_log = lambda _c, _u, _level, buf: seen.append(buf)
    assert not quiet_debug_lines(client)
    client._easy_log(mqtt.MQTT_LOG_DEBUG, "Received PUBACK (m%d)", 2)
    assert seen == ["Received PUBACK (m2)"]


def test_identifiers_and_clear_as_paho_s_own() -> None:
    share_property_tables()
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    own_ident = Properties.getIdentFromName.__wrapped__  # type: ignore[attr-defined]
    for name in [*props.names, "Subscription Identifier", "NoSuchProperty", ""]:
        folded = name.replace(" ", "")
        assert props.getIdentFromName(folded) == own_ident(props, folded)  # type: ignore[no-untyped-call]
    props.SubscriptionIdentifier = 3
    props.UserProperty = ("k", "v")
    props.clear()  # type: ignore[no-untyped-call]
    assert vars(props) == vars(Properties(PacketTypes.PUBLISH))  # type: ignore[no-untyped-call]
    assert props.isEmpty()  # type: ignore[no-untyped-call]


def test_unpack_again_replaces_what_was_read() -> None:
    share_property_tables()
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.unpack(_packed_by_paho())  # type: ignore[no-untyped-call]
    other = _paho_made(PacketTypes.PUBLISH)
    other.MessageExpiryInterval = 9
    props.unpack(other.pack())  # type: ignore[no-untyped-call]
    assert vars(props)["MessageExpiryInterval"] == 9
    assert "SubscriptionIdentifier" not in vars(props)
    assert "UserProperty" not in vars(props)
