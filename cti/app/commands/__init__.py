"""The subcommands of ``cti``, one module each.

Every module here defines ``register(sub)``, which adds its parser to the ``cti``
subparsers and sets ``handler`` (a function of the parsed arguments returning the exit
status), and ``ORDER``, its place in ``cti --help``. The CLI finds them by listing this
package, so adding a command is adding a module.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def command_modules() -> list[ModuleType]:
    """Every command module of this package, in ``ORDER``."""
    mods = [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in pkgutil.iter_modules(__path__)
        if not info.name.startswith("_")
    ]
    return sorted(mods, key=lambda m: (getattr(m, "ORDER", 50), m.__name__))
