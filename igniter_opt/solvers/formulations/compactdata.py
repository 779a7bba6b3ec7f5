"""Data of the compact MILP (`compact.py`): configurations, bounds, conflicts, warm start.

`prepare` computes what `compact.build_model` builds the model from, within the deadline: the
shareable configurations (dominance-pruned), the pair conflicts and least shared shares, the
knapsack bounds, the packing lower bound and the best verified heuristic plan as warm start.
Past the deadline each strengthening falls back to its sound default (no conflicts, volume bound).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field

from igniter_opt.data.errors import DeadlineReached, SolveInterrupted
from igniter_opt.data.instance import Instance
from igniter_opt.data.plan import Plan
from igniter_opt.model import Profile
from igniter_opt.solvers.formulations.bounds import Bounds, interference_bounds, packing_lower_bound, prune
from igniter_opt.solvers.formulations.common import Configs, capacity_units, shareable_configs
from igniter_opt.solvers.formulations.patterns import MAX_BATCH_VECTORS_DEFAULT, EnumerationTooLarge, fitting
from igniter_opt.solvers.heuristics.firstfit import best_heuristic
from igniter_opt.solvers.sizing import Demand


@dataclass(frozen=True)
class CompactFeatures:
    """The model's strengthenings (its formulation variants), all on by default.

    benchmarks/bench_solvers.py --ablate passes variants with one switched off to measure what each
    buys (docs/exact.md).
    """

    dominance: bool = True  # prune dominated configurations
    pairs: bool = True  # pair fixed points: conflicts and least shared shares
    packing_bound: bool = True  # Martello-Toth style bound with conflicts (else the volume bound)
    cliques: bool = True  # conflict-clique and shared-share rows
    bound_stop: bool = True  # stop without a model when the heuristic meets the bound


@dataclass
class CompactData:
    """Everything the compact model is built from."""

    profile: Profile
    demands: list[Demand]
    cfgs: list[Configs]  # position q = model order (largest least shared share first)
    bounds: Bounds | None  # None when the deadline passed before they were computed
    gpus: int  # GPUs the model may open (the best heuristic's count when its plan verifies)
    lower: int  # packing bound over least shared shares and conflicts (bounds.packing_lower_bound)
    start: list[list[tuple[int, int]]] | None  # warm start: per GPU, (q, k)
    incumbent: Plan | None  # the best verified heuristic plan
    conflicts: set[tuple[int, int]]  # positions (q, q') that cannot share a GPU
    shared_units: list[float]  # per position: least share in units when sharing a GPU
    features: CompactFeatures = field(default_factory=CompactFeatures)


HEURISTIC_SHARE = 0.4  # of the time left, at most for the heuristic incumbent


def _heuristic(instance: Instance, profile: Profile, demands: list[Demand], cfgs: list[Configs],
               deadline: float = math.inf) -> Plan | None:
    """The better verified plan of the greedy and the fixed-point first fit (None if neither),
    found within HEURISTIC_SHARE of the time left before `deadline`."""
    order = [c.demand for c in sorted(cfgs, key=lambda c: -float(c.units.min()))]
    now = time.perf_counter()
    until = now + HEURISTIC_SHARE * (deadline - now) if math.isfinite(deadline) else None
    return best_heuristic(instance, profile, demands, order, "milp", until)


def _pairs(profile: Profile, demands: list[Demand], policy: str, deadline: float = math.inf,
           max_batch_vectors: int = MAX_BATCH_VECTORS_DEFAULT
           ) -> tuple[set[tuple[int, int]], dict[int, float]] | None:
    """Pairs that cannot share a GPU, and each demand's least share when it shares one (None when
    the deadline cut the pair fixed points short, or a pair has more joint batch combinations than
    the enumeration tries: an untried pair is no conflict, so the model stays exact)."""
    try:
        known, complete = fitting(profile, demands, policy, max_size=2, deadline=deadline,
                                  max_batch_vectors=max_batch_vectors)
    except EnumerationTooLarge:
        return None
    if not complete:
        return None
    items = sorted(m[0] for m in known if len(m) == 1)
    conflicts = {(a, b) for a in items for b in items if a < b and (a, b) not in known}
    least = {i: min(float(s.min()) for s in known[(i,)].values()) for i in items}
    shared = {i: math.inf for i in items}
    for (a, b), vectors in ((m, v) for m, v in known.items() if len(m) == 2):
        for s in vectors.values():
            shared[a], shared[b] = min(shared[a], s[0]), min(shared[b], s[1])
    return conflicts, {i: shared[i] if shared[i] < math.inf else least[i] for i in items}


def start_from_plan(plan: Plan, demands: list[Demand], cfgs: list[Configs]) -> list[list[tuple[int, int]]] | None:
    """The plan's shared GPUs as (position, configuration) lists, ordered so that GPU j's members
    all sit at positions >= j (the model's symmetry breaking); None if a configuration is missing."""
    pos = {demands[c.demand].name: q for q, c in enumerate(cfgs)}
    gpus = []
    for g in plan.gpus:
        found = [(pos[w.name], cfgs[pos[w.name]].index_of(w.batch, w.resource_pct))
                 for w in g.workloads if w.name in pos]
        members = [(q, k) for q, k in found if k is not None]
        if len(members) < len(found):
            return None
        if members:
            gpus.append(sorted(members))
    return sorted(gpus)


def prepare(instance: Instance, profile: Profile, demands: list[Demand], policy: str,
            deadline: float = math.inf, features: CompactFeatures | None = None,
            max_batch_vectors: int = MAX_BATCH_VECTORS_DEFAULT) -> CompactData:
    """Configurations (pruned), bounds, pair conflicts, GPU limit and warm start of an instance.

    Past the deadline (a time.perf_counter() value) the optional strengthenings are skipped with
    their sound fallbacks (no pair conflicts, volume bound), so that the heuristic plan and a valid
    lower bound are ready as soon as possible; `solve` then stops before building the model.
    """
    features = features or CompactFeatures()
    cfgs = shareable_configs(profile, demands, policy)
    best = _heuristic(instance, profile, demands, cfgs, deadline)
    try:
        return _prepare_from(profile, demands, policy, deadline, features, cfgs, best, max_batch_vectors)
    except KeyboardInterrupt:  # Ctrl-C while preparing: the heuristic plan is the incumbent
        if best is None:
            raise
        raise SolveInterrupted(dataclasses.replace(
            best, solver="milp", status="interrupted",
            message="interrupted while preparing the model: the best heuristic plan")) from None


def _prepare_from(profile: Profile, demands: list[Demand], policy: str, deadline: float,
                  features: CompactFeatures, cfgs: list[Configs], best: Plan | None,
                  max_batch_vectors: int = MAX_BATCH_VECTORS_DEFAULT) -> CompactData:
    """prepare() once the heuristic incumbent is known."""
    hw = profile.hardware
    keep: dict[int, set[tuple[int, float]]] = {c.demand: set() for c in cfgs}
    if best is not None:
        index = {demands[c.demand].name: c.demand for c in cfgs}
        for w in best.workloads():
            if w.name in index:
                keep[index[w.name]].add((w.batch, w.resource_pct))

    def late() -> bool:
        return time.perf_counter() > deadline

    if features.dominance and not late():
        try:
            cfgs, _ = prune(hw, cfgs, keep, rounds=3, deadline=deadline)
        except DeadlineReached:
            pass  # the configurations unpruned: a sound superset
    pairs = _pairs(profile, demands, policy, deadline, max_batch_vectors) if features.pairs and not late() else None
    if pairs is not None:
        conflicts, shared = pairs
    else:
        conflicts, shared = set(), {c.demand: float(c.share.min()) for c in cfgs}
    cfgs.sort(key=lambda c: -shared[c.demand])
    try:  # past the deadline `solve` stops before building the model, the only user of the bounds
        bounds: Bounds | None = interference_bounds(hw, cfgs, deadline)
    except DeadlineReached:
        bounds = None
    pos = {c.demand: q for q, c in enumerate(cfgs)}
    units = [shared[c.demand] / hw.unit_pct for c in cfgs]
    edges = {(min(pos[a], pos[b]), max(pos[a], pos[b])) for a, b in conflicts}
    cap = capacity_units(hw)
    lower = (packing_lower_bound(units, edges, cap) if features.packing_bound and not late()
             else math.ceil(sum(units) / cap - 1e-9))
    start = start_from_plan(best, demands, cfgs) if best is not None else None
    gpus = len(start) if start is not None else len(cfgs)
    return CompactData(profile, demands, cfgs, bounds, max(gpus, lower), lower, start, best, edges, units,
                       features)
