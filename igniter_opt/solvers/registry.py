"""The one registry of solvers: name -> where its `Solver` object lives, imported on first use.

Entries are "module:attribute" strings so that listing the solvers (CLI choices, batch checks,
reports) imports no solver and no Pyomo. To add a solver, write a module with a `SOLVER` object
that satisfies igniter_opt.solvers.base.Solver and add one line to `SOLVERS` (or call `register`
at run time, e.g. from a plugin or a test).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from igniter_opt.data.errors import InputError
from igniter_opt.solvers.base import Solver


@dataclass(frozen=True)
class SolverEntry:
    """Where a solver lives and whether it is exact (proves its lower bound)."""

    target: str  # "package.module:ATTRIBUTE"
    exact: bool = False


SOLVERS: dict[str, SolverEntry] = {
    "greedy": SolverEntry("igniter_opt.solvers.heuristics.greedy:SOLVER"),
    "ffd": SolverEntry("igniter_opt.solvers.heuristics.ffd:SOLVER"),
    "exact": SolverEntry("igniter_opt.solvers.exact.solver:SOLVER", exact=True),
    "milp": SolverEntry("igniter_opt.solvers.formulations.compact:SOLVER", exact=True),
    "patterns": SolverEntry("igniter_opt.solvers.formulations.patterns:SOLVER", exact=True),
}

_loaded: dict[str, Solver[Any]] = {}


def register(name: str, target: str | Solver[Any], exact: bool = False) -> None:
    """Add (or replace) a solver: a "module:attribute" string, imported on first use, or the object."""
    _loaded.pop(name, None)
    if isinstance(target, str):
        SOLVERS[name] = SolverEntry(target, exact)
    else:
        SOLVERS[name] = SolverEntry(f"{type(target).__module__}:<registered>", exact)
        _loaded[name] = target


def solver_names() -> list[str]:
    """Registered solver names, in registration order."""
    return list(SOLVERS)


def exact_solvers() -> list[str]:
    """Names of the exact solvers, in registration order."""
    return [name for name, entry in SOLVERS.items() if entry.exact]


def check_solver(name: str) -> None:
    """InputError naming the choices when `name` is not registered."""
    if name not in SOLVERS:
        raise InputError(f"solver {name!r}: unknown (choose from {', '.join(SOLVERS)})")


def get_solver(name: str) -> Solver[Any]:
    """The solver object registered under `name` (imported on first use)."""
    check_solver(name)
    if name not in _loaded:
        module, _, attribute = SOLVERS[name].target.partition(":")
        solver: Solver[Any] = getattr(importlib.import_module(module), attribute)
        _loaded[name] = solver
    return _loaded[name]
