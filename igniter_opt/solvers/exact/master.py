"""The master problem: cover every workload type's demand with the fewest GPU configurations.

    min sum_c z_c   s.t.   sum_c a_tc z_c >= d_t  (every type t),   z_c >= 0 (LP) or integer

a_tc is how many members of type t configuration c holds and d_t how many identical workloads
of type t the instance has (cutting-stock aggregation). The rate levels of a split workload
(splits.py) share its row, each member covering the fraction of the rate it serves (d = 1).
Covering rather than partitioning keeps
the duals non-negative; it is equivalent because feasibility is downward closed (dropping a
member from a GPU keeps the rest feasible). The LP is kept in one highspy model and re-solved
warm after each batch of priced columns; the integer master over the generated columns runs in a
copy with a time limit.

Over a mixed fleet (docs/fleets.md) each option belongs to a GPU type (`option_gpu`), a column
costs its type's integer cost instead of 1, and a type with a count has one availability row
sum_{c of type g} n_c z_c <= count_g, whose dual (<= 0) raises the reduced cost of the type's
columns: rc_c = cost_c - sum_t pi_t a_tc - n_c mu_g. A member option may bring full GPUs of its
own (the replicas of a workload split on that type: `option_gpus`), so a column's cost is
cost_g (1 + its members' replicas) and n_c = 1 + its members' replicas. With the defaults (one
type, cost 1, no count, no replicas) it is the single-type master above.

Valid inequalities over types (a split workload's whole pieces, cuts.py) are offered to the
master and become rows after all others once an LP solution violates them; a row's dual joins
its types' duals (what pricing sums over members), and the integer master leaves them out
(every integer cover obeys them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import highspy
import numpy as np

from igniter_opt.model.predict import Array
from igniter_opt.solvers.exact.cuts import row_entries, type_members
from igniter_opt.solvers.exact.highs import from_arrays, model_arrays, new_highs
from igniter_opt.solvers.exact.settings import DEFAULT, ExactSettings


@dataclass(frozen=True)
class Column:
    """One GPU configuration: option index per member (sorted) and least share per member."""

    members: tuple[int, ...]
    shares: tuple[float, ...]


@dataclass(frozen=True)
class LpResult:
    """Optimal restricted-master LP: value, type duals (row dual times the type's weight) and
    column values (and the availability rows' duals per GPU type, <= 0, zero for a type without a
    count)."""

    value: float
    duals: Array
    z: Array
    avail_duals: Array = field(default_factory=lambda: np.zeros(1))


CUT_TOL = 1e-6  # a tolerance: an offered cut violated by less is not added


class Master:
    """Restricted master over the columns generated so far (one row per workload type)."""

    def __init__(self, demand: Array, option_type: Array, threads: int = 1, option_gpu: Array | None = None,
                 gpu_cost: Array | None = None, available: list[int | None] | None = None,
                 option_gpus: Array | None = None, type_row: Array | None = None,
                 type_weight: Array | None = None, settings: ExactSettings = DEFAULT) -> None:
        self.min_mip_seconds = settings.min_mip_seconds
        # datacenter sizes (issue 24, item 3): no MIP presolve, no root dives, faster dive steps
        self.large = len(demand) >= settings.large_rows
        self.demand = np.asarray(demand, dtype=float)
        self.option_type = option_type
        # a type covers its row `weight` per member: by default a row per type, one per member; a
        # split workload's rate levels share its row, each covering the fraction of the rate it serves
        self.type_row = np.arange(len(self.demand)) if type_row is None else np.asarray(type_row)
        self.type_weight = np.ones(len(self.type_row)) if type_weight is None else np.asarray(type_weight, dtype=float)
        self.last_proven = False  # the last integer master ended proven (optimal, or no cover below the cutoff)
        self.option_gpu = np.zeros(len(option_type), dtype=np.int64) if option_gpu is None else option_gpu
        self.gpu_cost = np.ones(1) if gpu_cost is None else np.asarray(gpu_cost, dtype=float)
        self.option_gpus = np.zeros(len(option_type)) if option_gpus is None else np.asarray(option_gpus, float)
        self.columns: list[Column] = []
        self.costs: list[float] = []
        self._keys: set[tuple[int, ...]] = set()
        self._lp = new_highs(threads)
        self._threads = threads
        inf = highspy.kHighsInf
        for d in self.demand:
            self._lp.addRow(float(d), inf, 0, np.array([], dtype=np.int32), np.array([]))
        # a fleet (`available` given): one GPU-count row per type, after the demand rows, at most its
        # count (free when unlimited); branching may bound it from both sides (set_gpu_bounds)
        self.avail_row: dict[int, int] = {}
        self.available = list(available or [])
        for g, count in enumerate(self.available):
            self.avail_row[g] = len(self.demand) + g
            self._lp.addRow(-inf, inf if count is None else float(count), 0, np.array([], dtype=np.int32),
                            np.array([]))
        self._rows: list[Array] = []  # per column: the types it holds, and how many of each
        self._counts: list[Array] = []
        # valid inequalities over types after every other row (a split workload's pieces, cuts.py):
        # sum_t cut_coef[k, t] a_tc z_c >= cut_rhs[k]; their duals join the types' in `solve_lp`
        self.cut_coef = np.zeros((0, len(self.type_row)))
        self.cut_rhs: list[float] = []
        self._pool_coef, self._pool_rhs = np.zeros((0, len(self.type_row))), np.zeros(0)  # offered, not rows yet
        self._cuts_open = False

    @property
    def threads(self) -> int:
        """HiGHS threads of this master's solves."""
        return self._threads

    def __getstate__(self) -> dict[str, Any]:
        """A master pickles (a search snapshot: benchmarks/bench_final_phase.py) with its HiGHS
        model as arrays, column bounds included; the basis is not kept (the next solve is cold)."""
        state = self.__dict__.copy()
        state["_lp_arrays"] = model_arrays(state.pop("_lp"))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        arrays = state.pop("_lp_arrays")
        self.__dict__.update(state)
        self._lp = from_arrays(arrays, self._threads)

    def coverage(self, col: Column) -> tuple[Array, Array]:
        """Row indices of a column and how much of each it covers (member counts times weights)."""
        types, counts = self._types(col)
        rows, where = np.unique(self.type_row[types], return_inverse=True)
        cover = np.bincount(where.ravel(), weights=counts * self.type_weight[types], minlength=rows.size)
        return rows.astype(np.int32), cover.astype(float)

    def _types(self, col: Column) -> tuple[Array, Array]:
        """Types of a column's members and how many of each."""
        types, counts = np.unique(self.option_type[list(col.members)], return_counts=True)
        return types.astype(np.int32), counts.astype(float)

    def gpu_of(self, col: Column) -> int:
        """The GPU type of a column (its members' type; 0 for a single-type master)."""
        return int(self.option_gpu[col.members[0]])

    def gpus_of(self, col: Column) -> float:
        """GPUs a column takes: its own and its members' full-GPU replicas."""
        return 1.0 + float(self.option_gpus[list(col.members)].sum())

    def known(self, members: tuple[int, ...]) -> bool:
        """Is a column with these members in the master?"""
        return members in self._keys

    @property
    def _first_cut(self) -> int:
        return len(self.demand) + len(self.available)

    def _cut_rows(self) -> Array:
        """The cut rows' indices in the LP (after every other row)."""
        return np.arange(self._first_cut, self._first_cut + len(self.cut_rhs), dtype=np.int32)

    def offer_cuts(self, cuts: list[tuple[Array, float]]) -> None:
        """Valid inequalities sum_t coef_t a_tc z_c >= rhs (coef per type) that every integer cover
        obeys: once `open_cuts` is called, each becomes a row when an LP solution violates it."""
        if cuts:
            self._pool_coef = np.vstack([self._pool_coef] + [c for c, _ in cuts])
            self._pool_rhs = np.r_[self._pool_rhs, [r for _, r in cuts]]

    def open_cuts(self, z: Array) -> bool:
        """When the LP solution z (the last LP's) violates offered cuts: they become rows, every LP
        solve from now on adds those its solution violates, and True (solve again). Else False, and
        LP solves stop adding cuts (the rows already added stay)."""
        self._cuts_open = True
        self._cuts_open = self._separate(z)
        return self._cuts_open

    def close_cuts(self) -> None:
        """Drop every cut: the rows added (and their duals) and those still offered."""
        if self.cut_rhs:
            self._lp.deleteRows(len(self.cut_rhs), self._cut_rows())
        self.cut_coef, self.cut_rhs = self.cut_coef[:0], []
        self._pool_coef, self._pool_rhs = self._pool_coef[:0], self._pool_rhs[:0]

    def _separate(self, z: Array) -> bool:
        """Add the offered cuts the LP solution z violates as rows; True when any was."""
        if not (self._cuts_open and self._pool_rhs.size and self.columns):
            return False
        members = type_members(self._rows, self._counts, z, len(self.type_row))
        violated = self._pool_coef @ members < self._pool_rhs - CUT_TOL
        for coef, rhs in zip(self._pool_coef[violated], self._pool_rhs[violated]):
            hit, value = row_entries(coef, self._rows, self._counts)
            self._lp.addRow(float(rhs), highspy.kHighsInf, int(hit.size), hit, value)
        self.cut_coef = np.vstack([self.cut_coef, self._pool_coef[violated]])
        self.cut_rhs += self._pool_rhs[violated].tolist()
        self._pool_coef, self._pool_rhs = self._pool_coef[~violated], self._pool_rhs[~violated]
        return bool(violated.any())

    def add(self, col: Column) -> bool:
        """Add a column unless one with the same members is there; True when added."""
        if col.members in self._keys:
            return False
        self._keys.add(col.members)
        self.columns.append(col)
        types, counts = self._types(col)
        self._rows.append(types)
        self._counts.append(counts)
        rows, counts = self.coverage(col)
        gpu = self.gpu_of(col)
        n_gpus = self.gpus_of(col)
        cost = float(self.gpu_cost[gpu]) * n_gpus
        self.costs.append(cost)
        if gpu in self.avail_row:
            rows, counts = np.append(rows, np.int32(self.avail_row[gpu])), np.append(counts, n_gpus)
        if self.cut_rhs:
            cut = self.cut_coef[:, types] @ self._counts[-1]
            hit = np.flatnonzero(cut)
            rows, counts = np.append(rows, (self._first_cut + hit).astype(np.int32)), np.append(counts, cut[hit])
        self._lp.addCol(cost, 0.0, highspy.kHighsInf, len(rows), rows.astype(np.int32), counts)
        return True

    def add_many(self, cols: list[Column]) -> int:
        """`add` for many columns (a warm start's pool) in one call to HiGHS, with the member
        counts taken without numpy per column (np.unique on a few members costs more than the
        LP); single-type masters without cut rows only (else `add` one by one). The number added."""
        if self.avail_row or self.cut_rhs:
            return sum(self.add(c) for c in cols)
        starts: list[int] = []
        index: list[int] = []
        value: list[float] = []
        costs: list[float] = []
        types_of = self.option_type.tolist()
        for col in cols:
            if col.members in self._keys:
                continue
            self._keys.add(col.members)
            self.columns.append(col)
            count: dict[int, int] = {}
            for o in col.members:
                count[types_of[o]] = count.get(types_of[o], 0) + 1
            types = np.fromiter(count.keys(), dtype=np.int32, count=len(count))
            counts = np.fromiter(count.values(), dtype=float, count=len(count))
            self._rows.append(types)
            self._counts.append(counts)
            cover: dict[int, float] = {}
            for t, k in count.items():
                row = int(self.type_row[t])
                cover[row] = cover.get(row, 0.0) + k * float(self.type_weight[t])
            cost = float(self.gpu_cost[self.gpu_of(col)]) * self.gpus_of(col)
            self.costs.append(cost)
            costs.append(cost)
            starts.append(len(index))
            for row, amount in sorted(cover.items()):
                index.append(row)
                value.append(amount)
        if costs:
            n = len(costs)
            self._lp.addCols(n, np.array(costs), np.zeros(n), np.full(n, highspy.kHighsInf), len(index),
                             np.array(starts, dtype=np.int32), np.array(index, dtype=np.int32), np.array(value))
        return len(costs)

    def prune(self, keep: Array) -> int:
        """Delete the columns not kept (the root's pool at datacenter sizes, where each LP re-solve
        over 20,000-30,000 columns took about a second); a deleted column may be priced again.
        Only between solves, never under a dive's fixings or a branch's rules. The number deleted."""
        drop = np.nonzero(~keep)[0].astype(np.int32)
        if drop.size == 0:
            return 0
        self._lp.deleteCols(int(drop.size), drop)
        kept = np.nonzero(keep)[0].tolist()
        for i in drop.tolist():
            self._keys.discard(self.columns[i].members)
        self.columns = [self.columns[i] for i in kept]
        self.costs = [self.costs[i] for i in kept]
        self._rows = [self._rows[i] for i in kept]
        self._counts = [self._counts[i] for i in kept]
        return int(drop.size)

    def trim(self, lp: LpResult, most: int, keep: int) -> None:
        """Past `most` columns, delete those of largest reduced cost at the LP's duals that its
        solution leaves at zero, down to `keep` (the LP's value is unchanged: its solution stays;
        a deleted column may be priced again)."""
        n = len(self.columns)
        if n <= most:
            return
        rc = self.reduced_costs(lp.duals)
        rc[lp.z[:n] > 1e-9] = -np.inf  # the LP's own columns stay
        kept = np.zeros(n, dtype=bool)
        kept[np.argsort(rc, kind="stable")[:keep]] = True
        self.prune(kept)

    def reduced_costs(self, duals: Array) -> Array:
        """cost_c - sum_t pi_t a_tc of every column (what a unit of it adds to the LP value; the
        availability duals are left out, so this is a lower bound on the reduced cost); duals per
        type, as `solve_lp` gives them."""
        sizes = np.fromiter((len(r) for r in self._rows), dtype=np.int64, count=len(self._rows))
        rows, counts = np.concatenate(self._rows), np.concatenate(self._counts)
        starts = np.r_[0, np.cumsum(sizes)[:-1]]
        out: Array = np.array(self.costs) - np.add.reduceat(duals[rows] * counts, starts)
        return out

    def forbid(self, allowed: Array) -> None:
        """Fix to zero every column not allowed (branching); columns re-enter when allowed again."""
        self.bound(np.zeros(len(self.columns)), allowed)

    def bound(self, lower: Array, allowed: Array | None = None) -> None:
        """Column bounds: at least `lower` (a dive's fixings; columns added later start at 0),
        at most 0 where not allowed."""
        n = len(self.columns)
        low, up = _column_bounds(n, lower, allowed)
        self._lp.changeColsBounds(n, np.arange(n, dtype=np.int32), low, up)

    def set_gpu_bounds(self, bounds: dict[int, tuple[float, float]]) -> None:
        """GPUs of each type between the given bounds (within its count; types not given: 0 to
        their count), for a branch on a type's GPU count."""
        inf = highspy.kHighsInf
        for g, row in self.avail_row.items():
            count = self.available[g]
            lo, hi = bounds.get(g, (0.0, inf))
            hi = min(hi, inf if count is None else float(count))
            self._lp.changeRowBounds(row, float(lo) if lo > 0 else -inf, hi)

    def solve_lp(self) -> LpResult | None:
        """Solve the LP warm; None when infeasible (a branch no generated column can serve)."""
        self._lp.run()
        if self._lp.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        sol = self._lp.getSolution()
        while self._separate(np.array(sol.col_value)):  # the offered cuts it violates, as rows
            self._lp.run()
            if self._lp.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                return None
            sol = self._lp.getSolution()
        value = self._lp.getInfo().objective_function_value
        row_dual = np.array(sol.row_dual)
        n = len(self.demand)
        avail = np.zeros(len(self.gpu_cost))
        for g, row in self.avail_row.items():  # <= 0 at a count, >= 0 at a branch's lower bound
            avail[g] = float(row_dual[row])
        # per type: its row's dual times what one member covers (what pricing sums over members)
        duals = np.maximum(row_dual[:n], 0.0)[self.type_row] * self.type_weight
        if self.cut_rhs:  # a cut's dual is worth its coefficient per member
            first = self._first_cut
            duals = duals + np.maximum(row_dual[first:first + len(self.cut_rhs)], 0.0) @ self.cut_coef
        return LpResult(value=float(value), duals=duals, z=np.array(sol.col_value), avail_duals=avail)

    def solve_integer(self, time_limit: float, allowed: Array | None = None, below: float | None = None,
                      lower: Array | None = None) -> tuple[float, Array] | None:
        """Best integer cover over the generated columns within the time limit (None if none found,
        and none tried on less than settings.min_mip_seconds); only `allowed` columns, at least `lower` of
        each; with `below`, only covers of lower cost (a cutoff row HiGHS prunes with; costs are
        integers). Returns the cover's cost and its column counts."""
        self.last_proven = False
        if time_limit < self.min_mip_seconds:
            return None
        h = new_highs(self._threads)
        lp = self._lp.getLp()
        h.passModel(lp)
        if self.cut_rhs:  # every integer cover obeys them: rows of no use to the MIP (and its presolve's time)
            h.deleteRows(len(self.cut_rhs), self._cut_rows())
        n = len(self.columns)
        h.changeColsIntegrality(n, np.arange(n, dtype=np.int32),
                                np.full(n, highspy.HighsVarType.kInteger))
        if allowed is not None or lower is not None:
            low, up = _column_bounds(n, np.zeros(0) if lower is None else lower, allowed)
            h.changeColsBounds(n, np.arange(n, dtype=np.int32), low, np.maximum(up, low))
        h.setOptionValue("time_limit", float(time_limit))
        h.setOptionValue("mip_rel_gap", 0.0)
        if self.large:
            h.setOptionValue("presolve", "off")
        costs = np.array(self.costs)
        if below is not None:  # a cutoff row: sum_c cost_c z_c <= below - 1 (HiGHS has no hard cutoff option)
            h.addRow(-highspy.kHighsInf, float(below) - 1, n, np.arange(n, dtype=np.int32), costs)
        h.run()
        done = (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kInfeasible)
        self.last_proven = h.getModelStatus() in done
        sol = h.getSolution()
        if not sol.value_valid:
            return None
        z = np.round(np.array(sol.col_value))
        return float(costs @ z), z


def columns_of(master: Master, counts: Array) -> list[Column]:
    """The plan a vector of whole column counts stands for (each column as often as counted;
    counts are rounded, so an integer master's 0.9999999 is one GPU, not none)."""
    return [c for c, k in zip(master.columns, np.round(counts).astype(int)) for _ in range(k)]


def fewest_gpus(master: Master, cost_limit: float, allowed: Array, time_limit: float) -> Array | None:
    """Column counts of an integer cover of cost <= cost_limit with the fewest columns (GPUs),
    over the allowed columns (a fleet's tie-break once its least cost is known); None if none
    was found within the time limit."""
    if time_limit < master.min_mip_seconds:
        return None
    h = new_highs(master._threads)
    h.passModel(master._lp.getLp())
    n = len(master.columns)
    idx = np.arange(n, dtype=np.int32)
    h.changeColsIntegrality(n, idx, np.full(n, highspy.HighsVarType.kInteger))
    h.changeColsCost(n, idx, np.array([master.gpus_of(c) for c in master.columns]))
    h.changeColsBounds(n, idx, np.zeros(n), np.where(allowed, highspy.kHighsInf, 0.0))
    h.addRow(-highspy.kHighsInf, float(cost_limit) + 1e-6, n, idx, np.array(master.costs))
    h.setOptionValue("time_limit", float(time_limit))
    h.setOptionValue("mip_rel_gap", 0.0)
    h.run()
    sol = h.getSolution()
    return np.round(np.array(sol.col_value)) if sol.value_valid else None


def _column_bounds(n: int, lower: Array, allowed: Array | None) -> tuple[Array, Array]:
    """Bounds of n columns: `lower` padded with zeros (later columns), upper 0 where not allowed."""
    low = np.zeros(n)
    low[:len(lower)] = lower[:n]
    up = np.full(n, highspy.kHighsInf) if allowed is None else np.where(allowed, highspy.kHighsInf, 0.0)
    return low, up
