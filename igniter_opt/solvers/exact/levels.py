"""Level-wise pricing search: every candidate GPU of one size evaluated in a few numpy calls.

The search grows sets one member at a time in a fixed order of options (positions), so each set
is generated once. A level holds the frontier: all sets of m members still worth extending. The
next level is every frontier set plus every later option, built with index arithmetic, cut by
pair shares, then the least-share fixed point of all of them runs as one block. Each surviving
child is kept for the next level only if its value plus a knapsack bound on what later options
could add still passes the threshold. The bound's weights are the candidates' shares as they are
when shared: q's least share beside the child's parent (from the siblings just computed) and
beside the child's own new member (the pair table), whichever is larger; its capacity is what the
child's least shares leave. A fractional bound runs on every child and an integer one (shares are
multiples of the unit) on the survivors.

Exhaustive mode keeps every child that passes; beam mode keeps the best `beam` children per
level (a fast heuristic). Both stop early once enough columns are found.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from igniter_opt.model.predict import Array
from igniter_opt.solvers.exact.branching import Rules
from igniter_opt.solvers.exact.oracle import FULL, clock_ratio, demand_terms, least_shares, needed_share
from igniter_opt.solvers.exact.view import PricerView


class _OutOfTime(Exception):
    """The deadline passed inside a level (the search is then incomplete)."""


@dataclass
class Frontier:
    """Sets of equal size: option positions (sorted), least shares, dual value, and `reach`: an
    upper bound on the value of the set and of every extension the search may still make of it."""

    pos: Array  # (N, m) int
    shares: Array  # (N, m)
    value: Array  # (N,)
    reach: Array | None = None  # (N,); None: not bounded yet

    def __len__(self) -> int:
        return len(self.value)

    def take(self, rows: slice) -> Frontier:
        return Frontier(self.pos[rows], self.shares[rows], self.value[rows],
                        None if self.reach is None else self.reach[rows])

    def top(self) -> float:
        """The largest reach (the value when unbounded); -inf when empty."""
        if len(self) == 0:
            return -np.inf
        return float(np.max(self.value if self.reach is None else self.reach))


@dataclass
class LevelResult:
    found: list[tuple[Array, Array, float]]  # options, shares, value
    complete: bool
    best: float  # the largest value of any set evaluated
    evaluated: int
    open_reach: float = np.inf  # exhaustive mode: no set left unexplored is worth more than this


def _knapsack(value: Array, w: Array, ok: Array, mult: Array, cap: Array,
              limit: int | None) -> Array:
    """Fractional bounded knapsack per row (values per column, weights per cell), at most `limit` items."""
    wm = np.where(ok, w, 0.0) * mult
    vm = np.where(ok, value[None, :], 0.0) * mult
    ratio = np.where(ok, value[None, :] / np.maximum(np.where(ok, w, 1.0), 1e-9), -1.0)
    rank = np.argsort(-ratio, axis=1, kind="stable")
    wm, vm = np.take_along_axis(wm, rank, axis=1), np.take_along_axis(vm, rank, axis=1)
    before: Array = np.cumsum(wm, axis=1) - wm
    take = np.clip((cap[:, None] - before) / np.maximum(wm, 1e-12), 0.0, 1.0)
    frac = (take * vm).sum(axis=1)
    if limit is None:
        return np.asarray(frac)
    # the `limit` most valuable items, an option counted as often as its multiplicity allows
    order = np.argsort(-np.where(ok, value[None, :], 0.0), axis=1, kind="stable")
    v_sorted = np.take_along_axis(np.where(ok, value[None, :], 0.0), order, axis=1)
    m_sorted = np.take_along_axis(np.where(ok, mult, 0), order, axis=1)
    before_count = np.cumsum(m_sorted, axis=1) - m_sorted
    top = (np.clip(limit - before_count, 0, m_sorted) * v_sorted).sum(axis=1)
    return np.asarray(np.minimum(frac, top))


class LevelSearch:
    """One pricing call over options in `order` (positions) with values `value` per position."""

    def __init__(self, pricer: PricerView, order: Array, value: Array, threshold: float, rules: Rules,
                 deadline: float, max_columns: int, beam: int | None, max_evaluations: int | None):
        self.p = pricer
        self.order = order
        self.value = value  # per position
        self.opt_type = pricer.option_type[order]
        self.mult = pricer.demand[self.opt_type]
        self.alone = pricer.o.alone[order]
        self.pair = pricer.pair[np.ix_(order, order)]
        self.threshold = threshold
        self.rules = rules
        self.deadline = deadline
        self.max_columns = max_columns
        self.beam = beam
        self.max_evaluations = max_evaluations
        self.found: dict[tuple[int, ...], tuple[Array, Array, float]] = {}
        self.best = 0.0
        self.evaluated = 0
        self.unit = pricer.hw.unit_pct
        self.open_reach = np.inf

    def run(self) -> LevelResult:
        k = len(self.order)
        fits = np.isfinite(self.alone) & (self.alone <= FULL)
        pos = np.nonzero(fits)[0]
        level = Frontier(pos[:, None], self.alone[pos][:, None], self.value[pos])
        self._record(level)
        complete = True
        try:
            level = self._survivors(level, np.full(len(level), -1), self.alone[None, :].repeat(len(level), 0)
                                    if len(level) else np.zeros((0, k)))
            if self.beam is None:
                complete = self._depth_first(level)
            else:
                while len(level) and not self._stop():
                    level = self._next(level)
        except _OutOfTime:
            complete = False
        if self.beam is not None:
            complete = False
        found = sorted(self.found.values(), key=lambda f: -f[2])
        return LevelResult(found[:self.max_columns], complete, self.best, self.evaluated,
                           -np.inf if complete else self.open_reach)

    def _depth_first(self, level: Frontier) -> bool:
        """Exhaustive search in batches, deepest level first: columns show up early, memory stays
        small; True when every set worth extending was extended."""
        stack = [level]
        self.open_reach = level.top()
        while stack:
            if self._stop():
                return False
            top = stack.pop()
            step = self.p.settings.dfs_batch
            batch, rest = top.take(slice(0, step)), top.take(slice(step, None))
            if len(rest):
                stack.append(rest)
            # were the search cut from here on, the batch and the stack are what is left unexplored
            self.open_reach = max([batch.top(), *(f.top() for f in stack)])
            nxt = self._next(batch)
            if len(nxt):
                stack.append(nxt)
        return True

    def _check_time(self) -> None:
        if time.perf_counter() > self.deadline:
            raise _OutOfTime

    def _stop(self) -> bool:
        if len(self.found) >= self.max_columns or time.perf_counter() > self.deadline:
            return True
        return self.max_evaluations is not None and self.evaluated >= self.max_evaluations

    # -- one level ------------------------------------------------------------------------
    def _children(self, level: Frontier) -> tuple[Array, Array, Array]:
        """(parent index, candidate position) of every child: positions from the parent's last."""
        k = len(self.order)
        last = level.pos[:, -1]
        counts = k - last if self.beam is None else np.minimum(k - last, self.p.settings.beam_span)
        parent = np.repeat(np.arange(len(level)), counts)
        offsets = np.cumsum(counts) - counts
        cand = last[parent] + (np.arange(counts.sum()) - offsets[parent])
        same_type = (self.opt_type[level.pos[parent]] == self.opt_type[cand][:, None]).sum(axis=1)
        keep = same_type < self.mult[cand]
        for a, b in self.rules.apart:
            has_a = (self.opt_type[level.pos[parent]] == a).any(axis=1)
            has_b = (self.opt_type[level.pos[parent]] == b).any(axis=1)
            keep &= ~((has_a & (self.opt_type[cand] == b)) | (has_b & (self.opt_type[cand] == a)))
        parent, cand = parent[keep], cand[keep]
        lb = np.maximum(self.alone[cand], self.pair[level.pos[parent], cand[:, None]].max(axis=1))
        keep = level.shares[parent].sum(axis=1) + lb <= FULL + 1e-9
        return parent[keep], cand[keep], lb[keep]

    def _next(self, level: Frontier) -> Frontier:
        parent, cand, lb = self._children(level)
        if parent.size == 0:
            return Frontier(np.zeros((0, level.pos.shape[1] + 1), dtype=np.int64), np.zeros((0, 0)), np.zeros(0))
        pos = np.concatenate([level.pos[parent], cand[:, None]], axis=1)
        start = np.concatenate([level.shares[parent], lb[:, None]], axis=1)
        shares = np.empty_like(start)
        chunk = self.p.settings.oracle_rows
        for lo in range(0, len(pos), chunk):
            self._check_time()
            sl = slice(lo, lo + chunk)
            shares[sl] = least_shares(self.p.hw, self.p.o, self.order[pos[sl]], start[sl])
        self.evaluated += len(pos)
        ok = np.isfinite(shares).all(axis=1)
        parent, cand, pos, shares = parent[ok], cand[ok], pos[ok], shares[ok]
        child = Frontier(pos, shares, level.value[parent] + self.value[cand])
        self._record(child)
        # own share of each candidate beside each parent (the siblings), inf where it did not fit
        own = np.full((len(level), len(self.order)), np.inf)
        own[parent, cand] = shares[:, -1]
        return self._survivors(child, parent, own)

    def _survivors(self, child: Frontier, parent: Array, own: Array) -> Frontier:
        """Children whose value plus the knapsack bound passes the threshold (beam: the best)."""
        if len(child) == 0:
            return child
        last = child.pos[:, -1]
        bound = np.empty(len(child))
        rows = max(256, self.p.settings.bound_cells // (len(self.order) * child.pos.shape[1]))
        for lo in range(0, len(child), rows):
            self._check_time()
            sl = slice(lo, lo + rows)
            bound[sl] = self._bound(child, sl, own[np.maximum(parent[sl], 0)] if parent[0] >= 0
                                    else own[sl], last[sl])
        keep = child.value + bound > self.threshold + 1e-12
        keep &= bound > 1e-12
        idx = np.nonzero(keep)[0]
        idx = idx[np.argsort(-(child.value[idx] + 0.5 * bound[idx]), kind="stable")]
        if self.beam is not None:
            idx = idx[:self.beam]
        return Frontier(child.pos[idx], child.shares[idx], child.value[idx], child.value[idx] + bound[idx])

    def _bound(self, child: Frontier, sl: slice, own: Array, last: Array) -> Array:
        """Upper bound on the value later options can add to each child, over the count they add.

        For a additions (a = 1..ghosts, and "ghosts or more"; settings.ghosts), everyone's interference is bounded
        from below by the child's members at their least shares plus a-1 (a, for the child's own
        members) "ghosts", each demanding the least L2 and power any option demands alone, at
        m + a members' scheduling delay. One inverse step per member then gives shares that
        the final set can only exceed: the child's members need at least r_s(a), so capacity is
        100 - sum r_s(a), and candidate q weighs at least w_q(a). A fractional knapsack with at
        most a items bounds each count; the bound is the best over counts.
        """
        hw, o, k = self.p.hw, self.p.o, len(self.order)
        opts = self.order[child.pos[sl]]
        r = child.shares[sl]
        n, m = opts.shape
        _, power, l2 = demand_terms(o, opts, r)
        l2_sum, power_sum = l2.sum(axis=1), hw.idle_power_w + power.sum(axis=1)
        w0 = np.maximum(own, self.pair[last])  # (n, K): q beside the parent, and beside the new member
        allowed = (np.arange(k)[None, :] >= last[:, None]) & np.isfinite(w0)
        used = np.zeros((n, len(self.p.demand)), dtype=np.int64)
        for j in range(m):
            used[np.arange(n), self.opt_type[child.pos[sl][:, j]]] += 1
        mult = np.maximum(self.mult[None, :] - used[:, self.opt_type], 0)
        allowed &= mult > 0
        q = np.broadcast_to(self.order[None, :], (n, k))
        _, q_power, q_l2 = demand_terms(o, q, np.where(allowed, w0, FULL))
        # a ghost demands the least L2 and power of any candidate this child may still take
        ghost_l2 = np.maximum(np.where(allowed, q_l2, np.inf).min(axis=1, initial=np.inf), 0.0)[:, None]
        ghost_power = np.maximum(np.where(allowed, q_power, np.inf).min(axis=1, initial=np.inf), 0.0)
        ghost_l2 = np.where(np.isfinite(ghost_l2), ghost_l2, 0.0)
        ghost_power = np.where(np.isfinite(ghost_power), ghost_power, 0.0)
        best = np.zeros(n)
        ghosts = self.p.settings.ghosts if self.beam is None else 1  # the beam only ranks: the cheap bound will do
        for a in range(1, ghosts + 1):
            ratio_s = clock_ratio(hw, power_sum + a * ghost_power)[:, None]
            r_a = np.maximum(r, needed_share(hw, o, opts, l2_sum[:, None] - l2 + a * ghost_l2,
                                             ratio_s, m + a))
            cap = FULL - r_a.sum(axis=1)
            ratio_q = clock_ratio(hw, power_sum[:, None] + q_power + (a - 1) * ghost_power[:, None])
            w = np.maximum(w0, needed_share(hw, o, q, l2_sum[:, None] + (a - 1) * ghost_l2,
                                            ratio_q, m + a))
            ok = allowed & (w <= cap[:, None] + 1e-9)
            limit = a if a < ghosts else None
            best = np.maximum(best, np.where(cap >= 0, _knapsack(self.value, w, ok, mult, cap, limit), 0.0))
        return best

    def _record(self, level: Frontier) -> None:
        if len(level) == 0:
            return
        self.best = max(self.best, float(level.value.max()))
        hit = np.nonzero(level.value > self.threshold)[0]
        for i in hit[np.argsort(-level.value[hit])][: self.max_columns * 2]:
            opts = self.order[level.pos[i]]
            if self.rules.together and not self.rules.admits(self.p.option_type[opts]):
                continue
            key = tuple(np.sort(opts).tolist())
            if key not in self.found:
                perm = np.argsort(opts, kind="stable")
                self.found[key] = (opts[perm], level.shares[i][perm], float(level.value[i]))
