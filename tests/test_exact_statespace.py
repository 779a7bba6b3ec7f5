"""The interference-state pricing: its weights bound true shares, its knapsacks are exact or upper
bounds, and the whole search finds the same best configuration as the set search and proves the
same thresholds."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
from conftest import HANG_GUARD_S, mixed_pricer

pytest.importorskip("numba")

from igniter_opt.bench.generate import mixed_instance
from igniter_opt.data.instance import Instance
from igniter_opt.model import load_profile
from igniter_opt.solvers.exact import pricing
from igniter_opt.solvers.exact import statekernel as sk
from igniter_opt.solvers.exact.oracle import demand_terms, least_shares
from igniter_opt.solvers.exact.pricing import Pricer
from igniter_opt.solvers.exact.settings import ExactSettings
from igniter_opt.solvers.exact.solver import ExactOptions
from igniter_opt.solvers.exact.statespace import StateSpaceSearch, applicable
from igniter_opt.solvers.sizing import size_instance, split_workloads
from igniter_opt.solvers.solve import SolveOptions, solve

FAR = 600.0


def _pricer(n: int, seed: int, aggregate: bool = True) -> Pricer:
    return mixed_pricer(n, seed, "paper", aggregate)


def _duals(p: Pricer, seed: int) -> np.ndarray:
    """Duals near each type's share alone / 100, so that full GPUs price near 1."""
    rng = np.random.default_rng(seed)
    d = p.o.alone / 100 * rng.uniform(0.97, 1.12, len(p.demand))
    d[rng.random(len(d)) < 0.1] = 0.0
    return d


def _search(p: Pricer, duals: np.ndarray, threshold: float, max_columns: int = 10**6,
            deadline: float = FAR) -> StateSpaceSearch:
    return StateSpaceSearch(p, duals, threshold, time.perf_counter() + deadline, max_columns)


def test_weights_never_exceed_the_true_least_shares():
    """At the state a feasible set really has, every member's weight is at most its least share:
    the relaxation keeps every configuration (and is tight: most weights are equal)."""
    p = _pricer(40, 1)
    s = _search(p, np.ones(len(p.demand)), 1.0)
    rng = np.random.default_rng(0)
    equal = total = 0
    for _ in range(300):
        m = int(rng.integers(1, 7))
        items = rng.choice(s.option.size, size=min(m, s.option.size), replace=False)
        opts = s.option[items]
        if np.unique(opts).size < opts.size:
            continue
        shares = least_shares(p.hw, p.o, opts[None])[0]
        if not np.isfinite(shares).all():
            continue
        _, power, l2 = demand_terms(p.o, opts[None], shares[None])
        w, c, pw = np.empty(s.option.size, dtype=np.int64), np.empty(s.option.size), np.empty(s.option.size)
        sk.weights(len(opts), l2.sum() - 1e-9, p.hw.idle_power_w + power.sum() - 1e-9, s.coef, s.hwv, s.units,
                   w, c, pw)
        got = w[items] * p.hw.unit_pct
        assert (got <= shares + 1e-9).all() and (w[items] > 0).all()
        equal += int((np.abs(got - shares) < 1e-9).sum())
        total += len(opts)
    assert total > 200 and equal > 0.8 * total


def _brute(m, w, val, c, p, units, c_cap, p_cap):
    best = -np.inf
    for combo in itertools.combinations(range(w.size), m):
        combo = list(combo)
        if (w[combo] >= 0).all() and w[combo].sum() <= units and c[combo].sum() <= c_cap and p[combo].sum() <= p_cap:
            best = max(best, val[combo].sum())
    return best


@pytest.mark.parametrize("seed", range(6))
def test_knapsacks_against_brute_force(seed):
    """knapsack is exact without side rows, lagrangian an upper bound with them, leaf exact."""
    rng = np.random.default_rng(seed)
    n, units = 11, 12
    w = rng.integers(1, 6, n).astype(np.int64)
    w[rng.random(n) < 0.1] = -1
    val, c, p = rng.uniform(0.05, 0.5, n), rng.uniform(1, 10, n), rng.uniform(10, 100, n)
    mm = 5
    best, take = np.empty((mm + 1, units + 1)), np.zeros((n, mm + 1, units + 1), dtype=np.bool_)
    chosen, cand, vbuf, out = (np.zeros(n, dtype=np.bool_), np.zeros(n, dtype=np.bool_), np.empty(n),
                               np.zeros(4))
    suffix = np.empty((n + 1, mm + 1, units + 1))
    picks, starts, room = (np.zeros(mm + 2, dtype=np.int64) for _ in range(3))
    acc, best_set = np.zeros(mm + 2), np.zeros(n, dtype=np.bool_)
    for m in range(1, mm + 1):
        free = _brute(m, w, val, c, p, units, np.inf, np.inf)
        got = sk.knapsack(m, w, val, units, best, take, chosen)
        assert (got == sk.NEG and free == -np.inf) or got == pytest.approx(free)
        if got > sk.NEG:
            assert chosen.sum() == m and val[chosen].sum() == pytest.approx(got)
        c_cap, p_cap = 0.5 * c.sum() * m / n, 0.5 * p.sum() * m / n
        exact = _brute(m, w, val, c, p, units, c_cap, p_cap)
        ub = sk.lagrangian(m, w, val, c, p, units, c_cap, p_cap, 0.0, 20, best, take, chosen, vbuf, out, cand)
        assert ub >= exact - 1e-9
        if out[3] > sk.NEG / 2:  # a candidate met on the way meets both rows
            assert c[cand].sum() <= c_cap and p[cand].sum() <= p_cap and val[cand].sum() <= exact + 1e-9
        got, cut = sk.leaf(m, w, val, c, p, units, c_cap, p_cap, out[0], out[1], -1.0, 10**6, suffix, vbuf,
                           picks, starts, room, acc, best_set)
        assert cut == 0
        assert (got == sk.NEG and exact == -np.inf) or got == pytest.approx(exact)


