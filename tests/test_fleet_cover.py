"""The fleet search's branching is complete (solvers/exact/fleetcover.py): on fractional LP solutions
whose type counts, pairs and row-types are all integral (where the search used to stop with no rule
left), the exact cover either implies an integer plan or yields a fractional pair or row-type."""

from __future__ import annotations

from igniter_opt.data.instance import Instance
from igniter_opt.solvers.exact.fleet import Prepared
from igniter_opt.solvers.exact.fleetbnp import FleetSearch
from igniter_opt.solvers.exact.fleetcover import Piece, aggregates, exact_cover, integral_classes, most_fractional

EPS = 1e-6


def pieces_of(*cols: tuple[int, set[int], float]) -> list[Piece]:
    return [Piece(i, g, frozenset(rows), w) for i, (g, rows, w) in enumerate(cols)]


def coverage(pieces: list[Piece]) -> dict[int, float]:
    out: dict[int, float] = {}
    for p in pieces:
        for r in p.rows:
            out[r] = out.get(r, 0.0) + p.weight
    return out


def old_rule_has_no_candidate(pieces: list[Piece]) -> bool:
    """What the search branched on before: a type's count, a pair, a row on a type."""
    per_type: dict[int, float] = {}
    for p in pieces:
        per_type[p.gpu] = per_type.get(p.gpu, 0.0) + p.weight
    pair, row_gpu = aggregates(pieces)
    return (all(abs(v - round(v)) < EPS for v in per_type.values()) and most_fractional(pair, EPS) is None
            and most_fractional(row_gpu, EPS) is None)


def _fleet_search(inst: Instance) -> tuple[Prepared, FleetSearch]:
    """The exact fleet solver's preparation of an instance, and a search over it (60 s)."""
    import time

    from igniter_opt.solvers.fleet import instance_fleet, integer_costs, size_fleet

    fleet = instance_fleet(inst)
    fd = size_fleet(inst, fleet)
    prep = Prepared(fleet, fd, integer_costs(fleet), inst.batch_policy, 0.0, 1)
    return prep, FleetSearch(prep.pricers, prep.offsets, prep.master, prep.artificial,
                             time.perf_counter() + 60, prep.extras)


def test_over_covered_rows_hide_a_fractional_pair_that_the_cover_exposes() -> None:
    # rows {0,1,2} (and {3,4,5}, so that the GPU count is integral) covered twice: every set of them at
    # 1/2; every pair sums to 1, every row to 2 on type 0, the type's count to 7; the LP is fractional
    tri = [{0, 1, 2}, {0, 1}, {0, 2}, {1, 2}, {0}, {1}, {2}]
    lp = pieces_of(*[(0, rows, 0.5) for rows in tri], *[(0, {r + 3 for r in rows}, 0.5) for rows in tri])
    assert old_rule_has_no_candidate(lp)
    cover = exact_cover(lp, [], EPS)
    assert all(abs(v - 1.0) < EPS for v in coverage(cover).values()) and set(coverage(cover)) == set(range(6))
    assert sum(p.weight * len(p.rows) for p in cover) < sum(p.weight * len(p.rows) for p in lp)
    assert all(any(p.column == q.column and p.rows <= q.rows for q in lp) for p in cover)  # subsets of columns
    assert integral_classes(cover, EPS) is None
    pair, row_gpu = aggregates(cover)
    assert most_fractional(pair, EPS) is not None or most_fractional(row_gpu, EPS) is not None


def test_one_class_at_two_batches_implies_its_integer_plan() -> None:
    # columns 0 and 1 hold the same rows on the same type (other batches): interchangeable, each at 1/2
    lp = pieces_of((1, {0, 1}, 0.5), (1, {0, 1}, 0.5), (0, {2}, 1.0))
    assert old_rule_has_no_candidate(lp)
    classes = integral_classes(exact_cover(lp, [], EPS), EPS)
    assert classes == {(1, frozenset({0, 1})): (1, 0), (0, frozenset({2})): (1, 2)}


def test_the_cover_drops_a_row_with_the_rows_it_must_stay_together_with() -> None:
    # rows 0 and 1 together (a branching rule), covered twice by integral columns
    lp = pieces_of((0, {0, 1, 2}, 1.0), (0, {0, 1}, 1.0))
    cover = exact_cover(lp, [(0, 1)], EPS)
    assert sorted((sorted(p.rows), p.weight) for p in cover) == [([0, 1], 1.0), ([2], 1.0)]
    assert integral_classes(cover, EPS) == {(0, frozenset({2})): (1, 0), (0, frozenset({0, 1})): (1, 1)}


