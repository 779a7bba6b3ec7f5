"""Interference-aware first fit: each workload on the first GPU where the fixed point fits.

The raise-the-violators fixed point (latency and throughput) gives the least shares a set of
workloads needs on one GPU; first fit in a given order with it is feasible by construction. The
exact solvers use it for an upper bound and a warm start when the greedy's plan breaks the model.
"""

from __future__ import annotations

import time

import numpy as np

from igniter_opt.data.errors import InfeasibleError
from igniter_opt.data.instance import Instance
from igniter_opt.data.plan import GpuPlan, Plan
from igniter_opt.model import Profile
from igniter_opt.model.predict import Array
from igniter_opt.solvers.colocation import placed, replica_gpus
from igniter_opt.solvers.heuristics.fixedpoint import GpuTable
from igniter_opt.solvers.sizing import Demand, margin_of


def first_fit(profile: Profile, demands: list[Demand], order: list[int],
              deadline: float | None = None) -> list[GpuPlan]:
    """First fit in the given order with the fixed point (latency and throughput), paper batches.

    Feasible by construction (an upper bound and warm start for the MILP when the greedy's plan
    breaks the model). The open GPUs with room are tried in chunks of growing size with the fixed
    point on a whole chunk at once (heuristics.fixedpoint); the first that fits wins. Past
    `deadline` (a perf_counter time) each remaining workload opens its own GPU.
    """
    table = GpuTable(profile, demands, throughput=True)
    for pos, i in enumerate(order):
        if deadline is not None and time.perf_counter() > deadline:
            _alone(table, order[pos:])
            break
        target, shares = _first_fitting(table, i)
        if target >= 0:
            k = int(table.count[target]) + 1
            table.set(target, np.append(table.members[target, :k - 1], i), shares[:k])
        else:
            _alone(table, [i])
    gpus = [table.gpu(g) for g in range(table.size)]
    return [GpuPlan([placed(demands[m], float(s)) for m, s in zip(members, shares)])
            for members, shares in gpus]


def _alone(table: GpuTable, items: list[int]) -> None:
    """Open a GPU for each item alone at its least share (InfeasibleError when one cannot run alone)."""
    shares = table.alone(items)
    bad = np.flatnonzero(~np.isfinite(shares))
    if bad.size:
        raise InfeasibleError(f"workload {table.demands[items[int(bad[0])]].name!r} cannot run alone on a GPU")
    table.open_many(items, shares)


def _first_fitting(table: GpuTable, i: int) -> tuple[int, Array]:
    """The first candidate GPU where demand i fits after the fixed point, and its shares (-1 if none)."""
    candidates = table.candidates(i)
    start, chunk = 0, 8
    while start < candidates.size:
        found = table.trial(i, candidates[start:start + chunk])
        if found.fits.any():
            best = int(np.argmax(found.fits))
            return int(found.gpus[best]), found.shares[best]
        start, chunk = start + chunk, 4 * chunk
    return -1, np.zeros(0)


def best_heuristic(instance: Instance, profile: Profile, demands: list[Demand], order: list[int],
                   solver: str, deadline: float | None = None) -> Plan | None:
    """The better verified plan of the reference greedy and this first fit (None if neither
    verifies): the incumbent the exact solvers start from, and keep when time runs out.

    Past `deadline` both open a GPU per remaining workload (a worse plan, on time)."""
    from igniter_opt.solvers.heuristics.greedy import place_greedy
    from igniter_opt.solvers.verify import verify

    found = []
    greedy = Plan(instance.name, "greedy", profile.name, "heuristic", gpus=replica_gpus(demands) + [
        GpuPlan([placed(demands[i], s) for i, s in g]) for g in place_greedy(profile, demands, deadline)])
    ff = Plan(instance.name, solver, profile.name, "heuristic",
              gpus=replica_gpus(demands) + first_fit(profile, demands, order, deadline))
    for plan in (greedy, ff):
        checked, problems = verify(plan, profile, margin_of(demands))
        if not problems:
            found.append(checked)
    return min(found, key=lambda p: p.num_gpus) if found else None
