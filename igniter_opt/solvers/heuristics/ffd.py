"""First-fit decreasing by r_lower, blind to interference: what a provider does without a model.

Each workload gets exactly its r_lower share on the first GPU with room for it. `verify` then
shows which co-locations break an SLO once interference, scheduling delay and the clock drop
are predicted.
"""

from __future__ import annotations

import numpy as np

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
    loads = np.zeros(max(1, len(demands)))  # share sum of each bin: the first with room in one vector step
    for i in by_least_share(demands):
        d = demands[i]
        room = np.flatnonzero(loads[:len(bins)] + d.r_lower <= FULL_SHARE + 1e-6)
        target = next((int(j) for j in room if bins[j].total_share + d.r_lower <= FULL_SHARE), -1)
        if target < 0:
            target = len(bins)
            bins.append(GpuPlan())
        bins[target].workloads.append(placed(d, d.r_lower))
        loads[target] = bins[target].total_share
    return Plan(instance=instance.name, solver="ffd", profile=profile.name, status="heuristic",
                gpus=replica_gpus(demands) + bins)


SOLVER = FunctionSolver("ffd", solve, NoOptions.from_common)