def test_the_cover_keeps_an_exactly_covered_solution() -> None:
    lp = pieces_of((0, {0, 1}, 0.5), (0, {0}, 0.5), (1, {1}, 0.5))
    assert exact_cover(lp, [], EPS) == lp


def test_the_search_solves_a_node_by_the_plan_its_integral_aggregates_imply() -> None:
    """A real fleet master (joint batches: a row has columns at several batches on a type) and an LP
    point with one row half on each of two of its singleton columns of one type, every other row on
    one singleton: every aggregate is integral, the point is not. The search used to have no rule
    left here (the node stayed open); now its exact cover is the incumbent, at the LP's cost."""
    import math
    from dataclasses import replace

    import numpy as np

    from igniter_opt.bench.fleets import fleet_instance
    from igniter_opt.solvers.exact.branching import FleetRules
    from igniter_opt.solvers.exact.master import LpResult

    prep, search = _fleet_search(replace(fleet_instance(4, 1), batch_policy="joint"))
    m, fleet, fd = prep.master, prep.fleet, prep.fd
    singles: dict[tuple[int, int], list[int]] = {}  # (row, type) -> its singleton columns
    for i, c in enumerate(m.columns):
        if len(c.members) == 1 and m.gpu_of(c) != prep.artificial:
            singles.setdefault((int(m.option_type[c.members[0]]), m.gpu_of(c)), []).append(i)
    row, g = next(k for k, cols in singles.items() if len(cols) >= 2)  # two batches of a row on one type
    z = np.zeros(len(m.columns))
    z[singles[(row, g)][:2]] = 0.5
    for r in range(fd.rows):
        if r != row:
            z[min(i for (rr, _), cols in singles.items() if rr == r for i in cols)] = 1.0
    lp = LpResult(value=float(np.dot(m.costs, z)), duals=np.zeros(fd.rows), z=z,
                  avail_duals=np.zeros(len(fleet.types) + 1))
    search._integral(lp)
    assert search.upper == math.inf  # not integral: not a plan as it stands
    assert search._branch(lp, FleetRules()) is None  # no rule needed: the node is solved
    assert search.upper == lp.value and search.stats.implied_plans == 1
    rows = sorted(int(m.option_type[o]) for c in search.incumbent for o in c.members)
    assert rows == list(range(fd.rows))  # each row on one GPU
    assert all(prep.pricers[m.gpu_of(c)].shares_of(prep.local(c)[1]) is not None for c in search.incumbent)


def test_a_fleet_node_the_pool_cannot_serve_is_repaired_not_pruned() -> None:
    """A node asking for a GPU of type 0 with every row kept off it but a together pair that no
    pool column holds: its restricted master is infeasible (the count row fails), but the node
    holds plans (the pair on one type-0 GPU). Its bound is proven and finite; a pair that fits no
    type's GPU (one batch per row under paper) proves the node infeasible. The old search pruned
    both as infeasible."""
    import numpy as np

    from igniter_opt.bench.fleets import fleet_instance
    from igniter_opt.solvers.exact.branching import FleetRules, Rules

    prep, search = _fleet_search(fleet_instance(8, 3))
    p0 = prep.pricers[0]
    rows = sorted({int(r) for r in p0.option_type})

    def pair(fits: bool) -> tuple[int, int]:
        for i, a in enumerate(rows):
            for b in rows[i + 1:]:
                oa, ob = np.flatnonzero(p0.option_type == a), np.flatnonzero(p0.option_type == b)
                shared = [p.shares_of((int(np.flatnonzero(p.option_type == a)[0]),
                                       int(np.flatnonzero(p.option_type == b)[0])))
                          for p in prep.pricers if a in p.option_type and b in p.option_type]
                if oa.size == ob.size == 1 and (p0.shares_of((int(oa[0]), int(ob[0]))) is not None) == fits \
                        and (fits or all(s is None for s in shared)):
                    return a, b
        raise AssertionError("no such pair")

    def node(a: int, b: int) -> FleetRules:
        return FleetRules(Rules(together=[(a, b)]), {0: frozenset(set(rows) - {a, b})}, {0: (1.0, np.inf)})

    bound, lp, proven = search.column_generation(node(*pair(fits=True)))
    assert proven and lp is not None and np.isfinite(bound) and bound >= 1
    assert search.stats.repairs == 1
    assert search.column_generation(node(*pair(fits=False))) == (np.inf, None, True)
