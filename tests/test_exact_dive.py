"""The upper and lower bound machinery of branch-and-price: reduced costs and the integer master
under bounds, the dive's rounding and its covers, the Lagrangian bound search after the root."""

import math
import pickle
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import HANG_GUARD_S

from igniter_opt.bench.generate import mixed_instance
from igniter_opt.data.instance import Instance, load_instance
from igniter_opt.model import load_profile
from igniter_opt.solvers.exact.bnp import BranchAndPrice
from igniter_opt.solvers.exact.branching import Rules
from igniter_opt.solvers.exact.dive import _back_off, _round, dive
from igniter_opt.solvers.exact.master import Column, LpResult, Master
from igniter_opt.solvers.exact.settings import DEFAULT, ExactSettings
from igniter_opt.solvers.exact.solver import _prepare
from igniter_opt.solvers.sizing import size_instance, split_workloads
from igniter_opt.solvers.solve import SolveOptions, solve

V100 = load_profile("v100")
STRESS = Path(__file__).resolve().parent.parent / "instances" / "stress"


def _random_master(seed: int, types: int = 6, columns: int = 40) -> Master:
    rng = np.random.default_rng(seed)
    demand = rng.integers(1, 4, types).astype(float)
    master = Master(demand, np.arange(types))
    for t in range(types):  # every type alone: the LP is feasible
        master.add(Column((t,), (10.0,)))
    for _ in range(columns):
        members = tuple(sorted(rng.choice(types, size=rng.integers(2, 5), replace=True).tolist()))
        master.add(Column(members, tuple(10.0 for _ in members)))
    return master


def _light(n: int, seed: int) -> Instance:
    """mixed_instance without the workloads that need more than one GPU (whose rate levels make
    the LP's rounding, and so the dive, a different matter: tests/test_exact_splits.py)."""
    inst = mixed_instance(n, seed)
    split = set(split_workloads(size_instance(inst, V100)))
    return Instance(inst.name, inst.profile, tuple(w for w in inst.workloads if w.name not in split))


def _prepared(n: int, seed: int, limit: float = 60.0, light: bool = False,
              settings: ExactSettings = DEFAULT) -> BranchAndPrice:
    inst = _light(n, seed) if light else mixed_instance(n, seed)
    demands = size_instance(inst, V100)
    _, _, bnp = _prepare(V100, demands, "paper", False, time.perf_counter() + limit, 1, 0.0, settings)
    return bnp


def _priced(bnp: BranchAndPrice, rounds: int = 6) -> LpResult:
    """A few rounds of the root's column generation by heuristic pricing (a dive or a
    neighbourhood needs no solved LP); the master's LP after them."""
    for _ in range(rounds):
        bnp._add(bnp._heuristic(bnp.master.solve_lp().duals, Rules()).columns)
    return bnp.master.solve_lp()


def _covers(master: Master, cover: list[Column]) -> bool:
    got = np.zeros(len(master.demand))
    for col in cover:
        rows, counts = master.coverage(col)
        got[rows] += counts
    return bool(np.all(got >= master.demand - 1e-9))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reduced_costs_are_one_minus_the_dual_value_of_each_column(seed):
    master = _random_master(seed)
    lp = master.solve_lp()
    dense = np.zeros((len(master.demand), len(master.columns)))
    for c, col in enumerate(master.columns):
        for o in col.members:
            dense[o, c] += 1
    assert np.allclose(master.reduced_costs(lp.duals), 1 - lp.duals @ dense)
    assert master.reduced_costs(lp.duals).min() >= -1e-7  # optimal LP: no column prices out


def test_a_master_and_a_whole_search_pickle_with_their_lp_and_column_bounds():
    master = _random_master(5)
    allowed = np.ones(len(master.columns), dtype=bool)
    allowed[[6, 9]] = False  # forbidden columns stay forbidden in the copy
    master.bound(np.eye(len(master.columns))[8], allowed)  # and a dive's fixing stays fixed
    copy = pickle.loads(pickle.dumps(master))
    lp, again = master.solve_lp(), copy.solve_lp()
    assert copy.columns == master.columns and copy.costs == master.costs
    assert math.isclose(again.value, lp.value, rel_tol=1e-9) and np.allclose(again.z, lp.z)
    assert again.z[[6, 9]].max() == 0 and again.z[8] >= 1 - 1e-9
    bnp = _prepared(24, 3, light=True)  # the search a final-phase snapshot holds, pricer and all
    clone = pickle.loads(pickle.dumps(bnp))
    assert clone.upper == bnp.upper and clone.master.columns == bnp.master.columns
    assert math.isclose(clone.master.solve_lp().value, bnp.master.solve_lp().value, rel_tol=1e-9)


