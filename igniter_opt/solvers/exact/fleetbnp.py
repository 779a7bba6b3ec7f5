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
Ryan-Foster on a pair of rows (together / apart), then on a row's GPU type (on g / not on g). One
artificial column per row (type "none", a cost above any plan) keeps every LP feasible; a plan
never holds one. Depth first; at the deadline the incumbent and the root bound are returned.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from igniter_opt.model.predict import Array
from igniter_opt.solvers.exact.branching import FleetRules, Rules
from igniter_opt.solvers.exact.master import Column, LpResult, Master
from igniter_opt.solvers.exact.pricing import Pricer

EPS = 1e-6  # numerical tolerances, as in bnp.py (not tuning)
DELTA = 1e-4


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

    def price(self, lp: LpResult, rules: FleetRules, theta: float, exhaustive: bool) -> tuple[list[Column], bool]:
        """Columns of every type whose duals sum past theta cost_g - mu_g; complete when every
        type's search was (then none exists)."""
        found: list[Column] = []
        complete = True
        for g, pricer in enumerate(self.pricers):
            if time.perf_counter() > self.deadline:
                return found, False
            threshold = theta * float(self.master.gpu_cost[g]) - float(lp.avail_duals[g])
            duals = self._type_duals(lp.duals, g, rules, float(lp.avail_duals[g]))
            res = pricer.price(duals, threshold, beam=None, deadline=self.deadline,
                               rules=rules.pairs, max_columns=self.s.exhaustive_columns if exhaustive
                               else self.s.fleet_heuristic_columns,
                               max_nodes=None if exhaustive else self.s.heuristic_evaluations)
            if exhaustive:
                self.stats.exhaustive_calls += 1
            complete &= res.complete
            off = rules.off.get(g, frozenset())
            for c in res.columns:
                rows = pricer.option_type[list(c.members)]
                if not off.intersection(rows.tolist()) and rules.pairs.admits(rows):
                    found.append(Column(tuple(m + self.offsets[g] for m in c.members), c.shares))
        return found, complete

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
                return math.inf, None, True
            if time.perf_counter() > self.deadline:
                return -math.inf, lp, False
            cols, _ = self.price(lp, rules, 1 + EPS, exhaustive=False)
            if self._add(cols):
                continue
            target = min(self.upper, ceil_bound(lp.value))
            theta = 1 + EPS
            if not converge and target > 1 and math.isfinite(target):
                theta = max(theta, lp.value / (target - 1 + DELTA))
            cols, complete = self.price(lp, rules, theta, exhaustive=True)
            if self._add(cols):
                continue
            if not complete:
                return -math.inf, lp, False
            bound = lp.value / theta
            if theta > 1 + EPS and ceil_bound(bound) < self.upper:
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
                self.incumbent = [c for c, k in zip(self.master.columns, np.round(z)) for _ in range(int(k))]

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
            self.incumbent = [c for c, k in zip(self.master.columns, res[1]) for _ in range(int(k))]

    def _branch(self, lp: LpResult, rules: FleetRules) -> tuple[FleetRules, FleetRules] | None:
        """Two children: a fractional pair of rows (together, apart), else a row fractionally on a
        type (off every other type, off that type); None when neither is fractional."""
        types = self.master.option_type
        per_type = np.zeros(len(self.pricers))
        for i, (c, z) in enumerate(zip(self.master.columns, lp.z)):
            if z > EPS and self._real(i):
                per_type[self.master.gpu_of(c)] += float(z) * self.master.gpus_of(c)
        fractional = [g for g, v in enumerate(per_type) if EPS < v - math.floor(v) < 1 - EPS]
        if fractional:  # a type's GPU count first: few levels, and it settles the availability rows
            g = min(fractional, key=lambda g: abs(per_type[g] - math.floor(per_type[g]) - 0.5))
            v = per_type[g]
            return rules.with_gpus(g, 0.0, math.floor(v)), rules.with_gpus(g, math.ceil(v), math.inf)
        pair: dict[tuple[int, int], float] = {}
        row_gpu: dict[tuple[int, int], float] = {}
        for i, (c, z) in enumerate(zip(self.master.columns, lp.z)):
            if z <= EPS or not self._real(i):
                continue
            g = self.master.gpu_of(c)
            rows = sorted(set(types[list(c.members)].tolist()))
            for a in range(len(rows)):
                row_gpu[(rows[a], g)] = row_gpu.get((rows[a], g), 0.0) + float(z)
                for b in range(a + 1, len(rows)):
                    pair[(rows[a], rows[b])] = pair.get((rows[a], rows[b]), 0.0) + float(z)

        def frac(table: dict[tuple[int, int], float]) -> tuple[int, int] | None:
            cand = {k: v - math.floor(v) for k, v in table.items() if EPS < v - math.floor(v) < 1 - EPS}
            return min(cand, key=lambda k: abs(cand[k] - 0.5)) if cand else None

        p = frac(pair)
        if p is not None:
            pr = rules.pairs
            return (FleetRules(Rules([*pr.together, p], pr.apart), rules.off),
                    FleetRules(Rules(pr.together, [*pr.apart, p]), rules.off))
        rg = frac(row_gpu)
        if rg is None:
            return None
        r, g = rg
        on = rules
        for other in range(len(self.pricers)):
            if other != g:
                on = on.with_off(other, {r})
        return on, rules.with_off(g, {r})

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
