"""Branch-and-price: column generation at every node, a bound argument, Ryan-Foster branching.

At a node, the restricted master LP is re-solved warm after each batch of priced columns. Beam
pricing runs first; when it finds nothing, an exhaustive search looks for a column whose duals
sum past theta >= 1. Finding none proves every configuration's dual sum is at most theta, so by
the Lagrangian (Farley) bound the node's LP optimum is at least LP_restricted / theta. theta is
chosen as large as still useful: LP_restricted / (UB - 1 + delta), the value that would prove the
incumbent optimal, so the proof can come long before the LP itself converges. When the LP is
solved (theta = 1) and its ceiling is still below the incumbent, the integer master over the
generated columns may close the gap; otherwise the node branches on a pair of workloads (Ryan-
Foster: together / apart) and pricing respects the rule. The search is depth-first and returns,
at any time, the incumbent and the proven bound. The plan's side (dives, residual searches, the
incumbent's neighbourhoods) is its base class in primal.py; the steps that end a search rather
than move it (integer masters over the pool, closing a node that cannot branch, the final bound
climb) are that one's base, in closing.py.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from igniter_opt.model.predict import Array
from igniter_opt.solvers.exact.branching import Rules, most_fractional_pair
from igniter_opt.solvers.exact.closing import DELTA, EPS, Listing, Stats
from igniter_opt.solvers.exact.finalphase import FinalPhase
from igniter_opt.solvers.exact.master import Column, LpResult, Master
from igniter_opt.solvers.exact.pricing import Pricer, PricingResult
from igniter_opt.solvers.exact.repair import group_columns


@dataclass
class Outcome:
    """The best integer cover found (columns with their counts), the proven bound, the status."""

    chosen: list[Column]
    upper: int
    lower: int
    complete: bool  # the search ended (optimal), not cut by the deadline
    stats: Stats = field(default_factory=Stats)


@dataclass
class _Node:
    rules: Rules
    depth: int = 0


class BranchAndPrice(FinalPhase):
    """One search over a fixed option set; `run` may be called once."""

    def __init__(self, pricer: Pricer, master: Master, incumbent: list[Column], lower: int,
                 deadline: float, unbranchable: Array | None = None, residual: bool = True,
                 cutoff: float = math.inf, listing: Listing | None = None):
        self.pricer = pricer
        self.s = pricer.settings  # the solve's tuning (settings.py), carried by its pricer
        # types never branched on: a split workload's rate levels (a level may be in several
        # columns of a plan, so together/apart would not split the plans in two)
        self.unbranchable = set() if unbranchable is None else set(np.asarray(unbranchable).tolist())
        self.master = master
        self.incumbent = list(incumbent)
        self.upper = len(incumbent)
        self.lower = lower
        # a plan of this many GPUs or more is worth nothing to the caller (a dive's residual: with
        # the dive's fixings it would not beat the whole search's incumbent): the search ends
        # once its root's bound reaches it
        self.cutoff = cutoff
        self.listing = listing or Listing(self.s.enum_columns, self.s.enum_evaluations)  # (closing.py)
        self.final_deadline = deadline
        # the last final_share of the time (lns_final_share from lns_rows rows: _lns) goes to the
        # final phase and one integer master over all columns when the bound is not proven by then
        # (the LP's columns usually hold a better plan than the seed)
        now = time.perf_counter()
        self.share_from_now(now)
        self.stats = Stats()
        self._dived_at = math.inf
        self._limit = max(0.0, deadline - now)
        self._dive_period = self.s.dive_after * self._limit
        # datacenter sizes (issue 24, item 3): no dive at the root before the final phase
        self.root_dives = not master.large
        self._dive_due = now + self._dive_period
        self.certificate = None  # the root's best Farley certificate (closing.Closing says what it is)
        # large configurations: a Farley check by the state search between heuristic rounds
        members = sum(len(c.members) for c in incumbent) / max(1, len(incumbent))
        self._large_members = members >= self.s.large_members
        self._check_due = now + self.s.check_period * self._limit if self._large_members else math.inf
        # exhaustive calls return the sets above 1 they met, not only those above their threshold
        self._collect = pricer.collects or (self._large_members and self.s.collect_large)
        # several batch options per type (joint, issue 24): its own exhaustive-call budget
        self._exhaustive_share = self.s.exhaustive_share_joint if pricer.joint else self.s.exhaustive_share
        self._check_budget = self.s.check_budget  # doubles after each check that found nothing (issue 24)
        self.branching = True  # pair branching allowed (`run` says; a residual search branches alike)
        # a dive hands over its residual at this many rows left (0: never; a residual search's own
        # dives do not, residual.py)
        self._residual_rows = 0 if not residual else \
            self.s.residual_rows if master.large else self.s.residual_rows_small

    def share_from_now(self, now: float | None = None) -> None:
        """The root's share of the time to the final deadline, counted from now (a seed that took
        part of the limit, groups.py, leaves the root its share of the rest)."""
        now = time.perf_counter() if now is None else now
        final = self.s.lns_final_share if self._lns else self.s.final_share
        self.deadline = now + (1 - final) * max(0.0, self.final_deadline - now)

    # -- column generation ----------------------------------------------------------------
    def column_generation(self, rules: Rules) -> tuple[float, LpResult | None, bool]:
        """Proven LP bound of the node, its last LP, and whether the bound is proven."""
        if not rules.root:
            self.master.forbid(self._allowed(rules))
        while True:
            lp = self.master.solve_lp()
            self.stats.lp_iterations += 1
            if lp is None and not rules.root:  # the pool may lack what the node needs, not the node
                repair = group_columns(rules, self.pricer)  # (repair.py)
                if repair.feasible is False:  # proven: no column can cover a row under the node's rules
                    return math.inf, None, True
                self._add(repair.columns)
                lp = self.master.solve_lp() if repair.feasible else None
                self.stats.lp_iterations += 1
                if lp is None:  # cannot tell (or a singleton is missing from the pool): unproven
                    return -math.inf, None, False
            if lp is None:
                return math.inf, None, True
            if time.perf_counter() > self.deadline and not self._extend(lp, rules):
                return -math.inf, lp, False
            res = self._heuristic(lp.duals, rules)
            if rules.root and self.master.large:  # datacenter sizes (issue 24, item 3): the pool's size
                self.master.trim(lp, self.s.pool_max, self.s.pool_keep)
                self.stats.columns = len(self.master.columns)
            if self._add(res.columns):
                if rules.root:
                    theta = self._check(lp)
                    if theta is not None:
                        return lp.value / theta, lp, True
                    self._maybe_dive(lp, stalled=False)
                continue
            if res.complete:  # nothing prices out at all: the LP is solved
                if rules.root:
                    self._certify(lp.duals, 1 + EPS)
                    self.lower = max(self.lower, math.ceil(lp.value - 1e-6))
                    if self._cut(lp):
                        continue
                return lp.value, lp, True
            if rules.root and self._maybe_dive(lp, stalled=True):
                continue
            # the largest bound this LP can give is ceil(LP) (optimality when that is the
            # incumbent): finding no set worth more than LP / (ceil(LP) - 1 + DELTA) proves it,
            # long before the LP converges, and a search at a higher threshold is far smaller
            target = min(self.upper, math.ceil(lp.value - 1e-6))
            if not rules.root and target < self.upper and self.s.node_skip:
                # below the root only a bound of UB prunes, and this node's LP optimum is at most
                # its restricted LP, already <= UB - 1: no exhaustive call can prune it, so branch
                # (the bound it returns, the proven lower bound, holds for every node)
                return float(self.lower), lp, True
            theta = max(1 + EPS, lp.value / (target - 1 + DELTA)) if target > 1 else 1 + EPS
            # one exhaustive call ends after exhaustive_share of the limit when it found columns
            # (the LP moves on with them); without any it runs to the deadline (the bound). Below
            # the root, where it is only for a bound of UB, after node_exhaustive_share
            share = self._exhaustive_share if rules.root else self.s.node_exhaustive_share
            res = self._exhaustive(lp.duals, theta, self.deadline, rules=rules, max_columns=self.s.exhaustive_columns,
                                   soft_deadline=time.perf_counter() + share * self._limit, collect=self._collect)
            if rules.root:
                self._root_bound(lp, res, theta)
            if self._add(res.columns):
                continue
            if not res.complete:
                if time.perf_counter() > self.deadline and self._extend(lp, rules):
                    continue
                return -math.inf, lp, False
            if rules.root and self._cut(lp):
                continue
            return lp.value / theta, lp, True

    def _cut(self, lp: LpResult) -> bool:
        """Once the root's bound is proven below the incumbent, the offered cuts (a split workload's
        whole pieces, cuts.py) its LP violates become rows: True when the LP is to be solved on.
        Not before: with them the LP converges later (at 200 workloads, past the limit). Where
        the LP over the pool with them cannot pass the bound (more columns only lower it), they
        would only slow the search: dropped."""
        if self.lower >= self.upper or not self.master.open_cuts(lp.z):
            return False
        cut = self.master.solve_lp()
        if cut is not None and math.ceil(cut.value - 1e-6) > self.lower:
            return True
        self.master.close_cuts()
        return False

    def _root_bound(self, lp: LpResult, res: PricingResult, theta: float) -> None:
        """The root's Lagrangian (Farley) bound after an exhaustive search at `theta`: every set's
        value is at most max(best seen, theta, what is left unexplored)."""
        v_max = max(res.best, theta, res.open_reach)
        if math.isfinite(v_max):
            self._certify(lp.duals, v_max)
            self.lower = max(self.lower, math.ceil(lp.value / v_max - 1e-6))

    def _converge(self, lp: LpResult, until: float) -> LpResult:
        """The root's LP solved on after a threshold proved its bound below the incumbent. That
        proof needs no optimum (a threshold above 1 ends the search early), but the plan's search
        after it (integer masters, dives) rounds this LP, and rounded far from its optimum it
        finds no plan at the bound. Priced as a dive step prices (heuristic, and the state search
        where configurations are large) until nothing prices out or `until`; the LP it reached.
        `run` calls it where configurations are large (large_members), below datacenter sizes,
        on converge_share of the time left; the final phase after opening the piece cuts
        (`_whole_pieces`)."""
        while time.perf_counter() < until:
            if not self._add(self._dive_price(lp.duals, until)):
                break
            solved = self.master.solve_lp()
            self.stats.lp_iterations += 1
            if solved is None:
                break
            lp = solved
        return lp

    def _check(self, lp: LpResult) -> float | None:
        """At the root, while heuristic pricing still finds columns (large configurations only):
        the state search at the threshold that proves min(UB, ceil(LP)). Its columns join the
        master (they are worth far more than the heuristic's: 1.1-1.2 against 1.01-1.03 on
        heavy-tailed rates), its best and open reach give a Farley bound; the threshold when it
        proves that none passes it (the root's bound is then proven, as after an exhaustive call),
        else None. A check that found columns has check_budget of the limit and the next comes
        check_period after its start (about every round); one that found none doubles the next
        one's budget (up to check_max_budget, what a proof near the LP's optimum takes) and
        leaves the heuristic rounds as long again before it."""
        now = time.perf_counter()
        if now < self._check_due:
            return None
        target = min(self.upper, math.ceil(lp.value - 1e-6))
        if target <= max(1, self.lower):
            self._check_due = now + self.s.check_period * self._limit
            return None
        theta = max(1 + EPS, lp.value / (target - 1 + DELTA))
        res = self.pricer.state_price(lp.duals, theta, min(self.deadline, now + self._check_budget * self._limit),
                                      self.s.exhaustive_columns, self._collect)
        if res is None:
            self._check_due = math.inf
            return None
        end = time.perf_counter()
        if res.columns:
            self._check_budget = self.s.check_budget
            self._check_due = now + self.s.check_period * self._limit
        else:
            self._check_budget = min(2 * self._check_budget, self.s.check_max_budget)
            self._check_due = end + (end - now)
        self.stats.exhaustive_calls += 1
        self.stats.pricing_nodes += res.nodes
        self._root_bound(lp, res, theta)
        self._add(res.columns)
        return theta if res.complete and not res.columns else None

    def _extend(self, lp: LpResult, rules: Rules) -> bool:
        """The final phase is for dives and integer masters, which cannot beat the incumbent when
        ceil(root LP) reaches it: then the root's column generation (and its bound) goes on
        until final_reserve of the limit is left, once."""
        if not rules.root or math.ceil(lp.value - 1e-6) < self.upper:
            return False
        end = self.final_deadline - self.s.final_reserve * self._limit
        if end <= self.deadline:
            return False
        self.deadline = end
        return True

    def _residual_search(self, master: Master, cover: list[Column], until: float, cutoff: int
                         ) -> tuple[list[Column], bool]:
        search = BranchAndPrice(self.pricer, master, cover, 1, until, self._pieces(), residual=False, cutoff=cutoff,
                                listing=self.listing)
        out = search.run(self.branching)
        return out.chosen, search.lower >= cutoff

    def _node_integer(self, rules: Rules) -> None:
        """The integer master over the node's columns, on half the time left (an upper bound)."""
        if self.upper > self.lower:
            self._pool_integer(rules, 0.5 * (self.deadline - time.perf_counter()))

    # -- branching ------------------------------------------------------------------------
    def _pair(self, lp: LpResult) -> tuple[int, int] | None:
        """The pair of types most fractionally together in the LP (Ryan-Foster), or None."""
        return most_fractional_pair((c.members for c in self.master.columns), lp.z, self.pricer.option_type,
                                    self.unbranchable, EPS)

    def run(self, branching: bool) -> Outcome:
        """Depth-first branch-and-price from the root; the outcome holds incumbent and bound."""
        self.branching = branching
        if self.lower >= self.upper:  # the a-priori bounds already prove the seed plan
            return self.outcome(True)
        stack = [_Node(Rules())]
        root_bound: float | None = None
        root_lp: LpResult | None = None
        complete = True
        while stack:
            node = stack.pop()
            self.stats.nodes += 1
            bound, lp, proven = self.column_generation(node.rules)
            if node.depth == 0:
                root_bound = bound if proven else None
                if proven:
                    self.lower = max(self.lower, math.ceil(bound - 1e-6))
                    if lp is not None and self._large_members and not self.master.large and \
                            self.lower < self.upper and lp.value > bound * (1 + 1e-9):
                        now = time.perf_counter()
                        lp = self._converge(lp, now + self.s.converge_share * max(0.0, self.deadline - now))
                root_lp = lp
                self.stats.root_lp = lp.value if lp is not None else math.inf
                if self.lower >= self.cutoff:
                    return self.outcome(False)
            if not proven:
                complete = False
                break
            if bound >= self.upper or math.ceil(bound - 1e-6) >= self.upper:  # (inf: an infeasible node)
                continue
            if self.master.large and not self.s.tree_large:  # datacenter sizes: the final phase now
                complete = False
                break
            # large configurations without branching: the final phase's integer master follows its dives
            if branching or not self._large_members:
                self._node_integer(node.rules)
            if math.ceil(bound - 1e-6) >= self.upper:
                continue
            pair = self._pair(lp) if lp is not None and branching else None
            # with split workloads' rate levels the LP's bound is often just below the incumbent
            # (pieces round well fractionally): the root tries the listing before any branching
            if (pair is None or node.depth == 0) and self.unbranchable and lp is not None and \
                    self._close(node.rules, lp, bound):
                continue
            if pair is None:  # no branching here (aggregated rows) or an LP already integral
                complete = False
                continue
            stack.append(_Node(Rules(node.rules.together, [*node.rules.apart, pair]), node.depth + 1))
            stack.append(_Node(Rules([*node.rules.together, pair], node.rules.apart), node.depth + 1))
        if root_bound is not None and complete and not stack:
            self.lower = self.upper
        if root_lp is not None and self.lower < self.upper:
            self._final_phase(root_lp)
        if self.lower < self.upper and time.perf_counter() < self.final_deadline - 0.2:
            self._final_integer()
        return self.outcome(complete)

    def outcome(self, complete: bool) -> Outcome:
        """The incumbent and the bound proven so far (also after an interruption)."""
        return Outcome(self.incumbent, self.upper, min(self.lower, self.upper),
                       complete and self.lower >= self.upper, self.stats)
