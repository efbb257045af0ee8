"""Campaigns in the store: campaigns, lead lists, leads, dial attempts, do-not-call lists.

The tables are migrations 30-39 (:mod:`cti.store.migrations`); the queries are here, on the
connection of a :class:`cti.store.database.Store` (one writer per file). Also here: the
compliance report (:meth:`CampaignStore.compliance`), which recounts from the attempts
themselves, not from the dialer's own counters.
The lead lists come from :mod:`cti.store.leads` (a CSV file read, bad rows reported).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import aiosqlite
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from cti.errors import StoreError
from cti.fields import RequiredName
from cti.store.database import Store
from cti.store.leads import LeadFile, LeadImportReport
from queue_engine.campaign import (
    ROLLING_DAYS,
    Campaign,
    CampaignRules,
    Lead,
    LeadState,
    in_calling_hours,
    zone_info,
)
from queue_engine.pacing import DialMode, PacingSettings


class CampaignSettings(BaseModel):
    """What a campaign is: its mode, queue, script, pacing and rules."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    mode: DialMode = DialMode.PREDICTIVE
    queue: str = "outbound"
    """The router queue its answered calls go to (agents who serve it take them)."""
    script: str = ""
    """The call script the agents run (a shipped name or a file), sent with the offer
    of each of its calls instead of the queue's."""
    line: str = ""
    """The line it dials on under ``cti serve``; empty: the first line that can dial."""
    pacing: PacingSettings = PacingSettings()
    rules: CampaignRules = CampaignRules()


# --- the store -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CampaignRecord:
    campaign_id: int
    settings: CampaignSettings
    state: str


@dataclass(frozen=True, slots=True)
class ListRecord:
    list_id: int
    name: str
    state: str
    leads: int
    recycled: int


@dataclass(frozen=True, slots=True)
class Today:
    """A campaign's day so far (in its ``day_zone``), from the stored attempts."""

    dials: int
    contacts: int
    """People who reached an agent (connected)."""
    live: int
    abandoned: int
    rolling_live: int
    rolling_abandoned: int

    @property
    def abandon_rate(self) -> float:
        return self.abandoned / self.live if self.live else 0.0

    @property
    def rolling_rate(self) -> float:
        return self.rolling_abandoned / self.rolling_live if self.rolling_live else 0.0


@dataclass(frozen=True, slots=True)
class DayFigures:
    day: date
    live: int
    abandoned: int

    @property
    def abandon_rate(self) -> float:
        return self.abandoned / self.live if self.live else 0.0


@dataclass(frozen=True, slots=True)
class Compliance:
    """A campaign's compliance report (recounted from its attempts)."""

    campaign: str
    days: list[DayFigures]
    rolling_live: int
    rolling_abandoned: int
    dials: int
    dials_outside_hours: int
    dials_on_dnc: int
    abandon_cap: float

    @property
    def rolling_rate(self) -> float:
        return self.rolling_abandoned / self.rolling_live if self.rolling_live else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "abandon_cap": self.abandon_cap,
            "abandon_rate_30_days": round(self.rolling_rate, 5),
            "live_answers_30_days": self.rolling_live,
            "abandoned_30_days": self.rolling_abandoned,
            "days": [
                {
                    "day": d.day.isoformat(),
                    "live_answers": d.live,
                    "abandoned": d.abandoned,
                    "abandon_rate": round(d.abandon_rate, 5),
                }
                for d in self.days
            ],
            "dials": self.dials,
            "dials_outside_hours": self.dials_outside_hours,
            "dials_on_dnc": self.dials_on_dnc,
            "within_rules": self.dials_outside_hours == 0
            and self.dials_on_dnc == 0
            and self.rolling_rate <= self.abandon_cap
            and all(d.abandon_rate <= self.abandon_cap for d in self.days),
        }


_NAME: TypeAdapter[str] = TypeAdapter(RequiredName)

_LEAD_COLUMNS = (
    "id, list_id, e164, name, zones, fields, customer_id, state, attempts, next_at, "
    "last_outcome, callback_at"
)


