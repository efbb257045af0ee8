"""benchmarks/bench_media.py runs (``--quick``: 10 bridged, recorded calls, RTP from its
generator process) and prints the figures issue 19 asks for; no time is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
FIELDS = ("calls", "cpu_per_call_ms_per_s", "added_latency_p99_ms", "lost_packets")


def test_quick_run_prints_the_figures_of_relay_and_baseline() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_media.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,  # a safety net only
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, done.stdout
    (line,) = lines
    for name in FIELDS:
        assert name in line, name
        assert "baseline_" + name in line or name == "calls", name
    assert line["calls"] == 10
    # 10 calls x 2 legs x 50 packets/s for the 1 s measured, all back through the relay
    # (--quick waits up to 10 s for the last ones: a safety net, not a time limit)
    assert line["packets_sent"] >= 900
    assert line["lost_packets"] == 0
    assert line["baseline_lost_packets"] == 0
    assert line["relay_dropped"] == 0
    # every call recorded: at least 1 s of 16-bit stereo each, no file failed
    assert line["recording_errors"] == 0
    assert line["recorded_bytes"] >= 10 * 32_000
    assert line["cpu_per_call_ms_per_s"] > 0
    # the loop's stalls were probed (a 1 ms timer through the measured second)
    assert line["loop_lag_max_ms"] >= line["loop_lag_p99_ms"] >= 0
    assert len(line["gc_collections"]) == 3
