"""The media relay's core compiled to C by mypyc, from the same sources, on demand.

The per-packet path of the relay (:mod:`.bridge`, :mod:`.stream`, :mod:`.g711`, the
recording's :mod:`.recorder`, and :mod:`.wiring`) is built by :mod:`cti.compiled_build`
into the user's cache directory, with a copy of the two packages it lives in. A process
runs it when that tree comes first on its ``sys.path``: :func:`run_compiled` replaces
the process (the same process id, arguments and environment) by the same command with
the build first on ``PYTHONPATH``. ``cti serve --compiled`` (or ``--compiled-media``)
does that with :data:`cti.compiled_build.ENGINE`, this core and the router in one
build (``docs/voice.md``, ``docs/acd.md``); ``python
-m telephony_adapters.media.compiled`` builds it ahead (at install) and prints where;
``benchmarks/bench_media.py --compiled`` and ``bench_media_core.py --compiled`` measure
it beside the interpreted core. The compiled core is the same code: the same packets in
give the same packets and recordings out (``tests/.../media/test_compiled_media.py``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from cti import compiled_build
from cti.compiled_build import CHILD_MARK, MEDIA_MODULES, CompileError, compiled_env

__all__ = [
    "BUILD",
    "CHILD_MARK",
    "COMPILED",
    "CompileError",
    "compiled_env",
    "compiled_tree",
    "is_compiled",
    "run_compiled",
]

COMPILED = MEDIA_MODULES
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


def run_compiled(argv: Sequence[str], module: str = "cti.app.cli") -> None:
    """Return if this process runs the compiled media core; else replace it by
    ``python -P -m module argv`` on the build (:func:`cti.compiled_build.run_compiled`).
    Raises :class:`~cti.compiled_build.CompileError` when it cannot be built or did not
    load."""
    compiled_build.run_compiled(BUILD, argv, module)


def main(argv: Sequence[str]) -> int:
    """``python -m telephony_adapters.media.compiled``: build (if needed) and print the
    tree; ``--check``: print whether this process runs the compiled core."""
    if list(argv) == ["--check"]:
        print("compiled" if is_compiled() else "interpreted")
        return 0
    try:
        print(compiled_tree())
    except CompileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
