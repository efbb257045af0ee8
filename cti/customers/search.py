"""Which index answers a customer search (see :mod:`cti.customers.base`): a number in
any format, ``#id``, an e-mail address, or part of a name, company or e-mail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from cti.customers.phones import CHINESE_EXTENSION
from cti.phone import classify
from cti.store.customers import fold


class SearchKind(StrEnum):
    ID = "id"
    NUMBER = "number"
    EMAIL = "email"
    NAME = "name"


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """How a query will be answered (see the module docstring)."""

    kind: SearchKind
    key: str
    """The id, the E.164 number, the lower-case e-mail, or the folded name text."""
    also_id: int | None = None
    """For a query of digits only: the customer with this id comes first."""


_ID_QUERY = re.compile(r"^(?:#|id:\s*)(\d{1,18})$", re.IGNORECASE)
_NUMBER_QUERY = re.compile(r"^[+(]?[\d\s().\-/]{5,}(?:\s*(?:ext\.?|x|转)\s*\d+)?$", re.IGNORECASE)
EMAIL_QUERY = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def plan_search(text: str, default_region: str) -> SearchPlan | None:
    """Which index answers ``text``; None for an empty query."""
    query = text.strip()
    if not query:
        return None
    by_id = _ID_QUERY.match(query)
    if by_id:
        return SearchPlan(SearchKind.ID, by_id[1])
    if EMAIL_QUERY.match(query):
        return SearchPlan(SearchKind.EMAIL, query.lower())
    if _NUMBER_QUERY.match(query) and sum(ch.isdigit() for ch in query) >= 5:
        _, e164 = classify(CHINESE_EXTENSION.sub(" ext. ", query), default_region)
        if e164 is not None:
            also = int(query) if query.isdigit() and len(query) <= 18 else None
            return SearchPlan(SearchKind.NUMBER, e164, also_id=also)
    if query.isdigit() and len(query) <= 18:
        return SearchPlan(SearchKind.ID, query)
    key = fold(query)
    return SearchPlan(SearchKind.NAME, key) if key else None


def fts_phrase(key: str) -> str:
    """An FTS5 query matching ``key`` as a substring (trigram tokenizer)."""
    return '"' + key.replace('"', '""') + '"'
