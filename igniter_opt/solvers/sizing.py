"""Sizing shared by every solver: batch rule, least share r_lower, and the replica split.

Before any solver runs, each workload is turned into one or more `Demand`s: a workload that no
single GPU can carry is split into full-GPU replicas at 90% of the largest rate one GPU sustains
under its SLO (predicted alone at 100% share, clock drop included), each with its own batch,
until the rest fits on a share of one GPU.

At a robustness margin (igniter_opt.solvers.margin) r_lower, "serves alone" and the replica
rate use the tightened limits; the batch rule keeps the true SLO and rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from igniter_opt.data.errors import InfeasibleError, InputError
from igniter_opt.data.instance import Instance, Workload
from igniter_opt.model import Profile, predict
from igniter_opt.model.coefficients import Hardware, ModelCoefficients
from igniter_opt.model.instances import check_models
from igniter_opt.solvers.margin import latency_limit_ms, rate_target_rps

REPLICA_RATE_FRACTION = 0.9
FULL_SHARE = 100.0
# The space a solve over the demands below is proven over when some workload is split: only this
# split (a plan's `space`; see docs/exact.md, "What is proven").
FIXED_SPLIT = "fixed split"
# More full-GPU replicas than this for one workload is a typo in its rate (or SLO), not a plan.
MAX_REPLICAS = 10_000


@dataclass(frozen=True)
class Demand:
    """One unit to place: a workload, or a replica of one (then `replica_of` names the workload)."""

    name: str
    model: str
    slo_ms: float
    rate_rps: float
    batch: int  # by the paper's rule
    r_lower: float  # least share at zero interference, on the unit grid (inf when impossible)
    replica_of: str | None = None
    full_gpu: bool = False  # a replica that takes a whole GPU alone at 100%
    margin_pct: float = 0.0  # robustness margin the limits below are tightened by

    @property
    def latency_limit_ms(self) -> float:
        """Most predicted latency allowed: (1 - margin) SLO/2."""
        return latency_limit_ms(self.slo_ms, self.margin_pct)

    @property
    def rate_target_rps(self) -> float:
        """Least predicted throughput required: (1 + margin) rate."""
        return rate_target_rps(self.rate_rps, self.margin_pct)


def paper_batch(coef: ModelCoefficients, hw: Hardware, slo_ms: float, rate_rps: float,
                max_batch: int | None = None) -> int:
    """b = ceil((SLO/2) R B / (B + d_in R)), R in requests/ms: the reference's batch rule,
    clamped to `max_batch` (the profile's largest profiled batch: the model is not extrapolated).
    """
    slo, arrival, B = slo_ms / 2, rate_rps / 1000, hw.bandwidth_bytes_per_ms
    batch = slo * arrival * B / (B + coef.input_bytes * arrival)
    if not math.isfinite(batch):  # overflow at huge SLOs or rates: the same rule, rearranged
        batch = slo * B / (B / arrival + coef.input_bytes)
    if max_batch is not None:
        batch = min(batch, max_batch)
    if not math.isfinite(batch):
        raise InputError(f"SLO {slo_ms:g} ms at {rate_rps:g} req/s: the batch rule overflows")
    return max(1, math.ceil(batch))


def least_share(coef: ModelCoefficients, hw: Hardware, slo_ms: float, batch: int,
                margin_pct: float = 0.0, rate_rps: float | None = None) -> float:
    """r_lower: t_solo inverted at zero interference for T_inf = SLO/2, rounded up to the unit.

    At a margin the target is (1 - margin) SLO/2 instead.

    inf when no share can meet the SLO (the budget left after idle time, transfer and k5 is <= 0).
    Never below one unit: a share must be positive. With `rate_rps` the share must also give that
    throughput alone (needed for a batch clamped to the profiled range; the unclamped paper
    batch implies it whenever the latency holds).
    """
    k1, k2, k3, k4, k5 = coef.k
    gamma = k1 * batch**2 + k2 * batch + k3
    B = hw.bandwidth_bytes_per_ms
    budget = latency_limit_ms(slo_ms, margin_pct) - coef.t_idle_ms - batch * (coef.input_bytes + coef.output_bytes) / B
    if rate_rps is not None:
        budget = min(budget, 1000 * batch / rate_target_rps(rate_rps, margin_pct) - coef.t_idle_ms
                     - batch * coef.output_bytes / B)
    delta = budget - k5
    steps = (gamma / delta - k4) / hw.unit_pct if delta > 0 else math.inf
    if not math.isfinite(steps):  # no budget left, or coefficients that overflow: no share will do
        return math.inf
    share = math.ceil(steps) * hw.unit_pct
    return max(share, hw.unit_pct)


def serves_alone(profile: Profile, model: str, slo_ms: float, rate_rps: float,
                 margin_pct: float = 0.0) -> bool:
    """Does one GPU at 100% share, alone, meet the SLO at this rate with the paper batch (and the
    margin's tightened limits)?"""
    coef, hw = profile.model(model), profile.hardware
    batch = paper_batch(coef, hw, slo_ms, rate_rps, profile.max_batch)
    pred = predict(profile, [model], [batch], [FULL_SHARE])
    return bool(pred.latency_ms[0] <= latency_limit_ms(slo_ms, margin_pct)
                and pred.throughput_rps[0] >= rate_target_rps(rate_rps, margin_pct))


def max_rate_alone(profile: Profile, model: str, slo_ms: float, upper: float, margin_pct: float = 0.0) -> float:
    """Largest rate (<= upper) one GPU sustains alone under the SLO (at the margin), by bisection;
    0 if none."""
    lo, hi = 0.0, upper
    if not serves_alone(profile, model, slo_ms, 1e-6, margin_pct):
        return 0.0
    for step in range(2100):  # 60 halvings, more while a huge upper leaves the bracket wide
        if step >= 60 and hi - lo <= 1e-12 * hi:
            break
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if serves_alone(profile, model, slo_ms, mid, margin_pct) else (lo, mid)
    return lo


def _demand(profile: Profile, w: Workload, name: str, rate: float, replica_of: str | None,
            full_gpu: bool = False, margin_pct: float = 0.0) -> Demand:
    coef, hw = profile.model(w.model), profile.hardware
    batch = paper_batch(coef, hw, w.slo_ms, rate, profile.max_batch)
    return Demand(name=name, model=w.model, slo_ms=w.slo_ms, rate_rps=rate, batch=batch,
                  r_lower=_least_share(profile, coef, w.slo_ms, batch, rate, margin_pct), replica_of=replica_of,
                  full_gpu=full_gpu, margin_pct=margin_pct)


def demand_at(profile: Profile, w: Workload, name: str, rate: float, margin_pct: float = 0.0) -> Demand:
    """A replica of workload w serving `rate` (paper batch of that rate): a piece of a split that
    a solver chooses itself (exact's split levels)."""
    return _demand(profile, w, name, rate, w.name, margin_pct=margin_pct)


def _least_share(profile: Profile, coef: ModelCoefficients, slo_ms: float, batch: int, rate: float,
                 margin_pct: float = 0.0) -> float:
    """least_share, with the throughput budget when the batch sits at the profile's largest."""
    return least_share(coef, profile.hardware, slo_ms, batch, margin_pct,
                       rate if batch >= profile.max_batch else None)


def _fits_one_gpu(profile: Profile, w: Workload, rate: float, margin_pct: float = 0.0) -> bool:
    coef, hw = profile.model(w.model), profile.hardware
    batch = paper_batch(coef, hw, w.slo_ms, rate, profile.max_batch)
    r_lower = _least_share(profile, coef, w.slo_ms, batch, rate, margin_pct)
    return r_lower <= FULL_SHARE and serves_alone(profile, w.model, w.slo_ms, rate, margin_pct)


def split_workload(profile: Profile, w: Workload, margin_pct: float = 0.0) -> list[Demand]:
    """The workload itself if one GPU can carry it, else full-GPU replicas plus the rest (every
    check at the margin's tightened limits)."""
    if _fits_one_gpu(profile, w, w.rate_rps, margin_pct):
        return [_demand(profile, w, w.name, w.rate_rps, None, margin_pct=margin_pct)]
    r_max = max_rate_alone(profile, w.model, w.slo_ms, w.rate_rps, margin_pct)
    if r_max <= 0:
        at = f" with a {margin_pct:g}% margin" if margin_pct else ""
        raise InfeasibleError(f"workload {w.name!r} ({w.model}, SLO {w.slo_ms:g} ms): no GPU can serve "
                              f"it under its SLO{at}, even alone at 100% and batch 1")
    replica_rate = REPLICA_RATE_FRACTION * r_max
    if w.rate_rps / replica_rate > MAX_REPLICAS:
        raise InputError(f"workload {w.name!r} ({w.model}, SLO {w.slo_ms:g} ms): {w.rate_rps:g} req/s needs about "
                         f"{w.rate_rps / replica_rate:.3g} GPUs (one serves {replica_rate:.4g} req/s); "
                         f"igniter plans at most {MAX_REPLICAS} per workload")
    count = 0
    rest = w.rate_rps
    while rest > 0 and not _fits_one_gpu(profile, w, rest, margin_pct):
        count += 1
        rest = w.rate_rps - count * replica_rate
    demands = [_demand(profile, w, f"{w.name}#{i + 1}", replica_rate, w.name, full_gpu=True,
                       margin_pct=margin_pct) for i in range(count)]
    if rest > 1e-9:
        demands.append(_demand(profile, w, f"{w.name}#{count + 1}", rest, w.name, margin_pct=margin_pct))
    return demands


def size_instance(instance: Instance, profile: Profile, margin_pct: float = 0.0) -> list[Demand]:
    """Demands of every workload, in instance order (replicas next to their rest), at the margin."""
    check_models(instance, profile)
    return [d for w in instance.workloads for d in split_workload(profile, w, margin_pct)]


def split_workloads(demands: list[Demand]) -> list[str]:
    """Names of the workloads the sizing split into replicas, in order (empty: none needs two GPUs)."""
    return list(dict.fromkeys(d.replica_of for d in demands if d.replica_of is not None))


def fixed_split_note(status: str, names: list[str]) -> str:
    """What a plan over the sizing's split proves, in words: never a bare "optimal" when the
    split itself was not searched."""
    which = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    claim = {"optimal": "optimal", "time_limit": "bound", "interrupted": "bound"}.get(status, "plan")
    return (f"{claim} for the sizing's split of {which} (full-GPU replicas at "
            f"{REPLICA_RATE_FRACTION:.0%} of the largest single-GPU rate plus the rest), not over every split")


def margin_of(demands: list[Demand]) -> float:
    """The margin the demands were sized at (0 when there are none)."""
    return demands[0].margin_pct if demands else 0.0


def lower_bound_gpus(demands: list[Demand]) -> int:
    """A valid lower bound: full-GPU replicas plus ceil(sum of least shares / 100) for the rest."""
    full = sum(d.full_gpu for d in demands)
    shares = np.array([d.r_lower for d in demands if not d.full_gpu], dtype=float)
    return full + (math.ceil(float(shares.sum()) / FULL_SHARE - 1e-9) if shares.size else 0)
