"""Predictive against progressive dialing: agent talk occupancy and the abandon rate.

**The case** is issue 11's campaign: 50 agents, all on the campaign, who take every
answered call at once (auto-answer) and talk for an exponential time of mean 120 s,
then wrap up for 10 s; each dial reaches a person with chance 20% (after 3 s + an
exponential of mean 5 s), an answering machine 10% (detected by the line), a busy line
10%; the rest ring out at 25 s. Leads are in New York, Chicago and Los Angeles; the day
starts at 9:00 New York time (so Los Angeles leads wait for 8:00 there).

**What runs**: :func:`simulators.dialer_sim.run_campaign_day`, which drives the
production router, pacer and campaign on virtual time, once per mode and replication
(different seeds), the modes in turn within each replication.

**Figures**: *talk occupancy* (time talking / staffed time, summed over agents) and the
*abandon rate* (live answers with no agent on the call within 2 s / live answers), each
the mean over the replications; the worst replication's abandon rate beside it. The
**baseline** of predictive is progressive (one line per free agent), which cannot
abandon a call when no inbound competes for its agents. ``power`` (2 lines per free
agent) is shown too.

Prints one line per mode and replication, then one JSON line with
``predictive_occupancy``, ``progressive_occupancy``, ``predictive_abandon_rate``,
``progressive_abandon_rate``, ``baseline`` and the rest.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from queue_engine.pacing import DialMode
from simulators.dialer_sim import DialerResult, DialerScenario, run_campaign_day

MODES = (DialMode.PROGRESSIVE, DialMode.PREDICTIVE, DialMode.POWER)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=3)
    parser.add_argument("--hours", type=float, default=8.0, help="length of the day")
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    results: dict[DialMode, list[DialerResult]] = {m: [] for m in MODES}
    seconds: dict[DialMode, list[float]] = {m: [] for m in MODES}
    for r in range(args.replications):
        for mode in MODES:
            scenario = DialerScenario(
                mode=mode,
                agents=args.agents,
                duration_s=args.hours * 3600.0,
                seed=args.seed + r,
            )
            start = time.perf_counter()
            result = run_campaign_day(scenario)
            seconds[mode].append(time.perf_counter() - start)
            results[mode].append(result)
            print(
                f"{mode.value:12} seed {args.seed + r}: dials {result.dials:6d}  "
                f"live {result.live:5d}  abandoned {result.abandoned:4d} "
                f"({result.abandon_rate:.4f})  talk occupancy {result.talk_occupancy:.4f}  "
                f"occupancy {result.occupancy:.4f}  outside hours {result.dials_outside_hours}  "
                f"DNC {result.dials_on_dnc}  ({seconds[mode][-1]:.2f} s)"
            )

    def mean(mode: DialMode, attr: str) -> float:
        return round(statistics.fmean(getattr(x, attr) for x in results[mode]), 5)

    summary = {
        "benchmark": "dialer",
        "agents": args.agents,
        "hours": args.hours,
        "replications": args.replications,
        "contact_rate": 0.20,
        "machine_rate": 0.10,
        "predictive_occupancy": mean(DialMode.PREDICTIVE, "talk_occupancy"),
        "progressive_occupancy": mean(DialMode.PROGRESSIVE, "talk_occupancy"),
        "power_occupancy": mean(DialMode.POWER, "talk_occupancy"),
        "predictive_abandon_rate": mean(DialMode.PREDICTIVE, "abandon_rate"),
        "progressive_abandon_rate": mean(DialMode.PROGRESSIVE, "abandon_rate"),
        "power_abandon_rate": mean(DialMode.POWER, "abandon_rate"),
        "predictive_worst_abandon_rate": round(
            max(x.abandon_rate for x in results[DialMode.PREDICTIVE]), 5
        ),
        "predictive_busy_occupancy": mean(DialMode.PREDICTIVE, "occupancy"),
        "progressive_busy_occupancy": mean(DialMode.PROGRESSIVE, "occupancy"),
        "abandon_cap": 0.03,
        "dials_outside_hours": sum(x.dials_outside_hours for v in results.values() for x in v),
        "dials_on_dnc": sum(x.dials_on_dnc for v in results.values() for x in v),
        "baseline": "progressive (one line per free agent) is the baseline of predictive",
        "seconds_per_day": {m.value: round(statistics.median(seconds[m]), 3) for m in MODES},
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
