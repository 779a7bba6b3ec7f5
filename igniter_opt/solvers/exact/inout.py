"""Farley bounds from duals between the LP's and a dual-feasible centre (in-out separation).

Any duals pi >= 0 bound the optimum by pi d / v, v the largest dual sum of any configuration
(Farley). Where the root's column generation is cut by the clock (500 workloads) its LP duals
are far from optimal: some configuration is worth 1.1 at them, so their bound is below the
a-priori volume bound. A dual-feasible centre (every configuration worth at most 1) is a bound
but no progress: each member's least share beside its least-interfering partner (at least its
share alone: above the volume bound's duals), or the best Farley certificate scaled by its v. Between them,
pi(a) = a pi_LP + (1 - a) pi_centre is worth more than the centre wherever the LP's direction
gains faster than the configurations' worth grows. A bisection on the value of pi(a), each step
one exhaustive pricing call ("is any configuration worth more than pi d / T?"), proves the
largest T it can; that point scaled to be dual feasible is the next centre. This is Ben Amor,
Desrosiers and Frangioni's in-out separation, used here for the bound only: nothing is added to
the master, and every bound it gives is a Farley bound proven by an exhaustive search.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from igniter_opt.model.predict import Array
from igniter_opt.solvers.exact.catalogue import row_least
from igniter_opt.solvers.exact.oracle import FULL

ABOVE = 1e-4  # a tolerance: a value this far above an integer k proves k + 1 (as closing.DELTA)
# proves(pi, theta): (True, _) when no configuration is worth more than theta at pi; else
# (False, worth of one that is, or nan when the search ran out of time without finding one)
Prover = Callable[[Array, float], tuple[bool, float]]


@dataclass
class Centre:
    """Duals at which no configuration is worth more than 1, and their Farley value pi d."""

    duals: Array
    value: float


def share_centre(least: Array, option_type: Array, type_row: Array, type_weight: Array) -> Array:
    """Dual-feasible type duals from a least share per option (`least`, at most 100%): each row at
    its least share per unit it covers (over 100%), times what a member of the type covers. With
    `least` a lower bound on every option's share in every configuration that holds it (its share
    alone: the volume bound's duals; or beside its least-interfering partner, `pair_least`), a
    configuration's members sum to at most 100%, so it is worth at most 1 (rows no option serves: 0)."""
    best = row_least(least, option_type, type_row, type_weight, int(type_row.max(initial=-1)) + 1)
    duals = best[type_row] * type_weight / 100.0
    return np.where(np.isfinite(duals), duals, 0.0)


def pair_least(pair: Array, alone: Array) -> Array:
    """Each option's least share beside any partner (pair[a, b]: option b's share beside a, inf
    where they do not fit), or the whole GPU where it fits beside none (inf where it does not
    fit alone). A member's share in a set is at least its share in each pair it is part of (the
    pricer's knapsack weights rest on the same fact), so this bounds its share in every
    configuration of two or more; alone it holds the GPU, worth 1."""
    return np.where(np.isfinite(alone), np.minimum(pair.min(axis=0, initial=np.inf), FULL), np.inf)


def ascend(out: Array, centre: Centre, value_of: Callable[[Array], float], proves: Prover,
           alphas: Sequence[float], steps: int, rounds: int, goal: float, tol: float = 0.05) -> Centre:
    """The best centre found on the segments from the centre towards `out` (the LP's duals):
    for each a in `alphas`, a bisection of at most `steps` pricing calls on the value of pi(a);
    a proven value above the centre's moves the centre there. Rounds repeat while a round
    moved it by `tol` or more; stops once the centre's value passes `goal` (the bound wanted)."""
    for _ in range(rounds):
        start = centre.value
        for a in alphas:
            if centre.value > goal:
                return centre
            centre = _segment(a * out + (1 - a) * centre.duals, centre, value_of, proves, steps, tol)
        if centre.value < start + tol:
            break
    return centre


def _segment(pi: Array, centre: Centre, value_of: Callable[[Array], float], proves: Prover, steps: int,
             tol: float) -> Centre:
    """Search on T in (centre's value, pi d): proven "nothing above pi d / T" makes pi / theta
    a centre of value T; a configuration worth w above it caps the value at pi d / w. The next
    integer bound is tried first (just above the bound the centre proves), while it is below
    the cap; then bisection (a centre of higher value, though the same bound, helps the next
    segment)."""
    val = value_of(pi)
    lo, hi, best = centre.value, val, None
    for _ in range(steps):
        if hi - lo < tol:
            break
        step_up = math.ceil(lo - 1e-6) + ABOVE
        target = step_up if step_up < hi else (lo + hi) / 2
        proven, worth = proves(pi, val / target)
        if proven:
            lo = best = target
        elif np.isnan(worth):  # out of time: nothing more to learn on this segment
            break
        else:
            hi = min(target, val / worth)
    return centre if best is None else Centre(pi * best / val, best)
