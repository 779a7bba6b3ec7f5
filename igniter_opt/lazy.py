"""Package APIs imported on first use: a package names what it exports and where it lives, and
the module `__getattr__` this returns imports the defining module only when a name is asked for
(bench, deploy and profiling pull in optional or heavy dependencies that the CLI must not load
at start-up)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_getattr(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module-level `__getattr__` for `package` that resolves `exports` (name -> module)."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
