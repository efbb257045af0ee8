"""The domain error hierarchy.

Every error a user can see is a :class:`CtiError`. Its message names the bad input,
where it was, and what would have been accepted.
"""

from __future__ import annotations


class CtiError(Exception):
    """Base of every CTI Desk error."""


class ConfigError(CtiError):
    """A configuration file or value is wrong."""


class StoreError(CtiError):
    """The customer and record store failed or was given bad data."""


class ProtocolError(CtiError):
    """A bus message could not be decoded or does not fit the wire protocol."""


class RoutingError(CtiError):
    """The router was asked to do something its state does not allow."""


class TelephonyError(CtiError):
    """A telephony line failed or was asked for something it cannot do."""


class ScriptError(CtiError):
    """A call script is malformed or was driven wrongly."""


class SimulationError(CtiError):
    """A simulation scenario or run is wrong."""
