"""Exact pricing over interference states: a best-first search on bins of (members, L2, power).

A member's least share depends on its co-runners only through three numbers of the GPU: the
member count m (scheduling delay), the total L2 demand C (cache contention) and the total power P
(the clock drop). Fix a *bin* of states — m, C in [C_lo, C_hi), P in [P_lo, P_hi) — and every
member of any set whose state lies in the bin needs at least its share at the bin's lower corner
(`statekernel.weights`: every term of the model only grows with C, P and m), while the set's
L2 and power at those shares can only be below its true C < C_hi and P < P_hi. So the set is a
solution of the bin's knapsack: exactly m items, shares summing to at most 100%, sum c < C_hi,
sum p < P_hi - P_idle, maximising the sum of duals. The best of every bin bounds every
configuration; the bins together cover every state a configuration can have.

The search is best first over bins: a bin's bound is the Lagrangian of its knapsack (the two
side rows priced into the objective), a bin above the threshold is halved along C or P, and a
bin that small gets its exact optimum (`statekernel.leaf`). An optimum that fits in truth (the
oracle's least shares) is a column and settles its bin; one that does not is split further,
down to a floor where its bound is kept as unresolved. A leaf lists its sets under two bounds
(the Lagrangian one and the plain one, side rows dropped: most sets near a threshold have slack
in the side rows, and the Lagrangian bound alone let 10^8 of them through in one call) and keeps
the best that fits in truth, so a leaf whose list completes is settled either way. The top of the heap bounds every
configuration at any time, so a search cut by the deadline still gives a Farley bound. Where
the depth-first search over sets (`kernel.py`) must list millions of near-optimal sets at 200
workloads, the bins are a few thousand: the knapsack does the combinatorics in share units.

Used for the root's exhaustive pricing, and under joint at the nodes too: the leaves obey the
node's branching rules, and the bins' bounds take each together group as one item
(`statemerge.py`); the set search does the rest. Under the joint batch policy a type has
several options (batches): its items form a group of the knapsack capped at the type's demand,
whatever the batches (`statekernel`).
"""

from __future__ import annotations

import copy
import heapq
import time
from dataclasses import dataclass, field

import numpy as np

from igniter_opt.model.predict import Array
from igniter_opt.solvers.exact import statekernel as sk
from igniter_opt.solvers.exact import statepool
from igniter_opt.solvers.exact.branching import Rules
from igniter_opt.solvers.exact.layout import ALONE, coefficients, hardware_vector
from igniter_opt.solvers.exact.oracle import FULL, Options, demand_terms
from igniter_opt.solvers.exact.statemerge import TogetherGroups
from igniter_opt.solvers.exact.view import PricerView

EDGE = 1e-9  # a tolerance, not tuning: bins are closed below by this much less, against float noise in C and P


@dataclass(order=True)
class _Bin:
    key: float  # minus the bound (heapq is a min-heap)
    m: int = field(compare=False)
    c_lo: float = field(compare=False)
    c_hi: float = field(compare=False)
    p_lo: float = field(compare=False)
    p_hi: float = field(compare=False)
    floor: bool = field(compare=False, default=False)
    lam: float = field(compare=False, default=0.0)  # the Lagrangian's first multipliers (the parent's best)
    mu: float = field(compare=False, default=0.0)


@dataclass
class _Visited:
    """What one bin's visit on a worker left: open bins, sets found (and collected), counters."""

    open: list[_Bin]
    found: dict[tuple[int, ...], tuple[Array, float]]
    extra: dict[tuple[int, ...], tuple[Array, float]]
    bins: int
    unresolved: float


@dataclass
class StateResult:
    """Sets found above the threshold (option tuples, shares, value) and what bounds the rest."""

    found: list[tuple[tuple[int, ...], Array, float]]
    complete: bool
    best: float
    bins: int
    open_reach: float


