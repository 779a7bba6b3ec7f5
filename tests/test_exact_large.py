"""Datacenter sizes under the paper policy (issue 24, item 3): what is gated on the master's size.

From ExactSettings.large_rows rows the integer master runs without HiGHS's presolve (it
ran 10-20 s past a 5 s limit on 13,000-column masters); the cover it returns must still be an
optimal one, and smaller masters keep the presolve. From as many rows the root does not
dive before the final phase, and once the root ends the final phase follows (no tree below it).
"""

from __future__ import annotations

import numpy as np

from igniter_opt.solvers.exact.master import Column, Master
from igniter_opt.solvers.exact.settings import ExactSettings


def _pairs_master(types: int, settings: ExactSettings) -> Master:
    """Every type alone, and the pairs (2i, 2i+1) and (2i+1, 2i+2): the least cover is the first pairs."""
    master = Master(np.ones(types), np.arange(types), settings=settings)
    for t in range(types):
        master.add(Column((t,), (0.5,)))
    for t in range(0, types - 1):
        master.add(Column((t, t + 1), (0.5, 0.5)))
    return master


def test_a_large_integer_master_runs_without_presolve_and_finds_the_least_cover():
    master = _pairs_master(160, ExactSettings())
    assert master.large  # so its integer master runs without presolve
    res = master.solve_integer(30.0, below=161)
    assert res is not None and res[0] == 80
    assert master.last_proven
    covered = np.zeros(160)
    for col, k in zip(master.columns, res[1], strict=True):
        covered[list(col.members)] += k
    assert covered.min() >= 1


def test_a_small_integer_master_keeps_the_presolve_and_the_same_answer():
    small = _pairs_master(20, ExactSettings())
    assert not small.large  # so it keeps the presolve
    assert small.solve_integer(30.0)[0] == 10
    # the gate is a setting: the same small master without presolve agrees
    off = _pairs_master(20, ExactSettings(large_rows=10))
    assert off.large and off.solve_integer(30.0)[0] == 10


def test_pruning_the_pool_keeps_the_lp_and_lets_a_column_come_back():
    master = _pairs_master(20, ExactSettings())
    lp = master.solve_lp()
    assert lp is not None and abs(lp.value - 10) < 1e-6
    used = lp.z > 1e-9
    keep = used.copy()
    keep[:3] = True  # three singletons stay besides the LP's own columns
    dropped = [c for c, k in zip(master.columns, keep, strict=True) if not k]
    assert master.prune(keep) == len(dropped) > 0
    assert len(master.columns) == int(keep.sum())
    again = master.solve_lp()
    assert again is not None and abs(again.value - lp.value) < 1e-6
    assert np.allclose(master.reduced_costs(again.duals), [1 - sum(again.duals[list(c.members)])
                                                               for c in master.columns])
    assert not master.known(dropped[0].members) and master.add(dropped[0])
    assert master.solve_lp() is not None and len(master.columns) == int(keep.sum()) + 1


def test_at_datacenter_sizes_the_final_phase_follows_the_root():
    """With `tree_large` off (the default) a large master's search goes from the root straight to
    the final phase: the root ends below the incumbent, and a dive (not the root's integer
    master, which the tree would run first) finds the plan; the plan covers every workload.
    With the tree on, the same root runs its integer master first."""
    from dataclasses import replace

    from test_exact_dive import _covers, _prepared

    large = replace(ExactSettings(), large_rows=30)
    assert not large.tree_large
    bnp = _prepared(48, 2, limit=12, light=True, settings=large)
    assert bnp.master.large
    out = bnp.run(branching=True)
    assert out.stats.nodes == 1 and out.stats.dives >= 1 and out.stats.integer_solves == 0
    assert _covers(bnp.master, out.chosen) and len(out.chosen) == out.upper
    tree = _prepared(48, 2, limit=12, light=True, settings=replace(large, tree_large=True)).run(branching=True)
    assert tree.stats.integer_solves >= 1 and tree.stats.dives == 0


def _final_dives(reserve: float, cutoff: float = float("inf")) -> tuple[int, float]:
    """The final phase of the 32-workload replicas instance (root LP below 21, bound 21, seed plan
    23) over a 6 s limit, its dives replaced by ones that take 0.1 s and find nothing: how many it
    made, and the seconds left of the dives' time when they stopped."""
    import time
    from dataclasses import replace

    from test_exact_cuts import _replicas_32

    from igniter_opt.solvers.exact.branching import Rules

    bnp = _replicas_32()
    bnp.s = bnp.pricer.settings = replace(bnp.s, final_more_reserve=reserve)
    _, lp, _ = bnp.column_generation(Rules())
    assert lp is not None and bnp.lower == 21 and bnp.upper == 23
    made: list[float] = []

    def dive(end: float, _rng: object = None) -> bool:
        assert end <= bnp.deadline  # each dive ends within the dives' time
        time.sleep(0.1)
        made.append(bnp.deadline - time.perf_counter())
        return False

    bnp._dive = dive  # type: ignore[method-assign]
    bnp.cutoff, bnp._limit = cutoff, 6.0
    bnp.final_deadline = bnp.deadline = time.perf_counter() + 6.0
    bnp._final_phase(lp)
    return len(made), made[-1]


def test_the_final_phase_dives_on_while_its_limit_allows():
    """A 900 s solve of 200 workloads returned after 337 s, its gap open: its final phase had made
    its fixed count of dives. After them it now dives on while more than final_more_reserve of
    the limit is left (1.5 s of 6 here), in the whole search only: a residual search (a finite
    cutoff) returns after its fixed count, so that its caller dives on; 1.0 turns it off."""
    fixed = ExactSettings().final_dives_small
    count, left = _final_dives(0.25)
    assert count > fixed + 10 and 1.3 < left <= 1.6
    assert _final_dives(1.0)[0] == fixed
    assert _final_dives(0.25, cutoff=30)[0] == fixed
