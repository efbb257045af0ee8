"""scripts_engine may import only ``cti`` models (and the error hierarchy, and the call
flows' schema that the flow runner walks)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).parents[2] / "scripts_engine"
ALLOWED_OWN = {"cti.models", "cti.errors", "cti.call_flows", "scripts_engine"}


def test_scripts_engine_imports_only_cti_models() -> None:
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in ("cti", "scripts_engine"):
                    assert name in ALLOWED_OWN or name.startswith("scripts_engine."), (path, name)
                else:
                    assert top in sys.stdlib_module_names or top == "pydantic", (path, name)
