"""Finding a queue's script: shipped names or paths, bounded, checked, read again only
when the file changes, every failure a problem naming the file (and line)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from scripts_engine.catalog import (
    MAX_SCRIPT_BYTES,
    ScriptCatalog,
    is_path_ref,
    read_script_text,
    resolve,
    shipped_names,
    text_sha256,
)

TINY = """\
[script]
name = "Tiny"
version = "{version}"
direction = "inbound"
start = "a"

[nodes.a]
kind = "end"
text = "{text}"
"""


def test_shipped_names_resolve_to_the_examples() -> None:
    assert shipped_names() == ["inbound_service_en", "inbound_service_zh", "outbound_survey"]
    loaded, problems = read_script_text("inbound_service_zh")
    assert problems == []
    assert loaded is not None
    assert (loaded.name, loaded.version) == ("客户服务", "1.0")
    assert loaded.sha256 == text_sha256(resolve("inbound_service_zh").read_text("utf-8"))


@pytest.mark.parametrize(
    ("ref", "is_path"),
    [("outbound_survey", False), ("mine.toml", True), ("scripts/a", True), ("a\\b", True)],
)
def test_a_reference_is_a_path_when_it_looks_like_one(ref: str, is_path: bool) -> None:
    assert is_path_ref(ref) is is_path


def test_an_unknown_name_lists_the_shipped_ones() -> None:
    loaded, [problem] = read_script_text("inbound_servise")
    assert loaded is None
    assert "no shipped script named 'inbound_servise'" in problem.message
    assert "inbound_service_en" in problem.message


def test_file_problems_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    _, [problem] = read_script_text(str(missing))
    assert problem.file == str(missing)
    assert "cannot read" in problem.message

    big = tmp_path / "big.toml"
    big.write_text(TINY.format(version="1", text="x" * MAX_SCRIPT_BYTES), encoding="utf-8")
    _, [problem] = read_script_text(str(big))
    assert f"at most {MAX_SCRIPT_BYTES}" in problem.message

    latin = tmp_path / "latin.toml"
    latin.write_bytes(TINY.format(version="1", text="caf\xe9").encode("latin-1"))
    _, [problem] = read_script_text(str(latin))
    assert "not UTF-8" in problem.message

    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.format(version="1", text="{nobody.x}"), encoding="utf-8")
    _, [problem] = read_script_text(str(bad))
    assert (problem.file, problem.line, problem.node) == (str(bad), 7, "a")
    assert "unknown variable {nobody.x}" in problem.message


def test_the_catalog_reads_a_file_again_only_when_it_changes_and_logs_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="scripts_engine.catalog")
    path = tmp_path / "s.toml"
    path.write_text(TINY.format(version="1", text="hi"), encoding="utf-8")
    catalog = ScriptCatalog()
    first = catalog.get(str(path))
    assert first is not None
    assert first.version == "1"
    assert catalog.get(str(path)) is first  # unchanged: the same object, not read again

    path.write_text(TINY.format(version="2", text="{"), encoding="utf-8")
    os.utime(path, ns=(1, 1))  # a different stamp even on coarse clocks
    assert catalog.get(str(path)) is None
    assert catalog.get(str(path)) is None
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert f"{path}:7: node a: bad text" in errors[0].getMessage()

    path.write_text(TINY.format(version="3", text="ok"), encoding="utf-8")
    os.utime(path, ns=(2, 2))
    third = catalog.get(str(path))
    assert third is not None
    assert third.version == "3"
    assert catalog.get("") is None
    assert catalog.lookup("") == (None, ())
