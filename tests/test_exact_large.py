"""Datacenter sizes under the paper policy (issue 24, item 3): what is gated on the master's size.

From ExactSettings.large_rows rows the integer master runs without HiGHS's presolve (it
ran 10-20 s past a 5 s limit on 13,000-column masters); the cover it returns must still be an
optimal one, and smaller masters keep the presolve. From as many rows the root does not
dive before the final phase.
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
    assert not master.mip_presolve
    res = master.solve_integer(30.0, below=161)
    assert res is not None and res[0] == 80
    assert master.last_proven
    covered = np.zeros(160)
    for col, k in zip(master.columns, res[1], strict=True):
        covered[list(col.members)] += k
    assert covered.min() >= 1


def test_a_small_integer_master_keeps_the_presolve_and_the_same_answer():
    small = _pairs_master(20, ExactSettings())
    assert small.mip_presolve
    assert small.solve_integer(30.0)[0] == 10
    # the gate is a setting: the same small master without presolve agrees
    off = _pairs_master(20, ExactSettings(large_rows=10))
    assert not off.mip_presolve and off.solve_integer(30.0)[0] == 10
