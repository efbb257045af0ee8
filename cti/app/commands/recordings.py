"""`cti recordings`: list, export and delete call recordings, and apply the retention.

Recordings are ``<recordings_dir>/<YYYY-MM-DD>/<call_id>.wav`` (``[voice]`` of the
config, or ``--dir``). Deleting one removes the file only: the call record keeps its
history (and the path it had).
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

from cti.errors import ConfigError

ORDER = 45


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "recordings",
        help="list, export or delete call recordings; delete those past retention",
        description="Call recordings (stereo WAV, caller left, agent right), one file per "
        "call id under [voice] recordings_dir. Deleting a recording leaves its call record.",
    )
    p.add_argument("--config", type=Path, help="TOML config file (its [voice] section)")
    p.add_argument("--dir", type=Path, help="the recordings directory (overrides the config)")
    actions = p.add_subparsers(dest="action", required=True)
    ls = actions.add_parser("list", help="recordings, oldest day first")
    ls.add_argument("--day", type=_day, help="only this day (YYYY-MM-DD)")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    export = actions.add_parser("export", help="copy one call's recording out")
    export.add_argument("call_id")
    export.add_argument("dest", type=Path, help="a directory or a file name")
    delete = actions.add_parser("delete", help="delete one call's recording (not its record)")
    delete.add_argument("call_id")
    sweep = actions.add_parser("sweep", help="delete recordings past the retention")
    sweep.add_argument(
        "--keep-days", type=float, help="days to keep (default: [voice] retention_days)"
    )
    p.set_defaults(handler=run)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day (YYYY-MM-DD)") from None


def run(args: argparse.Namespace) -> int:
    from cti.config import load_config
    from telephony_adapters.media import recording_files as rf

    voice = load_config(args.config).voice
    root: Path = args.dir or Path(voice.recordings_dir)
    if not root.is_dir():
        raise ConfigError(
            f"{root}: no such recordings directory (give --dir DIR, or --config FILE "
            "whose [voice] recordings_dir names it)"
        )
    if args.action == "list":
        for info in rf.list_recordings(root, day=args.day):
            duration = "-" if info.duration_s is None else f"{info.duration_s:.1f} s"
            if args.json:
                print(json.dumps({"call_id": info.call_id, "day": info.day.isoformat(),
                                  "path": str(info.path), "bytes": info.size_bytes,
                                  "duration_s": info.duration_s}))  # fmt: skip
            else:
                print(f"{info.day}  {info.call_id:<40} {duration:>10}  {info.path}")
    elif args.action == "export":
        print(f"exported {rf.export_recording(root, args.call_id, args.dest)}")
    elif args.action == "delete":
        print(f"deleted {rf.delete_recording(root, args.call_id)} (the call record stays)")
    else:
        keep = voice.retention_days if args.keep_days is None else args.keep_days
        deleted = rf.sweep(root, keep, date.today())
        print(f"deleted {len(deleted)} recordings older than {keep:g} days from {root}")
    return 0
