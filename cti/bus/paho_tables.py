"""paho's MQTT v5 ``Properties`` built without rebuilding its tables each time.

paho makes a ``Properties`` object for every PUBACK and every PUBLISH it reads, and its
constructor rebuilds three lookup tables (a list, a dict of 27 names and one of 27
entries computed with ``list.index``): about 60 Python calls per packet, a seventh of
the engine's Python work per call at the broker (issue 23). The tables are the same for
every instance and paho only reads them, so :func:`share_property_tables` makes the
constructor take them from one instance made once, and the two methods that fold all
27 names for each property read (``getIdentFromName``, ``clear``: about 100 Python calls
per PUBLISH read) use a dict made from them.

paho also hands each packet's DEBUG line ("Sending PUBLISH ...", "Received PUBACK ...",
about 30 a call) to its logger, which drops it below the level: about five Python calls
a line. :func:`quiet_debug_lines` drops them at once when that logger would (paho's own
``disable_logger`` would drop its warnings and errors too).
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

    # A name's identifier from a dict, not by folding the 27 names each time (paho folds
    # them twice per property read, and clears all 27 before reading a packet's).
    idents: dict[str, int] = {name.replace(" ", ""): i for name, i in model.names.items()}

    def getIdentFromName(self: Any, compressedName: str) -> int:  # noqa: N802, N803
        return idents.get(compressedName, -1)

    def clear(self: Any) -> None:
        for name in [name for name in vars(self) if name in idents]:
            delattr(self, name)

    __init__.__wrapped__ = original  # type: ignore[attr-defined]
    getIdentFromName.__wrapped__ = Properties.getIdentFromName  # type: ignore[attr-defined]
    clear.__wrapped__ = Properties.clear  # type: ignore[attr-defined]
    Properties.__init__ = __init__  # type: ignore[method-assign]
    Properties.getIdentFromName = getIdentFromName  # type: ignore[method-assign]
    Properties.clear = clear  # type: ignore[method-assign]
    _shared = True
    return True


def quiet_debug_lines(client: Any) -> bool:
    """Make paho ``client`` drop its DEBUG lines at once while its logger is not enabled
    for DEBUG when the connection opens (set the ``mqtt`` logger to DEBUG before
    connecting to see them); its other lines go on as before. False (and the client left
    as it is) if it has an ``on_log`` callback or no logger, or is not the paho expected.
    """
    from paho.mqtt.client import MQTT_LOG_DEBUG

    logger = getattr(client, "_logger", None)
    easy_log = getattr(client, "_easy_log", None)
    if easy_log is None or getattr(client, "on_log", True) is not None:
        log.warning("paho's client is not as expected: its DEBUG lines are kept")
        return False
    if not isinstance(logger, logging.Logger) or logger.isEnabledFor(logging.DEBUG):
        return False

    def _easy_log(level: int, fmt: str, *args: Any) -> None:
        if level != MQTT_LOG_DEBUG:
            easy_log(level, fmt, *args)

    client._easy_log = _easy_log
    return True
