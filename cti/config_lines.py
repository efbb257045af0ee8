"""Where a configuration error is in its TOML file: the line of the key it names.

Pydantic names a bad entry by its path in the parsed data (``flows.1.menus.0.keys.7``);
:func:`key_lines` reads the file's text once and maps every table header
(``[caller]``, ``[[flows]]``, ``[[flows.menus]]`` counted per parent), every key line
(``key = value``, dotted and quoted keys too) and their prefixes to a line number, and
:func:`line_of` finds the line of the longest part of a path that the file holds (an
inline table maps to its line; a path the file does not hold at all, a default, has
none). A validator that knows more exactly where a problem is raises
:class:`LocatedError`; :func:`error_path` appends that to pydantic's location.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Path = tuple[str | int, ...]


class LocatedError(ValueError):
    """A validation problem with its place inside the entry being validated (appended to
    the entry's location, e.g. ``("menus", 0, "keys", "7")``)."""

    def __init__(self, message: str, *where: str | int) -> None:
        super().__init__(message)
        self.where: Path = where


def error_path(error: Mapping[str, object]) -> Path:
    """The full path of one of ``ValidationError.errors()``: its location, and the
    :class:`LocatedError` place within it if a validator gave one."""
    found = error.get("loc", ())
    loc: Path = tuple(found) if isinstance(found, tuple) else ()
    ctx = error.get("ctx")
    cause = ctx.get("error") if isinstance(ctx, dict) else None
    return loc + cause.where if isinstance(cause, LocatedError) else loc


def line_of(lines: Mapping[Path, int], path: Sequence[str | int]) -> int | None:
    """The line of the deepest part of ``path`` the file names; parts it does not name
    (a union's tag, an index into an inline array) are stepped over."""
    found: int | None = None
    at: Path = ()
    for part in path:
        step = (*at, part)
        if step in lines:
            at, found = step, lines[step]
    return found


def key_lines(text: str) -> dict[Path, int]:
    """Path -> line (1-based) of every table header, key and their prefixes in ``text``
    (TOML). Arrays of tables are indexed as the parser indexes them. Never raises: text
    it cannot follow maps to fewer paths."""
    lines: dict[Path, int] = {}
    last: dict[Path, int] = {}
    table: Path = ()
    pending = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        if pending:
            pending = _continue_value(pending, raw)
            continue
        line = raw.strip()
        if line.startswith("["):
            table = _header(line, last, lines, number)
        elif line and not line.startswith("#"):
            key, value = _split_key(line)
            if key is None:
                continue
            _remember(lines, table + key, number)
            pending = _continue_value("", value)
    return lines


def _header(line: str, last: dict[Path, int], lines: dict[Path, int], number: int) -> Path:
    array = line.startswith("[[")
    inner = line[2:] if array else line[1:]
    end = _find_outside_strings(inner, "]")
    parts = _dotted(inner[:end] if end >= 0 else inner)
    resolved: list[str | int] = []
    for i, part in enumerate(parts):
        resolved.append(part)
        if (array and i == len(parts) - 1) or tuple(resolved) not in last:
            continue
        resolved.append(last[tuple(resolved)])
    if array:
        key = tuple(resolved)
        index = last.get(key, -1) + 1
        last[key] = index
        resolved.append(index)
    path = tuple(resolved)
    _remember(lines, path, number)
    return path


def _remember(lines: dict[Path, int], path: Path, number: int) -> None:
    for n in range(1, len(path) + 1):
        lines.setdefault(path[:n], number)
    lines[path] = number


def _split_key(line: str) -> tuple[Path | None, str]:
    eq = _find_outside_strings(line, "=")
    if eq <= 0:
        return None, ""
    parts = _dotted(line[:eq])
    return (parts or None), line[eq + 1 :]


def _dotted(key: str) -> Path:
    """``a."b.c".'d'`` -> ("a", "b.c", "d")."""
    parts: list[str | int] = []
    current = ""
    quote = ""
    for ch in key.strip():
        if quote:
            if ch == quote:
                quote = ""
            else:
                current += ch
        elif ch in "\"'":
            quote = ch
        elif ch == ".":
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    parts.append(current.strip())
    return tuple(p for p in parts if p != "")


def _find_outside_strings(text: str, target: str) -> int:
    quote = ""
    escaped = False
    for i, ch in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\" and quote == '"':
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return -1
        elif ch == target:
            return i
    return -1


def _continue_value(pending: str, text: str) -> str:
    """What is still open after ``text`` (a value's start or its next line): "" when the
    value is complete, else the state (an open multi-line string or bracket depth)."""
    if pending.startswith(("'''", '"""')):
        closing = pending[:3]
        end = text.find(closing)
        if end < 0:
            return pending
        text, pending = text[end + 3 :], pending[3:]
    return _scan_value(text, len(pending))


def _scan_value(text: str, depth: int) -> str:
    i = 0
    quote = ""
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 1
            elif ch == quote:
                quote = ""
        elif text.startswith(("'''", '"""'), i):
            close = text.find(text[i : i + 3], i + 3)
            if close < 0:
                return text[i : i + 3] + "[" * depth
            i = close + 2
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            break
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth = max(0, depth - 1)
        i += 1
    return "[" * depth
