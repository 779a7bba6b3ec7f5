"""Pricing under the joint batch policy at scale (issue 24): the heuristic's lean first pass and
the state search's columns met on the way.

The lean mask must hold exactly the `keep` options of least share alone of every type; a search
restricted to it returns only sets of those options, whose shares are the oracle's, and never
claims completeness (it says nothing about the options left out); the paper policy has no mask.
A state search told to collect returns, besides its sets above the threshold, sets met on the way
worth more than `collect` (real columns: the oracle's shares, at most a type's demand of it), and
none of them when it proves the threshold (the proof must read "no column").
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import mixed_pricer

from igniter_opt.solvers.exact.oracle import least_shares
from igniter_opt.solvers.exact.pricing import Pricer, lean_options
from igniter_opt.solvers.exact.settings import ExactSettings
from igniter_opt.solvers.exact.statespace import StateSpaceSearch


def test_lean_mask_holds_each_types_least_shares_alone():
    rng = np.random.default_rng(3)
    kinds = rng.integers(0, 7, 60)
    alone = rng.uniform(5, 90, 60)
    alone[rng.random(60) < 0.2] = np.inf  # options that do not fit alone are never kept
    for keep in (1, 2, 3):
        mask = lean_options(alone, kinds, keep)
        for t in range(7):
            mine = np.flatnonzero((kinds == t) & np.isfinite(alone))
            want = set(mine[np.argsort(alone[mine], kind="stable")][:keep].tolist())
            assert set(np.flatnonzero(mask & (kinds == t)).tolist()) == want


def test_lean_pass_prices_only_its_options_and_is_never_complete():
    p = mixed_pricer(12, 5, "joint", False)
    assert p.lean is not None and p.lean.sum() < p.lean.size
    assert mixed_pricer(12, 5, "paper", False).lean is None
    alone = np.full(len(p.demand), np.inf)
    np.minimum.at(alone, p.option_type, p.o.alone)
    duals = np.where(np.isfinite(alone), alone, 0.0) / 100 * 1.1  # many sets price out
    res = p.price(duals, 1.0, beam=None, deadline=time.perf_counter() + 60, max_columns=10**6, only=p.lean)
    full = p.price(duals, 1.0, beam=None, deadline=time.perf_counter() + 60, max_columns=10**6)
    assert res.columns and full.complete and not res.complete
    assert len(res.columns) < len(full.columns)
    for col in res.columns:
        assert p.lean[list(col.members)].all()
        assert np.array_equal(col.shares, least_shares(p.hw, p.o, np.array([col.members]))[0])
    assert {c.members for c in res.columns} <= {c.members for c in full.columns}
    assert res.best == pytest.approx(max(duals[p.option_type[list(c.members)]].sum() for c in res.columns))


def test_state_search_collects_columns_below_its_threshold_but_not_into_a_proof():
    p = mixed_pricer(10, 3, "joint", False)
    p = Pricer(p.hw, p.o, p.option_type, p.demand.astype(float) * 2, ExactSettings())
    alone = np.full(len(p.demand), np.inf)
    np.minimum.at(alone, p.option_type, p.o.alone)
    duals = np.where(np.isfinite(alone), alone, 0.0) / 100 * np.random.default_rng(3).uniform(0.97, 1.15, len(p.demand))
    far = time.perf_counter() + 120
    plain = StateSpaceSearch(p, duals, 1.0, far, 10**6).run()
    assert plain.complete and plain.found
    top = max(v for _, _, v in plain.found)
    threshold = 1.0 + 0.8 * (top - 1.0)
    strict = StateSpaceSearch(p, duals, threshold, far, 10**6).run()
    both = StateSpaceSearch(p, duals, threshold, far, 10**6, collect=1.0).run()
    above = {k for k, _, v in both.found if v > threshold}
    below = [(k, s, v) for k, s, v in both.found if v <= threshold]
    assert both.complete and above == {k for k, _, _ in strict.found} and below
    assert both.best == pytest.approx(strict.best)
    for key, shares, value in both.found:
        assert value == pytest.approx(duals[p.option_type[list(key)]].sum()) and value > 1.0
        assert np.array_equal(shares, least_shares(p.hw, p.o, np.array([key]))[0])
        assert (np.bincount(p.option_type[list(key)], minlength=len(p.demand)) <= p.demand).all()
    assert {k for k, _, _ in below} <= {k for k, _, _ in plain.found}
    proof = StateSpaceSearch(p, duals, top + 1e-6, far, 10**6, collect=1.0).run()
    assert proof.complete and not proof.found


def test_a_warm_solve_collects_under_the_paper_policy_too():
    """Column generation's state calls collect under joint; a warm solve's (issue 24, item 4)
    under any policy: its LP's tail needs many columns per call. A cold paper solve's pricer does
    not (its branch-and-price asks only where configurations are large, `collect_large`); what a
    collected set must be worth is the same everywhere, and off when collect_above < 0."""
    warm = ExactSettings().warm()
    assert mixed_pricer(10, 3, "paper", False, warm).collects
    assert not mixed_pricer(10, 3, "paper", False).collects
    assert mixed_pricer(10, 3, "joint", False).collects
    assert mixed_pricer(10, 3, "joint", False).s_collect == 1 + ExactSettings().collect_above
    assert mixed_pricer(10, 3, "joint", False, ExactSettings(collect_above=-1.0)).s_collect is None
