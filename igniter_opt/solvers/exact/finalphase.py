"""The final phase of a search: what is left of the limit once its tree search is over.

In order: the bound by in-out separation (closing.py), the split workloads' whole-piece rows
opened (cuts.py), dives from the root's last LP (primal.py), each after proving the incumbent
where its LP reached the incumbent's ceiling, from lns_rows rows the incumbent's neighbourhoods,
then the bound climb on the last duals. `BranchAndPrice` (bnp.py) runs it and supplies column
generation.
"""

from __future__ import annotations

import math
import time

import numpy as np

from igniter_opt.solvers.exact.branching import Rules
from igniter_opt.solvers.exact.cuts import piece_cuts
from igniter_opt.solvers.exact.master import LpResult
from igniter_opt.solvers.exact.primal import Primal


class FinalPhase(Primal):
    """The final phase of a search (state set by bnp.BranchAndPrice)."""

    final_deadline: float

    def column_generation(self, rules: Rules) -> tuple[float, LpResult | None, bool]:
        """A node's proven LP bound, its last LP, and whether the bound is proven (bnp.py)."""
        raise NotImplementedError

    def _converge(self, lp: LpResult, until: float) -> LpResult:
        """The LP priced on towards its optimum until `until` (bnp.py)."""
        raise NotImplementedError

    @property
    def _lns(self) -> bool:
        """From lns_rows rows of a datacenter-size master: a longer final phase that ends in the
        incumbent's neighbourhoods (a residual search's master is never large: it has every row,
        most asking nothing)."""
        return self.master.large and len(self.master.demand) >= self.s.lns_rows

    def _final_phase(self, root_lp: LpResult) -> None:
        """What is left of the limit once the tree search is over: the bound by in-out separation
        (`_ascend`), dives from the root's last LP, from lns_rows rows the incumbent's
        neighbourhoods, then the bound climb on its duals."""
        self.master.forbid(np.ones(len(self.master.columns), dtype=bool))
        if math.isinf(self.cutoff):  # the bound first (inout.py); a residual search needs only its plan
            self._ascend(root_lp, time.perf_counter() + self.s.inout_share * self._limit)
            now = time.perf_counter()
            root_lp = self._whole_pieces(root_lp, now + self.s.final_cuts_share * max(0.0, self.final_deadline - now))
        rng = np.random.default_rng(0) if self.s.dive_noise > 0 else None
        # from lns_rows rows the last lns_share of the time goes to the neighbourhoods
        now = time.perf_counter()
        lns = self.s.lns_share if self._lns else 0.0
        self.deadline = self.final_deadline - lns * max(0.0, self.final_deadline - now)  # the dives'
        # last dives, from the LP as it ended (each one's columns change the next one's path)
        dives = self.s.lns_dives if lns > 0 else \
            self.s.final_dives_large if self.master.large else self.s.final_dives_small
        k = 0
        while self._dive_again(k, dives, lns):
            root_lp = self._prove_incumbent(root_lp)
            if math.ceil(root_lp.value - 1e-6) >= self.upper or time.perf_counter() > self.deadline - 1:
                break
            now = time.perf_counter()
            self._dive(now + self.s.final_dive_share * (self.deadline - now), rng if k else None)
            k += 1
        self.deadline = self.final_deadline
        if lns > 0 and math.ceil(root_lp.value - 1e-6) < self.upper:
            now = time.perf_counter()
            self._neighbourhoods(root_lp.duals, now + self.s.lns_until * (self.final_deadline - now))
        now = time.perf_counter()
        self._final_bound(root_lp, now + self.s.bound_share * (self.final_deadline - now))

    def _whole_pieces(self, lp: LpResult, until: float) -> LpResult:
        """From cut_rows to lns_rows rows, where the root leaves them out (its LP would converge
        past the limit), the split workloads' rounded rows (cuts.py) open as the final phase starts
        and the LP is priced on with them until `until`. Dives over fractions of pieces left
        remnants of several split workloads that no GPU holds together; the dives, integer masters
        and bound climb after this work on whole pieces. The LP given when off or none is violated.
        Valid rows only: each bound drawn from its duals (Farley, over covers) holds."""
        m = self.master
        # (from lns_rows rows the final phase is neighbourhoods, not measured with the cuts)
        if not self.s.final_cuts or not self.s.piece_cuts or len(m.demand) < self.s.cut_rows or self._lns:
            return lp
        current = m.solve_lp()  # over the pool as it is now (a tree below the root added columns)
        m.offer_cuts(piece_cuts(m.type_row, m.type_weight, self.s.piece_cuts))
        opened = current is not None and m.open_cuts(current.z)
        solved = m.solve_lp() if opened else None
        self.stats.lp_iterations += 1 + opened
        if solved is None:  # none violated (or, not expected, an LP failed): without the cuts, as before
            m.close_cuts()
            return lp
        return self._converge(solved, until)

    def _prove_incumbent(self, lp: LpResult) -> LpResult:
        """The whole search's final phase, when its LP (on whole pieces after `_whole_pieces`,
        priced heuristically) reaches the incumbent's ceiling (a dive found a plan at ceil(LP)): no
        dive can round that LP below the incumbent, and the dives' loop used to end there with the
        rest of the limit unused (80 of 120 s on a fresh 200). The root's column generation goes on
        instead, exact pricing included, until final_reserve of the limit is left: it proves the
        incumbent (Farley over the LP with its cuts, a relaxation of every plan), or the LP falls
        below the incumbent and the dives get what is left. The LP it reached."""
        if not math.isinf(self.cutoff) or self.lower >= self.upper or math.ceil(lp.value - 1e-6) < self.upper:
            return lp
        dives_until, self.deadline = self.deadline, self.final_deadline - self.s.final_reserve * self._limit
        bound, solved, proven = self.column_generation(Rules())
        self.deadline = dives_until
        if proven and math.isfinite(bound):  # (inf: no LP over the pool, which holds the incumbent's columns)
            self.lower = max(self.lower, math.ceil(bound - 1e-6))
        return lp if solved is None else solved

