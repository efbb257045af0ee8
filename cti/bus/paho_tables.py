"""paho's MQTT v5 ``Properties`` built without rebuilding its tables each time.

paho makes a ``Properties`` object for every PUBACK and every PUBLISH it reads, and its
constructor rebuilds three lookup tables (a list, a dict of 27 names and one of 27
entries computed with ``list.index``): about 60 Python calls per packet, a seventh of
the engine's Python work per call at the broker (issue 23). The tables are the same for
every instance and paho only reads them, so :func:`share_property_tables` makes the
constructor take them from one instance made once. Nothing else of paho changes.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

_shared = False


def share_property_tables() -> bool:
    """Make paho's ``Properties()`` reuse one set of tables (once per process); False
    (and paho left as it is) if its ``Properties`` is not the one this was written for."""
    global _shared
    if _shared:
        return True
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    original = Properties.__init__
    model = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    tables = {name: getattr(model, name, None) for name in ("types", "names", "properties")}
    if any(value is None for value in tables.values()) or set(vars(model)) != {
        "packetType",
        *tables,
    }:
        log.warning("paho's Properties is not as expected: its tables are not shared")
        return False
    types, names, properties = tables["types"], tables["names"], tables["properties"]

    def __init__(self: Any, packetType: int) -> None:  # noqa: N807, N803 (paho's names)
        object.__setattr__(self, "packetType", packetType)
        object.__setattr__(self, "types", types)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "properties", properties)

    __init__.__wrapped__ = original  # type: ignore[attr-defined]
    Properties.__init__ = __init__  # type: ignore[method-assign]
    _shared = True
    return True
