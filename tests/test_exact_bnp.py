"""Solver `exact` (branch-and-price): the oracle, agreement with milp, patterns and a brute force,
the proof contract under a time limit, aggregation of identical workloads, the joint policy."""

import time

import numpy as np
import pytest
from conftest import HANG_GUARD_S

from igniter_opt.bench.generate import mixed_instance, random_instance
from igniter_opt.data.instance import Instance, Workload
from igniter_opt.model import load_profile
from igniter_opt.solvers.colocation import least_shares as reference_least_shares
from igniter_opt.solvers.exact.catalogue import catalogue
from igniter_opt.solvers.exact.oracle import build_options, least_shares
from igniter_opt.solvers.exact.settings import ExactSettings
from igniter_opt.solvers.exact.solver import ExactOptions
from igniter_opt.solvers.sizing import size_instance, split_workloads
from igniter_opt.solvers.solve import SolveOptions, solve

V100 = load_profile("v100")


def _optimal(inst, solver, **kw):
    plan = solve(inst, solver, options=SolveOptions(time_limit=HANG_GUARD_S, **kw))
    assert plan.feasible, plan.message
    assert plan.status == "optimal", plan.message
    assert plan.lower_bound == plan.num_gpus
    return plan


def _partitions(items):
    """Every set partition of a list (Bell(n) of them)."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in _partitions(rest):
        yield [[first], *part]
        for k in range(len(part)):
            yield [*part[:k], [first] + part[k], *part[k + 1:]]


def _brute_force(inst: Instance) -> int:
    """Fewest GPUs over every partition of the demands, each block checked by the reference's
    raise-the-violators fixed point (paper batches): independent of the exact solver's code."""
    demands = size_instance(inst, V100)
    shareable = [i for i, d in enumerate(demands) if not d.full_gpu]
    fits: dict[tuple[int, ...], bool] = {}

    def fit(block):
        key = tuple(sorted(block))
        if key not in fits:
            batch = np.array([demands[i].batch for i in key], dtype=float)
            start = np.array([demands[i].r_lower for i in key])
            fits[key] = reference_least_shares(V100, demands, list(key), batch, start) is not None
        return fits[key]

    best = min(len(p) for p in _partitions(shareable) if all(fit(b) for b in p))
    return best + sum(d.full_gpu for d in demands)


def test_oracle_matches_the_reference_fixed_point():
    rng = np.random.default_rng(7)
    inst = mixed_instance(24, 5)
    demands = [d for d in size_instance(inst, V100) if not d.full_gpu]
    opts = build_options(V100, [d.model for d in demands], np.array([d.batch for d in demands]),
                         np.array([d.slo_ms for d in demands]), np.array([d.rate_rps for d in demands]))
    small = np.argsort([d.r_lower for d in demands])[:12]  # small shares: many subsets fit
    fitting = 0
    for m in (1, 2, 3, 4, 5):
        idx = np.array([np.sort(rng.choice(small, m, replace=False)) for _ in range(60)])
        ours = least_shares(V100.hardware, opts, idx)
        for row, got in zip(idx, ours):
            ref = reference_least_shares(V100, demands, list(row), np.array([demands[i].batch for i in row], float),
                                         np.array([demands[i].r_lower for i in row]))
            if ref is None:
                assert not np.isfinite(got).all()
            else:
                fitting += 1
                np.testing.assert_allclose(got, ref)
    assert fitting > 100  # the comparison covered many fitting sets, not only rejections


@pytest.mark.parametrize("n,seed", [(3, 0), (4, 1), (5, 2), (6, 3), (6, 4)])
def test_exact_equals_brute_force(n, seed):
    """Over the sizing's split; exact searches every split on its grid (a superset, the sizing's
    split included), so it may only do better, and only where some workload is split
    (tests/test_exact_splits.py brute-forces the splits themselves)."""
    inst = mixed_instance(n, seed)
    got, fixed = _optimal(inst, "exact").num_gpus, _brute_force(inst)
    assert got <= fixed
    if not split_workloads(size_instance(inst, V100)):
        assert got == fixed


@pytest.mark.parametrize("make,n,seed", [(random_instance, 8, 3), (random_instance, 12, 0),
                                         (mixed_instance, 10, 1), (mixed_instance, 12, 2)])
def test_exact_milp_patterns_agree(make, n, seed):
    inst = make(n, seed)
    counts = {s: _optimal(inst, s).num_gpus for s in ("exact", "milp", "patterns")}
    assert counts["milp"] == counts["patterns"], counts
    assert counts["exact"] <= counts["milp"], counts  # exact also searches the replica splits
    if not split_workloads(size_instance(inst, V100)):
        assert counts["exact"] == counts["milp"], counts


def test_identical_workloads_are_one_row_with_a_demand():
    workloads = tuple(Workload(f"r{i}", "resnet50", 40.0, 120.0) for i in range(9)) + \
        tuple(Workload(f"a{i}", "alexnet", 20.0, 200.0) for i in range(5))
    inst = Instance("twins", "v100", workloads)
    cat = catalogue(V100, size_instance(inst, V100), "paper", aggregate=True)
    assert sorted(len(t) for t in cat.type_demands) == [5, 9]
    assert _optimal(inst, "exact").num_gpus == _optimal(inst, "milp").num_gpus


