"""The exhaustive pricing search compiled with numba: LevelSearch(beam=None) one set at a time.

Same search as `levels.LevelSearch` in exhaustive mode: sets of option *positions* grown in the
fixed order (a child is its parent plus any later position, the same position again while its
type's multiplicity allows, apart rules respected), the pair-share cut, the least-share fixed
point, every feasible set whose dual value passes the threshold recorded, and a child extended
only when its value plus the ghost knapsack bound of `LevelSearch._bound` passes the threshold.
Here the search is a depth-first one with an explicit stack inside one compiled function: a
node is expanded whole (all its children evaluated, so each child's bound can use its siblings'
shares, as the numpy search does), and its surviving children are pushed best-last so the most
promising one is expanded next.

Arithmetic: `kernelshares.py` (the model for one set, bit for bit the oracle's). Knapsacks:
`kernelknapsack.py`.

Bound. With settings.integer_bound off, the keep decision is exactly that of the numpy ghost bound
(the same sets are evaluated), except that (i) its "at most a items" cap counts a position's
multiplicity (the numpy one counts each position once, which is not an upper bound when one
option may be added twice) and (ii) positions an apart rule excludes are left out of the
knapsack (they can never join). It is reached through cheaper valid relaxations first, each of
which can only be larger than the numpy quantity it stands for: the total value of all positions
still allowed (>= any knapsack over them); per ghost count a, the top-a values among positions
whose *pair* weight w0 fits the capacity (w(a) >= w0, so fewer fit); and for "ghosts or more" (settings.ghosts),
capacity times the best value per w0 (>= the fractional knapsack). Only when a relaxation passes
is the exact per-a knapsack computed. Survival is decided as soon as one a passes, so a kept
child's bound (it only orders the stack) may be smaller than the numpy one.

With settings.integer_bound on (the default), a count a >= 2 whose fractional bound passes is re-checked
by the integer knapsack over the same items, weights and capacity (`_integer`): every least share
is a multiple of the unit, so weights are whole units and the capacity rounds down to whole units
without losing a feasible completion; the integer optimum of the same relaxation is therefore
still an upper bound on what a completions with that many additions can add, and never above the
fractional one. Fewer sets are extended; the sets above the threshold found are the same.

Budget. numba cannot read a clock cheaply, so the kernel returns after `max_evals` evaluations
(or when its found-buffer may overflow) with the whole search state in the stack arrays; the
caller checks its deadline and calls again to resume. `search` walks it through `setwalk.walk`,
which sizes the chunks so that one call lasts about settings.chunk_seconds and, for a search not
done after its first chunk, splits the stack over settings.set_threads threads.
"""

from __future__ import annotations

import numpy as np

from igniter_opt.solvers.exact import kernelknapsack as kk
from igniter_opt.solvers.exact import kernelshares as ks
from igniter_opt.solvers.exact.kernelrules import owes, together_groups
from igniter_opt.solvers.exact.kernelshares import MAX_MEMBERS as MAX_MEMBERS  # (Pricer reads it here)
from igniter_opt.solvers.exact.kernelshares import compiled as _compiled
from igniter_opt.solvers.exact.layout import (
    HIDLE,
    HUNIT,
    coefficients,
    hardware_vector,
)
from igniter_opt.solvers.exact.levels import LevelResult
from igniter_opt.solvers.exact.oracle import FULL
from igniter_opt.solvers.exact.setwalk import DONE, Walk, Walker, walk
from igniter_opt.solvers.exact.statepool import usable_cores

# the coefficient block and the hardware vector: layout.py (one layout for both compiled searches)

OUT_OF_EVALS, BUFFER_FULL = 1, 2  # _run's statuses besides setwalk.DONE (0: the stack is empty)
SCRATCH_F, SCRATCH_I = 25, 7  # scratch rows of _run: 14 + 11 of _survives, 4 + 3


