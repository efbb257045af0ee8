"""Call flows in the discrete-event day (simulators/flow_calls.py) and the comparison
with and without virtual hold (simulators/compare.py, ``cti simulate
--compare-virtual-hold``): keys route their share, menu time is no queue wait, menu
hang-ups are no abandons, the offer comes at the announcements, both variants run on
the same callers, and virtual hold lowers abandons on the shipped scenario."""

from __future__ import annotations

import math
import statistics
import tomllib
from pathlib import Path
from typing import Any

import pytest

from cti.app.cli import main
from cti.errors import SimulationError
from simulators.compare import compare_virtual_hold, format_comparison, line_wait
from simulators.des import run_day
from simulators.report import format_text, simulate, to_json
from simulators.scenario import SCENARIO_DIR, Scenario, load_scenario
from telephony_adapters.media.prompt_files import PromptFiles

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

MENU = """
name = "menu"
hours = 4.0
seed = 3
replications = 2

[caller]
first_announce_s = 30.0
announce_every_s = 60.0
callback_offer = false

[[flows]]
dnis = ["100"]
language = "en"
menu = "main"
queue = "sales"

[[flows.menus]]
name = "main"
prompt = "menu_main"
keys = { "1" = "queue:sales", "2" = "queue:support", "9" = "voicemail:support" }
timeout_s = 5.0
max_retries = 2

[[queues]]
name = "sales"

[[queues]]
name = "support"

[[traffic]]
flow = "100"
rate_per_hour = 600.0
handle = { kind = "exponential", mean_s = 60.0 }
keys.main = { "1" = 0.6, "2" = 0.25, "9" = 0.05, hang_up = 0.05 }

[[agents]]
count = 40
queues = { sales = 0, support = 0 }
"""


def scenario(changes: dict[str, Any] | None = None) -> Scenario:
    """MENU with ``changes`` (dotted keys: ``traffic.0.keys``)."""
    data = tomllib.loads(MENU)
    for key, value in (changes or {}).items():
        *path, last = key.split(".")
        node = data
        for part in path:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[last] = value
    return Scenario.model_validate(data)


def test_keys_route_their_share_and_menu_hang_ups_are_no_abandons() -> None:
    sc = scenario()
    day = run_day(sc, 1)
    counts = day.flows
    assert counts is not None
    n = counts.callers
    assert n > 2000
    # Each play of the menu: 1 (0.6), 2 (0.25), 9 (0.05), hang up (0.05), nothing
    # (0.05: the menu again, up to 3 plays, then the flow's queue, sales).
    plays = 1 + 0.05 + 0.05**2
    expected = {
        "sales": 0.6 * plays + 0.05**3,
        "support": 0.25 * plays,
        "messages": 0.05 * plays,
        "hang_ups": 0.05 * plays,
    }
    seen = {
        "sales": counts.queued.get("sales", 0) / n,
        "support": counts.queued.get("support", 0) / n,
        "messages": counts.messages / n,
        "hang_ups": counts.menu_hang_ups / n,
    }
    for name, p in expected.items():
        sd = math.sqrt(p * (1 - p) / n)
        assert abs(seen[name] - p) < 4 * sd, (name, seen[name], p)
    # Only the queued callers reach the router: its records are theirs, none abandoned
    # (no patience); the menu's hang-ups and the messages have no caller record.
    assert len(day.records) == sum(counts.queued.values())
    assert all(r.outcome == "answered" for r in day.records)
    assert counts.message_callbacks  # each message became a callback task...
    assert len(counts.message_callbacks) == counts.messages
    assert all(r.kind == "callback" for r in counts.message_callbacks)  # ...kept apart


def test_menu_time_is_no_queue_wait() -> None:
    """40 agents for 600 calls/h of 60 s: nobody waits for an agent, though each caller
    spends the greeting and the 9 s menu (and more) in the flow first."""
    prompts = PromptFiles()
    menu_s = prompts.length("en", "greeting") + prompts.length("en", "menu_main")
    assert menu_s > 10
    day = run_day(scenario(), 2)
    assert max(r.wait_s for r in day.records) == 0.0
    report = simulate(scenario(), 1, 2)
    assert report.overall.asa_s.mean == 0.0
    assert report.overall.abandon_rate.mean == 0.0


def test_patience_counts_queue_time_only() -> None:
    """No agent during the day: every queued caller abandons after its patience (mean
    30 s) counted from the queue; with the menu's 15 s counted the mean would be 45."""
    sc = scenario(
        {
            "agents": [
                {
                    "count": 1,
                    "queues": {"sales": 0, "support": 0},
                    "shifts": [{"start": "20:00", "end": "21:00"}],
                }
            ],
            "traffic.0.patience": {"kind": "exponential", "mean_s": 30.0},
            "traffic.0.keys": {"main": {"1": 1.0}},
        }
    )
    day = run_day(sc, 4)
    waits = [r.wait_s for r in day.records if r.arrived_at < sc.duration_s]
    assert len(waits) > 1500
    assert all(r.outcome == "abandoned" for r in day.records)
    assert abs(statistics.fmean(waits) - 30.0) < 4 * 30.0 / math.sqrt(len(waits))


