"""The residual of a dive (residual.py): what its fixings leave, a cover of it, and the small
branch-and-price that completes the fixings into a plan of the whole instance."""

import math
import time

import numpy as np
from test_exact_dive import _covers, _prepared, _priced, _random_master

from igniter_opt.solvers.exact.bnp import BranchAndPrice
from igniter_opt.solvers.exact.branching import Rules
from igniter_opt.solvers.exact.dive import dive
from igniter_opt.solvers.exact.master import Column, Master
from igniter_opt.solvers.exact.residual import cover_of, covered, left, release, residual_master
from igniter_opt.solvers.exact.settings import DEFAULT


def _dense(master) -> np.ndarray:
    """Row coverage of every column, as a matrix (the reference for `covered`)."""
    a = np.zeros((len(master.demand), len(master.columns)))
    for j, col in enumerate(master.columns):
        rows, amount = master.coverage(col)
        a[rows, j] = amount
    return a


def test_left_is_the_demand_the_fixings_do_not_cover_and_the_cover_completes_them():
    master = _random_master(5, types=8, columns=60)
    lp = master.solve_lp()
    fixed = np.floor(lp.z)  # what a dive's first step fixes
    fixed[np.argmax(lp.z - fixed)] += 1  # and one column rounded up
    a = _dense(master)
    assert np.allclose(covered(master, fixed), a @ fixed)
    rest = left(master, fixed)
    assert np.allclose(rest, np.maximum(master.demand - a @ fixed, 0.0))
    taken = [c for c, k in zip(master.columns, fixed) for _ in range(int(k))]
    assert _covers(master, taken + cover_of(master, fixed, lp.z))
    sub = residual_master(master, rest, DEFAULT)
    assert np.array_equal(sub.demand, rest)
    asked = set(np.flatnonzero(rest > 0).tolist())
    assert {c.members for c in sub.columns} == {c.members for c in master.columns if asked & set(c.members)}


def _split_master() -> Master:
    """Rows 0 and 1: split workloads (rate levels 0-2 of row 0 serve 0.3, 0.3 and 0.5 of it, levels
    3-4 of row 1 serve 0.6 each); rows 2-4: whole workloads (types 5-7)."""
    types = np.arange(8)
    master = Master(np.ones(5), types, type_row=np.array([0, 0, 0, 1, 1, 2, 3, 4]),
                    type_weight=np.array([0.3, 0.3, 0.5, 0.6, 0.6, 1, 1, 1]))
    for members in [(0, 5), (1, 6), (2, 7), (2, 3), (4, 5), (5,), (6,), (7,)]:
        master.add(Column(members, tuple(10.0 for _ in members)))
    return master


def test_release_leaves_every_split_workload_whole_or_covered():
    master = _split_master()
    pieces = np.arange(5)
    fixed = np.array([1.0, 1, 1, 0, 0, 0, 0, 0])  # row 0 covered 1.1: kept as it is
    assert np.array_equal(release(master, fixed, pieces), fixed)
    # row 0 covered 0.8 only: both columns holding its levels go, and their whole workloads ask again
    fixed = np.array([0.0, 1, 1, 0, 0, 1, 0, 0])
    kept = release(master, fixed, pieces)
    assert np.array_equal(kept, [0, 0, 0, 0, 0, 1, 0, 0])
    assert np.array_equal(left(master, kept), [1, 1, 0, 1, 1])
    # a cascade: row 0 is covered (1.1) but (2, 3) leaves row 1 at 0.6; without it row 0 is at 0.6,
    # which releases (0, 5) and (1, 6) as well
    fixed = np.array([1.0, 1, 0, 1, 0, 0, 0, 1])
    assert np.array_equal(release(master, fixed, pieces), [0, 0, 0, 0, 0, 0, 0, 1])
    # without pieces named nothing is released
    assert np.array_equal(release(master, fixed, np.zeros(0, dtype=int)), fixed)


def test_a_dive_stopped_at_its_residual_completes_into_a_fitting_plan():
    """At 60 workloads with split workloads (rows covered by weighted rate levels): the dive stops
    once its fixings leave at most 12 rows, and the residual search's plan plus the fixings cover
    every row with configurations that fit, in no more GPUs than the LP's rounding up."""
    bnp = _prepared(60, 4)
    master = bnp.master
    lp = _priced(bnp)
    pieces = bnp._pieces()
    assert pieces.size  # the instance has split workloads
    out = dive(master, lambda d: bnp._heuristic(d, Rules()).columns, bnp.upper + 10, time.perf_counter() + 30,
               time.perf_counter() + 35, DEFAULT, stop_rows=12, pieces=pieces)
    assert out.fixed is not None and out.z is not None
    assert 0 < np.count_nonzero(left(master, release(master, out.fixed, pieces))) <= 12
    assert master.solve_lp().value <= lp.value + 1e-6  # the fixings are gone
    rounded = int(out.fixed.sum()) + len(cover_of(master, out.fixed, out.z))
    bnp.upper = rounded + 1  # the residual search must beat this
    bnp._residual(out.fixed, out.z, time.perf_counter() + 3)
    assert bnp.upper <= rounded and len(bnp.incumbent) == bnp.upper
    assert _covers(master, bnp.incumbent)
    for col in bnp.incumbent:
        assert bnp.pricer.shares_of(col.members) is not None


def test_a_residual_search_ends_at_its_root_once_its_bound_reaches_the_cutoff():
    """The fixings plus a residual plan must beat the whole search's incumbent: a residual search
    whose root proves it needs `cutoff` GPUs or more ends there (no dive, no branching, the cover
    it was given), where without the cutoff the same search goes on to its own plan."""
    bnp = _prepared(60, 4)
    master = bnp.master
    _priced(bnp)
    pieces = bnp._pieces()
    out = dive(master, lambda d: bnp._heuristic(d, Rules()).columns, bnp.upper + 10, time.perf_counter() + 30,
               time.perf_counter() + 35, DEFAULT, stop_rows=12, pieces=pieces)
    fixed = release(master, out.fixed, pieces)
    rest = left(master, fixed)
    cover = cover_of(master, fixed, out.z)
    cover = cover + cover[:1]  # one GPU too many: a search has a plan to look for

    def search(cutoff: float) -> BranchAndPrice:
        return BranchAndPrice(bnp.pricer, residual_master(master, rest, DEFAULT), cover, 1,
                              time.perf_counter() + 20, pieces, residual=False, cutoff=cutoff)

    free = search(math.inf)
    whole = free.run(True)
    assert free.stats.dives + free.stats.nodes + free.stats.integer_solves > 1  # it searched on
    assert whole.upper < len(cover)
    cut = search(free.lower)  # what its root proves
    ended = cut.run(True)
    assert cut.lower >= cut.cutoff and not ended.complete
    assert cut.stats.nodes == 1 and cut.stats.dives == 0 and cut.stats.integer_solves == 0
    assert ended.chosen == cover
    # the caller's side: an incumbent the fixings cannot beat counts the search as ended
    taken = int(fixed.sum())
    bnp.upper = taken + 1
    before = list(bnp.incumbent)
    bnp._residual(out.fixed, out.z, time.perf_counter() + 5)
    assert bnp.stats.cut_off == 1 and bnp.incumbent == before