@_compiled
def _survives(hw, C, value, ptype, mult_type, pair, apart, threshold, pos, m, r, v, own, own_pw,
              own_l2, used, sf, si, dp, integer, ghosts):  # pragma: no cover - compiled
    """Keep decision of LevelSearch._survivors for the child pos[:m] at shares r[:m], value v.

    Returns (keep, bound): a kept child's bound is the first one that passes (it orders the
    stack); a cut child's is the largest one computed. own_pw, own_l2: demand terms of each
    position at its share `own` beside the parent (computed once per parent: w0 is mostly own).
    sf, si: float and int scratch rows.
    """
    K = value.shape[0]
    last = pos[m - 1]
    s_pw, s_l2, r_a = sf[0], sf[1], sf[2]
    q_pw, q_l2, w0, vals, rv, rw, key = sf[3], sf[4], sf[5], sf[6], sf[7], sf[8], sf[9]
    allow, ims, rm = si[0], si[1], si[2]
    top_buf = sf[10]
    for j in range(m):
        _, s_pw[j], s_l2[j] = ks.demand(ks.col(C, pos[j]), r[j])
    l2_sum = ks.psum(s_l2, 0, m)
    power_sum = hw[HIDLE] + ks.psum(s_pw, 0, m)
    n = 0
    total = 0.0
    g_l2 = np.inf
    g_pw = np.inf
    for q in range(last, K):
        t = ptype[q]
        room = mult_type[t] - used[t]
        if room <= 0:
            continue
        w = max(own[q], pair[last, q])
        if not np.isfinite(w):
            continue
        ok = True
        for k in range(apart.shape[0]):  # a valid extra cut (the numpy bound ignores the rules)
            a0, b0 = apart[k, 0], apart[k, 1]
            if (t == a0 and used[b0] > 0) or (t == b0 and used[a0] > 0):
                ok = False
        if not ok:
            continue
        allow[n] = q
        w0[n] = w
        ims[n] = room
        vals[n] = value[q]
        if w == own[q]:
            q_pw[n], q_l2[n] = own_pw[q], own_l2[q]
        else:
            _, q_pw[n], q_l2[n] = ks.demand(ks.col(C, q), w)
        g_l2 = min(g_l2, q_l2[n])
        g_pw = min(g_pw, q_pw[n])
        total += value[q] * room
        n += 1
    if n == 0 or not (total > 1e-12 and v + total > threshold + 1e-12):
        return False, total
    g_l2 = max(g_l2, 0.0)
    g_pw = max(g_pw, 0.0)
    best = 0.0
    for a in range(1, ghosts + 1):
        inc = ks.sched(hw, m + a)
        ratio_s = ks.clock(hw, power_sum + a * g_pw)
        for j in range(m):
            r_a[j] = max(r[j], ks.needed(hw, ks.col(C, pos[j]), l2_sum - s_l2[j] + a * g_l2, ratio_s, inc))
        cap = FULL - ks.psum(r_a, 0, m)
        if cap < 0:
            continue
        limited = a < ghosts
        # a cheap relaxation first: the pair weights w0 <= w(a)
        if limited:
            cheap = kk.top(vals, ims, w0, n, cap, a, top_buf)
        else:
            best_ratio = 0.0
            fit = 0.0
            for i in range(n):
                if w0[i] <= cap + 1e-9:
                    best_ratio = max(best_ratio, vals[i] / max(w0[i], 1e-9))
                    fit += vals[i] * ims[i]
            cheap = min(fit, cap * best_ratio)
        if not (cheap > 1e-12 and v + cheap > threshold + 1e-12):
            best = max(best, cheap)
            continue
        cnt = 0
        for i in range(n):  # the ghost weights w(a)
            q = allow[i]
            ratio_q = ks.clock(hw, power_sum + q_pw[i] + (a - 1) * g_pw)
            w = max(w0[i], ks.needed(hw, ks.col(C, q), l2_sum + (a - 1) * g_l2, ratio_q, inc))
            if w <= cap + 1e-9:
                rv[cnt] = vals[i]
                rw[cnt] = w
                rm[cnt] = ims[i]
                cnt += 1
        if cnt == 0:
            continue
        kn = kk.fractional(rv, rw, rm, cnt, cap, key)
        if limited:
            kn = min(kn, kk.top(rv, rm, rw, cnt, cap, a, top_buf))
        if integer and a > 1 and kn > 1e-12 and v + kn > threshold + 1e-12:
            kn = min(kn, kk.integer(rv, rw, rm, cnt, cap, hw[HUNIT], a if limited else dp.shape[0] - 1, dp))
        if kn > 1e-12 and v + kn > threshold + 1e-12:
            return True, kn
        best = max(best, kn)
    return False, best


