"""Solver `exact`: the minimum GPU count by branch-and-price, with proof.

Demands that need a whole GPU are placed first (as every solver does). The rest are grouped
into workload types (same model, SLO and rate: identical rows of the master with a demand count,
as in cutting stock). Each type has options: the paper batch, or under policy `joint` every
batch in 1..b_paper that the dominance rule keeps. The verified heuristic plans (greedy, first
fit) seed the master and the incumbent; branch-and-price then proves the bound or improves the
plan. Types are split back into single workloads (and the search rerun from its columns) only
when the root cannot close the gap, because pair branching needs single rows.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field, replace

import numpy as np

from igniter_opt.data.errors import DeadlineReached, InfeasibleError, SolveInterrupted
from igniter_opt.data.instance import Instance
from igniter_opt.data.plan import GpuPlan, Plan
from igniter_opt.model import Profile
from igniter_opt.solvers.base import FunctionSolver, HighsOptions, SolveOptions
from igniter_opt.solvers.colocation import placed, replica_gpus
from igniter_opt.solvers.exact import warm as warmstart
from igniter_opt.solvers.exact import warmproof
from igniter_opt.solvers.exact.bnp import BranchAndPrice
from igniter_opt.solvers.exact.catalogue import (
    Catalogue,
    catalogue,
    max_members,
    members_needed,
    seed_columns,
    singletons,
    sizing_options,
    to_gpus,
    volume_bound,
)
from igniter_opt.solvers.exact.cuts import piece_cuts
from igniter_opt.solvers.exact.groups import merge, partition, solve_groups
from igniter_opt.solvers.exact.improve import ImproveSettings, improve, random_fits, reserve
from igniter_opt.solvers.exact.master import Column, Master
from igniter_opt.solvers.exact.pricing import Pricer
from igniter_opt.solvers.exact.settings import DEFAULT, ExactSettings
from igniter_opt.solvers.exact.splits import space_of, split_note
from igniter_opt.solvers.heuristics.firstfit import first_fit
from igniter_opt.solvers.heuristics.greedy import place_greedy
from igniter_opt.solvers.jitcache import announce_if_cold
from igniter_opt.solvers.sizing import Demand, margin_of, split_workloads


@dataclass(frozen=True)
class ExactOptions(HighsOptions):
    """Options of branch-and-price: the whole-call time limit, threads, the SLO margin (%) and the
    search's tuning (settings.py; benchmarks and tests pass variants here). `warm`: a previous
    solve to start from (warm.py); `record`: a sink the solve leaves its own warm start in."""

    settings: ExactSettings = DEFAULT
    warm: warmstart.ExactWarmStart | None = field(default=None, compare=False)
    record: warmstart.WarmRecord | None = field(default=None, compare=False)

    @classmethod
    def from_common(cls, common: SolveOptions) -> ExactOptions:
        return cls(time_limit=common.time_limit, threads=common.threads, mip_gap=common.mip_gap,
                   verbose=common.verbose, margin_pct=common.margin_pct)


def heuristic_plans(profile: Profile, demands: list[Demand], deadline: float | None = None
                    ) -> list[list[GpuPlan]]:
    """The greedy's plan and two first fits (by r_lower, in input order) of the shareable demands.

    Past `deadline` the heuristics open a GPU per remaining workload (a worse plan, on time)."""
    plans = [[GpuPlan([placed(demands[i], s) for i, s in g]) for g in place_greedy(profile, demands, deadline)]]
    shareable = [i for i, d in enumerate(demands) if not d.full_gpu]
    for order in (sorted(shareable, key=lambda i: -demands[i].r_lower), shareable):
        try:
            plans.append(first_fit(profile, demands, order, deadline))
        except InfeasibleError:
            continue
    return plans


def _prepare(profile: Profile, demands: list[Demand], policy: str, aggregate: bool, deadline: float,
             threads: int, margin_pct: float, settings: ExactSettings = DEFAULT,
             heuristics: list[list[GpuPlan]] | None = None) -> tuple[Catalogue, Pricer, BranchAndPrice]:
    """Types, options, pricer and master seeded with the heuristics' columns (heuristic_plans when
    not given); the search not run. DeadlineReached when the pricer's pair table is not built by
    `deadline`."""
    if heuristics is None:
        heuristics = heuristic_plans(profile, demands)
    cat = catalogue(profile, demands, policy, aggregate, margin_pct, settings.split_grid)
    pairs = len(cat.option_type) ** 2
    if time.perf_counter() + settings.pair_seconds * pairs > deadline:  # not even the table's memory in time
        raise DeadlineReached(f"a pair table of {len(cat.option_type)} options needs more time than is left")
    pricer = Pricer(profile.hardware, cat.options, cat.option_type, cat.caps, settings, deadline)
    master = Master(cat.row_demand, cat.option_type, threads, type_row=cat.type_row, type_weight=cat.type_weight,
                    settings=settings)
    if settings.piece_cuts and len(cat.row_demand) < settings.cut_rows:  # (at 200 rows: see docs/exact.md)
        master.offer_cuts(piece_cuts(cat.type_row, cat.type_weight, settings.piece_cuts))
    for o in range(len(cat.option_type)):
        if np.isfinite(cat.options.alone[o]):
            master.add(Column((o,), (float(cat.options.alone[o]),)))
    seeds = seed_columns(demands, cat, pricer, heuristics)
    for cols in seeds:
        for c in cols:
            master.add(c)
    incumbent = min(seeds, key=len) if seeds else singletons(demands, cat)
    lower = max(volume_bound(cat), math.ceil(members_needed(cat) / max_members(profile, cat, cat.caps) - 1e-9))
    return cat, pricer, BranchAndPrice(pricer, master, incumbent, lower, deadline, unbranchable=cat.piece_types)


def solve(instance: Instance, profile: Profile, demands: list[Demand], options: ExactOptions,
          tuning: ImproveSettings | None = None) -> Plan:
    """Minimum GPUs by branch-and-price; status optimal only with the bound proven."""
    announce_if_cold()
    begin = time.perf_counter()
    tuning = tuning or ImproveSettings()
    # the rest: improve.py, which leaves plans with split workloads alone (their pieces stay), so
    # those solves keep the whole limit for the search
    deadline = begin + options.time_limit - (0.0 if split_workloads(demands) else reserve(tuning, options.time_limit))
    policy = instance.batch_policy
    settings = options.settings
    margin = margin_of(demands)  # the demands were sized at the margin; the oracle uses the same limits
    # every workload, and every split workload's pieces, are placed by the search (splits.py)
    plan = Plan(instance=instance.name, solver="exact", profile=profile.name, status="optimal",
                space=space_of(demands, settings.split_grid))
    replicas = 0
    if not demands:
        plan.lower_bound, plan.gap = 0, 0.0
        return plan
    bnp: BranchAndPrice | None = None
    compact_plan: Plan | None = None
    warm = options.warm if options.warm is not None and warmstart.applies(options.warm, profile.name, policy,
                                                                          margin) else None
    if warm is not None:  # its pool is near the new LP's optimum: short exhaustive calls (settings.py)
        settings = settings.warm()
    # a warm start's repaired plan replaces the heuristics' (they are the fallback when it has none)
    heuristics = [] if warm is not None else heuristic_plans(profile, demands,
                                                             begin + settings.seed_share * options.time_limit)
    if warm is None and _members_per_gpu(heuristics) >= settings.large_members:  # many small workloads per GPU
        heuristics += random_fits(profile, demands, begin + settings.seed_fits_share * options.time_limit,
                                  settings.seed_fits)  # (issue 24)
        settings = settings.many_members()
    try:
        cat, pricer, bnp = _prepare(profile, demands, policy, True, deadline, options.threads, margin, settings,
                                    heuristics)
        if warm is not None:
            seeded = warmstart.seed(warm, demands, cat, pricer)
            if seeded.incumbent is None:  # no repaired plan: the heuristics' plans seed it as in a cold solve
                heuristics = heuristic_plans(profile, demands, begin + settings.seed_share * options.time_limit)
                for cols in seed_columns(demands, cat, pricer, heuristics):
                    _seed_fixed(bnp, cols)
            warmstart.start(bnp, seeded)
            if options.record is not None:
                options.record.stats = seeded.stats
    except DeadlineReached as exc:
        heuristics = heuristics or heuristic_plans(profile, demands, deadline)
        if time.perf_counter() < deadline:  # what is left goes to a first fit that may get further
            shareable = [i for i, d in enumerate(demands) if not d.full_gpu]
            order = sorted(shareable, key=lambda i: -demands[i].r_lower)
            with contextlib.suppress(InfeasibleError):
                heuristics.append(first_fit(profile, demands, order, deadline))
        return _before_search(plan, demands, heuristics, "time_limit", f"out of time ({exc})")
    except KeyboardInterrupt:  # Ctrl-C while preparing: the heuristics' plan is the incumbent
        if not heuristics:
            raise
        raise SolveInterrupted(_before_search(plan, demands, heuristics, "interrupted", "interrupted")) from None
    try:
        active, owner = cat, bnp
        if warm is not None:  # here, so that Ctrl-C during its searches answers with the incumbent
            warmproof.settle(bnp, seeded, cat, options.time_limit)
        # after the preparation, so that Ctrl-C meanwhile still returns the seeds' incumbent; a warm
        # start's plan stands for the search over the sizing's split
        share = settings.fixed_share_joint if pricer.joint else settings.fixed_share  # (issue 24)
        fixed = _fixed_split_search(profile, demands, policy, begin + share * options.time_limit,
                                    options.threads, margin, settings) \
            if cat.splits and warm is None and len(demands) < settings.large_rows else None
        _seed_fixed(bnp, _fixed_columns(demands, cat, pricer, fixed))
        groups = partition(demands, settings.group_size) if warm is None and len(demands) >= settings.group_rows \
            else []
        if len(groups) > 1:  # datacenter sizes: groups of like mix (one group would be this solve again)
            _seed_groups(bnp, demands, cat, solve_groups(
                demands, groups, begin + settings.group_share * options.time_limit,
                lambda group, until: _group_search(instance, profile, group, until, options.threads, settings)))
        if bnp.lower < bnp.upper <= settings.few_gpus and not cat.splits:  # the MILP knows the sizing's split only
            compact_plan = _compact_first(instance, profile, demands, options, deadline)
            if compact_plan.status == "optimal" and compact_plan.feasible:
                _record(options, profile, policy, margin, demands, cat, bnp, compact_plan)
                return compact_plan
            if compact_plan.lower_bound is not None:
                bnp.lower = max(bnp.lower, compact_plan.lower_bound - replicas)
        out = bnp.run(branching=all(len(m) == 1 for m in cat.type_demands if m))
        # pair branching needs single rows: the search again with every workload its own type,
        # when a fifth of the limit is left for it (its preparation alone takes seconds at 500)
        if not out.complete and out.lower < out.upper and time.perf_counter() < deadline - settings.rerun_share * \
                options.time_limit and any(len(m) > 1 for m in cat.type_demands):
            try:
                # (a warm start's repaired plan seeds it in place of the heuristics it skipped)
                cat2, pricer2, bnp = _prepare(profile, demands, policy, False, deadline, options.threads, margin,
                                              settings, heuristics or [to_gpus(demands, cat, pricer, out.chosen)])
            except DeadlineReached:
                pass  # no time for the search over single workloads: the first search's answer stands
            else:
                _seed_fixed(bnp, _fixed_columns(demands, cat2, pricer2, fixed))
                active = cat2
                out2 = bnp.run(branching=True)
                lower = max(out.lower, out2.lower)
                if out2.upper < out.upper or out2.lower > out.lower:
                    cat, pricer, out, owner = cat2, pricer2, out2, bnp
                out.lower = lower
    except KeyboardInterrupt:
        if bnp is None:
            raise
        snapshot = bnp.outcome(complete=False)
        plan.gpus += to_gpus(demands, active, bnp.pricer, snapshot.chosen)
        plan.lower_bound, plan.status = replicas + snapshot.lower, "interrupted"
        raise SolveInterrupted(plan) from None
    plan.gpus += to_gpus(demands, cat, pricer, out.chosen)
    plan.lower_bound = replicas + out.lower
    if compact_plan is not None and compact_plan.feasible and compact_plan.num_gpus < plan.num_gpus:
        plan.gpus = compact_plan.gpus
    if compact_plan is not None and compact_plan.lower_bound is not None:
        plan.lower_bound = max(plan.lower_bound, compact_plan.lower_bound)
    if plan.lower_bound < plan.num_gpus and not cat.splits:  # a gap: destroy-and-repair the incumbent
        plan.gpus = improve(plan.gpus, profile, demands, begin + options.time_limit, tuning)[0]
    plan.status = "optimal" if plan.lower_bound >= plan.num_gpus else "time_limit"
    plan.gap = round((plan.num_gpus - plan.lower_bound) / plan.num_gpus, 6)
    s = out.stats
    plan.message = (f"branch-and-price: root LP {s.root_lp:.4f}, {s.columns} columns, {s.nodes} nodes, "
                    f"{s.lp_iterations} LP solves, {s.exhaustive_calls} exhaustive pricings, {s.dives} dives, "
                    f"{s.residuals} residual searches ({s.neighbourhoods} on the plan's neighbourhoods, "
                    f"{s.cut_off} ended by their bound), {s.integer_solves} integer masters") if s.nodes else \
        "the previous plan (repaired, or a dive's over its columns) meets the bound its certificate carries" \
        if warm is not None else "the heuristic plan meets the volume and cardinality bounds: optimal without search"
    if cat.splits:
        plan.message = f"{split_note(plan.status, [sw.name for sw in cat.splits], settings.split_grid)}; {plan.message}"
    if warm is not None:
        plan.message = f"warm start; {plan.message}"
    _record(options, profile, policy, margin, demands, cat, owner, plan)
    return plan


def _record(options: ExactOptions, profile: Profile, policy: str, margin: float, demands: list[Demand],
            cat: Catalogue, bnp: BranchAndPrice, plan: Plan) -> None:
    """Leave this solve's warm start in options.record (when asked for one)."""
    if options.record is None:
        return
    options.record.last = warmstart.export(profile.name, policy, margin, demands, cat, bnp.master.columns,
                                           bnp.certificate, plan.gpus, int(plan.lower_bound or 0))


