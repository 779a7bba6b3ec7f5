"""Diving: an upper bound from the master LP, rounded step by step with columns priced on the way.

The LP's columns alone often hold no plan of ceil(LP) GPUs (the integer master over them finds
one GPU more), because each column was priced for a fractional solution. A dive fixes what the
LP already decided — every column at the integer part of its value — re-solves, prices columns
that complete the fixed ones (duals of rows the fixings cover drop to zero, so pricing looks
only at what is left), and when nothing is integral yet rounds up the most nearly whole column.
This is the residual-rounding heuristic of cutting stock with column generation, which almost
always ends at ceil(LP) there. A round-up of many columns at once that lifts the LP past the
GPU the dive is for (incumbent - 1) is undone and only the half of it nearest their ceiling
rounded, halving again while the LP still passes (`dive_backoffs` times a dive). A dive stops
as soon as its LP shows it cannot beat the incumbent, when its LP is integral (the plan) or at
the deadline; the fixings are undone after.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from igniter_opt.model.predict import Array
from igniter_opt.solvers.exact.master import Column, LpResult, Master, columns_of
from igniter_opt.solvers.exact.residual import left, release
from igniter_opt.solvers.exact.settings import DEFAULT, ExactSettings

INTEGRAL = 1e-6  # a tolerance: a column value this close to an integer is one

@dataclass
class DiveResult:
    """A cover found by the dive (None: no better than the incumbent), and what the dive did."""

    cover: list[Column] | None
    steps: int
    lp_solves: int
    # a dive that stopped for its residual (residual.py): its fixings and its last LP's values
    fixed: Array | None = None
    z: Array | None = None


def dive(master: Master, price: Callable[[Array], list[Column]], upper: int, deadline: float,
         finish_by: float, settings: ExactSettings = DEFAULT, stop_rows: int = 0,
         pieces: Array | None = None, rng: np.random.Generator | None = None) -> DiveResult:
    """One dive from the current master (no fixings in place); the fixings are undone on return.
    A dive stopped by its slack or its deadline ends with the integer master on what is left
    (the fixings as lower bounds, columns cut by reduced cost; a small MIP by then), until
    `finish_by`. With `stop_rows`, a dive whose fixings leave at most that many rows uncovered
    (split workloads' `pieces` left whole: residual.release) returns them (and its last LP's
    values) for the residual search (residual.py), as does one stopped by its slack or its
    deadline; with back-offs, only once the LP under its last round-up was seen (and kept)."""
    fixed = np.zeros(0)
    steps = solves = 0
    rounds = settings.dive_rounds_large if master.large else settings.dive_rounds  # (issue 24, item 3)
    share = settings.round_share_large if master.large else settings.round_share
    backoffs = settings.dive_backoffs
    backoffs_on = backoffs > 0  # then a round-up's LP is seen before its residual is handed over
    last: tuple[Array, Array, Array] | None = None  # the last round-up: fixings before, after, its columns
    lp: LpResult | None = None
    try:
        while time.perf_counter() < deadline:
            lp, n = _priced_lp(master, price, deadline, rounds)
            solves += n
            if lp is None:
                return DiveResult(None, steps, solves)
            if last is not None and last[2].size > 1 and backoffs > 0 and \
                    lp.value > upper - 1 + settings.backoff_slack:
                backoffs -= 1  # that round-up cost the GPU the dive is for: half of it instead
                fixed, half = _back_off(*last)
                last = (last[0], fixed, half)
                master.bound(fixed)
                continue
            if backoffs_on and stop_rows and np.any(fixed > 0) and _residual_left(master, fixed, pieces) <= stop_rows:
                return DiveResult(None, steps, solves, fixed, lp.z)  # (its LP seen: the round-up kept)
            if lp.value > upper - 1 + settings.dive_slack:
                break
            z = lp.z
            if np.all(np.abs(z - np.round(z)) < INTEGRAL):
                return DiveResult(_cover(master, np.round(z), upper), steps, solves)
            steps += 1
            noise = None if rng is None else rng.uniform(-settings.dive_noise, settings.dive_noise, len(z))
            before = fixed
            fixed, up = _round(fixed, z, settings.round_up, share, noise)
            last = (before, fixed, up) if up.size else None
            master.bound(fixed)
            if not backoffs_on and stop_rows and _residual_left(master, fixed, pieces) <= stop_rows:
                return DiveResult(None, steps, solves, fixed, z)
        if lp is None:
            return DiveResult(None, steps, solves)
        if stop_rows:  # stopped by its slack or its deadline: the residual search takes what is left
            return DiveResult(None, steps, solves, fixed, lp.z)
        return DiveResult(_finish(master, lp, fixed, upper, finish_by - time.perf_counter(),
                                           settings.finish_rc), steps, solves)
    finally:
        master.bound(np.zeros(0))


def _residual_left(master: Master, fixed: Array, pieces: Array | None) -> int:
    """Rows the fixings leave uncovered once split workloads held in part are released."""
    return int(np.count_nonzero(left(master, release(master, fixed, _pieces(pieces)))))


def _pieces(pieces: Array | None) -> Array:
    return np.zeros(0, dtype=int) if pieces is None else pieces


def _finish(master: Master, lp: LpResult, fixed: Array, upper: int, seconds: float, finish_rc: float
            ) -> list[Column] | None:
    """The integer master under the dive's fixings, over the columns of small reduced cost."""
    keep = master.reduced_costs(lp.duals) <= max(upper - 1 - lp.value, 0.0) + finish_rc
    keep[:len(fixed)] |= fixed > 0
    res = master.solve_integer(seconds, keep, below=upper, lower=fixed)
    return None if res is None else _cover(master, res[1], upper)


