"""Branch-and-price over a mixed fleet: configurations per GPU type, each costing its type's price.

The master (master.py) has one covering row per workload row and one availability row per type
with a count; a column is one GPU of one type. Pricing runs one Pricer per type, built on that
type's profile, with that type's options: a column of type g prices out when its members' duals
sum past cost_g - mu_g (mu_g <= 0, the availability dual). Costs are integers (fleet.Costs), so a
node is pruned when ceil(bound) reaches the incumbent.

Bounds: when no type has a column whose duals sum past theta cost_g - mu_g, (pi, mu) / theta is
dual feasible, so LP / theta is a valid bound (the Lagrangian argument of bnp.py, with the
availability duals; a row realized on g with replicas is worth its dual less their cost there, and
the bound still holds since theta >= 1); theta is first chosen to prove the incumbent (or
ceil(LP)), then 1 to solve the LP when the node must branch. Branching: first on a type's GPU
count when it is fractional (at most floor / at least ceil: bounds on the type's count row), then
Ryan-Foster on a pair of rows (together / apart), then on a row's GPU type (on g / not on g); when
all three are integral on a fractional LP, the LP's exact cover (fleetcover.py) either implies an
integer plan costing at most the LP (the node is solved) or has a fractional pair or row-type to
branch on, so the scheme is complete. When a type's exhaustive pricing cannot finish (the state
search's unresolved bins), the most any column it left open is worth still gives a valid theta,
so the node's bound is proven and the search goes on (before, it stopped there). One
artificial column per row (type "none", a cost above any plan) keeps the covering rows feasible;
a plan never holds one. A GPU-count branch can still fail on a pool with no allowed column of
its type: the node is then repaired with its together groups as columns (repair.py), not
pruned. Depth first; at the deadline the incumbent and the root bound are returned.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from igniter_opt.model.predict import Array
from igniter_opt.solvers.exact.branching import FleetRules, Rules
from igniter_opt.solvers.exact.closing import DELTA, EPS  # the same tolerances as the single-type search
from igniter_opt.solvers.exact.fleetcover import Piece, aggregates, exact_cover, integral_classes, most_fractional
from igniter_opt.solvers.exact.master import Column, LpResult, Master, columns_of
from igniter_opt.solvers.exact.pricing import Pricer
from igniter_opt.solvers.exact.repair import fleet_group_columns


def ceil_bound(value: float) -> int:
    """Round a bound on an integer cost up, forgiving the LP's relative noise."""
    return math.ceil(value - 1e-6 - 1e-9 * abs(value))


@dataclass
class FleetStats:
    nodes: int = 0
    lp_solves: int = 0
    columns: int = 0
    exhaustive_calls: int = 0
    integer_solves: int = 0
    open_bounds: int = 0  # node bounds from an incomplete pricing's unexplored reach (theta above 1)
    implied_plans: int = 0  # nodes solved by the plan their integral aggregates imply (fleetcover.py)
    cover_branches: int = 0  # branches on the aggregates of the exact cover (fleetcover.py)
    repairs: int = 0  # nodes whose infeasible restricted master took together-group columns (repair.py)
    root_lp: float = math.nan


@dataclass
class FleetOutcome:
    chosen: list[Column]  # real columns of the incumbent (with repetition); empty when none
    upper: float  # its integer cost (inf: no plan)
    lower: int  # proven bound on the integer cost
    complete: bool
    stats: FleetStats


