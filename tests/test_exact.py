"""The exact solvers (milp, patterns): verified plans, agreement, bounds, infeasibility, CLI."""

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import HANG_GUARD_S
from typer.testing import CliRunner

from igniter_opt.bench.generate import random_instance
from igniter_opt.cli import app
from igniter_opt.data.errors import InputError
from igniter_opt.data.instance import Instance, Workload, load_instance
from igniter_opt.model import predict
from igniter_opt.solvers.formulations import compact, compactdata, patterns
from igniter_opt.solvers.formulations.bounds import packing_lower_bound, prune
from igniter_opt.solvers.formulations.common import shareable_configs
from igniter_opt.solvers.sizing import size_instance
from igniter_opt.solvers.solve import SolveOptions, solve

PAPER = Path(__file__).resolve().parent.parent / "instances" / "paper"
SHOWCASE = PAPER.parent / "showcase"
OPTS = SolveOptions(time_limit=30)
NOT_EXACT = "failed verify"  # the milp's message when its own plan broke the model


def _exact(inst, solver, **kw):
    plan = solve(inst, solver, options=SolveOptions(time_limit=HANG_GUARD_S, **kw))
    assert plan.feasible, plan.message
    assert NOT_EXACT not in plan.message
    assert plan.status == "optimal"
    assert plan.lower_bound == plan.num_gpus and plan.gap == 0
    return plan


@pytest.mark.parametrize("n,seed", [(4, 0), (4, 4), (6, 1), (8, 3), (10, 2), (12, 0), (12, 3)])
def test_milp_and_patterns_agree_and_verify(n, seed):
    inst = random_instance(n, seed)
    greedy = solve(inst, "greedy")
    milp, pat = _exact(inst, "milp"), _exact(inst, "patterns")
    assert milp.num_gpus == pat.num_gpus
    if greedy.feasible:
        assert milp.num_gpus <= greedy.num_gpus


@pytest.mark.parametrize("seed", [1, 2])
def test_joint_policy_agrees_and_never_needs_more_gpus(seed):
    inst = random_instance(5, seed)
    paper = _exact(inst, "milp")
    joint = _exact(inst, "milp", batch_policy="joint")
    assert joint.num_gpus <= paper.num_gpus
    assert _exact(inst, "patterns", batch_policy="joint").num_gpus == joint.num_gpus
    assert all(w.batch <= d.batch for w in joint.workloads() for d in size_instance(inst, _v100())
               if d.name == w.name)


def _v100():
    from igniter_opt.model import load_profile
    return load_profile("v100")


@pytest.mark.parametrize("solver", ["milp", "patterns"])
@pytest.mark.parametrize("policy", ["paper", "joint"])
def test_motivation_fits_one_gpu(solver, policy):
    plan = _exact(load_instance(PAPER / "motivation.json"), solver, batch_policy=policy)
    assert plan.num_gpus == 1


@pytest.mark.parametrize("name,greedy_gpus,best", [("milp_beats_greedy_n12_s3", 6, 5),
                                                    ("milp_beats_greedy_n14_s3", 7, 6)])
def test_milp_proves_fewer_gpus_than_greedy(name, greedy_gpus, best):
    inst = load_instance(SHOWCASE / f"{name}.json")
    greedy = solve(inst, "greedy")
    assert greedy.feasible and greedy.num_gpus == greedy_gpus
    milp = _exact(inst, "milp")
    assert milp.num_gpus == best < greedy.num_gpus
    assert _exact(inst, "patterns").num_gpus == best


def test_time_limited_milp_still_verifies_and_never_beats_its_bound():
    inst = random_instance(32, 3)
    plan = solve(inst, "milp", options=SolveOptions(time_limit=2))
    assert plan.feasible and plan.status in ("optimal", "time_limit")
    assert plan.lower_bound is not None and plan.lower_bound <= plan.num_gpus
    greedy = solve(inst, "greedy")
    if greedy.feasible:
        assert plan.num_gpus <= greedy.num_gpus


@pytest.mark.parametrize("limit", [0.01, 3.0])
def test_milp_time_limit_bounds_the_whole_solve(limit):
    """The limit covers preparation, building and translation too, not only HiGHS (the margin is
    for a loaded machine; this asserts the contract, not speed)."""
    inst = random_instance(64, 0)
    start = time.perf_counter()
    plan = solve(inst, "milp", options=SolveOptions(time_limit=limit))
    assert time.perf_counter() - start <= limit + 60  # a hang guard; the overruns are in bench_limits.py
    assert plan.feasible, plan.message
    assert NOT_EXACT not in plan.message
    assert plan.status in ("optimal", "time_limit")
    assert plan.lower_bound is not None and plan.lower_bound <= plan.num_gpus
    assert plan.gap == round((plan.num_gpus - plan.lower_bound) / plan.num_gpus, 6)
    if limit < 0.1:  # no time to build: the heuristic plan and the combinatorial bound
        assert plan.message in (compact.NOT_BUILT, compact.HEURISTIC_OPTIMAL)


@pytest.mark.parametrize("solver", ["milp", "patterns"])
def test_unservable_workload_is_infeasible_and_named(solver):
    inst = Instance("bad", "v100", (Workload("fast", "alexnet", 15, 300),
                                    Workload("hopeless", "vgg19", 1, 100)))
    plan = solve(inst, solver, options=OPTS)
    assert plan.status == "infeasible" and not plan.feasible
    assert "hopeless" in plan.message


