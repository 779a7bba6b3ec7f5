"""Solvers: size an instance into demands, place them on GPUs, verify the plan.

    solve(instance, "greedy" | "ffd" | "milp" | "patterns" | ..., profile, SolveOptions) -> Plan

`base` defines the Solver protocol and options, `registry` the one table of solvers, `sizing` the
demands every solver places, `colocation` the least-share fixed point they share, `verify` the
check every plan passes. The solvers themselves live in heuristics/ and formulations/ (Pyomo,
imported only when an exact solver runs).
"""

from igniter_opt.solvers.base import FunctionSolver, HighsOptions, NoOptions, SolveOptions, Solver, check_time_limit
from igniter_opt.solvers.jitcache import use_writable_cache
from igniter_opt.solvers.registry import (
                                      SOLVERS,
                                      SolverEntry,
                                      check_solver,
                                      exact_solvers,
                                      get_solver,
                                      register,
                                      solver_names,
)
from igniter_opt.solvers.sizing import Demand, lower_bound_gpus, size_instance
from igniter_opt.solvers.solve import resolve_profile, solve
from igniter_opt.solvers.verify import verify

use_writable_cache()  # before the numba kernels of solvers/exact load (none of the above loads them)

__all__ = [
    "FunctionSolver", "HighsOptions", "NoOptions", "SolveOptions", "Solver", "check_time_limit",
    "SOLVERS", "SolverEntry", "check_solver", "exact_solvers", "get_solver", "register", "solver_names",
    "Demand", "lower_bound_gpus", "size_instance",
    "resolve_profile", "solve", "verify",
]
