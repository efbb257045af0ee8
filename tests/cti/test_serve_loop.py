"""`cti serve` makes its event loop with uvloop (a dependency: the media relay's CPU per
packet, docs/voice.md), and asyncio's loop when uvloop is missing."""

from __future__ import annotations

import asyncio
import builtins
from typing import Any

import pytest

from cti.app.commands import serve


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_serve_runs_on_uvloop() -> None:
    assert serve.run_loop(_loop_module()).startswith("uvloop")


def test_without_uvloop_serve_runs_on_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_uvloop(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "uvloop":
            raise ImportError("no uvloop here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_uvloop)
    assert serve.loop_factory() is None
    assert serve.run_loop(_loop_module()).startswith("asyncio")
