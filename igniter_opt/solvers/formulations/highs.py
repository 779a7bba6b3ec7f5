"""Running HiGHS on a Pyomo model (appsi_highs: in-process, warm starts, dual bound)."""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
from collections.abc import Iterator
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


class _QuietInterrupt(logging.Filter):
    """appsi warns about HiGHS's kInterrupt status it does not map; we report it ourselves."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "kInterrupt" not in record.getMessage()


logging.getLogger("pyomo.contrib.appsi.solvers.highs").addFilter(_QuietInterrupt())


@contextlib.contextmanager
def cancel_on_sigint(opt: Any) -> Iterator[list[bool]]:
    """While open, Ctrl-C asks HiGHS to stop (keeping its incumbent) instead of raising.

    Yields a one-element list that holds True once Ctrl-C was pressed. HiGHS calls back into
    Python at its interrupt checks, where the handler runs and cancels the solve. Only in the main
    thread, and never over an ignored SIGINT (batch workers ignore it: their parent stops them).
    """
    hit = [False]
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield hit
        return

    def handler(_signum: int, _frame: object) -> None:
        hit[0] = True
        solver = getattr(opt, "_solver_model", None)
        if solver is not None and hasattr(solver, "cancelSolve"):
            solver.HandleUserInterrupt = True
            solver.cancelSolve()

    old = signal.signal(signal.SIGINT, handler)
    try:
        yield hit
    finally:
        signal.signal(signal.SIGINT, old)


def _interrupted_result(opt: Any) -> tuple[bool, float | None]:
    """After a cancelled solve: (incumbent loaded into the model, dual bound), read from HiGHS
    directly (appsi reports a cancelled solve as 'unknown' and drops both)."""
    found, bound = False, None
    try:
        if opt._sol is not None and opt._sol.value_valid:
            opt.load_vars()
            found = True
        info = opt._solver_model.getInfo()
        value = float(info.mip_dual_bound)
        bound = value if math.isfinite(value) else None
    except (AttributeError, RuntimeError, ValueError):
        pass
    return found, bound


def _translate(opt: Highs, model: Any) -> None:
    """Hand the model to HiGHS. pyomo captures HiGHS's output around it and, when Ctrl-C lands
    inside that capture, re-raises it as RuntimeError("KeyboardInterrupt: ..."): turned back into
    the KeyboardInterrupt it is, so the caller's Ctrl-C handling (exit 130) applies."""
    try:
        opt.set_instance(model)
    except RuntimeError as exc:
        if str(exc).startswith("KeyboardInterrupt"):
            raise KeyboardInterrupt from None
        raise


def run_highs(model: Any, time_limit: float, options: HighsOptions, warm: bool = False,
              deadline: float | None = None) -> tuple[str, bool, float | None]:
    """Solve; returns (status, has incumbent loaded into the model, dual bound).

    With a deadline (time.perf_counter() value) the model is translated first and HiGHS gets
    only what is left of it (at most time_limit); when too little is left it does not run and the
    result is ("time_limit", False, None). Ctrl-C during the search stops HiGHS and gives status
    "interrupted" with the incumbent and bound it had.
    """
    opt = Highs()
    if not opt.available():
        raise InputError("HiGHS is not available: pip install highspy")
    # Translate first: it counts against the deadline, solve() then only updates, and a Ctrl-C
    # during the translation is a plain KeyboardInterrupt (the SIGINT handler needs HiGHS's object).
    _translate(opt, model)
    if deadline is not None:
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
    with cancel_on_sigint(opt) as hit:
        res = opt.solve(model)
    if hit[0]:
        found, bound = _interrupted_result(opt)
        return "interrupted", found, bound
    term = res.termination_condition
    found = res.best_feasible_objective is not None
    if found:
        opt.load_vars()
    status = {TerminationCondition.optimal: "optimal",
              TerminationCondition.infeasible: "infeasible",
              TerminationCondition.maxTimeLimit: "time_limit"}.get(term, str(term))
    return status, found, res.best_objective_bound
