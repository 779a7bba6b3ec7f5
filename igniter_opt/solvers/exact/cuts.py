"""A split workload's pieces: valid inequalities for the master, and what type duals prove.

A split workload's row (splits.py) asks its pieces to serve its rate, sum_l w_l y_l >= 1 (y_l the
pieces at rate level l, w_l < 1 the fraction of the rate that level serves). The LP meets it with
fractions of pieces (1.36 pieces of a level serving 0.74 of the rate, exactly 1), which no plan
can: every plan has whole pieces. Chvatal-Gomory rounding of the row with a multiplier lam gives

    sum_l ceil(lam w_l) y_l >= ceil(lam),

which every plan obeys and such LP solutions do not (lam = 1 / max_l w_l is the piece count: at
least ceil(1 / max w) pieces). `piece_cuts` lists them for lam = k / w_l, the multipliers that
make one level's coefficient whole; the master adds those an LP solution violates as rows
(`Master.offer_cuts`), and their duals join their levels' in pricing (a member's worth stays a
per-type value, so both searches price as before).

With such rows a type's dual is no longer its row's dual times its weight, so a Farley bound
pi d / v is taken over covers instead (`cover_value`): every plan holds at least d_t members of an
unsplit type t, and of a split workload's levels a multiset covering its rate, worth at least the
least such multiset at pi (a small knapsack, bounded from below by dynamic programming). On
instances with no split workload this is pi d, as before.
"""

from __future__ import annotations

import math

import numpy as np

from igniter_opt.model.predict import Array

SAME = 1e-9  # a tolerance: a multiple of a weight this close to an integer is that integer
GRID = 1000  # least_cover rounds weights up to multiples of 1 / GRID


def piece_cuts(type_row: Array, type_weight: Array, multiples: int) -> list[tuple[Array, float]]:
    """Rounded rows of each split workload (rows whose types cover fractions): coefficients per
    type and right-hand side, for lam = k / w_l (k = 1..multiples, every level l) and the piece
    count; only cuts with a right-hand side above 1 (the others hold for any cover of one piece),
    without repeats."""
    out: dict[tuple[bytes, int], tuple[Array, float]] = {}
    for row in np.unique(type_row[type_weight < 1 - SAME]):
        types = np.flatnonzero(type_row == row)
        w = type_weight[types]
        lams = [1.0 / float(w.max())] + [k / float(x) for x in w for k in range(1, multiples + 1)]
        for lam in lams:
            coef = np.ceil(lam * w - SAME)
            rhs = math.ceil(lam - SAME)
            if rhs <= 1:
                continue
            dense = np.zeros(len(type_row))
            dense[types] = coef
            out.setdefault((dense.tobytes(), rhs), (dense, float(rhs)))
    return list(out.values())


def type_members(rows: list[Array], counts: list[Array], z: Array, n_types: int) -> Array:
    """Members of each type over columns z (each column's types and how many of each)."""
    members = np.zeros(n_types)
    if rows:
        per_column = np.repeat(z[:len(rows)], [len(r) for r in rows])
        np.add.at(members, np.concatenate(rows), np.concatenate(counts) * per_column)
    return members


def row_entries(coef: Array, rows: list[Array], counts: list[Array]) -> tuple[Array, Array]:
    """A cut row's non-zero entries over the columns: their indices and coef . (members per type)."""
    value = np.array([float(coef[t] @ k) for t, k in zip(rows, counts)])
    hit = np.flatnonzero(value)
    return hit.astype(np.int32), value[hit]


def cover_value(duals: Array, type_row: Array, type_weight: Array, row_demand: Array) -> float:
    """A lower bound on sum_t pi_t (members of type t) over every plan: pi_t d_t for a row of one
    whole type, the least-worth multiset of levels covering a split workload's rate otherwise."""
    rows = len(row_demand)
    types_per_row = np.bincount(type_row, minlength=rows)
    whole = (types_per_row[type_row] == 1) & (type_weight == 1.0)
    value = float(np.sum(duals[whole] * row_demand[type_row[whole]]))
    for row in np.unique(type_row[~whole]):
        types = np.flatnonzero(type_row == row)
        value += least_cover(duals[types], type_weight[types]) * float(row_demand[row])
    return value


def least_cover(cost: Array, weight: Array, grid: int = GRID) -> float:
    """A lower bound on min sum_l cost_l y_l over whole y >= 0 with sum_l weight_l y_l >= 1: the
    larger of the continuous relaxation (the least cost per unit of weight) and the same knapsack
    with every weight rounded up to a multiple of 1 / grid (easier to cover, so no dearer), solved
    exactly by dynamic programming over the covered units."""
    units = np.ceil(weight * grid - SAME).astype(np.int64)
    need = np.arange(grid + 1)
    least = np.full(grid + 1, np.inf)
    least[0] = 0.0  # least[j]: the least cost of covering at least j units
    for c, u in zip(cost.tolist(), units.tolist()):
        back = np.maximum(need - u, 0)
        for _ in range(-(-grid // u)):  # unbounded: one more of this level at a time
            step = np.minimum(least, least[back] + c)
            if np.array_equal(step, least):
                break
            least = step
    return max(float(np.min(cost / weight)), float(least[grid]))