def test_replicas_keep_their_own_gpus():
    inst = Instance("big", "v100", (Workload("heavy", "ssd", 60, 900), Workload("small", "alexnet", 20, 200)))
    milp = _exact(inst, "milp")
    full = [g for g in milp.gpus if g.total_share == 100 and len(g.workloads) == 1]
    assert len(full) >= 1
    assert milp.num_gpus == _exact(inst, "patterns").num_gpus


def test_patterns_refuses_large_instances_unless_forced():
    inst = random_instance(patterns.LIMIT + 1, 0)
    with pytest.raises(InputError, match="--force"):
        solve(inst, "patterns", options=OPTS)


def test_fixed_point_gives_least_shares(v100):
    inst = random_instance(6, 1)
    demands = size_instance(inst, v100)
    members = [0, 1]
    batch = np.array([demands[i].batch for i in members], dtype=float)
    shares = patterns.least_shares(v100, demands, members, batch,
                                   np.array([demands[i].r_lower for i in members]))
    assert shares is not None
    models = [demands[i].model for i in members]
    ok = predict(v100, models, batch, shares)
    assert (ok.latency_ms <= [demands[i].slo_ms / 2 for i in members]).all()
    for d in range(2):  # one unit less for either member breaks someone
        lower = shares.copy()
        lower[d] -= v100.hardware.unit_pct
        p = predict(v100, models, batch, lower)
        slo = np.array([demands[i].slo_ms / 2 for i in members])
        rate = np.array([demands[i].rate_rps for i in members])
        assert lower[d] <= 0 or (p.latency_ms > slo).any() or (p.throughput_rps < rate).any()


def test_dominance_pruning_shrinks_the_model_and_every_dropped_configuration_has_a_kept_dominator(v100):
    inst = random_instance(8, 3)
    demands = size_instance(inst, v100)
    raw = shareable_configs(v100, demands, "joint")
    kept, _ = prune(v100.hardware, raw)
    assert sum(map(len, kept)) < sum(map(len, raw)) / 3
    for before, after in zip(raw, kept):
        assert before.demand == after.demand and len(after) >= 1
        # a dropped configuration leaves one behind that takes no more share, power or L2
        key_after = np.stack([after.units, after.power, after.l2])
        for k in range(len(before)):
            key = np.array([before.units[k], before.power[k], before.l2[k]])[:, None]
            assert (key_after <= key + 1e-12).all(axis=0).any(), (before.demand, k)


@pytest.mark.parametrize("inst", [
    pytest.param(replace(random_instance(8, 3), batch_policy="joint"), id="random-8-3-joint"),
    pytest.param(load_instance(SHOWCASE / "milp_beats_greedy_n12_s3.json"), id="showcase-n12"),
])
def test_dominance_pruning_keeps_an_optimum(inst):
    """The optimum with pruning equals the optimum without it, on instances where the optimum is
    below the greedy's (so neither the warm start nor the bound stop can hide a lost optimum)."""
    def optimum(dominance: bool) -> int:
        features = compactdata.CompactFeatures(dominance=dominance, bound_stop=False, pairs=False,
                                           packing_bound=False, cliques=False)
        plan = solve(inst, "milp", solver_options=compact.CompactOptions(time_limit=120, features=features))
        assert plan.status == "optimal" and plan.feasible, plan.message
        return plan.num_gpus

    pruned, full = optimum(True), optimum(False)
    assert pruned == full
    assert full < solve(inst, "greedy").num_gpus


def test_packing_bound_uses_conflicts():
    assert packing_lower_bound([10, 10, 10], set(), 40) == 1
    assert packing_lower_bound([10, 10, 10], {(0, 1), (0, 2), (1, 2)}, 40) == 3
    assert packing_lower_bound([30, 30, 5, 5], set(), 40) == 2


def test_model_is_built_separately(v100):
    inst = random_instance(6, 2)
    data = compactdata.prepare(inst, v100, size_instance(inst, v100), "paper")
    model = compact.build_model(data)
    assert model.nobjectives() == 1 and len(model.x) > 0
    assert data.lower <= data.gpus


def test_compare_cli_table_and_json():
    runner = CliRunner()
    res = runner.invoke(app, ["compare", str(PAPER / "motivation.json"), "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert [r["solver"] for r in rows] == ["greedy", "ffd", "exact"]  # the default: exact, not the cross-checks
    by = {r["solver"]: r for r in rows}
    assert by["exact"]["num_gpus"] == by["greedy"]["num_gpus"] == 1
    assert by["exact"]["status"] == "optimal" and by["exact"]["feasible"]
    res = runner.invoke(app, ["compare", str(PAPER / "motivation.json"), "--json", "--solvers", "milp,patterns"])
    by = {r["solver"]: r for r in json.loads(res.stdout)}
    assert by["milp"]["num_gpus"] == by["patterns"]["num_gpus"] == 1 and by["milp"]["status"] == "optimal"
    res = runner.invoke(app, ["compare", str(PAPER / "motivation.json"), "--solvers", "milp,greedy"])
    assert res.exit_code == 0 and "optimal" in res.output
    res = runner.invoke(app, ["compare", str(PAPER / "motivation.json"), "--solvers", "nope"])
    assert res.exit_code == 2 and "'nope'" in res.stderr  # bad input: one line, exit 2, inside the app
