"""Pieces every solver uses to turn demands into a plan."""

from __future__ import annotations

from igniter_opt.plan import GpuPlan, PlacedWorkload
from igniter_opt.sizing import FULL_SHARE, Demand


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
