"""A cheap improvement phase for exact's incumbent: destroy-and-repair of a few GPUs (issue 24).

When branch-and-price ends with a gap, its incumbent can be worse than what a cheap local
search finds on families where a GPU holds many small workloads (stress-small, heavy-tailed
rates). This phase first tries first fits in random orders (half the phase: the fewest-GPU
verified plan replaces the incumbent when it uses fewer GPUs), then repeatedly takes 2-4 GPUs of
the plan (the least loaded one and random others), re-places their workloads together by the
interference-aware first fit (heuristics.firstfit) in a few orders, and keeps the new plan when
the repair used fewer GPUs and the whole plan verifies (solvers.verify). It never touches the
lower bound, and a plan it returns always verifies, so it can only lower the GPU count.

`multistart` is the reference it is measured against: first fit of all workloads in random
orders, the best verified plan kept (benchmarks/bench_improve.py).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import numpy as np

from igniter_opt.data.errors import InfeasibleError
from igniter_opt.data.plan import GpuPlan, Plan
from igniter_opt.model import Profile
from igniter_opt.solvers.heuristics.firstfit import first_fit
from igniter_opt.solvers.sizing import Demand, margin_of
from igniter_opt.solvers.verify import verify


@dataclass(frozen=True)
class ImproveSettings:
    """Knobs of the improvement phase (to be folded into the exact solver's settings)."""

    share: float = 0.05  # of the time limit reserved for the phase (used only when the solve ends with a gap)
    max_seconds: float = 15.0  # at most this long, whatever the limit
    min_destroy: int = 2  # GPUs taken apart per move, at least
    max_destroy: int = 4  # ... and at most
    orders: int = 4  # first-fit orders tried per move (the first by r_lower, descending; then random)
    seed: int = 0  # of the random choices: the phase is deterministic for a given plan
    restart_share: float = 0.5  # of the phase first goes to first fits in random orders (multistart)


def reserve(settings: ImproveSettings, time_limit: float) -> float:
    """Seconds of the limit set aside for the phase."""
    return min(settings.share * time_limit, settings.max_seconds)


def _verified(gpus: list[GpuPlan], profile: Profile, margin: float) -> bool:
    _, problems = verify(Plan(instance="improve", solver="exact", profile=profile.name, status="time_limit",
                              gpus=gpus), profile, margin)
    return not problems


def _repair(profile: Profile, sub: list[Demand], k: int, rng: np.random.Generator, orders: int,
            deadline: float) -> list[GpuPlan] | None:
    """The fewest-GPU first fit of `sub` over a few orders, when it beats `k` GPUs."""
    best: list[GpuPlan] | None = None
    n = len(sub)
    for t in range(orders):
        if time.perf_counter() > deadline:
            break
        order = sorted(range(n), key=lambda i: -sub[i].r_lower) if t == 0 else [int(i) for i in rng.permutation(n)]
        try:
            gpus = first_fit(profile, sub, order)
        except InfeasibleError:
            continue
        if len(gpus) < (k if best is None else len(best)):
            best = gpus
    return best


def improve(gpus: list[GpuPlan], profile: Profile, demands: list[Demand], deadline: float,
            settings: ImproveSettings | None = None) -> tuple[list[GpuPlan], int]:
    """Destroy-and-repair of the plan's GPUs until `deadline`: the (verified) plan and the moves kept.

    Only GPUs whose every workload is a shareable demand (by name) are taken apart: full-GPU
    replicas and pieces of split workloads stay where they are. The input plan is returned
    unchanged when no move pays or the input does not verify."""
    settings = settings or ImproveSettings()
    margin = margin_of(demands) if demands else 0.0
    by_name = {d.name: d for d in demands if not d.full_gpu}
    plan = list(gpus)
    if len(plan) < 2 or not _verified(plan, profile, margin):
        return list(gpus), 0
    seen = Counter(w.name for g in plan for w in g.workloads)
    by_name = {name: d for name, d in by_name.items() if seen[name] == 1}  # a name placed twice is a piece
    rng = np.random.default_rng(settings.seed)
    kept = 0
    left = deadline - time.perf_counter()
    if settings.restart_share > 0 and left > 0:  # a fresh start may beat the plan (then repair goes on from it)
        try:
            fresh = multistart(profile, demands, settings.restart_share * left, settings.seed + 1)
        except InfeasibleError:
            fresh = plan
        if len(fresh) < len(plan):
            plan, kept = fresh, 1
    while time.perf_counter() < deadline:
        movable = [j for j, g in enumerate(plan) if all(w.name in by_name for w in g.workloads)]
        if len(movable) < 2:
            break
        load = np.array([sum(w.resource_pct for w in plan[j].workloads) for j in movable])
        k = int(rng.integers(settings.min_destroy, settings.max_destroy + 1))
        k = min(k, len(movable))
        first = movable[int(np.argmin(load))] if rng.random() < 0.5 else movable[int(rng.integers(len(movable)))]
        others = [j for j in movable if j != first]
        # the lighter a GPU, the likelier it is taken with it
        weight = 1.0 / (1.0 + np.array([load[movable.index(j)] for j in others]))
        picked = [first] + [others[int(i)] for i in rng.choice(len(others), size=k - 1, replace=False,
                                                                  p=weight / weight.sum())]
        sub = [by_name[w.name] for j in picked for w in plan[j].workloads]
        repaired = _repair(profile, sub, k, rng, settings.orders, deadline)
        if repaired is None:
            continue
        candidate = [g for j, g in enumerate(plan) if j not in picked] + repaired
        if _verified(candidate, profile, margin):
            plan, kept = candidate, kept + 1
    return plan, kept


def random_fits(profile: Profile, demands: list[Demand], until: float, count: int, seed: int = 0
                ) -> list[list[GpuPlan]]:
    """First fits of the shareable demands in up to `count` random orders, until `until` (a
    perf_counter time): seeds of exact's master and incumbent where GPUs hold many workloads."""
    rng = np.random.default_rng(seed)
    shareable = [i for i, d in enumerate(demands) if not d.full_gpu]
    plans: list[list[GpuPlan]] = []
    while len(plans) < count and time.perf_counter() < until:
        order = [shareable[int(i)] for i in rng.permutation(len(shareable))]
        try:
            plans.append(first_fit(profile, demands, order, until))
        except InfeasibleError:
            break
    return plans


def multistart(profile: Profile, demands: list[Demand], seconds: float, seed: int = 0) -> list[GpuPlan]:
    """First fit of every shareable demand in random orders for `seconds` (the first order by
    r_lower, descending), full-GPU replicas alone: the fewest-GPU verified plan found."""
    from igniter_opt.solvers.colocation import replica_gpus

    rng = np.random.default_rng(seed)
    margin = margin_of(demands) if demands else 0.0
    shareable = [i for i, d in enumerate(demands) if not d.full_gpu]
    best: list[GpuPlan] | None = None
    end = time.perf_counter() + seconds
    t = 0
    while best is None or time.perf_counter() < end:
        order = sorted(shareable, key=lambda i: -demands[i].r_lower) if t == 0 else \
            [shareable[int(i)] for i in rng.permutation(len(shareable))]
        t += 1
        gpus = replica_gpus(demands) + first_fit(profile, demands, order)
        if (best is None or len(gpus) < len(best)) and _verified(gpus, profile, margin):
            best = gpus
        if t > 1 and best is None:
            raise InfeasibleError("multistart: no verified first fit")
    return best