@_compiled
def _run(hw, C, alone, value, ptype, mult_type, pair, apart, gmem, tlast, threshold, stk_pos, stk_sh,
         stk_val, stk_len, istate, fstate, f_pos, f_sh, f_val, f_len, max_evals, max_found, integer, ghosts,
         used, fs, is_, ch_sh, dp):  # pragma: no cover
    """Resume the depth-first search from the stack; returns DONE, OUT_OF_EVALS or BUFFER_FULL
    (also when max_found sets are in the found buffer: the caller has enough columns).

    istate: [stack size, evaluations so far, sets in the found buffer]; fstate: [best value].
    Stack rows: positions and shares of a set (member order = position order), value, size.
    Scratch (compiled without the runtime's reference counting, so nothing is allocated here):
    used (types), fs (SCRATCH_F rows, floats), is_ (SCRATCH_I rows, ints), ch_sh (K, D) and
    dp (D + 1, D + 1).
    """
    K = value.shape[0]
    D = stk_pos.shape[1]
    own, own_pw, own_l2, ch_val, prio = fs[0], fs[1], fs[2], fs[3], fs[4]
    ps, r, pw, l2, ts, new = fs[5], fs[6], fs[7], fs[8], fs[9], fs[10]
    par_ts, par_pw, par_l2 = fs[11], fs[12], fs[13]
    sf = fs[14:]
    ch_q, kidx, pos, owed = is_[0], is_[1], is_[2], is_[3]
    si = is_[4:]
    sp = istate[0]
    evaluated = istate[1]
    nf = istate[2]
    best = fstate[0]
    start = evaluated
    status = DONE
    while sp > 0:
        if evaluated - start >= max_evals:
            status = OUT_OF_EVALS
            break
        if nf >= max_found or nf + K > f_val.shape[0] or sp + K > stk_val.shape[0]:
            status = BUFFER_FULL
            break
        sp -= 1
        m = stk_len[sp]
        v = stk_val[sp]
        for j in range(m):
            pos[j] = stk_pos[sp, j]
            ps[j] = stk_sh[sp, j]
        for t in range(used.shape[0]):
            used[t] = 0
        for j in range(m):
            used[ptype[pos[j]]] += 1
        nch = 0
        if m == 0:  # the root: singletons at their shares alone (no evaluation)
            for q in range(K):
                own[q] = alone[q]
                if np.isfinite(alone[q]) and alone[q] <= FULL:
                    state = owes(gmem, tlast, used, ptype[q], q)
                    if state == 2:  # a together partner that can no longer join: no set here obeys the rules
                        continue
                    ch_q[nch] = q
                    ch_sh[nch, 0] = alone[q]
                    ch_val[nch] = value[q]
                    owed[nch] = state
                    nch += 1
        elif m < D:
            last = pos[m - 1]
            parent_sum = ks.psum(ps, 0, m)
            for j in range(m):
                par_ts[j], par_pw[j], par_l2[j] = ks.demand(ks.col(C, pos[j]), ps[j])
            for q in range(K):
                own[q] = np.inf
            for q in range(last, K):
                t = ptype[q]
                if used[t] >= mult_type[t]:
                    continue
                ok = True
                for k in range(apart.shape[0]):
                    a0, b0 = apart[k, 0], apart[k, 1]
                    if (t == a0 and used[b0] > 0) or (t == b0 and used[a0] > 0):
                        ok = False
                if not ok:
                    continue
                lb = alone[q]
                for j in range(m):
                    lb = max(lb, pair[pos[j], q])
                if not (parent_sum + lb <= FULL + 1e-9):
                    continue
                for j in range(m):
                    r[j] = ps[j]
                pos[m] = q
                r[m] = lb
                evaluated += 1
                for j in range(m):
                    ts[j], pw[j], l2[j] = par_ts[j], par_pw[j], par_l2[j]
                if ks.least(hw, C, pos, m + 1, r, pw, l2, ts, new, m):
                    own[q] = r[m]  # siblings' bounds may add q (it may be their together partner)
                    state = owes(gmem, tlast, used, t, q)
                    if state == 2:
                        continue
                    ch_q[nch] = q
                    for j in range(m + 1):
                        ch_sh[nch, j] = r[j]
                    ch_val[nch] = v + value[q]
                    owed[nch] = state
                    nch += 1
        for c in range(nch):  # record (a set holding a together group partly is no column, nor the best)
            cv = ch_val[c]
            if owed[c] == 0:
                best = max(best, cv)
            if cv > threshold and owed[c] == 0:
                for j in range(m):
                    f_pos[nf, j] = pos[j]
                f_pos[nf, m] = ch_q[c]
                for j in range(m + 1):
                    f_sh[nf, j] = ch_sh[c, j]
                f_val[nf] = cv
                f_len[nf] = m + 1
                nf += 1
        nkeep = 0
        if m + 1 < D:
            for q in range(K):
                if np.isfinite(own[q]):
                    _, own_pw[q], own_l2[q] = ks.demand(ks.col(C, q), own[q])
            for c in range(nch):  # the bound on extending each child
                q = ch_q[c]
                pos[m] = q
                used[ptype[q]] += 1
                keep, bound = _survives(hw, C, value, ptype, mult_type, pair, apart, threshold, pos,
                                        m + 1, ch_sh[c], ch_val[c], own, own_pw, own_l2, used, sf, si, dp,
                                        integer, ghosts)
                used[ptype[q]] -= 1
                if keep:
                    kidx[nkeep] = c
                    prio[nkeep] = ch_val[c] + 0.5 * bound
                    nkeep += 1
        for t in range(1, nkeep):  # insertion sort by priority (stable): best last
            c, x = kidx[t], prio[t]
            u = t
            while u > 0 and prio[u - 1] > x:
                kidx[u], prio[u] = kidx[u - 1], prio[u - 1]
                u -= 1
            kidx[u], prio[u] = c, x
        for t in range(nkeep):  # best last: it is expanded next
            c = kidx[t]
            for j in range(m):
                stk_pos[sp, j] = pos[j]
            stk_pos[sp, m] = ch_q[c]
            for j in range(m + 1):
                stk_sh[sp, j] = ch_sh[c, j]
            stk_val[sp] = ch_val[c]
            stk_len[sp] = m + 1
            sp += 1
    istate[0] = sp
    istate[1] = evaluated
    istate[2] = nf
    fstate[0] = best
    return status


