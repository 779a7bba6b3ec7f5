"""Every compiled routine of the inverse model against its numpy twin in oracle.py, on random inputs.

kernel.py (the set search) and statekernel.py (the state search) read one coefficient layout
(layout.py); their answers must be the oracle's, float for float where the code says so.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import mixed_pricer

pytest.importorskip("numba")

from igniter_opt.solvers.exact import kernel, kernelshares, layout
from igniter_opt.solvers.exact import statekernel as sk
from igniter_opt.solvers.exact.layout import N_COEF, coefficients, hardware_vector
from igniter_opt.solvers.exact.oracle import (
    FULL,
    clock_ratio,
    demand_terms,
    least_shares,
    needed_share,
    scheduling_inc,
)

EDGE = 1e-9  # statespace.EDGE: bins are closed below by this much less


@pytest.fixture(scope="module")
def pricer():
    return mixed_pricer(40, 1)


def _fitting_sets(p, rng, count: int, most: int = 6):
    """Random sets of distinct options with their oracle least shares (only sets that fit)."""
    n = len(p.option_type)
    out = []
    while len(out) < count:
        m = int(rng.integers(1, most + 1))
        opts = np.sort(rng.choice(n, size=m, replace=False))
        shares = least_shares(p.hw, p.o, opts[None])[0]
        if np.isfinite(shares).all():
            out.append((opts, shares))
    return out


def test_one_layout_for_both_kernels(pricer):
    """Both kernels index the block built by layout.coefficients (one layout, one builder)."""
    for name in ("GAMMA", "K4", "K5", "BATCH", "P0", "P1", "C0", "C1", "KL2", "KERN", "TIDLE", "LIMIT",
                 "HF", "HCAP", "HUNIT", "HAF", "HASCH", "HBSCH"):
        assert getattr(kernelshares, name) == getattr(sk, name) == getattr(layout, name)
    assert not any(hasattr(k, "_coefficients") for k in (kernel, kernelshares)) and not hasattr(sk, "N_COEF")
    block = coefficients(pricer.o, np.arange(len(pricer.option_type)))
    assert block.shape == (N_COEF, len(pricer.option_type)) and block.flags.c_contiguous
    assert np.array_equal(block[kernelshares.LIMIT], pricer.o.limit)
    assert np.array_equal(block[layout.ALONE], pricer.o.alone)


def test_clock_schedule_demand_and_needed_share_equal_the_oracle(pricer):
    p, rng = pricer, np.random.default_rng(1)
    hw, hwv = p.hw, hardware_vector(pricer.hw)
    C = coefficients(p.o, np.arange(len(p.option_type)))
    for total in rng.uniform(hw.idle_power_w, hw.power_cap_w * 1.5, 200):
        assert kernelshares.clock(hwv, total) == float(clock_ratio(hw, np.array(total)))
    for m in range(1, 12):
        assert kernelshares.sched(hwv, m) == float(scheduling_inc(hw, m))
    for _ in range(300):
        q = int(rng.integers(len(p.option_type)))
        col = tuple(float(x) for x in C[:, q])
        r = float(rng.uniform(hw.unit_pct, FULL))
        t, pw, l2 = demand_terms(p.o, np.array([q]), np.array([r]))
        assert kernelshares.demand(col, r) == (float(t[0]), float(pw[0]), float(l2[0]))
        others, ratio, m = float(rng.uniform(0, 60)), float(rng.uniform(0.8, 1.0)), int(rng.integers(1, 8))
        want = needed_share(hw, p.o, np.array([q]), np.array([others]), np.array([ratio]), m)[0]
        assert kernelshares.needed(hwv, col, others, ratio, float(scheduling_inc(hw, m))) == want


def test_pairwise_sum_is_numpys():
    rng = np.random.default_rng(2)
    for n in [*list(range(1, 20)), 31, 64, 100, 128]:
        a = rng.uniform(0, 50, n)
        assert kernelshares.psum(a, 0, n) == a.sum()


def test_compiled_least_shares_equal_the_oracle(pricer):
    """kernelshares.least from one unit each (the oracle's default start): same fit, same shares."""
    p, rng = pricer, np.random.default_rng(3)
    hwv = hardware_vector(p.hw)
    C = coefficients(p.o, np.arange(len(p.option_type)))
    n = len(p.option_type)
    fits = 0
    for _ in range(300):
        m = int(rng.integers(1, 7))
        pos = np.sort(rng.choice(n, size=m, replace=False)).astype(np.int64)
        want = least_shares(p.hw, p.o, pos[None])[0]
        r = np.full(m, p.hw.unit_pct)
        scratch = [np.zeros(m) for _ in range(4)]
        ok = kernelshares.least(hwv, C, pos, m, r, *scratch, 0)
        assert ok == bool(np.isfinite(want).all())
        if ok:
            fits += 1
            assert np.array_equal(r, want)
    assert fits > 50


def _weights_numpy(p, items, m: int, c_lo: float, p_lo: float, units: int) -> np.ndarray:
    """statekernel.weights written with the oracle's functions: per item, the least grid share u
    (from its share alone) at which needed_share, with the others' L2 demand c_lo minus its own
    at u, the clock ratio at p_lo and m members, is at most u; -1 when none."""
    unit = p.hw.unit_pct
    out = np.full(len(items), -1, dtype=np.int64)
    ratio = clock_ratio(p.hw, np.array(p_lo))
    for k, q in enumerate(items):
        for u in range(max(1, round(p.o.alone[q] / unit)), units + 1):
            _, _, own = demand_terms(p.o, np.array([q]), np.array([u * unit]))
            need = needed_share(p.hw, p.o, np.array([q]), c_lo - own, ratio, m)[0]
            if u * unit >= need:
                out[k] = u
                break
    return out


def test_a_leafs_truth_check_is_the_oracles_fit(pricer):
    """statekernel.fits on items (options repeated, picked in any order) says what least_shares
    says of the same options: a leaf in truth keeps exactly the sets that are columns."""
    p, rng = pricer, np.random.default_rng(5)
    n = len(p.option_type)
    items = np.repeat(np.arange(n), 2)  # each option twice, as a type of demand 2 gives it
    coef, hwv = coefficients(p.o, items), hardware_vector(p.hw)
    tpos, tr = np.zeros(12, dtype=np.int64), np.zeros((5, 12))
    fits = 0
    for _ in range(400):
        m = int(rng.integers(1, 8))
        picks = rng.choice(items.size, size=m, replace=False).astype(np.int64)  # not in option order
        want = np.isfinite(least_shares(p.hw, p.o, np.sort(items[picks])[None])[0]).all()
        assert sk.fits(m, picks, items, hwv, coef, tpos, tr) == want
        fits += int(want)
    assert 40 < fits < 360  # both answers are exercised


@pytest.mark.parametrize("policy", ["paper", "joint"])
def test_state_weights_equal_the_oracles_least_shares_at_the_same_state(policy):
    """At the state (m, L2 demand, power) a fitting set really has, the state kernel's weight of
    each member equals its numpy twin exactly, never exceeds the oracle's least share, and equals
    it wherever the relaxation is tight: the member's share is the inverse model's fixed point
    (not raised by the forward check) and its own L2 demand grows with its share. Under joint the
    sets mix batch options (of one type too): each weight is its option's, at its batch."""
    p, rng = mixed_pricer(40, 1, policy), np.random.default_rng(4)
    hwv, unit = hardware_vector(p.hw), p.hw.unit_pct
    units = round(FULL / unit)
    tight = 0
    for opts, shares in _fitting_sets(p, rng, 150):
        m = len(opts)
        _, power, l2 = demand_terms(p.o, opts[None], shares[None])
        c_lo, p_lo = l2.sum() - EDGE, p.hw.idle_power_w + power.sum() - EDGE
        coef = coefficients(p.o, opts)
        w, c, pw = np.empty(m, dtype=np.int64), np.empty(m), np.empty(m)
        sk.weights(m, c_lo, p_lo, coef, hwv, units, w, c, pw)
        assert np.array_equal(w, _weights_numpy(p, opts, m, c_lo, p_lo, units))
        assert (w > 0).all() and (w * unit <= shares + 1e-9).all()
        ratio = clock_ratio(p.hw, np.array(p.hw.idle_power_w + power.sum()))
        inverse = np.maximum(p.o.alone[opts], needed_share(p.hw, p.o, opts, l2.sum() - l2[0], ratio, m))
        grows = p.o.l2[opts, 0] >= 0
        at_fixed_point = np.abs(inverse - shares) < 1e-9
        is_tight = grows & at_fixed_point
        assert np.array_equal(w[is_tight] * unit, shares[is_tight])
        assert np.allclose(c[is_tight], l2[0][is_tight]) and np.allclose(pw[is_tight], power[0][is_tight])
        tight += int(is_tight.sum())
    assert tight > 200
