"""Interference-aware first fit: each workload on the first GPU where the fixed point fits.

The raise-the-violators fixed point (latency and throughput) gives the least shares a set of
workloads needs on one GPU; first fit in a given order with it is feasible by construction. The
exact solvers use it for an upper bound and a warm start when the greedy's plan breaks the model.
"""

from __future__ import annotations

import numpy as np

from igniter_opt.data.errors import InfeasibleError
from igniter_opt.data.instance import Instance
from igniter_opt.data.plan import GpuPlan, Plan
from igniter_opt.model import Profile
from igniter_opt.model.predict import Array
from igniter_opt.solvers.colocation import least_shares, placed, replica_gpus
from igniter_opt.solvers.sizing import Demand, margin_of


def first_fit(profile: Profile, demands: list[Demand], order: list[int]) -> list[GpuPlan]:
    """First fit in the given order with the fixed point (latency and throughput), paper batches.

    Feasible by construction (an upper bound and warm start for the MILP when the greedy's plan
    breaks the model).
    """
    gpus: list[tuple[list[int], Array]] = []
    for i in order:
        for g, (members, shares) in enumerate(gpus):
            trial = [*members, i]
            batch = np.array([demands[m].batch for m in trial], dtype=float)
            new = least_shares(profile, demands, trial, batch, np.append(shares, demands[i].r_lower))
            if new is not None:
                gpus[g] = (trial, new)
                break
        else:
            alone = least_shares(profile, demands, [i], np.array([float(demands[i].batch)]),
                                 np.array([demands[i].r_lower]))
            if alone is None:
                raise InfeasibleError(f"workload {demands[i].name!r} cannot run alone on a GPU")
            gpus.append(([i], alone))
    return [GpuPlan([placed(demands[m], float(s)) for m, s in zip(members, shares)])
            for members, shares in gpus]


def best_heuristic(instance: Instance, profile: Profile, demands: list[Demand], order: list[int],
                   solver: str) -> Plan | None:
    """The better verified plan of the reference greedy and this first fit (None if neither
    verifies): the incumbent the exact solvers start from, and keep when time runs out."""
    from igniter_opt.solvers.heuristics import greedy
    from igniter_opt.solvers.verify import verify

    found = []
    ff = Plan(instance.name, solver, profile.name, "heuristic",
              gpus=replica_gpus(demands) + first_fit(profile, demands, order))
    for plan in (greedy.solve(instance, profile, demands), ff):
        checked, problems = verify(plan, profile, margin_of(demands))
        if not problems:
            found.append(checked)
    return min(found, key=lambda p: p.num_gpus) if found else None
