"""A warm start's proof before branch-and-price (warm.py maps the previous solve; this closes
the gap where the carried certificate allows, docs/exact.md "Warm re-plans").

The repaired plan's GPU count B is proven by one exhaustive search over the configurations that
hold the changed workload (its dual raised so that no set without it passes the threshold);
failing that, one dive from the warm LP looks for a plan below it, and the proof runs again for
that plan. What stays open, branch-and-price searches as in a cold solve.
"""

from __future__ import annotations

import time

from igniter_opt.solvers.exact.bnp import BranchAndPrice
from igniter_opt.solvers.exact.closing import DELTA
from igniter_opt.solvers.exact.cuts import cover_value
from igniter_opt.solvers.exact.warm import CatalogueView, WarmSeed

BIG = 10.0  # the changed workload's dual in the proof's search: above any set's value without it (at most v ~ 1)


def settle(bnp: BranchAndPrice, warm: WarmSeed, cat: CatalogueView, time_limit: float) -> None:
    """Close the gap without a search where the carried certificate allows: prove the incumbent
    by one search over the configurations holding the changed workload (`_prove`); failing that,
    where a plan one GPU below would close the gap, a dive from the warm LP (its columns completed
    by heuristic pricing, then the integer master) for such a plan, and the proof again for it.
    What is left open, branch-and-price then searches as in a cold solve (its root's bound first)."""
    if bnp.lower >= bnp.upper:
        return  # proven already
    forced = warm.forced if bnp.certificate is not None else None
    until = time.perf_counter() + bnp.s.warm_search_share * time_limit
    if forced is not None and _prove(bnp, cat, forced, bnp.upper, until):
        return
    if bnp.lower < bnp.upper - 1:  # one GPU fewer would not close the gap either
        return
    before = bnp.upper
    bnp.dive_once(until)
    if forced is not None and bnp.upper < before:
        _prove(bnp, cat, forced, bnp.upper, until)


def _prove(bnp: BranchAndPrice, cat: CatalogueView, forced: int, target: int, until: float) -> bool:
    """Prove `target` GPUs with the carried certificate (pi, v): every configuration without the
    changed workload w is an old one (value at most v), so with w's dual set to
    alpha = (target - 1 + DELTA) v - (pi d without w) the bound pi d / v reaches target once no
    configuration holding w is worth more than v. That is one exhaustive search with w's dual
    raised to BIG (no set without w reaches BIG) and threshold BIG + v - alpha: only sets holding
    w are explored. True when proven (the certificate and the bound are updated)."""
    assert bnp.certificate is not None
    duals, v = bnp.certificate
    duals = duals.copy()
    duals[forced] = 0.0
    alpha = (target - 1 + DELTA) * v - cover_value(duals, cat.type_row, cat.type_weight, cat.row_demand)
    if alpha > v - 1e-9 or time.perf_counter() > until:  # w alone would be worth more than v
        return False
    alpha = max(alpha, 0.0)
    probe = duals.copy()
    probe[forced] = BIG
    res = bnp.pricer.price_forced(probe, BIG + v - alpha, until, bnp.s.heuristic_evaluations)
    bnp.stats.exhaustive_calls += 1
    bnp.stats.pricing_nodes += res.nodes
    if res.columns or not res.complete:
        bnp.master.add_many(res.columns)
        return False
    duals[forced] = alpha
    bnp.certificate = (duals, v)
    bnp.lower = max(bnp.lower, target)
    return True
