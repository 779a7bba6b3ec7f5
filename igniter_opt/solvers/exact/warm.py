"""Warm re-plans: a finished exact solve exported, and a new solve started from it (issue 24).

The service re-plans after one change (a rate moves, a workload leaves or arrives). Most of the
previous solve still holds: a GPU configuration's feasibility depends only on its members'
demands (model, SLO, rate, batch), so every column whose members all keep their demand is a
column of the new instance as it is. `ExactWarmStart` keeps what a solve found: its column pool
(members as demand signatures, with their least shares), its plan (workload names and batches per
GPU), its proven bound and its root's best Farley certificate (type duals pi >= 0 and v with every
configuration's dual sum at most v). `seed` maps it onto a new instance (and warmproof.py proves
what it can of the result before branch-and-price goes on):

- columns: kept as they are when their members' demands are all still there; a member whose
  workload changed is replaced by its new demand and the column re-checked by the oracle (a
  stale one that no longer fits is rejected), a removed member is dropped (downward closed);
- incumbent: the previous plan repaired for the change (changed and new workloads first fit onto
  its GPUs, least shares recomputed by the oracle), when it uses fewer GPUs than the seeds;
- bound, never an old one the change could lower: (a) a Farley bound from the old certificate,
  each type's dual the least of its workloads' old duals, a changed or new workload's 0 (a
  configuration of the new instance without those members is one of the old instance, so its
  dual sum stays at most v), except where the change is harder at the same batch (rate up or SLO
  down, paper policy: the new member needs at least the old one's share, so the old dual stays);
  (b) monotonicity: when every change is harder or an arrival, every new plan is an old plan with
  the same GPUs, so the old proven bound holds. A decrease or a removal keeps neither.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from igniter_opt.data.plan import GpuPlan
from igniter_opt.model.predict import Array
from igniter_opt.solvers.exact import warmpieces, warmrepair
from igniter_opt.solvers.exact.bnp import BranchAndPrice
from igniter_opt.solvers.exact.cuts import cover_value
from igniter_opt.solvers.exact.master import Column
from igniter_opt.solvers.exact.pricing import Pricer
from igniter_opt.solvers.exact.splits import SplitWorkload
from igniter_opt.solvers.sizing import Demand

# a member's key: owner ("" for a workload; a split workload's name for one of its rate levels),
# model, SLO (ms), rate (req/s), batch. A configuration's fit depends only on its members' keys.
Signature = tuple[str, str, float, float, int]


def signature(d: Demand, batch: int | None = None, owner: str = "") -> Signature:
    """A demand's key at `batch` (default its paper batch)."""
    return (owner, d.model, float(d.slo_ms), float(d.rate_rps), int(d.batch if batch is None else batch))


class CatalogueView(Protocol):
    """What the warm start reads of solver.Catalogue (types, options, rows, split workloads)."""

    @property
    def type_demands(self) -> list[list[int]]: ...

    @property
    def option_type(self) -> Array: ...

    @property
    def option_batch(self) -> Array: ...

    @property
    def type_row(self) -> Array: ...

    @property
    def type_weight(self) -> Array: ...

    @property
    def row_demand(self) -> Array: ...

    @property
    def caps(self) -> Array: ...

    @property
    def splits(self) -> tuple[SplitWorkload, ...]: ...

    @property
    def type_piece(self) -> tuple[Demand | None, ...]: ...


@dataclass(frozen=True)
class ExactWarmStart:
    """What a finished exact solve hands to the next re-plan (kept in memory, never persisted)."""

    profile: str
    policy: str
    margin_pct: float
    workloads: dict[str, Signature]  # every workload of the solved instance (a split one at its whole rate)
    batches: dict[str, tuple[int, ...]]  # each unsplit workload's batch options (the paper batch, or joint's)
    columns: tuple[tuple[tuple[Signature, ...], tuple[float, ...]], ...]  # member keys, least shares
    plan: tuple[tuple[Signature, ...], ...]  # per GPU: its members' keys (a workload's at its batch)
    names: tuple[tuple[str, ...], ...]  # per GPU: its members' names
    lower: int  # the proven lower bound on GPUs
    duals: dict[Signature, float] = field(default_factory=dict)  # per member key: its type's dual in the certificate
    v_max: float | None = None  # every configuration's dual sum is at most this; None: no certificate


@dataclass
class WarmStats:
    """What a warm start did: columns kept as they are, re-checked (kept / rejected as stale),
    the repaired plan's GPUs and the bound it started from."""

    kept: int = 0
    rechecked: int = 0
    rejected: int = 0
    rejected_columns: list[tuple[Signature, ...]] = field(default_factory=list)  # stale members, new keys
    repaired_gpus: int | None = None
    lower: int = 0
    bound_from: str = "a-priori"