class StateSpaceSearch(TogetherGroups):
    """One pricing call: items from the duals, then best-first over bins until done or cut."""

    def __init__(self, pricer: PricerView, duals: Array, threshold: float, deadline: float, max_columns: int,
                 soft_deadline: float | None = None, rules: Rules | None = None, collect: float | None = None,
                 leaves: tuple[float, float] | None = None):
        self.hw, self.shares_of, self.s = pricer.hw, pricer.shares_of, pricer.settings
        # a leaf's width in L2 demand and in watts (settings.leaf_c, leaf_p unless the caller says)
        self.leaf_c, self.leaf_p = leaves if leaves is not None else (self.s.leaf_c, self.s.leaf_p)
        self.threshold, self.deadline, self.max_columns = threshold, deadline, max_columns
        # sets met on the way worth more than `collect` (below the threshold) come back as columns
        # too, unless the search proves the threshold (joint's tail, issue 24: they cost nothing more)
        self.collect = threshold if collect is None else min(collect, threshold)
        self.extra: dict[tuple[int, ...], tuple[Array, float]] = {}
        self.soft_deadline = deadline if soft_deadline is None else min(deadline, soft_deadline)
        self.units = round(FULL / self.hw.unit_pct)
        rules = rules or Rules()
        self.groups = rules.sorted_groups()
        self._items(pricer, rules.priced(duals))
        self._rules(pricer, rules)
        self.max_m = self._max_members()
        self._scratch(self.option.size, self.max_m + 1)
        self._merge()
        self.p_alone, self.c_alone = self._demand(pricer.o, self.coef[ALONE])
        self.p_full, self.c_full = self._demand(pricer.o, np.full(self.option.size, FULL))
        self.found: dict[tuple[int, ...], tuple[Array, float]] = {}
        self.bins = 0
        self.unresolved = -np.inf

    def _items(self, pricer: PricerView, duals: Array) -> None:
        """Items: the options of positive dual, each repeated as often as its type's demand (and
        its share alone) allows, largest dual first (a leaf meets good sets first); their
        coefficients stacked for the kernels."""
        o, hw = pricer.o, self.hw
        value = duals[pricer.option_type]
        opts = np.nonzero((value > 1e-12) & np.isfinite(o.alone))[0]
        kind = pricer.option_type[opts]
        # by dual, a type's options together (by option, as the stable sort gave with one option each)
        opts = opts[np.lexsort((opts, kind, -value[opts]))]
        kind = pricer.option_type[opts]
        demand = pricer.demand[kind]
        copies = np.minimum(demand, np.floor(FULL / o.alone[opts] + 1e-9)).astype(int)
        self.option = i = np.repeat(opts, copies)
        self.value = value[i]
        self.coef = coefficients(o, i)
        self.hwv = hardware_vector(hw)
        # groups: one per type, its items contiguous; capped (at its demand) when it has several options
        item_kind = pricer.option_type[i]
        cut = np.flatnonzero(np.diff(item_kind)) + 1 if i.size else np.zeros(0, dtype=np.int64)
        self.glo = np.concatenate([[0], cut]).astype(np.int64) if i.size else np.zeros(0, dtype=np.int64)
        self.ghi = np.concatenate([cut, [i.size]]).astype(np.int64) if i.size else np.zeros(0, dtype=np.int64)
        first = item_kind[self.glo]
        several = np.array([np.unique(i[a:b]).size > 1 for a, b in zip(self.glo, self.ghi, strict=True)], dtype=bool)
        self.gcap = np.where(several, pricer.demand[first], 0).astype(np.int64)
        self.gof = np.repeat(np.arange(self.glo.size, dtype=np.int64), self.ghi - self.glo)
        # the fewest share units any item of a group takes alone, for the member bound
        self._group_alone = [(int(pricer.demand[t]), float(o.alone[i[a:b]].min()))
                             for t, a, b in zip(first, self.glo, self.ghi, strict=True)]

    def _rules(self, pricer: PricerView, rules: Rules) -> None:
        """A node's branching rules for the leaves (types apart as a matrix, pairs together);
        the bounds ignore the apart rules (upper bounds still) and take together groups as one
        item (`_merge`); the sets kept obey both."""
        self.rules = rules
        self.ityp = pricer.option_type[self.option].astype(np.int64)
        types = len(pricer.demand)
        self.apart = np.zeros((types, types) if rules.apart else (0, 0), dtype=np.bool_)
        for a, b in rules.apart:
            self.apart[a, b] = self.apart[b, a] = True
        self.together = np.array(rules.together, dtype=np.int64).reshape(-1, 2)

    def _admits(self, chosen: Array) -> bool:
        """Does the set obey the node's rules (always at the root)?"""
        return self.rules.root or self.rules.admits(self.ityp[chosen])

    def _scratch(self, n: int, mm: int) -> None:
        """The kernels' working arrays, allocated once per call (n items, up to mm - 1 members)."""
        u = self.units
        d = int(min(self.gcap.max(initial=0), mm - 1))  # the largest count a capped group tracks
        self.w = np.empty(n, dtype=np.int64)
        self.c, self.p, self.vbuf = np.empty(n), np.empty(n), np.empty(n)
        self.best, self.take = np.empty((mm, u + 1)), np.zeros((n, d + 1, mm, u + 1), dtype=np.bool_)
        self.tab, self.gc = np.empty((d + 1, mm, u + 1)), np.zeros((self.glo.size, mm, u + 1), dtype=np.int64)
        self.chosen, self.best_set, self.cand = (np.zeros(n, dtype=np.bool_) for _ in range(3))
        self.suffix = np.empty((2, n + 1, mm, u + 1))  # a leaf's bounds: Lagrangian, plain
        self.low = np.empty((2, n + 1, mm))  # and the least L2 and power of the members to come
        self.picks, self.starts, self.room = (np.zeros(mm + 1, dtype=np.int64) for _ in range(3))
        self.acc, self.out = np.zeros((4, mm + 1)), np.zeros(4)
        self.tpos, self.tr = np.zeros(mm + 1, dtype=np.int64), np.zeros((5, mm + 1))  # a leaf's truth check
        self.ones = np.ones(n, dtype=np.int64)  # every item one member (no together group merged)

    def _demand(self, options: Options, shares: Array) -> tuple[Array, Array]:
        """Power above idle and L2 demand of every item at the given shares."""
        _, power, l2 = demand_terms(options, self.option[:, None], shares[:, None])
        return power[:, 0], l2[:, 0]

    def _max_members(self) -> int:
        """Most members whose alone shares fit one GPU together: each type at most its demand
        (or as many as fit alone) of its smallest option (with one option: its items)."""
        unit = self.hw.unit_pct
        reps = [min(d, int(np.floor(FULL / a + 1e-9))) for d, a in self._group_alone]
        alone = np.sort(np.repeat([round(a / unit) for _, a in self._group_alone], reps))
        return int(np.searchsorted(np.cumsum(alone), self.units, side="right"))

    def _root(self, m: int) -> _Bin:
        """The bin of every state m members can have: C and P between their least (members at
        their shares alone) and their most (members at a full GPU each)."""
        c_lo, c_hi = np.sort(self.c_alone)[:m].sum(), np.sort(self.c_full)[-m:].sum()
        p_lo, p_hi = np.sort(self.p_alone)[:m].sum(), np.sort(self.p_full)[-m:].sum()
        idle = self.hw.idle_power_w
        return _Bin(0.0, m, c_lo - 1e-6, c_hi + 1e-6, idle + p_lo - 1e-6, idle + p_hi + 1e-6)

    # -- one bin ----------------------------------------------------------------------------
    def _bound(self, b: _Bin) -> float:
        """Lagrangian bound of the bin (exact when out[2] says so; `chosen` then holds the set).
        At a node with together groups it runs over the bound items (`_merge`), and its optimum
        and candidate map back to the kept items: one holding a group item is no set, so neither
        exact nor a candidate."""
        sk.weights(b.m, b.c_lo - EDGE, b.p_lo - EDGE, self.coef, self.hwv, self.units, self.w, self.c, self.p)
        self._caps(b)
        self.bins += 1
        if self.merged:
            self._merged_weights()
            items, groups = (self.bw, self.bvalue, self.bc, self.bp, self.bcnt), (self.bglo, self.bghi, self.bgcap)
            take, chosen, vbuf, cand, tab, gc = self.btake, self.bchosen, self.bvbuf, self.bcand, self.btab, self.bgc
        else:
            items, groups = (self.w, self.value, self.c, self.p, self.ones), (self.glo, self.ghi, self.gcap)
            take, chosen, vbuf, cand, tab, gc = self.take, self.chosen, self.vbuf, self.cand, self.tab, self.gc
        # the multipliers start from the parent bin's best (a half of it: they are near its own)
        ub = float(sk.lagrangian(b.m, *items, self.units, b.c_hi, b.p_hi - self.hw.idle_power_w, self.threshold,
                                 self.s.iterations, b.lam, b.mu, *groups, self.best, take, chosen, vbuf, self.out,
                                 cand, tab, gc))
        b.lam, b.mu = self.out[0], self.out[1]
        if self.merged:
            self._unmerge()
        return ub

    def _caps(self, b: _Bin) -> None:
        """Items whose own L2 or power already passes the bin's top cannot be in its sets."""
        self.w[(self.c >= b.c_hi) | (self.p >= b.p_hi - self.hw.idle_power_w)] = -1

    def _exact(self, b: _Bin) -> tuple[float, bool]:
        """The bin's optimum above the threshold (value, proven) with the set in best_set."""
        lam, mu = self.out[0], self.out[1]
        # the steps the time left to the deadline allows (a leaf is one call of the kernel)
        steps = max(self.s.leaf_steps, int((self.deadline - time.perf_counter()) * self.s.leaf_rate))
        got, cut = sk.leaf(b.m, self.w, self.value, self.c, self.p, self.ones, self.units, b.c_hi,
                           b.p_hi - self.hw.idle_power_w, lam, mu, self.threshold, self.s.max_sets, steps, self.glo,
                           self.ghi, self.gcap, self.gof, self.suffix, self.low, self.tab, self.vbuf, self.picks,
                           self.starts, self.room, self.acc, self.best_set, self.ityp, self.apart, self.together,
                           self.hwv, self.coef, self.option, self.tpos, self.tr)
        return float(got), not cut

    def _settles(self, chosen: Array) -> bool:
        """Does the set fit in truth? Then it is recorded (when above the threshold)."""
        key = tuple(sorted(int(x) for x in self.option[chosen]))
        if key in self.found:
            return True
        shares = self.shares_of(key)
        if shares is None:
            return False
        value = float(self.value[chosen].sum())
        if value > self.threshold:
            self.found[key] = (shares, value)
        elif value > self.collect:
            self.extra[key] = (shares, value)
        return True

    def _visit(self, b: _Bin, heap: list[_Bin]) -> None:
        """Bound a bin; settle it by a true column or its exact optimum, or queue it."""
        ub = self._bound(b)
        if self.out[3] > self.collect and not self.out[2] and self._admits(self.cand):
            self._settles(self.cand)  # a column met on the way (the bin stays open)
        if ub <= self.threshold:
            if self.out[2] and ub > self.collect and self._admits(self.chosen):
                self._settles(self.chosen)  # the bin's optimum, below the threshold (collect only)
            return
        leaf_c, leaf_p, floor = self.leaf_c, self.leaf_p, self.s.floor
        leaf = b.c_hi - b.c_lo <= leaf_c and b.p_hi - b.p_lo <= leaf_p
        exact = bool(self.out[2]) and self._admits(self.chosen)
        if exact and self._settles(self.chosen):
            return
        # a leaf settles its bin in truth; so does a wider bin whose Lagrangian optimum breaks a
        # rule (the leaf's obeys them); one whose optimum does not fit is halved
        if leaf or (self.out[2] and not exact):
            got, proven = self._exact(b)
            if proven:
                if got <= self.threshold or self._settles(self.best_set):
                    return
                ub = got
        b.key = -ub
        b.floor = b.c_hi - b.c_lo <= leaf_c / floor and b.p_hi - b.p_lo <= leaf_p / floor
        heapq.heappush(heap, b)

    def _halves(self, b: _Bin) -> list[_Bin]:
        """Halve the bin along the dimension widest relative to its leaf size."""
        if (b.c_hi - b.c_lo) / self.leaf_c >= (b.p_hi - b.p_lo) / self.leaf_p:
            mid = (b.c_lo + b.c_hi) / 2
            return [_Bin(0.0, b.m, b.c_lo, mid, b.p_lo, b.p_hi, lam=b.lam, mu=b.mu),
                    _Bin(0.0, b.m, mid, b.c_hi, b.p_lo, b.p_hi, lam=b.lam, mu=b.mu)]
        mid = (b.p_lo + b.p_hi) / 2
        return [_Bin(0.0, b.m, b.c_lo, b.c_hi, b.p_lo, mid, lam=b.lam, mu=b.mu),
                _Bin(0.0, b.m, b.c_lo, b.c_hi, mid, b.p_hi, lam=b.lam, mu=b.mu)]

    # -- threads (statepool.py) ----------------------------------------------------------------
    def worker(self) -> StateSpaceSearch:
        """A copy for a worker thread: the same items, rules and duals, its own scratch and sets."""
        w = copy.copy(self)
        w._scratch(self.option.size, self.max_m + 1)
        w._merge()
        w.found, w.extra, w.bins, w.unresolved = {}, {}, 0, -np.inf
        return w

    def visit_one(self, b: _Bin) -> _Visited:
        """Visit one bin (on a worker): what it left, and the worker afresh."""
        heap: list[_Bin] = []
        self._visit(b, heap)
        out = _Visited(heap, self.found, self.extra, self.bins, self.unresolved)
        self.found, self.extra, self.bins, self.unresolved = {}, {}, 0, -np.inf
        return out

    def absorb(self, v: _Visited) -> list[_Bin]:
        """A worker's visit into this search: its sets and counters; the bins it left open."""
        for key, got in v.found.items():
            self.found.setdefault(key, got)
        for key, got in v.extra.items():
            self.extra.setdefault(key, got)
        self.bins += v.bins
        self.unresolved = max(self.unresolved, v.unresolved)
        return v.open

    def _more(self, heap: list[_Bin]) -> bool:
        """Is a bin above the threshold left?"""
        return bool(heap) and -heap[0].key > self.threshold

    def _stop(self) -> bool:
        """Enough columns, or the deadline (the soft one once a column is found)?"""
        now = time.perf_counter()
        return len(self.found) >= self.max_columns or now > self.deadline or \
            bool(self.found and now > self.soft_deadline)

    def _next(self, heap: list[_Bin]) -> list[_Bin] | None:
        """The top bin's halves; None for a bin at the floor (kept as unresolved instead)."""
        b = heapq.heappop(heap)
        if b.floor:
            self.unresolved = max(self.unresolved, -b.key)
            return None
        return self._halves(b)

    def _serial(self, heap: list[_Bin], until: float) -> bool | None:
        """Best first on this thread: complete (True), cut (False), or None at `until` (the
        threads take over)."""
        while self._more(heap):
            if self._stop():
                return False
            if time.perf_counter() > until:
                return None
            for half in self._next(heap) or []:
                self._visit(half, heap)
        return True

    def run(self) -> StateResult:
        """Best first until no bin passes the threshold, enough columns, or the deadline; after
        `state_parallel_after` seconds on `state_threads` threads (statepool.py)."""
        heap: list[_Bin] = []
        start = time.perf_counter()
        for m in range(1, self.max_m + 1):  # max_m never exceeds the number of items
            self._visit(self._root(m), heap)
        threads = min(self.s.state_threads, statepool.usable_cores())
        complete = self._serial(heap, start + self.s.state_parallel_after if threads > 1 else np.inf)
        if complete is None:
            pool = statepool.BinPool(self, threads)
            try:
                complete = statepool.drain(pool, heap, lambda: self._more(heap), lambda: self._next(heap),
                                           self._stop)
            finally:
                pool.close()
        best = max((v for _, v in self.found.values()), default=0.0)
        top = -heap[0].key if heap and not complete else -np.inf
        found = [(k, s, v) for k, (s, v) in self.found.items()]
        found.sort(key=lambda f: -f[2])
        proven = complete and self.unresolved <= self.threshold
        if self.extra and not (proven and not found):  # a proof comes back without them
            extra = sorted(((k, s, v) for k, (s, v) in self.extra.items() if k not in self.found), key=lambda f: -f[2])
            found += extra[:max(0, self.max_columns - len(found))]
        return StateResult(found, proven, best, self.bins, max(top, self.unresolved))


def applicable(options: Options) -> bool:
    """L2 and power growing with the share (so members at a full GPU bound a state from above).
    Several options per type (policy `joint`) are groups capped at the type's demand."""
    return bool((options.l2[:, 0] >= 0).all() and (options.power[:, 0] >= 0).all())
