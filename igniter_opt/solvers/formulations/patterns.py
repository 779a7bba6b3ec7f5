"""Solver `patterns`: every subset of workloads that fits on one GPU, then set partitioning.

A subset fits when the raise-the-violators fixed point (latency or throughput) from the least
shares ends with shares summing to <= 100. Interference only grows with the others' shares, so
the fixed point gives the least feasible shares, and fitting is hereditary: a subset is tried only
when every subset one smaller fits (and starts from their shares). Policy `joint`: a subset fits
if one of its batch vectors fits, over the batches that survive the compact model's dominance
pruning (sound: some optimal plan uses only those). Exponential: refused above LIMIT shareable
demands unless forced. `enumerate_patterns` computes the data, `build_model` the Pyomo model,
`partition` solves it, `solve` returns the plan (as in compact.py).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo

from igniter_opt.data.errors import DeadlineReached, InfeasibleError, InputError, SolveInterrupted
from igniter_opt.data.instance import Instance
from igniter_opt.data.plan import GpuPlan, Plan
from igniter_opt.model import Profile
from igniter_opt.model.predict import Array
from igniter_opt.solvers.base import FunctionSolver, HighsOptions, SolveOptions
from igniter_opt.solvers.colocation import least_shares, placed, replica_gpus
from igniter_opt.solvers.formulations.batches import batch_options
from igniter_opt.solvers.formulations.common import Configs, capacity_units, shareable_configs
from igniter_opt.solvers.formulations.highs import run_highs
from igniter_opt.solvers.heuristics.firstfit import best_heuristic
from igniter_opt.solvers.sizing import Demand, least_share

LIMIT = 16  # shareable workloads `patterns` enumerates without --force (the CLI's documented limit)
# Memory bound of the enumeration: at most this many (subset, batch vector) least-share vectors are
# kept (~300 bytes each); past it `patterns` stops with one line and `milp` skips its pair conflicts.
# The defaults of PatternsOptions.max_patterns / max_batch_vectors and of `fitting`'s arguments.
MAX_PATTERNS_DEFAULT = 2_000_000
MAX_BATCH_VECTORS_DEFAULT = 4096
STOPPED_SECONDS = 0.5  # for the heuristic plan once the time limit has stopped the enumeration
ENUM_SHARE = 0.9  # of the time limit, at most for the enumeration (a cut one falls back to the heuristics)
Pattern = tuple[tuple[int, ...], Array, Array]  # members, shares, batches


Known = dict[tuple[int, ...], dict[tuple[float, ...], Array]]  # members -> batches -> shares


@dataclass(frozen=True)
class PatternsOptions(HighsOptions):
    """Options of `patterns`: HiGHS's, plus `force` to enumerate above LIMIT shareable demands."""

    force: bool = False
    max_patterns: int = MAX_PATTERNS_DEFAULT  # (subset, batch vector) pairs kept at most (memory)
    max_batch_vectors: int = MAX_BATCH_VECTORS_DEFAULT  # batch combinations tried per subset at most (joint)

    @classmethod
    def from_common(cls, common: SolveOptions) -> PatternsOptions:
        return cls(time_limit=common.time_limit, threads=common.threads, mip_gap=common.mip_gap,
                   verbose=common.verbose, margin_pct=common.margin_pct, force=common.force)


def _start(profile: Profile, demands: list[Demand], members: tuple[int, ...], vec: tuple[float, ...],
           known: Known) -> Array:
    """Lower bound on the least shares: the zero-interference share, raised by known subsets."""
    start = np.array([least_share(profile.model(demands[i].model), profile.hardware, demands[i].slo_ms,
                                  int(b), demands[i].margin_pct) for i, b in zip(members, vec)])
    for d in range(len(members)):
        sub = known.get(members[:d] + members[d + 1:], {}).get(vec[:d] + vec[d + 1:])
        if sub is not None:
            start = np.maximum(start, np.insert(sub, d, 0.0))
    return start


