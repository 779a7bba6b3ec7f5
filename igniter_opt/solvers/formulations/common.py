"""Shared pieces of the exact formulations: configurations (batch, share) and their constants.

With the share on the unit grid and the batch fixed, every nonlinear term of the performance
model is a constant per configuration k = (b, r) of a demand i: solo active time t_solo, power
p and L2 demand c. A configuration is feasible on a GPU with scheduling increase `inc`, total L2
demand C and total power P exactly when

    kernels_i inc + t_idle_i + t_solo_k (1 + k_l2_i (C - c_k))  <=  L_k min(1, 1 + alpha (P - P_max))

with alpha = a_f / F and L_k = min(SLO/2 - (d_in + d_out) b / B, 1000 b / R - d_out b / B): the
latency and the throughput bound share one form, so one budget L_k carries both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from igniter_opt.data.errors import InfeasibleError, InputError
from igniter_opt.model import ModelArrays, Profile, solo_terms
from igniter_opt.model.coefficients import Hardware
from igniter_opt.model.predict import Array, frequency_under_cap, scheduling_increase
from igniter_opt.solvers.sizing import FULL_SHARE, Demand

# Relative safety margin on every budget L_k, so that the solver's tolerances never let through
# a plan that `verify` (tolerance 1e-9) rejects. Plans are re-checked exactly after each solve.
MARGIN = 1e-7

# Memory bound of the exact solvers: at most this many (batch, share) configurations in all, about
# 150 bytes each while they are built and pruned. Only policy `joint` with huge paper batches (1..b
# per workload) comes near it; the error says so instead of filling the memory.
MAX_CONFIGS = 500_000


@dataclass
class Configs:
    """The candidate configurations of one shareable demand (arrays of equal length K)."""

    demand: int  # index in the demands list
    batch: Array
    share: Array
    units: Array  # share / unit, integer
    t_solo: Array
    power: Array  # W above idle
    l2: Array
    limit: Array  # L_k (ms), margin applied
    kernels: float
    t_idle: float
    k_l2: float

    def take(self, mask: Array) -> Configs:
        """The configurations where mask holds."""
        keep = {f: getattr(self, f)[mask] for f in ("batch", "share", "units", "t_solo", "power",
                                                     "l2", "limit")}
        return Configs(demand=self.demand, kernels=self.kernels, t_idle=self.t_idle, k_l2=self.k_l2,
                       **keep)

    def __len__(self) -> int:
        return len(self.share)

    def index_of(self, batch: int, share: float) -> int | None:
        """Index of the configuration (batch, share), or None."""
        hit = np.nonzero((self.batch == batch) & np.isclose(self.share, share))[0]
        return int(hit[0]) if hit.size else None


def capacity_units(hw: Hardware) -> int:
    """How many share units one GPU holds."""
    return math.floor(FULL_SHARE / hw.unit_pct + 1e-9)


def batch_choices(demand: Demand, policy: str) -> Array:
    """Batches a solver may pick: the paper batch, or 1..paper batch under policy 'joint'."""
    if policy == "joint":
        return np.arange(1, demand.batch + 1, dtype=float)
    return np.array([float(demand.batch)])


def all_configs(profile: Profile, demand: Demand, index: int, policy: str) -> Configs:
    """Every (batch, share) on the grid with its constants (vectorised, no pruning)."""
    hw = profile.hardware
    units = np.arange(1, capacity_units(hw) + 1, dtype=float)
    b_grid, u_grid = np.meshgrid(batch_choices(demand, policy), units, indexing="ij")
    batch, unit = b_grid.ravel(), u_grid.ravel()
    share = unit * hw.unit_pct
    arrays = ModelArrays.of(profile, [demand.model])
    terms = solo_terms(arrays, batch, share)
    coef = profile.model(demand.model)
    B = hw.bandwidth_bytes_per_ms
    lat = demand.latency_limit_ms - (coef.input_bytes + coef.output_bytes) * batch / B  # at the margin
    thr = 1000 * batch / demand.rate_target_rps - coef.output_bytes * batch / B
    return Configs(demand=index, batch=batch, share=share, units=unit, t_solo=terms.t_solo,
                   power=terms.power, l2=terms.l2, limit=np.minimum(lat, thr) * (1 - MARGIN),
                   kernels=float(coef.kernels), t_idle=coef.t_idle_ms, k_l2=coef.k_l2)


def inc_of(hw: Hardware, n: ArrayLike) -> Array:
    """Scheduling increase for n co-located workloads (0 alone), never below 0 (conservative)."""
    out: Array = np.maximum(scheduling_increase(hw, n), 0.0)
    return out


def holds(hw: Hardware, cfg: Configs, inc: Array | float, l2_others: Array | float,
          power_total: Array | float) -> Array:
    """Does each configuration meet its budget in the given context (arrays broadcast)?"""
    t = cfg.kernels * inc + cfg.t_idle + cfg.t_solo * (1 + cfg.k_l2 * l2_others)
    phi = frequency_under_cap(hw, power_total) / hw.max_frequency_mhz
    ok: Array = t <= cfg.limit * phi
    return ok


def check_config_count(profile: Profile, demands: list[Demand], policy: str) -> None:
    """InputError naming the cause when the configurations would pass MAX_CONFIGS."""
    units = capacity_units(profile.hardware)
    shareable = [d for d in demands if not d.full_gpu]
    total = sum(d.batch if policy == "joint" else 1 for d in shareable) * units
    if total > MAX_CONFIGS:
        big = max(shareable, key=lambda d: d.batch)
        raise InputError(
            f"batch policy {policy}: {total:,} (batch, share) configurations to consider, above the "
            f"limit of {MAX_CONFIGS:,} that bounds the memory; workload {big.replica_of or big.name!r} "
            f"alone may use any batch up to {big.batch:,} at {units} shares; use --batch-policy paper")


def shareable_configs(profile: Profile, demands: list[Demand], policy: str) -> list[Configs]:
    """Configurations of each shareable demand that could be feasible with the least interference.

    Least interference: alone, unless some configuration has a negative power or L2 term (then
    the others' most negative sums are assumed, so the pruning stays sound). Raises
    InfeasibleError naming the workload when one has none (it cannot run even alone).
    """
    hw = profile.hardware
    check_config_count(profile, demands, policy)
    every = [all_configs(profile, d, i, policy) for i, d in enumerate(demands) if not d.full_gpu]
    l2_floor = sum(min(0.0, float(c.l2.min())) for c in every)
    p_floor = sum(min(0.0, float(c.power.min())) for c in every)
    out = []
    for cfg in every:
        ok = holds(hw, cfg, 0.0, l2_floor, hw.idle_power_w + cfg.power + p_floor) & (cfg.limit > 0)
        if not ok.any():
            d = demands[cfg.demand]
            raise InfeasibleError(f"workload {d.replica_of or d.name!r} ({d.model}, SLO {d.slo_ms:g} ms, "
                                  f"{d.rate_rps:g} req/s): no batch and share meets its SLO even alone "
                                  f"on a GPU")
        out.append(cfg.take(ok))
    return out
