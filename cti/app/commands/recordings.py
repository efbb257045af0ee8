"""`cti recordings`: list, show, export and delete call recordings, and apply the retention.

Recordings are ``<recordings_dir>/<YYYY-MM-DD>/<call_id>.wav`` (``[voice]`` of the
config, or ``--dir``). With a store (``--config`` whose ``[store] path`` names it, or
``--db``), the list joins what the store keeps of each recording (length, pauses, why it
failed), ``show`` prints a call's record in full with its recording, and deleting a
recording (one, or the retention's) marks it deleted there. The call record stays.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from cti.errors import ConfigError

if TYPE_CHECKING:
    from cti.models import CallDetailRecord
    from cti.store.recordings import CallRecording, RecordingRows
    from telephony_adapters.media.recording_files import RecordingInfo

ORDER = 45
T = TypeVar("T")
#: Who deleted a recording deleted here (kept in the store).
BY_COMMAND = "cti recordings delete"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "recordings",
        help="list, show, export or delete call recordings; delete those past retention",
        description="Call recordings (stereo WAV, caller left, agent right), one file per "
        "call id under [voice] recordings_dir. Deleting a recording leaves its call record.",
    )
    p.add_argument("--config", type=Path, help="TOML config file ([voice], and [store] path)")
    p.add_argument("--dir", type=Path, help="the recordings directory (overrides the config)")
    p.add_argument("--db", type=Path, help="the store (overrides the config's [store] path)")
    actions = p.add_subparsers(dest="action", required=True)
    ls = actions.add_parser("list", help="recordings, oldest day first")
    ls.add_argument("--day", type=_day, help="only this day (YYYY-MM-DD)")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    show = actions.add_parser("show", help="a call's record in full, with its recording")
    show.add_argument("call_id")
    show.add_argument("--json", action="store_true", help="one JSON object")
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

    config = load_config(args.config)
    voice = config.voice
    root: Path = args.dir or Path(voice.recordings_dir)
    db: Path | None = args.db or (
        Path(config.store.path) if args.config is not None and config.store.path else None
    )
    if db is not None and not db.is_file():
        raise ConfigError(f"{db}: no store there (give --db FILE, or --config with [store] path)")
    if args.action == "show":
        if db is None:
            raise ConfigError("show needs the store: give --config FILE (its [store] path) or --db")
        return _show(db, root, args.call_id, as_json=args.json)
    if not root.is_dir():
        raise ConfigError(
            f"{root}: no such recordings directory (give --dir DIR, or --config FILE "
            "whose [voice] recordings_dir names it)"
        )
    if args.action == "list":
        infos = rf.list_recordings(root, day=args.day)
        no_rows: dict[str, CallRecording] = {}
        kept = _with_rows(db, lambda rows: rows.of_calls([i.call_id for i in infos]), no_rows)
        _print_list(infos, kept, as_json=args.json)
    elif args.action == "export":
        print(f"exported {rf.export_recording(root, args.call_id, args.dest)}")
    elif args.action == "delete":
        path = rf.delete_recording(root, args.call_id)
        print(f"deleted {path} (the call record stays{_marked(db, [args.call_id], BY_COMMAND)})")
    else:
        keep = voice.retention_days if args.keep_days is None else args.keep_days
        deleted = rf.sweep(root, keep, date.today())
        marked = _marked(db, [p.stem for p in deleted], "retention")
        print(f"deleted {len(deleted)} recordings older than {keep:g} days from {root}{marked}")
    return 0


def _with_rows(db: Path | None, work: Callable[[RecordingRows], Awaitable[T]], default: T) -> T:
    """``work(rows)`` on the store at ``db`` (opened and closed here); ``default`` without."""
    from cti.store.database import Store
    from cti.store.recordings import RecordingRows

    if db is None:
        return default

    async def main() -> T:
        async with await Store.open(db) as store:
            return await work(RecordingRows(store))

    return asyncio.run(main())


def _marked(db: Path | None, call_ids: Sequence[str], by: str) -> str:
    """Mark recordings deleted in the store; what to add to the message."""
    from cti.clock import wall_time

    if db is None:
        return "; no store given, so none is marked deleted"
    marked = _with_rows(db, lambda rows: rows.mark_deleted(call_ids, wall_time(), by), 0)
    return f"; {marked} marked deleted in {db}"


def _print_list(
    infos: Sequence[RecordingInfo], kept: dict[str, CallRecording], *, as_json: bool
) -> None:
    for info in infos:
        row = kept.get(info.call_id)
        duration_s = info.duration_s if info.duration_s is not None else (
            row.duration_s if row is not None and not row.error else None)  # fmt: skip
        if as_json:
            print(json.dumps({"call_id": info.call_id, "day": info.day.isoformat(),
                              "path": str(info.path), "bytes": info.size_bytes,
                              "duration_s": duration_s,
                              "store": None if row is None else row.to_json()}))  # fmt: skip
            continue
        duration = "-" if duration_s is None else f"{duration_s:.1f} s"
        note = "" if row is None else "  " + _note(row)
        print(f"{info.day}  {info.call_id:<40} {duration:>10}  {info.path}{note}")


def _note(row: CallRecording) -> str:
    """What the store adds to a listed file: its pauses, or why it failed."""
    if row.error:
        return f"[failed: {row.error}]"
    if row.paused:
        return "[paused " + ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in row.paused) + "]"
    return ""


def _show(db: Path, root: Path, call_id: str, *, as_json: bool) -> int:
    """A call's record in full, with its recording (path, length, pauses, state)."""

    async def read(rows: RecordingRows) -> tuple[CallDetailRecord | None, CallRecording | None]:
        return await rows.call_record(call_id), await rows.get(call_id)

    nothing: tuple[CallDetailRecord | None, CallRecording | None] = (None, None)
    record, recording = _with_rows(db, read, nothing)
    if record is None and recording is None:
        raise ConfigError(f"the store {db} has no call {call_id!r}")
    fields = asdict(record) if record is not None else {}
    if as_json:
        kept = None if recording is None else recording.to_json()
        print(json.dumps({"call_id": call_id, "record": fields or None, "recording": kept},
                         ensure_ascii=False, default=str))  # fmt: skip
        return 0
    print(f"call {call_id}" + ("" if fields else " (no call record stored yet)"))
    for name, value in fields.items():
        print(f"  {name:<22} {value}")
    if recording is None:
        print("  recording              none")
    else:
        print(f"  recording              {recording.summary()}")
        if recording.path:
            print(f"  recording file         {root / recording.path}")
    return 0
