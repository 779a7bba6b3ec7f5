"""A node's together groups as single items of the state search's bounds (statespace.py).

At a branching node whose rules hold types together, a set holds all of a group or none of it,
so the bins' Lagrangian bounds take each group as one item of |group| members (its types' duals,
at least the sum of its members' least weight, L2 and power); the leaves list the members' own
items and check the rules. A mixin of StateSpaceSearch: it reads the search's items and writes
the bound items' arrays (each worker copy of a threaded search makes its own, statepool.py).
"""

from __future__ import annotations

import numpy as np

from igniter_opt.model.predict import Array
from igniter_opt.solvers.exact.statekernel import NEG


class TogetherGroups:
    """The merged bound items of StateSpaceSearch (attributes set by the search's __init__)."""

    groups: list[list[int]]
    option: Array
    ityp: Array
    gof: Array
    glo: Array
    ghi: Array
    gcap: Array
    value: Array
    max_m: int
    units: int
    w: Array
    c: Array
    p: Array
    chosen: Array
    cand: Array
    out: Array

    def _merge(self) -> None:
        """A node's together groups as one item each, for the bins' bounds (the Lagrangian): a
        set holds all of a group or none of it (branched types are single rows), so the group
        is one item of |group| members, worth its types' duals, taking at least the sum of its
        members' least weight, L2 and power over their options (each least on its own: a
        relaxation of every combination). The bound then no longer lets a member leave its
        partner behind; the leaves list the members' own items and check the rules (issue 24)."""
        self.merged = bool(self.groups) and self.option.size > 0
        if not self.merged:
            return
        grouped = np.isin(self.ityp, [t for g in self.groups for t in g])
        self.keep = np.flatnonzero(~grouped)
        kept_groups = np.unique(self.gof[self.keep])
        sizes = self.ghi[kept_groups] - self.glo[kept_groups]
        start = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        nk, ng = self.keep.size, len(self.groups)
        self.bglo = np.concatenate([start[:-1], nk + np.arange(ng)]).astype(np.int64)
        self.bghi = np.concatenate([start[1:], nk + 1 + np.arange(ng)]).astype(np.int64)
        self.bgcap = np.concatenate([self.gcap[kept_groups], np.zeros(ng)]).astype(np.int64)
        self.bcnt = np.concatenate([np.ones(nk), [len(g) for g in self.groups]]).astype(np.int64)
        self.bvalue = np.concatenate([self.value[self.keep], [self._group_value(g) for g in self.groups]])
        # per group, per member type, its items; a member without items leaves its group out of
        # every set (`dead`); the live groups' items in one array, a slot per member type
        members = [[np.flatnonzero(self.ityp == t) for t in g] for g in self.groups]
        self.dead = np.array([any(m.size == 0 for m in ms) for ms in members], dtype=bool)
        live = [ms for ms, d in zip(members, self.dead, strict=True) if not d]
        slots = [m for ms in live for m in ms]
        self.gitems = np.concatenate(slots) if slots else np.zeros(0, dtype=np.int64)
        self.slot_start = np.cumsum([0] + [m.size for m in slots[:-1]]).astype(np.int64)
        self.group_start = np.cumsum([0] + [len(ms) for ms in live[:-1]]).astype(np.int64)
        n, mm = nk + ng, self.max_m + 1
        u, d = self.units, int(min(self.bgcap.max(initial=0), mm - 1))
        self.bw, self.bc, self.bp, self.bvbuf = np.empty(n, dtype=np.int64), np.empty(n), np.empty(n), np.empty(n)
        self.btake = np.zeros((n, d + 1, mm, u + 1), dtype=np.bool_)
        self.btab, self.bgc = np.empty((d + 1, mm, u + 1)), np.zeros((self.bglo.size, mm, u + 1), dtype=np.int64)
        self.bchosen, self.bcand = np.zeros(n, dtype=np.bool_), np.zeros(n, dtype=np.bool_)
        self.live = nk + np.flatnonzero(~self.dead)  # the group items' places; a dead group's item never fits
        dead = nk + np.flatnonzero(self.dead)
        self.bw[dead], self.bc[dead], self.bp[dead] = -1, 0.0, 0.0

    def _group_value(self, group: list[int]) -> float:
        """A group's worth: its types' duals (each type's items carry its dual)."""
        return float(sum(self.value[self.ityp == t][0] for t in group if (self.ityp == t).any()))

    def _merged_weights(self) -> None:
        """The bound items' weight, L2 and power at this bin: the kept items' own, and each
        group's sum over its members of their least over the options that fit (-1: one cannot)."""
        nk = self.keep.size
        self.bw[:nk], self.bc[:nk], self.bp[:nk] = self.w[self.keep], self.c[self.keep], self.p[self.keep]
        if self.gitems.size == 0:
            return
        w = self.w[self.gitems]
        least = np.minimum.reduceat(np.where(w >= 0, [w, self.c[self.gitems], self.p[self.gitems]], np.inf),
                                    self.slot_start, axis=1)  # per member type (slots are never empty)
        total = np.add.reduceat(least, self.group_start, axis=1)  # per live group
        fits = np.isfinite(total[0])
        self.bw[self.live] = np.where(fits, total[0], -1).astype(np.int64)
        self.bc[self.live], self.bp[self.live] = np.where(fits, total[1], 0.0), np.where(fits, total[2], 0.0)

    def _unmerge(self) -> None:
        """The merged Lagrangian's optimum and candidate as kept items (`_bound`)."""
        nk = self.keep.size
        self.chosen[:], self.cand[:] = False, False
        self.chosen[self.keep[self.bchosen[:nk]]] = True
        self.cand[self.keep[self.bcand[:nk]]] = True
        if self.bchosen[nk:].any():
            self.out[2] = 0.0
        if self.bcand[nk:].any():
            self.out[3] = NEG