class FleetSearch:
    """One search over per-type pricers sharing a master (global option index = offset + local)."""

    def __init__(self, pricers: list[Pricer], offsets: list[int], master: Master, artificial: int,
                 deadline: float, extras: list[Array] | None = None):
        self.pricers, self.offsets, self.master = pricers, offsets, master
        self.s = pricers[0].settings  # the solve's tuning (settings.py), carried by its pricers
        # per type, per row: the full-GPU replicas realizing the row on that type brings
        self.extras = extras or [np.zeros(len(master.demand)) for _ in pricers]
        self.artificial = artificial  # the GPU type index of the artificial columns
        self.rows = len(master.demand)
        # the order exhaustive pricing visits the types: cheapest first, then the last to have columns
        self._recent = sorted(range(len(pricers)), key=lambda g: float(master.gpu_cost[g]))
        self.deadline = deadline
        self.incumbent: list[Column] = []
        self.upper = math.inf
        self.lower = 0
        self.stats = FleetStats()

    # -- pricing --------------------------------------------------------------------------
    def _type_duals(self, duals: Array, g: int, rules: FleetRules, avail_dual: float = 0.0) -> Array:
        """Each row's value on type g: its dual less what its replicas on g cost (cost_g - mu_g
        each); rows kept off g are worth nothing there."""
        d: Array = duals - self.extras[g] * (float(self.master.gpu_cost[g]) - avail_dual)
        off = set(rules.off.get(g, ()))
        for a, b in rules.pairs.together:  # together with a row kept off g: off g too
            if a in off or b in off:
                off |= {a, b}
            else:  # a zero dual would leave a partner out of the search; a tiny one keeps it in
                d[[a, b]] = np.maximum(d[[a, b]], 1e-9)
        if off:
            d[list(off)] = 0.0
        return d

    def price(self, lp: LpResult, rules: FleetRules, theta: float, exhaustive: bool
              ) -> tuple[list[Column], bool, float]:
        """Columns of every type whose duals sum past theta cost_g - mu_g; complete when every
        type's search was (then none exists); and the least theta' that an incomplete search
        proves instead (no column of type g is worth more than theta' cost_g - mu_g: the best it
        found and what it left unexplored; inf when unknown). Exhaustive searches stop at the
        first type with new columns (the type that last had some searched first): the LP moves on
        with them, and the slow proof that a type has none is only needed when no type has any."""
        found: list[Column] = []
        complete = True
        reach = theta
        for g in list(self._recent):
            pricer = self.pricers[g]
            if time.perf_counter() > self.deadline:
                return found, False, math.inf
            if exhaustive and any(not self.master.known(c.members) for c in found):
                return found, False, math.inf
            threshold = theta * float(self.master.gpu_cost[g]) - float(lp.avail_duals[g])
            duals = self._type_duals(lp.duals, g, rules, float(lp.avail_duals[g]))
            res = pricer.price(duals, threshold, beam=None, deadline=self.deadline,
                               rules=rules.pairs, max_columns=self.s.exhaustive_columns if exhaustive
                               else self.s.fleet_heuristic_columns,
                               max_nodes=None if exhaustive else self.s.heuristic_evaluations)
            if exhaustive:
                self.stats.exhaustive_calls += 1
            complete &= res.complete
            if not res.complete:
                reach = max(reach, (max(res.best, res.open_reach) + float(lp.avail_duals[g]))
                            / float(self.master.gpu_cost[g]))
            off = rules.off.get(g, frozenset())
            for c in res.columns:
                rows = pricer.option_type[list(c.members)]
                if not off.intersection(rows.tolist()) and rules.pairs.admits(rows):
                    found.append(Column(tuple(m + self.offsets[g] for m in c.members), c.shares))
                    if exhaustive and self._recent[0] != g:
                        self._recent.remove(g)
                        self._recent.insert(0, g)
        return found, complete, reach

    def _allowed(self, rules: FleetRules) -> Array:
        types = self.master.option_type
        out = np.ones(len(self.master.columns), dtype=bool)
        for i, c in enumerate(self.master.columns):
            g = self.master.gpu_of(c)
            if g == self.artificial:
                continue
            rows = types[list(c.members)]
            out[i] = rules.pairs.admits(rows) and not rules.off.get(g, frozenset()).intersection(rows.tolist())
        return out

    def _repair(self, rules: FleetRules) -> tuple[LpResult | None, bool | None]:
        """An infeasible restricted master: offer each together group as a column on every type
        (repair.py) and solve again. The LP (None when it still fails) and the repair's verdict:
        when the LP still fails the node is proven infeasible unless the verdict is None (a
        group's batch combinations were too many to try: repair.MOST_COMBINATIONS)."""
        repair = fleet_group_columns(rules, self.pricers, self.offsets)
        if repair.feasible is False or not self._add(repair.columns):
            return None, repair.feasible
        self.master.forbid(self._allowed(rules))
        self.stats.repairs += 1
        self.stats.lp_solves += 1
        return self.master.solve_lp(), repair.feasible

    def _add(self, cols: list[Column]) -> int:
        added = sum(self.master.add(c) for c in cols)
        self.stats.columns = len(self.master.columns)
        return added

    def column_generation(self, rules: FleetRules) -> tuple[float, LpResult | None, bool]:
        """The node's proven bound (LP / theta), its last LP, and whether the bound is proven."""
        self.master.forbid(self._allowed(rules))
        self.master.set_gpu_bounds(rules.gpus)
        converge = False
        while True:
            lp = self.master.solve_lp()
            self.stats.lp_solves += 1
            if lp is None:
                lp, verdict = self._repair(rules)
                if lp is None:  # proven infeasible, or unproven (the search stops with its bound)
                    return (math.inf, None, True) if verdict is not None else (-math.inf, None, False)
            if time.perf_counter() > self.deadline:
                return -math.inf, lp, False
            cols, _, _ = self.price(lp, rules, 1 + EPS, exhaustive=False)
            if self._add(cols):
                continue
            target = min(self.upper, ceil_bound(lp.value))
            theta = 1 + EPS
            if not converge and target > 1 and math.isfinite(target):
                theta = max(theta, lp.value / (target - 1 + DELTA))
            cols, complete, reach = self.price(lp, rules, theta, exhaustive=True)
            if self._add(cols):
                continue
            if not complete:  # the searches bound what they left open: a Lagrangian bound still holds
                if not math.isfinite(reach) or time.perf_counter() > self.deadline:
                    return -math.inf, lp, False
                self.stats.open_bounds += 1
                theta = max(theta, reach)
            bound = lp.value / theta
            if theta > 1 + EPS and ceil_bound(bound) < self.upper and not (converge and not complete):
                converge = True  # the node branches: solve its LP first
                continue
            return bound, lp, True

    # -- incumbents and branching ---------------------------------------------------------
    def _real(self, i: int) -> bool:
        return self.master.gpu_of(self.master.columns[i]) != self.artificial

    def _integral(self, lp: LpResult) -> None:
        """An LP solution that is integral and uses no artificial column is a plan."""
        z = lp.z
        if np.allclose(z, np.round(z), atol=1e-7) and not any(z[i] > 0.5 and not self._real(i) for i in range(len(z))):
            cost = float(np.dot(self.master.costs, np.round(z)))
            if cost < self.upper - 0.5:
                self.upper = cost
                self.incumbent = columns_of(self.master, z)

    def _node_integer(self, rules: FleetRules) -> None:
        budget = self.s.node_mip_share * (self.deadline - time.perf_counter())
        if budget < self.s.min_mip_seconds:
            return
        real = np.array([self._real(i) for i in range(len(self.master.columns))])
        self.stats.integer_solves += 1
        below = None if not math.isfinite(self.upper) else self.upper
        res = self.master.solve_integer(budget, self._allowed(rules) & real, below=below)
        if res is not None and res[0] < self.upper - 0.5:
            self.upper = res[0]
            self.incumbent = columns_of(self.master, res[1])

    def _branch(self, lp: LpResult, rules: FleetRules) -> tuple[FleetRules, FleetRules] | None:
        """Two children: a type's fractional GPU count (at most floor, at least ceil), else a
        fractional pair of rows (together, apart), else a row fractionally on a type (off every
        other type, off that type); when all are integral, the same on the LP's exact cover, or
        None when that cover implies an integer plan (then the incumbent; fleetcover.py)."""
        per_type = np.zeros(len(self.pricers))
        for i, (c, z) in enumerate(zip(self.master.columns, lp.z)):
            if z > EPS and self._real(i):
                per_type[self.master.gpu_of(c)] += float(z) * self.master.gpus_of(c)
        fractional = [g for g, v in enumerate(per_type) if EPS < v - math.floor(v) < 1 - EPS]
        if fractional:  # a type's GPU count first: few levels, and it settles the availability rows
            g = min(fractional, key=lambda g: abs(per_type[g] - math.floor(per_type[g]) - 0.5))
            v = per_type[g]
            return rules.with_gpus(g, 0.0, math.floor(v)), rules.with_gpus(g, math.ceil(v), math.inf)
        types = self.master.option_type
        pieces = [Piece(i, self.master.gpu_of(c), frozenset(types[list(c.members)].tolist()), float(z))
                  for i, (c, z) in enumerate(zip(self.master.columns, lp.z)) if z > EPS and self._real(i)]
        children = self._pair_or_type(pieces, rules)
        if children is not None or any(z > EPS and not self._real(i) for i, z in enumerate(lp.z)):
            return children
        cover = exact_cover(pieces, rules.pairs.together, EPS)
        classes = integral_classes(cover, EPS)
        if classes is not None:
            self._implied(classes)
            return None
        children = self._pair_or_type(cover, rules)
        self.stats.cover_branches += children is not None
        return children

    def _pair_or_type(self, pieces: list[Piece], rules: FleetRules) -> tuple[FleetRules, FleetRules] | None:
        pair, row_gpu = aggregates(pieces)
        p = most_fractional(pair, EPS)
        if p is not None:
            pr = rules.pairs
            return (FleetRules(Rules([*pr.together, p], pr.apart), rules.off, rules.gpus),
                    FleetRules(Rules(pr.together, [*pr.apart, p]), rules.off, rules.gpus))
        rg = most_fractional(row_gpu, EPS)
        if rg is None:
            return None
        r, g = rg
        on = rules
        for other in range(len(self.pricers)):
            if other != g:
                on = on.with_off(other, {r})
        return on, rules.with_off(g, {r})

    def _implied(self, classes: dict[tuple[int, frozenset[int]], tuple[int, int]]) -> None:
        """The integer plan of an integral exact cover: per class, the rows' options of a column
        holding them (a subset of a fitting GPU fits), that many times; the incumbent when it
        covers every row, keeps the counts and is cheaper."""
        chosen: list[Column] = []
        covered: set[int] = set()
        used = np.zeros(len(self.pricers))
        for (g, rows), (k, i) in classes.items():
            members = tuple(m for m in self.master.columns[i].members if int(self.master.option_type[m]) in rows)
            local = tuple(m - self.offsets[g] for m in members)
            shares = self.pricers[g].shares_of(local)
            if shares is None:
                return
            col = Column(members, tuple(float(x) for x in shares))
            self.master.add(col)
            chosen += [col] * k
            covered |= rows
            used[g] += k * self.master.gpus_of(col)
        counts = self.master.available
        if len(covered) < self.rows or any(c is not None and used[g] > c + EPS for g, c in enumerate(counts)):
            return
        self.stats.columns = len(self.master.columns)
        self.stats.implied_plans += 1
        cost = sum(float(self.master.gpu_cost[self.master.gpu_of(c)]) * self.master.gpus_of(c) for c in chosen)
        if cost < self.upper - 0.5:
            self.upper = cost
            self.incumbent = chosen

    def run(self) -> FleetOutcome:
        """Depth-first branch-and-price from the root."""
        stack = [(FleetRules(), 0)]
        complete = True
        while stack:
            rules, depth = stack.pop()
            self.stats.nodes += 1
            bound, lp, proven = self.column_generation(rules)
            if depth == 0:
                self.stats.root_lp = lp.value if lp is not None else math.inf
                if proven:
                    self.lower = max(self.lower, min(ceil_bound(bound), int(1e18)))
            if not proven:
                complete = False
                break
            if lp is None or ceil_bound(bound) >= self.upper:
                continue
            self._integral(lp)
            if ceil_bound(bound) >= self.upper:
                continue
            children = self._branch(lp, rules)
            if children is None and ceil_bound(bound) >= self.upper:  # the cover's plan solved it
                continue
            if children is None:
                self._node_integer(rules)
                if ceil_bound(bound) < self.upper:
                    complete = False
                continue
            if depth == 0 or self.stats.nodes % 8 == 0:
                self._node_integer(rules)
            stack.append((children[1], depth + 1))
            stack.append((children[0], depth + 1))
        self.master.forbid(np.ones(len(self.master.columns), dtype=bool))
        self.master.set_gpu_bounds({})
        if complete and not stack:
            self.lower = int(self.upper) if math.isfinite(self.upper) else self.lower
        return FleetOutcome(self.incumbent, self.upper, self.lower, complete and not stack, self.stats)
