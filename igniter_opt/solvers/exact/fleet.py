"""Solver `exact` over a mixed fleet: the least-cost plan by branch-and-price (fleetbnp.py).

Each GPU type gets its own options (the rows it can serve, with its profile's batch and least
share alone) and its own Pricer; the options of all types share one master with a global index
(type offset + local option). The cost-aware greedy's plan, when it verifies and fits the pricer's
fixed point, seeds the master and the incumbent; singleton columns of every row on every type
that serves it, and one artificial column per row, make the LP feasible from the start. A row
realized on a type with replicas brings them into its columns' cost and availability use.
"""

from __future__ import annotations

import math
import time

import numpy as np

from igniter_opt.data.errors import InfeasibleError
from igniter_opt.data.instance import Instance
from igniter_opt.data.plan import GpuPlan, Plan
from igniter_opt.model.predict import Array
from igniter_opt.solvers.colocation import placed
from igniter_opt.solvers.exact.catalogue import batch_choices
from igniter_opt.solvers.exact.fleetbnp import FleetOutcome, FleetSearch, ceil_bound
from igniter_opt.solvers.exact.master import Column, Master, columns_of, fewest_gpus
from igniter_opt.solvers.exact.oracle import Options, build_options
from igniter_opt.solvers.exact.pricing import Pricer
from igniter_opt.solvers.exact.settings import DEFAULT, ExactSettings
from igniter_opt.solvers.fleet import Costs, Fleet, FleetDemands
from igniter_opt.solvers.heuristics.firstfit import first_fit
from igniter_opt.solvers.heuristics.fleetgreedy import place_fleet_greedy, replica_gpus_of
from igniter_opt.solvers.sizing import FULL_SHARE

# a constant of the model (a big M, not tuning): an artificial column costs this many times the
# dearest plan of singletons
ARTIFICIAL_FACTOR = 1000


def _type_options(fleet: Fleet, fd: FleetDemands, g: int, policy: str, margin: float
                  ) -> tuple[Array, Array, Options]:
    """Rows and batches of type g's options that fit alone, and their oracle Options."""
    profile, demands = fleet.types[g].profile, fd.per_type[g]
    rows_served = [r for r in range(fd.rows) if fd.servable[g, r]]
    batches = batch_choices(profile, demands, policy, rows_served)
    pairs = [(r, b) for r in rows_served for b in batches[r]]
    rows = np.array([r for r, _ in pairs], dtype=np.int64)
    batch = np.array([b for _, b in pairs], dtype=float)

    def build(idx: Array) -> Options:
        reps = [demands[int(r)] for r in rows[idx]]
        return build_options(profile, [d.model for d in reps], batch[idx], np.array([d.slo_ms for d in reps]),
                             np.array([d.rate_rps for d in reps]), margin)

    opts = build(np.arange(len(pairs)))
    keep = np.nonzero(np.isfinite(opts.alone))[0]
    return rows[keep], batch[keep], build(keep)


