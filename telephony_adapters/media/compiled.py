"""The media relay's core compiled to C by mypyc, from the same sources, on demand.

The per-packet path of the relay (:mod:`.bridge`, :mod:`.stream`, :mod:`.g711`, the
recording's :mod:`.recorder`, and :mod:`.wiring`) is built by :mod:`cti.compiled_build`
into the user's cache directory, with a copy of the two packages it lives in. A process
runs it when that tree comes first on its ``sys.path``: ``cti serve --compiled-media``
re-runs itself so (``docs/voice.md``), and ``benchmarks/bench_media.py --compiled`` /
``bench_media_core.py --compiled`` measure it beside the interpreted core. The compiled
core is the same code: the same packets in give the same packets and recordings out
(``tests/telephony_adapters/media/test_compiled_media.py``).
"""

from __future__ import annotations

from pathlib import Path

from cti import compiled_build
from cti.compiled_build import CompileError, compiled_env

__all__ = ["BUILD", "COMPILED", "CompileError", "compiled_env", "compiled_tree", "is_compiled"]

COMPILED = (
    "telephony_adapters/media/g711.py",
    "telephony_adapters/media/stream.py",
    "telephony_adapters/media/bridge.py",
    "telephony_adapters/media/recorder.py",
    "telephony_adapters/media/wiring.py",
)
#: The packages copied beside them (the compiled modules import from these).
PACKAGES = ("cti", "telephony_adapters")
BUILD = compiled_build.Build("media core", COMPILED, PACKAGES)


def compiled_tree(cache: Path | None = None, *, quiet: bool = False) -> Path:
    """The tree to put first on ``sys.path``; built on first use (about 25 s).
    Raises :class:`~cti.compiled_build.CompileError` when it cannot be built."""
    return compiled_build.compiled_tree(BUILD, cache, quiet=quiet)


def is_compiled() -> bool:
    """Whether this process runs the compiled media core."""
    from telephony_adapters.media import bridge, g711, recorder, stream

    return compiled_build.is_compiled(bridge, g711, recorder, stream)