def search(pricer, order: np.ndarray, value: np.ndarray, threshold: float, rules, deadline: float,
           max_columns: int, max_evaluations: int | None = None) -> LevelResult:
    """LevelSearch(..., beam=None).run() on the compiled kernel: sets above the threshold, and
    whether the search completed (then no other set's value exceeds the threshold)."""
    o, hw, s = pricer.o, pricer.hw, pricer.settings
    order = np.asarray(order, dtype=np.int64)
    k = len(order)
    C = coefficients(o, order)
    hwv = hardware_vector(hw)
    alone = np.ascontiguousarray(o.alone[order], dtype=float)
    value = np.ascontiguousarray(value, dtype=float)
    ptype = np.ascontiguousarray(pricer.option_type[order], dtype=np.int64)
    mult_type = np.ascontiguousarray(pricer.demand, dtype=np.int64)
    pair = np.ascontiguousarray(pricer.pair[np.ix_(order, order)], dtype=float)
    apart = np.array(rules.apart, dtype=np.int64).reshape(-1, 2)
    gmem, tlast = together_groups(rules, ptype, len(pricer.demand))
    depth = int(FULL / hw.unit_pct + 1e-9) + 1  # members of a set: each holds at least one unit
    width = max(k, depth) + 1

    def walker(root: bool) -> Walker:
        scratch = (np.zeros(len(pricer.demand), dtype=np.int64), np.zeros((SCRATCH_F, width)),
                   np.zeros((SCRATCH_I, width), dtype=np.int64), np.zeros((k, depth)),
                   np.zeros((depth + 1, depth + 1)))
        return Walker.new(k, depth, scratch, root)

    found: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray, float]] = {}

    def run(w: Walker, budget: int) -> int:
        return int(_run(hwv, C, alone, value, ptype, mult_type, pair, apart, gmem, tlast, float(threshold), *w.arrays(),
                        budget, max(max_columns - len(found), 1), s.integer_bound, s.ghosts, *w.scratch))

    def collect(w: Walker) -> int:
        for i in range(int(w.istate[2])):
            _keep(found, pricer, rules, order, w.f_pos[i, :w.f_len[i]], w.f_sh[i, :w.f_len[i]], float(w.f_val[i]))
        w.istate[2] = 0
        return len(found)

    serial = max_evaluations is not None and max_evaluations < s.set_threads_from  # its cut point exact
    threads = 1 if serial else min(s.set_threads, usable_cores())
    how = Walk(run, collect, k, deadline, max_columns, s.first_chunk, s.chunk_seconds, max_evaluations)
    complete, walkers = walk(walker(True), lambda: walker(False), threads, how)
    ranked = sorted(found.values(), key=lambda f: (-f[2], f[0].tolist()))  # ties by options: any thread's order
    return LevelResult(ranked[:max_columns], complete, max(float(w.fstate[0]) for w in walkers),
                       sum(int(w.istate[1]) for w in walkers))


def _keep(found: dict, pricer, rules, order: np.ndarray, pos: np.ndarray, shares: np.ndarray,
          value: float) -> None:
    """LevelSearch._record for one set: together rules, then options sorted with their shares."""
    opts = order[pos]
    if rules.together and not rules.admits(pricer.option_type[opts]):
        return
    key = tuple(np.sort(opts).tolist())
    if key not in found:
        perm = np.argsort(opts, kind="stable")
        found[key] = (opts[perm], shares[perm].copy(), value)
