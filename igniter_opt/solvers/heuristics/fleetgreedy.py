"""The reference greedy over a mixed fleet, with a documented cost-aware rule (docs/fleets.md).

The iGniter paper's heterogeneous experiment (T4 and V100) profiles each type with the same tool;
its text as available here gives no rule for choosing a GPU type, so this rule is ours:

- order: workloads by the cost of the share they need on their cheapest type (price x r_lower of
  the type where that product is least), largest first; with one type this is the reference's
  descending r_lower order;
- placement: as the reference, on every open GPU of a type that can serve the workload, add it at
  r_lower and raise violators by one unit; keep the GPU with the least added cost (added share x
  the type's price per hour; unpriced: x 1), the first on ties;
- a new GPU: of the type with the least cost per unit of served demand, price x r_lower (the
  cheapest share that serves the workload alone), among the types with a GPU left; unpriced, the
  type that needs the least share (then the first).

A row realized on a type where it needs replicas (igniter_opt.solvers.fleet) costs them too: the
costs above include price x replicas, and the replicas are GPUs of that type, alone at 100%.
"""

from __future__ import annotations

import math

from igniter_opt.data.errors import InfeasibleError
from igniter_opt.data.instance import Instance
from igniter_opt.data.plan import GpuPlan, Plan
from igniter_opt.solvers.colocation import placed
from igniter_opt.solvers.fleet import Fleet, FleetDemands
from igniter_opt.solvers.heuristics.greedy import Slot, _try_gpu
from igniter_opt.solvers.sizing import FULL_SHARE

TypedGpu = tuple[int, list[Slot]]  # (type index, slots)


def _price(fleet: Fleet, k: int) -> float:
    return float(fleet.types[k].price or 0.0) if fleet.priced else 1.0


def _need(fleet: Fleet, fd: FleetDemands, k: int, r: int) -> float:
    """Cost of realizing row r alone on type k: its replicas plus the share its shared part needs
    (inf where the type cannot serve it); unpriced, in GPUs."""
    if not fd.servable[k, r]:
        return math.inf
    return _price(fleet, k) * (fd.extra(k, r) + float(fd.per_type[k][r].r_lower) / FULL_SHARE)


def place_fleet_greedy(fleet: Fleet, fd: FleetDemands) -> list[TypedGpu]:
    """The placement loop over the rows; shared GPUs as (type, slots) (a row placed on type k
    also takes its fd.extra(k, r) replicas of k: see fleet_greedy_gpus)."""
    types = range(len(fleet.types))
    left = [math.inf if t.count is None else float(t.count) for t in fleet.types]
    order = sorted(range(fd.rows), key=lambda r: -min(_need(fleet, fd, k, r) for k in types))
    gpus: list[TypedGpu] = []
    for r in order:
        best, best_added, trial_best = -1, math.inf, None
        for j, (k, slots) in enumerate(gpus):
            if not fd.servable[k, r] or left[k] < fd.extra(k, r):
                continue
            trial = _try_gpu(fleet.types[k].profile, fd.per_type[k], slots, r)
            if trial is None:
                continue
            added = _price(fleet, k) * (fd.extra(k, r) + (sum(s for _, s in trial) - sum(s for _, s in slots))
                                        / FULL_SHARE)
            if added < best_added:
                best, best_added, trial_best = j, added, trial
        if trial_best is not None:
            k = gpus[best][0]
            gpus[best] = (k, trial_best)
            left[k] -= fd.extra(k, r)
            continue
        open_types = [k for k in types if fd.servable[k, r] and left[k] >= 1 + fd.extra(k, r)]
        if not open_types:
            short = [fleet.types[k].name for k in types if fd.servable[k, r]]
            raise InfeasibleError(f"workload {fd.per_type[0][r].name!r}: fits no open GPU and too few GPUs of "
                                  f"type(s) {', '.join(short)} are left (short by at least 1)")
        k = min(open_types, key=lambda k: (_need(fleet, fd, k, r), k))
        left[k] -= 1 + fd.extra(k, r)
        gpus.append((k, [(r, float(fd.per_type[k][r].r_lower))]))
    return gpus


def replica_gpus_of(fleet: Fleet, fd: FleetDemands, k: int, rows: list[int]) -> list[GpuPlan]:
    """The full-GPU replicas of rows realized on type k, each alone at 100%."""
    return [GpuPlan([placed(d, FULL_SHARE)], fleet.types[k].name) for r in rows for d in fd.replicas[k][r]]


def solve_fleet_greedy(instance: Instance, fleet: Fleet, fd: FleetDemands) -> Plan:
    """Plan of the cost-aware greedy (status 'heuristic')."""
    placed_gpus = place_fleet_greedy(fleet, fd)
    gpus = [g for k, slots in placed_gpus for g in replica_gpus_of(fleet, fd, k, [r for r, _ in slots])]
    for k, slots in placed_gpus:
        gpus.append(GpuPlan([placed(fd.per_type[k][r], s) for r, s in slots], fleet.types[k].name))
    return Plan(instance=instance.name, solver="greedy", profile=fleet.types[0].profile.name,
                status="heuristic", gpus=gpus)
