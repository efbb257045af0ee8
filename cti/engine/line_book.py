"""Which line carries each call, and what the engine may ask of it.

With a journal, each new entry (``book[call] = line``) is also kept there, so that
after a restart the engine knows which line to ask for which call (see
:mod:`cti.engine.recovery`)."""

from __future__ import annotations

from collections.abc import Sequence

from cti.errors import CtiError
from cti.protocol import LineFeatures
from cti.store.journal import Journal
from telephony_adapters.base import TelephonyAdapter

_FEATURES: dict[tuple[bool, bool, bool, bool], LineFeatures] = {}
"""The line features sent with offers, by what they say (issue 23)."""


class LineBook(dict[str, str]):
    """Call id -> the name of the line that carries it; ``lines`` by name."""

    def __init__(self, lines: Sequence[TelephonyAdapter], journal: Journal | None) -> None:
        super().__init__()
        self.lines = {line.name: line for line in lines}
        self._journal = journal

    def __setitem__(self, call_id: str, line: str) -> None:
        if self._journal is not None and self.get(call_id) != line:
            self._journal.remember_line(call_id, line)
        super().__setitem__(call_id, line)

    def restore(self, call_id: str, line: str) -> None:
        """An entry read back from the journal: kept there already."""
        super().__setitem__(call_id, line)

    def line_for(self, call_id: str) -> TelephonyAdapter:
        """The line carrying ``call_id``, or CtiError."""
        name = self.get(call_id)
        if name is None or name not in self.lines:
            raise CtiError(f"no line carries call {call_id!r}")
        return self.lines[name]

    def dialling_line(self, call_id: str) -> TelephonyAdapter:
        """The line to call back on: the one the call came in on if it can dial."""
        name = self.get(call_id)
        if name in self.lines and self.lines[name].capabilities.can_dial:
            return self.lines[name]
        for line in self.lines.values():
            if line.capabilities.can_dial:
                return line
        raise CtiError(f"no line can dial out to call back {call_id!r}")

    def features(self, call_id: str) -> LineFeatures | None:
        """What the desk may offer on the call's line (None: no line carries it)."""
        line = self.lines.get(self.get(call_id, ""))
        if line is None:
            return None
        caps = line.capabilities
        key = (
            caps.can_hold,
            caps.can_mute,
            caps.can_conference and caps.can_hold,
            any(other.capabilities.can_dial for other in self.lines.values()),
        )
        features = _FEATURES.get(key)
        if features is None:  # frozen: one of each (at most 16), not one validated an offer
            hold, mute, conference, dial = key
            features = _FEATURES[key] = LineFeatures(
                hold=hold, mute=mute, conference=conference, dial=dial
            )
        return features
