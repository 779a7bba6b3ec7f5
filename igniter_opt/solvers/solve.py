"""One entry for all solvers: size the instance, run the solver, verify the plan.

Every solver is a function `solve(instance, profile, demands, options) -> Plan` in its own
module; this module times it, turns "no GPU can serve this workload" into an infeasible plan,
and passes the result through `verify` so no plan is shown or written unchecked.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, replace

from igniter_opt.data.errors import InfeasibleError, InputError
from igniter_opt.data.instance import BATCH_POLICIES, Instance
from igniter_opt.model import Profile, load_profile
from igniter_opt.data.plan import Plan
from igniter_opt.solvers.sizing import lower_bound_gpus, size_instance
from igniter_opt.solvers.verify import verify

SOLVERS = {
    "greedy": "igniter_opt.solvers.heuristics.greedy",
    "ffd": "igniter_opt.solvers.heuristics.ffd",
    "milp": "igniter_opt.solvers.formulations.compact",
    "patterns": "igniter_opt.solvers.formulations.patterns",
}
HEURISTICS = ("greedy", "ffd")


@dataclass(frozen=True)
class SolveOptions:
    """Options of the exact solvers (the heuristics ignore them)."""

    time_limit: float = 60.0
    threads: int = 1
    mip_gap: float = 0.0
    batch_policy: str | None = None  # None: the instance's own policy
    force: bool = False  # patterns: enumerate even above the size limit
    verbose: bool = False


def resolve_profile(instance: Instance, profile: Profile | str | None = None) -> Profile:
    """The profile object for an instance: given, named, or the instance's own."""
    if isinstance(profile, Profile):
        return profile
    return load_profile(profile or instance.profile)


def solve(instance: Instance, solver: str = "greedy", profile: Profile | str | None = None,
          options: SolveOptions | None = None) -> Plan:
    """Solve an instance with the named solver and return the verified plan."""
    if solver not in SOLVERS:
        raise InputError(f"solver {solver!r}: unknown (choose from {', '.join(SOLVERS)})")
    options = options or SolveOptions()
    if options.batch_policy is not None:
        if options.batch_policy not in BATCH_POLICIES:
            raise InputError(f"batch policy {options.batch_policy!r}: must be one of {BATCH_POLICIES}")
        instance = replace(instance, batch_policy=options.batch_policy)
    prof = resolve_profile(instance, profile)
    start = time.perf_counter()
    try:
        demands = size_instance(instance, prof)
        module = importlib.import_module(SOLVERS[solver])
        plan = module.solve(instance, prof, demands, options)
        if plan.lower_bound is None and plan.status != "infeasible" and instance.batch_policy == "paper":
            plan.lower_bound = lower_bound_gpus(demands)
    except InfeasibleError as exc:
        plan = Plan(instance=instance.name, solver=solver, profile=prof.name, status="infeasible",
                    message=str(exc))
    plan.solve_seconds = round(time.perf_counter() - start, 6)
    checked, problems = verify(plan, prof)
    if problems:
        checked.message = "; ".join(filter(None, [plan.message, *problems]))
    return checked
