"""From an audio plan to what each media leg hears (sans-I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field

from telephony_adapters.base import CALLER, AudioPlan, Ring
from telephony_adapters.media.bridge import FrameSource, Side
from telephony_adapters.media.wiring import RECORDING_TAP, Wiring, apply, tap_parts, wiring

UP = {CALLER: "c", "1001": "c~1001", "1002": "c~1002"}


def test_a_bridge_relays_caller_and_agent_and_records_both_sides() -> None:
    plan = AudioPlan(rooms=(frozenset({CALLER, "1001"}),), record=True)
    w = wiring(plan, UP)
    assert w.pairs == (("c", "c~1001"),)
    assert w.recorded == {"c": "caller", "c~1001": "agent"}
    assert not w.music


def test_hold_plays_music_to_the_caller_and_stops_the_recording() -> None:
    plan = AudioPlan(rooms=(frozenset({"1001"}),), music=frozenset({CALLER}), record=True)
    w = wiring(plan, UP)
    assert w.music == {"c"}
    assert w.pairs == ()
    assert w.recorded == {}


def test_a_consultation_pairs_the_agents_and_a_conference_mixes_three() -> None:
    consult = AudioPlan(rooms=(frozenset({"1001", "1002"}),), music=frozenset({CALLER}))
    assert wiring(consult, UP).pairs == (("c~1001", "c~1002"),)
    conference = AudioPlan(rooms=(frozenset({CALLER, "1001", "1002"}),), record=True)
    w = wiring(conference, UP)
    assert w.mixes == (("c", "c~1001", "c~1002"),)
    assert w.recorded == {"c": "caller", "c~1001": "agent", "c~1002": "agent"}


def test_parties_without_a_leg_up_are_left_out() -> None:
    plan = AudioPlan(ring=(Ring("1002"),), rooms=(frozenset({CALLER, "1001"}),), record=True)
    w = wiring(plan, {CALLER: "c"})
    assert w.legs == {"c"}
    assert w.pairs == ()
    assert w.recorded == {}  # nobody to record with


@dataclass
class _Media:
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def connect(self, a: str, b: str) -> None:
        self.calls.append(("connect", a, b))

    def mix(self, leg_ids: list[str]) -> None:
        self.calls.append(("mix", *leg_ids))

    def play(self, leg_id: str, source: FrameSource) -> None:
        self.calls.append(("play", leg_id))

    def silence(self, leg_id: str) -> None:
        self.calls.append(("silence", leg_id))

    def mute(self, leg_id: str, muted: bool) -> None:
        if muted:
            self.calls.append(("mute", leg_id))

    def tap(self, leg_id: str, tap: str, side: Side) -> None:
        assert tap_parts(tap) == (RECORDING_TAP, leg_id)
        self.calls.append(("tap", leg_id, side))

    def untap(self, leg_id: str, tap: str) -> None:
        self.calls.append(("untap", leg_id))


class _Quiet:
    def next_frame(self, now: float) -> bytes | None:
        return bytes(320)


def test_apply_changes_only_what_changed_and_music_keeps_its_place() -> None:
    media = _Media()
    talking = wiring(AudioPlan(rooms=(frozenset({CALLER, "1001"}),), record=True), UP)
    held = wiring(
        AudioPlan(rooms=(frozenset({"1001"}),), music=frozenset({CALLER}), record=True,
                  muted=frozenset({"1001"})), UP)  # fmt: skip
    apply(media, talking, None, lambda leg: _Quiet())
    assert ("connect", "c", "c~1001") in media.calls
    assert ("tap", "c", "caller") in media.calls
    media.calls.clear()
    apply(media, held, talking, lambda leg: _Quiet())
    assert ("play", "c") in media.calls
    assert ("silence", "c~1001") in media.calls
    assert ("mute", "c~1001") in media.calls
    assert {("untap", "c"), ("untap", "c~1001")} <= set(media.calls)
    media.calls.clear()
    apply(media, held, held, lambda leg: _Quiet())
    assert ("play", "c") not in media.calls  # the music goes on where it was
    assert Wiring().legs == frozenset()


class _Tapping(_Media):
    def tap(self, leg_id: str, tap: str, side: Side) -> None:
        self.calls.append(("tap", leg_id, tap))

    def untap(self, leg_id: str, tap: str) -> None:
        self.calls.append(("untap", leg_id, tap))


def test_each_call_taps_its_legs_under_its_own_id() -> None:
    media = _Tapping()
    talking = wiring(AudioPlan(rooms=(frozenset({CALLER, "1001"}),), record=True), UP)
    apply(media, talking, None, lambda leg: _Quiet(), tap="c")
    assert {("tap", "c", "c|c"), ("tap", "c~1001", "c|c~1001")} <= set(media.calls)
    apply(media, wiring(AudioPlan(rooms=(frozenset({CALLER, "1001"}),)), UP), talking,
          lambda leg: _Quiet(), tap="c")  # fmt: skip
    assert ("untap", "c", "c|c") in media.calls
    assert tap_parts("c|c~1001") == ("c", "c~1001")
