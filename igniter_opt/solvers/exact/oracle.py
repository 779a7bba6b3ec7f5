"""The feasibility oracle of branch-and-price: least shares of many candidate GPUs at once.

A GPU configuration is a multiset of *options* (a workload type with a batch). Its least shares
come from the fixed point of the per-member inverse of the performance model: given the others'
shares (their L2 demand, the GPU's power and hence its clock), the least grid share at which a
member meets its latency and throughput limits is closed-form,

    t_solo(r) <= X = (L f/F - n_k inc - t_idle) / (1 + k_l2 (C - c_i))
    r >= gamma / (X - k5) - k4,           gamma = k1 b^2 + k2 b + k3,

and every term only grows with the others' shares, so Jacobi iteration from any lower bound climbs
to the least fixed point (the same point the reference's raise-by-one-unit loop reaches, in a few
jumps instead of dozens of steps). Feasible sets are downward closed. The oracle evaluates a whole
(K, m) block of candidate sets per numpy call and confirms every answer with the forward model,
so a configuration it returns passes `verify`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from igniter_opt.model import Profile
from igniter_opt.model.coefficients import Hardware
from igniter_opt.model.predict import Array

FULL = 100.0  # a constant of the model: a whole GPU, in percent
MAX_ROUNDS = 200  # a numerical limit of the fixed point (it converges in far fewer), shared with kernel.py


@dataclass(frozen=True)
class Options:
    """Stacked coefficients of every option (one row each): what the oracle needs, nothing else."""

    gamma: Array  # k1 b^2 + k2 b + k3
    k4: Array
    k5: Array
    batch: Array
    power: Array  # (n, 2): a_p, b_p
    l2: Array  # (n, 2): a_c, b_c
    k_l2: Array
    kernels: Array
    t_idle: Array
    latency_cap: Array  # on T_inf (ms): SLO/2, margin applied
    rate_need: Array  # on throughput (req/s): rate, margin applied
    transfer_in_out: Array  # (d_in + d_out) b / B, ms
    transfer_out: Array  # d_out b / B, ms
    alone: Array  # least share alone (inf when none)

    @property
    def limit(self) -> Array:
        """L: the bound on GPU time T_gpu that carries both the latency and the throughput limit."""
        return np.minimum(self.latency_cap - self.transfer_in_out,
                          1000 * self.batch / self.rate_need - self.transfer_out)


def build_options(profile: Profile, models: list[str], batches: Array, slo_ms: Array,
                  rate_rps: Array, margin_pct: float = 0.0) -> Options:
    """Options from per-row model names, batches, SLOs and rates (margin shrinks the limits)."""
    coefs = [profile.model(m) for m in models]
    B = profile.hardware.bandwidth_bytes_per_ms
    k = np.array([c.k for c in coefs], dtype=float).reshape(-1, 5)
    b = np.asarray(batches, dtype=float)
    d_in = np.array([c.input_bytes for c in coefs], dtype=float)
    d_out = np.array([c.output_bytes for c in coefs], dtype=float)
    m = margin_pct / 100
    opts = Options(
        gamma=k[:, 0] * b**2 + k[:, 1] * b + k[:, 2], k4=k[:, 3], k5=k[:, 4], batch=b,
        power=np.array([c.power for c in coefs], dtype=float).reshape(-1, 2),
        l2=np.array([c.l2 for c in coefs], dtype=float).reshape(-1, 2),
        k_l2=np.array([c.k_l2 for c in coefs], dtype=float),
        kernels=np.array([c.kernels for c in coefs], dtype=float),
        t_idle=np.array([c.t_idle_ms for c in coefs], dtype=float),
        latency_cap=np.asarray(slo_ms, dtype=float) / 2 * (1 - m),
        rate_need=np.asarray(rate_rps, dtype=float) * (1 + m),
        transfer_in_out=(d_in + d_out) * b / B, transfer_out=d_out * b / B,
        alone=np.zeros(len(models)))
    alone = least_shares(profile.hardware, opts, np.arange(len(models))[:, None])
    return replace(opts, alone=alone[:, 0])


def demand_terms(o: Options, idx: Array, r: Array) -> tuple[Array, Array, Array]:
    """Solo active time, power above idle and L2 demand of options idx at shares r (any shape)."""
    t_solo = o.gamma[idx] / (r + o.k4[idx]) + o.k5[idx]
    ability = 1000 * o.batch[idx] / t_solo
    return t_solo, o.power[idx, 0] * ability + o.power[idx, 1], o.l2[idx, 0] * ability + o.l2[idx, 1]


def clock_ratio(hw: Hardware, total_power: Array) -> Array:
    """f/F: 1 up to the power cap, then falling by a_f/F per watt above it."""
    drop = hw.a_f * (total_power - hw.power_cap_w) / hw.max_frequency_mhz
    return np.where(total_power > hw.power_cap_w, 1 + drop, 1.0)


def scheduling_inc(hw: Hardware, m: int | Array) -> Array:
    """Extra scheduling delay per kernel with m members on the GPU (0 alone)."""
    m = np.asarray(m, dtype=float)
    return np.where(m >= 2, hw.a_sch * m + hw.b_sch, 0.0)


def needed_share(hw: Hardware, o: Options, idx: Array, others_l2: Array, ratio: Array,
                 members: int | Array) -> Array:
    """Least grid share of option idx given the others' L2 demand, the clock ratio and the count.

    Inverse of the model for one member: every argument is a lower bound on the interference,
    so the answer is a lower bound on the member's least share (inf when none suffices).
    """
    budget = o.limit[idx] * ratio - o.kernels[idx] * scheduling_inc(hw, members) - o.t_idle[idx]
    x = budget / (1 + o.k_l2[idx] * others_l2) - o.k5[idx]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(x > 0, o.gamma[idx] / x - o.k4[idx], np.inf)
    units = np.ceil(share / hw.unit_pct - 1e-9)
    return np.asarray(np.maximum(units, 1.0) * hw.unit_pct)


def gpu_time(hw: Hardware, o: Options, idx: Array, r: Array) -> Array:
    """T_gpu of every member of every row, computed forward exactly as the model predicts it."""
    t_solo, power, l2 = demand_terms(o, idx, r)
    ratio = clock_ratio(hw, hw.idle_power_w + power.sum(axis=1))[:, None]
    t_sched = o.kernels[idx] * scheduling_inc(hw, idx.shape[1]) + o.t_idle[idx]
    t_act = t_solo * (1 + o.k_l2[idx] * (l2.sum(axis=1, keepdims=True) - l2))
    return np.asarray((t_sched + t_act) / ratio)


def violated(hw: Hardware, o: Options, idx: Array, r: Array) -> Array:
    """Members whose latency or throughput breaks its limit at shares r (forward model)."""
    gpu = gpu_time(hw, o, idx, r)
    latency = gpu + o.transfer_in_out[idx]
    throughput = o.batch[idx] * 1000 / (gpu + o.transfer_out[idx])
    return np.asarray((latency > o.latency_cap[idx]) | (throughput < o.rate_need[idx]))


def _needed(hw: Hardware, o: Options, idx: Array, r: Array) -> Array:
    """Least grid share of each member given the others at r (inf when no share suffices)."""
    _, power, l2 = demand_terms(o, idx, r)
    ratio = clock_ratio(hw, hw.idle_power_w + power.sum(axis=1))[:, None]
    return needed_share(hw, o, idx, l2.sum(axis=1, keepdims=True) - l2, ratio, idx.shape[1])


def least_shares(hw: Hardware, o: Options, idx: Array, start: Array | None = None) -> Array:
    """Least feasible grid shares of each row's members; rows that cannot fit get inf shares.

    idx: (K, m) option indices, one candidate GPU per row. start: a lower bound on the least
    shares (e.g. a subset's shares), default one unit each.
    """
    idx = np.asarray(idx, dtype=np.int64)
    r = np.full(idx.shape, hw.unit_pct) if start is None else np.array(start, dtype=float)
    live = np.ones(len(idx), dtype=bool)
    for _ in range(MAX_ROUNDS):
        rows = np.nonzero(live)[0]
        if rows.size == 0:
            break
        new = np.maximum(r[rows], _needed(hw, o, idx[rows], r[rows]))
        over = ~np.isfinite(new).all(axis=1) | (new.sum(axis=1) > FULL + 1e-9)
        settled = ~over & (new == r[rows]).all(axis=1)
        if settled.any():  # converged by the inverse: confirm forward, bump float-noise violators
            sub = rows[settled]
            late = violated(hw, o, idx[sub], r[sub])
            new[settled] += hw.unit_pct * late
            live[sub[~late.any(axis=1)]] = False
        r[rows] = new
        r[rows[over]] = np.inf
        live[rows[over]] = False
    r[live] = np.inf  # did not settle: treat as not fitting (never seen; safe)
    return r
