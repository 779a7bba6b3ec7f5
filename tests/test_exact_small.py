"""Many small workloads per GPU (issue 24, item 2): the heavytail stress kind, the random first
fits that seed exact's master, the multistart start of the improvement phase and the root's
state-search Farley check that proves the committed heavytail-n48-01."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from igniter_opt.bench.families import STRESS_KINDS, FamilySpec, generate, stress_instance
from igniter_opt.data.instance import load_instance
from igniter_opt.data.plan import Plan
from igniter_opt.model import load_profile
from igniter_opt.solvers.exact.improve import ImproveSettings, improve, random_fits
from igniter_opt.solvers.exact.settings import ExactSettings
from igniter_opt.solvers.exact.solver import ExactOptions
from igniter_opt.solvers.heuristics.firstfit import first_fit
from igniter_opt.solvers.sizing import size_instance
from igniter_opt.solvers.solve import resolve_profile, solve
from igniter_opt.solvers.verify import verify

STRESS = Path(__file__).resolve().parents[1] / "instances" / "stress"


def _ok(gpus, prof) -> bool:
    return not verify(Plan(instance="t", solver="exact", profile=prof.name, status="time_limit", gpus=gpus),
                      prof, 0.0)[1]


def test_heavytail_rates_are_heavy_tailed_and_need_no_replica() -> None:
    prof = load_profile("v100")
    inst = stress_instance("heavytail", 100, 0, 24, prof)
    rates = np.array([w.rate_rps for w in inst.workloads])
    assert np.median(rates) <= 15 and rates.min() >= 5  # most services light ...
    assert rates.max() >= 100 and np.sort(rates)[-5:].sum() > rates.sum() / 4  # ... a few carry much of the load
    assert not any(d.full_gpu or d.replica_of for d in size_instance(inst, prof, 0.0))
    # only made when named: the default stress kinds stay the four of before
    assert "heavytail" not in STRESS_KINDS
    made = {i.name.split("-")[1] for i in generate(FamilySpec("stress", sizes=(4,), count=1, seed=3))}
    assert made == set(STRESS_KINDS)


def test_random_fits_are_verified_distinct_and_reproducible() -> None:
    inst = load_instance(STRESS / "stress-small-n32-02.json")
    prof = resolve_profile(inst)
    demands = size_instance(inst, prof, 0.0)
    plans = random_fits(prof, demands, time.perf_counter() + 60, 6, seed=3)
    assert len(plans) == 6 and all(_ok(p, prof) for p in plans)
    assert all(sorted(w.name for g in p for w in g.workloads) == sorted(d.name for d in demands) for p in plans)
    again = random_fits(prof, demands, time.perf_counter() + 60, 6, seed=3)
    assert [[[w.name for w in g.workloads] for g in p] for p in plans] == \
        [[[w.name for w in g.workloads] for g in p] for p in again]
    assert len({tuple(w.name for w in p[0].workloads) for p in plans}) > 1  # different orders
    assert random_fits(prof, demands, time.perf_counter() - 1, 6) == []  # past its deadline: nothing


def test_improve_starts_with_a_multistart() -> None:
    """Every workload alone (a feasible, wasteful plan) and no time for destroy-and-repair moves
    beyond the restart: the restart alone packs them, and the plan verifies."""
    inst = load_instance(STRESS / "stress-small-n24-00.json")
    prof = resolve_profile(inst)
    demands = size_instance(inst, prof, 0.0)
    alone = [g for i in range(len(demands)) for g in first_fit(prof, demands[i:i + 1], [0])]
    only_restart = ImproveSettings(restart_share=1.0, min_destroy=2, max_destroy=2)
    gpus, kept = improve(alone, prof, demands, time.perf_counter() + 0.5, only_restart)
    assert kept >= 1 and len(gpus) <= 3 < len(alone) and _ok(gpus, prof)


def test_root_state_check_proves_heavytail_n48_01() -> None:
    """End to end with the compact MILP step off (its default; so branch-and-price and its root
    check do the work): 3 GPUs, proven, verified. The limit is a hang guard, not a speed test; the test below
    shows that the check proves the bound before the LP is solved."""
    inst = load_instance(STRESS / "stress-heavytail-n48-01.json")
    no_milp = ExactOptions(time_limit=120, threads=1, settings=ExactSettings(few_gpus=0))  # the check alone
    plan = solve(inst, "exact", solver_options=no_milp)
    assert plan.feasible and plan.num_gpus == 3 and plan.lower_bound == 3 and plan.status == "optimal"


def test_the_check_proves_while_heuristic_pricing_still_finds_columns() -> None:
    """The root LP of heavytail-n48-01 at about 2.52 is not solved (heuristic pricing still finds
    columns), yet its duals already prove bound 3: no configuration is worth more than
    LP / (3 - 1 + DELTA). `_check` finds that by the state search and returns the threshold."""
    from igniter_opt.solvers.exact.branching import Rules
    from igniter_opt.solvers.exact.solver import _prepare, heuristic_plans

    inst = load_instance(STRESS / "stress-heavytail-n48-01.json")
    prof = resolve_profile(inst)
    demands = size_instance(inst, prof, 0.0)
    deadline = time.perf_counter() + 600  # a hang guard
    _, _, bnp = _prepare(prof, demands, "paper", True, deadline, 1, 0.0, heuristics=heuristic_plans(prof, demands))
    assert (bnp.lower, bnp.upper) == (2, 3)
    bnp._check_due = float("inf")  # rounds of heuristic pricing alone, until the LP is near its optimum
    for _ in range(400):
        lp = bnp.master.solve_lp()
        assert lp is not None
        if lp.value < 2.53:
            break
        bnp._add(bnp._heuristic(lp.duals, Rules()).columns)
    assert lp.value < 2.53
    assert bnp._heuristic(lp.duals, Rules()).columns  # the LP is not solved
    bnp._check_due = 0.0
    theta = bnp._check(lp)
    assert theta is not None and lp.value / theta > 2 and bnp.lower == 3  # proven: 3 GPUs are needed
    assert bnp._check_budget == 2 * bnp.s.check_budget  # a check that found no column: the next one gets twice


def test_the_check_prices_better_columns_than_the_heuristic() -> None:
    """Early at the root of heavytail-n48-01 (heuristic pricing finds columns worth 1-1.05) the state search at the
    Farley threshold finds configurations worth more than the best the heuristic pricing finds at
    the same duals (why the check runs about every round); they join the master, and a check
    that found columns keeps the base budget and is due again check_period after it started."""
    bnp, lp, heuristic = _early_root_of_n48_01()
    before = len(bnp.master.columns)
    bnp._check_budget, bnp._check_due = 1.5 / bnp._limit, 0.0  # a 1.5 s search
    start = time.perf_counter()
    assert bnp._check(lp) is None  # columns found: no proof yet
    added = bnp.master.columns[before:]
    assert added
    best = max(float(lp.duals[bnp.pricer.option_type[list(c.members)]].sum()) for c in added)
    assert best > heuristic.best + 0.01
    assert bnp._check_budget == bnp.s.check_budget
    assert start <= bnp._check_due - bnp.s.check_period * bnp._limit <= time.perf_counter()


def test_a_dive_prices_by_the_state_search_too_where_configurations_are_large() -> None:
    """A dive step's pricing (`_dive_price`) where the seed plan holds many members per GPU: the
    heuristic's columns and, for dive_state of the limit, the state search's at the same duals,
    among them one worth more than the heuristic's first pass found (1-1.05 early at the root of
    heavytail-n48-01); with dive_state 0 the heuristic's alone, as in every other family."""
    from dataclasses import replace

    bnp, lp, heuristic = _early_root_of_n48_01()
    assert bnp._large_members

    def worth(c) -> float:
        return float(lp.duals[bnp.pricer.option_type[list(c.members)]].sum())

    deadline = time.perf_counter() + 600  # a hang guard
    bnp.s = replace(bnp.s, dive_state=0.0)
    alone = bnp._dive_price(lp.duals, deadline)
    assert alone == heuristic.columns  # the heuristic's, nothing else
    bnp.s = replace(bnp.s, dive_state=1.5 / bnp._limit)  # a 1.5 s state search
    both = bnp._dive_price(lp.duals, deadline)
    assert both[:len(alone)] == alone
    extra = both[len(alone):]
    assert extra and all(worth(c) > 1 for c in extra)  # every one prices out
    assert max(worth(c) for c in extra) > heuristic.best + 0.01
    for c in extra:  # and holds the oracle's least shares
        assert np.allclose(bnp.pricer.shares_of(c.members), c.shares)


