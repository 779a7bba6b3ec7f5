"""What a branch-and-price search shares with its final phase: the pool's bookkeeping, the root's
Farley certificate, integer masters over the pool, and the two closings of the final phase.

`BranchAndPrice` (bnp.py) is the tree search: column generation at a node, dives, branching.
This base holds its state and the steps that end a search rather than move it: the integer master
over the columns that can be in a smaller plan (reduced-cost fixing), the exact closing of a node
that cannot branch (a split workload's rate levels: every column of small enough reduced cost
listed, then one integer master), the final bound climb on the root's last duals, and the final
integer master over every column. One job: turning a pool and its duals into a plan or a proof.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from igniter_opt.model.predict import Array
from igniter_opt.solvers.exact.branching import Rules
from igniter_opt.solvers.exact.cuts import cover_value
from igniter_opt.solvers.exact.inout import Centre, ascend, pair_least, share_centre
from igniter_opt.solvers.exact.master import Column, LpResult, Master, columns_of
from igniter_opt.solvers.exact.pricing import Pricer, PricingResult
from igniter_opt.solvers.exact.settings import ExactSettings

EPS = 1e-6  # numerical tolerance of an LP value (a constant, not tuning)
DELTA = 1e-4  # proves LP > UB - 1 + DELTA, well above the LP's numerical noise (a tolerance)
# a tolerance, not tuning: added to every type's dual for the closing listing, so members of zero dual are
# listed too
TINY = 1e-9


@dataclass
class Stats:
    """What the search did (reported in the plan's message and by the benchmark)."""

    lp_iterations: int = 0
    columns: int = 0
    nodes: int = 0
    root_lp: float = math.nan
    pricing_nodes: int = 0
    exhaustive_calls: int = 0
    integer_solves: int = 0
    dives: int = 0
    residuals: int = 0  # residual searches after a dive (residual.py)
    cut_off: int = 0  # of them, ended by their root's bound: the fixings could not beat the incumbent
    neighbourhoods: int = 0  # of them, on neighbourhoods of the incumbent (neighbourhood.py)


@dataclass
class Listing:
    """The caps of the closing listing, shared by a search and its residual searches (a dive's
    residual at few rows is the whole master again): listings that met their caps, by incumbent,
    rows and caps, are not repeated, and on few rows each such one widens the next."""

    columns: int
    evaluations: int
    tried: set[tuple[Any, ...]] = field(default_factory=set)


class Closing:
    """A search's pool, incumbent and bounds, and the steps that turn them into a plan or a proof."""

    listing: Listing

    pricer: Pricer
    s: ExactSettings
    master: Master
    stats: Stats
    incumbent: list[Column]
    upper: int
    lower: int
    deadline: float  # the tree search's (the final phase starts there)
    final_deadline: float  # the whole search's
    _limit: float  # the whole search's seconds (its time limit as it started)
    # the root's best Farley certificate: type duals pi >= 0 and v with every configuration's
    # dual sum at most v, so LP* >= pi d / v (warm.py carries it into the next re-plan)
    certificate: tuple[Array, float] | None

    def _allowed(self, rules: Rules) -> Array:
        types = self.pricer.option_type
        return np.array([rules.admits(types[list(c.members)]) for c in self.master.columns])

    def _add(self, cols: list[Column]) -> int:
        added = sum(self.master.add(c) for c in cols)
        self.stats.columns = len(self.master.columns)
        return added

    def _certify(self, duals: Array, v_max: float) -> None:
        """Keep (duals, v_max) when its Farley bound pi d / v_max beats the certificate held."""
        if self.certificate is None or self._farley(duals, v_max) > self._farley(*self.certificate):
            self.certificate = (duals.copy(), v_max)

    def _farley(self, duals: Array, v_max: float) -> float:
        """pi d / v over the master's rows (what every plan's members are worth at pi: cuts.py)."""
        m = self.master
        return cover_value(duals, m.type_row, m.type_weight, m.demand) / v_max

    def _heuristic(self, duals: Array, rules: Rules, deadline: float | None = None) -> PricingResult:
        """Columns of negative reduced cost by heuristic pricing (`Pricer.heuristic`)."""
        res = self.pricer.heuristic(duals, 1 + EPS, rules, self.deadline if deadline is None else deadline)
        self.stats.pricing_nodes += res.nodes
        return res

    def _pool_integer(self, rules: Rules, budget: float) -> None:
        """The integer master over the columns that can be in a plan of fewer GPUs than the
        incumbent. With LP duals pi, a cover z costs sum_c z_c = LP + sum_c rc_c z_c + pi (A z - d)
        >= LP + sum_c rc_c z_c, and every rc_c >= 0: a column of reduced cost above UB - 1 - LP
        is in no cover of UB - 1 GPUs (reduced-cost fixing), which leaves a small MIP."""
        if budget < self.s.min_mip_seconds:
            return
        lp = self.master.solve_lp()
        if lp is None:
            return
        self.stats.integer_solves += 1
        useful = self.master.reduced_costs(lp.duals) <= self.upper - 1 - lp.value + 1e-7
        self._take(self.master.solve_integer(budget, self._allowed(rules) & useful, below=self.upper))

    def _close(self, rules: Rules, lp: LpResult, bound: float) -> bool:
        """Close a node that cannot branch (a split workload's rate levels are in no single row)
        exactly: with duals pi' = pi / theta (every column's value is at most theta, so pi' is
        dual feasible and the bound is pi' d), a cover z of at most UB - 1 GPUs has
        sum_c rc'_c z_c <= UB - 1 - bound with every rc'_c >= 0, so it uses only columns of
        reduced cost at most that slack. All of them are listed (members of zero dual too) and
        the integer master over them decides: a cover below UB is the new incumbent, none proves
        UB. True when the node is closed."""
        if bound <= 0:
            return False
        if lp.value > bound * (1 + 1e-9):  # a Farley proof left the LP unsolved: a wide slack
            solved = self._solve_lp(rules, lp)
            if solved is None:
                return False
            lp = solved
            bound = lp.value
            if rules.root:
                self.lower = max(self.lower, math.ceil(bound - 1e-6))
            if math.ceil(bound - 1e-6) >= self.upper:
                return True
        duals = lp.duals / max(1.0, lp.value / bound)
        slack = self.upper - 1 - bound
        few = len(self.master.demand) <= self.s.close_rows_small
        if self.pricer.joint and slack > self.s.close_slack_joint and not few:
            return False  # the listing would meet its column cap within seconds (docs/exact.md)
        caps = self.listing
        tried = (self.upper, round(bound, 6), self.master.demand.tobytes(), repr(rules), caps.columns, caps.evaluations)
        if tried in caps.tried:
            return False
        # "nothing prices out" allows values up to 1 + EPS: reduced costs down to -EPS, so a cover
        # of UB - 1 columns may hold one of reduced cost up to slack + UB * EPS
        slack += self.upper * EPS + 1e-7
        evaluations = max(caps.evaluations, self.s.enum_evaluations_joint) if self.pricer.joint else caps.evaluations
        res = self._exhaustive(duals + TINY, 1 - slack, self.deadline, rules=rules,
                               max_columns=caps.columns, max_nodes=evaluations)
        if not res.complete or len(res.columns) >= caps.columns:
            caps.tried.add(tried)
            if few and time.perf_counter() < self.deadline:  # met its caps, not the clock: wider next time
                caps.columns = min(self.s.enum_columns_max, caps.columns * self.s.enum_growth)
                caps.evaluations = min(self.s.enum_evaluations_max, caps.evaluations * self.s.enum_growth)
            return False
        self.master.add_many(res.columns)  # (one call to HiGHS: 200,000 columns one by one took 9 s)
        self.stats.columns = len(self.master.columns)
        useful = self.master.reduced_costs(duals) <= slack
        self.stats.integer_solves += 1
        self._take(self.master.solve_integer(self.deadline - time.perf_counter(), self._allowed(rules) & useful,
                                             below=self.upper))
        return self.master.last_proven

    def _solve_lp(self, rules: Rules, lp: LpResult) -> LpResult | None:
        """The node's LP solved (theta = 1) by heuristic pricing alone, when it can prove that
        (its truncated search completes with nothing above 1); else, under joint, by exhaustive
        pricing (`_solve_lp_exactly`); None when neither can: then the node branches as before
        (an exhaustive call at threshold 1 may take long, the state search's tail)."""
        while time.perf_counter() < self.deadline:
            res = self._heuristic(lp.duals, rules)
            if not res.columns:
                return lp if res.complete else self._solve_lp_exactly(rules, lp)
            solved = self._resolved(res.columns)
            if solved is None:
                return None
            lp = solved
        return None

    def _solve_lp_exactly(self, rules: Rules, lp: LpResult) -> LpResult | None:
        """Under joint, the LP solved on by exhaustive pricing at 1 + EPS for up to
        close_converge_joint of the limit: at the root of an open joint 64 it converges in 4-9
        calls and 3-13 s, and only a solved LP gives the listing its least slack."""
        until = min(self.deadline, time.perf_counter() + self.s.close_converge_joint * self._limit)
        while self.pricer.joint and time.perf_counter() < until:
            res = self._exhaustive(lp.duals, 1 + EPS, until, rules=rules, max_columns=self.s.exhaustive_columns)
            if not res.columns:
                return lp if res.complete else None
            solved = self._resolved(res.columns)
            if solved is None:
                return None
            lp = solved
        return None

    def _exhaustive(self, duals: Array, threshold: float, deadline: float, **kwargs: Any) -> PricingResult:
        """One exhaustive pricing call (`Pricer.price`, no beam), counted in the stats."""
        res = self.pricer.price(duals, threshold, beam=None, deadline=deadline, **kwargs)
        self.stats.exhaustive_calls += 1
        self.stats.pricing_nodes += res.nodes
        return res

    def _resolved(self, columns: list[Column]) -> LpResult | None:
        """The master's LP once `columns` have joined the pool (None: no LP)."""
        self._add(columns)
        self.stats.lp_iterations += 1
        return self.master.solve_lp()

    def _final_bound(self, lp: LpResult, until: float) -> None:
        """The best Lagrangian bound the root's last duals give in the time left: for each bound
        B above the proven one, up to ceil(LP), search for a configuration worth more than
        LP / (B - 1 + DELTA); finding none proves B. Small B first: their thresholds are high and
        their searches short; the first B with a configuration above it ends the climb."""
        for target in range(max(self.lower + 1, 2), min(self.upper, math.ceil(lp.value - 1e-6)) + 1):
            res = self._exhaustive(lp.duals, lp.value / (target - 1 + DELTA), until, max_columns=1)
            if res.columns or not res.complete:
                return
            self._certify(lp.duals, lp.value / (target - 1 + DELTA))
            self.lower = target

    def _ascend(self, lp: LpResult, until: float) -> None:
        """The Farley bound in-out separation proves (inout.py) on the segments from the best
        dual-feasible centre known (least shares beside a partner, or the certificate scaled) towards
        the LP's duals, until the bound reaches min(UB, ceil(LP)) or `until`. Where the root's LP
        was cut by the clock its own duals prove less than the volume bound."""
        target = min(self.upper, math.ceil(lp.value - 1e-6))
        if self.lower >= target or time.perf_counter() >= until:
            return
        m = self.master
        least = pair_least(self.pricer.pair, self.pricer.o.alone)
        duals = share_centre(least, self.pricer.option_type, m.type_row, m.type_weight)
        centre = Centre(duals, self._farley(duals, 1.0))
        if self.certificate is not None and self._farley(*self.certificate) > centre.value:
            duals, v_max = self.certificate
            centre = Centre(duals / v_max, self._farley(duals, v_max))
        s = self.s
        best = ascend(lp.duals, centre, lambda pi: self._farley(pi, 1.0),
                      lambda pi, theta: self._proves(pi, theta, until), s.inout_alphas, s.inout_steps,
                      s.inout_rounds, goal=target - 1 + DELTA)
        if best.value > centre.value:
            self._certify(best.duals, 1.0)
            self.lower = max(self.lower, math.ceil(best.value - 1e-6))

    def _proves(self, duals: Array, theta: float, until: float) -> tuple[bool, float]:
        """Is no configuration worth more than theta at `duals`? (True, nan) proven; (False, the
        worth of one that is) or (False, nan) when the search ran out of time."""
        res = self._exhaustive(duals, theta, until, max_columns=1)
        if res.columns:
            return False, max(float(duals[self.pricer.option_type[list(c.members)]].sum()) for c in res.columns)
        return res.complete, math.nan

    def _final_integer(self) -> None:
        """The integer master over every generated column, in the time kept for it."""
        self.master.forbid(np.ones(len(self.master.columns), dtype=bool))
        self._pool_integer(Rules(), self.final_deadline - time.perf_counter() - 0.1)

    def _take(self, res: tuple[float, Array] | None) -> None:
        """An integer master's cover becomes the incumbent when it uses fewer GPUs."""
        if res is not None and res[0] < self.upper - 0.5:
            self.upper = round(res[0])
            self.incumbent = columns_of(self.master, res[1])
