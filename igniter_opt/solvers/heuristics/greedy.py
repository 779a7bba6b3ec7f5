"""The reference iGniter greedy, faithful to the published algorithm.

For each workload in descending r_lower order, try every open GPU: add it at r_lower, then raise
by one unit every co-located workload whose predicted latency breaks its SLO/2, until all hold or
the GPU's shares pass 100%. Keep the GPU that needed the least added share (first on ties); open
a new GPU when none fits. As in the reference, a newly opened GPU (after the first) takes the
workload at r_lower without any prediction, and throughput is never checked: `verify` says when
that breaks the model.
"""

from __future__ import annotations

import numpy as np

from igniter_opt.data.instance import Instance
from igniter_opt.data.plan import GpuPlan, Plan
from igniter_opt.model import Profile
from igniter_opt.solvers.base import FunctionSolver, NoOptions
from igniter_opt.solvers.colocation import by_least_share, placed, raise_violators, replica_gpus
from igniter_opt.solvers.sizing import FULL_SHARE, Demand

Slot = tuple[int, float]  # (demand index, share)


def _try_gpu(profile: Profile, demands: list[Demand], gpu: list[Slot], i: int) -> list[Slot] | None:
    members = [m for m, _ in gpu] + [i]
    shares = np.array([s for _, s in gpu] + [demands[i].r_lower])
    if shares.sum() <= FULL_SHARE:
        shares = raise_violators(profile, demands, members, shares)
    if shares.sum() > FULL_SHARE:
        return None
    return list(zip(members, shares.tolist()))


def place_greedy(profile: Profile, demands: list[Demand]) -> list[list[Slot]]:
    """The published placement loop over the shareable demands; returns GPUs as slot lists."""
    gpus: list[list[Slot]] = [[]]
    for i in by_least_share(demands):
        best, best_added = -1, 101.0
        candidates: dict[int, list[Slot]] = {}
        for j, gpu in enumerate(gpus):
            trial = _try_gpu(profile, demands, gpu, i)
            if trial is None:
                continue
            added = sum(s for _, s in trial) - sum(s for _, s in gpu)
            if added < best_added:
                best, best_added, candidates[j] = j, added, trial
        if best == -1:
            gpus.append([(i, demands[i].r_lower)])
        else:
            gpus[best] = candidates[best]
    return [g for g in gpus if g]


def solve(instance: Instance, profile: Profile, demands: list[Demand],
          _options: NoOptions | None = None) -> Plan:
    """Plan of the reference greedy (status 'heuristic': it proves nothing)."""
    gpus = replica_gpus(demands)
    gpus += [GpuPlan([placed(demands[i], s) for i, s in g]) for g in place_greedy(profile, demands)]
    return Plan(instance=instance.name, solver="greedy", profile=profile.name, status="heuristic", gpus=gpus)


SOLVER = FunctionSolver("greedy", solve, NoOptions.from_common)
