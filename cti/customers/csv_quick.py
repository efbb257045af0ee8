"""A customer row of the common shape checked at once (the import's worker process,
:mod:`cti.customers.csv_worker`): most rows of a large file.

:func:`~cti.customers.csv_files.parse_customer_row` names every problem of a row, and the
worker then makes the row's message (:data:`Checked`) from what it gives; that is some
30 Python calls a row. :func:`quick_checker` gives a check that makes the message of a
row in fewer, and gives up (None) on any row that is not plain: an id, an address,
several values in a cell, a number the phone shortcut does not answer
(:func:`~cti.customers.phones.cn_shortcut`), a field too long, a character or code that
is not allowed. Such a row goes to ``parse_customer_row`` as before, so the message of
any row, and the errors, are the same (``tests/cti/test_customer_csv_quick.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cti.customers.csv_files import (
    _EMAIL,
    _LANGUAGE,
    _PHONE_KINDS,
    _SINGLE_COLUMNS,
    MAX_FIELD,
)
from cti.customers.form import text_problem
from cti.customers.merge import new_customer_columns
from cti.customers.phones import Phone, cn_shortcut
from cti.store.customers import search_keys_cached

#: The most (language, time zone) pairs a check keeps as known good (a hostile file may
#: give a new one each row).
_MAX_CODES = 1024

Checked = tuple[Any, ...]
"""A checked row as the worker sends it: line, id, phones, e-mail addresses, fields, the
folded name, and the columns of the new customer it alone makes (None with an id)."""


def quick_checker(
    names: list[str], default_region: str, time_zone: str
) -> Callable[[int, dict[str, str]], Checked | None]:
    """The check of one row of a file with these columns (module docstring): the row's
    message, or None for ``parse_customer_row`` to check it."""
    phone_columns = tuple((c, kind.value) for c, kind in _PHONE_KINDS if c in names)
    singles = tuple(c for c in _SINGLE_COLUMNS if c in names)
    zones: set[str] = set()  # known good: ZoneInfo once each
    codes: set[tuple[str | None, str | None]] = set()  # (language, zone) pairs known good
    folded: dict[str, tuple[str, str]] = {}  # names and companies: search_keys_cached

    def check(line: int, cells: dict[str, str]) -> Checked | None:
        get = cells.get
        if get("id") or get("address"):
            return None
        text = "".join(cells.values())
        if len(text) > MAX_FIELD or text_problem(text) is not None:
            return None
        phones = _phones(cells, phone_columns)
        if phones is None:
            return None
        if (pair := (get("language"), get("time_zone"))) not in codes:
            if not _codes_ok(cells, zones):
                return None
            if len(codes) < _MAX_CODES:  # a file has a few: each checked once
                codes.add(pair)
        email = get("email", "").strip()
        if email and (";" in email or "；" in email or not _EMAIL.match(email)):
            return None
        emails = (email,) if email else ()
        fields = {k: v for k in singles if (v := get(k))}
        keys = search_keys_cached(fields.get("name", ""), fields.get("company", ""), emails, folded)
        columns = new_customer_columns(fields, emails, keys, time_zone)
        return line, None, phones, emails, fields, keys[0], columns

    if default_region != "CN":  # the phone shortcut is China's
        return lambda line, cells: None
    return check


def _phones(
    cells: dict[str, str], phone_columns: tuple[tuple[str, str], ...]
) -> tuple[Phone, ...] | None:
    """The row's numbers, each once, or None if one is not for the shortcut."""
    phones: list[Phone] = []
    for column, kind in phone_columns:
        cell = cells.get(column)
        if not cell:
            continue
        if ";" in cell or "；" in cell:
            return None
        text = cell.strip()
        e164 = cn_shortcut(text)
        if e164 is None:
            return None
        if not phones or e164 not in [p[1] for p in phones]:
            phones.append((text, e164, kind, ""))
    return tuple(phones)


def _codes_ok(cells: dict[str, str], zones: set[str]) -> bool:
    """Whether the row's language and time zone are good (``zones``: known good)."""
    language = cells.get("language")
    if language and not _LANGUAGE.match(language):
        return False
    zone = cells.get("time_zone")
    if zone and zone not in zones:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            return False
        zones.add(zone)
    return True
