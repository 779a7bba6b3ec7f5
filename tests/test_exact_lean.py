"""Joint heuristic pricing's first pass over each type's options of least share alone (issue 24).

The mask must hold exactly the `keep` options of least share alone of every type; a search
restricted to it returns only sets of those options, whose shares are the oracle's, and never
claims completeness (it says nothing about the options left out); the paper policy has no mask.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import mixed_pricer

from igniter_opt.solvers.exact.oracle import least_shares
from igniter_opt.solvers.exact.pricing import lean_options


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
    p = mixed_pricer(16, 6, "joint", False)
    assert p.lean is not None and p.lean.sum() < p.lean.size
    assert mixed_pricer(16, 6, "paper", False).lean is None
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