def test_integer_master_respects_lower_bounds_allowed_columns_and_the_cutoff():
    master = _random_master(3)
    best, z = master.solve_integer(10.0)
    assert _covers(master, [c for c, k in zip(master.columns, z) for _ in range(int(k))])
    # nothing beats the optimum: asked for fewer GPUs than it, the MIP has no solution
    assert master.solve_integer(10.0, below=best) is None
    lower = np.zeros(len(master.columns))
    lower[-1] = 2
    _, z2 = master.solve_integer(10.0, lower=lower)
    assert z2[-1] >= 2
    allowed = np.ones(len(master.columns), dtype=bool)
    allowed[np.nonzero(z)[0]] = False
    allowed[:len(master.demand)] = True  # singletons stay: still feasible
    _, z3 = master.solve_integer(10.0, allowed)
    assert np.all(z3[~allowed] == 0)


def test_round_fixes_integer_parts_first_then_rounds_up_near_columns():
    z = np.array([1.0, 2.4, 0.3, 0.9, 0.0])
    S = ExactSettings()  # round_up 0.2, round_share 30
    first, up = _round(np.zeros(0), z, S.round_up, S.round_share)
    assert first.tolist() == [1, 2, 0, 0, 0] and up.size == 0  # the integer parts, nothing rounded up yet
    second, up = _round(first, z, S.round_up, S.round_share)
    assert second.tolist() == [1, 2, 0, 1, 0] and up.tolist() == [3]  # 0.9 is within round_up of its ceiling
    third, up = _round(second, np.array([1.0, 2.4, 0.3, 1.0, 0.0]), S.round_up, S.round_share)
    assert third.tolist() == [1, 3, 0, 1, 0] and up.tolist() == [1]  # else the one nearest its ceiling


def test_a_round_up_backs_off_to_the_half_of_its_columns_nearest_their_ceiling():
    """A round-up's columns come nearest-first; backing off keeps the first half of them at
    their new fixing, the others (and columns added since) at the fixings before."""
    z = np.array([0.95, 0.3, 0.85, 0.9, 1.0, 0.82])
    before = np.array([0.0, 0, 0, 0, 1])  # a column was added since these fixings
    after, up = _round(before, z, 0.2, 30)
    assert up.tolist() == [0, 3, 2, 5]  # within 0.2 of their ceiling, nearest first
    assert after.tolist() == [1, 0, 1, 1, 1, 1]
    fixed, half = _back_off(before, after, up)
    assert half.tolist() == [0, 3] and fixed.tolist() == [1, 0, 0, 1, 1, 0]
    again, quarter = _back_off(before, fixed, half)
    assert quarter.tolist() == [0] and again.tolist() == [1, 0, 0, 0, 1, 0]


def test_noise_changes_which_fractional_columns_a_dive_rounds_up_and_nothing_else():
    """The final dives after the first (settings.dive_noise): noise shifts how near a fractional
    column counts to its ceiling; integer parts, integral columns and the ceiling stay."""
    z = np.array([1.0, 2.45, 0.3, 0.5, 0.0, 0.55])
    fixed = np.floor(z)
    plain = _round(fixed, z, 0.2, 30)[0]
    assert plain.tolist() == [1, 2, 0, 0, 0, 1]  # the nearest to its ceiling (0.55)
    assert plain.tolist() == _round(fixed, z, 0.2, 30, np.zeros(len(z)))[0].tolist()
    picks = set()
    for seed in range(20):
        noise = np.random.default_rng(seed).uniform(-0.15, 0.15, len(z))
        out = _round(fixed, z, 0.2, 30, noise)[0]
        assert np.all(out >= fixed) and np.all(out <= np.ceil(z)) and out.sum() > fixed.sum()
        assert out[[0, 4]].tolist() == [1, 0]  # integral columns never move
        picks.add(tuple(np.flatnonzero(out > fixed)))
    assert len(picks) >= 2  # another path: some other column was rounded up


