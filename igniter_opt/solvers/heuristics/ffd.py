"""First-fit decreasing by r_lower, blind to interference: what a provider does without a model.

Each workload gets exactly its r_lower share on the first GPU with room for it. `verify` then
shows which co-locations break an SLO once interference, scheduling delay and the clock drop
are predicted.
"""

from __future__ import annotations

from igniter_opt.data.instance import Instance
from igniter_opt.data.plan import GpuPlan, Plan
from igniter_opt.model import Profile
from igniter_opt.solvers.base import FunctionSolver, NoOptions
from igniter_opt.solvers.colocation import by_least_share, placed, replica_gpus
from igniter_opt.solvers.sizing import FULL_SHARE, Demand


def solve(instance: Instance, profile: Profile, demands: list[Demand],
          _options: NoOptions | None = None) -> Plan:
    """Plan of first-fit decreasing (status 'heuristic': it proves nothing)."""
    bins: list[GpuPlan] = []
    for i in by_least_share(demands):
        d = demands[i]
        target = next((g for g in bins if g.total_share + d.r_lower <= FULL_SHARE), None)
        if target is None:
            target = GpuPlan()
            bins.append(target)
        target.workloads.append(placed(d, d.r_lower))
    return Plan(instance=instance.name, solver="ffd", profile=profile.name, status="heuristic",
                gpus=replica_gpus(demands) + bins)


SOLVER = FunctionSolver("ffd", solve, NoOptions.from_common)
