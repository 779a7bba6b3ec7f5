"""Running HiGHS on a Pyomo model (appsi_highs: in-process, warm starts, dual bound)."""

from __future__ import annotations

import time
from typing import Any

from pyomo.contrib.appsi.base import TerminationCondition
from pyomo.contrib.appsi.solvers import Highs

from igniter_opt.data.errors import InputError
from igniter_opt.solvers.base import HighsOptions

# Tighter than HiGHS's defaults (1e-6): a big-M row relaxed by M * 1e-6 could let a plan through
# that `verify` rejects. Plans are re-checked exactly after every solve anyway.
HIGHS_TOLERANCES = {"mip_feasibility_tolerance": 1e-9, "primal_feasibility_tolerance": 1e-9}


# Below this many seconds left after the model is handed over, HiGHS is not started at all.
MIN_SOLVE_SECONDS = 0.2


def run_highs(model: Any, time_limit: float, options: HighsOptions, warm: bool = False,
              deadline: float | None = None) -> tuple[str, bool, float | None]:
    """Solve; returns (status, has incumbent loaded into the model, dual bound).

    With a deadline (time.perf_counter() value) the model is translated first and HiGHS gets
    only what is left of it (at most time_limit); when too little is left it does not run and the
    result is ("time_limit", False, None).
    """
    opt = Highs()
    if not opt.available():
        raise InputError("HiGHS is not available: pip install highspy")
    if deadline is not None:
        opt.set_instance(model)  # translation counts against the deadline; solve() then only updates
        left = deadline - time.perf_counter()
        if left < MIN_SOLVE_SECONDS:
            return "time_limit", False, None
        time_limit = min(time_limit, left)
    opt.config.time_limit = max(0.5 if deadline is None else MIN_SOLVE_SECONDS, float(time_limit))
    opt.config.mip_gap = float(options.mip_gap)
    opt.config.load_solution = False
    opt.config.warmstart = warm
    opt.config.stream_solver = bool(options.verbose)
    opt.highs_options = {"threads": int(options.threads), "random_seed": 0, **HIGHS_TOLERANCES}
    res = opt.solve(model)
    term = res.termination_condition
    found = res.best_feasible_objective is not None
    if found:
        opt.load_vars()
    status = {TerminationCondition.optimal: "optimal",
              TerminationCondition.infeasible: "infeasible",
              TerminationCondition.maxTimeLimit: "time_limit"}.get(term, str(term))
    return status, found, res.best_objective_bound
