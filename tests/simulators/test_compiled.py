"""``cti simulate --compiled``: the router and event loop built by mypyc give the same days,
and the router's own tests (the property machines among them) pass on that build; the
engine's build (``cti serve --compiled``) routes random inputs exactly as the interpreted
router does."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cti.app.cli import main
from simulators.compiled import PACKAGES, compiled_env, compiled_tree, source_root
from tests.engine_build import assert_same_on_engine_build
from tests.simulators.test_report import TINY


def _report(capfd: pytest.CaptureFixture[str]) -> dict[str, object]:
    report = json.loads(capfd.readouterr().out)
    del report["wall_s"]
    return dict(report)


def test_compiled_run_reports_exactly_the_interpreted_days(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(TINY, encoding="utf-8")
    argv = ["simulate", str(scenario), "--json", "--replications", "2", "--seed", "11"]
    assert main(argv) == 0
    interpreted = _report(capfd)
    assert main([*argv, "--compiled"]) == 0
    compiled = _report(capfd)
    assert compiled == interpreted
    assert compiled["calls"]


def test_the_build_is_reused_while_the_sources_do_not_change() -> None:
    compiled_tree(quiet=True)  # built (or not) first: others may edit the shared tree
    first = compiled_tree(quiet=True)  # meanwhile, so the two calls compared are quick
    assert (first / ".built").exists()
    assert any(first.glob("queue_engine/router*.so"))
    assert compiled_tree(quiet=True) == first
    assert compiled_env(first)["PYTHONPATH"].split(":")[0] == str(first)


#: Run again on the compiled build: the router's tests and the reference day's figures.
ON_BOTH_BUILDS = ("tests/queue_engine", "tests/simulators/test_reference.py")

#: Imports the compiled packages first (the test modules then find them in sys.modules,
#: wherever pytest puts the repository on sys.path), refuses to go on if any module
#: of the build is plain Python, and runs pytest.
_RUN_ON_COMPILED = """
import sys
import pytest
import cti, queue_engine, simulators
from simulators.compiled import COMPILED, is_compiled
from importlib import import_module
names = [path.removesuffix(".py").replace("/", ".") for path in COMPILED]
plain = [n for n in names if not (import_module(n).__file__ or "").endswith(".so")]
if plain or not is_compiled():
    sys.exit(f"not compiled: {plain}")
sys.exit(pytest.main(sys.argv[1:]))
"""


def test_the_router_tests_pass_on_the_compiled_build(tmp_path: Path) -> None:
    tree = compiled_tree(quiet=True)
    repo = source_root()
    for entry in tree.iterdir():  # the packages and the build's shared library
        if entry.name in PACKAGES or entry.suffix == ".so":
            (tmp_path / entry.name).symlink_to(entry)
    (tmp_path / "tests").symlink_to(repo / "tests")
    shutil.copy(repo / "pyproject.toml", tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", _RUN_ON_COMPILED, "-q", "-p", "no:cacheprovider", *ON_BOTH_BUILDS],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-30:])
    assert done.returncode == 0, tail


def drive(seed: int, steps: int = 300) -> list[str]:
    """Random inputs (arrivals, presence, offers answered or not, hang-ups, wrap-ups,
    time) into one router: each input's actions or refusal, and the queues after it."""
    from cti.errors import RoutingError
    from cti.models import AgentConfig
    from queue_engine import inputs as ri
    from queue_engine.router import Router
    from tests.queue_engine.test_router_properties import AGENTS, QUEUES, make_caller

    rng = random.Random(seed)
    router = Router(QUEUES, max_missed_offers=rng.choice([1, 3]))
    now, n, log = 0.0, 0, []
    for agent, queues in AGENTS.items():
        config = AgentConfig(id=agent, queues=dict.fromkeys(queues, 0.0))
        router.handle(ri.AgentConfigured(agent=config), now)
    for _ in range(steps):
        a = rng.choice(sorted(AGENTS))
        call = f"c{rng.randrange(max(1, n))}"
        own = router.agent(a).call_id or call
        event: ri.AnyInput
        match rng.randrange(12):
            case 0:
                value = rng.randint(0, 100)
                queue = rng.choice(["q1", "q2"])
                event = ri.CallArrives(call_id=f"c{n}", queue=queue, caller=make_caller(value, n))
                n += 1
            case 1:
                event = ri.AgentLogsIn(agent_id=a)
            case 2:
                event = ri.AgentLogsOut(agent_id=a)
            case 3 | 4:
                event = ri.AgentGoesReady(agent_id=a)
            case 5:
                event = ri.AgentGoesNotReady(agent_id=a, reason="break")
            case 6:
                event = ri.AgentAccepts(agent_id=a, call_id=own)
            case 7:
                event = ri.AgentRejects(agent_id=a, call_id=own)
            case 8:
                event = ri.AgentHangsUp(agent_id=a, call_id=own)
            case 9:
                event = ri.AgentFinishesWrapUp(agent_id=a, call_id=own, disposition="ok")
            case 10:
                event = ri.CallerHangsUp(call_id=call)
            case _:
                now += rng.choice([0.5, 3.0, 17.0, 61.0])
                event = ri.TimePasses()
        try:
            result = repr(router.handle(event, now))
        except RoutingError as exc:
            result = f"refused: {exc}"
        log.append(f"{now} {event!r} -> {result}")
        log.append(repr([router.snapshot(q, now) for q in router.queue_names]))
    return log


SEEDS = range(40)

_DRIVE_ON_COMPILED = """
import sys
from cti import compiled_build
if not compiled_build.loaded(compiled_build.ENGINE):
    sys.exit("not the compiled engine build")
from tests.simulators.test_compiled import SEEDS, drive
for seed in SEEDS:
    print("\\n".join(drive(seed)))
"""


def test_the_engine_build_routes_exactly_as_the_interpreted_router(tmp_path: Path) -> None:
    """The same random inputs give the same actions, refusals and queues on both."""
    interpreted = [line for seed in SEEDS for line in drive(seed)]
    assert any("OfferCall(" in line for line in interpreted)
    assert any("refused: " in line for line in interpreted)
    assert_same_on_engine_build(_DRIVE_ON_COMPILED, interpreted, tmp_path)
