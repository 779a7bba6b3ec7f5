"""Placement policy `exact`: re-plan the whole set, fewest GPUs first, then fewest disturbed.

Stage 1 (GPU count): branch-and-price (solvers/exact) on every workload gives K_exact GPUs and a
proven lower bound L; the igniter policy's incremental plan is a second candidate; K is the
fewer of the two (a plan over the fleet is refused, naming K and L). The controller keeps its last
stage-1 solve in memory and starts the next one from it (solvers/exact/warm.py: its columns,
repaired plan and certificate; the bound is proven on the new set as before).

Stage 2 (disturbance, with the GPU count fixed at K): a set-partitioning MILP on HiGHS (scipy's
milp) over physical GPU slots. Its columns are one GPU's member set with batches, on a slot:
the exact plan's GPUs, the incremental plan's, and the running GPUs' members (what stays), each
on every slot its members run on now (old GPUs keep their identity) and on a fresh slot. A
column's shares start from the members' running shares (on their own slot) and are raised only as
the model requires. Objective: most running workloads (other than the one the request changes)
whose GPU, share and batch stay; with --max-changes K a hard limit on the others.
The optimum over the columns is proven by HiGHS; over all re-plans it is proven only where it
meets the lower bound on changes (members of GPU slots that must close: the smallest of the
running slots beyond K). The plan's `objectives` say which.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import lil_matrix

from igniter_opt.controller.placement import Unplaceable, demand, gpu_shares, gpus_of, place_igniter
from igniter_opt.controller.records import Placement, Plan, PlanInfo, Spec
from igniter_opt.data.instance import Instance, Workload
from igniter_opt.data.plan import Plan as SolverPlan
from igniter_opt.model import Profile
from igniter_opt.solvers.base import SolveOptions
from igniter_opt.solvers.exact import ExactOptions
from igniter_opt.solvers.exact.warm import WarmRecord
from igniter_opt.solvers.solve import solve


@dataclass(frozen=True)
class Column:
    """One GPU of a candidate plan: members with batches and shares, on a slot (None: a fresh one)."""

    slot: int | None
    members: tuple[str, ...]
    batches: tuple[int, ...]
    shares: tuple[float, ...]
    unchanged: int


MAX_NEIGHBOURS = 4000
Candidate = tuple[tuple[str, ...], tuple[int, ...], tuple[float, ...]]  # names, batches, start shares


def _entry(profile: Profile, specs: list[Spec], batches: list[int]) -> Candidate:
    """A candidate set: names, batches, and the shares to start from off its home slot (least
    share alone at the paper batch, else the unit)."""
    starts = []
    for s, b in zip(specs, batches):
        d = demand(profile, s)
        starts.append(d.r_lower if b == d.batch else profile.hardware.unit_pct)
    return tuple(s.name for s in specs), tuple(batches), tuple(starts)


def _neighbours(profile: Profile, kept: Plan, loose: list[Spec]) -> list[Candidate]:
    """Running GPUs with one change: an arriving workload added (or swapped for a member), or a
    running workload moved in from another GPU; at most MAX_NEIGHBOURS sets."""
    out = []
    gpus = list(gpus_of(kept).values())
    batch = {s.name: demand(profile, s).batch for s in loose}
    for members in gpus:
        specs, batches = [m.spec for m in members], [m.batch for m in members]
        for x in loose:
            out.append(_entry(profile, [*specs, x], [*batches, batch[x.name]]))
            for i in range(len(members)):
                out.append(_entry(profile, [*specs[:i], *specs[i + 1:], x],
                                  [*batches[:i], *batches[i + 1:], batch[x.name]]))
        for other in gpus:
            if other is not members:
                for m in other:
                    out.append(_entry(profile, [*specs, m.spec], [*batches, m.batch]))
        if len(out) > MAX_NEIGHBOURS:
            break
    return out[:MAX_NEIGHBOURS]


def _stage1(profile: Profile, specs: list[Spec], margin_pct: float, time_limit: float,
            batch_policy: str, warm: WarmRecord | None = None) -> SolverPlan:
    """Branch-and-price on every workload; with `warm`, started from the last solve it holds (a
    change that left no usable part of it solves cold) and left holding this one."""
    instance = Instance("service", profile.name, tuple(Workload(s.name, s.model, s.slo_ms, s.rate_rps)
                                                       for s in specs), batch_policy)
    common = SolveOptions(time_limit=time_limit, margin_pct=margin_pct)
    own = None if warm is None else replace(ExactOptions.from_common(common), warm=warm.last, record=warm)
    plan = solve(instance, "exact", profile, common, solver_options=own)
    if plan.status == "infeasible" or not plan.feasible:
        raise Unplaceable("plan", f"the exact solver found no plan: {plan.message or plan.status}")
    return plan


def _columns(profile: Profile, current: Plan, others: set[str], sets: list[tuple[tuple[str, ...], tuple[int, ...],
             tuple[float, ...]]], specs: dict[str, Spec]) -> list[Column]:
    seen: set[tuple[object, ...]] = set()
    out = []
    for members, batches, fallback in sets:
        homes = sorted({current[n].gpu for n in members if n in others})
        for slot in [*homes, None]:
            start = []
            for n, b, f in zip(members, batches, fallback):
                p = current.get(n)
                keep = slot is not None and n in others and p is not None and p.gpu == slot and p.batch == b
                start.append(p.share_pct if keep and p is not None else f)
            shares = gpu_shares(profile, [specs[n] for n in members], list(batches), start)
            if shares is None and slot is None:
                shares = gpu_shares(profile, [specs[n] for n in members], list(batches), list(fallback))
            if shares is None:
                continue
            unchanged = sum(1 for n, b, s in zip(members, batches, shares) if n in others and current[n].gpu == slot
                            and current[n].batch == b and math.isclose(current[n].share_pct, s, abs_tol=1e-9))
            key = (slot, members, batches, tuple(np.round(shares, 9)))
            if key not in seen:
                seen.add(key)
                out.append(Column(slot, members, batches, tuple(float(s) for s in shares), unchanged))
    return out


def _choose(columns: list[Column], names: list[str], k: int, need_unchanged: int,
            time_limit: float) -> tuple[list[Column], bool]:
    """The MILP: exactly k columns covering every name once, one per slot, most unchanged."""
    index = {n: i for i, n in enumerate(names)}
    slots = sorted({c.slot for c in columns if c.slot is not None})
    rows = len(names) + len(slots) + 2
    a = lil_matrix((rows, len(columns)))
    for j, c in enumerate(columns):
        for n in c.members:
            a[index[n], j] = 1
        if c.slot is not None:
            a[len(names) + slots.index(c.slot), j] = 1
        a[rows - 2, j] = 1
        a[rows - 1, j] = c.unchanged
    lower = np.r_[np.ones(len(names)), np.zeros(len(slots)), k, need_unchanged]
    upper = np.r_[np.ones(len(names)), np.ones(len(slots)), k, np.inf]
    cost = -np.array([c.unchanged for c in columns], dtype=float)
    res = milp(cost, integrality=np.ones(len(columns)), bounds=Bounds(0, 1),
               constraints=LinearConstraint(a.tocsr(), lower, upper), options={"time_limit": time_limit})
    if res.x is None:
        return [], False
    return [c for c, x in zip(columns, res.x) if x > 0.5], res.status == 0


def change_bound(current: Plan, others: set[str], k: int) -> int:
    """A valid lower bound on changed workloads: with k GPUs, the running slots beyond k close,
    and every member of a closing slot moves (the slots with the fewest such members close)."""
    counts = sorted(sum(1 for m in members if m.name in others) for members in gpus_of(current).values()
                    if any(m.name in others for m in members))
    return sum(counts[:max(0, len(counts) - k)])


def replan_exact(profile: Profile, fleet: int, current: Plan, specs: list[Spec], subjects: set[str],
                 time_limit: float = 10.0, max_changes: int | None = None,
                 batch_policy: str = "paper", warm: WarmRecord | None = None) -> tuple[Plan, PlanInfo]:
    """The re-plan of `specs` (every workload after the change; `subjects` are the ones the request
    adds or changes) and what was proven about its two objectives. `warm`: the controller's last
    stage-1 solve (in memory), which stage 1 starts from and replaces."""
    if not specs:
        return {}, PlanInfo(policy="exact", status="optimal", lower_bound=0, objectives={})
    by_name = {s.name: s for s in specs}
    for s in specs:
        demand(profile, s)  # one GPU per workload, or Unplaceable
    others = {n for n, p in current.items() if n in by_name and n not in subjects and p.spec == by_name[n]}
    margins = sorted({s.margin_pct for s in specs})
    exact = _stage1(profile, specs, margins[-1], time_limit, batch_policy, warm)  # feasible at every margin
    bound_plan = exact if len(margins) == 1 else _stage1(profile, specs, margins[0], time_limit, batch_policy)
    lower = int(bound_plan.lower_bound) if bound_plan.lower_bound is not None else None  # valid at the loosest
    kept = {n: p for n, p in current.items() if n in others}
    try:
        incremental: Plan | None = place_igniter(profile, fleet, kept, [by_name[n] for n in sorted(set(by_name) -
                                                                                           others)])
    except Unplaceable:
        incremental = None
    k = exact.num_gpus if incremental is None else min(exact.num_gpus, len(gpus_of(incremental)))
    if k > fleet:
        raise Unplaceable("gpus", f"the workloads need {k} GPUs (proven lower bound {lower}), the fleet has {fleet}")
    sets = [(tuple(w.name for w in g.workloads), tuple(w.batch for w in g.workloads),
             tuple(w.resource_pct for w in g.workloads)) for g in exact.gpus]
    for plan in (incremental, kept):
        for members in gpus_of(plan or {}).values():
            sets.append(_entry(profile, [m.spec for m in members], [m.batch for m in members]))
    sets += _neighbours(profile, kept, [by_name[n] for n in sorted(set(by_name) - others)])
    sets = [(ms, bs, fs) for ms, bs, fs in sets if ms]
    columns = _columns(profile, current, others, sets, by_name)
    need = len(others) - max_changes if max_changes is not None else 0
    chosen, proven = _choose(columns, sorted(by_name), k, max(0, need), time_limit)
    if not chosen:
        if max_changes is not None:
            raise Unplaceable("max_changes", f"no re-plan on {k} GPUs changes at most {max_changes} running "
                                             f"workloads (of {len(others)})")
        raise Unplaceable("plan", "no re-plan found over the candidate GPU sets")
    plan = _assign(chosen, current, fleet, by_name)
    unchanged = sum(1 for n in others if plan[n].same_place(current[n]))
    bound = change_bound(current, others, k)
    changed = len(others) - unchanged
    status_changes = "optimal" if changed <= bound else ("best_found" if not proven else "optimal_over_candidates")
    info = PlanInfo(policy="exact", status="optimal" if lower is not None and lower >= k else "time_limit",
                    lower_bound=lower, objectives={
                        "gpus": {"value": k, "lower_bound": lower, "exact_plan": exact.num_gpus,
                                 "status": "optimal" if lower is not None and lower >= k else "time_limit"},
                        "changes": {"value": changed, "lower_bound": bound, "running": len(others),
                                    "status": status_changes, "candidates": len(columns),
                                    "max_changes": max_changes}})
    return plan, info


def _assign(chosen: list[Column], current: Plan, fleet: int, specs: dict[str, Spec]) -> Plan:
    """Columns onto slots: fixed ones where they are, fresh ones on never-used slots first."""
    taken = {c.slot for c in chosen if c.slot is not None}
    running = {p.gpu for p in current.values()}
    free = [g for g in range(fleet) if g not in taken and g not in running] + \
           [g for g in range(fleet) if g not in taken and g in running]
    plan: Plan = {}
    for c in chosen:
        slot = c.slot if c.slot is not None else free.pop(0)
        for n, b, s in zip(c.members, c.batches, c.shares):
            plan[n] = Placement(specs[n], slot, s, b)
    return plan
