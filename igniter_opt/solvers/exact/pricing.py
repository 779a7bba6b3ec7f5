"""Pricing: the GPU configuration whose members' duals sum highest, under the full model.

A configuration is a multiset of options (workload type, batch); its value is the sum of its
members' type duals, and it prices out when that value exceeds 1 (the cost of a GPU). The search
grows sets one member at a time in a fixed order of options. Each node expands all its children
in one vectorised oracle call (and a memo remembers every set ever evaluated); a child that does
not fit is never extended (feasibility is downward closed), and a child is extended only if its
value plus a fractional-knapsack bound can still pass the threshold. The knapsack is tight
because its weights are shares *as they are when shared*: a candidate's share in the parent plus
that candidate, which its share in any larger set can only exceed; only candidates that fit
beside the parent enter it (a conflict-graph cut).

Two modes share that machinery: `beam` keeps the best few nodes per level (fast, heuristic);
`exhaustive` is a depth-first search that either finds sets above the threshold or proves that
none exists, which is what the bound argument of branch-and-price needs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from igniter_opt.solvers.exact.levels import LevelSearch
from igniter_opt.solvers.exact.master import Column
from igniter_opt.solvers.exact.oracle import FULL, Options, least_shares
from igniter_opt.model.coefficients import Hardware

MEMO_LIMIT = 2_000_000
LEVELS = True  # the level-wise vectorised search (False: the depth-first one, for comparison)
DP_MAX = 80  # the integer knapsack bound costs O(K^2 units); above this, fractional only


@dataclass
class Rules:
    """Branching rules a priced column must obey: option pairs together or apart."""

    together: list[tuple[int, int]] = field(default_factory=list)  # types
    apart: list[tuple[int, int]] = field(default_factory=list)  # types

    def admits(self, types: np.ndarray) -> bool:
        """Does a column with these member types obey every rule?"""
        present = set(types.tolist())
        if any((a in present) != (b in present) for a, b in self.together):
            return False
        return not any(a in present and b in present for a, b in self.apart)

    def partial_ok(self, types: set[int]) -> bool:
        """Can a set with these member types still be extended into an admitted one? (apart only)"""
        return not any(a in types and b in types for a, b in self.apart)


@dataclass
class PricingResult:
    """Columns found above the threshold, and whether the search was exhaustive."""

    columns: list[Column]
    complete: bool
    best: float
    nodes: int


class Pricer:
    """Prices GPU configurations over a fixed set of options (memo shared across calls)."""

    def __init__(self, hw: Hardware, options: Options, option_type: np.ndarray, demand: np.ndarray):
        self.hw = hw
        self.o = options
        self.option_type = option_type
        self.demand = demand.astype(int)
        self.memo: dict[tuple[int, ...], np.ndarray | None] = {}
        self.evaluations = 0
        self.pair = self._pair_table()

    def _pair_table(self) -> np.ndarray:
        """pair[a, b]: least share of option b beside option a alone (inf when the pair cannot fit).

        A member's share in any larger set is at least its share in each pair it is part of, so
        these are the knapsack weights of the search ("shares as they are when shared").
        """
        n = len(self.option_type)
        a, b = np.triu_indices(n)
        keep = self.o.alone[a] + self.o.alone[b] <= FULL
        keep &= (a != b) | (self.demand[self.option_type[a]] >= 2)
        a, b = a[keep], b[keep]
        table = np.full((n, n), np.inf)
        for lo in range(0, a.size, 20000):
            sa, sb = a[lo:lo + 20000], b[lo:lo + 20000]
            idx = np.stack([sa, sb], axis=1)
            start = np.stack([self.o.alone[sa], self.o.alone[sb]], axis=1)
            r = least_shares(self.hw, self.o, idx, start)
            table[sa, sb] = r[:, 1]
            table[sb, sa] = r[:, 0]
        return table

    # -- the oracle with memo -------------------------------------------------------------
    def children(self, members: tuple[int, ...], shares: np.ndarray, cands: np.ndarray
                 ) -> list[np.ndarray | None]:
        """Least shares of members + each candidate (None where it does not fit), memoised.

        Members are kept sorted by option index; a child's start is its parent's shares with the
        candidate's pair-bounded share inserted (a lower bound on the least shares).
        """
        k = len(cands)
        idx = np.empty((k, len(members) + 1), dtype=np.int64)
        start = np.empty(idx.shape)
        idx[:, :-1] = members
        idx[:, -1] = cands
        start[:, :-1] = shares
        lb = self.o.alone[cands]
        if members:
            lb = np.maximum(lb, self.pair[np.asarray(members, dtype=np.int64)][:, cands].max(axis=0))
        start[:, -1] = lb
        perm = np.argsort(idx, axis=1, kind="stable")
        idx = np.take_along_axis(idx, perm, axis=1)
        start = np.take_along_axis(start, perm, axis=1)
        keys = list(map(tuple, idx.tolist()))
        todo = [j for j, key in enumerate(keys) if key not in self.memo]
        if todo:
            res = least_shares(self.hw, self.o, idx[todo], start[todo])
            self.evaluations += len(todo)
            if len(self.memo) > MEMO_LIMIT:
                self.memo.clear()
            fits = np.isfinite(res).all(axis=1)
            for j, r, f in zip(todo, res, fits):
                self.memo[keys[j]] = r if f else None
        return [self.memo[key] for key in keys]

    def shares_of(self, members: tuple[int, ...]) -> np.ndarray | None:
        """Least shares of a set in sorted option order (memoised), None when it does not fit."""
        key = tuple(sorted(members))
        if key not in self.memo:
            res = least_shares(self.hw, self.o, np.array([key]), None)[0]
            self.memo[key] = res if np.isfinite(res).all() else None
        return self.memo[key]

    # -- the search -----------------------------------------------------------------------
    def price(self, duals: np.ndarray, threshold: float, *, beam: int | None, deadline: float,
              rules: Rules | None = None, max_columns: int = 60, max_nodes: int | None = None
              ) -> PricingResult:
        """Sets whose dual sum exceeds the threshold (beam search, or exhaustive when beam is None)."""
        rules = rules or Rules()
        value = duals[self.option_type]
        order = np.nonzero(value > 1e-12)[0]
        if order.size == 0:
            return PricingResult([], True, 0.0, 0)
        ratio = value[order] / np.maximum(self.o.alone[order], 1e-9)
        order = order[np.argsort(-ratio, kind="stable")]
        if LEVELS:
            res = LevelSearch(self, order, value[order], threshold, rules, deadline, max_columns, beam,
                              max_nodes).run()
            cols = [Column(tuple(int(o) for o in opts), tuple(float(x) for x in sh)) for opts, sh, _ in res.found]
            return PricingResult(cols, res.complete, res.best, res.evaluated)
        search = _Search(self, value, order, threshold, rules, max_columns, deadline, max_nodes)
        if beam is None:
            search.depth_first()
        else:
            search.beam(beam)
        cols = sorted(search.found.values(), key=lambda c: -float(value[list(c.members)].sum()))
        return PricingResult(cols[:max_columns], search.complete, search.best, search.nodes)


class _Search:
    """One pricing call: nodes are (positions in `order`, shares in member order, value)."""

    def __init__(self, pricer: Pricer, value: np.ndarray, order: np.ndarray, threshold: float,
                 rules: Rules, max_columns: int, deadline: float, max_nodes: int | None):
        self.p = pricer
        self.value = value
        self.order = order
        self.threshold = threshold
        self.rules = rules
        self.max_columns = max_columns
        self.deadline = deadline
        self.max_nodes = max_nodes
        self.found: dict[tuple[int, ...], Column] = {}
        self.best = 0.0
        self.complete = True
        self.nodes = 0
        types = pricer.option_type[order]
        self.cand_value = value[order]
        self.cand_mult = pricer.demand[types].astype(float)

    def _stop(self) -> bool:
        if len(self.found) >= self.max_columns:
            self.complete = False
            return True
        if time.perf_counter() > self.deadline or (self.max_nodes and self.nodes >= self.max_nodes):
            self.complete = False
            return True
        return False

    def expand(self, pos: tuple[int, ...], members: tuple[int, ...], shares: np.ndarray, val: float):
        """Feasible children (positions >= the last one) and the bound on extending each."""
        self.nodes += 1
        first = pos[-1] if pos else 0
        cand = np.arange(first, len(self.order))
        opts = self.order[cand]
        used = np.bincount(self.p.option_type[list(members)], minlength=len(self.p.demand)) \
            if members else np.zeros(len(self.p.demand), dtype=int)
        types = self.p.option_type[opts]
        room = self.p.demand[types] - used[types]
        cand, opts = cand[room > 0], opts[room > 0]
        if self.rules.apart:
            present = set(self.p.option_type[list(members)].tolist())
            keep = [self.rules.partial_ok(present | {int(t)}) for t in self.p.option_type[opts]]
            cand, opts = cand[np.array(keep, dtype=bool)], opts[np.array(keep, dtype=bool)]
        if members:  # pair shares: a cheap cut before any fixed point is computed
            lb = np.maximum(self.p.o.alone[opts], self.p.pair[list(members)][:, opts].max(axis=0))
            fits = lb + float(np.sum(shares)) <= FULL + 1e-9
            cand, opts = cand[fits], opts[fits]
        if cand.size == 0:
            return []
        res = self.p.children(members, shares, opts)
        ok = np.array([r is not None for r in res])
        cand, opts = cand[ok], opts[ok]
        res = [r for r in res if r is not None]
        if cand.size == 0:
            return []
        child_shares = [r for r in res]
        keys = [tuple(sorted(members + (int(o),))) for o in opts]
        own = np.array([r[k.index(int(o))] for r, k, o in zip(child_shares, keys, opts)])
        totals = np.array([r.sum() for r in child_shares])
        vals = val + self.value[opts]
        bounds = self._bounds(cand, opts, own, totals, used)
        out = []
        for c, o, k, r, v, b in zip(cand, opts, keys, child_shares, vals, bounds):
            out.append((pos + (int(c),), k, r, float(v), float(v + b)))
        return out

    def _bounds(self, cand: np.ndarray, opts: np.ndarray, own: np.ndarray, totals: np.ndarray,
                used: np.ndarray) -> np.ndarray:
        """Per child, a fractional knapsack over the candidates at positions >= its own.

        Capacity: what the child's least shares leave of the GPU. Weight of candidate q after
        child c: the larger of q's share beside the parent and q's share beside c alone.
        """
        vals = self.cand_value[cand]
        types = self.p.option_type[opts]
        mult = np.maximum(self.p.demand[types] - used[types], 0).astype(float)
        w = np.maximum(np.maximum(own[None, :], self.p.pair[opts][:, opts]), 1e-9)  # (K, K)
        allowed = (cand[None, :] >= cand[:, None]) & np.isfinite(w)
        allowed &= ~((cand[None, :] == cand[:, None]) & (mult[None, :] <= 1))
        ratio = np.where(allowed, vals[None, :] / w, -1.0)
        rank = np.argsort(-ratio, axis=1, kind="stable")
        w_r = np.take_along_axis(np.where(allowed, w, 0.0), rank, axis=1)
        wm = w_r * mult[rank]
        vm = np.take_along_axis(np.where(allowed, 1.0, 0.0), rank, axis=1) * vals[rank] * mult[rank]
        before = np.cumsum(wm, axis=1) - wm
        cap = np.maximum(FULL - totals, 0.0)
        take = np.clip((cap[:, None] - before) / np.maximum(wm, 1e-12), 0.0, 1.0)
        frac = (take * vm).sum(axis=1)
        if len(cand) < 3 or len(cand) > DP_MAX:
            return frac
        return np.minimum(frac, self._knapsack(vals, w, allowed, mult, cap))

    def _knapsack(self, vals: np.ndarray, w: np.ndarray, allowed: np.ndarray, mult: np.ndarray,
                  cap: np.ndarray) -> np.ndarray:
        """The 0-1 (bounded) knapsack in share units, one row per child, all rows at once.

        Shares are multiples of the unit, so this integer bound is exact for the relaxation
        "members only need their pair shares"; it is far tighter than the fractional one when
        a GPU holds only a few members.
        """
        unit = self.p.hw.unit_pct
        size = int(round(FULL / unit))
        wu = np.where(allowed, np.round(w / unit), size + 1).astype(np.int64)
        rows = np.arange(len(vals))
        grid = np.arange(size + 1)[None, :]
        dp = np.zeros((len(vals), size + 1))
        for j in range(len(vals)):
            col = wu[:, j]
            live = col <= size
            if not live.any():
                continue
            for _ in range(int(min(mult[j], size))):
                src = grid - col[:, None]
                gain = np.where(src >= 0, np.take_along_axis(dp, np.clip(src, 0, size), axis=1) + vals[j], -np.inf)
                new = np.maximum(dp, gain)
                if np.array_equal(new, dp):
                    break
                dp = new
        capu = np.clip(np.floor(cap / unit + 1e-9).astype(np.int64), 0, size)
        return dp[rows, capu]

    def _record(self, key: tuple[int, ...], shares: np.ndarray, v: float) -> None:
        self.best = max(self.best, v)
        if v > self.threshold and key not in self.found:
            if self.rules.together and not self.rules.admits(self.p.option_type[list(key)]):
                return
            self.found[key] = Column(members=key, shares=tuple(float(s) for s in shares))

    def depth_first(self) -> None:
        stack = [((), (), np.zeros(0), 0.0)]
        while stack:
            if self._stop():
                return
            pos, members, shares, val = stack.pop()
            kids = self.expand(pos, members, shares, val)
            for kpos, key, r, v, bound in reversed(kids):
                self._record(key, r, v)
                if bound > self.threshold + 1e-12 and bound > v + 1e-12:
                    stack.append((kpos, key, r, v))

    def beam(self, width: int) -> None:
        level = [((), (), np.zeros(0), 0.0, np.inf)]
        while level:
            nxt = []
            for pos, members, shares, val, _ in level:
                if self._stop():
                    return
                for kpos, key, r, v, bound in self.expand(pos, members, shares, val):
                    self._record(key, r, v)
                    if bound > self.threshold + 1e-12 and bound > v + 1e-12:
                        nxt.append((kpos, key, r, v, bound))
            nxt.sort(key=lambda n: -(n[3] + 0.5 * (n[4] - n[3])))
            level = nxt[:width]
        self.complete = False
