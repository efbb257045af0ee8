"""Reading a CSV lead list for a campaign (:func:`parse_leads`): every bad row is
reported with its line and reason and the rest kept; the campaign store
(:mod:`cti.store.campaigns`) then imports the good ones.

A lead's *zones* are decided on import (:func:`lead_zones`): its own time zone if the
list gives one; else the zones of its number's area (``phonenumbers``), narrowed to the
region's country when the list gives a region; else every zone of the region. Several
zones mean the lead may be called only in hours common to all of them.
"""

from __future__ import annotations

import csv
import io
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import phonenumbers
from phonenumbers import timezone as phone_zones

from cti.phone import PhoneError, parse_phone
from queue_engine.campaign import CampaignError, zone_info

#: Header names (case and spaces ignored) for each known column; others are custom fields.
COLUMNS: dict[str, tuple[str, ...]] = {
    "number": ("number", "phone", "phone_number", "telephone", "tel", "号码", "电话"),
    "name": ("name", "full_name", "姓名", "名称"),
    "time_zone": ("time_zone", "timezone", "tz", "zone", "时区"),
    "region": ("region", "country", "地区"),
}


@dataclass(frozen=True, slots=True)
class LeadRow:
    line: int
    number: str
    e164: str
    name: str
    time_zone: str
    region: str
    zones: tuple[str, ...]
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class LeadRowError:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(slots=True)
class LeadFile:
    """A parsed lead list: the good rows and one error per bad row."""

    rows: list[LeadRow] = field(default_factory=list)
    errors: list[LeadRowError] = field(default_factory=list)


@cache
def country_zones() -> dict[str, tuple[str, ...]]:
    """ISO 3166 country code -> its IANA zones, from the tz database's ``zone.tab``."""
    text = ""
    for folder in zoneinfo.TZPATH:
        path = Path(folder) / "zone.tab"
        if path.is_file():
            text = path.read_text("utf-8")
            break
    else:
        try:  # the tzdata package, where the system has no zone files
            text = resources.files("tzdata").joinpath("zoneinfo/zone.tab").read_text("utf-8")
        except (ModuleNotFoundError, FileNotFoundError):
            text = ""
    out: dict[str, list[str]] = {}
    for raw in text.splitlines():
        if raw.startswith("#") or not raw.strip():
            continue
        parts = raw.split("\t")
        if len(parts) >= 3:
            out.setdefault(parts[0].upper(), []).append(parts[2])
    return {k: tuple(v) for k, v in out.items()}


def lead_zones(e164: str, time_zone: str = "", region: str = "") -> tuple[str, ...]:
    """The zones a lead's calling hours are kept in (module docstring).

    Raises :class:`CampaignError` naming the bad zone or region, or saying that no
    zone can be told.
    """
    if time_zone:
        zone_info(time_zone)
        return (time_zone,)
    try:
        number = phonenumbers.parse(e164)
        by_number = tuple(
            z for z in phone_zones.time_zones_for_number(number) if z != "Etc/Unknown"
        )
        home = phonenumbers.region_code_for_number(number) or ""
    except phonenumbers.NumberParseException:
        by_number, home = (), ""
    if region:
        country = country_zones().get(region.strip().upper())
        if country is None:
            raise CampaignError(
                f"unknown region {region!r} (expected an ISO country code such as US or CN, "
                "or give the time_zone column)"
            )
        narrowed = tuple(z for z in by_number if z in country)
        return narrowed or country
    if by_number:
        return by_number
    if home in country_zones():
        return country_zones()[home]
    raise CampaignError(f"cannot tell the time zone of {e164}; give its time_zone or region")


def _column_of(header: str) -> str:
    key = header.strip().casefold().replace(" ", "_").replace("-", "_")
    for column, names in COLUMNS.items():
        if key in names:
            return column
    return ""


def parse_leads(text: str, default_region: str = "CN") -> LeadFile:
    """Read a CSV lead list (a header row, then one lead per row).

    Every bad row is reported with its line and reason and left out; the others are
    kept. Raises :class:`CampaignError` only when the file as a whole is unusable (no
    header, or no number column).
    """
    out = LeadFile()
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    columns = _header(reader)
    seen: dict[str, int] = {}
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            out.errors.append(LeadRowError(reader.line_num, f"not CSV: {exc}"))
            continue
        line = reader.line_num - (sum(c.count("\n") for c in cells) if cells else 0)
        if not any(c.strip() for c in cells):
            continue  # a blank line
        row = _lead_row(line, columns, cells, default_region, seen)
        if isinstance(row, LeadRowError):
            out.errors.append(row)
            continue
        seen[row.e164] = line
        out.rows.append(row)
    return out


def _header(reader: Iterator[list[str]]) -> list[tuple[str, str]]:
    """Each header cell with the column it is (empty: a custom field);
    :class:`CampaignError` if there is no header or it has no number column."""
    try:
        header = next(reader)
    except StopIteration:
        raise CampaignError(
            "the lead list is empty: expected a header row with a number column"
        ) from None
    except csv.Error as exc:
        raise CampaignError(f"line 1: the header is not CSV: {exc}") from None
    roles = [_column_of(h) for h in header]
    if "number" not in roles:
        raise CampaignError(
            f"the header {header!r} has no number column (expected one of "
            f"{', '.join(COLUMNS['number'])})"
        )
    return list(zip(header, roles, strict=True))


def _lead_row(
    line: int,
    columns: list[tuple[str, str]],
    cells: list[str],
    default_region: str,
    seen: dict[str, int],
) -> LeadRow | LeadRowError:
    """One row read as a lead (``columns``: from :func:`_header`), or why it cannot
    be one; ``seen``: the line of each number kept so far."""
    if len(cells) != len(columns):
        return LeadRowError(line, f"{len(cells)} cells where the header has {len(columns)}")
    values: dict[str, str] = {}
    custom: dict[str, str] = {}
    for (name, role), cell in zip(columns, cells, strict=True):
        if role:
            values[role] = cell.strip()
        else:
            custom[name.strip()] = cell
    number = values.get("number", "")
    if not number:
        return LeadRowError(line, "no number")
    try:
        e164 = parse_phone(number, default_region).e164
    except PhoneError as exc:
        return LeadRowError(line, f"number {number!r} is not a phone number: {exc}")
    if e164 in seen:
        return LeadRowError(line, f"number {number!r} ({e164}) repeats line {seen[e164]}")
    try:
        zones = lead_zones(e164, values.get("time_zone", ""), values.get("region", ""))
    except CampaignError as exc:
        return LeadRowError(line, str(exc))
    return LeadRow(
        line=line,
        number=number,
        e164=e164,
        name=values.get("name", ""),
        time_zone=values.get("time_zone", ""),
        region=values.get("region", ""),
        zones=zones,
        fields=custom,
    )


@dataclass(frozen=True, slots=True)
class LeadImportReport:
    """What importing a lead list did: its id, leads kept, leads already customers, bad rows."""

    list_id: int
    imported: int
    matched_customers: int
    errors: list[LeadRowError]
