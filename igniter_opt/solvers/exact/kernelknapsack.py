"""The knapsack relaxations the compiled set search (kernel.py) bounds a child by: fractional,
"the a largest values that fit", and the integer knapsack in share units (each a valid upper
bound on what the child's completions can add; kernel.py's docstring says which is used when)."""

from __future__ import annotations

import numpy as np

from igniter_opt.solvers.exact.kernelshares import compiled


@compiled
def fractional(vals, ws, ms, n, cap, key):  # pragma: no cover - compiled
    """Fractional bounded knapsack over n items (value, weight, multiplicity) of capacity cap:
    items by decreasing value per weight (picked one by one: few fit), the last one in part."""
    for i in range(n):
        key[i] = vals[i] / max(ws[i], 1e-9)
    total = 0.0
    left = cap
    while left > 0:
        i = -1
        for t in range(n):
            if key[t] >= 0 and (i < 0 or key[t] > key[i]):
                i = t
        if i < 0:
            break
        key[i] = -1.0
        wm = ws[i] * ms[i]
        vm = vals[i] * ms[i]
        if wm <= left:
            total += vm
            left -= wm
        else:
            if wm > 1e-12:
                total += vm * left / wm
            break
    return total


@compiled
def top(vals, ms, ws, n, cap, a, buf):  # pragma: no cover - compiled
    """Sum of the a largest values among the n items whose weight fits cap, each item counted
    up to its multiplicity (buf: a slots, kept in decreasing order)."""
    for k in range(a):
        buf[k] = 0.0
    for i in range(n):
        if ws[i] > cap + 1e-9:
            continue
        x = vals[i]
        for _ in range(min(ms[i], a)):
            if x <= buf[a - 1]:
                break
            k = a - 1
            while k > 0 and buf[k - 1] < x:
                buf[k] = buf[k - 1]
                k -= 1
            buf[k] = x
    total = 0.0
    for k in range(a):
        total += buf[k]
    return total


@compiled
def integer(vals, ws, ms, n, cap, unit, limit, dp):  # pragma: no cover - compiled
    """0-1 knapsack over n items (each copied up to its multiplicity) in share units: the best
    value of at most `limit` items whose weights sum to at most cap (dp: scratch rows).

    Exact for the relaxation the fractional knapsack relaxes further (every share is a multiple
    of the unit, so rounding weights and capacity to units loses nothing), hence a valid and
    tighter bound: weights round to the nearest unit, the capacity down with the 1e-9 slack of
    the fractional bound's `w <= cap + 1e-9`.
    """
    size = int(np.floor(cap / unit + 1e-9))
    if size <= 0:
        return 0.0
    if limit >= size:  # every item takes a unit at least: the count cannot bind, one row
        for x in range(size + 1):
            dp[0, x] = 0.0
        for i in range(n):
            wu = max(int(np.rint(ws[i] / unit)), 1)
            if wu > size:
                continue
            for _ in range(min(ms[i], size // wu)):
                for x in range(size, wu - 1, -1):
                    cand = dp[0, x - wu] + vals[i]
                    dp[0, x] = max(dp[0, x], cand)
        return dp[0, size]
    rows = limit
    for c in range(rows + 1):
        for x in range(size + 1):
            dp[c, x] = 0.0
    for i in range(n):
        wu = max(int(np.rint(ws[i] / unit)), 1)
        if wu > size:
            continue
        for _ in range(min(ms[i], rows, size // wu)):
            for c in range(rows, 0, -1):
                for x in range(size, wu - 1, -1):
                    cand = dp[c - 1, x - wu] + vals[i]
                    dp[c, x] = max(dp[c, x], cand)
    return dp[rows, size]
