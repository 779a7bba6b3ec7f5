"""Solver `milp`: the compact MILP of docs/model.md and docs/exact.md on HiGHS through Pyomo (appsi_highs).

x[q,j,k] = 1 when shareable demand q (model order) runs on GPU j in configuration k; y[j] = 1 when
GPU j is used; inc[j] is GPU j's scheduling increase. L2 demand C_j and power P_j are variables
fixed by one equation each in x, the count n_j a linear expression in x. Each non-robust
configuration carries two big-M rows: its budget at full clock (A, clock "full") and under the
power-cap clock drop (B, clock "capped"); together they are T <= L min(1, phi(P)). Every
constraint is indexed by what it is about (see build_model's index sets).
`compactdata.prepare` computes the data (configurations, bounds, greedy warm start), `build_model` the
Pyomo model, `solve` runs HiGHS and returns a plan that `verify` accepts, all within the time limit.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import NamedTuple

import pyomo.environ as pyo

from igniter_opt.data.errors import DeadlineReached, InputError, SolveInterrupted
from igniter_opt.data.instance import Instance
from igniter_opt.data.plan import GpuPlan, Plan
from igniter_opt.model import Profile
from igniter_opt.solvers.base import FunctionSolver, HighsOptions, SolveOptions
from igniter_opt.solvers.colocation import placed, replica_gpus
from igniter_opt.solvers.formulations.bounds import Bounds, worst_context
from igniter_opt.solvers.formulations.common import holds, inc_of
from igniter_opt.solvers.formulations.compactdata import CompactData, CompactFeatures, prepare
from igniter_opt.solvers.formulations.highs import run_highs
from igniter_opt.solvers.formulations.patterns import MAX_BATCH_VECTORS_DEFAULT
from igniter_opt.solvers.sizing import Demand, margin_of
from igniter_opt.solvers.verify import verify

# Memory bound of the model: Pyomo takes ~2.3 kB per x variable to build (measured at n=48, joint),
# appsi's translation about as much again, so at most this many x variables (~2-3 GB) are built
# (the default of CompactOptions.max_model_vars).
MAX_MODEL_VARS_DEFAULT = 500_000


@dataclass(frozen=True)
class CompactOptions(HighsOptions):
    """Options of `milp`: HiGHS's, plus the formulation variant."""

    features: CompactFeatures = CompactFeatures()
    max_model_vars: int = MAX_MODEL_VARS_DEFAULT  # x variables built at most (memory)
    max_batch_vectors: int = MAX_BATCH_VECTORS_DEFAULT  # joint: batch combinations per pair the conflicts try

    @classmethod
    def from_common(cls, common: SolveOptions) -> CompactOptions:
        return cls(time_limit=common.time_limit, threads=common.threads, mip_gap=common.mip_gap,
                   verbose=common.verbose, margin_pct=common.margin_pct)


HEURISTIC_OPTIMAL = "the heuristic plan meets the lower bound: optimal without search"
HEURISTIC_KEPT = "the MILP found no plan with fewer GPUs than the heuristic's within the time limit"
NOT_BUILT = "time limit reached before the model could be built: heuristic plan and combinatorial bound"

# Seconds per x variable that build_model plus appsi's translation take (measured ~2e-4 on a
# 2-core machine at 64 and 100 workloads): the model is not built when the time left is below this.
BUILD_SECONDS_PER_VAR = 2.5e-4


def _warm(model: pyo.ConcreteModel, data: CompactData) -> bool:
    """Load the greedy plan into the model's variables as HiGHS's starting incumbent."""
    if data.start is None:
        return False
    chosen = {(q, j, k) for j, g in enumerate(data.start) for q, k in g}
    for idx in model.X:
        model.x[idx].set_value(1.0 if idx in chosen else 0.0)
    for j in model.J:
        n = len(data.start[j]) if j < len(data.start) else 0
        model.y[j].set_value(1.0 if n else 0.0)
        model.inc[j].set_value(float(inc_of(data.profile.hardware, n)))
        members = data.start[j] if j < len(data.start) else []
        model.l2[j].set_value(sum(float(data.cfgs[q].l2[k]) for q, k in members))
        model.power[j].set_value((data.profile.hardware.idle_power_w if n else 0.0)
                                 + sum(float(data.cfgs[q].power[k]) for q, k in members))
        if hasattr(model, "s"):
            model.s[j].set_value(1.0 if n >= 2 else 0.0)
    return True


