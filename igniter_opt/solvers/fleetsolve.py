"""`solve` for a mixed fleet: size over the types, run the fleet version of a solver, verify.

Called by igniter_opt.solvers.solve.solve when the instance's fleet has several types, a price or
a count (Instance.mixed). greedy, exact and patterns have fleet versions; milp and ffd refuse a
mixed fleet (an InputError naming the reason). The plan records each GPU's type, the fleet, its
cost per hour and the proven cost bound (priced fleets) or GPU bound (unpriced), and is verified
with each GPU's type's profile and the fleet's counts.
"""

from __future__ import annotations

import time

from igniter_opt.data.errors import InfeasibleError, InputError, SolveInterrupted
from igniter_opt.data.instance import Instance
from igniter_opt.data.plan import Plan
from igniter_opt.solvers.base import SolveOptions
from igniter_opt.solvers.fleet import Fleet, instance_fleet, integer_costs, size_fleet
from igniter_opt.solvers.verify import verify

FLEET_SOLVERS = ("greedy", "exact", "patterns")
WHY_NOT = {
    "milp": "its compact model holds one profile's coefficients in every big-M row (one GPU type, "
            "no prices)",
    "ffd": "it is a single-type baseline of the paper's comparison",
}


def check_fleet_solver(solver: str) -> None:
    """InputError for a solver without a fleet version."""
    if solver not in FLEET_SOLVERS:
        why = WHY_NOT.get(solver, "it has no fleet version")
        raise InputError(f"solver {solver!r}: mixed GPU fleets are not supported: {why}; use "
                         f"{', '.join(FLEET_SOLVERS)} (exact proves the least cost)")


def solve_fleet(instance: Instance, solver: str, options: SolveOptions, margin: float,
                fleet: Fleet | None = None, solver_options: object | None = None) -> Plan:
    """The verified plan of a fleet solver (status infeasible with the reason when no plan can be)."""
    from igniter_opt.solvers.exact.fleet import solve_fleet_exact
    from igniter_opt.solvers.exact.fleetpatterns import solve_fleet_patterns
    from igniter_opt.solvers.heuristics.fleetgreedy import solve_fleet_greedy

    check_fleet_solver(solver)
    fleet = fleet or instance_fleet(instance)
    start = time.perf_counter()
    name = fleet.types[0].profile.name
    try:
        fd = size_fleet(instance, fleet, margin)
        costs = integer_costs(fleet)
        if solver == "greedy":
            plan = solve_fleet_greedy(instance, fleet, fd)
        elif solver == "exact":
            settings = getattr(solver_options, "settings", None)  # ExactOptions' tuning, when given
            plan = solve_fleet_exact(instance, fleet, fd, costs, options.time_limit, options.threads, margin,
                                     *([settings] if settings is not None else []))
        else:
            plan = solve_fleet_patterns(instance, fleet, fd, costs, options.time_limit, options.threads,
                                        options.force)
    except InfeasibleError as exc:
        plan = Plan(instance=instance.name, solver=solver, profile=name, status="infeasible", message=str(exc))
    except KeyboardInterrupt:
        plan = Plan(instance=instance.name, solver=solver, profile=name, status="interrupted",
                    message="interrupted before the solver had a plan")
    plan.margin_pct = margin
    plan.solve_seconds = round(time.perf_counter() - start, 6)
    plan.fleet = fleet.to_specs()
    checked, problems = verify(plan, fleet)
    if problems:
        checked.message = "; ".join(filter(None, [plan.message, *problems]))
    if checked.cost is not None and checked.cost_bound is not None and checked.status != "infeasible":
        checked.gap = round(max(0.0, checked.cost - checked.cost_bound) / checked.cost, 6) if checked.cost else 0.0
    if checked.status == "interrupted":
        raise SolveInterrupted(checked)
    return checked