def _members_per_gpu(heuristics: list[list[GpuPlan]]) -> float:
    """Workloads per GPU of the fewest-GPU heuristic plan (how large configurations are)."""
    best = min(heuristics, key=len, default=[])
    return sum(len(g.workloads) for g in best) / max(1, len(best))


def _before_search(plan: Plan, demands: list[Demand], heuristics: list[list[GpuPlan]], status: str,
                   why: str) -> Plan:
    """The answer when branch-and-price did not start (out of time, or Ctrl-C): the fewest-GPU first
    fit (feasible by construction; the greedy's plan only when no first fit exists). It is over the
    sizing's split: its replicas on their own GPUs, and `solve` notes the fixed split and adds that
    split's lower bound."""
    fits: list[list[GpuPlan]] = heuristics[1:] if len(heuristics) > 1 else heuristics
    plan.space, plan.gpus = "", replica_gpus(demands) + min(fits, key=len)
    plan.status = status
    plan.message = f"{why} before branch-and-price could start: the heuristics' plan"
    return plan


def _fixed_split_search(profile: Profile, demands: list[Demand], policy: str, until: float, threads: int,
                        margin: float, settings: ExactSettings) -> tuple[list[Demand], Catalogue, list[Column]] | None:
    """The best plan over the sizing's split found by `until` (branch-and-price as before issue 23:
    full-GPU replicas aside, each rest an ordinary workload): a seed, so the search over every
    split starts from it (its bound holds for that split only and is not used)."""
    fixed = [replace(d, replica_of=None) for d in demands if not d.full_gpu]
    if not fixed or time.perf_counter() >= until:
        return None
    try:
        fcat, _, fbnp = _prepare(profile, fixed, policy, True, until, threads, margin, settings)
    except DeadlineReached:
        return None
    out = fbnp.run(branching=all(len(m) == 1 for m in fcat.type_demands if m))
    return fixed, fcat, out.chosen


