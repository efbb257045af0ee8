"""The script an offer carries is made once per script read (issue 23): offers send the
same one while the file is unchanged, and the new version once it changes."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from cti.config import load_config
from cti.engine.line_book import LineBook
from cti.engine.screen_pop import ScreenPops
from queue_engine.router import Router
from scripts_engine.catalog import ScriptCatalog
from tests.scripts_engine.test_catalog import TINY


def _script(version: str) -> str:
    return TINY.format(version=version, text="bye")


def test_offers_send_the_script_made_once_a_version(tmp_path: Path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(_script("1"), "utf-8")
    config = load_config(None, {})
    pops = ScreenPops(cast(Router, None), lambda: config, ScriptCatalog(), LineBook([], None), {})
    pops.call_scripts["c1"] = pops.call_scripts["c2"] = str(path)
    first = pops.call_script("general", "c1")
    assert first is not None
    assert (first.name, first.version, first.text) == ("Tiny", "1", _script("1"))
    assert pops.call_script("general", "c2") is first  # kept, not made again
    path.write_text(_script("2.0"), "utf-8")  # another size: read again
    second = pops.call_script("general", "c1")
    assert second is not None
    assert (second.version, second.text) == ("2.0", _script("2.0"))
    assert pops.call_script("general", "c2") is second