def fitting(profile: Profile, demands: list[Demand], policy: str, max_size: int | None = None,
            deadline: float = math.inf, max_patterns: int = MAX_PATTERNS_DEFAULT,
            max_batch_vectors: int = MAX_BATCH_VECTORS_DEFAULT) -> tuple[Known, bool]:
    """Least shares of every fitting (subset, batch vector), subsets up to max_size members.

    The flag is False when the deadline cut the enumeration short; TooManyPatterns or
    TooManyBatchVectors past the memory bounds.
    """
    options = batch_options(profile, demands, policy, deadline)
    known: Known = {}
    stored = 0
    level: list[tuple[int, ...]] = [(i,) for i in sorted(options)]
    while level and (max_size is None or len(level[0]) <= max_size):
        fit = []
        for members in level:
            if time.perf_counter() > deadline:
                return known, False
            if _fit_subset(profile, demands, members, options, known, deadline, max_batch_vectors):
                fit.append(members)
                stored += len(known[members])
                if stored > max_patterns:
                    raise TooManyPatterns(stored, max_patterns)
        if max_size is not None and len(level[0]) >= max_size:
            break  # the next level would be built only to be thrown away
        level = _extend(fit, sorted(options), set(known), deadline, max_patterns)
    return known, True


def enumerate_patterns(profile: Profile, demands: list[Demand], policy: str,
                       deadline: float = math.inf, max_patterns: int = MAX_PATTERNS_DEFAULT,
                       max_batch_vectors: int = MAX_BATCH_VECTORS_DEFAULT) -> tuple[list[Pattern], bool]:
    """Every fitting subset once, with its least total share; False when cut short."""
    known, complete = fitting(profile, demands, policy, deadline=deadline, max_patterns=max_patterns,
                              max_batch_vectors=max_batch_vectors)
    out = []
    for members, vectors in known.items():
        vec = min(vectors, key=lambda v: vectors[v].sum())
        out.append((members, vectors[vec], np.array(vec)))
    return out, complete


def _vectors(members: tuple[int, ...], options: dict[int, list[int]], known: Known) -> list[tuple[float, ...]]:
    """Batch vectors worth trying: every one-smaller subset fits with its part of the vector."""
    if len(members) == 1:
        return [(float(b),) for b in options[members[0]]]
    out = []
    for head in known.get(members[:-1], {}):
        for b in options[members[-1]]:
            vec = (*head, float(b))
            if all(vec[:d] + vec[d + 1:] in known.get(members[:d] + members[d + 1:], {})
                   for d in range(len(members) - 1)):
                out.append(vec)
    return out


class EnumerationTooLarge(InputError):
    """The enumeration would pass one of its memory bounds (milp then does without pair conflicts)."""


