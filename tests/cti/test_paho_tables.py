"""paho's Properties with shared tables (cti/bus/paho_tables.py): the same tables as
paho's own constructor, values still per instance, still checked, and packed and
unpacked as before."""

from __future__ import annotations

import pytest
from paho.mqtt import MQTTException
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cti.bus.paho_tables import share_property_tables


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
