"""The catalogue of a solve: workload types, their (batch) options and the rate levels of split
workloads; plans to and from the master's columns; the a-priori bounds it gives.

`catalogue` groups identical workloads into types (a master row each, covered by a count, as in
cutting stock) and lists each type's options: the paper batch, or under policy `joint` every
batch the dominance rule keeps. `seed_columns` turns verified heuristic plans into columns,
`to_gpus` a chosen set of columns back into GPUs. `volume_bound`, `members_needed` and
`max_members` bound the GPU count before any search.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from igniter_opt.data.errors import InfeasibleError
from igniter_opt.data.plan import GpuPlan
from igniter_opt.model import Profile
from igniter_opt.model.predict import Array
from igniter_opt.solvers.colocation import placed
from igniter_opt.solvers.exact.master import Column
from igniter_opt.solvers.exact.oracle import Options, build_options, clock_ratio, demand_terms, needed_share
from igniter_opt.solvers.exact.pricing import Pricer
from igniter_opt.solvers.exact.settings import DEFAULT
from igniter_opt.solvers.exact.splits import SAME, SplitWorkload, split_workloads_of
from igniter_opt.solvers.sizing import Demand


@dataclass(frozen=True)
class Catalogue:
    """Workload types and their options: what the master's rows and the pricing's items are.

    Types first: one per group of identical workloads (a row of the master each, covered by a
    count). Then one type per rate level of each split workload (splits.py), whose rows are the
    split workloads' (covered by the fractions of their rate the pieces serve)."""

    type_demands: list[list[int]]  # demand indices of each workload type (empty for a piece type)
    option_type: Array
    option_batch: Array
    options: Options
    type_row: Array  # the master row of each type
    type_weight: Array  # what one member covers of its row: 1, or the fraction of the rate a piece serves
    row_demand: Array  # right-hand side of each row: the type's workload count, or 1 (a split workload)
    caps: Array  # most members of a type one column holds (the pricing's multiplicities)
    splits: tuple[SplitWorkload, ...] = ()
    type_piece: tuple[Demand | None, ...] = ()  # per type: the piece demand of a rate level, or None

    @property
    def piece_types(self) -> Array:
        """Types that are rate levels of a split workload (never branched on: not single rows)."""
        return np.array([t for t, p in enumerate(self.type_piece) if p is not None], dtype=np.int64)


def catalogue(profile: Profile, demands: list[Demand], policy: str, aggregate: bool,
              margin_pct: float = 0.0, grid: int = DEFAULT.split_grid) -> Catalogue:
    """Group the unsplit demands into types and list each type's (batch) options; then one type
    per rate level of each split workload (its paper batch at that rate)."""
    groups: dict[tuple[object, ...], list[int]] = {}
    for i, d in enumerate(demands):
        if d.replica_of is not None:
            continue
        key = (d.model, d.slo_ms, d.rate_rps, d.batch) if aggregate else (i,)
        groups.setdefault(key, []).append(i)
    type_demands = list(groups.values())
    splits = tuple(_feasible_pieces(profile, split_workloads_of(profile, demands, grid), margin_pct))
    pieces = [(s, p) for s, sw in enumerate(splits) for p in sw.pieces]
    batches = batch_choices(profile, demands, policy, [t[0] for t in type_demands])
    rows = [(t, b) for t, members in enumerate(type_demands) for b in batches[members[0]]]
    rows += [(len(type_demands) + k, p.batch) for k, (_, p) in enumerate(pieces)]
    option_type = np.array([t for t, _ in rows], dtype=np.int64)
    option_batch = np.array([b for _, b in rows], dtype=float)
    reps = [demands[type_demands[t][0]] for t, _ in rows[:len(rows) - len(pieces)]] + [p for _, p in pieces]
    opts = build_options(profile, [d.model for d in reps], option_batch,
                         np.array([d.slo_ms for d in reps]), np.array([d.rate_rps for d in reps]),
                         margin_pct)
    keep = np.isfinite(opts.alone)
    served = set(option_type[keep].tolist())
    for t, members in enumerate(type_demands):
        if t not in served:
            raise InfeasibleError(f"workload {demands[members[0]].name!r}: no share of one GPU meets "
                                  f"its SLO and rate at any allowed batch")
    n_types = len(type_demands)
    weight = np.array([1.0] * n_types + [splits[s].fraction(p) for s, p in pieces])
    alone_of_piece = opts.alone[len(rows) - len(pieces):]
    caps = [len(m) for m in type_demands] + [
        max(1, min(math.ceil(1 / w - SAME), math.floor(100 / a + 1e-9)))
        for w, a in zip(weight[n_types:], alone_of_piece)]
    return Catalogue(type_demands + [[] for _ in pieces], option_type, option_batch, opts,
                     type_row=np.array(list(range(n_types)) + [n_types + s for s, _ in pieces], dtype=np.int64),
                     type_weight=weight,
                     row_demand=np.array([len(m) for m in type_demands] + [1.0] * len(splits), dtype=float),
                     caps=np.array(caps, dtype=float), splits=splits,
                     type_piece=tuple([None] * n_types + [p for _, p in pieces]))


