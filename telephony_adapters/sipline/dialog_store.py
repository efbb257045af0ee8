"""The SIP line's saved calls: what a new process needs to take them up after a crash.

One small SQLite file per line beside the engine's journal (:func:`dialogs_path_for`),
one row per call that is ringing, being dialled or up: the user agent's snapshot
(:meth:`~.useragent.UserAgent.saved_changes`) as JSON. Written on the event-loop thread
before the line tells the engine anything of the call (so a call the engine heard of
is always one the line can take up), in WAL mode with ``synchronous=NORMAL`` like the
journal: a committed write survives ``kill -9``. See docs/sip.md, "After a crash".
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from pathlib import Path
from typing import Any

from cti import log_limits
from cti.errors import TelephonyError

log = logging.getLogger(__name__)


def dialogs_path_for(journal: Path, line: str) -> Path:
    """``cti.journal.db`` and line ``trunk`` -> ``cti.journal.sip-trunk.db``."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", line)
    return journal.with_name(f"{journal.stem}.sip-{safe}{journal.suffix or '.db'}")


class DialogStore:
    """The saved calls of one line (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS calls (call_id TEXT PRIMARY KEY, data TEXT NOT NULL)"
            )
        except sqlite3.Error as exc:
            raise TelephonyError(f"cannot open the SIP line's call file {path}: {exc}") from exc

    def load(self) -> list[dict[str, Any]]:
        """Every saved call; a row that is not JSON is logged and dropped."""
        calls: list[dict[str, Any]] = []
        for call_id, data in self._db.execute("SELECT call_id, data FROM calls"):
            try:
                value = json.loads(data)
                if not isinstance(value, dict):
                    raise ValueError("not an object")
                calls.append(value)
            except ValueError as exc:
                log_limits.error(
                    log, "%s: saved call %s unreadable, dropped: %s", self.path, call_id, exc
                )
                self.write({}, [call_id])
        return calls

    def write(self, changed: dict[str, dict[str, Any]], gone: list[str]) -> None:
        """Save ``changed`` and forget ``gone``, in one transaction. A failure is logged
        (the calls go on; only their survival of a crash is at stake)."""
        if not changed and not gone:
            return
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT OR REPLACE INTO calls (call_id, data) VALUES (?, ?)",
                    [(c, json.dumps(snap)) for c, snap in changed.items()],
                )
                self._db.executemany("DELETE FROM calls WHERE call_id = ?", [(c,) for c in gone])
        except sqlite3.Error as exc:
            log_limits.error(
                log, "%s: calls not saved (they would not survive a crash): %s", self.path, exc
            )

    def close(self) -> None:
        self._db.close()