def test_dive_returns_a_fitting_cover_or_nothing_and_undoes_its_fixings():
    bnp = _prepared(40, 11, light=True)
    bnp.column_generation(Rules())
    master, pricer = bnp.master, bnp.pricer
    lp = master.solve_lp()
    target = math.ceil(lp.value - 1e-6) + 1  # ask for a plan of at most ceil(LP) GPUs
    out = dive(master, lambda d: bnp._heuristic(d, Rules()).columns, target, time.perf_counter() + 30,
               time.perf_counter() + 35)
    assert out.cover is not None and len(out.cover) < target
    assert _covers(master, out.cover)
    for col in out.cover:  # every GPU fits under the model
        assert pricer.shares_of(col.members) is not None
    after = master.solve_lp()
    assert after.value <= lp.value + 1e-6  # the fixings are gone


def test_the_final_bound_search_proves_ceil_lp_once_the_lp_is_solved():
    bnp = _prepared(40, 12)
    _, lp, proven = bnp.column_generation(Rules())
    assert proven
    optimum = solve(mixed_instance(40, 12), "exact", options=SolveOptions(time_limit=HANG_GUARD_S))
    assert optimum.status == "optimal"
    replicas = 0  # exact places every replica itself (split workloads' rate levels are its items)
    bnp.lower = 0
    lp = bnp.master.solve_lp()  # the root LP with every column: solved, so ceil(LP) is provable
    bnp._final_bound(lp, time.perf_counter() + 30)
    assert bnp.lower == min(bnp.upper, math.ceil(lp.value - 1e-6))
    assert bnp.lower <= optimum.num_gpus - replicas  # a bound, never above the optimum


@pytest.mark.parametrize("seed", [15, 16])
def test_from_a_bad_incumbent_the_dives_reach_the_proven_optimum(seed):
    # every workload alone as the incumbent: the plan must come from the dives (and the integer
    # masters), and the answer must be the optimum the default run proves
    inst = mixed_instance(24, seed)
    optimum = solve(inst, "exact", options=SolveOptions(time_limit=HANG_GUARD_S))
    assert optimum.status == "optimal"
    replicas = 0  # exact places every replica itself (split workloads' rate levels are its items)
    bnp = _prepared(24, seed, settings=ExactSettings(dive_after=0.0))  # a dive at every LP that moved by dive_gain
    alone = [Column((o,), (float(bnp.pricer.o.alone[o]),)) for o in range(len(bnp.pricer.option_type))]
    bnp.incumbent, bnp.upper = alone, len(alone)
    out = bnp.run(branching=True)
    assert out.stats.dives >= 1
    assert out.complete and out.upper == out.lower == optimum.num_gpus - replicas
    assert _covers(bnp.master, out.chosen)


def test_the_root_takes_the_final_phase_when_no_dive_can_beat_the_incumbent():
    """With ceil(LP) at the incumbent, dives and integer masters cannot help: the root's column
    generation goes on into the final phase (once), keeping settings.final_reserve for the bound search."""
    bnp = _prepared(32, 3, limit=10)
    lp = bnp.master.solve_lp()
    bnp.upper = math.ceil(lp.value - 1e-6)
    before = bnp.deadline
    assert not bnp._extend(lp, Rules(apart=[(0, 1)]))  # not below the root
    assert bnp._extend(lp, Rules())
    assert bnp.deadline > before
    assert bnp.deadline == pytest.approx(bnp.final_deadline - bnp.s.final_reserve * bnp._limit)
    assert not bnp._extend(lp, Rules())
    other = _prepared(32, 3, limit=10)
    lp = other.master.solve_lp()
    other.upper = math.ceil(lp.value - 1e-6) + 1  # a dive could still find a better plan
    assert not other._extend(lp, Rules())


