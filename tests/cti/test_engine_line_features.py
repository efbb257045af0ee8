"""The line features an offer carries are kept one of each (issue 23): each is what the
call's line can do, whatever the line, and a change of lines shows."""

from __future__ import annotations

from cti.engine.line_book import LineBook
from cti.protocol import LineFeatures
from telephony_adapters.base import LineCapabilities
from telephony_adapters.sim import SimTrunk


def test_each_call_gets_its_own_lines_features() -> None:
    plain = SimTrunk("plain", capabilities=LineCapabilities(can_hold=True, can_conference=True))
    full = SimTrunk("full")
    book = LineBook([plain, full], None)
    book["c1"], book["c2"] = "plain", "full"
    assert book.features("c1") == LineFeatures(hold=True, conference=True, dial=True)
    assert book.features("c2") == LineFeatures(hold=True, mute=True, conference=True, dial=True)
    assert book.features("c3") is None  # no line carries it
    alone = LineBook([plain], None)
    alone["c1"] = "plain"
    assert alone.features("c1") == LineFeatures(hold=True, conference=True, dial=False)
    no_hold = SimTrunk("x", capabilities=LineCapabilities(can_conference=True, can_mute=True))
    other = LineBook([no_hold], None)
    other["c1"] = "x"
    assert other.features("c1") == LineFeatures(mute=True)  # no conference without hold
    assert book.features("c1") is book.features("c1")  # kept, not made again
