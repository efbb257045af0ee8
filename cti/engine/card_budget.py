"""Customer cards cut to fit one bus message.

A customer's card goes out with an offer (:class:`~cti.protocol.CallOffered`), with the
call in hand (:class:`~cti.protocol.CurrentCall`) and as the desk's details
(:class:`~cti.protocol.CustomerDetails`); search results list customers
(:class:`~cti.protocol.CustomerSearchResults`). What the store holds can outgrow
:data:`~cti.protocol.MAX_MESSAGE_BYTES` (50 history rows with 4,000-character notes and
500 script answers each, a number shared by a thousand customers), and the bus drops a
message over it: the agent would get no card at all.

So a card that does not fit is cut, like the wallboard's waiting calls: long notes,
details and answers are clipped with a marker saying how much was cut, then the rows go
in order (history newest first, items most urgent first, matches most valuable first)
while there is room, and the card says how many rows were left out. The customer, the
value explanation and the script always go. See docs/customers.md ("Cards that do not
fit in one message").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TypeVar

from pydantic import BaseModel

from cti.models import Customer, Interaction, Scalar, ServiceItem
from cti.protocol import (
    MAX_MESSAGE_BYTES,
    CallOffered,
    CurrentCall,
    CustomerDetails,
    CustomerSearchResults,
    ScreenPop,
    encode,
)

#: Room kept free below the bus's limit: a card fitted for an offer goes out again as
#: the call in hand (another envelope), and ``consult_from`` may be added after.
ENVELOPE_BYTES = 2 * 1024
#: When a card must be cut: characters kept of a note or an item's detail, of a script
#: answer, and most bytes one history row may take with its answers.
NOTE_CHARS = 1000
ANSWER_CHARS = 200
ROW_BYTES = 8 * 1024
#: Open items, then matches, each take at most this share of the room left (the rest:
#: history).
LIST_SHARE = 0.25

Card = TypeVar("Card", CallOffered, CurrentCall, CustomerDetails)
Row = TypeVar("Row", bound=BaseModel)


def clip(text: str, chars: int) -> str:
    """``text`` cut to ``chars`` characters with a marker saying how many were cut."""
    if len(text) <= chars:
        return text
    return f"{text[:chars]}… [{len(text) - chars:,} more characters not shown]"


def fit_card(message: Card, limit: int = MAX_MESSAGE_BYTES) -> Card:
    """``message`` as is if it fits in ``limit`` bytes (less :data:`ENVELOPE_BYTES`),
    else with its card cut to fit (the counts of rows left out set)."""
    return fit_card_encoded(message, limit)[0]


def fit_card_encoded(message: Card, limit: int = MAX_MESSAGE_BYTES) -> tuple[Card, bytes]:
    """:func:`fit_card`'s answer and its :func:`~cti.protocol.encode`: an offer is
    encoded once, to measure it and to send it (issue 23)."""
    target = limit - ENVELOPE_BYTES
    payload = encode(message)
    if len(payload) <= target:
        return message, payload
    card: ScreenPop | CustomerDetails = (
        message if isinstance(message, CustomerDetails) else message.pop
    )
    history = sorted(card.history, key=lambda row: -row.at)  # newest first
    items = card.service_items
    matches = card.matches if isinstance(card, ScreenPop) else ()
    # The left-out counts at their largest, so that their digits are paid for.
    most: dict[str, object] = {
        "history_left_out": card.history_left_out + len(history),
        "items_left_out": card.items_left_out + len(items),
    }
    if isinstance(card, ScreenPop):
        most["matches_left_out"] = card.matches_left_out + len(matches)
    empty = {"history": (), "service_items": (), **({"matches": ()} if matches else {})}
    bare = _with_card(message, card.model_copy(update=empty | most))
    room = target - len(encode(bare))
    kept_items = _take(items, _shrink_item, int(room * LIST_SHARE))
    room -= _list_size(kept_items)
    kept_matches = _take(matches, _same, int(room * LIST_SHARE))
    room -= _list_size(kept_matches)
    kept_history = _take(history, _shrink_interaction, room)
    update: dict[str, object] = {
        "history": tuple(kept_history),
        "history_left_out": card.history_left_out + len(history) - len(kept_history),
        "service_items": tuple(kept_items),
        "items_left_out": card.items_left_out + len(items) - len(kept_items),
    }
    if isinstance(card, ScreenPop):
        update["matches"] = tuple(kept_matches)
        update["matches_left_out"] = card.matches_left_out + len(matches) - len(kept_matches)
    fitted = _with_card(message, card.model_copy(update=update))
    payload = encode(fitted)
    if len(payload) > target:  # the sums above say it cannot be; a guard all the same
        return bare, encode(bare)
    return fitted, payload


def fit_search_results(
    results: CustomerSearchResults, limit: int = MAX_MESSAGE_BYTES
) -> CustomerSearchResults:
    """The search results as is if they fit, else the first customers that do, with
    ``more`` set (the agent narrows the query)."""
    target = limit - ENVELOPE_BYTES
    if len(encode(results)) <= target:
        return results
    bare = results.model_copy(update={"customers": (), "more": True})
    kept = _take(results.customers, _same, target - len(encode(bare)))
    return results.model_copy(update={"customers": tuple(kept), "more": True})


def _with_card(message: Card, card: ScreenPop | CustomerDetails) -> Card:
    if isinstance(message, CustomerDetails):
        assert isinstance(card, CustomerDetails)
        return card
    return message.model_copy(update={"pop": card})


def _take(rows: Sequence[Row], shrink: Callable[[Row], Row], room: int) -> list[Row]:
    """The first ``rows`` (each shrunk) whose JSON, comma-separated, fits in ``room``."""
    kept: list[Row] = []
    for row in rows:
        small = shrink(row)
        room -= _size(small) + 1
        if room < 0:
            break
        kept.append(small)
    return kept


def _size(model: BaseModel) -> int:
    return len(model.model_dump_json().encode("utf-8"))


def _list_size(rows: Sequence[BaseModel]) -> int:
    return sum(_size(row) + 1 for row in rows)


def _same(row: Customer) -> Customer:
    return row


def _shrink_item(item: ServiceItem) -> ServiceItem:
    """An open item as a card that must be cut carries it: title and detail clipped."""
    title, detail = clip(item.title, ANSWER_CHARS), clip(item.detail, NOTE_CHARS)
    if (title, detail) == (item.title, item.detail):
        return item
    return item.model_copy(update={"title": title, "detail": detail})


def _shrink_interaction(row: Interaction) -> Interaction:
    """The note clipped; script answers clipped, and only as many as
    :data:`ROW_BYTES` takes (the note says how many more there were)."""
    note = clip(row.note, NOTE_CHARS)
    room = ROW_BYTES - _size(row.model_copy(update={"note": note, "script_answers": {}})) - 64
    answers: dict[str, Scalar] = {}
    for key, value in row.script_answers.items():
        key = clip(key, ANSWER_CHARS)
        if isinstance(value, str):
            value = clip(value, ANSWER_CHARS)
        room -= len(json.dumps({key: value}, ensure_ascii=False).encode("utf-8"))
        if room < 0:
            break
        answers[key] = value
    more = len(row.script_answers) - len(answers)
    if more:
        note += f" [{more:,} more script answers not shown]"
    if note == row.note and answers == row.script_answers:
        return row
    return row.model_copy(update={"note": note, "script_answers": answers})