class Slot(NamedTuple):
    """Index of a (workload, GPU) pair: demand at model position q may run on GPU j (j <= q)."""

    workload: int
    gpu: int


class Choice(NamedTuple):
    """Index of x: workload q on GPU j in configuration k."""

    workload: int
    gpu: int
    config: int


class BudgetRow(NamedTuple):
    """Index of a budget row: configuration k of workload q on GPU j, at full clock ("full", row A)
    or under the power-cap clock drop ("capped", row B)."""

    workload: int
    gpu: int
    config: int
    clock: str


class CliqueRow(NamedTuple):
    """Index of a clique row: conflict clique c (of `cliques`) on GPU j."""

    clique: int
    gpu: int


def _bounds(data: CompactData) -> Bounds:
    """The knapsack bounds, which exist whenever the model is built (before the deadline)."""
    if data.bounds is None:
        raise DeadlineReached("the interference bounds were not computed in time")
    return data.bounds


def _slots(data: CompactData) -> list[Slot]:
    return [Slot(q, j) for q in range(len(data.cfgs)) for j in range(min(q + 1, data.gpus))]


def _index(data: CompactData) -> list[Choice]:
    return [Choice(q, j, k) for q, c in enumerate(data.cfgs) for j in range(min(q + 1, data.gpus))
            for k in range(len(c))]


Row = tuple[float, float, float, float]  # coefficients of inc, C and P, and the right-hand side


def _rows(data: CompactData, q: int) -> tuple[dict[int, Row], dict[int, Row]]:
    """Big-M rows of demand q: per config k, (coef inc, coef C, coef P, rhs, M) for A and B."""
    hw, cfg, b = data.profile.hardware, data.cfgs[q], _bounds(data)
    alpha = -hw.a_f / hw.max_frequency_mhz  # > 0
    inc_w, l2_w, p_w = worst_context(b, q, cfg)
    p_tot = hw.idle_power_w + p_w
    need_a = ~holds(hw, cfg, inc_w, l2_w, hw.idle_power_w)  # full clock part
    need_b = ~holds(hw, cfg, inc_w, l2_w, p_tot) & (p_tot > hw.power_cap_w)
    rows_a: dict[int, Row] = {}
    rows_b: dict[int, Row] = {}
    for k in range(len(cfg)):
        ts, lim = float(cfg.t_solo[k]), float(cfg.limit[k])  # Python floats: numpy scalars make
        rhs = lim - cfg.t_idle - ts + ts * cfg.k_l2 * float(cfg.l2[k])  # Pyomo expressions slow
        base = (float(cfg.kernels), ts * cfg.k_l2)
        if need_a[k]:
            rows_a[k] = (*base, 0.0, rhs)
        if need_b[k]:
            rows_b[k] = (*base, lim * alpha, rhs + lim * alpha * hw.power_cap_w)
    return rows_a, rows_b


def _big_m(data: CompactData, j: int, row: Row) -> float:
    """Most the row's left side can be on GPU j when its configuration is not chosen, minus rhs."""
    b = _bounds(data)
    c_inc, c_l2, c_p, rhs = row
    return max(0.0, float(c_inc * b.inc_from[j] + c_l2 * b.l2_from[j] + c_p * b.power_from[j] - rhs))


