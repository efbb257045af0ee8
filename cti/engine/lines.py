"""From ``[[lines]]`` tables to telephony adapters.

:func:`build_line` turns one line's settings (:data:`cti.config.LineSettings`) into
the adapter that serves it; :func:`build_lines` does every line of a configuration.
The adapters are not started: the engine service starts and stops them
(``EngineService.run``). A modem line opens its port in the background and keeps
trying with backoff, so a modem that is unplugged at start-up does not stop the
engine.

Adapters are imported only when a line of their kind is configured, so a center with
no modem does not need the serial libraries to load.
"""

from __future__ import annotations

from collections.abc import Sequence

from cti.config import (
    Config,
    LineSettings,
    ModemLineSettings,
    SimLineSettings,
    SipLineSettings,
)
from cti.errors import ConfigError
from telephony_adapters.base import TelephonyAdapter


def build_line(settings: LineSettings) -> TelephonyAdapter:
    """The adapter for one ``[[lines]]`` table.

    ``kind = "sim"``: a :class:`~telephony_adapters.sim.SimTrunk` named ``name``.
    ``kind = "modem"``: a :class:`~telephony_adapters.modem.line.ModemLine` on
    ``port`` at ``baud``, with ``dnis``, the extra ``init`` commands and the ring,
    answer and dial timeouts.
    ``kind = "sip"``: a :class:`~telephony_adapters.sipline.line.SipLine` (SIP over
    UDP on ``bind_host:bind_port``; see docs/sip.md).
    Raises :class:`~cti.errors.ConfigError` naming the line for a kind that cannot be
    built here.
    """
    if isinstance(settings, SimLineSettings):
        from telephony_adapters.sim import SimTrunk

        return SimTrunk(settings.name)
    if isinstance(settings, ModemLineSettings):
        from telephony_adapters.modem.line import ModemLine

        return ModemLine.from_settings(settings)
    if isinstance(settings, SipLineSettings):
        from telephony_adapters.sipline.line import SipLine

        return SipLine(settings)
    raise ConfigError(
        f"line {settings.name!r}: lines of kind {settings.kind!r} cannot be built yet"
        " (known: sim, modem, sip)"
    )


def build_lines(config: Config | Sequence[LineSettings]) -> list[TelephonyAdapter]:
    """Every line of ``config`` (or of a list of line settings), in order."""
    lines = config.lines if isinstance(config, Config) else config
    return [build_line(settings) for settings in lines]