def _group_search(instance: Instance, profile: Profile, demands: list[Demand], until: float, threads: int,
                  settings: ExactSettings) -> warmstart.ExactWarmStart | None:
    """One group's exact solve (every split of its workloads, without the seed search over the
    sizing's split), as a warm start of its columns and plan."""
    names = {d.replica_of or d.name for d in demands}
    group = replace(instance, name=f"{instance.name}-group", workloads=tuple(w for w in instance.workloads
                                                                               if w.name in names))
    record = warmstart.WarmRecord()
    own = replace(settings, fixed_share=settings.group_fixed_share)  # no seed search over the sizing's split
    try:
        solve(group, profile, demands, ExactOptions(time_limit=max(0.0, until - time.perf_counter()),
                                                    threads=threads, settings=own, record=record))
    except SolveInterrupted:  # Ctrl-C: the whole solve answers with its own incumbent
        raise KeyboardInterrupt from None
    return record.last


def _seed_groups(bnp: BranchAndPrice, demands: list[Demand], cat: Catalogue,
                 found: list[warmstart.ExactWarmStart]) -> None:
    """The groups' plans, mapped onto the whole's options (warm.seed), as its incumbent when it has
    fewer GPUs, and their columns in its pool; the root's share of the time counted from now."""
    if not found:
        return
    seeded = warmstart.seed(merge(found), demands, cat, bnp.pricer)
    bnp.master.add_many(seeded.columns)
    if seeded.incumbent is not None:
        _seed_fixed(bnp, seeded.incumbent)
    bnp.share_from_now()


