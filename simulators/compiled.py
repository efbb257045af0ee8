"""The simulator's hot path compiled to C by mypyc, from the same sources, on demand.

``cti simulate --compiled`` and ``benchmarks/bench_simulator.py`` run the production
router and the discrete-event loop compiled: the modules of :data:`COMPILED` are built by
mypyc (a C compiler and ``mypy`` must be installed) into a copy of the three packages
they live in, in the user's cache directory, under a name derived from the sources'
content. A change to any source gives a new name, so a stale build is never run; an
unchanged tree reuses its build. Nothing is compiled in place: the project's own
modules stay plain Python for everything else (tests, the engine, the console).

The compiled modules are the same code, so a compiled day is the same day: the same
seed gives the same records (the benchmark checks it on every run, and the router's
tests run on the build too: ``tests/simulators/test_compiled.py``).

What stays slow in compiled code is what mypyc cannot see into, and the hot paths
avoid it: a member of an enum of an uncompiled module (``AgentState.READY`` goes
through ``EnumType.__getattr__``: :mod:`queue_engine.members` holds them as ``Final``
constants), a pydantic model's field (through ``BaseModel.__getattr__``'s hook: the
router keeps a queue's hot config fields in its ``QueueEntry``), a dataclass's generated
``__init__`` (interpreted: the per-call records write theirs out), a module global not
``Final`` (a dict lookup), and building a pydantic model (~10k instructions: the
simulator builds its per-call inputs by the model's validator).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import platformdirs

from cti.errors import SimulationError

#: The modules compiled: the router (its parts), its priority keys, actions and tallies,
#: and the simulator's event loop (where a simulated day spends its time).
COMPILED = (
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
    "simulators/des.py",
)
#: The packages copied beside them (the compiled modules import from these).
PACKAGES = ("cti", "queue_engine", "simulators")
#: mypyc reads the pydantic plugin from here (the models' constructors are checked).
_MYPY_CONFIG = "[mypy]\nplugins = pydantic.mypy\n"


def source_root() -> Path:
    """The directory that holds the packages (the checkout, or site-packages)."""
    return Path(__file__).resolve().parent.parent


def _digest(root: Path) -> str:
    try:
        import mypy.version
    except ImportError:
        raise SimulationError(
            "compiling needs mypy (it brings mypyc): `.venv/bin/pip install mypy`, or leave "
            "out --compiled"
        ) from None
    digest = hashlib.sha256(f"{mypy.version.__version__} {sys.version}".encode())
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def compiled_tree(cache: Path | None = None, *, quiet: bool = False) -> Path:
    """A directory to put first on ``sys.path``: the packages, with :data:`COMPILED`
    built as extension modules. Built on first use (about 20 s), then reused.

    Raises :class:`SimulationError` naming what is missing when it cannot be built.
    """
    root = source_root()
    base = cache if cache is not None else Path(platformdirs.user_cache_dir("cti-desk"))
    dest = base / "mypyc" / _digest(root)
    if (dest / ".built").exists():
        return dest
    if shutil.which(os.environ.get("CC", "gcc")) is None and shutil.which("cc") is None:
        raise SimulationError("compiling needs a C compiler (gcc or cc) on the PATH")
    if not quiet:
        print(f"compiling {len(COMPILED)} modules with mypyc into {dest} ...", file=sys.stderr)
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=dest.parent))
    try:
        for pkg in PACKAGES:
            shutil.copytree(
                root / pkg, work / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.so")
            )
        (work / "mypy.ini").write_text(_MYPY_CONFIG, encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "mypyc", *COMPILED],
            cwd=work,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise SimulationError(f"mypyc could not compile the simulator:\n{tail}")
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


def is_compiled() -> bool:
    """Whether this process runs the compiled router and event loop."""
    import queue_engine.router
    import simulators.des

    return all(
        (module.__file__ or "").endswith((".so", ".pyd"))
        for module in (queue_engine.router, simulators.des)
    )