def _feasible_pieces(profile: Profile, splits: list[SplitWorkload], margin_pct: float) -> list[SplitWorkload]:
    """The split workloads with only the levels some share of one GPU serves alone (the largest,
    r_max, always is); InfeasibleError if a workload keeps none."""
    out = []
    for sw in splits:
        o = build_options(profile, [p.model for p in sw.pieces], np.array([p.batch for p in sw.pieces], dtype=float),
                          np.array([p.slo_ms for p in sw.pieces]), np.array([p.rate_rps for p in sw.pieces]),
                          margin_pct)
        kept = [p for p, a in zip(sw.pieces, o.alone) if np.isfinite(a)]
        if not kept:
            raise InfeasibleError(f"workload {sw.name!r}: no rate level of its replicas fits one GPU")
        out.append(SplitWorkload(sw.name, sw.rate_rps, kept))
    return out


def batch_choices(profile: Profile, demands: list[Demand], policy: str, reps: list[int]
                   ) -> dict[int, list[int]]:
    """Batches per representative demand: the paper batch, or the undominated 1..b_paper."""
    if policy != "joint":
        return {i: [demands[i].batch] for i in reps}
    from igniter_opt.solvers.formulations.batches import batch_options

    sub = [demands[i] for i in reps]
    found = batch_options(profile, sub, policy)
    return {i: sorted(set(found.get(k, [])) | {demands[i].batch}) for k, i in enumerate(reps)}


def sizing_options(demands: list[Demand], cat: Catalogue) -> dict[int, int]:
    """Each demand's option at its paper batch: its type's, or for a replica of a split workload
    the rate level equal to its rate (the sizing's rates are levels verbatim); a demand whose
    level was dropped (not feasible alone) has none."""
    found: dict[int, int] = {}
    first: dict[int, int] = {}
    for o, t in enumerate(cat.option_type.tolist()):
        first.setdefault(t, o)
        members = cat.type_demands[t]
        if members and cat.option_batch[o] == demands[members[0]].batch:
            found.update({i: o for i in members})
    level = {(p.replica_of, p.rate_rps): first[t] for t, p in enumerate(cat.type_piece) if p is not None}
    for i, d in enumerate(demands):
        if d.replica_of is not None and (d.replica_of, d.rate_rps) in level:
            found[i] = level[(d.replica_of, d.rate_rps)]
    return found


def seed_columns(demands: list[Demand], cat: Catalogue, pricer: Pricer, heuristics: list[list[GpuPlan]]
                  ) -> list[list[Column]]:
    """The heuristics' plans as columns (paper batches; each full-GPU replica of the sizing's
    split alone); plans with a GPU that does not fit, or a replica without its level, dropped."""
    option = sizing_options(demands, cat)
    index = {d.name: i for i, d in enumerate(demands)}
    full = [[i] for i, d in enumerate(demands) if d.full_gpu]
    plans = [[[index[w.name] for w in g.workloads] for g in plan] + full for plan in heuristics]
    seeds = []
    for gpus in plans:
        cols = []
        for members in gpus:
            if any(i not in option for i in members):
                break
            opts = tuple(sorted(option[i] for i in members))
            shares = pricer.shares_of(opts)
            if shares is None:
                break
            cols.append(Column(opts, tuple(float(s) for s in shares)))
        else:
            seeds.append(cols)
    return seeds