def build_model(data: CompactData) -> pyo.ConcreteModel:
    """The compact MILP (see the module docstring and docs/exact.md).

    Index sets: Q workloads (model positions), J GPUs, QJ the (workload, GPU) slots (j <= q), X the
    (workload, GPU, configuration) choices, BUDGET the budget rows (X plus the clock, full or
    capped); Expressions z[q, j] (is q on GPU j) and n[j] (workloads on GPU j) are shared by the
    rows that use them.
    """
    hw, cfgs = data.profile.hardware, data.cfgs
    m = pyo.ConcreteModel(name="igniter-compact")
    m.Q = pyo.Set(initialize=range(len(cfgs)), ordered=True, doc="workloads (model positions q)")
    m.J = pyo.RangeSet(0, data.gpus - 1, doc="GPUs j")
    m.QJ = pyo.Set(initialize=_slots(data), dimen=2, ordered=True, doc="Slot(workload q, GPU j), j <= q")
    m.X = pyo.Set(initialize=_index(data), dimen=3, ordered=True,
                  doc="Choice(workload q, GPU j, configuration k)")
    m.x = pyo.Var(m.X, domain=pyo.Binary)
    m.y = pyo.Var(m.J, domain=pyo.Binary)
    m.inc = pyo.Var(m.J, domain=pyo.NonNegativeReals)
    on: dict[int, list[tuple[int, int]]] = {j: [] for j in m.J}
    for q, j, k in m.X:
        on[j].append((q, k))
    m.z = pyo.Expression(m.QJ, rule=lambda m, q, j: pyo.quicksum(m.x[q, j, k] for k in range(len(cfgs[q]))))
    m.n = pyo.Expression(m.J, rule=lambda m, j: pyo.quicksum(m.x[q, j, k] for q, k in on[j]))
    m.obj = pyo.Objective(expr=pyo.quicksum(m.y[j] for j in m.J))
    m.assign = pyo.Constraint(m.Q, rule=lambda m, q: pyo.quicksum(
        m.z[q, j] for j in range(min(q + 1, data.gpus))) == 1)
    m.cap = pyo.Constraint(m.J, rule=lambda m, j: pyo.quicksum(
        float(cfgs[q].units[k]) * m.x[q, j, k] for q, k in on[j]) <= _bounds(data).cap * m.y[j])
    m.link = pyo.Constraint(m.QJ, rule=lambda m, q, j: m.z[q, j] <= m.y[j])
    m.order = pyo.Constraint(range(data.gpus - 1), rule=lambda m, j: m.y[j] >= m.y[j + 1])
    m.count = pyo.Constraint(expr=pyo.quicksum(m.y[j] for j in m.J) >= data.lower)
    # C_j and P_j as variables defined by one equation each: every budget row then has at most
    # five nonzeros instead of repeating the two sums (equivalent; 9.2M -> 0.3M nonzeros at n=100).
    m.l2 = pyo.Var(m.J, domain=pyo.Reals)
    m.power = pyo.Var(m.J, domain=pyo.Reals)
    m.l2_def = pyo.Constraint(m.J, rule=lambda m, j: m.l2[j] == pyo.quicksum(
        float(cfgs[q].l2[k]) * m.x[q, j, k] for q, k in on[j]))
    m.power_def = pyo.Constraint(m.J, rule=lambda m, j: m.power[j] == hw.idle_power_w * m.y[j] + pyo.quicksum(
        float(cfgs[q].power[k]) * m.x[q, j, k] for q, k in on[j]))
    _scheduling(m, data)
    _budgets(m, data)
    if data.features.cliques:
        _strengthen(m, data)
    return m


def cliques(n: int, edges: set[tuple[int, int]]) -> list[tuple[int, ...]]:
    """Maximal cliques (grown greedily) covering every conflict edge."""
    adj: dict[int, set[int]] = {v: set() for v in range(n)}
    for a, b in edges:
        adj[a].add(b)
        adj[b].add(a)
    out, covered = [], set()
    for a, b in sorted(edges):
        if (a, b) in covered:
            continue
        clique = {a, b}
        for v in sorted(adj[a] & adj[b], key=lambda v: -len(adj[v])):
            if all(v in adj[u] for u in clique):
                clique.add(v)
        members = tuple(sorted(clique))
        covered |= {(u, v) for u in members for v in members if u < v}
        out.append(members)
    return out


