"""The script runs of the store: what a call's script recorded (answers, path, actions),
and the work it leaves in the outbox for other systems, written in one transaction.
:class:`ScriptRunRows` works over a :class:`~cti.store.database.Store`'s connection; the
store keeps one, as ``store.script_runs``. The outbox's ``send_email`` rows also keep the
mailer's state (:class:`MailState`, :mod:`cti.engine.mail`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import aiosqlite

from cti.models import Interaction, OutboxItem, ScriptRun
from scripts_engine.model import ActionKind

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
_OUTBOX_FIELDS = "id, call_id, customer_id, action, args, created_wall, done_wall"
_MAIL = ActionKind.SEND_EMAIL.value
_DNC = ActionKind.ADD_TO_DNC.value
#: A mail's outcome on its customer's history (a customer deleted since: none).
_ADD_HISTORY = (
    "INSERT INTO interactions (customer_id, at, channel, disposition, agent_id, note, call_id)"
    " SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM customers WHERE id = ?)"
)

MailStatus = Literal["pending", "sent", "failed"]


@dataclass(frozen=True)
class MailState:
    """Where one ``send_email`` row of the outbox stands: ``error`` says why the last
    attempt failed (why it failed, once ``failed``); ``done_wall``: sent or given up."""

    id: int
    state: MailStatus
    attempts: int
    next_wall: float
    error: str
    done_wall: float | None


def _item(row: Sequence[object]) -> OutboxItem:
    i, call_id, customer, action, args, created, done = row
    return OutboxItem(
        id=i,
        call_id=call_id,
        customer_id=customer,
        action=action,
        args=json.loads(str(args)),
        created_wall=created,
        done_wall=done,
    )


class ScriptRunRows:
    """Script runs and the outbox, written and read through the store's transactions; a
    failure comes out as :class:`~cti.errors.StoreError` naming what was being done."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.queued: list[Callable[[], None]] = []
        """Called after a run left work in the outbox (the mailer wakes)."""

    async def record(self, run: ScriptRun, outbox: Sequence[OutboxItem] = ()) -> None:
        """Keep what a call's script recorded, and the work it leaves in the outbox, in
        one transaction. Storing a call's run again replaces it and its pending outbox
        (but not a mail already tried: it is under way)."""
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
                "DELETE FROM outbox WHERE call_id = ? AND done_wall IS NULL AND attempts = 0",
                (run.call_id,),
            )
            await connection.execute(_SAVE_RUN, row)
            await connection.executemany(_ADD_OUTBOX, items)

        await self.store.write(f"recording the script run of call {run.call_id!r}", insert)
        if items:
            for listener in self.queued:
                listener()

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
            f"SELECT {_OUTBOX_FIELDS} FROM outbox{where} ORDER BY created_wall, id",
        )
        return [_item(row) for row in rows]

    # --- the mailer's state (send_email rows) -----------------------------------------

    async def mail_due(self, now: float, limit: int = 20) -> list[tuple[OutboxItem, int]]:
        """Mails not sent nor given up whose time has come (``next_wall`` <= ``now``),
        oldest first, each with the attempts made so far."""
        rows = await self.store.fetch(
            "reading the mails due in the outbox",
            f"SELECT {_OUTBOX_FIELDS}, attempts FROM outbox WHERE action = ?"
            " AND done_wall IS NULL AND next_wall <= ? ORDER BY next_wall, id LIMIT ?",
            (_MAIL, now, limit),
        )
        return [(_item(row[:-1]), int(row[-1])) for row in rows]

    async def next_mail_wall(self) -> float | None:
        """When the next mail waiting is due (None: none waits)."""
        rows = await self.store.fetch(
            "reading when the next mail is due",
            "SELECT min(next_wall) FROM outbox WHERE action = ? AND done_wall IS NULL",
            (_MAIL,),
        )
        return None if not rows or rows[0][0] is None else float(rows[0][0])

    # --- do-not-call requests (add_to_dnc rows) ---------------------------------------

    async def dnc_pending(self, limit: int = 100) -> list[OutboxItem]:
        """``add_to_dnc`` requests not carried out yet, oldest first."""
        rows = await self.store.fetch(
            "reading the do-not-call requests in the outbox",
            f"SELECT {_OUTBOX_FIELDS} FROM outbox WHERE action = ? AND done_wall IS NULL"
            " ORDER BY created_wall, id LIMIT ?",
            (_DNC, limit),
        )
        return [_item(row) for row in rows]

    async def dnc_done(
        self,
        item_id: int,
        numbers: Sequence[str],
        wall: float,
        reason: str,
        history: tuple[int, Interaction] | None = None,
    ) -> None:
        """Request ``item_id`` carried out: ``numbers`` on the global do-not-call list
        (none: nothing to add, ``reason`` says why), the request done and the entry on the
        customer's history, in one transaction."""

        async def done(connection: aiosqlite.Connection) -> None:
            await connection.executemany(
                "INSERT OR IGNORE INTO do_not_call (e164, campaign_id, added_wall, reason)"
                " VALUES (?, 0, ?, ?)",
                [(number, wall, reason) for number in numbers],
            )
            await connection.execute(
                "UPDATE outbox SET state = ?, error = ?, done_wall = ? WHERE id = ?",
                ("done" if numbers else "failed", "" if numbers else reason, wall, item_id),
            )
            if history is not None:
                cid, i = history
                entry = (cid, i.at, i.channel, i.disposition, i.agent_id, i.note, i.call_id, cid)
                await connection.execute(_ADD_HISTORY, entry)

        await self.store.write(f"carrying out do-not-call request {item_id}", done)

    async def mail_state(self, item_id: int) -> MailState | None:
        """Where the mail of outbox row ``item_id`` stands (None: no such mail)."""
        rows = await self.store.fetch(
            f"reading the state of mail {item_id}",
            "SELECT id, state, attempts, next_wall, error, done_wall FROM outbox"
            " WHERE id = ? AND action = ?",
            (item_id, _MAIL),
        )
        if not rows:
            return None
        i, state, attempts, next_wall, error, done = rows[0]
        return MailState(i, state, attempts, next_wall, error, done)

    async def claim_mail(self, item_id: int, next_wall: float) -> int | None:
        """Count an attempt at mail ``item_id`` before it is made, and put its next one
        at ``next_wall`` (if the engine stops while sending, it is tried again then).
        The attempts made with this one; None if it is no longer waiting."""

        async def claim(connection: aiosqlite.Connection) -> int | None:
            cursor = await connection.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_wall = ?"
                " WHERE id = ? AND done_wall IS NULL RETURNING attempts",
                (next_wall, item_id),
            )
            row = await cursor.fetchone()
            return None if row is None else int(row[0])

        return await self.store.write(f"claiming mail {item_id}", claim)

    async def mail_retry(self, item_id: int, next_wall: float, error: str) -> None:
        """Mail ``item_id`` failed for now (``error``): try again at ``next_wall``."""

        async def later(connection: aiosqlite.Connection) -> None:
            await connection.execute(
                "UPDATE outbox SET next_wall = ?, error = ? WHERE id = ? AND done_wall IS NULL",
                (next_wall, error, item_id),
            )

        await self.store.write(f"putting mail {item_id} off", later)

    async def mail_finished(
        self,
        item_id: int,
        state: Literal["sent", "failed"],
        wall: float,
        error: str = "",
        history: tuple[int, Interaction] | None = None,
    ) -> None:
        """Mail ``item_id`` was sent or is given up (``error``: why), with the entry on
        its customer's history (``(customer_id, interaction)``), in one transaction."""

        async def finish(connection: aiosqlite.Connection) -> None:
            await connection.execute(
                "UPDATE outbox SET state = ?, error = ?, done_wall = ? WHERE id = ?",
                (state, error, wall, item_id),
            )
            if history is not None:
                cid, i = history
                entry = (cid, i.at, i.channel, i.disposition, i.agent_id, i.note, i.call_id, cid)
                await connection.execute(_ADD_HISTORY, entry)

        await self.store.write(f"recording that mail {item_id} was {state}", finish)