def _set_search(p: Pricer, duals: np.ndarray, threshold: float) -> pricing.PricingResult:
    q = Pricer(p.hw, p.o, p.option_type, p.demand.astype(float), ExactSettings(state_space=False))
    return q.price(duals, threshold, beam=None, deadline=time.perf_counter() + FAR, max_columns=10**6)


@pytest.mark.parametrize("n,seed,aggregate", [(24, 2, False), (24, 3, True), (32, 4, False)])
def test_state_search_finds_the_best_set_and_proves_what_the_set_search_proves(n, seed, aggregate):
    p = _pricer(n, seed, aggregate)
    assert applicable(p.o, p.option_type)
    duals = _duals(p, seed)
    ref = _set_search(p, duals, 1.0)
    assert ref.complete and ref.columns
    values = sorted(duals[p.option_type[list(c.members)]].sum() for c in ref.columns)
    top = values[-1]
    # above a threshold just below the best set: the state search finds exactly the best
    res = _search(p, duals, values[-1] - 1e-6 if len(values) == 1 else (values[-1] + values[-2]) / 2).run()
    assert res.complete and res.best == pytest.approx(top)
    assert {k for k, _, _ in res.found} <= {c.members for c in ref.columns}
    for key, shares, _ in res.found:  # every column is the oracle's least shares of its set
        assert np.array_equal(shares, least_shares(p.hw, p.o, np.array([key]))[0])
    # above the best set: nothing found and the search is complete (the Farley proof)
    proof = _search(p, duals, top + 1e-6).run()
    assert proof.complete and not proof.found


def test_a_search_cut_short_still_bounds_every_configuration():
    p = _pricer(32, 4, False)
    duals = _duals(p, 4)
    ref = _set_search(p, duals, 1.0)
    top = max(duals[p.option_type[list(c.members)]].sum() for c in ref.columns)
    res = _search(p, duals, 1.0, deadline=-1.0).run()
    assert not res.complete
    assert max(res.best, res.open_reach) >= top - 1e-9


def test_pricer_hands_exhaustive_root_calls_to_the_state_search(monkeypatch):
    """After settings.set_first sets the set search gives way; the answer is the same."""
    p = _pricer(32, 4, False)
    duals = _duals(p, 4)
    ref = _set_search(p, duals, 1.0)
    top = max(duals[p.option_type[list(c.members)]].sum() for c in ref.columns)
    q = Pricer(p.hw, p.o, p.option_type, p.demand.astype(float), ExactSettings(state_space=True, set_first=5))
    calls = []
    real = q._state_price
    monkeypatch.setattr(q, "_state_price", lambda *a, **k: calls.append(1) or real(*a, **k))
    res = q.price(duals, top - 1e-6, beam=None, deadline=time.perf_counter() + FAR, max_columns=10**6)
    assert calls == [1] and res.complete and res.best == pytest.approx(top)
    proof = q.price(duals, top + 1e-6, beam=None, deadline=time.perf_counter() + FAR, max_columns=10**6)
    assert proof.complete and not proof.columns


@pytest.mark.parametrize("n,seed", [(24, 26), (32, 28)])
def test_exact_proves_the_same_optimum_when_the_state_search_prices_the_root(n, seed, monkeypatch):
    """Every exhaustive root call handed to the state search at once: same GPUs, still proven."""
    # without the workloads above one GPU: with them, the time goes to closing the gap of the
    # rate levels' LP (test_exact_splits), not to the state search this test is about
    inst = mixed_instance(n, seed)
    v100 = load_profile("v100")
    split = set(split_workloads(size_instance(inst, v100)))
    inst = Instance(inst.name, inst.profile, tuple(w for w in inst.workloads if w.name not in split))
    ref = solve(inst, "exact", options=SolveOptions(time_limit=HANG_GUARD_S))
    # the heuristic stalls (500 evaluations a call): exhaustive calls, each handed over at once
    handed = ExactOptions(time_limit=HANG_GUARD_S, settings=ExactSettings(set_first=1, heuristic_evaluations=500))
    calls = []
    real = Pricer._state_price
    monkeypatch.setattr(Pricer, "_state_price", lambda *a, **k: calls.append(1) or real(*a, **k))
    got = solve(inst, "exact", solver_options=handed)
    assert ref.status == got.status == "optimal" and got.feasible
    assert got.num_gpus == ref.num_gpus == got.lower_bound
    assert calls  # the state search did price
