"""A seed for datacenter sizes: the workloads dealt into groups of like mix, each solved on its own.

At 500 workloads the root's column generation does not converge within the limit and the plan
it leads to stays 5-8 GPUs above the LP, near the greedy's. A group of about a hundred workloads,
by contrast, is solved to a proven optimum in 15-30 s, and groups dealt from one sorted list hold
the same mix of models and sizes, so each wastes at most part of one GPU: the groups' plans
together are a cover of the whole a few GPUs from its LP. It seeds the whole search (incumbent and
columns), whose neighbourhoods then work on the GPUs the groups left part-empty (docs/exact.md,
"Groups of like mix").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from igniter_opt.solvers.exact.warm import ExactWarmStart
from igniter_opt.solvers.sizing import Demand

T = TypeVar("T")


def partition(demands: list[Demand], size: int) -> list[list[int]]:
    """Indices of the demands in round(n / size) groups of workloads (at least one; a split
    workload's replicas go with it): the workloads sorted by model, then least share (summed over
    their replicas), then name, and dealt in turn, so each group holds every model and size alike."""
    owner = [d.replica_of or d.name for d in demands]
    held: dict[str, list[int]] = {}
    for i, name in enumerate(owner):
        held.setdefault(name, []).append(i)
    order = sorted(held, key=lambda n: (demands[held[n][0]].model, sum(demands[i].r_lower for i in held[n]), n))
    k = max(1, round(len(order) / max(1, size)))
    return [[i for n in order[g::k] for i in held[n]] for g in range(k) if order[g::k]]


def solve_groups(demands: list[Demand], groups: list[list[int]], until: float,
                 search: Callable[[list[Demand], float], T | None]) -> list[T]:
    """Each group searched in turn by `search(its demands, its deadline)`, the time to `until`
    shared evenly among the groups not yet searched (what one leaves goes to the next). Empty when
    any group found nothing: a cover of some groups is not a plan."""
    found = []
    for j, group in enumerate(groups):
        now = time.perf_counter()
        if now >= until:
            return []
        out = search([demands[i] for i in group], now + (until - now) / (len(groups) - j))
        if out is None:
            return []
        found.append(out)
    return found


def merge(found: list[ExactWarmStart]) -> ExactWarmStart:
    """The groups' solves as one warm start of the whole (columns, plans, workloads side by side;
    no bound and no certificate: neither holds for the whole), to be mapped onto its options by
    warm.seed."""
    first = found[0]
    return ExactWarmStart(
        profile=first.profile, policy=first.policy, margin_pct=first.margin_pct,
        workloads={n: s for f in found for n, s in f.workloads.items()},
        batches={n: b for f in found for n, b in f.batches.items()},
        columns=tuple(c for f in found for c in f.columns), plan=tuple(g for f in found for g in f.plan),
        names=tuple(g for f in found for g in f.names), lower=0)