class Prepared:
    """Per-type pricers, the master, and the map from global options to (type, local option)."""

    def __init__(self, fleet: Fleet, fd: FleetDemands, costs: Costs, policy: str, margin: float, threads: int,
                 settings: ExactSettings = DEFAULT):
        self.fleet, self.fd = fleet, fd
        self.pricers: list[Pricer] = []
        self.offsets: list[int] = []
        self.batches: list[Array] = []
        option_row: list[int] = []
        option_gpu: list[int] = []
        option_extra: list[float] = []
        demand = np.ones(fd.rows)
        self.extras = [np.array([fd.extra(g, r) for r in range(fd.rows)], dtype=float)
                       for g in range(len(fleet.types))]
        for g, t in enumerate(fleet.types):
            rows, batch, opts = _type_options(fleet, fd, g, policy, margin)
            self.offsets.append(len(option_row))
            self.pricers.append(Pricer(t.profile.hardware, opts, rows, demand, settings))
            self.batches.append(batch)
            option_row += rows.tolist()
            option_gpu += [g] * len(rows)
            option_extra += self.extras[g][rows].tolist()
        self.artificial = len(fleet.types)
        self.art_offset = len(option_row)
        option_row += list(range(fd.rows))
        option_gpu += [self.artificial] * fd.rows
        option_extra += [0.0] * fd.rows
        most = 1.0 + max((float(e.max()) for e in self.extras if e.size), default=0.0)
        big = ARTIFICIAL_FACTOR * max(max(costs.per_gpu), 1) * most * (fd.rows + 1)
        self.master = Master(demand, np.array(option_row, dtype=np.int64), threads,
                             option_gpu=np.array(option_gpu, dtype=np.int64),
                             gpu_cost=np.array([*costs.per_gpu, big], dtype=float),
                             available=[t.count for t in fleet.types] + [None],
                             option_gpus=np.array(option_extra, dtype=float), settings=settings)
        for r in range(fd.rows):
            self.master.add(Column((self.art_offset + r,), (0.0,)))
        for g, p in enumerate(self.pricers):
            for o in range(len(p.option_type)):
                self.master.add(Column((self.offsets[g] + o,), (float(p.o.alone[o]),)))

    def volume_bound(self, only: int | None = None) -> int:
        """A proven bound on the integer cost (on type `only` alone when given): each row costs at
        least, on the cheapest type that serves it, its replicas plus its least share alone over
        the GPU's 100% (interference only raises shares, and a GPU's shares sum to at most 100%)."""
        least = np.full(self.fd.rows, np.inf)
        for g, p in enumerate(self.pricers):
            if (only is not None and g != only) or not len(p.option_type):
                continue
            share = np.full(self.fd.rows, np.inf)
            np.minimum.at(share, p.option_type, p.o.alone)
            cost = float(self.master.gpu_cost[g])
            least = np.minimum(least, cost * (self.extras[g] + share / FULL_SHARE))
        total = float(least.sum())
        return ceil_bound(total) if math.isfinite(total) else 0

    def costs_of(self, cols: list[Column]) -> float:
        """Integer cost of a list of columns (each its type's cost times its GPUs)."""
        return sum(float(self.master.gpu_cost[self.master.gpu_of(c)]) * self.master.gpus_of(c) for c in cols)

    def local(self, col: Column) -> tuple[int, tuple[int, ...]]:
        g = self.master.gpu_of(col)
        return g, tuple(m - self.offsets[g] for m in col.members)

    def seeds(self) -> list[list[Column]]:
        """Plans as columns: the cost-aware greedy's (when every GPU of it fits the fixed point)
        and, for each type that serves every row, the interference-aware first fit on that type
        alone (feasible by construction): the best single-type heuristic plan."""
        out = []
        try:
            found = self._columns(place_fleet_greedy(self.fleet, self.fd))
        except InfeasibleError:
            found = None
        if found:
            out.append(found)
        for g, t in enumerate(self.fleet.types):
            if not self.fd.servable[g].all():
                continue
            demands = self.fd.per_type[g]
            order = sorted(range(self.fd.rows), key=lambda r: -float(demands[r].r_lower))
            try:
                plan = first_fit(t.profile, demands, order)
            except InfeasibleError:
                continue
            row_of = {d.name: r for r, d in enumerate(demands)}
            found = self._columns([(g, [(row_of[w.name], w.resource_pct) for w in gpu.workloads]) for gpu in plan])
            if found:
                out.append(found)
        return out

    def _columns(self, gpus: list[tuple[int, list[tuple[int, float]]]]) -> list[Column] | None:
        """Typed GPUs (rows and shares) as columns at the paper batch; None when one does not fit."""
        cols = []
        for g, slots in gpus:
            p = self.pricers[g]
            paper = {int(r): o for o, r in enumerate(p.option_type)
                     if self.batches[g][o] == self.fd.per_type[g][int(r)].batch}
            if any(r not in paper for r, _ in slots):
                return None
            local = tuple(sorted(paper[r] for r, _ in slots))
            shares = p.shares_of(local)
            if shares is None:
                return None
            cols.append(Column(tuple(m + self.offsets[g] for m in local), tuple(float(s) for s in shares)))
        return cols

    def to_gpus(self, chosen: list[Column]) -> list[GpuPlan]:
        """Each row on one chosen column (the first that holds it), shares recomputed."""
        left = set(range(self.fd.rows))
        out: list[GpuPlan] = []
        for col in chosen:
            g, local = self.local(col)
            p = self.pricers[g]
            keep = [o for o in local if int(p.option_type[o]) in left]
            if not keep:
                continue
            rows = [int(p.option_type[o]) for o in keep]
            if len(set(rows)) < len(rows):  # a row twice on one GPU: keep one
                keep = list({int(p.option_type[o]): o for o in keep}.values())
            left -= {int(p.option_type[o]) for o in keep}
            key = tuple(sorted(keep))
            shares = p.shares_of(key)
            assert shares is not None  # a subset of a fitting set fits
            demands = self.fd.per_type[g]
            out += replica_gpus_of(self.fleet, self.fd, g, [int(p.option_type[o]) for o in key])
            out.append(GpuPlan([placed(demands[int(p.option_type[o])], float(s), int(self.batches[g][o]))
                                for o, s in zip(key, shares)], self.fleet.types[g].name))
        return out


