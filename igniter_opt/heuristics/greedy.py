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

from igniter_opt.heuristics.common import by_least_share, placed, replica_gpus
from igniter_opt.perfmodel import ModelArrays, Profile, predict_arrays
from igniter_opt.plan import GpuPlan, Plan
from igniter_opt.sizing import FULL_SHARE, Demand

Slot = tuple[int, float]  # (demand index, share)


def raise_violators(profile: Profile, demands: list[Demand], members: list[int],
                    shares: np.ndarray, batch: np.ndarray | None = None,
                    throughput: bool = False) -> np.ndarray:
    """Raise by one unit each workload whose latency breaks SLO/2 until none does or sum > 100.

    The reference checks latency only; with `throughput` a workload whose predicted throughput is
    below its rate is a violator too (the exact solvers' fixed point). `batch` overrides the
    demands' paper batches.
    """
    hw = profile.hardware
    arrays = ModelArrays.of(profile, [demands[i].model for i in members])
    if batch is None:
        batch = np.array([demands[i].batch for i in members], dtype=float)
    slo_half = np.array([demands[i].slo_ms / 2 for i in members])
    rates = np.array([demands[i].rate_rps for i in members]) if throughput else None
    shares = np.asarray(shares, dtype=float).copy()
    while shares.sum() <= FULL_SHARE:
        pred = predict_arrays(hw, arrays, batch, shares)
        late = pred.latency_ms > slo_half
        if rates is not None:
            late |= pred.throughput_rps < rates
        if not late.any():
            break
        shares += hw.unit_pct * late
    return shares


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


def solve(instance, profile: Profile, demands: list[Demand], options=None) -> Plan:
    """Plan of the reference greedy (status 'feasible': a heuristic proves nothing)."""
    gpus = replica_gpus(demands)
    gpus += [GpuPlan([placed(demands[i], s) for i, s in g]) for g in place_greedy(profile, demands)]
    return Plan(instance=instance.name, solver="greedy", profile=profile.name, status="feasible", gpus=gpus)
