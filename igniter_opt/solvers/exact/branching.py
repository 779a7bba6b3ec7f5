"""Branching rules of branch-and-price and the Ryan-Foster choice of the pair to branch on.

A node's rules say which pairs of workload types must share a GPU (together) or must not (apart);
pricing only returns columns that obey them and the master forbids the others. The single-type
search branches on the pair most fractionally together in the LP (Ryan-Foster); the fleet's
search adds rows kept off a GPU type and bounds on a type's GPU count (`FleetRules`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from igniter_opt.model.predict import Array

# A together group's member of dual zero is priced at this (a tolerance, not tuning): see Rules.priced.
GROUP_EPS = 1e-9


@dataclass
class Rules:
    """Branching rules a priced column must obey: option pairs together or apart."""

    together: list[tuple[int, int]] = field(default_factory=list)  # types
    apart: list[tuple[int, int]] = field(default_factory=list)  # types

    @property
    def root(self) -> bool:
        """No rule at all: the root's column generation (its bound is the whole problem's)."""
        return not (self.together or self.apart)

    def groups(self) -> list[set[int]]:
        """The types that together rules join, transitively, as sets of two or more: a column
        holding one type of a group holds all of them."""
        parent: dict[int, int] = {}

        def find(t: int) -> int:
            while parent.setdefault(t, t) != t:
                t = parent[t]
            return t

        for a, b in self.together:
            parent[find(a)] = find(b)
        out: dict[int, set[int]] = {}
        for t in list(parent):
            out.setdefault(find(t), set()).add(t)
        return [g for g in out.values() if len(g) > 1]

    def sorted_groups(self) -> list[list[int]]:
        """`groups`, each as its types in increasing order (the compiled searches' layout)."""
        return [sorted(g) for g in self.groups()]

    def priced(self, duals: Array) -> Array:
        """The type duals pricing uses under these rules: a together group's member worth nothing
        is worth GROUP_EPS. Both searches drop worthless types (a column is no worse without one),
        which under a together rule would drop every column of the group; so small a value keeps
        them and only raises bounds."""
        if not self.together:
            return duals
        grouped = [t for g in self.groups() for t in g]
        floored = duals.copy()
        floored[grouped] = np.maximum(floored[grouped], GROUP_EPS)
        return floored

    def admits(self, types: Array) -> bool:
        """Does a column with these member types obey every rule?"""
        present = set(types.tolist())
        if any((a in present) != (b in present) for a, b in self.together):
            return False
        return not any(a in present and b in present for a, b in self.apart)


@dataclass
class FleetRules:
    """Branching rules over a fleet: row pairs together / apart (any type), and rows kept off a type."""

    pairs: Rules = field(default_factory=Rules)
    off: dict[int, frozenset[int]] = field(default_factory=dict)  # gpu type -> rows it may not hold
    gpus: dict[int, tuple[float, float]] = field(default_factory=dict)  # gpu type -> GPUs (lo, hi)

    @property
    def root(self) -> bool:
        return self.pairs.root and not any(self.off.values()) and not self.gpus

    def with_off(self, gpu: int, rows: set[int]) -> FleetRules:
        off = dict(self.off)
        off[gpu] = frozenset(off.get(gpu, frozenset()) | rows)
        return FleetRules(self.pairs, off, self.gpus)

    def with_gpus(self, gpu: int, lo: float, hi: float) -> FleetRules:
        old = self.gpus.get(gpu, (0.0, math.inf))
        return FleetRules(self.pairs, self.off, {**self.gpus, gpu: (max(lo, old[0]), min(hi, old[1]))})


def most_fractional_pair(members: Iterable[tuple[int, ...]], z: Array, option_type: Array,
                         unbranchable: set[int], eps: float) -> tuple[int, int] | None:
    """Ryan-Foster: the pair of types whose LP sum of columns together is most fractional (nearest
    one half), over the columns' member options and LP values z; None when every pair is integral.
    Types in `unbranchable` (a split workload's rate levels) are never chosen."""
    score: dict[tuple[int, int], float] = {}
    for opts, value in zip(members, z):
        if value <= eps:
            continue
        types = sorted(set(option_type[list(opts)].tolist()) - unbranchable)
        for a in range(len(types)):
            for b in range(a + 1, len(types)):
                key = (types[a], types[b])
                score[key] = score.get(key, 0.0) + float(value)
    frac = {k: v for k, v in score.items() if eps < v - math.floor(v) < 1 - eps}
    if not frac:
        return None
    return min(frac, key=lambda k: abs(frac[k] - math.floor(frac[k]) - 0.5))