def to_gpus(demands: list[Demand], cat: Catalogue, pricer: Pricer, chosen: list[Column]) -> list[GpuPlan]:
    """Assign the workloads of each type to the chosen columns' slots, and each split workload's
    pieces in column order until its rate is served (later ones are left out); least shares
    recomputed. Pieces are named `<workload>#<k>`, k from 1."""
    queue = {t: list(members) for t, members in enumerate(cat.type_demands)}
    served = np.zeros(len(cat.row_demand))
    count = np.zeros(len(cat.row_demand), dtype=int)
    gpus = []
    for col in chosen:
        members: list[Demand] = []
        opts = []
        for o in col.members:
            t = int(cat.option_type[o])
            piece = cat.type_piece[t] if cat.type_piece else None
            if piece is not None:
                row = int(cat.type_row[t])
                if served[row] >= 1 - SAME:
                    continue
                served[row] += cat.type_weight[t]
                count[row] += 1
                members.append(replace(piece, name=f"{piece.replica_of}#{count[row]}"))
                opts.append(o)
            elif queue[t]:
                members.append(demands[queue[t].pop()])
                opts.append(o)
        if not members:
            continue
        shares = pricer.shares_of(tuple(opts))
        assert shares is not None  # a subset of a fitting set fits
        key = tuple(sorted(opts))
        by_opt: dict[int, list[float]] = {}
        for o, s in zip(key, shares):
            by_opt.setdefault(o, []).append(float(s))
        gpus.append(GpuPlan([placed(d, by_opt[o].pop(), int(cat.option_batch[o])) for d, o in zip(members, opts)]))
    return gpus


def max_members(profile: Profile, cat: Catalogue, demand: Array) -> int:
    """Most workloads one GPU can hold: the largest m for which the m cheapest workloads, each at
    its least share beside m-1 "ghosts" (co-runners demanding the least L2 and power of any
    option alone) and m members' scheduling delay, fit in 100%. Every real co-runner interferes at
    least as much as a ghost, so no GPU holds more; n / m_max GPUs is a lower bound (the bound
    that matters for many small workloads, where the volume bound is weak)."""
    hw, o = profile.hardware, cat.options
    alone = o.alone
    fits = np.isfinite(alone)
    idx = np.nonzero(fits)[0]
    _, power, l2 = demand_terms(o, idx, alone[idx])
    ghost_l2, ghost_power = max(0.0, float(l2.min())), max(0.0, float(power.min()))
    best = 1
    for m in range(2, int(demand.sum()) + 1):
        ratio = clock_ratio(hw, hw.idle_power_w + power + (m - 1) * ghost_power)
        need = np.maximum(alone[idx], needed_share(hw, o, idx, np.full(idx.size, (m - 1) * ghost_l2), ratio, m))
        per_type = np.full(len(demand), np.inf)
        np.minimum.at(per_type, cat.option_type[idx], need)
        order = np.argsort(per_type)
        counts = demand[order]
        taken = np.clip(m - (np.cumsum(counts) - counts), 0, counts)
        used = taken > 0  # (an unserved type, share inf, is taken 0 times: no inf * 0)
        if float(np.sum(per_type[order][used] * taken[used])) > 100 + 1e-9:
            break
        best = m
    return best


def row_least(least: Array, option_type: Array, type_row: Array, type_weight: Array, rows: int) -> Array:
    """Each row's least share per unit it covers, over its types' options (inf where none serves
    it); `least` a share per option: alone here, beside a partner for inout.py's centre."""
    best = np.full(rows, np.inf)
    np.minimum.at(best, type_row[option_type], least / type_weight[option_type])
    return best


def volume_bound(cat: Catalogue) -> int:
    """Volume bound: each row's demand at the least share alone per unit it covers, over 100%."""
    best = row_least(cat.options.alone, cat.option_type, cat.type_row, cat.type_weight, len(cat.row_demand))
    return math.ceil(float(np.sum(cat.row_demand * best)) / 100 - 1e-9)


def members_needed(cat: Catalogue) -> int:
    """Fewest members any plan has: every workload of a type, and for a split workload as many
    pieces as its largest level needs to serve its rate."""
    most = np.zeros(len(cat.row_demand))
    fits = np.isfinite(cat.options.alone)
    np.maximum.at(most, cat.type_row[cat.option_type[fits]], cat.type_weight[cat.option_type[fits]])
    return int(np.sum(np.ceil(cat.row_demand / most - SAME)))


def singletons(demands: list[Demand], cat: Catalogue) -> list[Column]:
    """Every workload alone on a GPU at its type's cheapest option, and every replica of the
    sizing's split alone (the incumbent of last resort)."""
    alone = cat.options.alone
    n_options = sum(1 for t in cat.option_type.tolist() if cat.type_demands[t])
    kinds = cat.option_type[:n_options]
    order = np.lexsort((alone[:n_options], kinds))  # by type, cheapest (then lowest index) first
    first = order[np.r_[True, np.diff(kinds[order]) != 0]] if n_options else order
    cols = [Column((int(o),), (float(alone[o]),)) for o in first if np.isfinite(alone[o])
            for _ in range(len(cat.type_demands[cat.option_type[o]]))]
    option = sizing_options(demands, cat)
    return cols + [Column((option[i],), (float(alone[option[i]]),)) for i, d in enumerate(demands)
                   if d.replica_of is not None and i in option]