def _heavy_tailed(settings: ExactSettings = DEFAULT) -> BranchAndPrice:
    """The committed heavy-tailed 48-workload instance, prepared as the solver does (types of
    several workloads one row): configurations of 15-20 members, whose root bound a threshold
    proves long before the LP is solved."""
    inst = load_instance(STRESS / "stress-heavytail-n48-01.json")
    profile = load_profile(inst.profile)
    _, _, bnp = _prepare(profile, size_instance(inst, profile), "paper", True, time.perf_counter() + 30, 1, 0.0,
                         settings)
    return bnp


def test_the_root_lp_is_solved_on_after_a_threshold_proves_its_bound():
    """A threshold above 1 proves the root's bound before the LP's optimum; the plan's search
    rounds that LP, so `_converge` solves it on first (heuristic and state-search pricing): its
    LP is lower and stays above the proven bound; with no time left it does nothing."""
    bnp = _heavy_tailed()
    bound, lp, proven = bnp.column_generation(Rules())
    assert proven and lp.value > bound * (1 + 1e-9)  # proven by a threshold, the LP not solved
    now = time.perf_counter()
    solved = bnp._converge(lp, now + DEFAULT.converge_share * (bnp.deadline - now))
    assert solved.value < lp.value - 1e-3
    assert solved.value > bound  # an LP bound still: the proof stands
    assert bnp._converge(solved, time.perf_counter()) is solved


def test_together_groups_are_transitive():
    rules = Rules(together=[(1, 2), (3, 2), (7, 8)], apart=[(1, 9)])
    assert sorted(map(sorted, rules.groups())) == [[1, 2, 3], [7, 8]]
    assert Rules().groups() == []


def _pair_never_together(bnp: BranchAndPrice, fits: bool) -> tuple[int, int]:
    """Two types no pool column holds together, whose options fit one GPU together (or not)."""
    types, pricer = bnp.pricer.option_type, bnp.pricer
    seen = {tuple(sorted({int(types[o]) for o in c.members})) for c in bnp.master.columns}
    for a in range(len(bnp.master.demand)):
        for b in range(a + 1, len(bnp.master.demand)):
            if any(a in s and b in s for s in seen):
                continue
            oa, ob = np.flatnonzero(types == a), np.flatnonzero(types == b)
            if oa.size == 1 and ob.size == 1 and (pricer.shares_of((int(oa[0]), int(ob[0]))) is not None) == fits:
                return a, b
    raise AssertionError("no such pair")


def test_a_node_the_pool_cannot_cover_is_repaired_not_pruned():
    """A together rule on a pair no pool column holds: the restricted master is infeasible, but the
    node is not. Its bound is proven and finite (pricing fills it), and a pair that cannot share a
    GPU proves the node infeasible (one option per type: nothing else could fit)."""
    bnp = _prepared(24, 5, light=True)
    together = Rules(together=[_pair_never_together(bnp, fits=True)])
    bound, lp, proven = bnp.column_generation(together)
    assert proven and lp is not None and np.isfinite(bound) and bound >= 1
    bnp.master.forbid(np.ones(len(bnp.master.columns), dtype=bool))
    impossible = Rules(together=[_pair_never_together(bnp, fits=False)])
    assert bnp.column_generation(impossible) == (np.inf, None, True)


def test_under_joint_a_group_is_repaired_with_any_batch_combination_that_fits():
    """Several batch options per type: when each type's option of least share alone does not fit
    beside the others, another combination may; least_column tries them all (the node is then
    repaired, not left undecided) and says False only when none fits (brute force agrees)."""
    import itertools

    from conftest import mixed_pricer

    from igniter_opt.solvers.exact.repair import least_column

    pricer = mixed_pricer(24, 3, policy="joint")
    types, alone = pricer.option_type, pricer.o.alone
    opts = {int(t): np.flatnonzero((types == t) & np.isfinite(alone)) for t in np.unique(types)}
    verdicts, beyond_least = [], 0
    for a, b, c in itertools.combinations(sorted(t for t in opts if opts[t].size > 1)[:9], 3):
        group = (opts[a], opts[b], opts[c])
        fits = [m for m in itertools.product(*group) if pricer.shares_of(tuple(sorted(map(int, m)))) is not None]
        col = least_column({a, b, c}, pricer)
        verdicts.append(bool(fits))
        if not fits:
            assert col is False
            continue
        assert isinstance(col, Column) and pricer.shares_of(col.members) is not None
        assert sorted(int(types[o]) for o in col.members) == [a, b, c]
        least = tuple(sorted(int(o[np.argmin(alone[o])]) for o in group))
        beyond_least += pricer.shares_of(least) is None
    assert beyond_least >= 1 and True in verdicts  # the case the repair is for occurs here
    few = least_column({a, b, c}, pricer, most=1)  # too many combinations: the least ones, or no verdict
    assert few is None or isinstance(few, Column)


