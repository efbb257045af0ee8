"""The house rules that tools do not check: no module over 700 lines and no function over
60 lines in the product (tests and benchmarks aside), so that each module stays one
concept and each function one step (docs/architecture.md).

The lists below are the debt from before the rule: an entry leaves when its module or
function is under the bar (this test fails while a listed one already is), and nothing
joins them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cti", "queue_engine", "scripts_engine", "agent_console", "telephony_adapters",
            "simulators")  # fmt: skip
MAX_MODULE_LINES = 700
MAX_FUNCTION_LINES = 60

MODULES_OVER: set[str] = set()
FUNCTIONS_OVER: set[str] = set()


def _modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def _functions(path: Path) -> dict[str, int]:
    """Qualified name -> length in lines of every function (methods and nested too)."""
    found: dict[str, int] = {}

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = prefix + child.name
                found[name] = (child.end_lineno or child.lineno) - child.lineno + 1
                walk(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                walk(child, prefix + child.name + ".")

    walk(ast.parse(path.read_text(encoding="utf-8")), "")
    return found


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_no_module_is_over_the_bar() -> None:
    over = {
        _relative(p): n
        for p in _modules()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    new = sorted(set(over) - MODULES_OVER)
    assert not new, f"modules over {MAX_MODULE_LINES} lines (split them by concern): {new}"
    paid = sorted(MODULES_OVER - set(over))
    assert not paid, f"under the bar now: take them off MODULES_OVER: {paid}"


def test_no_function_is_over_the_bar() -> None:
    over = {
        f"{_relative(p)}:{name}": n
        for p in _modules()
        for name, n in _functions(p).items()
        if n > MAX_FUNCTION_LINES
    }
    new = sorted(set(over) - FUNCTIONS_OVER)
    assert not new, f"functions over {MAX_FUNCTION_LINES} lines (split them): {new}"
    paid = sorted(FUNCTIONS_OVER - set(over))
    assert not paid, f"under the bar now: take them off FUNCTIONS_OVER: {paid}"


@pytest.mark.parametrize("source", ["def f():\n" + "    x = 1\n" * 70])
def test_the_measure_counts_a_long_function(source: str, tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text(source, encoding="utf-8")
    assert _functions(path) == {"f": 71}
