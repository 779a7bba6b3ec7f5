"""Co-location pieces every solver shares: placing demands, and the least-share fixed point.

The raise-the-violators fixed point (latency, and with `throughput` throughput too) gives the least
shares a set of workloads needs on one GPU; the greedy, the first fit and the exact solvers use it.
"""

from __future__ import annotations

import numpy as np

from igniter_opt.data.plan import GpuPlan, PlacedWorkload
from igniter_opt.model import ModelArrays, Profile, predict_arrays
from igniter_opt.model.predict import Array
from igniter_opt.solvers.sizing import FULL_SHARE, Demand


def placed(demand: Demand, share: float, batch: int | None = None) -> PlacedWorkload:
    """A demand placed at a share (and the paper batch unless another is given)."""
    return PlacedWorkload(name=demand.name, model=demand.model, batch=int(batch or demand.batch),
                          resource_pct=float(share), rate_rps=demand.rate_rps, slo_ms=demand.slo_ms)


def replica_gpus(demands: list[Demand]) -> list[GpuPlan]:
    """One GPU per full-GPU replica, alone at 100% share."""
    return [GpuPlan([placed(d, FULL_SHARE)]) for d in demands if d.full_gpu]


def by_least_share(demands: list[Demand]) -> list[int]:
    """Indices of the shareable demands by r_lower, largest first (stable on ties, as the reference)."""
    rest = [i for i, d in enumerate(demands) if not d.full_gpu]
    return sorted(rest, key=lambda i: demands[i].r_lower, reverse=True)


def raise_violators(profile: Profile, demands: list[Demand], members: list[int],
                    shares: Array, batch: Array | None = None,
                    throughput: bool = False) -> Array:
    """Raise by one unit each workload whose latency breaks SLO/2 until none does or sum > 100.

    SLO/2 and the rate are the demands' limits at their margin (Demand.latency_limit_ms and
    rate_target_rps), so every solver raises against the same tightened limits as `verify`.

    The reference checks latency only; with `throughput` a workload whose predicted throughput is
    below its rate is a violator too (the exact solvers' fixed point). `batch` overrides the
    demands' paper batches.
    """
    hw = profile.hardware
    arrays = ModelArrays.of(profile, [demands[i].model for i in members])
    if batch is None:
        batch = np.array([demands[i].batch for i in members], dtype=float)
    slo_half = np.array([demands[i].latency_limit_ms for i in members])
    rates = np.array([demands[i].rate_target_rps for i in members]) if throughput else None
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


def least_shares(profile: Profile, demands: list[Demand], members: list[int], batch: Array,
                 start: Array) -> Array | None:
    """Least feasible shares of members on one GPU (fixed point from `start`), or None."""
    if start.sum() > FULL_SHARE:
        return None
    shares = raise_violators(profile, demands, members, start, batch=batch, throughput=True)
    return shares if shares.sum() <= FULL_SHARE else None
