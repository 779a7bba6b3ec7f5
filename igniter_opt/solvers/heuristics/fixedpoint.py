"""The raise-the-violators fixed point on many candidate GPUs at once, for the placement heuristics.

The greedy and the first fit try one workload on every open GPU with room for it; done one GPU at a
time (colocation.raise_violators) that is a Python loop over GPUs per workload, quadratic in the
instance size. `GpuTable` keeps the open GPUs as padded numpy matrices (members, shares) and runs the
fixed point on all candidate GPUs in lockstep: each step predicts every still-active candidate with
the model's formulas on 2-D arrays (the same operations as model.predict_arrays, row by row) and
raises each violator by one unit, until every candidate holds or passes 100%.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from igniter_opt.model import ModelArrays, Profile
from igniter_opt.model.predict import Array
from igniter_opt.solvers.sizing import FULL_SHARE, Demand

ROOM = 1e-6  # float slack when skipping GPUs without room (the exact check follows)


@dataclass
class Trial:
    """Result of trying one workload on candidate GPUs: their final shares and which fit."""

    gpus: Array  # candidate GPU indices
    shares: Array  # (len(gpus), width): shares after the fixed point (0 in padding)
    fits: Array  # bool: the fixed point ended at a share sum <= 100
    added: Array  # share added to each GPU (new sum - old sum)


class GpuTable:
    """Open GPUs as padded matrices, with the demands' coefficients stacked once."""

    def __init__(self, profile: Profile, demands: list[Demand], throughput: bool) -> None:
        self.hw = profile.hardware
        self.demands = demands
        self.throughput = throughput
        self.coef = ModelArrays.of(profile, [d.model for d in demands]) if demands else None
        self.batch = np.array([d.batch for d in demands], dtype=float)
        self.slo_half = np.array([d.latency_limit_ms for d in demands])
        self.rate = np.array([d.rate_target_rps for d in demands])
        self.members = np.zeros((16, 4), dtype=np.int64)
        self.shares = np.zeros((16, 4))
        self.count = np.zeros(16, dtype=np.int64)
        self.load = np.zeros(16)
        self.size = 0

    def open(self, members: list[int], shares: list[float]) -> int:
        """Open a GPU with these members at these shares; its index."""
        g = self.size
        self._grow(g + 1, len(members))
        self.size += 1
        self.set(g, np.asarray(members), np.asarray(shares, dtype=float))
        return g

    def open_many(self, items: list[int], shares: Array) -> None:
        """Open one GPU per item, each alone at its share (in one vector step)."""
        g = self.size
        k = len(items)
        self._grow(g + k, 1)
        self.size += k
        rows = slice(g, g + k)
        self.members[rows, :] = 0
        self.shares[rows, :] = 0.0
        self.members[rows, 0] = items
        self.shares[rows, 0] = shares
        self.count[rows] = 1
        self.load[rows] = shares

    def set(self, g: int, members: Array, shares: Array) -> None:
        """Replace GPU g's members and shares."""
        k = len(members)
        self._grow(g + 1, k)
        self.members[g, :] = 0
        self.shares[g, :] = 0.0
        self.members[g, :k] = members
        self.shares[g, :k] = shares
        self.count[g] = k
        self.load[g] = float(np.sum(self.shares[g, :k]))

    def gpu(self, g: int) -> tuple[list[int], list[float]]:
        """Members and shares of GPU g."""
        k = int(self.count[g])
        return self.members[g, :k].tolist(), self.shares[g, :k].tolist()

    def candidates(self, i: int) -> Array:
        """Open GPUs whose share sum leaves room for demand i's r_lower, in opening order."""
        return np.flatnonzero(self.load[:self.size] + self.demands[i].r_lower <= FULL_SHARE + ROOM)

    def _grow(self, rows: int, width: int) -> None:
        if rows > len(self.count):
            extra = max(rows, 2 * len(self.count)) - len(self.count)
            self.members = np.vstack([self.members, np.zeros((extra, self.members.shape[1]), dtype=np.int64)])
            self.shares = np.vstack([self.shares, np.zeros((extra, self.shares.shape[1]))])
            self.count = np.concatenate([self.count, np.zeros(extra, dtype=np.int64)])
            self.load = np.concatenate([self.load, np.zeros(extra)])
        if width > self.members.shape[1]:
            extra = max(width, 2 * self.members.shape[1]) - self.members.shape[1]
            self.members = np.hstack([self.members, np.zeros((len(self.count), extra), dtype=np.int64)])
            self.shares = np.hstack([self.shares, np.zeros((len(self.count), extra))])

    def trial(self, i: int, gpus: Array) -> Trial:
        """Demand i added at r_lower to each GPU in `gpus`, then the fixed point on all of them."""
        gpus = np.asarray(gpus, dtype=np.int64)
        count = self.count[gpus]
        width = int(count.max(initial=0)) + 1
        self._grow(self.size, width)
        members = self.members[gpus, :width].copy()
        shares = self.shares[gpus, :width].copy()
        rows = np.arange(len(gpus))
        members[rows, count] = i
        shares[rows, count] = self.demands[i].r_lower
        mask = np.arange(width)[None, :] <= count[:, None]
        shares = self._fixed_point(members, shares, mask)
        total = shares.sum(axis=1)
        return Trial(gpus, shares, total <= FULL_SHARE, total - self.load[gpus])

    def alone(self, items: list[int]) -> Array:
        """Least share of each demand alone on a GPU (the fixed point from r_lower); inf if none."""
        members = np.asarray(items, dtype=np.int64).reshape(-1, 1)
        start = np.array([[self.demands[i].r_lower] for i in items]).reshape(-1, 1)
        shares = self._fixed_point(members, start, np.ones_like(members, dtype=bool))[:, 0]
        return np.where(shares <= FULL_SHARE, shares, np.inf)

    def _fixed_point(self, members: Array, shares: Array, mask: Array) -> Array:
        active = np.ones(len(members), dtype=bool)
        unit = self.hw.unit_pct
        while True:
            active &= shares.sum(axis=1) <= FULL_SHARE
            rows = np.flatnonzero(active)
            if rows.size == 0:
                return shares
            late = self._late(members[rows], shares[rows], mask[rows])
            holds = ~late.any(axis=1)
            active[rows[holds]] = False
            shares[rows] += unit * late

    def _late(self, members: Array, shares: Array, mask: Array) -> Array:
        """Which members break their latency limit (or, with throughput, their rate) on each row."""
        assert self.coef is not None
        hw, c = self.hw, self.coef
        b = self.batch[members]
        r = np.where(mask, shares, FULL_SHARE)  # padding: any finite share, masked out below
        k = c.k[members]
        t_solo = (k[..., 0] * b**2 + k[..., 1] * b + k[..., 2]) / (r + k[..., 3]) + k[..., 4]
        ability = (1000 * b) / t_solo
        power = np.where(mask, c.power[members, 0] * ability + c.power[members, 1], 0.0)
        l2 = np.where(mask, c.l2[members, 0] * ability + c.l2[members, 1], 0.0)
        total_power = hw.idle_power_w + power.sum(axis=1)
        total_l2 = l2.sum(axis=1)
        freq = np.where(total_power > hw.power_cap_w, hw.a_f * (total_power - hw.power_cap_w)
                        + hw.max_frequency_mhz, hw.max_frequency_mhz)
        n = mask.sum(axis=1).astype(float)
        sched = np.where(n >= 2, hw.a_sch * n + hw.b_sch, 0.0)
        t_sched = c.kernels[members] * sched[:, None] + c.t_idle[members]
        t_act = t_solo * (1 + c.k_l2[members] * (total_l2[:, None] - l2))
        gpu = (t_sched + t_act) / (freq / hw.max_frequency_mhz)[:, None]
        B = hw.bandwidth_bytes_per_ms
        out_bytes, in_bytes = c.output_bytes[members], c.input_bytes[members]
        latency = gpu + (in_bytes + out_bytes) * b / B
        late = latency > self.slo_half[members]
        if self.throughput:
            late |= b * 1000 / (gpu + out_bytes * b / B) < self.rate[members]
        out: Array = late & mask
        return out
