"""Solver `patterns` over a mixed fleet: every fitting subset of rows on every type, then a MIP.

Each type's fitting subsets come from its own profile (patterns.fitting, the reference's raise-
the-violators fixed point); one binary-free integer variable per (type, subset) costs the type's
integer cost (fleet.Costs) times its GPUs (its own plus its rows' replicas on that type), every
row is covered, and a type with a count has an availability row
(the master of exact, solved as a MIP over all patterns at once). A cross-check of `exact` at small
sizes: exponential, refused above patterns.LIMIT rows unless forced. It lives in exact/ because
it solves exact's master over all patterns (formulations/ may not import exact: no cycles).
"""

from __future__ import annotations

import time

import numpy as np

from igniter_opt.data.errors import InfeasibleError, InputError
from igniter_opt.data.instance import Instance
from igniter_opt.data.plan import GpuPlan, Plan
from igniter_opt.model.predict import Array
from igniter_opt.solvers.colocation import placed
from igniter_opt.solvers.exact.master import Column, Master
from igniter_opt.solvers.fleet import Costs, Fleet, FleetDemands
from igniter_opt.solvers.formulations.patterns import LIMIT, fitting
from igniter_opt.solvers.heuristics.fleetgreedy import replica_gpus_of

TypedPattern = tuple[int, tuple[int, ...], Array, Array]  # type, rows, shares, batches


def fleet_patterns(fleet: Fleet, fd: FleetDemands, policy: str) -> list[TypedPattern]:
    """(type, rows, shares, batches) of every fitting subset of every type (least total share)."""
    out = []
    for g, t in enumerate(fleet.types):
        rows = [r for r in range(fd.rows) if fd.servable[g, r]]
        sub = [fd.per_type[g][r] for r in rows]
        known, _ = fitting(t.profile, sub, policy)
        for members, vectors in known.items():
            vec = min(vectors, key=lambda v: vectors[v].sum())
            out.append((g, tuple(rows[m] for m in members), vectors[vec], np.array(vec)))
    return out


def solve_fleet_patterns(instance: Instance, fleet: Fleet, fd: FleetDemands, costs: Costs, time_limit: float,
                         threads: int = 1, force: bool = False) -> Plan:
    """The least-cost partition into fitting subsets of each type."""
    begin = time.perf_counter()
    if fd.rows > LIMIT and not force:
        raise InputError(f"patterns: {fd.rows} shareable workloads is above the limit of {LIMIT} (the subsets "
                         f"grow as 2^n per GPU type); pass --force to enumerate anyway, or use --solver exact")
    plan = Plan(instance=instance.name, solver="patterns", profile=fleet.types[0].profile.name,
                status="optimal")
    patterns = fleet_patterns(fleet, fd, instance.batch_policy)
    n_types = len(fleet.types)
    option_row = np.array([r for _ in range(n_types) for r in range(fd.rows)], dtype=np.int64)
    option_gpu = np.array([g for g in range(n_types) for _ in range(fd.rows)], dtype=np.int64)
    extra = np.array([fd.extra(g, r) for g in range(n_types) for r in range(fd.rows)], dtype=float)
    master = Master(np.ones(fd.rows), option_row, threads, option_gpu=option_gpu,
                    gpu_cost=np.array(costs.per_gpu, dtype=float), available=[t.count for t in fleet.types],
                    option_gpus=extra)
    for g, rows, shares, _ in patterns:
        master.add(Column(tuple(g * fd.rows + r for r in rows), tuple(float(s) for s in shares)))
    found = master.solve_integer(max(1.0, time_limit - (time.perf_counter() - begin)))
    if found is None:
        if time.perf_counter() - begin < time_limit:
            raise InfeasibleError("patterns: no cover of the workloads by fitting subsets fits the fleet's "
                                  "availability")
        plan.status, plan.message = "time_limit", "time limit before HiGHS found a plan"
        return plan
    by_key = {tuple(g * fd.rows + r for r in rows): (g, rows, shares, batch) for g, rows, shares, batch in patterns}
    covered: set[int] = set()
    for col, k in zip(master.columns, found[1]):
        for _ in range(int(k)):
            g = int(master.gpu_of(col))
            rest = tuple(r for r in by_key[col.members][1] if r not in covered)
            if not rest:
                continue
            # an optimum may cover a row twice (covering rows); a subset of a fitting subset fits
            _, rows, shares, batch = by_key[tuple(g * fd.rows + r for r in rest)]
            covered |= set(rows)
            plan.gpus += replica_gpus_of(fleet, fd, g, list(rows))
            plan.gpus.append(GpuPlan([placed(fd.per_type[g][r], float(s), int(b))
                                      for r, s, b in zip(rows, shares, batch)], fleet.types[g].name))
    bound = round(found[0])
    if costs.step:
        plan.cost_bound = round(costs.price_bound(bound), 6)
    else:
        plan.lower_bound = bound
    plan.gap = 0.0
    return plan