def test_the_callback_is_offered_at_the_announcements() -> None:
    """Everyone takes the first offer: each callback was asked after the first
    announcement (30 s after joining the queue), the dialogue's keys pressed."""
    sc = scenario(
        {
            "hours": 2.0,
            "caller.callback_offer": True,
            "agents": [{"count": 8, "queues": {"sales": 0, "support": 0}}],
            "traffic.0.callback_take_up": 1.0,
            "traffic.0.patience": {"kind": "exponential", "mean_s": 600.0},
        }
    )
    day = run_day(sc, 5)
    assert day.flows is not None
    callbacks = [r for r in day.records if r.callback_requested_at is not None]
    assert len(callbacks) > 100
    assert day.flows.callbacks_asked == len(callbacks)
    announce = sc.caller.first_announce_s
    assert all(line_wait(r) > announce for r in callbacks)
    # the offer plays, the key, the number read back, 1, the confirmation: all on the line
    assert min(line_wait(r) for r in callbacks) > announce + 15
    assert all(r.outcome == "answered" and r.kind == "callback" for r in callbacks)


def test_a_day_with_flows_is_reproducible() -> None:
    sc = scenario()
    a, b = run_day(sc, 9), run_day(sc, 9)
    assert [(r.call_id, r.queue, r.arrived_at, r.ended_at) for r in a.records] == [
        (r.call_id, r.queue, r.arrived_at, r.ended_at) for r in b.records
    ]
    assert a.flows == b.flows


def test_report_shows_the_flows() -> None:
    report = simulate(scenario(), 2, 1)
    assert report.flows is not None
    text = format_text(report)
    assert "hung up in the menu (no abandon)" in text
    assert "put in queue support" in text
    data = to_json(report)
    assert data["flows"]["messages"]["mean"] > 0
    plain = simulate(load_scenario(SCENARIO_DIR / "reference_erlang_c.toml"), 1, 1)
    assert plain.flows is None
    assert "call flows" not in format_text(plain)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"traffic.0.queue": "sales"}, "either queue or flow"),
        ({"traffic.0.flow": "999"}, "no dialled number"),
        ({"traffic.0.keys": {"other": {"1": 0.5}}}, "menu 'other'"),
        ({"traffic.0.keys": {"main": {"1": 0.7, "2": 0.4}}}, "more than 1"),
        ({"traffic.0.keys": {"main": {"x": 0.1}}}, "no phone key"),
        ({"traffic.0.callback": {"offer_after_s": 30, "take_up": 0.1}}, "callback_take_up"),
        ({"flows.0.queue": "nowhere"}, "nowhere"),
    ],
)
def test_bad_flow_traffic_is_named(change: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        scenario(change)


def test_a_bad_flow_file_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(MENU.replace('flow = "100"', 'flow = "101"'))
    with pytest.raises(SimulationError, match=r"(?s)bad\.toml.*no dialled number"):
        load_scenario(bad)


@pytest.mark.simulation
def test_virtual_hold_lowers_abandons_on_the_shipped_scenario() -> None:
    sc = load_scenario(SCENARIO_DIR / "virtual_hold.toml")
    c = compare_virtual_hold(sc, 4, sc.seed)
    without, with_ = c.without, c.with_
    assert without.report.seeds == with_.report.seeds
    # the same callers: arrivals, menu keys and messages are the flows' own streams
    assert [x.offered for x in without.extras] == [x.offered for x in with_.extras]
    assert [x.messages for x in without.extras] == [x.messages for x in with_.extras]
    assert sum(x.callbacks for x in without.extras) == 0
    assert sum(x.callbacks for x in with_.extras) > 0
    fewer = [a.abandoned - b.abandoned for a, b in zip(without.extras, with_.extras, strict=True)]
    assert sum(fewer) > 0.1 * sum(a.abandoned for a in without.extras), fewer
    table = format_comparison(c)
    assert "without virtual hold" in table
    assert "longest wait on the line" in table


def test_cli_compare_prints_one_table_and_writes_the_chart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "menu.toml"
    text = MENU.replace("callback_offer = false", "callback_offer = true")
    path.write_text(text.replace("hours = 4.0", "hours = 1.0"))
    png = tmp_path / "chart.png"
    rc = main(["simulate", str(path), "--compare-virtual-hold", "--replications", "2",
               "--plot", str(png)])  # fmt: skip
    out, _ = capsys.readouterr()
    assert rc == 0
    lines = out.splitlines()
    head = next(line for line in lines if "without virtual hold" in line)
    assert "with virtual hold" in head.replace("without virtual hold", "")
    for figure in ("abandon rate", "longest wait on the line", "callbacks taken",
                   "menu hang-ups (no abandon)", "service level", "ASA"):  # fmt: skip
        assert any(line.startswith(figure) for line in lines), figure
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    assert f"chart: {png}" in out


def test_cli_compare_refuses_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "menu.toml"
    path.write_text(MENU)
    rc = main(["simulate", str(path), "--compare-virtual-hold", "--json"])
    _, err = capsys.readouterr()
    assert rc == 2
    assert "--compare-virtual-hold" in err