@pytest.mark.parametrize("n,seed", [(6, 0), (8, 1)])
def test_joint_policy_agrees_with_patterns(n, seed):
    inst = mixed_instance(n, seed)
    exact = _optimal(inst, "exact", batch_policy="joint")
    assert exact.num_gpus == _optimal(inst, "patterns", batch_policy="joint").num_gpus
    assert exact.num_gpus <= _optimal(inst, "exact").num_gpus  # more freedom never costs GPUs


def test_time_limit_returns_a_verified_incumbent_and_a_valid_bound():
    inst = mixed_instance(100, 0)
    begin = time.perf_counter()
    plan = solve(inst, "exact", options=SolveOptions(time_limit=3))
    assert time.perf_counter() - begin < 3 + 120  # the limit is honoured (a hang guard; figures: bench_limits.py)
    assert plan.feasible, plan.message
    assert plan.status in ("optimal", "time_limit")
    assert plan.lower_bound is not None and plan.lower_bound <= plan.num_gpus
    greedy = solve(inst, "greedy")
    if greedy.feasible:
        assert plan.num_gpus <= greedy.num_gpus


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_never_worse_than_a_verified_heuristic(seed):
    inst = mixed_instance(20, seed)
    plan = _optimal(inst, "exact")
    for heuristic in ("greedy", "ffd"):
        other = solve(inst, heuristic)
        if other.feasible:
            assert plan.num_gpus <= other.num_gpus


def test_ctrl_c_keeps_the_incumbent_and_the_bound(monkeypatch):
    import os
    import signal
    import threading

    from igniter_opt.data.errors import SolveInterrupted
    from igniter_opt.solvers.exact.bnp import BranchAndPrice

    # Ctrl-C 0.5 s into the search (a fixed timer from the start lands in imports or sizing on a
    # busy machine, where there is no incumbent yet)
    timers: list[threading.Timer] = []
    search = BranchAndPrice.run

    def interrupted_run(self, *args, **kwargs):
        timers.append(threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)))
        timers[-1].start()
        return search(self, *args, **kwargs)

    monkeypatch.setattr(BranchAndPrice, "run", interrupted_run)
    try:
        with pytest.raises(SolveInterrupted) as caught:
            solve(mixed_instance(64, 1), "exact", options=SolveOptions(time_limit=120))
    finally:
        for timer in timers:
            timer.cancel()
    assert timers  # the search ran and was interrupted, not the preparation
    plan = caught.value.plan
    assert plan.status == "interrupted" and plan.feasible, plan.message
    assert plan.num_gpus > 0 and plan.lower_bound is not None and plan.lower_bound <= plan.num_gpus


def test_ctrl_c_while_preparing_keeps_the_heuristics_plan(monkeypatch):
    """Ctrl-C before branch-and-price exists (sizing its catalogue) still answers with the
    heuristics' verified plan, status interrupted, not an empty plan."""
    from igniter_opt.data.errors import SolveInterrupted
    from igniter_opt.solvers.exact import solver as exact_solver

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(exact_solver, "_prepare", interrupted)
    inst = mixed_instance(24, 3)
    with pytest.raises(SolveInterrupted) as caught:
        solve(inst, "exact", options=SolveOptions(time_limit=60))
    plan = caught.value.plan
    assert plan.status == "interrupted" and plan.feasible, plan.message
    assert {w.name.split("#")[0] for g in plan.gpus for w in g.workloads} == {w.name for w in inst.workloads}


@pytest.mark.parametrize("path", ["instances/stress/stress-small-n24-00.json", "instances/random/random-n24-01.json"])
def test_cardinality_bound_holds_every_verified_gpu(path):
    from pathlib import Path

    from igniter_opt.data.instance import load_instance
    from igniter_opt.solvers.exact.catalogue import max_members

    inst = load_instance(Path(__file__).resolve().parent.parent / path)
    demands = size_instance(inst, V100)
    cat = catalogue(V100, demands, "paper", aggregate=True)
    m_max = max_members(V100, cat, cat.caps)
    for solver in ("greedy", "exact"):
        plan = solve(inst, solver, options=SolveOptions(time_limit=60))
        if plan.feasible:
            assert max(len(g.workloads) for g in plan.gpus) <= m_max


def test_few_gpus_run_the_compact_model_first_when_asked_and_agree_with_milp():
    """The compact MILP step is a setting (off by default: branch-and-price proves these alone);
    on, it runs first and proves; off, branch-and-price proves the same count."""
    from pathlib import Path

    from igniter_opt.data.instance import load_instance

    inst = load_instance(Path(__file__).resolve().parent.parent / "instances/stress/stress-small-n32-05.json")
    first = ExactOptions(time_limit=HANG_GUARD_S, threads=1, settings=ExactSettings(few_gpus=4))
    exact = solve(inst, "exact", options=SolveOptions(time_limit=HANG_GUARD_S), solver_options=first)
    assert exact.status == "optimal" and "the compact MILP ran first" in exact.message
    alone = _optimal(inst, "exact")
    assert alone.message.startswith("branch-and-price") and alone.num_gpus == exact.num_gpus
    assert exact.num_gpus == _optimal(inst, "milp").num_gpus
