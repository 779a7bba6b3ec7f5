"""One entry for all solvers: size the instance, run the solver, verify the plan.

Every solver is a `Solver` (igniter_opt.solvers.base) found in the registry
(igniter_opt.solvers.registry); this module times it, turns "no GPU can serve this workload" into an
infeasible plan, and passes the result through `verify` so no plan is shown or written unchecked.

Ctrl-C, for every solver: a solver may return a plan with status "interrupted", raise
`SolveInterrupted(plan)` carrying its incumbent, or let a plain KeyboardInterrupt through. All
three end here as `SolveInterrupted` carrying a verified plan with status "interrupted" (no GPUs
when the solver had none yet); the CLI exits 130 and writes that plan only when asked.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import replace

from igniter_opt.data.errors import InfeasibleError, InputError, SolveInterrupted
from igniter_opt.data.instance import BATCH_POLICIES, Instance
from igniter_opt.data.plan import Plan
from igniter_opt.model import Profile, load_profile
from igniter_opt.solvers.base import SolveOptions
from igniter_opt.solvers.margin import check_margin
from igniter_opt.solvers.registry import check_solver, get_solver
from igniter_opt.solvers.sizing import (
    FIXED_SPLIT,
    Demand,
    fixed_split_note,
    lower_bound_gpus,
    size_instance,
    split_workloads,
)
from igniter_opt.solvers.verify import verify


def resolve_profile(instance: Instance, profile: Profile | str | None = None) -> Profile:
    """The profile object for an instance: given, named, or the instance's own."""
    if isinstance(profile, Profile):
        return profile
    return load_profile(profile or instance.profile)


def solve(instance: Instance, solver: str = "greedy", profile: Profile | str | None = None,
          options: SolveOptions | None = None, solver_options: object | None = None) -> Plan:
    """Solve an instance with the named solver and return the verified plan.

    `options` are the common options; `solver_options`, when given, is the solver's own options
    value (e.g. `CompactOptions(features=...)`) and replaces what it would build from `options`.
    The margin is the solver options' `margin_pct` when they have one, else `options.margin_pct`;
    the demands are sized at it, the plan records it and is verified at it.
    """
    check_solver(solver)
    options = options or SolveOptions()
    if options.batch_policy is not None:
        if options.batch_policy not in BATCH_POLICIES:
            raise InputError(f"batch policy {options.batch_policy!r}: must be one of {BATCH_POLICIES}")
        instance = replace(instance, batch_policy=options.batch_policy)
    check_margin(options.margin_pct)
    if instance.mixed and profile is None:  # several GPU types, prices or counts: docs/fleets.md
        from igniter_opt.solvers.fleetsolve import solve_fleet

        own_options = get_solver(solver).options(options) if solver_options is None else solver_options
        return solve_fleet(instance, solver, options, check_margin(getattr(own_options, "margin_pct",
                                                                            options.margin_pct)),
                           solver_options=solver_options)
    prof = resolve_profile(instance, profile)
    runner = get_solver(solver)
    start = time.perf_counter()
    own = runner.options(options) if solver_options is None else solver_options
    margin = check_margin(getattr(own, "margin_pct", options.margin_pct))
    demands = None
    try:
        demands = size_instance(instance, prof, margin)
        plan = runner.solve(instance, prof, demands, _time_left(own, start))
    except InfeasibleError as exc:
        plan = Plan(instance=instance.name, solver=solver, profile=prof.name, status="infeasible",
                    message=str(exc))
    except SolveInterrupted as exc:
        plan = exc.plan if exc.plan is not None else _nothing_yet(instance, solver, prof)
        plan.status = "interrupted"
    except KeyboardInterrupt:
        plan = _nothing_yet(instance, solver, prof)
    if plan.lower_bound is None and plan.status != "infeasible" and demands and instance.batch_policy == "paper":
        plan.lower_bound = lower_bound_gpus(demands)
    _note_fixed_split(plan, demands or [])
    plan.margin_pct = margin
    plan.solve_seconds = round(time.perf_counter() - start, 6)
    checked, problems = verify(plan, prof)
    if problems:
        checked.message = "; ".join(filter(None, [plan.message, *problems]))
    if instance.fleet is not None and profile is None:  # a fleet of one plain type: record it
        for g in checked.gpus:
            g.gpu_type = instance.fleet[0].name
        checked.fleet = [t.to_dict() for t in instance.fleet]
    if checked.status == "interrupted":
        checked.message = checked.message or "interrupted"
        raise SolveInterrupted(checked)
    return checked


def _time_left(own: object, start: float) -> object:
    """The solver's options with the time limit less what sizing took: the limit is a promise for
    the whole call (at least 10 ms is left to the solver, which then answers with what it has;
    verify afterwards is linear, well inside the allowed overrun of max(2 s, 10%))."""
    limit = getattr(own, "time_limit", None)
    if limit is None or not dataclasses.is_dataclass(own) or isinstance(own, type):
        return own
    left = limit - (time.perf_counter() - start)
    return dataclasses.replace(own, time_limit=max(0.01, min(limit, left)))


def _note_fixed_split(plan: Plan, demands: list[Demand]) -> None:
    """A plan over the sizing's split (the solver did not search the splits itself) says so."""
    split = split_workloads(demands)
    if split and not plan.space and plan.status != "infeasible":
        plan.space = FIXED_SPLIT
        plan.message = "; ".join(filter(None, [fixed_split_note(plan.status, split), plan.message]))


def _nothing_yet(instance: Instance, solver: str, profile: Profile) -> Plan:
    return Plan(instance=instance.name, solver=solver, profile=profile.name, status="interrupted",
                message="interrupted before the solver had a plan")
