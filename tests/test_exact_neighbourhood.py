"""Destroy-and-repair of the incumbent by residual searches (neighbourhood.py, primal.Primal._neighbourhoods)."""

import math
import time
from dataclasses import replace

import numpy as np
from test_exact_dive import _covers, _prepared, _priced, _random_master

from igniter_opt.solvers.exact.master import columns_of
from igniter_opt.solvers.exact.neighbourhood import counts_of, pick
from igniter_opt.solvers.exact.settings import DEFAULT


def test_a_plan_and_its_column_counts_stand_for_each_other():
    master = _random_master(3)
    plan = [master.columns[7], master.columns[2], master.columns[7]]
    counts = counts_of(master, plan)
    assert counts[7] == 2 and counts[2] == 1 and counts.sum() == 3
    assert sorted(c.members for c in columns_of(master, counts)) == sorted(c.members for c in plan)
    # a solver's near-integers are whole GPUs (truncating 0.9999999 would drop a column of the plan)
    noisy = counts.copy()
    noisy[7], noisy[2] = 1.9999999, 0.9999999
    assert sorted(c.members for c in columns_of(master, noisy)) == sorted(c.members for c in plan)


def test_pick_takes_out_the_gpus_of_largest_reduced_cost_or_a_draw_of_as_many():
    master = _random_master(4, columns=60)
    lp = master.solve_lp()
    rc = master.reduced_costs(lp.duals)
    counts = np.zeros(len(master.columns))
    counts[[10, 11, 12, 20, 30]] = [2, 1, 1, 1, 3]
    kept = pick(master, counts, lp.duals, 3, None)
    out = counts - kept
    assert out.sum() == 3 and np.all(kept >= 0)
    gone = np.repeat(np.arange(len(counts)), out.astype(int))
    left_in = np.repeat(np.arange(len(counts)), kept.astype(int))
    assert rc[gone].min() >= rc[left_in].max() - 1e-12  # none kept is worth taking out more
    draws = {tuple(pick(master, counts, lp.duals, 3, np.random.default_rng(s))) for s in range(10)}
    assert all(sum(counts) - sum(d) == 3 and min(np.subtract(counts, d)) >= 0 for d in draws)
    assert len(draws) > 1  # drawn neighbourhoods differ
    assert pick(master, counts, lp.duals, 50, None).sum() == 0  # more GPUs than the plan: all of it


def test_neighbourhoods_keep_a_fitting_plan_and_never_one_of_more_gpus():
    """At 60 workloads with split workloads: the seed plan's neighbourhoods repaired by residual
    searches give a plan that covers every row with configurations that fit, in no more GPUs."""
    bnp = _prepared(60, 4, settings=replace(DEFAULT, lns_gpus=4, lns_seconds=3.0))
    master = bnp.master
    lp = _priced(bnp)
    bnp.lower = math.ceil(lp.value - 1e-6) - 2  # not the proven bound: the search may not stop on it
    before = bnp.upper
    bnp._neighbourhoods(lp.duals, time.perf_counter() + 12)
    assert bnp.stats.neighbourhoods >= 2
    assert bnp.upper <= before and len(bnp.incumbent) == bnp.upper
    assert _covers(master, bnp.incumbent)
    for col in bnp.incumbent:
        assert bnp.pricer.shares_of(col.members) is not None


def test_neighbourhoods_of_a_plan_of_one_gpu_per_workload_save_gpus():
    """A plan far from the LP (every workload alone): repairing a few of its GPUs at a time
    packs them into fewer, and the plan still covers every row with configurations that fit."""
    bnp = _prepared(40, 11, light=True, settings=replace(DEFAULT, lns_gpus=4, lns_seconds=2.0))
    master = bnp.master
    alone = [c for c in master.columns if len(c.members) == 1]
    assert len(alone) == len(master.demand)  # one option per workload (paper batch), each alone
    bnp.incumbent, bnp.upper = alone, len(alone)
    lp = master.solve_lp()
    bnp._neighbourhoods(lp.duals, time.perf_counter() + 8)
    assert bnp.upper <= len(alone) - 3 and len(bnp.incumbent) == bnp.upper
    assert _covers(master, bnp.incumbent)
    for col in bnp.incumbent:
        assert bnp.pricer.shares_of(col.members) is not None


def test_from_lns_rows_the_final_phase_takes_lns_final_share_of_the_limit():
    gated = replace(DEFAULT, large_rows=10, lns_rows=10, lns_final_share=0.5, final_share=0.2)
    ungated = (replace(gated, lns_rows=10**9), replace(gated, large_rows=10**9))  # a residual master is never large
    for settings, share in ((gated, 0.5), (ungated[0], 0.2), (ungated[1], 0.2)):
        bnp = _prepared(24, 3, limit=100.0, light=True, settings=settings)
        assert len(bnp.master.demand) >= 10
        assert math.isclose(bnp.final_deadline - bnp.deadline, share * bnp._limit, rel_tol=1e-9)
