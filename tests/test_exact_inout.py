"""In-out separation for the bound (inout.py): least shares (alone, beside a partner) as dual-feasible centres,
the ascent on explicit configurations (never above the LP optimum, always dual feasible), and at
a root cut short it proves more than the LP's own duals, a bound the optimum respects and the
set search confirms."""

import itertools
import math
import time

import numpy as np
from conftest import HANG_GUARD_S
from test_exact_dive import V100, _priced

from igniter_opt.bench.generate import mixed_instance
from igniter_opt.solvers.exact.catalogue import volume_bound
from igniter_opt.solvers.exact.inout import Centre, ascend, pair_least, share_centre
from igniter_opt.solvers.exact.master import Column, Master
from igniter_opt.solvers.exact.solver import _prepare
from igniter_opt.solvers.sizing import size_instance
from igniter_opt.solvers.solve import SolveOptions, solve


def _search(n: int, seed: int):
    demands = size_instance(mixed_instance(n, seed), V100)
    return _prepare(V100, demands, "paper", False, time.perf_counter() + 120, 1, 0.0)


def _no_set_above(pricer, duals, theta) -> bool:
    """The set search (not the state search the bound's proofs use), exhaustive: nothing above theta."""
    res = pricer.price(duals, theta, beam=None, deadline=time.perf_counter() + 120, max_columns=1,
                       max_nodes=10**10)
    return res.complete and not res.columns


def test_the_centres_are_dual_feasible_and_the_volume_one_is_worth_the_volume_bound():
    cat, pricer, bnp = _search(40, 12)
    assert np.any(cat.type_weight < 1)  # split workloads' rate levels: rows covered by fractions
    rows, weight = bnp.master.type_row, bnp.master.type_weight
    volume = share_centre(pricer.o.alone, pricer.option_type, rows, weight)
    assert math.ceil(bnp._farley(volume, 1.0) - 1e-9) == volume_bound(cat)
    pair = share_centre(pair_least(pricer.pair, pricer.o.alone), pricer.option_type, rows, weight)
    assert np.all(pair >= volume - 1e-12) and bnp._farley(pair, 1.0) > bnp._farley(volume, 1.0)
    for duals in (volume, pair):
        assert _no_set_above(pricer, duals, 1 + 1e-9)
        # least shares are what make them feasible: a little more and some GPU is worth more than 1
        assert not _no_set_above(pricer, duals * 1.2, 1 + 1e-9)


def _packing(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, np.ndarray]:
    """Bin packing as explicit configurations: 8 item sizes, every subset that fits one bin as a
    column, demands of 1-3. Returns the matrix, the demand, the sizes (dual feasible: the volume
    centre), the LP optimum, and duals past the optimal ones (each raised by up to 0.15): not
    feasible, as a root LP's duals cut short are not."""
    rng = np.random.default_rng(seed)
    rows = 8
    size = rng.uniform(0.15, 0.6, rows)
    demand = rng.integers(1, 4, rows).astype(float)
    cols = [c for r in range(1, rows + 1) for c in itertools.combinations(range(rows), r) if size[list(c)].sum() <= 1]
    a = np.zeros((rows, len(cols)))
    master = Master(demand, np.arange(rows))
    for j, c in enumerate(cols):
        a[list(c), j] = 1.0
        master.add(Column(c, tuple(10.0 for _ in c)))
    lp = master.solve_lp()
    return a, demand, size, lp.value, lp.duals + rng.uniform(0, 0.15, rows)


def test_the_ascent_stays_dual_feasible_below_the_lp_optimum_and_beats_both_ends():
    gains = 0
    for seed in range(6):
        a, demand, size, optimum, out = _packing(seed)

        def proves(pi, theta, a=a):
            worth = float((pi @ a).max())
            return (True, math.nan) if worth <= theta else (False, worth)

        start = Centre(size, float(size @ demand))
        best = ascend(out, start, lambda pi, d=demand: float(pi @ d), proves, (0.2, 0.5, 0.8), steps=8, rounds=4,
                      goal=math.inf, tol=1e-3)
        assert (best.duals @ a).max() <= 1 + 1e-9  # dual feasible: its value is a bound
        assert math.isclose(float(best.duals @ demand), best.value, rel_tol=1e-9)
        assert start.value + 0.01 < best.value <= optimum + 1e-9
        gains += best.value > float(out @ demand) / float((out @ a).max()) + 0.01  # above out's own bound too
    assert gains >= 3


def test_at_a_root_cut_short_in_out_proves_more_than_the_lp_duals():
    _, pricer, bnp = _search(40, 12)
    lp = _priced(bnp, rounds=4)  # the LP of a root cut short: its duals overvalue some GPUs
    bnp._final_bound(lp, time.perf_counter() + 60)
    from_lp = bnp.lower
    bnp._ascend(lp, time.perf_counter() + 60)
    assert bnp.lower > from_lp
    duals, v_max = bnp.certificate
    assert math.ceil(bnp._farley(duals, v_max) - 1e-6) == bnp.lower
    assert _no_set_above(pricer, duals, v_max * (1 + 1e-9))  # the certificate holds under the other search
    optimum = solve(mixed_instance(40, 12), "exact", options=SolveOptions(time_limit=HANG_GUARD_S))
    assert optimum.status == "optimal" and bnp.lower <= optimum.num_gpus
