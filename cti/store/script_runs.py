"""The script runs of the store: what a call's script recorded (answers, path, actions),
and the work it leaves in the outbox for other systems, written in one transaction.
:class:`ScriptRunRows` works over a :class:`~cti.store.database.Store`'s connection; the
store keeps one, as ``store.script_runs``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

import aiosqlite

from cti.models import OutboxItem, ScriptRun

if TYPE_CHECKING:
    from cti.store.database import Store

_RUN_FIELDS = (
    "call_id, agent_id, customer_id, script, version, sha256, answers, path, actions, recorded_wall"
)
_SAVE_RUN = (
    f"INSERT OR REPLACE INTO script_runs ({_RUN_FIELDS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_ADD_OUTBOX = (
    "INSERT INTO outbox (call_id, customer_id, action, args, created_wall) VALUES (?, ?, ?, ?, ?)"
)


class ScriptRunRows:
    """Script runs and the outbox, written and read through the store's transactions; a
    failure comes out as :class:`~cti.errors.StoreError` naming what was being done."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def record(self, run: ScriptRun, outbox: Sequence[OutboxItem] = ()) -> None:
        """Keep what a call's script recorded, and the work it leaves in the outbox, in
        one transaction. Storing a call's run again replaces it and its pending outbox."""
        row = (
            run.call_id,
            run.agent_id,
            run.customer_id,
            run.script,
            run.version,
            run.sha256,
            json.dumps(run.answers, ensure_ascii=False),
            json.dumps(list(run.path), ensure_ascii=False),
            json.dumps([a.model_dump() for a in run.actions], ensure_ascii=False),
            run.recorded_wall,
        )
        items = [
            (
                i.call_id,
                i.customer_id,
                i.action,
                json.dumps(i.args, ensure_ascii=False),
                i.created_wall,
            )
            for i in outbox
        ]

        async def insert(connection: aiosqlite.Connection) -> None:
            await connection.execute(
                "DELETE FROM outbox WHERE call_id = ? AND done_wall IS NULL", (run.call_id,)
            )
            await connection.execute(_SAVE_RUN, row)
            await connection.executemany(_ADD_OUTBOX, items)

        await self.store.write(f"recording the script run of call {run.call_id!r}", insert)

    async def get(self, call_id: str) -> ScriptRun | None:
        """The script run kept for a call, or None."""
        rows = await self.store.fetch(
            f"reading the script run of call {call_id!r}",
            f"SELECT {_RUN_FIELDS} FROM script_runs WHERE call_id = ?",
            (call_id,),
        )
        if not rows:
            return None
        cid, agent, customer, script, version, sha, answers, path, actions, at = rows[0]
        return ScriptRun(
            call_id=cid,
            agent_id=agent,
            customer_id=customer,
            script=script,
            version=version,
            sha256=sha,
            answers=json.loads(answers),
            path=tuple(json.loads(path)),
            actions=tuple(json.loads(actions)),
            recorded_wall=at,
        )

    async def outbox(self, *, pending_only: bool = True) -> list[OutboxItem]:
        """Work calls left for other systems, oldest first (by default only what is not
        done yet)."""
        where = " WHERE done_wall IS NULL" if pending_only else ""
        rows = await self.store.fetch(
            "reading the outbox",
            "SELECT id, call_id, customer_id, action, args, created_wall, done_wall FROM outbox"
            f"{where} ORDER BY created_wall, id",
        )
        return [
            OutboxItem(
                id=i,
                call_id=call_id,
                customer_id=customer,
                action=action,
                args=json.loads(args),
                created_wall=created,
                done_wall=done,
            )
            for i, call_id, customer, action, args, created, done in rows
        ]