class TooManyPatterns(EnumerationTooLarge):
    """More fitting (subset, batch vector) pairs than max_patterns: the memory bound."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(
            f"patterns: more than {limit:,} fitting (subset, batch vector) pairs ({count:,} so far), "
            f"the bound on its memory: too many workloads fit together for enumeration; use --solver milp")


class TooManyBatchVectors(EnumerationTooLarge):
    """Policy `joint`: one subset has more batch combinations than the enumeration tries."""

    def __init__(self, demands: list[Demand], members: tuple[int, ...], count: int, limit: int) -> None:
        names = ", ".join(repr(demands[i].name) for i in members)
        super().__init__(
            f"patterns: under batch policy joint the workloads {names} have {count} batch "
            f"combinations (at most {limit} per subset are enumerated, as each "
            f"workload may use any batch up to its paper batch); use --batch-policy paper, or "
            f"--solver milp, which does not enumerate subsets")
        self.members = members


def _fit_subset(profile: Profile, demands: list[Demand], members: tuple[int, ...], options: dict[int, list[int]],
                known: Known, deadline: float = math.inf, max_batch_vectors: int = MAX_BATCH_VECTORS_DEFAULT) -> bool:
    vectors = _vectors(members, options, known)
    if len(vectors) > max_batch_vectors:
        raise TooManyBatchVectors(demands, members, len(vectors), max_batch_vectors)
    for n, vec in enumerate(vectors):
        if n % 64 == 63 and time.perf_counter() > deadline:
            return False  # the caller sees the deadline passed and stops

        start = _start(profile, demands, members, vec, known)
        batch = np.array(vec, dtype=float)
        shares = least_shares(profile, demands, list(members), batch, start)
        if shares is None:
            continue
        known.setdefault(members, {})[vec] = shares
    return members in known


def _extend(fitting: list[tuple[int, ...]], items: list[int], fits: set[tuple[int, ...]],
            deadline: float = math.inf, max_patterns: int = MAX_PATTERNS_DEFAULT) -> list[tuple[int, ...]]:
    """Candidates one larger whose every one-smaller subset fits (Apriori); cut short past the
    deadline (the caller then stops) and refused past max_patterns candidates (memory)."""
    out: list[tuple[int, ...]] = []
    for members in fitting:
        if time.perf_counter() > deadline:
            break
        if len(out) > max_patterns:
            raise TooManyPatterns(len(out), max_patterns)
        for j in items:
            if j <= members[-1]:
                continue
            cand = (*members, j)
            if all(cand[:d] + cand[d + 1:] in fits for d in range(len(cand))):
                out.append(cand)
    return out


def build_model(patterns: list[Pattern], items: list[int]) -> pyo.ConcreteModel:
    """Set partitioning: z[p] = 1 when pattern p is one GPU; each shareable demand in exactly one
    chosen pattern; fewest patterns. Indexed by P (patterns) and I (shareable demands, by index)."""
    m = pyo.ConcreteModel(name="igniter-patterns")
    m.P = pyo.RangeSet(0, len(patterns) - 1, doc="patterns p (fitting subsets)")
    m.I = pyo.Set(initialize=items, ordered=True, doc="shareable demands i (index in demands)")
    m.z = pyo.Var(m.P, domain=pyo.Binary)
    m.obj = pyo.Objective(expr=pyo.quicksum(m.z[p] for p in m.P))
    cover: dict[int, list[int]] = {i: [] for i in items}
    for p, (members, _, _) in enumerate(patterns):
        for i in members:
            cover[i].append(p)
    m.cover = pyo.Constraint(m.I, rule=lambda m, i: pyo.quicksum(m.z[p] for p in cover[i]) == 1)
    return m


def partition(patterns: list[Pattern], items: list[int], time_limit: float,
              options: HighsOptions, deadline: float | None = None) -> tuple[str, list[Pattern], float | None]:
    """Build the set-partitioning model and solve it: (status, chosen patterns, dual bound)."""
    m = build_model(patterns, items)
    status, found, bound = run_highs(m, time_limit, options, deadline=deadline)
    chosen = [patterns[p] for p in m.P if found and pyo.value(m.z[p]) > 0.5]
    return status, chosen, bound


def _volume_bound(profile: Profile, cfgs: list[Configs]) -> int:
    """GPUs the least shares alone need: ceil(sum of each workload's least share / capacity)."""
    units = sum(float(c.units.min()) for c in cfgs)
    return math.ceil(units / capacity_units(profile.hardware) - 1e-9)


def _stopped(plan: Plan, instance: Instance, profile: Profile, demands: list[Demand], cfgs: list[Configs], status: str,
             why: str) -> Plan:
    """Time limit or Ctrl-C before a proof: the best verified heuristic plan, the volume bound.

    The heuristics get STOPPED_SECONDS; then each opens a GPU per remaining workload."""
    order = [c.demand for c in sorted(cfgs, key=lambda c: -float(c.units.min()))]
    best = best_heuristic(instance, profile, demands, order, "patterns", time.perf_counter() + STOPPED_SECONDS)
    replicas = plan.num_gpus
    plan.status = status
    plan.lower_bound = replicas + _volume_bound(profile, cfgs)
    if best is not None:
        plan.gpus = best.gpus
        plan.gap = round((plan.num_gpus - plan.lower_bound) / plan.num_gpus, 6)
        if plan.lower_bound >= plan.num_gpus:
            plan.status, plan.gap = "optimal", 0.0
        plan.message = f"{why}: the best heuristic plan, not proven optimal" if plan.status != "optimal" else ""
    else:
        plan.gpus = []
        plan.message = f"{why}: no verified plan yet"
    return plan


def solve(instance: Instance, profile: Profile, demands: list[Demand], options: PatternsOptions) -> Plan:
    """Minimum GPUs by set partitioning over all fitting subsets.

    options.time_limit bounds the whole call. When it cuts the enumeration short, or Ctrl-C
    stops it, the plan is the best verified heuristic plan with status time_limit (interrupted)
    and the volume lower bound: never "infeasible", which only a complete proof may say.
    """
    begin = time.perf_counter()
    deadline = begin + options.time_limit
    policy = instance.batch_policy
    items = [i for i, d in enumerate(demands) if not d.full_gpu]
    if len(items) > LIMIT and not options.force:
        raise InputError(f"patterns: {len(items)} shareable workloads is above the limit of {LIMIT} "
                         f"(the subsets grow as 2^n); pass --force to enumerate anyway, or use --solver milp")
    plan = Plan(instance=instance.name, solver="patterns", profile=profile.name, status="optimal",
                gpus=replica_gpus(demands))
    if not items:
        plan.lower_bound, plan.gap = plan.num_gpus, 0.0
        return plan
    cfgs = shareable_configs(profile, demands, policy)  # InfeasibleError naming a workload no GPU serves
    try:
        # the enumeration stops at ENUM_SHARE of the limit: the rest is for the fallback plan
        patterns, complete = enumerate_patterns(profile, demands, policy, begin + ENUM_SHARE * options.time_limit,
                                                options.max_patterns, options.max_batch_vectors)
    except DeadlineReached:
        patterns, complete = [], False
    except KeyboardInterrupt:
        raise SolveInterrupted(_stopped(plan, instance, profile, demands, cfgs, "interrupted",
                                        "interrupted while enumerating subsets")) from None
    if not complete:
        return _stopped(plan, instance, profile, demands, cfgs, "time_limit",
                        f"time limit of {options.time_limit:g} s reached while enumerating subsets")
    if not all((i,) in {p[0] for p in patterns} for i in items):
        raise InfeasibleError("patterns: some workload fits no GPU even alone")
    status, chosen, bound = partition(patterns, items, options.time_limit, options, deadline)
    if not chosen:
        if status == "infeasible":
            raise InfeasibleError("patterns: no partition of the workloads into fitting subsets exists")
        stop = "interrupted" if status == "interrupted" else "time_limit"
        why = "interrupted" if stop == "interrupted" else \
            f"time limit of {options.time_limit:g} s reached before HiGHS found a partition ({status})"
        out = _stopped(plan, instance, profile, demands, cfgs, stop, why)
        if stop == "interrupted":
            raise SolveInterrupted(out)
        return out
    replicas = plan.num_gpus
    plan.gpus += [GpuPlan([placed(demands[i], float(s), int(b)) for i, s, b in zip(*p)]) for p in chosen]
    lb = math.ceil(bound - 1e-6) if bound is not None and math.isfinite(bound) else _volume_bound(profile, cfgs)
    plan.lower_bound = min(replicas + lb, plan.num_gpus)
    plan.status = "optimal" if status == "optimal" or plan.lower_bound >= plan.num_gpus else (
        "interrupted" if status == "interrupted" else "time_limit")
    plan.gap = round((plan.num_gpus - plan.lower_bound) / plan.num_gpus, 6)
    return plan


SOLVER = FunctionSolver("patterns", solve, PatternsOptions.from_common)