class CampaignStore:
    """Campaign queries on an open :class:`~cti.store.database.Store` (its connection and lock)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- campaigns -----------------------------------------------------------------

    async def create_campaign(self, settings: CampaignSettings, now_wall: float) -> int:
        """Add a campaign; :class:`StoreError` if one of that name exists, or if its name
        or queue cannot be a bus topic level (the protocol's rules for names)."""
        for what, value in (("name", settings.name), ("queue", settings.queue)):
            try:
                _NAME.validate_python(value)
            except ValidationError as exc:
                raise StoreError(
                    f"campaign {what} {value!r}: {exc.errors()[0]['msg']} (it is a bus topic "
                    "level: use letters, digits, '-' or '_')"
                ) from None

        async def insert(c: aiosqlite.Connection) -> int:
            cursor = await c.execute(
                "INSERT INTO campaigns (name, mode, queue, script, settings, created_wall) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    settings.name,
                    settings.mode.value,
                    settings.queue,
                    settings.script,
                    settings.model_dump_json(),
                    now_wall,
                ),
            )
            return int(cursor.lastrowid or 0)

        return await self.store.write(f"adding campaign {settings.name!r}", insert)

    async def campaign(self, name: str) -> CampaignRecord:
        rows = await self.store.fetch(
            f"reading campaign {name!r}",
            "SELECT id, settings, state FROM campaigns WHERE name = ?",
            (name,),
        )
        if not rows:
            known = await self.campaign_names()
            raise StoreError(
                f"no campaign named {name!r} (campaigns: {', '.join(known) or 'none yet'})"
            )
        campaign_id, settings, state = rows[0]
        return CampaignRecord(
            int(campaign_id), CampaignSettings.model_validate_json(settings), str(state)
        )

    async def campaign_names(self) -> list[str]:
        rows = await self.store.fetch(
            "listing campaigns", "SELECT name FROM campaigns ORDER BY name"
        )
        return [str(r[0]) for r in rows]

    async def campaign_states(self) -> list[tuple[str, str]]:
        """Every campaign's name and state, by name (one query: the dialer polls it)."""
        rows = await self.store.fetch(
            "listing campaigns", "SELECT name, state FROM campaigns ORDER BY name"
        )
        return [(str(name), str(state)) for name, state in rows]

    async def update_settings(self, settings: CampaignSettings) -> None:
        """Replace the settings of the campaign ``settings.name`` (mode, pacing...)."""
        record = await self.campaign(settings.name)
        await self._run(
            f"changing the settings of campaign {settings.name!r}",
            "UPDATE campaigns SET mode = ?, queue = ?, script = ?, settings = ? WHERE id = ?",
            (
                settings.mode.value,
                settings.queue,
                settings.script,
                settings.model_dump_json(),
                record.campaign_id,
            ),
        )

    async def today(self, record: CampaignRecord, now_wall: float) -> Today:
        """Dials, contacts and live answers today, and the 30 days' abandons."""
        rules = record.settings.rules
        days = await self._days(record.campaign_id, rules, now_wall)
        zone = zone_info(rules.day_zone)
        day = datetime.fromtimestamp(now_wall, zone).date()
        since = datetime.combine(day, datetime.min.time(), tzinfo=zone).timestamp()
        rows = await self.store.fetch(
            f"counting today's dials of campaign {record.settings.name!r}",
            "SELECT count(*), sum(outcome = 'connected') FROM dial_attempts "
            "WHERE campaign_id = ? AND dialled_wall >= ?",
            (record.campaign_id, since),
        )
        dials, contacts = rows[0]
        last = days[-1] if days and days[-1].day == day else DayFigures(day, 0, 0)
        return Today(
            dials=int(dials or 0),
            contacts=int(contacts or 0),
            live=last.live,
            abandoned=last.abandoned,
            rolling_live=sum(d.live for d in days),
            rolling_abandoned=sum(d.abandoned for d in days),
        )

    async def set_campaign_state(self, name: str, state: str) -> None:
        """``running``, ``paused`` or ``stopped``."""
        if state not in ("running", "paused", "stopped"):
            raise StoreError(f"campaign state {state!r} is not running, paused or stopped")
        record = await self.campaign(name)
        await self._run(
            f"setting campaign {name!r} {state}",
            "UPDATE campaigns SET state = ? WHERE id = ?",
            (state, record.campaign_id),
        )

    # --- lists and leads -----------------------------------------------------------

    async def import_leads(
        self, campaign: str, list_name: str, lead_file: LeadFile, now_wall: float
    ) -> LeadImportReport:
        """Add ``lead_file``'s good rows as a new list of ``campaign``, joined to the
        customer base by normalised number, in one transaction."""
        record = await self.campaign(campaign)
        cid = record.campaign_id

        async def insert(c: aiosqlite.Connection) -> tuple[int, int]:
            cursor = await c.execute(
                "INSERT INTO lead_lists (campaign_id, name, added_wall) VALUES (?, ?, ?)",
                (cid, list_name, now_wall),
            )
            list_id = int(cursor.lastrowid or 0)
            await c.executemany(
                "INSERT INTO leads (list_id, campaign_id, line_no, number, e164, name, "
                "time_zone, region, zones, fields) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (
                        list_id,
                        cid,
                        r.line,
                        r.number,
                        r.e164,
                        r.name,
                        r.time_zone,
                        r.region,
                        json.dumps(r.zones),
                        json.dumps(r.fields, ensure_ascii=False),
                    )
                    for r in lead_file.rows
                ),
            )
            await c.execute(
                "UPDATE leads SET customer_id = (SELECT min(p.customer_id) FROM customer_phones p"
                " WHERE p.e164 = leads.e164) WHERE list_id = ?",
                (list_id,),
            )
            matched = await c.execute_fetchall(
                "SELECT count(*) FROM leads WHERE list_id = ? AND customer_id IS NOT NULL",
                (list_id,),
            )
            return list_id, int(next(iter(matched))[0])

        try:
            list_id, matched = await self.store.write(
                f"importing list {list_name!r} into campaign {campaign!r}", insert
            )
        except StoreError as exc:
            if "UNIQUE" in str(exc):
                raise StoreError(
                    f"campaign {campaign!r} already has a list named {list_name!r}"
                ) from exc
            raise
        return LeadImportReport(list_id, len(lead_file.rows), matched, list(lead_file.errors))

    async def lists(self, campaign: str) -> list[ListRecord]:
        record = await self.campaign(campaign)
        rows = await self.store.fetch(
            f"reading the lists of campaign {campaign!r}",
            "SELECT l.id, l.name, l.state, l.recycled, "
            "(SELECT count(*) FROM leads WHERE list_id = l.id) "
            "FROM lead_lists l WHERE l.campaign_id = ? ORDER BY l.id",
            (record.campaign_id,),
        )
        return [ListRecord(int(r[0]), str(r[1]), str(r[2]), int(r[4]), int(r[3])) for r in rows]

    async def set_list_state(self, campaign: str, list_name: str, state: str) -> int:
        """Pause (``paused``) or resume (``active``) a list; returns its id."""
        if state not in ("active", "paused"):
            raise StoreError(f"list state {state!r} is not active or paused")
        list_id = await self._list_id(campaign, list_name)
        await self._run(
            f"setting list {list_name!r} {state}",
            "UPDATE lead_lists SET state = ? WHERE id = ?",
            (state, list_id),
        )
        return list_id

    async def recycle_list(self, campaign: str, list_name: str, now_wall: float) -> int:
        """Give the exhausted leads of a list new attempts; returns how many."""
        list_id = await self._list_id(campaign, list_name)

        async def recycle(c: aiosqlite.Connection) -> int:
            cursor = await c.execute(
                "UPDATE leads SET state = 'pending', attempts = 0, next_at = ? "
                "WHERE list_id = ? AND state = ?",
                (now_wall, list_id, LeadState.EXHAUSTED.value),
            )
            await c.execute(
                "UPDATE lead_lists SET recycled = recycled + 1 WHERE id = ?", (list_id,)
            )
            return max(cursor.rowcount, 0)

        return await self.store.write(f"recycling list {list_name!r}", recycle)

    async def load(
        self, campaign: str, now_wall: float, *, global_dnc: set[str] | None = None
    ) -> tuple[CampaignRecord, Campaign]:
        """The campaign's core with its leads, lists, do-not-call list and abandon days.

        ``global_dnc``, if given, is filled with the global list (and is the set the
        core checks, so adding to it later stops dials at once).
        """
        record = await self.campaign(campaign)
        cid = record.campaign_id
        dnc = global_dnc if global_dnc is not None else set()
        dnc.update(await self.do_not_call(None))
        core = Campaign(
            campaign,
            record.settings.rules,
            global_dnc=dnc,
            campaign_dnc=await self.do_not_call(campaign),
        )
        rows = await self.store.fetch(
            f"reading the leads of campaign {campaign!r}",
            f"SELECT {_LEAD_COLUMNS} FROM leads WHERE campaign_id = ? ORDER BY id",
            (cid,),
        )
        core.add_leads(_lead(r) for r in rows)
        for lst in await self.lists(campaign):
            if lst.state == "paused":
                core.pause_list(lst.list_id)
        for day in await self._days(cid, record.settings.rules, now_wall):
            core.restore_day(day.day, day.live, day.abandoned)
        return record, core

    async def save_leads(self, leads: Iterable[Lead]) -> None:
        rows = [
            (
                lead.state.value,
                lead.attempts,
                lead.next_at,
                lead.last_outcome,
                lead.callback_at,
                lead.lead_id,
            )
            for lead in leads
        ]

        async def update(c: aiosqlite.Connection) -> None:
            await c.executemany(
                "UPDATE leads SET state = ?, attempts = ?, next_at = ?, last_outcome = ?, "
                "callback_at = ? WHERE id = ?",
                rows,
            )

        await self.store.write(f"saving {len(rows)} leads", update)

    # --- attempts ------------------------------------------------------------------

    async def start_attempt(
        self,
        campaign_id: int,
        lead: Lead,
        attempt: int,
        call_id: str,
        now_wall: float,
    ) -> int:
        """Note a dial as it is placed (before the line is asked); returns its id."""

        async def insert(c: aiosqlite.Connection) -> int:
            cursor = await c.execute(
                "INSERT INTO dial_attempts (campaign_id, lead_id, attempt, call_id, e164, "
                "zones, dialled_wall) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    campaign_id,
                    lead.lead_id,
                    attempt,
                    call_id,
                    lead.number,
                    json.dumps(lead.zones),
                    now_wall,
                ),
            )
            await c.execute(
                "UPDATE leads SET state = ?, attempts = ?, callback_at = NULL WHERE id = ?",
                (lead.state.value, lead.attempts, lead.lead_id),
            )
            return int(cursor.lastrowid or 0)

        return await self.store.write(f"noting the dial of {call_id}", insert)

    async def end_attempt(
        self, attempt_id: int, outcome: str, now_wall: float, lead: Lead, agent_id: str = ""
    ) -> None:
        """How the attempt ended, and the lead's state after it, in one transaction."""

        async def update(c: aiosqlite.Connection) -> None:
            await c.execute(
                "UPDATE dial_attempts SET outcome = ?, ended_wall = ?, agent_id = ? WHERE id = ?",
                (outcome, now_wall, agent_id, attempt_id),
            )
            await c.execute(
                "UPDATE leads SET state = ?, attempts = ?, next_at = ?, last_outcome = ?, "
                "callback_at = ? WHERE id = ?",
                (
                    lead.state.value,
                    lead.attempts,
                    lead.next_at,
                    lead.last_outcome,
                    lead.callback_at,
                    lead.lead_id,
                ),
            )

        await self.store.write(f"noting the end of attempt {attempt_id}", update)

    # --- do not call ---------------------------------------------------------------

    async def add_do_not_call(
        self,
        numbers: Iterable[str],
        now_wall: float,
        *,
        campaign: str | None = None,
        reason: str = "",
    ) -> int:
        """Add E.164 numbers to the global list (``campaign`` None) or a campaign's."""
        scope = 0 if campaign is None else (await self.campaign(campaign)).campaign_id
        rows = [(n, scope, now_wall, reason) for n in numbers]

        async def insert(c: aiosqlite.Connection) -> int:
            cursor = await c.executemany(
                "INSERT OR IGNORE INTO do_not_call (e164, campaign_id, added_wall, reason) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )
            return max(cursor.rowcount, 0)

        return await self.store.write(f"adding {len(rows)} numbers to do-not-call", insert)

    async def do_not_call(self, campaign: str | None) -> set[str]:
        scope = 0 if campaign is None else (await self.campaign(campaign)).campaign_id
        rows = await self.store.fetch(
            "reading the do-not-call list",
            "SELECT e164 FROM do_not_call WHERE campaign_id = ?",
            (scope,),
        )
        return {str(r[0]) for r in rows}

    # --- reports -------------------------------------------------------------------

    async def compliance(self, campaign: str, now_wall: float) -> Compliance:
        """Abandon rate per day and over 30 days, dials outside hours, dials to DNC numbers.

        Counted from the attempts as stored: a dial is outside hours if its time was
        outside the campaign's hours in any of the lead's zones, and to a do-not-call
        number if the number was on the global or the campaign's list when dialled.
        """
        record = await self.campaign(campaign)
        cid, rules = record.campaign_id, record.settings.rules
        days = await self._days(cid, rules, now_wall)
        attempts = await self.store.fetch(
            f"reading the attempts of campaign {campaign!r}",
            "SELECT zones, dialled_wall FROM dial_attempts WHERE campaign_id = ?",
            (cid,),
        )
        outside = sum(
            1
            for zones, at in attempts
            if not in_calling_hours(tuple(json.loads(zones)), float(at), rules.hours)
        )
        on_dnc = await self.store.fetch(
            "counting dials to do-not-call numbers",
            "SELECT count(*) FROM dial_attempts a WHERE a.campaign_id = ? AND EXISTS ("
            "SELECT 1 FROM do_not_call d WHERE d.e164 = a.e164 AND d.campaign_id IN (0, ?)"
            " AND d.added_wall <= a.dialled_wall)",
            (cid, cid),
        )
        return Compliance(
            campaign=campaign,
            days=days,
            rolling_live=sum(d.live for d in days),
            rolling_abandoned=sum(d.abandoned for d in days),
            dials=len(attempts),
            dials_outside_hours=outside,
            dials_on_dnc=int(on_dnc[0][0]),
            abandon_cap=rules.abandon_cap,
        )

    async def status(self, campaign: str) -> dict[str, Any]:
        """Leads by state and attempts by outcome."""
        record = await self.campaign(campaign)
        cid = record.campaign_id
        leads = await self.store.fetch(
            "counting leads",
            "SELECT state, count(*) FROM leads WHERE campaign_id = ? GROUP BY state",
            (cid,),
        )
        outcomes = await self.store.fetch(
            "counting attempts",
            "SELECT outcome, count(*) FROM dial_attempts WHERE campaign_id = ? GROUP BY outcome",
            (cid,),
        )
        return {
            "campaign": campaign,
            "state": record.state,
            "mode": record.settings.mode.value,
            "queue": record.settings.queue,
            "script": record.settings.script,
            "leads": {str(s): int(n) for s, n in leads},
            "attempts": {str(o) or "in_progress": int(n) for o, n in outcomes},
            "lists": [
                {"name": lst.name, "state": lst.state, "leads": lst.leads, "recycled": lst.recycled}
                for lst in await self.lists(campaign)
            ],
        }

    # --- internals -----------------------------------------------------------------

    async def _days(self, cid: int, rules: CampaignRules, now_wall: float) -> list[DayFigures]:
        """Live answers and abandons per day (in the campaign's zone), last 30 days."""
        zone = zone_info(rules.day_zone)
        today = datetime.fromtimestamp(now_wall, zone).date()
        first = today - timedelta(days=ROLLING_DAYS - 1)
        since = datetime.combine(first, datetime.min.time(), tzinfo=zone).timestamp()
        rows = await self.store.fetch(
            "reading live answers",
            "SELECT ended_wall, outcome FROM dial_attempts WHERE campaign_id = ? "
            "AND outcome IN ('connected', 'abandoned') AND ended_wall >= ?",
            (cid, since),
        )
        per_day: dict[date, list[int]] = {}
        for at, outcome in rows:
            day = datetime.fromtimestamp(float(at), zone).date()
            if first <= day <= today:
                counts = per_day.setdefault(day, [0, 0])
                counts[0] += 1
                counts[1] += outcome == "abandoned"
        return [DayFigures(d, live, ab) for d, (live, ab) in sorted(per_day.items())]

    async def _list_id(self, campaign: str, list_name: str) -> int:
        record = await self.campaign(campaign)
        rows = await self.store.fetch(
            f"finding list {list_name!r}",
            "SELECT id FROM lead_lists WHERE campaign_id = ? AND name = ?",
            (record.campaign_id, list_name),
        )
        if not rows:
            names = [lst.name for lst in await self.lists(campaign)]
            raise StoreError(
                f"campaign {campaign!r} has no list named {list_name!r} "
                f"(lists: {', '.join(names) or 'none'})"
            )
        return int(rows[0][0])

    async def _run(self, doing: str, sql: str, params: Sequence[object]) -> None:
        async def run(c: aiosqlite.Connection) -> None:
            await c.execute(sql, params)

        await self.store.write(doing, run)


def _lead(row: sqlite3.Row | Sequence[Any]) -> Lead:
    (lead_id, list_id, e164, name, zones, fields, customer_id, state, attempts, next_at,
     last_outcome, callback_at) = row  # fmt: skip
    return Lead(
        lead_id=int(lead_id),
        number=str(e164),
        zones=tuple(json.loads(zones)),
        name=str(name),
        list_id=int(list_id),
        customer_id=None if customer_id is None else int(customer_id),
        state=LeadState(state),
        attempts=int(attempts),
        next_at=float(next_at),
        last_outcome=str(last_outcome),
        callback_at=None if callback_at is None else float(callback_at),
        fields=json.loads(fields),
    )
