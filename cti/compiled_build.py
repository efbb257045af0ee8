"""Hot modules compiled to C by mypyc, from the same sources, into a cache (on demand).

A :class:`Build` names modules to compile and the packages they live in. Built by
:func:`compiled_tree`, they go (with a copy of those packages) to the user's cache
directory under a name derived from the sources' content, the build's modules, mypy's
and Python's versions: a change to any source gives a new name, so a stale build is
never run, and an unchanged tree reuses its build. Nothing is compiled in place: a
process imports the build only when the tree is first on its ``sys.path``
(:func:`compiled_env` for a child process). Needs a C compiler and mypy (which brings
mypyc); nothing is downloaded.

The named module sets live here, so that every user names the same modules without
importing another's package: :data:`ROUTER_MODULES` (the simulator's build adds its
event loop: :mod:`simulators.compiled`), :data:`MEDIA_MODULES` (the media relay's core:
:mod:`telephony_adapters.media.compiled`), and :data:`ENGINE`, both in one build, which
``cti serve --compiled`` runs (:func:`run_compiled`). What costs in compiled code, and
how their hot paths avoid it, is in :mod:`simulators.compiled`'s docstring.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from types import ModuleType

from cti.errors import CtiError

#: mypyc reads the pydantic plugin from here (the models' constructors are checked).
_MYPY_CONFIG = "[mypy]\nplugins = pydantic.mypy\n"


class CompileError(CtiError):
    """A build cannot be made (no mypy, no C compiler, mypyc failed)."""


@dataclass(frozen=True, slots=True)
class Build:
    """What to compile: ``modules`` (paths from the source root) and the ``packages``
    copied beside them (every package the compiled modules import from)."""

    name: str
    modules: tuple[str, ...]
    packages: tuple[str, ...]

    def module_names(self) -> list[str]:
        return [path.removesuffix(".py").replace("/", ".") for path in self.modules]


#: The router (its parts), its priority keys, actions and tallies: where a routing
#: decision spends its time.
ROUTER_MODULES = (
    "queue_engine/router.py",
    "queue_engine/router_state.py",
    "queue_engine/transitions.py",
    "queue_engine/router_core.py",
    "queue_engine/matching.py",
    "queue_engine/call_control.py",
    "queue_engine/agent_desk.py",
    "queue_engine/call_desk.py",
    "queue_engine/timers.py",
    "queue_engine/members.py",
    "queue_engine/priority.py",
    "queue_engine/actions.py",
    "queue_engine/stats.py",
)
#: The media relay's per-packet path and its recorder.
MEDIA_MODULES = (
    "telephony_adapters/media/g711.py",
    "telephony_adapters/media/stream.py",
    "telephony_adapters/media/bridge.py",
    "telephony_adapters/media/recorder.py",
    "telephony_adapters/media/wiring.py",
)
#: What ``cti serve --compiled`` runs compiled: the router and the media core.
ENGINE = Build(
    "engine's router and media core",
    ROUTER_MODULES + MEDIA_MODULES,
    ("cti", "queue_engine", "telephony_adapters"),
)


def source_root() -> Path:
    """The directory that holds the packages (the checkout, or site-packages)."""
    return Path(__file__).resolve().parent.parent


def _digest(build: Build, root: Path) -> str:
    try:
        import mypy.version
    except ImportError:
        raise CompileError(
            f"compiling the {build.name} needs mypy (it brings mypyc): `.venv/bin/pip install mypy`"
        ) from None
    digest = hashlib.sha256(f"{mypy.version.__version__} {sys.version}".encode())
    digest.update(repr((build.name, build.modules, build.packages)).encode())
    for pkg in build.packages:
        for path in sorted((root / pkg).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def tree_path(build: Build, cache: Path | None = None) -> Path:
    """Where the build of the current sources is (or will be)."""
    import platformdirs

    base = cache if cache is not None else Path(platformdirs.user_cache_dir("cti-desk"))
    return base / "mypyc" / _digest(build, source_root())


def compiled_tree(build: Build, cache: Path | None = None, *, quiet: bool = False) -> Path:
    """A directory to put first on ``sys.path``: the packages, with the build's modules
    as extension modules. Built on first use (20-60 s), then reused.

    Raises :class:`CompileError` naming what is missing when it cannot be built.
    """
    root = source_root()
    dest = tree_path(build, cache)
    if (dest / ".built").exists():
        return dest
    if shutil.which(os.environ.get("CC", "gcc")) is None and shutil.which("cc") is None:
        raise CompileError(f"compiling the {build.name} needs a C compiler (gcc or cc) on the PATH")
    if not quiet:
        print(
            f"compiling the {build.name} ({len(build.modules)} modules) with mypyc into {dest}"
            " (once per change of the sources) ...",
            file=sys.stderr,
            flush=True,
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=dest.parent))
    try:
        for pkg in build.packages:
            shutil.copytree(
                root / pkg, work / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.so")
            )
        (work / "mypy.ini").write_text(_MYPY_CONFIG, encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "mypyc", *build.modules],
            cwd=work,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise CompileError(f"mypyc could not compile the {build.name}:\n{tail}")
        shutil.rmtree(work / "build", ignore_errors=True)
        (work / ".built").touch()
        try:
            work.rename(dest)
        except OSError:  # another process finished the same build first
            if not (dest / ".built").exists():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest


def compiled_env(tree: Path) -> dict[str, str]:
    """The environment of a child process that imports the compiled modules."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{path}" if path else str(tree)}


def is_compiled(*modules: ModuleType) -> bool:
    """Whether every one of ``modules`` was loaded from an extension module."""
    return all((module.__file__ or "").endswith((".so", ".pyd")) for module in modules)


def loaded(build: Build) -> bool:
    """Whether this process runs every module of ``build`` compiled (imports them)."""
    return is_compiled(*(import_module(name) for name in build.module_names()))


#: Set in the process :func:`run_compiled` starts (the tree it was given): it must not
#: start another.
CHILD_MARK = "CTI_COMPILED_TREE"


def run_compiled(build: Build, argv: Sequence[str], module: str = "cti.app.cli") -> Path | None:
    """Return if this process runs ``build`` compiled (the tree it came from, or None if
    not started here); else build it (first time: a message on stderr) and replace this
    process (the same id, arguments and environment) by ``python -P -m module argv``
    with the build first on its path (``-P``: a checkout as working directory must not
    come before it). Raises :class:`CompileError` when it cannot be built (no mypy, no
    C compiler) or did not load."""
    mark = os.environ.get(CHILD_MARK)
    if loaded(build):
        return Path(mark) if mark else None
    if mark:
        raise CompileError(
            f"the compiled {build.name} did not load from {mark} "
            "(PYTHONPATH changed, or the build is unusable: delete it to build it again)"
        )
    tree = compiled_tree(build)
    env = compiled_env(tree) | {CHILD_MARK: str(tree)}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-P", "-m", module, *argv], env)