def _strengthen(m: pyo.ConcreteModel, data: CompactData) -> None:
    """Valid rows: conflict cliques share no GPU; least shared shares fill at most one GPU."""
    cfgs = data.cfgs
    found = cliques(len(cfgs), data.conflicts)
    m.CLIQUES = pyo.Set(initialize=[CliqueRow(c, j) for c, members in enumerate(found) for j in range(data.gpus)
                                    if sum(q >= j for q in members) >= 2],
                        dimen=2, ordered=True, doc="CliqueRow(conflict clique c, GPU j)")
    m.clique = pyo.Constraint(m.CLIQUES, rule=lambda m, c, j: pyo.quicksum(
        m.z[q, j] for q in found[c] if q >= j) <= m.y[j])
    m.shared_cap = pyo.Constraint(m.J, rule=lambda m, j: pyo.quicksum(
        data.shared_units[q] * m.z[q, j] for q in range(j, len(cfgs))) <= _bounds(data).cap * m.y[j])


def _scheduling(m: pyo.ConcreteModel, data: CompactData) -> None:
    """inc_j >= a_sch n_j + b_sch when the GPU is shared (indicator s_j only when it matters)."""
    hw = data.profile.hardware
    if hw.a_sch + hw.b_sch <= 0:  # the line is <= 0 at n <= 1: no indicator needed
        m.sched = pyo.Constraint(m.J, rule=lambda m, j: m.inc[j] >= hw.a_sch * m.n[j] + hw.b_sch)
        return
    big = hw.a_sch + hw.b_sch
    n_max = len(data.cfgs)
    m.s = pyo.Var(m.J, domain=pyo.Binary)
    m.sched = pyo.Constraint(m.J, rule=lambda m, j: m.inc[j] >= hw.a_sch * m.n[j] + hw.b_sch - big * (1 - m.s[j]))
    m.shared = pyo.Constraint(m.J, rule=lambda m, j: m.n[j] <= 1 + (n_max - 1) * m.s[j])


def _budgets(m: pyo.ConcreteModel, data: CompactData) -> None:
    """Rows A (full clock) and B (clock dropped under the power cap), switched on by x."""
    rows: dict[BudgetRow, tuple[tuple[float, float, float, float], float]] = {}
    for q in range(len(data.cfgs)):
        for clock, found in zip(("full", "capped"), _rows(data, q)):
            for k, row in found.items():
                for j in range(min(q + 1, data.gpus)):
                    rows[BudgetRow(q, j, k, clock)] = (row, _big_m(data, j, row))
    m.BUDGET = pyo.Set(initialize=list(rows), dimen=4, ordered=True,
                       doc="BudgetRow(workload q, GPU j, configuration k, clock 'full' | 'capped')")

    def rule(m: pyo.ConcreteModel, q: int, j: int, k: int, clock: str) -> object:
        (c_inc, c_l2, c_p, rhs), big = rows[BudgetRow(q, j, k, clock)]
        lhs = c_inc * m.inc[j] + c_l2 * m.l2[j] + big * m.x[q, j, k]
        if c_p:
            lhs = lhs + c_p * m.power[j]
        return lhs <= rhs + big

    m.budget = pyo.Constraint(m.BUDGET, rule=rule)


def _extract(model: pyo.ConcreteModel, data: CompactData) -> list[GpuPlan]:
    gpus: dict[int, GpuPlan] = {}
    for q, j, k in model.X:
        if pyo.value(model.x[q, j, k]) > 0.5:
            cfg = data.cfgs[q]
            w = placed(data.demands[cfg.demand], float(cfg.share[k]), int(cfg.batch[k]))
            gpus.setdefault(j, GpuPlan()).workloads.append(w)
    return [gpus[j] for j in sorted(gpus)]


def x_count(data: CompactData) -> int:
    """How many x variables build_model would create."""
    return sum(len(c) * min(q + 1, data.gpus) for q, c in enumerate(data.cfgs))


def build_seconds(data: CompactData) -> float:
    """Rough cost of build_model plus appsi's translation (BUILD_SECONDS_PER_VAR per x)."""
    return BUILD_SECONDS_PER_VAR * x_count(data)