def _early_root_of_n48_01():
    """The root of heavytail-n48-01 after heuristic rounds until their best column is worth less
    than 1.05 (the LP not solved yet): the search, its LP and the last heuristic result."""
    from igniter_opt.solvers.exact.branching import Rules
    from igniter_opt.solvers.exact.solver import _prepare, heuristic_plans

    inst = load_instance(STRESS / "stress-heavytail-n48-01.json")
    prof = resolve_profile(inst)
    demands = size_instance(inst, prof, 0.0)
    deadline = time.perf_counter() + 600  # a hang guard
    _, _, bnp = _prepare(prof, demands, "paper", True, deadline, 1, 0.0, heuristics=heuristic_plans(prof, demands))
    for _ in range(200):
        lp = bnp.master.solve_lp()
        assert lp is not None
        heuristic = bnp._heuristic(lp.duals, Rules())
        if heuristic.best < 1.05:
            break
        bnp._add(heuristic.columns)
    assert heuristic.columns and heuristic.best < 1.05  # the LP is not solved
    return bnp, lp, heuristic


def test_where_configurations_are_large_the_state_search_takes_over_sooner_with_narrower_leaves(monkeypatch) -> None:
    """The seed plan of heavytail-n48-01 holds 8 or more workloads per GPU: every pricer of the
    solve hands an exhaustive call over to the state search after set_first_members sets of the
    set search, not set_first, and the state search's leaves are leaf_c_members x leaf_p_members
    (a dive's stay wide); a random instance (few members per GPU) keeps set_first and the wide
    leaves. A smaller set_first is never raised."""
    from igniter_opt.solvers.exact import pricing

    seen: list[tuple[int, float, float]] = []
    real = pricing.Pricer.__init__

    def init(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        real(self, *args, **kwargs)
        seen.append((self.set_first, self.settings.leaf_c, self.settings.leaf_p))

    monkeypatch.setattr(pricing.Pricer, "__init__", init)
    opts, s = ExactOptions(time_limit=3, threads=1), ExactSettings()
    plan = solve(load_instance(STRESS / "stress-heavytail-n48-01.json"), "exact", solver_options=opts)
    assert plan.feasible and seen and set(seen) == {(s.set_first_members, s.leaf_c_members, s.leaf_p_members)}
    assert s.set_first_members < s.set_first and s.leaf_c_members < s.leaf_c and s.leaf_p_members < s.leaf_p
    seen.clear()
    random = Path(__file__).resolve().parents[1] / "instances" / "random" / "random-n24-01.json"
    plan = solve(load_instance(random), "exact", solver_options=opts)
    assert plan.feasible and seen and set(seen) == {(s.set_first, s.leaf_c, s.leaf_p)}
    low = ExactSettings(set_first=1000).many_members()
    assert low.set_first == 1000 and low.set_first_joint == s.set_first_joint
    assert (low.dive_leaf_c, low.dive_leaf_p) == (s.leaf_c, s.leaf_p)
