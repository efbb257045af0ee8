"""An AT command line read into the commands it holds, one at a time.

Read lazily: a modem carries out each command as it reads it, so the commands before a
bad one have taken effect when it says ERROR, and what follows a dial (``D``) is its
dial string.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_AMPERSAND = re.compile(r"[&\\%][A-Z]\d*")
_REGISTER = re.compile(r"S(\d+)(=(\d*)|\?)?")
_BASIC = re.compile(r"([A-Z])(\d*)")


class CommandError(Exception):
    """A command the emulator cannot parse: the modem says ERROR."""


@dataclass(frozen=True, slots=True)
class Dial:
    """``D``: the rest of the line is the dial string (``T5551234;``)."""

    dial_string: str


@dataclass(frozen=True, slots=True)
class SetRegister:
    """``Sn=v``."""

    register: int
    value: int


@dataclass(frozen=True, slots=True)
class Basic:
    """A letter and its number (``E0``, ``Z``, ``H``, ``A``...); no number reads as 0."""

    letter: str
    value: int


def read_commands(body: str) -> Iterator[Dial | SetRegister | Basic]:
    """The commands of ``body`` (the line after ``AT``), in order. Extended commands
    (``+``, ``#``, ``-`` up to ``;``), ``&``/``\\``/``%`` settings and register queries
    are accepted and yield nothing; a command that cannot be read raises
    :class:`CommandError` when it is reached."""
    upper = body.upper()
    i = 0
    while i < len(body):
        c = upper[i]
        if c == " ":
            i += 1
        elif c == "D":
            yield Dial(body[i + 1 :])
            return
        elif c in "+#-":
            end = upper.find(";", i)
            i = len(body) + 1 if end < 0 else end + 1
        elif c in "&\\%":
            i = _matched(_AMPERSAND, upper, i).end()
        elif c == "S":
            m = _matched(_REGISTER, upper, i)
            if m.group(3):
                yield SetRegister(int(m.group(1)), int(m.group(3)))
            i = m.end()
        else:
            m = _matched(_BASIC, upper, i)
            yield Basic(m.group(1), int(m.group(2)) if m.group(2) else 0)
            i = m.end()


def _matched(pattern: re.Pattern[str], text: str, at: int) -> re.Match[str]:
    m = pattern.match(text, at)
    if m is None:
        raise CommandError
    return m