def solve(instance: Instance, profile: Profile, demands: list[Demand], options: CompactOptions) -> Plan:
    """Minimum GPUs by the compact MILP; falls back to the greedy plan when that is no worse.

    options.time_limit bounds the whole call (preparation, model building, translation, HiGHS):
    when too little is left to build the model, the heuristic plan is returned with status
    time_limit and the lower bound prepared so far; HiGHS gets only what is left.
    """
    begin = time.perf_counter()
    deadline = begin + options.time_limit
    data = prepare(instance, profile, demands, instance.batch_policy, deadline, options.features,
                   options.max_batch_vectors)
    replicas = replica_gpus(demands)
    plan = Plan(instance=instance.name, solver="milp", profile=profile.name, status="optimal")
    try:
        return _solve_prepared(plan, data, replicas, options, deadline)
    except KeyboardInterrupt:  # Ctrl-C outside HiGHS (building the model): the heuristic plan
        raise SolveInterrupted(_finish(plan, None, data, ("interrupted", False, None), replicas)) from None


def _solve_prepared(plan: Plan, data: CompactData, replicas: list[GpuPlan], options: CompactOptions,
                    deadline: float) -> Plan:
    if not data.cfgs:
        plan.gpus, plan.lower_bound, plan.gap = replicas, len(replicas), 0.0
        return plan
    if options.features.bound_stop and data.start is not None and len(data.start) <= data.lower:
        assert data.incumbent is not None  # the warm start is the incumbent's
        gpus = replicas + data.incumbent.gpus[len(replicas):]  # greedy meets the bound: optimal
        plan.gpus, plan.lower_bound, plan.gap = gpus, len(gpus), 0.0
        plan.message = HEURISTIC_OPTIMAL
        return plan
    if time.perf_counter() + build_seconds(data) > deadline:
        plan.message = NOT_BUILT
        return _finish(plan, None, data, ("time_limit", False, None), replicas)
    if x_count(data) > options.max_model_vars:
        raise InputError(f"milp: the model would have {x_count(data):,} binary variables (at most "
                         f"{options.max_model_vars:,}, ~5 kB each to build and hand to HiGHS); use --batch-policy "
                         f"paper, fewer workloads, or --solver greedy")
    model = build_model(data)
    outcome = run_highs(model, options.time_limit, options, warm=_warm(model, data), deadline=deadline)
    return _finish(plan, model, data, outcome, replicas)


def _finish(plan: Plan, model: pyo.ConcreteModel | None, data: CompactData, outcome: tuple[str, bool, float | None],
            replicas: list[GpuPlan]) -> Plan:
    """Pick the MILP incumbent, or the greedy when it is no worse; set status, bound and gap."""
    status, found, bound = outcome
    shared = _extract(model, data) if found else None
    if shared is not None and verify(Plan("", "", "", "optimal", gpus=shared), data.profile,
                                     margin_of(data.demands))[1]:
        plan.message = "milp incumbent failed verify (formulation bug); heuristic plan returned"
        shared = None
    if data.incumbent is not None and (shared is None or len(data.incumbent.gpus) - len(replicas) < len(shared)):
        shared = data.incumbent.gpus[len(replicas):]
        plan.message = plan.message or HEURISTIC_KEPT
    stopped = "interrupted" if status == "interrupted" else "time_limit"
    if shared is None:
        plan.status = "infeasible" if status == "infeasible" else stopped
        plan.message = plan.message or f"HiGHS found no plan ({status})"
        return plan
    plan.gpus = replicas + shared
    lb = max(data.lower, math.ceil(bound - 1e-6)) if bound is not None and math.isfinite(bound) else data.lower
    plan.lower_bound = min(len(replicas) + lb, plan.num_gpus)
    plan.status = "optimal" if plan.lower_bound >= plan.num_gpus else stopped
    plan.gap = round((plan.num_gpus - plan.lower_bound) / plan.num_gpus, 6)
    return plan


SOLVER = FunctionSolver("milp", solve, CompactOptions.from_common)
