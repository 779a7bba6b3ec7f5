"""Pricing: the GPU configuration whose members' duals sum highest, under the full model.

A configuration is a multiset of options (workload type, batch); its value is the sum of its
members' type duals, and it prices out when that value exceeds 1 (the cost of a GPU). The
Pricer holds what every call shares: the options, the pair-share table (each option's least
share beside each other option alone, the weights of the search's bounds and its cheapest cut)
and a memo of least shares for plan assembly. Each call runs the level-wise search of
`levels.py`: `beam` keeps the best sets of each size (a fast heuristic); exhaustive either finds
sets above the threshold or proves that none exists, which is what the bound argument of
branch-and-price needs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from igniter_opt.data.errors import DeadlineReached
from igniter_opt.model.coefficients import Hardware
from igniter_opt.model.predict import Array
from igniter_opt.solvers.exact.branching import Rules
from igniter_opt.solvers.exact.levels import LevelSearch
from igniter_opt.solvers.exact.master import Column
from igniter_opt.solvers.exact.oracle import FULL, Options, least_shares
from igniter_opt.solvers.exact.settings import DEFAULT, ExactSettings

try:  # the compiled pieces of the interference-state search (numba)
    from igniter_opt.solvers.exact import statespace as _statespace
except ImportError:  # pragma: no cover - numba missing
    _statespace = None  # type: ignore[assignment]

try:  # the compiled exhaustive search (numba); without numba, LevelSearch does it in numpy
    from igniter_opt.solvers.exact import kernel as _kernel
except ImportError:  # pragma: no cover - numba missing
    _kernel = None  # type: ignore[assignment]

@dataclass
class PricingResult:
    """Columns found above the threshold, and whether the search was exhaustive."""

    columns: list[Column]
    complete: bool
    best: float
    nodes: int
    open_reach: float = np.inf  # an incomplete exhaustive search: no unexplored set is worth more


def lean_options(alone: Array, option_type: Array, keep: int) -> Array:
    """Mask of each type's `keep` options of least share alone (finite ones; ties by option)."""
    mask = np.zeros(option_type.size, dtype=bool)
    finite = np.flatnonzero(np.isfinite(alone))
    ranked = finite[np.lexsort((finite, alone[finite], option_type[finite]))]  # by type, then share alone
    kinds = option_type[ranked]
    first = np.r_[0, np.flatnonzero(np.diff(kinds)) + 1] if ranked.size else np.zeros(0, dtype=int)
    rank = np.arange(ranked.size) - np.repeat(first, np.diff(np.r_[first, ranked.size]))
    mask[ranked[rank < keep]] = True
    return mask


def _rows_block(n: int, top: int, bottom: int) -> tuple[Array, Array]:
    """Pairs (a, b), a <= b < n, of the upper triangle's rows top..bottom-1, in triu order."""
    a = np.repeat(np.arange(top, bottom), n - np.arange(top, bottom))
    b = np.concatenate([np.arange(i, n) for i in range(top, bottom)]) if bottom > top else np.zeros(0, int)
    return a, b


