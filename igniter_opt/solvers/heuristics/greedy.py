"""The reference iGniter greedy, faithful to the published algorithm.

For each workload in descending r_lower order, try every open GPU: add it at r_lower, then raise
by one unit every co-located workload whose predicted latency breaks its SLO/2, until all hold or
the GPU's shares pass 100%. Keep the GPU that needed the least added share (first on ties); open
a new GPU when none fits. As in the reference, a newly opened GPU (after the first) takes the
workload at r_lower without any prediction, and throughput is never checked: `verify` says when
that breaks the model.
"""

from __future__ import annotations

import time

import numpy as np

from igniter_opt.data.instance import Instance
from igniter_opt.data.plan import GpuPlan, Plan
from igniter_opt.model import Profile
from igniter_opt.solvers.base import FunctionSolver, NoOptions
from igniter_opt.solvers.colocation import by_least_share, placed, raise_violators, replica_gpus
from igniter_opt.solvers.heuristics.fixedpoint import GpuTable
from igniter_opt.solvers.sizing import FULL_SHARE, Demand

Slot = tuple[int, float]  # (demand index, share)


def _try_gpu(profile: Profile, demands: list[Demand], gpu: list[Slot], i: int) -> list[Slot] | None:
    """Demand i added to one GPU at r_lower, then the fixed point (the reference's step; the fleet
    greedy uses it GPU by GPU), or None when the shares pass 100%."""
    members = [*(m for m, _ in gpu), i]
    shares = np.array([*(s for _, s in gpu), demands[i].r_lower])
    if shares.sum() <= FULL_SHARE:
        shares = raise_violators(profile, demands, members, shares)
    if shares.sum() > FULL_SHARE:
        return None
    return list(zip(members, shares.tolist()))


TIE = 1e-9  # added shares closer than this are a tie (float noise), and the first GPU wins


def place_greedy(profile: Profile, demands: list[Demand], deadline: float | None = None) -> list[list[Slot]]:
    """The published placement loop (see place_greedy_timed), without the flag."""
    return place_greedy_timed(profile, demands, deadline)[0]


def place_greedy_timed(profile: Profile, demands: list[Demand], deadline: float | None = None
                       ) -> tuple[list[list[Slot]], bool]:
    """The published placement loop over the shareable demands; returns GPUs as slot lists.

    Near-linear in practice: GPUs without room for r_lower are skipped in one vector operation,
    and the fixed point runs on all the remaining candidates at once (heuristics.fixedpoint).
    Past `deadline` (a perf_counter time) each remaining workload opens its own GPU at r_lower,
    as the reference does for every new GPU; the flag says the deadline cut the loop.
    """
    cut = False
    table = GpuTable(profile, demands, throughput=False)
    table.open([], [])
    order = by_least_share(demands)
    for pos, i in enumerate(order):
        if deadline is not None and time.perf_counter() > deadline:
            cut = True
            rest = order[pos:]
            table.open_many(rest, np.array([demands[k].r_lower for k in rest]))
            break
        r = demands[i].r_lower
        found = table.trial(i, table.candidates(i))
        if not found.fits.any():
            table.open([i], [r])
            continue
        added = np.where(found.fits, found.added, np.inf)
        best = int(np.argmax(added <= added.min() + TIE))  # the first GPU of least added share
        g = int(found.gpus[best])
        k = int(table.count[g]) + 1
        table.set(g, np.append(table.members[g, :k - 1], i), found.shares[best, :k])
    gpus = [table.gpu(g) for g in range(table.size)]
    return [list(zip(members, shares)) for members, shares in gpus if members], cut


def solve(instance: Instance, profile: Profile, demands: list[Demand],
          options: NoOptions | None = None) -> Plan:
    """Plan of the reference greedy (status 'heuristic': it proves nothing; 'time_limit' when the
    time limit cut the loop and the workloads left each got a GPU of their own)."""
    limit = options.time_limit if options is not None else None
    deadline = time.perf_counter() + limit if limit is not None else None
    slots, cut = place_greedy_timed(profile, demands, deadline)
    gpus = replica_gpus(demands) + [GpuPlan([placed(demands[i], s) for i, s in g]) for g in slots]
    plan = Plan(instance=instance.name, solver="greedy", profile=profile.name, status="heuristic", gpus=gpus)
    if cut:
        plan.status = "time_limit"
        plan.message = "time limit reached: the workloads not yet placed got a GPU each"
    return plan


SOLVER = FunctionSolver("greedy", solve, NoOptions.from_common)
