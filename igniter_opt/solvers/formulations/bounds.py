"""Bounds on the interference one GPU can hold, and dominance pruning of configurations.

The most L2 demand, power and co-located workloads a GPU can carry come from a multiple-choice
knapsack over share units (at most one configuration per demand, shares summing to <= 100), solved
exactly by dynamic programming. "Excluding demand i" tables combine a prefix and a suffix table.
They give the big-Ms of the compact model and the worst context of each configuration.

Dominance (sound: some optimal plan uses only surviving configurations). Configuration a of a
demand replaces configuration b of the same demand when a takes no more share, power and L2
than b (so the others see no more interference) and a is feasible wherever b is: either
t_solo_a <= t_solo_b and L_a >= L_b, or a holds even in its worst context (robust).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from igniter_opt.data.errors import DeadlineReached
from igniter_opt.model.coefficients import Hardware
from igniter_opt.model.predict import Array
from igniter_opt.solvers.formulations.common import Configs, capacity_units, holds, inc_of

Protect = dict[int, set[tuple[int, float]]]  # demand index -> (batch, share) to keep


def _add_item(table: Array, units: Array, values: Array) -> Array:
    """One DP step: optionally take one configuration (units, value) of a new item."""
    cap = len(table) - 1
    new = table.copy()
    for w in np.unique(units).astype(int):
        if w > cap:
            continue
        v = values[units == w].max()
        new[w:] = np.maximum(new[w:], table[: cap + 1 - w] + v)
    return new


def _tables(cfgs: list[Configs], cap: int, value: str, deadline: float = math.inf
            ) -> tuple[list[Array], list[Array]]:
    """Prefix tables pre[q] (items < q) and suffix tables suf[q] (items > q).

    DeadlineReached when `deadline` (a perf_counter time) passes while they are built."""
    vals = [np.ones(len(c)) if value == "count" else getattr(c, value) for c in cfgs]
    n = len(cfgs)
    pre = [np.zeros(cap + 1)]
    for q in range(n):
        if q % 64 == 0 and time.perf_counter() > deadline:
            raise DeadlineReached(f"the interference bounds of {n} workloads were not computed in time")
        pre.append(_add_item(pre[-1], cfgs[q].units, vals[q]))
    suf = [np.zeros(cap + 1)]
    for q in reversed(range(n)):
        suf.append(_add_item(suf[-1], cfgs[q].units, vals[q]))
    suf = suf[::-1]  # suf[q] covers items q.., so items > q is suf[q + 1]
    return pre, suf


def _max_plus(a: Array, b: Array) -> Array:
    """c[t] = max over s <= t of a[s] + b[t - s]."""
    cap = len(a) - 1
    s = np.arange(cap + 1)[:, None]
    t = np.arange(cap + 1)[None, :]
    rest = t - s
    vals = np.where(rest >= 0, a[s] + b[np.clip(rest, 0, cap)], -np.inf)
    best: Array = vals.max(axis=0)
    return best


@dataclass
class Bounds:
    """Most interference on one GPU: overall, and from the others of each demand by capacity left."""

    cap: int
    l2_all: float
    power_all: float  # total, idle included
    inc_all: float
    l2_excl: list[Array]
    power_excl: list[Array]  # others' power above idle
    inc_excl: list[Array]  # increase with the demand plus the most others that fit
    l2_from: Array  # [j]: most L2 of demands at positions >= j on one GPU
    power_from: Array  # [j]: most total power (idle included) of demands at positions >= j
    inc_from: Array  # [j]: most scheduling increase of demands at positions >= j


def interference_bounds(hw: Hardware, cfgs: list[Configs], deadline: float = math.inf) -> Bounds:
    """Exact knapsack bounds over the current configurations (DeadlineReached past `deadline`)."""
    cap = capacity_units(hw)
    tables = {v: _tables(cfgs, cap, v, deadline) for v in ("l2", "power", "count")}
    excl = {v: [_max_plus(pre[q], suf[q + 1]) for q in range(len(cfgs))] for v, (pre, suf) in tables.items()}
    inc_table = np.maximum.accumulate(inc_of(hw, np.arange(len(cfgs) + 2)))
    n_all = round(tables["count"][0][-1][cap])
    return Bounds(
        cap=cap,
        l2_all=float(tables["l2"][0][-1][cap]),
        power_all=hw.idle_power_w + float(tables["power"][0][-1][cap]),
        inc_all=float(inc_table[n_all]),
        l2_excl=excl["l2"], power_excl=excl["power"],
        inc_excl=[inc_table[1 + np.round(e).astype(int)] for e in excl["count"]],
        l2_from=np.array([t[cap] for t in tables["l2"][1]]),
        power_from=hw.idle_power_w + np.array([t[cap] for t in tables["power"][1]]),
        inc_from=inc_table[np.round([t[cap] for t in tables["count"][1]]).astype(int)],
    )


def worst_context(bounds: Bounds, q: int, cfg: Configs) -> tuple[Array, Array, Array]:
    """(inc, others' L2, total power) at worst for each configuration of demand q."""
    left = (bounds.cap - cfg.units).astype(int)
    power = cfg.power + bounds.power_excl[q][left]
    return bounds.inc_excl[q][left], bounds.l2_excl[q][left], power


def robust(hw: Hardware, bounds: Bounds, q: int, cfg: Configs) -> Array:
    """Configurations that hold whatever else shares their GPU."""
    inc, l2, power = worst_context(bounds, q, cfg)
    return holds(hw, cfg, inc, l2, hw.idle_power_w + power)


# Pairwise comparisons per block of dominated(): bounds its memory (~10 bytes each) at any K.
DOMINANCE_BLOCK = 2_000_000


def dominated(cfg: Configs, strong: Array, deadline: float = math.inf) -> Array:
    """Mask of configurations some other configuration of the same demand replaces.

    Past the deadline (a time.perf_counter() value) the columns not yet compared stay unmarked:
    keeping a superset of the survivors is sound, so a partial mask is a valid one.
    """
    key = np.stack([cfg.units, cfg.power, cfg.l2])
    out = np.zeros(len(cfg), dtype=bool)
    idx = np.arange(len(cfg))
    step = max(16, DOMINANCE_BLOCK // max(1, len(cfg)))
    for start in range(0, len(cfg), step):
        if time.perf_counter() > deadline:
            break
        b = slice(start, start + step)
        le = (key[:, :, None] <= key[:, None, b]).all(axis=0)  # a (rows) <= b (cols)
        lt = (key[:, :, None] < key[:, None, b]).any(axis=0)
        better = (cfg.t_solo[:, None] <= cfg.t_solo[None, b]) & (cfg.limit[:, None] >= cfg.limit[None, b])
        order = lt | (idx[:, None] < idx[None, b])
        dom = le & order & (strong[:, None] | better) & (idx[:, None] != idx[None, b])
        out[b] = dom.any(axis=0)
    return out


def prune(hw: Hardware, cfgs: list[Configs], protect: Protect | None = None,
          rounds: int = 3, deadline: float = math.inf) -> tuple[list[Configs], Bounds]:
    """Drop dominated configurations (repeatedly: fewer survivors, tighter worst contexts).

    Past the deadline it stops dropping (what is kept is still a sound superset); DeadlineReached
    when the deadline passes while the bounds it needs are computed."""
    protect = protect or {}
    bounds = interference_bounds(hw, cfgs, deadline)
    for _ in range(rounds):
        if time.perf_counter() > deadline:
            break
        sizes = sum(len(c) for c in cfgs)
        kept = []
        for q, cfg in enumerate(cfgs):
            drop = dominated(cfg, robust(hw, bounds, q, cfg), deadline)
            for b, s in protect.get(cfg.demand, ()):
                k = cfg.index_of(b, s)
                if k is not None:
                    drop[k] = False
            kept.append(cfg.take(~drop))
        cfgs = kept
        bounds = interference_bounds(hw, cfgs, deadline)
        if sum(len(c) for c in cfgs) == sizes:
            break
    return cfgs, bounds


def packing_lower_bound(sizes: list[float], conflicts: set[tuple[int, int]], cap: float) -> int:
    """Martello-Toth L2 bound generalised to conflicts: GPUs any plan needs for these items.

    Q, a clique of items pairwise unable to share (conflict or sizes > cap together), needs |Q|
    GPUs. Items outside Q of size >= K fill the room left in Q's GPUs (only where one of them fits
    beside the Q item), the rest needs new GPUs: |Q| + ceil((volume - room) / cap). Max over Q
    (grown greedily from each item) and K.
    """
    n = len(sizes)
    adj = {v: {u for u in range(n) if u != v and sizes[u] + sizes[v] > cap + 1e-9} for v in range(n)}
    for a, b in conflicts:
        adj[a].add(b)
        adj[b].add(a)
    best = int(np.ceil(sum(sizes) / cap - 1e-9))
    thresholds = sorted({0.0, *(s for s in sizes if s <= cap / 2)})
    for v in range(n):
        clique = {v}
        for u in sorted(adj[v], key=lambda u: -sizes[u]):
            if adj[u] >= clique:
                clique.add(u)
        for k in thresholds:
            rest = [i for i in range(n) if i not in clique and sizes[i] >= k]
            room = sum(cap - sizes[q] for q in clique if cap - sizes[q] >= k and
                       any(i not in adj[q] and sizes[i] <= cap - sizes[q] for i in rest))
            volume = sum(sizes[i] for i in rest)
            best = max(best, len(clique) + max(0, int(np.ceil((volume - room) / cap - 1e-9))))
    return best
