"""The plan's side of branch-and-price: dives from the root's LP, the residual searches that
complete a dive's fixings into a plan, and the incumbent's neighbourhoods repaired the same way.

`BranchAndPrice` (bnp.py) is the tree search that runs them, and gives the residual search
itself (`_residual_search`: a small branch-and-price of its own). What the dive does step by
step is dive.py; what a residual is, residual.py; which GPUs a neighbourhood takes out,
neighbourhood.py.
"""

from __future__ import annotations

import math
import time

import numpy as np

from igniter_opt.model.predict import Array
from igniter_opt.solvers.exact.branching import Rules
from igniter_opt.solvers.exact.closing import EPS, Closing
from igniter_opt.solvers.exact.dive import dive
from igniter_opt.solvers.exact.master import Column, LpResult, Master, columns_of
from igniter_opt.solvers.exact.neighbourhood import counts_of, pick
from igniter_opt.solvers.exact.residual import cover_of, left, release, residual_master


class Primal(Closing):
    """Dives, residual searches and neighbourhoods of a search (state set by bnp.BranchAndPrice)."""

    unbranchable: set[int]
    branching: bool
    root_dives: bool
    _dived_at: float
    _dive_due: float
    _dive_period: float
    _limit: float
    cutoff: float  # a residual search's: it must beat this many GPUs (inf: the whole search)
    _large_members: bool
    _residual_rows: int

    def _residual_search(self, master: Master, cover: list[Column], until: float, cutoff: int
                         ) -> tuple[list[Column], bool]:
        """A residual branch-and-price over `master` from `cover` until `until` (bnp.py): its plan,
        and whether its root proved it needs `cutoff` GPUs or more."""
        raise NotImplementedError

    def _maybe_dive(self, lp: LpResult, stalled: bool) -> bool:
        """At the root, dive for a plan of fewer GPUs than the incumbent when ceil(LP) allows one,
        the LP fell by dive_gain since the last dive, and either heuristic pricing stalls or
        dive_after of the time passed since the start or the last dive (large instances, whose LP
        converges slowly). A better incumbent also lowers the bound the proof must reach. True
        when the pool grew."""
        if not self.root_dives or math.ceil(lp.value - 1e-6) >= self.upper or \
                lp.value > self._dived_at - self.s.dive_gain:
            return False
        if not stalled and time.perf_counter() < self._dive_due:
            return False
        self._dived_at = lp.value
        self._dive_due = time.perf_counter() + self._dive_period
        return self._dive(time.perf_counter() + self.s.dive_share * (self.deadline - time.perf_counter()))

    def _dive(self, end: float, rng: np.random.Generator | None = None) -> bool:
        """One dive until `end`, then (if it found nothing better) the integer master over the
        pool; the incumbent is updated. True when the pool grew."""
        before = len(self.master.columns)
        end = min(self.deadline, end)
        finish_by = min(self.deadline,
                        end + min(self.s.dive_mip_seconds, self.s.dive_share * (self.deadline - time.perf_counter())))
        out = dive(self.master, lambda duals: self._dive_price(duals, end), self.upper, end,
                   finish_by, self.s, self._residual_rows, self._pieces(), rng)
        self.stats.columns = len(self.master.columns)
        self.stats.lp_iterations += out.lp_solves
        self.stats.dives += 1
        if out.cover is not None and len(out.cover) < self.upper:
            self.upper, self.incumbent = len(out.cover), out.cover
        elif out.fixed is not None and out.z is not None:  # what its fixings leave (residual.py)
            self._residual(out.fixed, out.z, finish_by)
        else:  # the dive's columns often complete a plan its rounding missed
            left = self.deadline - time.perf_counter()
            self._pool_integer(Rules(), min(self.s.dive_share * left, self.s.dive_mip_seconds))
        return len(self.master.columns) > before

    def _dive_again(self, k: int, dives: int, lns: float) -> bool:
        """Whether the final phase makes its (k+1)-th dive: the first `dives` always; after them,
        in the whole search only (a residual search returns, its caller dives on), more with noise
        while more than final_more_reserve of the limit is left, up to final_dives_max in all. The
        counts were chosen at 120 s: with a longer limit the phase ran out of dives, not of time
        (200 workloads at 900 s returned after 337 s with its gap open)."""
        if k < dives:
            return True
        left = self.deadline - time.perf_counter()
        return lns == 0 and math.isinf(self.cutoff) and k < self.s.final_dives_max and \
            left > self.s.final_more_reserve * self._limit

    def _dive_price(self, duals: Array, end: float) -> list[Column]:
        """A dive step's columns: heuristic pricing, and where configurations are large (the
        root's check runs there) the state search at the same duals for dive_state of the limit:
        the heuristic's columns are worth 1.01-1.03 there, the state search's 1.08-1.17, so the
        dive's LP after each rounding is near its optimum and rounds the way the root's would."""
        cols = self._heuristic(duals, Rules(), end).columns
        if self._large_members and self.s.dive_state > 0:
            res = self.pricer.state_price(duals, 1 + EPS,
                                          min(end, time.perf_counter() + self.s.dive_state * self._limit),
                                          self.s.exhaustive_columns, leaves=(self.s.dive_leaf_c, self.s.dive_leaf_p))
            if res is not None:
                cols = cols + res.columns
        return cols

    def _residual(self, fixed: Array, z: Array, until: float) -> None:
        """A small branch-and-price over what a dive's fixings leave (residual.py) until `until`;
        the fixings plus its plan become the incumbent when they use fewer GPUs."""
        fixed = release(self.master, fixed, self._pieces())
        self._complete(fixed, cover_of(self.master, fixed, z), until)

    def _complete(self, fixed: Array, cover: list[Column], until: float) -> None:
        """The residual search over what `fixed` (column counts, split workloads whole) leaves,
        from `cover` (columns covering it), until `until`; the incumbent when it beats it."""
        rest = left(self.master, fixed)
        taken = columns_of(self.master, fixed)
        self.stats.residuals += 1
        if not rest.any():
            chosen = taken
        else:
            plan, cut = self._residual_search(residual_master(self.master, rest, self.s), cover, until,
                                              self.upper - len(taken))
            self.stats.cut_off += cut
            chosen = taken + plan
        if len(chosen) < self.upper:
            self.upper, self.incumbent = len(chosen), chosen

    def _neighbourhoods(self, duals: Array, until: float) -> None:
        """Destroy-and-repair of the incumbent until `until` (neighbourhood.py): its lns_gpus GPUs
        of largest reduced cost at `duals` first, then drawn ones, each covered again by a residual
        search of at most lns_seconds that must use a GPU fewer. The size adapts: lns_grow times
        larger after a neighbourhood proven not to shrink, as much smaller after one out of time."""
        rng = np.random.default_rng(0)
        gpus, tried = self.s.lns_gpus, set()
        while self.upper > self.lower and time.perf_counter() < until - self.s.min_mip_seconds:
            counts = counts_of(self.master, self.incumbent)
            kept = release(self.master, pick(self.master, counts, duals, gpus, rng if gpus in tried else None),
                           self._pieces())
            tried.add(gpus)
            self.stats.neighbourhoods += 1
            cut, upper = self.stats.cut_off, self.upper
            self._complete(kept, columns_of(self.master, counts - kept),
                           min(until, time.perf_counter() + self.s.lns_seconds))
            if self.stats.cut_off > cut:  # proven: no GPU to save there, a larger one next
                gpus = math.ceil(gpus * self.s.lns_grow)
            elif self.upper == upper:  # out of time: a smaller one
                gpus = max(2, math.floor(gpus / self.s.lns_grow))

    def _pieces(self) -> Array:
        """The split workloads' rate-level types (never branched on)."""
        return np.array(sorted(self.unbranchable), dtype=int)

    def dive_once(self, end: float) -> None:
        """One dive from the root LP until `end` (a warm start's first step: a plan below the
        repaired incumbent)."""
        lp = self.master.solve_lp()
        self.stats.lp_iterations += 1
        if lp is not None and math.ceil(lp.value - 1e-6) < self.upper:
            self._dived_at = lp.value
            self._dive(end)
