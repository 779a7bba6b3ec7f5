"""Compiled pieces of the interference-state pricing (`statespace.py`): weights, knapsacks, leaves.

Everything here works on *items* (an option, repeated as often as its type's demand allows) and
on a *bin* of interference states: m members, total L2 demand C in [C_lo, C_hi), total power P
in [P_lo, P_hi). `weights` gives each item the least grid share it needs when the state is at
least the bin's lower corner; `lagrangian` bounds the best set of the bin (the knapsack over
those weights with exactly m items, its side rows sum c <= C_hi and sum p <= P_hi - P_idle
moved into the objective); `leaf` finds the best set of the bin exactly. Arrays are allocated
by the caller and reused.

Items come in *groups* (glo[g]..ghi[g]-1, contiguous): a type's items. When the type has
several batch options (policy `joint`), its group is *capped*: at most gcap[g] of its items (the
type's demand) go in one set, whatever their batches; a type with one option has gcap 0 (its
copies already number at most its demand) and is the plain 0/1 knapsack.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from igniter_opt.solvers.exact import kernelshares as ks
from igniter_opt.solvers.exact.layout import (
    ALONE,
    BATCH,
    C0,
    C1,
    GAMMA,
    HAF,
    HASCH,
    HBSCH,
    HCAP,
    HF,
    HUNIT,
    K4,
    K5,
    KERN,
    KL2,
    LIMIT,
    P0,
    P1,
    TIDLE,
)

NEG = -1e18  # a constant: "no set" in the knapsack tables
# the item coefficient block and the hardware vector: layout.py (the set search's layout too)

_compiled = njit(cache=True, nogil=True)  # nogil: a state search's worker threads (statepool.py)


@_compiled
def weights(m, c_lo, p_lo, coef, hw, units, w, c, p):  # pragma: no cover - compiled
    """Per item: the least grid share (in units; -1 when none) at which it meets its limit when
    the GPU holds m members, the others' L2 demand is at least c_lo minus its own and the total
    power at least p_lo; its own L2 demand c and power above idle p at that share.

    The test is `needed_share` of the oracle with those lower bounds, so a member's least share
    in any set whose state is at least (m, c_lo, p_lo) is at least this weight."""
    unit = hw[HUNIT]
    ratio = 1.0
    if p_lo > hw[HCAP]:
        ratio = 1.0 + hw[HAF] * (p_lo - hw[HCAP]) / hw[HF]
    inc = hw[HASCH] * m + hw[HBSCH] if m >= 2 else 0.0
    for i in range(coef.shape[1]):
        w[i] = -1
        g, k4, k5 = coef[GAMMA, i], coef[K4, i], coef[K5, i]
        budget = coef[LIMIT, i] * ratio - coef[KERN, i] * inc - coef[TIDLE, i]
        for u in range(max(1, int(round(coef[ALONE, i] / unit))), units + 1):
            t_solo = g / (u * unit + k4) + k5
            ability = 1000.0 * coef[BATCH, i] / t_solo
            own = coef[C0, i] * ability + coef[C1, i]
            x = budget / (1.0 + coef[KL2, i] * (c_lo - own)) - k5
            if x <= 0:
                continue
            need = max(1.0, np.ceil((g / x - k4) / unit - 1e-9))
            if u >= need:
                w[i] = u
                c[i] = own
                p[i] = coef[P0, i] * ability + coef[P1, i]
                break


@_compiled
def knapsack(m, w, v, cnt, units, glo, ghi, gcap, best, take, chosen, tab, gc):  # pragma: no cover - compiled
    """Max sum v over items holding exactly m members with sum w <= units (items with w < 0 left
    out) and at most gcap[g] items of each capped group g (items glo[g]..ghi[g]-1; gcap 0: no cap
    beyond the items themselves); the chosen items in `chosen`. Returns NEG when no m members fit.
    An item holds cnt[i] members (1, or a node's together group as one item: statespace.py).

    A capped group (a type with several batch options) is a 0/1 knapsack with one more index, the
    count taken from the group so far (`tab`); `gc` remembers the count behind each final state."""
    best[:m + 1, :units + 1] = NEG
    best[0, 0] = 0.0
    for g in range(glo.size):
        d = min(gcap[g], m)
        if d <= 0:
            for i in range(glo[g], ghi[g]):
                if w[i] < 0:
                    continue
                take[i, 0, :m + 1, :units + 1] = False
                for k in range(m, cnt[i] - 1, -1):
                    for s in range(units, w[i] - 1, -1):
                        cand = best[k - cnt[i], s - w[i]] + v[i]
                        if cand > best[k, s]:
                            best[k, s] = cand
                            take[i, 0, k, s] = True
            continue
        tab[0, :m + 1, :units + 1] = best[:m + 1, :units + 1]
        tab[1:d + 1, :m + 1, :units + 1] = NEG
        top = 0
        for i in range(glo[g], ghi[g]):
            if w[i] < 0:
                continue
            take[i, :d + 1, :m + 1, :units + 1] = False
            top = min(d, top + 1)
            for cc in range(top, 0, -1):
                for k in range(m, cnt[i] - 1, -1):
                    for s in range(units, w[i] - 1, -1):
                        cand = tab[cc - 1, k - cnt[i], s - w[i]] + v[i]
                        if cand > tab[cc, k, s]:
                            tab[cc, k, s] = cand
                            take[i, cc, k, s] = True
        for k in range(m + 1):
            for s in range(units + 1):
                gc[g, k, s] = 0
                for cc in range(1, top + 1):
                    if tab[cc, k, s] > best[k, s]:
                        best[k, s] = tab[cc, k, s]
                        gc[g, k, s] = cc
    res, at = NEG, 0
    for s in range(units + 1):
        if best[m, s] > res:
            res, at = best[m, s], s
    chosen[:] = False
    if res <= NEG / 2:
        return NEG
    k = m
    for g in range(glo.size - 1, -1, -1):
        capped = min(gcap[g], m) > 0
        cc = gc[g, k, at] if capped else 0
        for i in range(ghi[g] - 1, glo[g] - 1, -1):
            if w[i] < 0 or k < cnt[i]:
                continue
            if capped:
                if cc > 0 and take[i, cc, k, at]:
                    chosen[i] = True
                    cc -= 1
                    k -= cnt[i]
                    at -= w[i]
            elif take[i, 0, k, at]:
                chosen[i] = True
                k -= cnt[i]
                at -= w[i]
    return res


@_compiled
def lagrangian(m, w, val, c, p, cnt, units, c_cap, p_cap, target, iters, lam0, mu0, glo, ghi, gcap, best, take,
               chosen, vbuf, out, cand, tab, gc):  # pragma: no cover - compiled
    """An upper bound on the bin's best set: for multipliers lam, mu >= 0,
    max sum (val - lam c - mu p) + lam c_cap + mu p_cap over the knapsack is one, and Polyak
    steps towards `target` search the multipliers, from (lam0, mu0) (any start gives a bound;
    a bin starts from its parent's best, which the halves are near). out: [lam, mu, exact] of the best bound;
    exact = 1 when its knapsack solution meets both side rows with complementary slackness (the
    bound is then the bin's optimum and `chosen` holds it). Of the knapsack solutions met on the
    way, the best of those meeting both side rows is kept in `cand`, its value in out[3] (a
    candidate column: the bin's sets, though not necessarily its best)."""
    n = w.size
    lam, mu, ub = lam0, mu0, np.inf
    out[0], out[1], out[2], out[3] = lam0, mu0, 0.0, NEG
    for _ in range(iters):
        for i in range(n):
            vbuf[i] = val[i] - lam * c[i] - mu * p[i]
        got = knapsack(m, w, vbuf, cnt, units, glo, ghi, gcap, best, take, chosen, tab, gc)
        if got <= NEG / 2:
            return NEG
        bound = got + lam * c_cap + mu * p_cap
        if bound < ub:
            ub, out[0], out[1] = bound, lam, mu
        sc, sp, sv = 0.0, 0.0, 0.0
        for i in range(n):
            if chosen[i]:
                sc += c[i]
                sp += p[i]
                sv += val[i]
        if sc <= c_cap and sp <= p_cap and sv > out[3]:
            out[3] = sv
            cand[:] = chosen
        dc, dp = (c_cap - sc) / 40.0, (p_cap - sp) / 500.0  # scaled: C is tens, P hundreds
        if dc >= 0 and dp >= 0 and abs(lam * dc) + abs(mu * dp) < 1e-12:
            out[0], out[1], out[2] = lam, mu, 1.0
            return bound
        if ub <= target:
            return ub
        if lam <= 0 and dc > 0:
            dc = 0.0
        if mu <= 0 and dp > 0:
            dp = 0.0
        norm = dc * dc + dp * dp
        if norm <= 0:
            break
        step = (bound - target) / norm
        lam = max(0.0, lam - step * dc / 40.0)
        mu = max(0.0, mu - step * dp / 500.0)
    return ub


@_compiled
def suffixes(m, w, v, cnt, units, glo, ghi, gcap, suffix, tab):  # pragma: no cover - compiled
    """suffix[i, k, s]: the best sum v of items from i on holding k members with sum w <= s
    (items with w < 0 left out; item i holds cnt[i] members; a capped group's items at most gcap
    of them, counted inside the group only, a relaxation that stays an upper bound); NEG when none."""
    n = w.size
    suffix[n, 0, :units + 1] = 0.0
    suffix[n, 1:m + 1, :units + 1] = NEG
    for g in range(glo.size - 1, -1, -1):
        d = min(gcap[g], m)
        if d <= 0:
            for i in range(ghi[g] - 1, glo[g] - 1, -1):
                for k in range(m + 1):
                    for s in range(units + 1):
                        b = suffix[i + 1, k, s]
                        if w[i] >= 0 and k >= cnt[i] and s >= w[i]:
                            b = max(b, suffix[i + 1, k - cnt[i], s - w[i]] + v[i])
                        suffix[i, k, s] = b
            continue
        tab[0, :m + 1, :units + 1] = suffix[ghi[g], :m + 1, :units + 1]
        tab[1:d + 1, :m + 1, :units + 1] = NEG
        for i in range(ghi[g] - 1, glo[g] - 1, -1):
            if w[i] >= 0:
                for cc in range(d, 0, -1):
                    for k in range(m, cnt[i] - 1, -1):
                        for s in range(units, w[i] - 1, -1):
                            cand = tab[cc - 1, k - cnt[i], s - w[i]] + v[i]
                            if cand > tab[cc, k, s]:
                                tab[cc, k, s] = cand
            for k in range(m + 1):
                for s in range(units + 1):
                    b = tab[0, k, s]
                    for cc in range(1, d + 1):
                        b = max(b, tab[cc, k, s])
                    suffix[i, k, s] = b


@_compiled
def least_sums(m, w, x, low):  # pragma: no cover - compiled
    """low[i, k]: the least sum of x over k items from i on (items with w < 0 left out; np.inf
    when fewer than k are left). A lower bound for the rest of a partial set whatever its groups
    and shares: the leaf cuts a pick whose side row the members still to come must break."""
    n = w.size
    low[n, 0] = 0.0
    low[n, 1:m + 1] = np.inf
    for i in range(n - 1, -1, -1):
        for k in range(m + 1):
            b = low[i + 1, k]
            if w[i] >= 0 and k >= 1:
                b = min(b, low[i + 1, k - 1] + x[i])
            low[i, k] = b


@_compiled
def fits(m, picks, opt, hwv, coef, tpos, tr):  # pragma: no cover - compiled
    """Does the set of items picks[:m] fit in truth? kernelshares.least from one unit each, the
    members in option order (the oracle's sorted key, so its sums are the oracle's, bit for bit);
    tpos: int scratch, tr: 5 float scratch rows."""
    for q in range(m):  # insertion sort of the picks by option
        x, k = picks[q], q
        while k > 0 and opt[tpos[k - 1]] > opt[x]:
            tpos[k] = tpos[k - 1]
            k -= 1
        tpos[k] = x
    for q in range(m):
        tr[0, q] = hwv[HUNIT]
    return ks.least(hwv, coef, tpos, m, tr[0], tr[1], tr[2], tr[3], tr[4], 0)


@_compiled
def leaf(m, w, val, c, p, cnt, units, c_cap, p_cap, lam, mu, tau, max_sets, max_steps, glo, ghi, gcap, gof, suffix,
         low, tab, vbuf, picks, starts, room, acc, best_set, ityp, apart, together, hwv, coef, opt, tpos,
         tr):  # pragma: no cover - compiled
    """The bin's best set worth more than tau, exactly: every set of m items whose Lagrangian
    value (multipliers lam, mu) and plain value can pass tau is listed by a depth-first search cut
    by suffix knapsack bounds of both (suffix[0], suffix[1]; acc[0], acc[1] their partial sums)
    and by the side rows themselves (acc[2], acc[3]: the partial set's L2 and power; low: the
    least the members still to come add), and the best one meeting both side rows is kept in
    best_set. A set meeting the side rows and passing tau passes it in both values and meets the
    rows at every prefix, so none is missed. A scan over the next pick stops at the first item
    from which the tables can no longer pass tau or meet a side row (they only shrink along it).
    Returns (value or NEG, cut):
    cut = 1 when max_sets sets were listed first, or the search took max_steps steps (a step: one
    item tried as the next pick; the caller sizes it to the time left), so the answer is not proven.

    cnt: every item holds one member here (all ones: the listing counts members one by one).

    Groups (gof: each item's group): a capped group's suffix tables count its items (at most
    gcap[g] from the rest of the group, a relaxation inside it that stays an upper bound), and the
    search never takes more than gcap[g] items of one group; a pick that fills its group's cap is
    bounded by the tables after the group.

    Branching rules (a node of branch-and-price): ityp[i] is item i's type, apart[a, b] says
    types a and b never share a GPU (a pick is skipped when it would), together[k] = (a, b) that
    a set holds both or neither (checked on complete sets). The tables ignore the rules (still
    upper bounds), so the answer is the best set obeying them. apart of shape (0, 0): no rule.

    In truth (hwv not empty): a listed set counts only when it fits by the oracle's least shares
    (`fits`), so the answer is the bin's best real column above tau, and NEG proves that no set
    whose state lies in the bin passes tau (each such set is listed, and fits)."""
    n = w.size
    const = lam * c_cap + mu * p_cap
    for i in range(n):
        vbuf[i] = val[i] - lam * c[i] - mu * p[i]
    suffixes(m, w, vbuf, cnt, units, glo, ghi, gcap, suffix[0], tab)
    suffixes(m, w, val, cnt, units, glo, ghi, gcap, suffix[1], tab)
    least_sums(m, w, c, low[0])
    least_sums(m, w, p, low[1])
    found = NEG
    if suffix[0, 0, m, units] + const <= tau or suffix[1, 0, m, units] <= tau:
        return found, 0
    sets, level, steps = 0, 0, 0
    starts[0], room[0] = 0, units
    acc[:, 0] = 0.0
    while level >= 0:
        if level == m:
            sets += 1
            sv, sc, sp = acc[1, m], acc[2, m], acc[3, m]  # summed in pick order on the way down
            ok = True
            for k in range(together.shape[0]):
                has_a, has_b = False, False
                for q in range(m):
                    has_a = has_a or ityp[picks[q]] == together[k, 0]
                    has_b = has_b or ityp[picks[q]] == together[k, 1]
                if has_a != has_b:
                    ok = False
            if ok and sc <= c_cap and sp <= p_cap and sv > tau and (hwv.size == 0 or
                                                                  fits(m, picks, opt, hwv, coef, tpos, tr)):
                tau = found = sv
                best_set[:] = False
                for q in range(m):
                    best_set[picks[q]] = True
            if sets >= max_sets:
                return found, 1
            level -= 1
            continue
        j, moved = starts[level], False
        todo = m - level  # members still to pick, this one included
        left = todo - 1
        while j < n:
            steps += 1
            if steps > max_steps:
                return found, 1
            # the tables from j on bound every pick at j or after it (they only shrink with j):
            # once they cannot pass tau or must break a side row, no later pick can either
            if (acc[0, level] + suffix[0, j, todo, room[level]] + const <= tau
                    or acc[1, level] + suffix[1, j, todo, room[level]] <= tau
                    or acc[2, level] + low[0, j, todo] > c_cap or acc[3, level] + low[1, j, todo] > p_cap):
                break
            g = gof[j]
            nxt = j + 1
            d = min(gcap[g], m)
            if d > 0:
                used = 0
                q = level - 1
                while q >= 0 and picks[q] >= glo[g]:
                    used += 1
                    q -= 1
                if used >= d:  # the group is full: on to the next one
                    j = ghi[g]
                    continue
                if used + 1 == d:
                    nxt = ghi[g]
            clash = False
            if apart.shape[0] > 0:
                for q in range(level):
                    if apart[ityp[picks[q]], ityp[j]]:
                        clash = True
            if not clash and 0 <= w[j] <= room[level]:
                value, plain = acc[0, level] + vbuf[j], acc[1, level] + val[j]
                sc, sp = acc[2, level] + c[j], acc[3, level] + p[j]
                rest = room[level] - w[j]
                # both bounds: the Lagrangian one (side rows priced) and the plain one (side rows
                # dropped), which is the tighter for sets with slack in the side rows; and the side
                # rows themselves, with the least L2 and power the members still to come can add
                if (value + suffix[0, nxt, left, rest] + const > tau and plain + suffix[1, nxt, left, rest] > tau
                        and sc + low[0, nxt, left] <= c_cap and sp + low[1, nxt, left] <= p_cap):
                    picks[level] = j
                    starts[level] = j + 1
                    starts[level + 1], room[level + 1] = j + 1, room[level] - w[j]
                    acc[0, level + 1], acc[1, level + 1] = value, plain
                    acc[2, level + 1], acc[3, level + 1] = sc, sp
                    moved = True
                    break
            j += 1
        level = level + 1 if moved else level - 1
    return found, 0
