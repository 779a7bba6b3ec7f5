"""A split workload's pieces: rounded rows every plan obeys, and what type duals prove (cuts.py)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from igniter_opt.solvers.exact.bnp import BranchAndPrice
from igniter_opt.solvers.exact.cuts import SAME, cover_value, least_cover, piece_cuts


def _covers(w: np.ndarray) -> list[np.ndarray]:
    """Every whole y with sum w y >= 1 and no level used more than it alone needs (every cover
    holds one of these, and the cuts' coefficients are >= 0)."""
    most = [math.ceil(1 / x - SAME) for x in w]
    return [np.array(y) for y in itertools.product(*(range(m + 1) for m in most))
            if float(np.dot(w, y)) >= 1 - SAME]


def _levels(rng: np.random.Generator) -> np.ndarray:
    return np.round(rng.uniform(0.08, 0.95, size=int(rng.integers(1, 5))), 3)


@pytest.mark.parametrize("seed", range(40))
def test_every_cover_obeys_the_rounded_rows_and_fractional_pieces_do_not(seed: int) -> None:
    rng = np.random.default_rng(seed)
    w = _levels(rng)
    type_row = np.r_[0, np.ones(len(w), dtype=int)]  # an unsplit row 0, the split workload's row 1
    cuts = piece_cuts(type_row, np.r_[1.0, w], multiples=1)
    covers = _covers(w)
    for coef, rhs in cuts:
        assert coef[0] == 0  # nothing of the unsplit row
        assert all(float(coef[1:] @ y) >= rhs for y in covers)
    # the LP's cheapest way through the row, 1 / max w pieces of the largest level, is cut off
    # whenever that is not a whole number of pieces
    y = np.zeros(len(w))
    y[int(np.argmax(w))] = 1 / w.max()
    if abs(1 / w.max() - round(1 / w.max())) > 1e-6:
        assert any(float(coef[1:] @ y) < rhs - 1e-9 for coef, rhs in cuts)


@pytest.mark.parametrize("seed", range(40))
def test_least_cover_bounds_the_cheapest_whole_cover_closely_from_below(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    w = _levels(rng)
    cost = np.round(rng.uniform(0.0, 1.5, size=len(w)), 3)
    brute = min(float(cost @ y) for y in _covers(w))
    found = least_cover(cost, w)
    assert found <= brute + 1e-12  # a lower bound
    assert found >= brute - 0.01 * max(1.0, brute)  # and a close one (weights rounded up by 0.001)


def test_cover_value_is_pi_d_without_split_rows_and_rounds_a_split_row_up() -> None:
    rng = np.random.default_rng(7)
    duals, demand = rng.uniform(0, 1, 6), rng.integers(1, 4, 6).astype(float)
    rows = np.arange(6)
    assert cover_value(duals, rows, np.ones(6), demand) == pytest.approx(float(duals @ demand))
    # a split row served at 0.6 and 0.3 of its rate, duals pi_r w: no whole cover serves exactly
    # 1 (0.6 + 0.6 or 0.6 + 0.3 + 0.3 or ...), so its covers are worth more than pi_r
    w = np.array([0.6, 0.3])
    value = cover_value(np.r_[duals[:1], 2.0 * w], np.array([0, 1, 1]), np.r_[1.0, w], np.array([demand[0], 1.0]))
    assert value == pytest.approx(duals[0] * demand[0] + 2.0 * 1.2)


def test_the_master_adds_the_cuts_its_lp_violates_and_rises_to_whole_pieces() -> None:
    """Row 0 is one workload, row 1 a split workload served by pieces at 0.6 and 0.3 of its rate.
    Without cuts the LP covers row 1 with two thirds of a GPU of two 0.3 pieces (1.667 GPUs); every
    plan has whole pieces, and the rounded rows lift the LP to the optimum, 2."""
    from igniter_opt.solvers.exact.master import Column, Master

    def master() -> Master:
        m = Master(np.array([1.0, 1.0]), np.array([0, 1, 2]), type_row=np.array([0, 1, 1]),
                   type_weight=np.array([1.0, 0.6, 0.3]))
        for members in ((0,), (1,), (0, 1), (2, 2)):
            m.add(Column(members, tuple(40.0 for _ in members)))
        return m

    plain, cut = master(), master()
    cut.offer_cuts(piece_cuts(cut.type_row, cut.type_weight, multiples=1))
    lp_plain, before = plain.solve_lp(), cut.solve_lp()
    assert lp_plain is not None and before is not None
    assert lp_plain.value == pytest.approx(5 / 3)
    assert before.value == pytest.approx(5 / 3) and not cut.cut_rhs  # offered, not open: no row yet
    assert cut.open_cuts(before.z)
    lp_cut = cut.solve_lp()
    assert lp_cut is not None and lp_cut.value == pytest.approx(2.0)
    assert cut.cut_rhs  # a violated cut became a row, and its dual reaches the pieces' types
    assert cover_value(lp_cut.duals, cut.type_row, cut.type_weight, cut.demand) >= lp_cut.value - 1e-9
    assert max(float(lp_cut.duals[cut.option_type[list(c.members)]].sum()) for c in cut.columns) <= 1 + 1e-9
    res = cut.solve_integer(5.0)
    assert res is not None and res[0] == 2.0
    cut.close_cuts()  # dropped: rows and offers, the LP is the plain one again
    again = cut.solve_lp()
    assert again is not None and again.value == pytest.approx(5 / 3) and not cut.cut_rhs


def test_once_the_root_is_proven_below_the_incumbent_whole_pieces_lift_its_bound() -> None:
    """issue 24 (a fresh stress instance with split workloads, `igniter instances generate --family
    stress --seed 5 --sizes 32 --count 1 --kinds replicas`): the root's LP over fractions of pieces
    is 20.92 (bound 21; no bound of 22 in 30 s without cuts, 68 nodes), with whole pieces above 21,
    which proves the plan of 22."""
    import time
    from dataclasses import replace

    from igniter_opt.bench.families import stress_instance
    from igniter_opt.model import load_profile
    from igniter_opt.solvers.exact.branching import Rules
    from igniter_opt.solvers.exact.settings import DEFAULT
    from igniter_opt.solvers.exact.solver import _prepare
    from igniter_opt.solvers.sizing import size_instance

    v100 = load_profile("v100")
    demands = size_instance(stress_instance("replicas", 32, 0, 5, v100), v100)
    bounds = {}
    for k in (0, 1):
        _, _, bnp = _prepare(v100, demands, "paper", False, time.perf_counter() + 60, 1, 0.0,
                             replace(DEFAULT, piece_cuts=k))
        bound, lp, proven = bnp.column_generation(Rules())
        assert proven and lp is not None
        bounds[k] = (math.ceil(bound - 1e-6), lp.value, len(bnp.master.cut_rhs))
    assert bounds[0][0] == 21 and bounds[0][1] < 21 and bounds[0][2] == 0
    assert bounds[1][0] == 22 and bounds[1][1] > 21 and bounds[1][2] > 0


def test_cuts_that_cannot_lift_the_bound_are_dropped() -> None:
    """mixed_instance(32, 28): the root's LP is 9.99 over fractions of pieces and 9.998 with whole
    ones, so the cuts cannot prove 11 (the optimum, which the listing proves) and would only slow
    the search: after the root they are gone."""
    import time

    from igniter_opt.bench.generate import mixed_instance
    from igniter_opt.model import load_profile
    from igniter_opt.solvers.exact.branching import Rules
    from igniter_opt.solvers.exact.solver import _prepare
    from igniter_opt.solvers.sizing import size_instance

    v100 = load_profile("v100")
    _, _, bnp = _prepare(v100, size_instance(mixed_instance(32, 28), v100), "paper", False,
                         time.perf_counter() + 60, 1, 0.0)
    opened = []
    bnp.master.open_cuts = lambda z, _open=bnp.master.open_cuts: opened.append(_open(z)) or opened[-1]
    bound, lp, proven = bnp.column_generation(Rules())
    assert proven and lp is not None and math.ceil(bound - 1e-6) == 10 < bnp.upper
    assert opened == [True]  # its LP violated some: they were rows, and went
    assert not bnp.master.cut_rhs
    after = bnp.master.solve_lp()
    assert after is not None and after.value == pytest.approx(lp.value)


def test_cuts_are_offered_below_cut_rows_rows_only() -> None:
    """The gate on the master's size (ExactSettings.cut_rows): a master of exactly that many rows
    gets no offer, one row fewer in the gate does (the split workloads of a fresh stress instance)."""
    import time
    from dataclasses import replace

    from igniter_opt.bench.families import stress_instance
    from igniter_opt.model import load_profile
    from igniter_opt.solvers.exact.settings import DEFAULT
    from igniter_opt.solvers.exact.solver import _prepare
    from igniter_opt.solvers.sizing import size_instance

    v100 = load_profile("v100")
    demands = size_instance(stress_instance("replicas", 32, 0, 5, v100), v100)
    offered = {}
    cat, _, _ = _prepare(v100, demands, "paper", False, time.perf_counter() + 60, 1, 0.0, DEFAULT)
    rows = len(cat.row_demand)
    for extra in (0, 1):
        _, _, bnp = _prepare(v100, demands, "paper", False, time.perf_counter() + 60, 1, 0.0,
                             replace(DEFAULT, cut_rows=rows + extra))
        offered[extra] = len(bnp.master._pool_rhs)
    assert offered == {0: 0, 1: offered[1]} and offered[1] > 0


def _replicas_32(final_cuts: bool = True) -> BranchAndPrice:
    """The fresh stress instance above (split workloads; root LP 20.92 over fractions of pieces),
    prepared with cut_rows at its row count: the root offers no cut, as at 200 workloads."""
    import time
    from dataclasses import replace

    from igniter_opt.bench.families import stress_instance
    from igniter_opt.model import load_profile
    from igniter_opt.solvers.exact.settings import DEFAULT
    from igniter_opt.solvers.exact.solver import _prepare
    from igniter_opt.solvers.sizing import size_instance

    v100 = load_profile("v100")
    demands = size_instance(stress_instance("replicas", 32, 0, 5, v100), v100)
    cat, _, _ = _prepare(v100, demands, "paper", False, time.perf_counter() + 60, 1, 0.0, DEFAULT)
    settings = replace(DEFAULT, cut_rows=len(cat.row_demand), final_cuts=final_cuts)
    return _prepare(v100, demands, "paper", False, time.perf_counter() + 60, 1, 0.0, settings)[2]


def test_from_cut_rows_rows_the_final_phase_opens_the_cuts_and_its_lp_holds_whole_pieces() -> None:
    """issue 24 (200 workloads): the root leaves the cuts out from cut_rows rows; `_whole_pieces`
    opens them for the final phase and prices on. Its LP obeys every rounded row, where the root's
    violated some, and lies above 21 (whole pieces); with final_cuts off the root's LP is kept."""
    import time

    from igniter_opt.solvers.exact.branching import Rules
    from igniter_opt.solvers.exact.cuts import type_members

    bnp = _replicas_32()
    m = bnp.master
    assert not m._pool_rhs.size  # nothing offered at the root
    _, lp, proven = bnp.column_generation(Rules())
    assert proven and lp is not None and lp.value < 21 and not m.cut_rhs
    cuts = piece_cuts(m.type_row, m.type_weight, 1)

    def violated(z: np.ndarray) -> int:
        members = type_members(m._rows, m._counts, z, len(m.type_row))
        return sum(float(coef @ members) < rhs - 1e-6 for coef, rhs in cuts)

    assert violated(lp.z) > 0
    whole = bnp._whole_pieces(lp, time.perf_counter() + 20)
    assert whole is not lp and m.cut_rhs and whole.value > 21
    assert violated(whole.z) == 0
    off = _replicas_32(final_cuts=False)
    _, lp_off, _ = off.column_generation(Rules())
    assert lp_off is not None and off._whole_pieces(lp_off, time.perf_counter() + 20) is lp_off
    assert not off.master.cut_rhs


def test_the_final_phase_opens_the_cuts_and_a_residual_searchs_does_not() -> None:
    """The whole search's final phase runs on whole pieces. A residual search's rows ask what a
    dive left (a split workload's row may ask a remnant), where a rounded row's right-hand side
    of whole pieces does not hold: its final phase (a finite cutoff) leaves the cuts out."""
    import math
    import time

    from igniter_opt.solvers.exact.branching import Rules

    opened = {}
    for cutoff in (math.inf, 30):
        bnp = _replicas_32()
        _, lp, _ = bnp.column_generation(Rules())
        assert lp is not None
        bnp.cutoff = cutoff  # 30: as a residual search's
        bnp.final_deadline = bnp.deadline = time.perf_counter() + 3
        bnp._final_phase(lp)
        opened[cutoff] = len(bnp.master.cut_rhs)
    assert opened[math.inf] > 0 and opened[30] == 0


def test_when_the_lp_on_whole_pieces_reaches_the_incumbent_the_final_phase_proves_it() -> None:
    """issue 24 (200 workloads): the root's LP (fractions of pieces) is below 21, its LP on whole
    pieces above 21, and the first dive finds 22. No dive can round that LP below 22; the final
    phase used to end its dives there with the limit unused and the bound at 21. It prices on over the
    cut rows instead, exact pricing included, and proves 22 (Farley over the LP with its cuts)."""
    import time
    from dataclasses import replace

    from igniter_opt.solvers.exact.branching import Rules

    bnp = _replicas_32()
    # not priced on after the cuts open: the LP on whole pieces is far from converged, as at 200
    # workloads (where pricing on finds no column heuristically, but exact pricing does)
    bnp.s = bnp.pricer.settings = replace(bnp.s, final_cuts_share=0.0)
    _, lp, proven = bnp.column_generation(Rules())
    assert proven and lp is not None and lp.value < 21
    assert bnp.lower == 21 and bnp.upper == 23  # the seed plan; the final phase's first dive finds 22
    bnp.final_deadline = bnp.deadline = time.perf_counter() + 30
    bnp._final_phase(lp)
    assert bnp.upper == bnp.lower == 22 and bnp.master.cut_rhs
    assert time.perf_counter() < bnp.final_deadline - 1  # proven, not cut by the clock