@dataclass
class WarmRecord:
    """A sink a solve fills (ExactOptions.record): its warm start and, when it started warm, what
    the warm start did."""

    last: ExactWarmStart | None = None
    stats: WarmStats | None = None


@dataclass
class WarmSeed:
    """A warm start mapped onto the new instance: columns, repaired incumbent, first bound,
    the carried certificate (type duals, v_max), and the type of the one changed workload whose
    dual the certificate had to drop (None when there is no such single type)."""

    columns: list[Column]
    incumbent: list[Column] | None
    lower: int
    certificate: tuple[Array, float] | None
    stats: WarmStats
    forced: int | None = None


def applies(warm: ExactWarmStart, profile: str, policy: str, margin_pct: float) -> bool:
    """Can `warm` seed a solve? The same profile, batch policy and margin."""
    return warm.profile == profile and warm.policy == policy and math.isclose(warm.margin_pct, margin_pct)


def _harder(old: Signature, new: Signature) -> bool:
    """A workload at the same batch, SLO no looser and rate no lower: the new member needs at
    least the old one's share beside any co-runners, and interferes as much at the same share."""
    return old[0] == new[0] == "" and old[1] == new[1] and old[4] == new[4] and new[2] <= old[2] and new[3] >= old[3]


def option_keys(cat: CatalogueView, demands: list[Demand]) -> list[Signature]:
    """Each option's member key: its type's workloads' signature at the option's batch, or the
    rate level's (owner: the split workload)."""
    keys = []
    for t, b in zip(cat.option_type.tolist(), cat.option_batch.tolist()):
        piece = cat.type_piece[t] if cat.type_piece else None
        keys.append(signature(piece, int(b), piece.replica_of or "") if piece is not None
                    else signature(demands[cat.type_demands[t][0]], int(b)))
    return keys


def workload_keys(cat: CatalogueView, demands: list[Demand]) -> dict[str, Signature]:
    """Each workload's key at its paper batch; a split workload's at its whole rate (owner "*")."""
    out = {demands[i].name: signature(demands[i]) for members in cat.type_demands for i in members}
    for sw in cat.splits:
        p = sw.pieces[0]
        out[sw.name] = ("*", p.model, float(p.slo_ms), float(sw.rate_rps), 0)
    return out


def seed(warm: ExactWarmStart, demands: list[Demand], cat: CatalogueView, pricer: Pricer) -> WarmSeed:
    """Map a warm start onto the new instance's options (see the module's docstring)."""
    stats = WarmStats()
    keys = option_keys(cat, demands)
    key_option = {k: o for o, k in enumerate(keys)}
    cap = {k: int(cat.caps[t]) for k, t in zip(keys, cat.option_type.tolist())}
    new = workload_keys(cat, demands)
    changed = {n for n, s in new.items() if warm.workloads.get(n) != s}
    gone = [n for n in warm.workloads if n not in new]
    # an old member key that may be missing now: the workloads that had it and changed or left
    moved: dict[Signature, list[str]] = {}
    for n in sorted(changed | set(gone)):
        if n in warm.workloads:
            moved.setdefault(warm.workloads[n], []).append(n)
    by_name = {d.name: d for d in demands}
    columns = []
    for members, shares in warm.columns:
        col = _map_column(members, shares, key_option, cap, moved, by_name, pricer, stats)
        if col is not None:
            columns.append(col)
    movable = {o for o, t in enumerate(cat.option_type.tolist()) if cat.type_demands[t]}  # not a rate level
    incumbent = _repair(warm, demands, key_option, changed, pricer, movable, tuple(cat.splits))
    stats.repaired_gpus = None if incumbent is None else len(incumbent)
    certificate, lower = _certificate(warm, cat, demands, keys, new, changed)
    stats.lower, stats.bound_from = lower, "certificate" if certificate is not None else "a-priori"
    if warm.policy == "paper" and all(n not in warm.workloads or _harder(warm.workloads[n], new[n])
                                      for n in changed) and not gone and warm.lower > lower:
        stats.lower, stats.bound_from = warm.lower, "monotone"
    forced = None
    alone = [t for t, members in enumerate(cat.type_demands) if any(demands[i].name in changed for i in members)]
    if certificate is not None and len(alone) == 1 and len(cat.type_demands[alone[0]]) == 1 and \
            certificate[0][alone[0]] == 0:
        forced = alone[0]
    return WarmSeed(columns, incumbent, stats.lower, certificate, stats, forced)