def _fixed_columns(demands: list[Demand], cat: Catalogue, pricer: Pricer,
                   fixed: tuple[list[Demand], Catalogue, list[Column]] | None) -> list[Column]:
    """The fixed-split search's plan as columns of `cat` (each rest at its rate level, each full
    replica alone); empty when a member has no option here or a GPU does not fit."""
    if fixed is None:
        return []
    sub, fcat, chosen = fixed
    option = sizing_options(demands, cat)
    index = {d.name: i for i, d in enumerate(demands)}
    queue = {t: list(members) for t, members in enumerate(fcat.type_demands)}
    # policy joint: a workload's option at another batch than the paper's (its type's, same batch)
    type_of = {i: t for t, members in enumerate(cat.type_demands) for i in members}
    at_batch = {(int(t), float(b)): o for o, (t, b) in enumerate(zip(cat.option_type, cat.option_batch, strict=True))}
    cols = []
    for col in chosen:
        picked = [(o, sub[queue[t].pop()].name) for o, t in ((o, int(fcat.option_type[o])) for o in col.members)
                  if queue[t]]
        if not picked:
            continue
        opts_list = []
        for o, n in picked:
            i, batch = index[n], float(fcat.option_batch[o])
            if batch == demands[i].batch and i in option:
                opts_list.append(option[i])
            elif i in type_of and (type_of[i], batch) in at_batch:
                opts_list.append(at_batch[(type_of[i], batch)])
            else:
                return []  # a rest at another batch than its rate level's, or no such option here
        opts = tuple(sorted(opts_list))
        shares = pricer.shares_of(opts)
        if shares is None:
            return []
        cols.append(Column(opts, tuple(float(x) for x in shares)))
    full = [Column((option[i],), (float(cat.options.alone[option[i]]),)) for i, d in enumerate(demands)
            if d.full_gpu and i in option]
    return cols + full if len(full) == sum(d.full_gpu for d in demands) else []