class Pricer:
    """Prices GPU configurations over a fixed set of options (memo shared across calls)."""

    def __init__(self, hw: Hardware, options: Options, option_type: Array, demand: Array,
                 settings: ExactSettings = DEFAULT, deadline: float | None = None):
        self.hw = hw
        self.settings = settings  # the solve's tuning: every search of this pricer reads it
        self.deadline = deadline  # DeadlineReached when the pair table is not built by then
        self.o = options
        self.option_type = option_type
        self.demand = demand.astype(int)
        self.memo: dict[tuple[int, ...], Array | None] = {}
        self.evaluations = 0
        self.pair = self._pair_table()
        self.state_space = (settings.state_space and _statespace is not None
                            and _statespace.applicable(options))
        # several batch options per type (policy joint): the set search has far more sets to list
        one_each = np.unique(option_type).size == option_type.size
        self.set_first = settings.set_first if one_each else settings.set_first_joint
        if one_each and len(demand) >= settings.large_rows:  # (issue 24, item 3)
            self.set_first = settings.set_first_large
        # and there the set search cannot finish at a branching node either (35 million sets in 43 s
        # at 64 workloads): the state search takes nodes too (paper: the root only, as before)
        self.state_nodes = self.joint = not one_each
        # what the sets a state search met on the way must be worth to come back as columns too,
        # when its caller asks (None: off); the callers ask under joint and in warm solves
        # (`collects`), and where configurations are large (bnp.py)
        self.collects = self.joint or settings.collect_one_each
        self.s_collect = 1 + settings.collect_above if settings.collect_above >= 0 else None
        # joint (issue 24): the few options of least share alone of each type, which the LP's columns
        # mostly use; heuristic pricing searches them first (a smaller tree it gets deeper into)
        self.lean = None if one_each or settings.lean_options <= 0 else \
            lean_options(self.o.alone, option_type, settings.lean_options)

    def _pair_table(self) -> Array:
        """pair[a, b]: least share of option b beside option a alone (inf when the pair cannot fit).

        A member's share in any larger set is at least its share in each pair it is part of, so
        these are the knapsack weights of the search ("shares as they are when shared").
        """
        n = len(self.option_type)
        table = np.full((n, n), np.inf)
        rows = max(1, 200_000 // max(1, n))  # rows of the upper triangle per block (bounded memory)
        for top in range(0, n, rows):
            if self.deadline is not None and time.perf_counter() > self.deadline:
                raise DeadlineReached(f"the pair table of {n} options was not built in time")
            a, b = _rows_block(n, top, min(n, top + rows))
            keep = self.o.alone[a] + self.o.alone[b] <= FULL
            keep &= (a != b) | (self.demand[self.option_type[a]] >= 2)
            sa, sb = a[keep], b[keep]
            idx = np.stack([sa, sb], axis=1)
            start = np.stack([self.o.alone[sa], self.o.alone[sb]], axis=1)
            r = least_shares(self.hw, self.o, idx, start)
            table[sa, sb] = r[:, 1]
            table[sb, sa] = r[:, 0]
        return table

    @property
    def compiled(self) -> bool:
        """Does exhaustive pricing run on the numba kernel here?"""
        return self.settings.kernel and _kernel is not None and self.hw.unit_pct * _kernel.MAX_MEMBERS > FULL

    def shares_of(self, members: tuple[int, ...]) -> Array | None:
        """Least shares of a set in sorted option order (memoised), None when it does not fit."""
        key = tuple(sorted(members))
        if key not in self.memo:
            res = least_shares(self.hw, self.o, np.array([key]), None)[0]
            self.memo[key] = res if np.isfinite(res).all() else None
        return self.memo[key]

    # -- the search -----------------------------------------------------------------------
    def price(self, duals: Array, threshold: float, *, beam: int | None, deadline: float,
              rules: Rules | None = None, max_columns: int = 60, max_nodes: int | None = None,
              soft_deadline: float | None = None, only: Array | None = None,
              collect: bool = False) -> PricingResult:
        """Sets whose dual sum exceeds the threshold (beam search, or exhaustive when beam is None).
        `only`: a mask of the options the sets may hold (then `complete` says nothing about the others).
        `collect` (a GPU costs 1): a state search also returns the sets above 1 it met."""
        rules = rules or Rules()
        duals = rules.priced(duals)  # a together group's member worth nothing still rides with the others
        value = duals[self.option_type]
        order = np.nonzero((value > 1e-12) if only is None else (value > 1e-12) & only)[0]
        if order.size == 0:
            return PricingResult([], True, 0.0, 0)
        # canonical order of the search: by dual (later candidates are worth less, so bounds are tighter)
        order = order[np.argsort(-value[order], kind="stable")]
        # the set search is fastest on small instances; where it would list millions of
        # near-optimal sets (settings.set_first evaluated, none found), the state search proves the same
        # in far fewer bins
        hand_off = beam is None and max_nodes is None and self.state_space and self.compiled and \
            (rules.root or self.state_nodes)
        if beam is None and self.compiled:
            res = _kernel.search(self, order, value[order], threshold, rules, deadline, max_columns,
                                 self.set_first if hand_off else max_nodes)
            if hand_off and not (res.complete or res.found):
                # joint: sets met on the way above 1 come back too (the LP's tail needs many columns)
                return self._state_price(duals, threshold, deadline, max_columns, soft_deadline, rules, collect)
        else:
            res = LevelSearch(self, order, value[order], threshold, rules, deadline, max_columns, beam,
                              max_nodes).run()
        cols = [Column(tuple(int(o) for o in opts), tuple(float(x) for x in sh)) for opts, sh, _ in res.found]
        return PricingResult(cols, res.complete and only is None, res.best, res.evaluated, res.open_reach)

    def heuristic(self, duals: Array, threshold: float, rules: Rules, deadline: float) -> PricingResult:
        """Columns worth more than `threshold` (a GPU's cost, 1 + EPS) from the truncated compiled
        search (in dual order it meets good columns first, and when it finishes it proves the LP
        solved), or the beam; `nodes` counts every pass."""
        if not self.compiled:
            return self.price(duals, threshold, beam=self.settings.beam, deadline=deadline, rules=rules,
                              max_columns=self.settings.heuristic_columns)
        lean_nodes = 0
        only = self.lean  # joint: each type's options of least share alone first (issue 24)
        first = res = self.price(duals, threshold, beam=None, deadline=deadline, rules=rules,
                                 max_columns=self.settings.heuristic_columns // 2,
                                 max_nodes=self.settings.heuristic_evaluations, only=only)
        if only is not None and not res.columns:  # none there: every option, as under the paper policy
            only = None
            lean_nodes = res.nodes
            first = res = self.price(duals, threshold, beam=None, deadline=deadline, rules=rules,
                                     max_columns=self.settings.heuristic_columns // 2,
                                     max_nodes=self.settings.heuristic_evaluations)
        found, nodes = list(res.columns), res.nodes
        # the depth-first search meets columns around the few types of largest dual: price
        # again without the types already in crowded columns, so the rows the LP can move are
        # many (at 200 workloads, 200 columns of one pass held 22-50 of the 200 types)
        blocked = duals.copy()
        for _ in range(self.settings.diverse_passes):
            if not res.columns or time.perf_counter() > deadline:
                break
            types, uses = np.unique(self.option_type[np.concatenate([c.members for c in found])],
                                    return_counts=True)
            blocked[types[uses >= self.settings.crowded]] = 0.0
            res = self.price(blocked, threshold, beam=None, deadline=deadline, rules=rules,
                             max_columns=self.settings.heuristic_columns // (2 * self.settings.diverse_passes),
                             max_nodes=self.settings.heuristic_evaluations // 2, only=only)
            found += res.columns
            nodes += res.nodes
        return PricingResult(found, first.complete, first.best, nodes + lean_nodes)

    def price_forced(self, duals: Array, threshold: float, deadline: float, first_sets: int) -> PricingResult:
        """One exhaustive search for a set above the threshold: the set search for `first_sets`
        evaluations (it meets such a set quickly when there is one), then, where it applies, the
        interference-state search to prove there is none (a warm start's proof, warm.py)."""
        res = self.price(duals, threshold, beam=None, deadline=deadline, max_columns=1, max_nodes=first_sets)
        if res.columns or res.complete or not (self.state_space and self.compiled):
            return res if res.columns or res.complete else self.price(duals, threshold, beam=None, deadline=deadline,
                                                                      max_columns=1)
        return self._state_price(duals, threshold, deadline, 1)

    def state_price(self, duals: Array, threshold: float, deadline: float, max_columns: int,
                    collect: bool = False, leaves: tuple[float, float] | None = None) -> PricingResult | None:
        """Exhaustive pricing by the interference-state search alone (no set search first; root
        only), or None where it does not apply (several options per type, or no numba);
        `collect` as for `price`; `leaves`: the leaves' width (settings.leaf_c, leaf_p when None)."""
        if not (self.state_space and self.compiled):
            return None
        return self._state_price(duals, threshold, deadline, max_columns, collect=collect, leaves=leaves)

    def _state_price(self, duals: Array, threshold: float, deadline: float, max_columns: int,
                     soft_deadline: float | None = None, rules: Rules | None = None,
                     collect: bool = False, leaves: tuple[float, float] | None = None) -> PricingResult:
        """Exhaustive pricing by the interference-state search (`statespace.py`); it returns at
        soft_deadline when it found columns by then, and with `collect` the sets above s_collect
        it met too."""
        res = _statespace.StateSpaceSearch(self, duals, threshold, deadline, max_columns, soft_deadline, rules,
                                           self.s_collect if collect else None, leaves).run()
        cols = [Column(key, tuple(float(x) for x in shares)) for key, shares, _ in res.found]
        return PricingResult(cols, res.complete, res.best, res.bins, res.open_reach)
