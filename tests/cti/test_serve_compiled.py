"""``cti serve --compiled`` (alias ``--compiled-media``): the engine re-executed on one
mypyc build of the router and the media core (:data:`cti.compiled_build.ENGINE`), or
refused with the reason when that build cannot be made."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cti import compiled_build
from cti.app.cli import main


def _serve(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "CTI_BROKER_URL"}
    return subprocess.run(
        [sys.executable, "-m", "cti.app.cli", "serve", *argv],
        cwd=cwd,
        env=base | env,
        capture_output=True,
        text=True,
    )


def test_the_engine_build_holds_the_router_and_the_media_core() -> None:
    names = compiled_build.ENGINE.module_names()
    assert "queue_engine.router" in names
    assert "telephony_adapters.media.bridge" in names
    assert set(compiled_build.ROUTER_MODULES + compiled_build.MEDIA_MODULES) == set(
        compiled_build.ENGINE.modules
    )


@pytest.mark.parametrize("flag", ["--compiled", "--compiled-media"])
def test_serve_compiled_runs_the_engine_on_the_compiled_router_and_media_core(
    tmp_path: Path, flag: str
) -> None:
    """The process replaces itself by one on the build (it says from where), which then
    goes on as ``cti serve`` does: here, with no broker configured, it stops naming that."""
    tree = compiled_build.compiled_tree(compiled_build.ENGINE, quiet=True)
    done = _serve([flag], tmp_path)
    assert done.returncode != 0
    assert f"run compiled (mypyc) from {tree}" in done.stderr
    assert "cti serve needs a broker" in done.stderr


def test_serve_compiled_refuses_without_a_c_compiler(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    # a fresh cache (nothing built there) and no compiler on the PATH
    done = _serve(
        ["--compiled"], tmp_path, PATH=str(empty), CC="no-such-cc", XDG_CACHE_HOME=str(tmp_path)
    )
    assert done.returncode != 0
    assert "needs a C compiler (gcc or cc)" in done.stderr
    assert "needs a broker" not in done.stderr  # refused before anything started
    assert not list(tmp_path.glob("cti-desk/mypyc/*/.built"))


def _no_exec(*args: object) -> None:
    raise AssertionError(f"execve{args}")


def test_serve_compiled_refuses_without_mypy(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "mypy.version", None)  # `import mypy.version` fails
    monkeypatch.delenv(compiled_build.CHILD_MARK, raising=False)
    monkeypatch.setattr(os, "execve", _no_exec)  # this test process must never be replaced
    assert main(["serve", "--compiled"]) != 0
    err = capsys.readouterr().err
    assert "needs mypy (it brings mypyc)" in err
    assert "pip install mypy" in err