def _seed_fixed(bnp: BranchAndPrice, cols: list[Column]) -> None:
    """The fixed-split plan's columns into the master, and the incumbent when it uses fewer GPUs."""
    for c in cols:
        bnp.master.add(c)
    if cols and len(cols) < bnp.upper:
        bnp.incumbent, bnp.upper = list(cols), len(cols)


def _compact_first(instance: Instance, profile: Profile, demands: list[Demand], options: ExactOptions,
                   deadline: float) -> Plan:
    """The compact MILP on half the time left: with few GPUs its size is small and its pair
    conflicts strong, while pricing must search sets of many small members (a portfolio step;
    its plan and bound are kept if branch-and-price does not do better)."""
    from igniter_opt.solvers.formulations.compact import CompactOptions
    from igniter_opt.solvers.formulations.compact import solve as compact_solve
    from igniter_opt.solvers.verify import verify

    left = max(1.0, 0.5 * (deadline - time.perf_counter()))
    sub = CompactOptions(time_limit=left, threads=options.threads, mip_gap=0.0, verbose=options.verbose,
                         margin_pct=options.margin_pct)
    plan = compact_solve(instance, profile, demands, sub)
    checked, problems = verify(plan, profile, options.margin_pct)
    checked.solver = "exact"
    checked.feasible = not problems and bool(checked.gpus)
    checked.message = f"few GPUs: the compact MILP ran first ({plan.status}). {plan.message}".strip()
    return checked


SOLVER = FunctionSolver("exact", solve, ExactOptions.from_common)