def start(bnp: BranchAndPrice, warm: WarmSeed) -> None:
    """A prepared search started warm: the mapped columns in its master, the repaired plan as
    incumbent when it uses fewer GPUs than the seeds, the first bound and the carried certificate."""
    bnp.master.add_many(warm.columns)
    if warm.incumbent is not None:
        bnp.master.add_many(warm.incumbent)
        if len(warm.incumbent) < bnp.upper:
            bnp.incumbent, bnp.upper = list(warm.incumbent), len(warm.incumbent)
    bnp.lower = max(bnp.lower, warm.lower)
    bnp.certificate = warm.certificate
    # the warm pool's LP is near its optimum: the root proves its bound before it dives (the dive
    # from the warm LP is warmproof.settle's, where one GPU fewer closes the gap)
    bnp.root_dives = False
    bnp.stats.columns = len(bnp.master.columns)


def _map_column(members: tuple[Signature, ...], shares: tuple[float, ...], key_option: dict[Signature, int],
                cap: dict[Signature, int], moved: dict[Signature, list[str]], by_name: dict[str, Demand],
                pricer: Pricer, stats: WarmStats) -> Column | None:
    """An old column as a column of the new options: as it is when every member's key is still
    there (within its count); else the changed workloads at their new demand (paper batch) and the
    removed ones dropped, re-checked by the oracle. None when it cannot be mapped or no longer fits."""
    counts = Counter(members)
    subst: list[Signature] = []
    for s, k in counts.items():
        excess = k - cap.get(s, 0)
        if excess <= 0:
            continue
        who = moved.get(s, [])
        if len(who) < excess:
            return None  # e.g. a rate level of a split workload whose rate changed
        subst += [signature(by_name[n]) for n in who[:excess] if n in by_name]
        counts[s] -= excess
    kept = [s for s, k in counts.items() for _ in range(k)]
    if not subst and len(kept) == len(members):  # every member keeps its demand: valid as it is
        stats.kept += 1
        pairs = sorted(zip((key_option[s] for s in members), shares))
        return Column(tuple(o for o, _ in pairs), tuple(x for _, x in pairs))
    if any(s not in key_option for s in subst):
        return None
    opts = tuple(sorted([key_option[s] for s in kept] + [key_option[s] for s in subst]))
    if not opts or any(k > cap[s] for s, k in Counter(kept + subst).items()):
        return None
    stats.rechecked += 1
    least = pricer.shares_of(opts)
    if least is None:  # a stale column: its changed member no longer fits beside the others
        stats.rejected += 1
        stats.rejected_columns.append(tuple(kept + subst))
        return None
    return Column(opts, tuple(float(x) for x in least))


def _repair(warm: ExactWarmStart, demands: list[Demand], key_option: dict[Signature, int], changed: set[str],
            pricer: Pricer, movable: set[int], splits: tuple[SplitWorkload, ...]) -> list[Column] | None:
    """The previous plan for the new instance: unchanged members stay on their GPUs (least shares
    recomputed); changed and new workloads are placed by first fit (largest least share alone
    first) onto the fullest GPU that still fits them, else by one ejection (a member of a GPU
    makes room and moves to another), else on a GPU of their own; then the lightest GPUs are
    emptied into the others where they fit. A changed split workload keeps its pieces at levels
    that still are levels and covers the rest of its new rate (warmpieces.py). None when a GPU
    cannot be mapped."""
    present = {d.name for d in demands}
    resplit = [sw for sw in splits if sw.name in changed]
    again = {sw.name for sw in resplit}  # changed and still split
    gpus: list[list[int]] = []
    for keys, names in zip(warm.plan, warm.names):
        # a piece (owner k[0]) stays with its unchanged owner; a changed owner's where its level still is one
        stay = [k for k, n in zip(keys, names)
                if ((k[0] not in changed or (k[0] in again and k in key_option)) if k[0] else
                    (n in present and n not in changed))]
        if any(k not in key_option for k in stay):
            return None
        if stay:
            gpus.append([key_option[k] for k in stay])
    loose = sorted((d for d in demands if d.name in changed and d.replica_of is None), key=lambda d: -d.r_lower)
    for d in loose:
        o = key_option.get(signature(d))
        if o is None:
            return None
        warmrepair.place(pricer, gpus, o, movable)
    if not warmpieces.cover(gpus, [(sw, _levels_of(sw.name, key_option)) for sw in resplit],
                            lambda g, o: warmrepair.place(pricer, g, o, movable)):
        return None
    warmrepair.consolidate(pricer, gpus, movable)
    out = []
    for g in gpus:
        key = tuple(sorted(g))
        least = pricer.shares_of(key)
        if least is None:
            return None
        out.append(Column(key, tuple(float(x) for x in least)))
    return out


