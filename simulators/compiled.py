"""The simulator's hot path compiled to C by mypyc, from the same sources, on demand.

``cti simulate --compiled`` and ``benchmarks/bench_simulator.py`` run the production
router and the discrete-event loop compiled: the modules of :data:`COMPILED` are built by
mypyc (a C compiler and ``mypy`` must be installed) into a copy of the three packages
they live in, in the user's cache directory, under a name derived from the sources'
content. A change to any source gives a new name, so a stale build is never run; an
unchanged tree reuses its build. Nothing is compiled in place: the project's own
modules stay plain Python for everything else (tests, the engine, the console). The
build machinery is :mod:`cti.compiled_build` (the media relay's core uses it too).

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

from pathlib import Path

from cti import compiled_build
from cti.compiled_build import CompileError, compiled_env, source_root
from cti.errors import SimulationError

__all__ = ["COMPILED", "PACKAGES", "compiled_env", "compiled_tree", "is_compiled", "source_root"]

#: The modules compiled: the router (:data:`cti.compiled_build.ROUTER_MODULES`, the same
#: set ``cti serve --compiled`` runs) and the simulator's event loop and its parts (where
#: a simulated day spends its time).
COMPILED = (*compiled_build.ROUTER_MODULES, "simulators/des.py", "simulators/des_parts.py")
#: The packages copied beside them (the compiled modules import from these).
PACKAGES = ("cti", "queue_engine", "simulators")
BUILD = compiled_build.Build("simulator", COMPILED, PACKAGES)


def compiled_tree(cache: Path | None = None, *, quiet: bool = False) -> Path:
    """A directory to put first on ``sys.path``: the packages, with :data:`COMPILED`
    built as extension modules. Built on first use (about 20 s), then reused.

    Raises :class:`SimulationError` naming what is missing when it cannot be built.
    """
    try:
        return compiled_build.compiled_tree(BUILD, cache, quiet=quiet)
    except CompileError as exc:
        raise SimulationError(str(exc)) from None


def is_compiled() -> bool:
    """Whether this process runs the compiled router and event loop."""
    import queue_engine.router
    import simulators.des
    import simulators.des_parts

    return compiled_build.is_compiled(queue_engine.router, simulators.des, simulators.des_parts)
