"""The fleet search's branching is complete (solvers/exact/fleetcover.py): on fractional LP solutions
whose type counts, pairs and row-types are all integral (where the search used to stop with no rule
left), the exact cover either implies an integer plan or yields a fractional pair or row-type."""

from __future__ import annotations

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
