"""The reference greedy, FFD, the shared sizing (batch rule, r_lower, replicas) and verify."""

import math

import pytest
from conftest import ROOT

from igniter_opt.data.errors import InputError
from igniter_opt.data.instance import Instance, Workload, load_instance
from igniter_opt.model import predict
from igniter_opt.solvers.sizing import least_share, lower_bound_gpus, max_rate_alone, paper_batch, size_instance
from igniter_opt.solvers.solve import solve
from igniter_opt.solvers.verify import verify

MOTIVATION = ROOT / "instances" / "paper" / "motivation.json"


def two_vgg19(rate: float) -> Instance:
    return Instance("vgg", "v100", (Workload("a", "vgg19", 60, rate), Workload("b", "vgg19", 60, rate)))


def test_paper_batch_rule_by_hand(v100):
    # VGG-19, SLO 60 ms, 200 req/s: ceil(30 * 0.2 * 1e7 / (1e7 + 602112 * 0.2)) = ceil(5.93) = 6
    assert paper_batch(v100.model("vgg19"), v100.hardware, 60, 200) == 6
    assert paper_batch(v100.model("alexnet"), v100.hardware, 15, 500) == 4


def test_least_share_inverts_solo_time(v100):
    coef, hw = v100.model("resnet50"), v100.hardware
    share = least_share(coef, hw, 40, 8)
    assert share % hw.unit_pct == 0

    def alone_latency(r):
        return predict(v100, ["resnet50"], [8], [r]).latency_ms[0]

    # At zero interference and full clock, r_lower meets SLO/2 and one unit less does not.
    assert alone_latency(share) <= 20 < alone_latency(share - hw.unit_pct)


def test_least_share_infinite_when_slo_below_fixed_costs(v100):
    assert least_share(v100.model("vgg19"), v100.hardware, 1.0, 1) == math.inf


def test_motivation_plan_matches_reference(reference):
    plan = solve(load_instance(MOTIVATION), "greedy")
    ref = reference["motivation_example"]["greedy_plan"][0]
    assert plan.num_gpus == 1 and plan.feasible
    got = plan.gpus[0].workloads
    assert [w.model + "_dynamic" for w in got] == ref["models"]
    assert [w.batch for w in got] == ref["batches"]
    assert [w.resource_pct for w in got] == ref["resources"]
    assert [w.slo_ms / 2 for w in got] == ref["slos"]


def test_new_gpu_opened_without_prediction_is_flagged():
    # Two VGG-19 at 500 req/s: the second opens GPU 1 alone at r_lower = 87.5% without prediction;
    # the model says it breaks its SLO there (the power cap drops the clock). Reproduced, and flagged.
    plan = solve(two_vgg19(500), "greedy")
    assert plan.num_gpus == 2
    assert [w.resource_pct for w in plan.gpus[1].workloads] == [87.5]
    assert not plan.feasible and plan.gpus[1].workloads[0].meets_slo is False
    assert "GPU 1: b: predicted latency" in plan.message


def test_replica_split_each_replica_has_its_own_batch(v100):
    demands = size_instance(two_vgg19(700), v100)
    replicas = [d for d in demands if d.replica_of == "a"]
    assert [d.name for d in replicas] == ["a#1", "a#2"]
    assert sum(d.rate_rps for d in replicas) == pytest.approx(700)
    assert replicas[0].full_gpu and not replicas[1].full_gpu
    assert replicas[0].batch == paper_batch(v100.model("vgg19"), v100.hardware, 60, replicas[0].rate_rps)
    assert replicas[0].batch != replicas[1].batch
    r_max = max_rate_alone(v100, "vgg19", 60, 700)
    assert replicas[0].rate_rps == pytest.approx(0.9 * r_max)
    plan = solve(two_vgg19(700), "greedy")
    full = [g for g in plan.gpus if g.workloads[0].name.endswith("#1")]
    assert len(full) == 2 and all(g.workloads[0].resource_pct == 100 for g in full)
    assert plan.feasible


def test_unservable_workload_is_infeasible_and_named():
    inst = Instance("x", "v100", (Workload("tight", "vgg19", 1.0, 100),))
    plan = solve(inst, "greedy")
    assert plan.status == "infeasible" and not plan.feasible
    assert "'tight'" in plan.message


def test_ffd_ignores_interference_and_verify_says_so():
    plan = solve(load_instance(MOTIVATION), "ffd")
    assert plan.num_gpus == 1
    assert [w.resource_pct for w in plan.gpus[0].workloads] == [35.0, 27.5, 10.0]
    assert not plan.feasible
    assert {w.name for w in plan.workloads() if not w.meets_slo} == {"vgg19", "resnet50"}


def test_lower_bound_never_exceeds_greedy(v100):
    inst = load_instance(MOTIVATION)
    assert lower_bound_gpus(size_instance(inst, v100)) <= solve(inst, "greedy").num_gpus


def test_verify_rejects_off_grid_and_refuses_overfull_shares(v100):
    plan = solve(load_instance(MOTIVATION), "greedy")
    plan.gpus[0].workloads[0].resource_pct = 36.0
    checked, problems = verify(plan, v100)
    assert not checked.feasible
    assert any("not a multiple" in p for p in problems)
    plan.gpus[0].workloads[0].resource_pct = 61.0  # the model cannot judge a GPU past 100%: refused
    with pytest.raises(InputError, match=r"gpus\[0\].workloads: shares sum to 101% > 100%"):
        verify(plan, v100)