def solve_fleet_exact(instance: Instance, fleet: Fleet, fd: FleetDemands, costs: Costs, time_limit: float,
                      threads: int = 1, margin: float = 0.0, settings: ExactSettings = DEFAULT) -> Plan:
    """The least-cost plan with its proven bound; status optimal only when proven."""
    begin = time.perf_counter()
    plan = Plan(instance=instance.name, solver="exact", profile=fleet.types[0].profile.name, status="optimal")
    prep = Prepared(fleet, fd, costs, instance.batch_policy, margin, threads, settings)
    search = FleetSearch(prep.pricers, prep.offsets, prep.master, prep.artificial, begin + time_limit, prep.extras)
    seeds = prep.seeds()
    search.lower = prep.volume_bound()
    for seed in seeds:
        _offer(prep, search, seed)
    if fd.rows >= settings.single_type_rows:  # strong incumbents: the single-type search on each unlimited type
        _single_type_seeds(prep, search, instance, begin + settings.single_type_share * time_limit, threads, margin,
                           settings)
    if search.lower >= search.upper:  # a seed meets a proven bound: optimal without search
        out = FleetOutcome(search.incumbent, search.upper, int(search.upper), True, search.stats)
    else:
        out = search.run()
    if not out.chosen:
        if out.complete:
            raise InfeasibleError(f"the fleet is too small: no plan fits the availability of "
                                  f"{_counts(fleet)} (proven by branch-and-price)")
        plan.status, plan.message = "time_limit", f"time limit of {time_limit:g} s: no plan found yet"
        if costs.step:
            plan.cost_bound = round(costs.price_bound(out.lower), 6)
        else:
            plan.lower_bound = out.lower
        return plan
    chosen = out.chosen
    left = begin + time_limit - time.perf_counter()
    if costs.step and left > 0:  # ties towards fewer GPUs, over the generated columns
        real = np.array([prep.master.gpu_of(c) != prep.artificial for c in prep.master.columns])
        z = fewest_gpus(prep.master, out.upper, real, min(left, settings.tie_break_seconds))
        if z is not None and _gpus(prep.master, z) < sum(prep.master.gpus_of(c) for c in chosen):
            chosen = columns_of(prep.master, z)
    plan.gpus += prep.to_gpus(chosen)
    _finish(plan, costs, int(out.upper), out.lower, out)
    return plan


def _offer(prep: Prepared, search: FleetSearch, seed: list[Column]) -> None:
    """A plan as columns: into the master, and the incumbent when it fits the counts and is cheaper."""
    for c in seed:
        prep.master.add(c)
    cost = prep.costs_of(seed)
    used = np.zeros(len(prep.fleet.types))
    for c in seed:
        used[prep.master.gpu_of(c)] += prep.master.gpus_of(c)
    fits = all(t.count is None or used[g] <= t.count for g, t in enumerate(prep.fleet.types))
    if fits and cost < search.upper:
        search.incumbent, search.upper = seed, cost


def _single_type_seeds(prep: Prepared, search: FleetSearch, instance: Instance, until: float, threads: int,
                       margin: float, settings: ExactSettings) -> None:
    """The single-type exact plan of every unlimited type that serves every row and whose volume
    bound alone is below the incumbent, cheapest volume first, each with a fair share of the time
    left until `until` (an early proof hands its rest to the next). With one type in the fleet that
    solve is the whole problem: it gets the whole limit and its GPU bound is the fleet's bound."""
    cost = prep.master.gpu_cost
    alone = len(prep.fleet.types) == 1
    cands = sorted((prep.volume_bound(g), g) for g, t in enumerate(prep.fleet.types)
                   if t.count is None and prep.fd.servable[g].all())
    for i, (vol, g) in enumerate(cands):
        left = (search.deadline if alone else until) - time.perf_counter()
        if vol >= search.upper or left <= 0:
            continue
        found, gpus_bound = _single_type_seed(prep, instance, g, left / (len(cands) - i), threads, margin,
                                              settings)
        if found:
            _offer(prep, search, found)
        if alone and gpus_bound:
            search.lower = max(search.lower, round(gpus_bound * float(cost[g])))


