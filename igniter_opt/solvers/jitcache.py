"""The first run of the compiled pricing kernels: a cache that can be written, and a visible line.

numba compiles the kernels of solvers/exact (kernel.py and its kernelshares.py and
kernelknapsack.py, statekernel.py; `cache=True`) on their
first call and caches the machine code next to the sources, in __pycache__. When that folder cannot
be written (a read-only site-packages), `use_writable_cache` points numba at
$XDG_CACHE_HOME/igniter-opt/numba (~/.cache/...) before the kernels load, so the compile is paid
once per machine, not once per process. `announce_if_cold` prints "compiling solver kernels (first
run only)" on stderr when the kernels have no cached code yet, so the first exact solve (several
seconds to half a minute of compiling) is not silent.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

KERNEL_MODULES = ("igniter_opt.solvers.exact.kernel", "igniter_opt.solvers.exact.kernelshares",
                  "igniter_opt.solvers.exact.kernelknapsack", "igniter_opt.solvers.exact.statekernel")
COLD_LINE = "compiling solver kernels (first run only)"
_announced = False


def user_cache_dir() -> Path:
    """Where the kernels' cache goes when the package's own folder is read-only."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "igniter-opt" / "numba"


def use_writable_cache() -> str | None:
    """Set NUMBA_CACHE_DIR (and numba's config when numba is loaded) to the user cache dir when
    the kernels' own __pycache__ cannot be written and none is set; the folder used, or None."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return None
    own = Path(__file__).resolve().parent / "exact" / "__pycache__"
    probe = own if own.exists() else own.parent
    if os.access(probe, os.W_OK):
        return None
    target = user_cache_dir()
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # numba then compiles in memory each run (its own fallback)
    os.environ["NUMBA_CACHE_DIR"] = str(target)
    config = sys.modules.get("numba.core.config")
    if config is not None:
        config.CACHE_DIR = str(target)  # type: ignore[attr-defined]
    return str(target)


def cold() -> bool:
    """Is no loaded kernel cached yet (the first run on this machine: they compile on first call)?

    Which kernels a solve calls depends on the instance, so one cached kernel means a run has
    compiled before and the rest (if any) are quick."""
    try:
        from numba.core.dispatcher import Dispatcher
    except ImportError:
        return False
    indexes = []
    for name in KERNEL_MODULES:
        module = sys.modules.get(name)
        for obj in vars(module).values() if module is not None else ():
            cache = getattr(obj, "_cache", None) if isinstance(obj, Dispatcher) else None
            if cache is not None:
                index = getattr(getattr(cache, "_cache_file", None), "_index_path", None)
                if index is not None:
                    indexes.append(index)
    return bool(indexes) and not any(os.path.exists(i) for i in indexes)


def announce_if_cold() -> bool:
    """Print COLD_LINE on stderr once per process when the kernels will compile; whether it did."""
    global _announced
    if _announced or not cold():
        return False
    _announced = True
    print(COLD_LINE, file=sys.stderr, flush=True)
    return True
