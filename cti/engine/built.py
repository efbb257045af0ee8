"""Messages the engine makes of its own values, without pydantic's validation (issue 23).

An agent's state (four a call) and an offer's card are made of what the router, the
configuration and the caller's lookup hold: values validated once already, each of
its field's type. Validating them again cost more than encoding them (~3 us a state,
~5 an offer, warm). :func:`built` makes the message of such values as they are; its
maker cleans the text a field's validator would clean (:func:`shown`,
:func:`event_line`), so the message is the one validation would make: the tests
compare the two, field by field and byte for byte on the wire.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from cti.events import MAX_SHOWN_NAME_CHARS
from cti.fields import MAX_LINE_CHARS, clean_text

Model = TypeVar("Model", bound=BaseModel)

_set = object.__setattr__


def built(cls: type[Model], values: dict[str, Any]) -> Model:
    """``cls`` holding ``values`` as they are: every field of ``cls``, each already what
    validation makes of it. Nothing is checked: for the engine's own values only."""
    message = cls.__new__(cls)
    _set(message, "__dict__", values)
    _set(message, "__pydantic_fields_set__", set(values))
    _set(message, "__pydantic_extra__", None)
    _set(message, "__pydantic_private__", None)
    return message


#: Texts whose shown form is kept (:func:`shown`): agents' names and callers' numbers.
SHOWN_KEPT = 4096
_shown: dict[str, str] = {}


def shown(text: str) -> str:
    """``text`` as a :data:`~cti.events.ShownName` field's validator leaves it. Kept for
    the texts shown again (an agent's name and its caller's number in each of a call's
    four states: issue 23)."""
    kept = _shown.get(text)
    if kept is None:
        if len(_shown) >= SHOWN_KEPT:
            _shown.clear()
        kept = _shown[text] = clean_text(text, max_length=MAX_SHOWN_NAME_CHARS) if text else text
    return kept


def event_line(text: str) -> str:
    """``text`` as an :data:`~cti.fields.EventLine` field's validator leaves it."""
    return clean_text(text, max_length=MAX_LINE_CHARS) if text else text