def _cover(master: Master, count: Array, upper: int) -> list[Column] | None:
    """The columns of an integer solution, each as often as it is used; None unless it beats `upper`."""
    if np.round(count).sum() >= upper:
        return None
    return columns_of(master, count)


def _priced_lp(master: Master, price: Callable[[Array], list[Column]], deadline: float, rounds: int
               ) -> tuple[LpResult | None, int]:
    """The LP under the fixings after up to `rounds` rounds of pricing (fewer when none prices out)."""
    lp = master.solve_lp()
    solves = 1
    for _ in range(rounds):
        if lp is None or time.perf_counter() > deadline:
            break
        if not sum(master.add(c) for c in price(lp.duals)):
            break
        lp = master.solve_lp()
        solves += 1
    return lp, solves


def _round(fixed: Array, z: Array, round_up: float, round_share: int, noise: Array | None = None
           ) -> tuple[Array, Array]:
    """New fixings: every column at least the integer part of its LP value; when that fixes
    nothing new, the columns within round_up of their ceiling rounded up, and at least one in
    round_share of the fractional ones (the nearest to their ceiling: large dives go faster).
    `noise` (one value per column) shifts how near each counts: another dive, another path.
    Also the columns rounded up, nearest to their ceiling first (none when integer parts were
    fixed)."""
    old = np.zeros(len(z))
    old[:len(fixed)] = fixed
    new = np.maximum(old, np.floor(z + INTEGRAL))
    if np.any(new > old):
        return new, np.zeros(0, dtype=np.int64)
    up = np.ceil(z - INTEGRAL)
    frac = np.where(up > new, z - np.floor(z + INTEGRAL), -1.0)
    if noise is not None:
        frac = np.where(frac > 0, np.clip(frac + noise, INTEGRAL, 1.0), frac)
    pick = frac >= 1 - round_up
    least = max(1, int(np.sum(frac > 0)) // round_share)
    if pick.sum() < least:
        pick[np.argsort(-frac)[:least]] = True
    order = np.flatnonzero(pick)
    order = order[np.argsort(-frac[order], kind="stable")]
    new[order] = np.maximum(new[order], up[order])
    return new, order


def _back_off(before: Array, after: Array, rounded: Array) -> tuple[Array, Array]:
    """The fixings of a round-up with only the first half of its columns (the nearest to their
    ceiling) rounded: `before` and `after` are the fixings around it. Also those columns."""
    half = rounded[:rounded.size // 2]
    new = np.zeros(len(after))
    new[:len(before)] = before
    new[half] = after[half]
    return new, half
