"""The model for one candidate set, compiled with numba: the least shares of its members.

Arithmetic. `least` is `oracle.least_shares` for one set, operation for operation: the same
Jacobi step from the same start (the parent's shares plus the candidate's pair-bounded share),
the same grid rounding ceil(x / unit - 1e-9), the same forward confirmation that bumps float-
noise violators by one unit, and sums taken in numpy's pairwise order (`psum`), so the shares
are bit for bit those the numpy search computes. Members are kept in position order, as there.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from igniter_opt.solvers.exact.layout import (
    BATCH,
    C0,
    C1,
    GAMMA,
    HAF,
    HASCH,
    HBSCH,
    HCAP,
    HF,
    HIDLE,
    HUNIT,
    K4,
    K5,
    KERN,
    KL2,
    LATCAP,
    LIMIT,
    P0,
    P1,
    RATE,
    TIDLE,
    TIO,
    TOUT,
)
from igniter_opt.solvers.exact.oracle import FULL, MAX_ROUNDS

# Compiled without numba's runtime (NRT): no reference counting. With it, every array handed to
# a helper costs an atomic increment and decrement, which measured ~70% of the search's time;
# without it nothing may be allocated inside, so kernel.search passes every scratch array in.
# nogil: the set search's walkers run on threads (setwalk.py).
compiled = njit(cache=True, _nrt=False, nogil=True)  # type: ignore[call-overload]
MAX_MEMBERS = 128  # psum's single block; Pricer uses the kernel only when unit_pct * 128 > 100


@compiled
def psum(a, lo, n):  # pragma: no cover - compiled
    """numpy's pairwise summation of a[lo:lo+n] (what ndarray.sum(axis=1) does per row), for
    n <= 128 (one block: numpy recurses only above; not here, since cached recursive functions
    crash numba when loaded back, see MAX_MEMBERS)."""
    if n < 8:
        res = -0.0
        for i in range(n):
            res += a[lo + i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - (n % 8):
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@compiled
def clock(hw, total_power):  # pragma: no cover - compiled
    """oracle.clock_ratio for one GPU."""
    if total_power > hw[HCAP]:
        return 1 + hw[HAF] * (total_power - hw[HCAP]) / hw[HF]
    return 1.0


@compiled
def sched(hw, members):  # pragma: no cover - compiled
    """oracle.scheduling_inc."""
    m = float(members)
    if m >= 2:
        return hw[HASCH] * m + hw[HBSCH]
    return 0.0


@compiled
def needed(hw, c, others_l2, ratio, inc):  # pragma: no cover - compiled
    """oracle.needed_share of the option with coefficients c (a tuple: one column of C) given the
    others' L2 demand, the clock ratio and inc, the scheduling_inc of the member count."""
    budget = c[LIMIT] * ratio - c[KERN] * inc - c[TIDLE]
    x = budget / (1 + c[KL2] * others_l2) - c[K5]
    if x > 0:
        share = c[GAMMA] / x - c[K4]
    else:
        share = np.inf
    units = np.ceil(share / hw[HUNIT] - 1e-9)
    return max(units, 1.0) * hw[HUNIT]


@compiled
def demand(c, r):  # pragma: no cover - compiled
    """oracle.demand_terms of the option with coefficients c at share r: (t_solo, power, L2)."""
    t_solo = c[GAMMA] / (r + c[K4]) + c[K5]
    ability = 1000 * c[BATCH] / t_solo
    return t_solo, c[P0] * ability + c[P1], c[C0] * ability + c[C1]


@compiled
def col(C, p):  # pragma: no cover - compiled
    """Column p of the coefficient block: one option's coefficients, as a tuple."""
    return (C[0, p], C[1, p], C[2, p], C[3, p], C[4, p], C[5, p], C[6, p], C[7, p], C[8, p], C[9, p],
            C[10, p], C[11, p], C[12, p], C[13, p], C[14, p], C[15, p], C[16, p])


@compiled
def least(hw, C, pos, m, r, pw, l2, ts, new, known):  # pragma: no cover - compiled
    """oracle.least_shares of the set pos[:m] from the start r[:m] (updated in place).

    True when the set fits (r holds its least shares); new is scratch. ts, pw, l2 hold the
    demand terms of the members at r: the first `known` are given (the parent's members at
    their shares), the others are computed here, and later rounds recompute only the members
    whose share moved (same inputs, same floats).
    """
    unit = hw[HUNIT]
    inc = sched(hw, m)
    for j in range(known, m):
        ts[j], pw[j], l2[j] = demand(col(C, pos[j]), r[j])
    for _ in range(MAX_ROUNDS):
        ratio = clock(hw, hw[HIDLE] + psum(pw, 0, m))
        l2s = psum(l2, 0, m)
        finite = True
        same = True
        for j in range(m):
            v = max(r[j], needed(hw, col(C, pos[j]), l2s - l2[j], ratio, inc))
            new[j] = v
            if not np.isfinite(v):
                finite = False
            if v != r[j]:
                same = False
        if not finite or psum(new, 0, m) > FULL + 1e-9:
            return False
        if same:  # converged: confirm with the forward model (oracle.violated)
            late_any = False
            for j in range(m):
                p = pos[j]
                t_sched = C[KERN, p] * inc + C[TIDLE, p]
                t_act = ts[j] * (1 + C[KL2, p] * (l2s - l2[j]))
                gpu = (t_sched + t_act) / ratio
                latency = gpu + C[TIO, p]
                throughput = C[BATCH, p] * 1000 / (gpu + C[TOUT, p])
                if latency > C[LATCAP, p] or throughput < C[RATE, p]:
                    new[j] += unit
                    late_any = True
            if not late_any:
                return True
        for j in range(m):
            if new[j] != r[j]:
                r[j] = new[j]
                ts[j], pw[j], l2[j] = demand(col(C, pos[j]), r[j])
    return False
