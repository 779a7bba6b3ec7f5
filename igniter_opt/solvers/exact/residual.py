"""The residual of a dive: what its fixings leave uncovered, as a small master of its own.

A dive's heuristic pricing finds few columns late in the dive (at datacenter sizes most of
all), and rounding one column after another pushes its LP past the incumbent before the plan is
whole (at 200 workloads the dive's LP went from 68.3 to 71.3 with 3 columns still fractional, and
the integer master over 15,000 columns found no plan below the greedy's 72). Once the fixings
leave only a few
rows uncovered, the rest is a small instance of the same problem: its rows are those rows (what
is left of their demand), its columns the pool's columns that hold one of them, and a small
branch-and-price (exhaustive pricing over a few types is fast) solves it to optimality in
seconds. The fixings plus its plan are a plan of the whole instance. This is the residual
problem of cutting-stock rounding heuristics, solved exactly here instead of greedily.

`primal.py` runs the search (a `BranchAndPrice` of its own, bnp.py); this module builds its master
and its first cover.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from igniter_opt.model.predict import Array
from igniter_opt.solvers.exact.master import Column, Master, columns_of
from igniter_opt.solvers.exact.settings import ExactSettings

LEFT = 1e-9  # a tolerance: a row covered to within this is covered


def covered(master: Master, counts: Array) -> Array:
    """What integer column counts cover of each row."""
    cover = np.zeros(len(master.demand))
    for j in np.flatnonzero(counts[:len(master.columns)] > 0):
        rows, amount = master.coverage(master.columns[j])
        cover[rows] += counts[j] * amount
    return cover


def left(master: Master, fixed: Array) -> Array:
    """The demand the fixings leave of each row (0 where they cover it)."""
    rest = np.maximum(master.demand - covered(master, fixed), 0.0)
    rest[rest < LEFT] = 0.0
    return rest


def release(master: Master, fixed: Array, pieces: Array) -> Array:
    """The fixings without every column that holds a piece of a split workload they cover only in
    part (then each such workload is left whole, with its own row's demand: a remnant of 0.02 of a
    workload's rate still takes a piece on some GPU, so remnants made a residual of LP 3.6 whose
    best plan was 7 at 500 workloads). Releasing a column may leave another split workload in
    part: repeated until none is."""
    kept = np.array(fixed, dtype=float)
    piece_row = np.zeros(len(master.demand), dtype=bool)
    piece_row[master.type_row[np.asarray(pieces, dtype=int)]] = True
    while True:
        rest = left(master, kept)
        partial = piece_row & (rest > 0)
        drop = [j for j in np.flatnonzero(kept > 0)
                if partial[master.type_row[master.option_type[list(master.columns[j].members)]]].any()]
        if not drop:
            return kept
        kept[drop] = 0.0


def cover_of(master: Master, fixed: Array, z: Array) -> list[Column]:
    """Columns covering what the fixings leave: each column's LP value above its fixing, rounded
    up (z covers every row and the fixings are whole, so fixed + ceil(z - fixed) does too)."""
    n = len(master.columns)
    low = np.zeros(n)
    low[:len(fixed)] = fixed[:n]
    return columns_of(master, np.ceil(np.maximum(np.asarray(z[:n]) - low, 0.0) - 1e-9))


def residual_master(master: Master, rest: Array, settings: ExactSettings) -> Master:
    """A master whose rows ask only `rest` (rows at 0 ask nothing), holding every pool column with
    a member in a row still asked for. Built as a small master (no datacenter-size arrangements,
    and no residual search of its own)."""
    small = replace(settings, large_rows=np.iinfo(np.int64).max)
    sub = Master(rest, master.option_type, master.threads, type_row=master.type_row,
                 type_weight=master.type_weight, settings=small)
    asked = rest[master.type_row] > 0  # per type
    sub.add_many([c for c in master.columns if asked[master.option_type[list(c.members)]].any()])
    return sub