def _levels_of(name: str, key_option: dict[Signature, int]) -> dict[float, int]:
    """A split workload's rate levels among the new options: rate -> option (keys owned by `name`)."""
    out: dict[float, int] = {}
    for key, o in key_option.items():
        if key[0] == name:
            out[key[3]] = min(o, out.get(key[3], o))
    return out


def _certificate(warm: ExactWarmStart, cat: CatalogueView, demands: list[Demand], keys: list[Signature],
                 new: dict[str, Signature], changed: set[str]) -> tuple[tuple[Array, float] | None, int]:
    """The old certificate carried over: each new option type's dual the least of its members'
    old duals by key (a changed or new workload's 0, unless its change is harder at the same
    batch; a changed split workload's levels 0), valid when every unchanged workload keeps its
    batch options and every unchanged split workload its levels; its Farley bound ceil(pi d / v)."""
    if warm.v_max is None or not warm.duals:
        return None, 0
    n_types = len(cat.type_demands)
    duals = np.zeros(n_types)
    batches: dict[str, set[int]] = {}
    for o, t in enumerate(cat.option_type.tolist()):
        for i in cat.type_demands[t]:
            batches.setdefault(demands[i].name, set()).add(int(cat.option_batch[o]))
    for name, found in batches.items():
        if name not in changed and tuple(sorted(found)) != warm.batches.get(name):
            return None, 0  # an unchanged workload with other batch options: the old search covered others
    type_key: dict[int, Signature] = {}
    for t, key in zip(cat.option_type.tolist(), keys):
        type_key.setdefault(t, key)  # the paper option's key stands for the type's workloads below
    for t in range(n_types):
        piece = cat.type_piece[t] if cat.type_piece else None
        if piece is not None:
            if piece.replica_of in changed:
                continue
            if type_key[t] not in warm.duals:
                return None, 0  # an unchanged split workload with a level the old search did not have
            duals[t] = warm.duals[type_key[t]]
            continue
        values = []
        for i in cat.type_demands[t]:
            name = demands[i].name
            old = warm.workloads.get(name)
            harder = old is not None and warm.policy == "paper" and _harder(old, new[name])
            values.append(warm.duals.get(old, 0.0) if old is not None and (name not in changed or harder) else 0.0)
        duals[t] = min(values) if values else 0.0
    bound = cover_value(duals, cat.type_row, cat.type_weight, cat.row_demand) / warm.v_max
    return (duals, warm.v_max), max(0, math.ceil(bound - 1e-6))


def export(profile: str, policy: str, margin_pct: float, demands: list[Demand], cat: CatalogueView,
           columns: list[Column], certificate: tuple[Array, float] | None, plan: list[GpuPlan],
           lower: int) -> ExactWarmStart:
    """A finished solve as a warm start: its columns by member keys, its plan, bound and
    certificate (per key: the least dual of the types with that key)."""
    keys = option_keys(cat, demands)
    cols = tuple((tuple(keys[o] for o in c.members), c.shares) for c in columns)
    options: dict[str, set[int]] = {}
    for o, t in enumerate(cat.option_type.tolist()):
        for i in cat.type_demands[t]:
            options.setdefault(demands[i].name, set()).add(int(cat.option_batch[o]))
    duals: dict[Signature, float] = {}
    if certificate is not None:
        for o, t in enumerate(cat.option_type.tolist()):
            value = float(certificate[0][t])
            duals[keys[o]] = min(value, duals.get(keys[o], value))
    by_name = {d.name: d for d in demands}
    plan_keys, names = [], []
    for g in plan:
        gk = []
        for w in g.workloads:
            d = by_name.get(w.name)
            if d is not None and d.replica_of is None:
                gk.append(signature(d, int(w.batch)))
            else:  # a rate level of a split workload, named <workload>#k
                gk.append((w.name.rsplit("#", 1)[0], w.model, float(w.slo_ms), float(w.rate_rps), int(w.batch)))
        plan_keys.append(tuple(gk))
        names.append(tuple(w.name for w in g.workloads))
    return ExactWarmStart(
        profile=profile, policy=policy, margin_pct=margin_pct, workloads=workload_keys(cat, demands),
        batches={n: tuple(sorted(b)) for n, b in options.items()}, columns=cols, plan=tuple(plan_keys),
        names=tuple(names), lower=int(lower), duals=duals,
        v_max=None if certificate is None else float(certificate[1]))
