"""The line of a configuration error: paths of pydantic's locations mapped to TOML lines."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError, model_validator

from cti.config_lines import LocatedError, error_path, key_lines, line_of

TEXT = """\
# comment = not a key
[engine]
a = 1  # trailing = comment
"b.c" = 2
d.e = 3
list = [
  "x = y",  # not a key inside an array
  "[not] a header",
]
text = '''
z = "inside a multi-line string"
[inside]
'''
after = true

[[flows]]
dnis = ["1"]
[[flows.menus]]
name = "m0"
[[flows.menus]]
name = "m1"
[flows.menus.keys]
"*" = "repeat"
7 = "queue:x"

[[flows]]
dnis = ["2"]
[[flows.menus]]
keys = { "1" = "a", "2" = "b" }
[flows.extra]
f = 'it"s # not a comment'
"""


def test_every_header_and_key_has_its_line() -> None:
    tomllib.loads(TEXT)  # the sample is TOML
    lines = key_lines(TEXT)
    assert lines[("engine",)] == 2
    assert lines[("engine", "a")] == 3
    assert lines[("engine", "b.c")] == 4
    assert lines[("engine", "d", "e")] == 5
    assert lines[("engine", "list")] == 6
    assert lines[("engine", "text")] == 10
    assert lines[("engine", "after")] == 14
    assert ("engine", "x") not in lines
    assert ("engine", "z") not in lines
    assert ("inside",) not in lines
    assert ("not",) not in lines
    assert lines[("flows", 0)] == 16
    assert lines[("flows", 0, "menus", 1, "name")] == 21
    assert lines[("flows", 0, "menus", 1, "keys", "*")] == 23
    assert lines[("flows", 0, "menus", 1, "keys", "7")] == 24
    assert lines[("flows", 1, "dnis")] == 27
    assert lines[("flows", 1, "menus", 0)] == 28
    assert lines[("flows", 1, "extra", "f")] == 31


def test_a_path_maps_to_its_deepest_part_in_the_file() -> None:
    lines = key_lines(TEXT)
    # Inline table: its line. Index into an array: the array's key.
    assert line_of(lines, ("flows", 1, "menus", 0, "keys", "2")) == 29
    assert line_of(lines, ("flows", 0, "dnis", 0)) == 17
    # A union's tag in between is stepped over.
    assert line_of(lines, ("flows", 0, "sip", "menus", 1, "name")) == 21
    assert line_of(lines, ("caller", "time_zone")) is None
    assert line_of(lines, ()) is None


def test_text_it_cannot_follow_gives_fewer_lines_never_an_error() -> None:
    for text in ("[", "[[", "= 1", 'a = "unterminated', "a = [\n", "a = '''\n", "\x00=\x00"):
        assert isinstance(key_lines(text), dict)


@given(st.text(alphabet="[]{}\"'=.#\\ \nab1", max_size=120))
def test_no_text_makes_it_raise(text: str) -> None:
    lines = key_lines(text)
    assert all(1 <= n <= text.count("\n") + 1 for n in lines.values())


class _Inner(BaseModel):
    x: int = 0

    @model_validator(mode="after")
    def _bad(self) -> _Inner:
        if self.x:
            raise LocatedError("x is wrong here", "deep", 3)
        return self


class _Outer(BaseModel):
    items: tuple[_Inner, ...] = ()


def test_a_located_error_extends_the_location() -> None:
    with pytest.raises(ValidationError) as caught:
        _Outer.model_validate({"items": [{}, {"x": 1}]})
    (err,) = caught.value.errors()
    assert error_path(err) == ("items", 1, "deep", 3)
    assert "x is wrong here" in err["msg"]
    with pytest.raises(ValidationError) as caught:
        _Outer.model_validate({"items": [{"x": "a"}]})
    assert error_path(caught.value.errors()[0]) == ("items", 0, "x")