@pytest.mark.parametrize("skip", [True, False])
def test_a_node_no_bound_can_prune_branches_without_an_exhaustive_call(skip):
    """Below the root only a bound of UB prunes a node. A node whose restricted LP is already at
    most UB - 1 (its LP optimum is no higher) returns once heuristic pricing ends, proven, with
    the proven lower bound (valid at every node) and no exhaustive call; with node_skip off the
    same node prices exhaustively, as before."""
    bnp = _prepared(40, 1, settings=replace(DEFAULT, node_skip=skip))
    lp = _priced(bnp)
    pair = bnp._pair(lp)
    assert pair is not None
    calls = bnp.stats.exhaustive_calls
    bound, node_lp, proven = bnp.column_generation(Rules([pair], []))
    assert proven and node_lp is not None and math.ceil(node_lp.value - 1e-6) < bnp.upper
    if skip:
        assert bound == bnp.lower and bnp.stats.exhaustive_calls == calls
    else:
        assert bnp.stats.exhaustive_calls > calls


def _joint(n: int, seed: int, settings: ExactSettings = DEFAULT) -> BranchAndPrice:
    demands = size_instance(mixed_instance(n, seed), V100)
    _, _, bnp = _prepare(V100, demands, "joint", False, time.perf_counter() + 60, 1, 0.0, settings)
    return bnp


def test_under_joint_an_lp_heuristic_pricing_leaves_unsolved_is_solved_by_exhaustive_pricing():
    bnp = _joint(24, 5)
    lp = _priced(bnp, rounds=2)
    solved = bnp._solve_lp_exactly(Rules(), lp)
    assert solved is not None and solved.value <= lp.value + 1e-9
    # solved: no configuration is worth more than 1 + EPS at its duals, by the exhaustive search
    res = bnp.pricer.price(solved.duals, 1 + 1e-6, beam=None, deadline=time.perf_counter() + 60, max_columns=1)
    assert res.complete and not res.columns
    # the paper policy keeps the heuristic's answer (None: the node branches as before)
    paper = _prepared(24, 5)
    assert paper._solve_lp_exactly(Rules(), _priced(paper, rounds=2)) is None


def test_under_joint_a_slack_above_close_slack_joint_is_not_listed():
    bnp = _joint(24, 5, replace(DEFAULT, close_slack_joint=-1.0))
    solved = bnp._solve_lp_exactly(Rules(), _priced(bnp, rounds=2))
    assert solved is not None
    calls = bnp.stats.exhaustive_calls
    assert not bnp._close(Rules(), solved, solved.value)
    assert bnp.stats.exhaustive_calls == calls  # no listing ran


@pytest.mark.parametrize("rows_small", [0, 100])
def test_a_listing_that_meets_its_caps_is_not_repeated_and_on_few_rows_widens_the_next(rows_small: int):
    bnp = _joint(24, 5, replace(DEFAULT, close_slack_joint=10.0, enum_columns=20, close_rows_small=rows_small))
    solved = bnp._solve_lp_exactly(Rules(), _priced(bnp, rounds=2))
    assert solved is not None
    assert not bnp._close(Rules(), solved, solved.value)  # 20 columns: met at once
    calls = bnp.stats.exhaustive_calls
    widened = rows_small >= len(bnp.master.demand)
    assert bnp.listing.columns == (20 * DEFAULT.enum_growth if widened else 20)
    assert len(bnp.listing.tried) == 1
    assert not bnp._close(Rules(), solved, solved.value)
    # the same incumbent, bound and rows: listed again only with wider caps
    assert bnp.stats.exhaustive_calls == calls + widened
