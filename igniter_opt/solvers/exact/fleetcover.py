"""The fleet search's branching aggregates, and what it does when they are all integral.

A fractional LP solution of the fleet master is branched on, in this order (fleetbnp.py): a GPU
type's count, a pair of rows (Ryan-Foster: together / apart, any type) and a row's type (on g /
off g). These three are not complete on a covering master: when every row is covered exactly
once, integral pairs and row-types force an integral solution per (type, row set) class (the
Ryan-Foster argument, per type: two classes of one type sharing a row r differ in some row s,
and then the pair (r, s) is fractional), but a row may be covered twice or more, integrally, by
fractional columns (e.g. rows {0, 1, 2} covered by {0,1,2}, {0,1}, {0,2}, {1,2}, {0}, {1}, {2} at
1/2 each: every pair 1, every row 2), and columns of one class (same type and rows, other
batches) are interchangeable.

Completion (`exact_cover`): drop each over-covered row (with the rows it must stay together
with) from fractions of the columns that hold it until every row is covered exactly once. The
pieces are columns' subsets (a subset of a fitting GPU fits; its cost and GPUs are at most the
column's) and obey the node's rules, so their cost is at most the LP's. Then either every
(type, rows) class has an integral weight, and one column per class, that many times, is an
integer plan costing at most the LP value (the node is solved: no plan in it is cheaper than its
bound), or the Ryan-Foster argument above gives a fractional pair or row-type of the pieces, which
is a rule the node does not have yet (its rules hold on the pieces), so the tree stays finite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Key = tuple[int, int]


@dataclass(frozen=True)
class Piece:
    """A fraction of one master column: its type, the rows it keeps, and its LP weight."""

    column: int
    gpu: int
    rows: frozenset[int]
    weight: float


def aggregates(pieces: list[Piece]) -> tuple[dict[Key, float], dict[Key, float]]:
    """LP sums of the branching aggregates: each pair of rows together on a GPU (any type), and
    each (row, type)."""
    pair: dict[Key, float] = {}
    row_gpu: dict[Key, float] = {}
    for p in pieces:
        rows = sorted(p.rows)
        for a in range(len(rows)):
            row_gpu[(rows[a], p.gpu)] = row_gpu.get((rows[a], p.gpu), 0.0) + p.weight
            for b in range(a + 1, len(rows)):
                pair[(rows[a], rows[b])] = pair.get((rows[a], rows[b]), 0.0) + p.weight
    return pair, row_gpu


def most_fractional(table: dict[Key, float], eps: float) -> Key | None:
    """The key whose sum is nearest one half above its floor; None when every sum is integral."""
    cand = {k: v - math.floor(v) for k, v in table.items() if eps < v - math.floor(v) < 1 - eps}
    return min(cand, key=lambda k: abs(cand[k] - 0.5)) if cand else None


def _components(together: list[Key]) -> dict[int, frozenset[int]]:
    """Rows tied by `together` rules (transitively): row -> its component (rows with no rule: absent)."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in together:
        parent[find(a)] = find(b)
    groups: dict[int, set[int]] = {}
    for x in list(parent):
        groups.setdefault(find(x), set()).add(x)
    return {x: frozenset(groups[find(x)]) for x in parent}


def exact_cover(pieces: list[Piece], together: list[Key], eps: float) -> list[Piece]:
    """The pieces with every over-covered row dropped (with its together-component) from fractions
    of the pieces that hold it, first pieces first, until it is covered once; empty pieces go."""
    comp = _components(together)
    out = list(pieces)
    rows = sorted({r for p in out for r in p.rows})
    for r in rows:
        excess = sum(p.weight for p in out if r in p.rows) - 1.0
        if excess <= eps:
            continue
        drop = comp.get(r, frozenset({r}))
        nxt: list[Piece] = []
        for p in out:
            if excess <= eps or r not in p.rows:
                nxt.append(p)
                continue
            take = min(p.weight, excess)
            excess -= take
            if p.weight - take > eps:
                nxt.append(Piece(p.column, p.gpu, p.rows, p.weight - take))
            if p.rows - drop:
                nxt.append(Piece(p.column, p.gpu, p.rows - drop, take))
        out = nxt
    return out


def integral_classes(pieces: list[Piece], eps: float) -> dict[tuple[int, frozenset[int]], tuple[int, int]] | None:
    """(type, rows) -> (how many, a master column holding them) when every class's weight is
    integral (within eps); None otherwise."""
    weight: dict[tuple[int, frozenset[int]], float] = {}
    column: dict[tuple[int, frozenset[int]], int] = {}
    for p in pieces:
        key = (p.gpu, p.rows)
        weight[key] = weight.get(key, 0.0) + p.weight
        column.setdefault(key, p.column)
    if any(abs(w - round(w)) > eps for w in weight.values()):
        return None
    return {k: (round(w), column[k]) for k, w in weight.items() if round(w) > 0}