def _single_type_seed(prep: Prepared, instance: Instance, g: int, budget: float, threads: int,
                      margin: float, settings: ExactSettings) -> tuple[list[Column] | None, int]:
    """The single-type branch-and-price over the sizing's split on type g alone (the fleet's rows:
    each workload's rest is a row, its full-GPU replicas the row's extra on g; exact's search over
    every split, issue 23, places pieces the fleet has no rows for), as fleet columns (None when it
    does not map onto the rows), and its proven GPU bound on g alone, replicas included (0: none)."""
    from dataclasses import replace

    from igniter_opt.data.errors import DeadlineReached
    from igniter_opt.solvers.exact.solver import _prepare
    from igniter_opt.solvers.sizing import size_instance

    profile = prep.fleet.types[g].profile
    try:
        demands = size_instance(instance, profile, margin)
    except InfeasibleError:
        return None, 0
    fixed = [replace(d, replica_of=None) for d in demands if not d.full_gpu]
    replicas = len(demands) - len(fixed)
    try:
        cat, _, bnp = _prepare(profile, fixed, instance.batch_policy, True,
                               time.perf_counter() + max(1.0, budget), threads, margin, settings)
    except (DeadlineReached, InfeasibleError):
        return None, 0
    out = bnp.run(branching=all(len(m) == 1 for m in cat.type_demands if m))
    bound = replicas + int(out.lower)
    row_of = {d.name: r for r, d in enumerate(prep.fd.per_type[g])}
    queue = {t: list(members) for t, members in enumerate(cat.type_demands)}
    gpus = []
    for col in out.chosen:
        names = [fixed[queue[t].pop()].name for t in (int(cat.option_type[o]) for o in col.members) if queue[t]]
        if not names:
            continue
        if not all(n in row_of for n in names):
            return None, bound
        gpus.append((g, [(row_of[n], 0.0) for n in names]))
    if {r for _, slots in gpus for r, _ in slots} != set(range(prep.fd.rows)):
        return None, bound
    return prep._columns(gpus), bound


def _gpus(master: Master, z: Array) -> float:
    return float(sum(master.gpus_of(c) * k for c, k in zip(master.columns, z)))


def _counts(fleet: Fleet) -> str:
    return ", ".join(f"{t.name} {'unlimited' if t.count is None else t.count}" for t in fleet.types)


def _finish(plan: Plan, costs: Costs, upper: int, lower: int, out: FleetOutcome | None) -> None:
    """Status, bounds and gap from integer costs (price bound and GPU bound read back)."""
    proven = lower >= upper
    plan.status = "optimal" if proven else "time_limit"
    if costs.step:
        plan.cost_bound = round(costs.price_bound(min(lower, upper)), 6)
    else:
        plan.lower_bound = min(lower, upper)
    plan.gap = 0.0 if proven else round((upper - lower) / upper, 6) if upper else 0.0
    if out is not None and not out.stats.nodes:
        plan.message = "a seed plan meets the proven bound: optimal without search"
    elif out is not None:
        s = out.stats
        plan.message = (f"fleet branch-and-price: root LP {s.root_lp:.4f} (integer costs), {s.columns} columns, "
                        f"{s.nodes} nodes, {s.lp_solves} LP solves, {s.exhaustive_calls} exhaustive pricings, "
                        f"{s.integer_solves} integer masters"
                        + "".join(f", {k} {what}" for k, what in ((s.open_bounds, "bounds from unfinished pricings"),
                                                                  (s.implied_plans, "plans implied by exact covers"),
                                                                  (s.cover_branches, "branches on exact covers"),
                                                                  (s.repairs, "nodes repaired")) if k))
    if not math.isfinite(upper):
        plan.gap = None
