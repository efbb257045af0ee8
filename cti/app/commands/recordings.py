"""`cti recordings`: list, show, export and delete call recordings and voicemail
messages, and apply the retention.

Recordings are ``<recordings_dir>/<YYYY-MM-DD>/<call_id>.wav`` (``[voice]`` of the
config, or ``--dir``), a caller's message ``<call_id>.message.wav`` beside them: its
recording id is ``<call_id>.message`` (or give the call id with ``--kind message``).
With a store (``--config`` whose ``[store] path`` names it, or ``--db``), the list joins
what the store keeps of each recording (kind, length, pauses, why it failed, the
callback a message is attached to), ``show`` prints a call's record in full with its
recording and message, and deleting a recording (one, or the retention's) marks it
deleted there. The call record stays.
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
from cti.store.recordings import KINDS, RecordingKind, kind_of, recording_id

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
    ls = actions.add_parser("list", help="recordings and messages, oldest day first")
    ls.add_argument("--day", type=_day, help="only this day (YYYY-MM-DD)")
    ls.add_argument("--kind", choices=KINDS, help="only call recordings, or only messages")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    show = actions.add_parser("show", help="a call's record in full, its recording and message")
    show.add_argument("call_id")
    show.add_argument("--json", action="store_true", help="one JSON object")
    kind_help = "message: CALL_ID names the call's voicemail (default: as the id says)"
    export = actions.add_parser("export", help="copy one recording or message out")
    export.add_argument("call_id", help="a call id, or a message's id (CALL_ID.message)")
    export.add_argument("dest", type=Path, help="a directory or a file name")
    export.add_argument("--kind", choices=KINDS, help=kind_help)
    delete = actions.add_parser("delete", help="delete one recording or message (not the record)")
    delete.add_argument("call_id", help="a call id, or a message's id (CALL_ID.message)")
    delete.add_argument("--kind", choices=KINDS, help=kind_help)
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
        if args.kind is not None:
            infos = [i for i in infos if kind_of(i.call_id) == args.kind]
        nothing: tuple[dict[str, CallRecording], dict[str, str]] = ({}, {})
        kept, callbacks = _with_rows(db, lambda rows: _rows_of(rows, infos), nothing)
        _print_list(infos, kept, callbacks, as_json=args.json)
    elif args.action == "export":
        named = _named(args.call_id, args.kind)
        print(f"exported {rf.export_recording(root, named, args.dest)}")
    elif args.action == "delete":
        named = _named(args.call_id, args.kind)
        path = rf.delete_recording(root, named)
        print(f"deleted {path} (the call record stays{_marked(db, [named], BY_COMMAND)})")
    else:
        keep = voice.retention_days if args.keep_days is None else args.keep_days
        deleted = rf.sweep(root, keep, date.today())
        marked = _marked(db, [p.stem for p in deleted], "retention")
        print(f"deleted {len(deleted)} recordings older than {keep:g} days from {root}{marked}")
    return 0


def _named(given: str, kind: RecordingKind | None) -> str:
    """The recording id a command line names: as given, or the call's message."""
    return given if kind is None or kind_of(given) == kind else recording_id(given, kind)


async def _rows_of(
    rows: RecordingRows, infos: Sequence[RecordingInfo]
) -> tuple[dict[str, CallRecording], dict[str, str]]:
    """The store's rows of the listed files, and the callbacks of the messages."""
    ids = [i.call_id for i in infos]  # a file's stem: its recording id
    return await rows.by_ids(ids), await rows.callbacks_of(
        [i for i in ids if kind_of(i) == "message"]
    )


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
    infos: Sequence[RecordingInfo],
    kept: dict[str, CallRecording],
    callbacks: dict[str, str],
    *,
    as_json: bool,
) -> None:
    for info in infos:
        row = kept.get(info.call_id)
        kind = kind_of(info.call_id) if row is None else row.kind
        call_id = info.call_id if row is None else row.call_id
        if row is None and kind == "message":
            call_id = info.call_id.removesuffix(recording_id("", "message"))
        duration_s = info.duration_s if info.duration_s is not None else (
            row.duration_s if row is not None and not row.error else None)  # fmt: skip
        callback = callbacks.get(info.call_id, "")
        if as_json:
            print(json.dumps({"recording_id": info.call_id, "call_id": call_id, "kind": kind,
                              "day": info.day.isoformat(), "path": str(info.path),
                              "bytes": info.size_bytes, "duration_s": duration_s,
                              "callback": callback or None,
                              "store": None if row is None else row.to_json()}))  # fmt: skip
            continue
        duration = "-" if duration_s is None else f"{duration_s:.1f} s"
        note = " ".join(n for n in (_note(row), _for_callback(callback)) if n)
        print(f"{info.day}  {kind:<7} {info.call_id:<40} {duration:>10}  {info.path}"
              + (f"  {note}" if note else ""))  # fmt: skip


def _for_callback(callback: str) -> str:
    return f"[for callback {callback}]" if callback else ""


def _note(row: CallRecording | None) -> str:
    """What the store adds to a listed file: its pauses, or why it failed."""
    if row is None:
        return ""
    if row.error:
        return f"[failed: {row.error}]"
    if row.paused:
        return "[paused " + ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in row.paused) + "]"
    return ""


Shown = tuple["CallDetailRecord | None", "CallRecording | None", "CallRecording | None", str]


def _show(db: Path, root: Path, call_id: str, *, as_json: bool) -> int:
    """A call's record in full, with its recording and its message (path, length, pauses,
    state; the callback a message is attached to)."""

    async def read(rows: RecordingRows) -> Shown:
        message = await rows.get(call_id, "message")
        callbacks = await rows.callbacks_of([recording_id(call_id, "message")])
        return (await rows.call_record(call_id), await rows.get(call_id), message,
                next(iter(callbacks.values()), ""))  # fmt: skip

    nothing: Shown = (None, None, None, "")
    record, recording, message, callback = _with_rows(db, read, nothing)
    if record is None and recording is None and message is None:
        raise ConfigError(f"the store {db} has no call {call_id!r}")
    fields = asdict(record) if record is not None else {}
    if as_json:
        kept = None if recording is None else recording.to_json()
        left = None if message is None else {**message.to_json(), "callback": callback or None}
        print(json.dumps({"call_id": call_id, "record": fields or None, "recording": kept,
                          "message": left}, ensure_ascii=False, default=str))  # fmt: skip
        return 0
    print(f"call {call_id}" + ("" if fields else " (no call record stored yet)"))
    for name, value in fields.items():
        print(f"  {name:<22} {value}")
    for label, row in (("recording", recording), ("message", message)):
        if row is None:
            if label == "recording":
                print("  recording              none")
            continue
        extra = f"; {_for_callback(callback)}" if label == "message" and callback else ""
        print(f"  {label:<22} {row.summary()}{extra}")
        if row.path:
            print(f"  {label + ' file':<22} {root / row.path}")
    return 0
