"""Mixed GPU fleets (issue 21, docs/fleets.md): the format, verify per type, the objective, the
solvers against a brute force and each other, availability, infeasibility reasons.

The second GPU type is SYNTHETIC (examples/fleets/synthetic-slow.json: the V100 profile with
k1, k2, k3, k5 x 1.6, clock x 0.8, power cap x 0.7, made by examples/fleets/make_synthetic_profile.py);
it is not a measured GPU.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import replace

import numpy as np
import pytest
from conftest import ROOT
from test_mistakes import refused, run, write

from igniter_opt.bench.fleets import SYNTHETIC_SLOW, fleet_instance
from igniter_opt.data.errors import InputError
from igniter_opt.data.instance import GpuType, Instance, Workload, load_instance
from igniter_opt.data.plan import Plan, load_plan
from igniter_opt.model import load_profile
from igniter_opt.solvers.base import SolveOptions
from igniter_opt.solvers.colocation import least_shares
from igniter_opt.solvers.fleet import Fleet, FleetType, instance_fleet, integer_costs, size_fleet
from igniter_opt.solvers.solve import solve
from igniter_opt.solvers.verify import verify

EXAMPLE = ROOT / "examples" / "fleets" / "mixed.json"
MOTIVATION = ROOT / "instances" / "paper" / "motivation.json"
OPTIONS = SolveOptions(time_limit=60)


def fleet_dict(*types, workloads=None) -> dict:
    return {"name": "f", "fleet": list(types), "workloads": workloads or [
        {"name": "a", "model": "alexnet", "slo_ms": 15, "rate_rps": 500},
        {"name": "r", "model": "resnet50", "slo_ms": 40, "rate_rps": 400}]}


V100 = {"type": "v100", "profile": "v100", "price_per_hour": 2.48}
SLOW = {"type": "slow", "profile": SYNTHETIC_SLOW, "price_per_hour": 1.24}


# -- the format ----------------------------------------------------------------------------------

def test_example_loads_with_relative_profile_and_round_trips(tmp_path):
    inst = load_instance(EXAMPLE)
    assert [t.name for t in inst.fleet or ()] == ["v100", "slow"]
    assert inst.fleet[1].profile.endswith("synthetic-slow.json") and inst.fleet[1].count == 4
    assert inst.mixed
    inst.save(tmp_path / "i.json")
    assert load_instance(tmp_path / "i.json") == inst


def test_single_profile_format_is_unchanged():
    inst = load_instance(MOTIVATION)
    assert inst.fleet is None and not inst.mixed and "fleet" not in inst.to_dict()
    plan = solve(inst, "exact")
    assert all(g.gpu_type is None for g in plan.gpus) and plan.cost is None
    assert "gpu_type" not in json.dumps(plan.to_dict()) and "cost" not in plan.to_dict()


def test_fleet_of_one_plain_type_is_the_single_profile_problem():
    inst = load_instance(MOTIVATION)
    one = replace(inst, fleet=(GpuType("v100", "v100"),))
    assert not one.mixed
    for solver in ("greedy", "exact"):
        a, b = solve(inst, solver), solve(one, solver)
        assert a.num_gpus == b.num_gpus and a.status == b.status
        assert {g.gpu_type for g in b.gpus} == {"v100"} and b.fleet == [{"type": "v100", "profile": "v100"}]


@pytest.mark.parametrize("types, expect", [
    ([{"type": "x", "profile": "nosuch"}], "field fleet[0].profile: profile 'nosuch': no such bundled"),
    ([{**V100, "price_per_hour": -1}], "field fleet[0].price_per_hour: must be >= 0, got -1"),
    ([{**V100, "count": -2}], "field fleet[0].count: must be >= 0, got -2"),
    ([V100, {**SLOW, "type": "v100"}], "field fleet[1].type: GPU type 'v100' is named twice"),
    ([], "field fleet: must have at least 1 item(s)"),
    ([V100, {"type": "slow", "profile": SYNTHETIC_SLOW}], "field fleet[1].price_per_hour: missing"),
    ([{**V100, "colour": "red"}], "field fleet[0].colour: unknown field"),
])
def test_bad_fleets_are_one_line_exit_2(tmp_path, types, expect):
    path = write(tmp_path / "bad.json", fleet_dict(*types))
    line = refused("solve", path, expect=expect)
    assert str(path) in line


def test_a_profile_missing_a_model_is_one_line_exit_2(tmp_path):
    prof = load_profile("v100").to_dict()
    del prof["models"]["ssd"]
    prof["name"] = "no-ssd"
    write(tmp_path / "no-ssd.json", prof)
    wl = [{"name": "s", "model": "ssd", "slo_ms": 80, "rate_rps": 100}]
    other = {"type": "t", "profile": "no-ssd.json", "price_per_hour": 1.0}
    path = write(tmp_path / "bad.json", fleet_dict(V100, other, workloads=wl))
    refused("solve", path, expect="field fleet[1].profile: profile 'no-ssd' of type 't' has no model 'ssd' "
                                  "(used by workloads[0])")


def test_milp_refuses_a_mixed_fleet_naming_the_reason():
    refused("solve", EXAMPLE, "--solver", "milp", expect="mixed GPU fleets are not supported: its compact model")


# -- plans and verify ----------------------------------------------------------------------------

def test_plan_json_records_types_cost_and_fleet_and_old_plans_load(tmp_path):
    plan = solve(load_instance(EXAMPLE), "exact", options=OPTIONS)
    plan.save(tmp_path / "p.json")
    back = load_plan(tmp_path / "p.json")
    assert back.gpu_types() == plan.gpu_types() and back.cost == plan.cost and back.fleet == plan.fleet
    old = solve(load_instance(MOTIVATION), "greedy").to_dict()
    assert Plan.from_dict(old).gpus[0].gpu_type is None
    res = run("verify", tmp_path / "p.json", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["cost"] == plan.cost


def test_verify_predicts_each_gpu_with_its_types_profile():
    inst = load_instance(EXAMPLE)
    fleet = instance_fleet(inst)
    plan = solve(inst, "exact", options=OPTIONS)
    assert plan.feasible
    slow_gpus = [j for j, g in enumerate(plan.gpus) if g.gpu_type == "slow"]
    fast_gpus = [j for j, g in enumerate(plan.gpus) if g.gpu_type == "v100"]
    assert slow_gpus and fast_gpus
    # the same GPU judged by the other type's profile: the V100 GPU is too tight for the slow type
    swapped = replace(plan, gpus=[replace(g, gpu_type="slow") if j in fast_gpus else g
                                  for j, g in enumerate(plan.gpus)])
    _, problems = verify(swapped, fleet)
    assert problems and all(p.startswith(tuple(f"GPU {j}:" for j in fast_gpus)) or "used" in p for p in problems)
    # and verify(plan, profile) still works for a one-type plan
    single = solve(load_instance(MOTIVATION), "greedy")
    assert verify(single, load_profile("v100"))[0].feasible


def test_verify_counts_availability_and_refuses_unknown_types():
    inst = load_instance(EXAMPLE)
    fleet = instance_fleet(inst)
    plan = solve(inst, "exact", options=OPTIONS)
    tight = Fleet(tuple(replace(t, count=0) if t.name == "v100" else t for t in fleet.types))
    _, problems = verify(plan, tight)
    assert any(p.startswith("type v100:") and "0 available" in p for p in problems)
    with pytest.raises(InputError, match=r"gpus\[0\].gpu_type: unknown GPU type 'a100'"):
        verify(replace(plan, gpus=[replace(plan.gpus[0], gpu_type="a100")]), fleet)


# -- objective and infeasibility -----------------------------------------------------------------

def test_integer_costs_read_back_as_prices():
    v100, slow = load_profile("v100"), load_profile(SYNTHETIC_SLOW)
    costs = integer_costs(Fleet((FleetType("a", v100, None, 2.48), FleetType("b", slow, None, 1.24))))
    assert costs.per_gpu == (2, 1) and math.isclose(costs.step, 1.24)
    assert integer_costs(Fleet((FleetType("a", v100), FleetType("b", slow)))).per_gpu == (1, 1)


def test_without_prices_the_objective_is_the_gpu_count():
    inst = fleet_instance(8, 3, priced=False)
    plan = solve(inst, "exact", options=OPTIONS)
    pat = solve(inst, "patterns", options=OPTIONS)
    assert plan.cost is None and plan.status == "optimal" and plan.lower_bound == plan.num_gpus == pat.num_gpus


def test_a_workload_no_type_serves_is_infeasible_naming_it():
    inst = fleet_instance(3, 0)
    bad = replace(inst, workloads=(*inst.workloads, Workload("tiny", "vgg19", 2.0, 10.0)))
    plan = solve(bad, "exact", options=OPTIONS)
    assert plan.status == "infeasible" and "'tiny'" in plan.message and "no GPU type of the fleet" in plan.message


def test_a_fleet_too_small_is_infeasible_naming_the_shortfall():
    inst = fleet_instance(12, 0, counts=(1, 1))
    for solver in ("greedy", "exact"):
        plan = solve(inst, solver, options=OPTIONS)
        assert plan.status == "infeasible" and "short by" in plan.message, plan.message


def test_binding_availability_is_respected_and_still_proven():
    free = fleet_instance(10, 5)
    best = solve(free, "exact", options=OPTIONS)
    used = {t: best.gpu_types().count(t) for t in ("v100", "slow")}
    cheap = max(used, key=lambda t: used[t])
    limit = used[cheap] - 1
    inst = replace(free, fleet=tuple(replace(t, count=limit) if t.name == cheap else t for t in free.fleet or ()))
    plan = solve(inst, "exact", options=OPTIONS)
    assert plan.status == "optimal" and plan.feasible and plan.gpu_types().count(cheap) <= limit
    assert plan.cost is not None and best.cost is not None and plan.cost >= best.cost
    assert solve(inst, "patterns", options=OPTIONS).cost == plan.cost


def test_a_binding_cap_is_proven_when_the_pricing_cannot_finish():
    """The state search left with no resolution at all (every bin at its floor at once, the set
    search handing over at once): each such exhaustive pricing ends unfinished. Its unexplored
    bound still proves a node bound, so the search goes on and proves the capped optimum (equal to
    patterns); it used to stop at the first one, status time_limit."""
    from igniter_opt.solvers.exact.settings import DEFAULT
    from igniter_opt.solvers.exact.solver import ExactOptions

    coarse = replace(DEFAULT, set_first=1, leaf_c=1e-9, leaf_p=1e-9, floor=1e-12)
    free = fleet_instance(10, 5)
    used = {t: solve(free, "exact", options=OPTIONS).gpu_types().count(t) for t in ("v100", "slow")}
    cheap = max(used, key=lambda t: used[t])
    inst = replace(free, fleet=tuple(replace(t, count=used[cheap] - 1) if t.name == cheap else t
                                     for t in free.fleet or ()))
    plan = solve(inst, "exact", solver_options=ExactOptions(time_limit=60, threads=1, settings=coarse))
    assert plan.status == "optimal" and plan.feasible and plan.gpu_types().count(cheap) <= used[cheap] - 1
    assert "bounds from unfinished pricings" in plan.message
    assert plan.cost == solve(inst, "patterns", options=OPTIONS).cost


# -- exact against a brute force and patterns ----------------------------------------------------

def _partitions(items: list[int]):
    if not items:
        yield []
        return
    head, rest = items[0], items[1:]
    for part in _partitions(rest):
        for i in range(len(part)):
            yield [*part[:i], [head] + part[i], *part[i + 1:]]
        yield [[head], *part]


def brute_force_cost(inst: Instance) -> float | None:
    """Least price over every partition of the rows and every type per block (None: infeasible):
    a block fits a type when the reference fixed point (colocation.least_shares) fits it; a block
    on a type also pays for the replicas its rows need there."""
    fleet = instance_fleet(inst)
    fd = size_fleet(inst, fleet)
    prices = [float(t.price or 0.0) for t in fleet.types]
    counts = [math.inf if t.count is None else t.count for t in fleet.types]
    fits: dict[tuple[int, tuple[int, ...]], bool] = {}

    def fit(k: int, block: tuple[int, ...]) -> bool:
        if (k, block) not in fits:
            ds = fd.per_type[k]
            ok = all(fd.servable[k, r] for r in block)
            if ok:
                batch = np.array([ds[r].batch for r in block], dtype=float)
                start = np.array([ds[r].r_lower for r in block])
                ok = least_shares(fleet.types[k].profile, ds, list(block), batch, start) is not None
            fits[(k, block)] = ok
        return fits[(k, block)]

    best = math.inf
    for part in _partitions(list(range(fd.rows))):
        blocks = [tuple(sorted(b)) for b in part]
        for types in itertools.product(range(len(fleet.types)), repeat=len(blocks)):
            gpus = [1 + sum(fd.extra(k, r) for r in b) for k, b in zip(types, blocks)]  # with replicas
            if any(sum(n for n, t in zip(gpus, types) if t == k) > counts[k] for k in range(len(counts))):
                continue
            cost = sum(prices[k] * n for k, n in zip(types, gpus))
            if cost < best - 1e-9 and all(fit(k, b) for k, b in zip(types, blocks)):
                best = cost
    if not math.isfinite(best):
        return None
    return round(best, 6)


def test_exact_equals_brute_force_on_20_random_mixed_instances():
    rng = np.random.default_rng(21)
    for case in range(20):
        n, types = int(rng.integers(3, 7)), int(rng.integers(2, 4))
        inst = fleet_instance(n, 100 + case, types=types)
        expect = brute_force_cost(inst)
        plan = solve(inst, "exact", options=OPTIONS)
        if expect is None:
            assert plan.status == "infeasible", (inst.name, plan.message)
            continue
        assert plan.status == "optimal" and plan.feasible, (inst.name, plan.message)
        assert math.isclose(plan.cost or 0.0, expect, abs_tol=1e-6), (inst.name, plan.cost, expect)
        assert math.isclose(plan.cost_bound or 0.0, expect, abs_tol=1e-6)


@pytest.mark.slow
def test_exact_equals_patterns_on_20_instances_of_8_to_12_workloads():
    rng = np.random.default_rng(12)
    for case in range(20):
        n, types = int(rng.integers(8, 13)), int(rng.integers(2, 4))
        inst = fleet_instance(n, 200 + case, types=types)
        ex, pat = solve(inst, "exact", options=OPTIONS), solve(inst, "patterns", options=OPTIONS)
        assert ex.status == pat.status == "optimal" and ex.feasible and pat.feasible, (inst.name, ex.message)
        assert math.isclose(ex.cost or 0.0, pat.cost or 0.0, abs_tol=1e-6), (inst.name, ex.cost, pat.cost)


def test_exact_is_never_costlier_than_the_greedy_or_a_single_type():
    inst = fleet_instance(20, 7)
    ex = solve(inst, "exact", options=OPTIONS)
    gr = solve(inst, "greedy", options=OPTIONS)
    assert ex.status == "optimal" and ex.cost is not None and gr.cost is not None and ex.cost <= gr.cost + 1e-9
    for t in inst.fleet or ():
        one = solve(replace(inst, fleet=(t,)), "exact", options=OPTIONS)
        if one.status == "optimal":
            assert ex.cost <= (one.cost or 0.0) + 1e-9


# -- deploy: a GPU of type T on a device of type T -------------------------------------------------

def typed_plan(*types: str) -> Plan:
    from igniter_opt.data.plan import GpuPlan, PlacedWorkload

    return Plan("typed", "test", "v100", "feasible",
                [GpuPlan([PlacedWorkload(f"w{j}", "alexnet", 2, 50.0, 5.0, 200.0)], t) for j, t in enumerate(types)])


def test_gpu_map_puts_each_type_on_its_devices_and_refuses_a_missing_type():
    from igniter_opt.deploy.gputypes import device_indices, parse_gpu_map

    gmap = parse_gpu_map(["v100=2,3", "slow=0"])
    assert gmap == {"v100": [2, 3], "slow": [0]}
    devices, warnings = device_indices(typed_plan("v100", "slow", "v100", "slow"), gmap, 4)
    assert devices == [2, 0, 3, 0] and warnings and "type slow" in warnings[0]
    with pytest.raises(InputError, match="type 'a100' and the map names no device of that type"):
        device_indices(typed_plan("v100", "a100"), gmap, 4)
    with pytest.raises(InputError, match="device 2 does not exist on this host"):
        device_indices(typed_plan("v100"), gmap, 2)
    for bad in ("v100", "v100=", "v100=x", "=1", "v100=-1"):
        with pytest.raises(InputError, match="expected TYPE=INDEX"):
            parse_gpu_map([bad])
    assert device_indices(typed_plan(None, None, None), {}, 2)[0] == [0, 1, 0]  # untyped: j mod n as before


def test_ray_bundles_ask_for_the_accelerator_type_and_a_missing_type_is_refused():
    pytest.importorskip("ray")
    from igniter_opt.deploy.backends.ray import bundles_for, capacity_problem

    bundles = bundles_for(typed_plan("fast", "slow"), 0.5)
    assert bundles == [{"GPU": 1.0, "CPU": 0.5, "accelerator_type:fast": 0.001},
                       {"GPU": 1.0, "CPU": 0.5, "accelerator_type:slow": 0.001}]
    nodes = [{"GPU": 1.0, "CPU": 2.0, "accelerator_type:fast": 1.0}, {"GPU": 1.0, "CPU": 2.0}]
    problem = capacity_problem(bundles, nodes)
    assert problem is not None and "type 'slow'" in problem and "types declared: fast" in problem
    nodes[1]["accelerator_type:slow"] = 1.0
    assert capacity_problem(bundles, nodes) is None
    assert capacity_problem(bundles_for(typed_plan("fast", "fast"), 0.5), nodes) is not None  # one fast GPU


def test_a_workload_split_on_one_type_and_whole_on_another_is_a_choice():
    heavy = (Workload("big-vgg", "vgg19", 60.0, 450.0), Workload("big-resnet", "resnet50", 50.0, 1100.0))
    inst = replace(fleet_instance(3, 9), workloads=fleet_instance(3, 9).workloads + heavy)
    fd = size_fleet(inst, instance_fleet(inst))
    assert fd.extra(1, 3) >= 1 and fd.extra(0, 3) == 0  # replicas on the slow type only
    plan = solve(inst, "exact", options=OPTIONS)
    assert plan.status == "optimal" and plan.feasible
    assert math.isclose(plan.cost or 0.0, brute_force_cost(inst) or -1.0, abs_tol=1e-6)
    for t in inst.fleet or ():
        one = solve(replace(inst, fleet=(t,)), "exact", options=OPTIONS)
        assert one.status == "optimal" and (plan.cost or 0.0) <= (one.cost or 0.0) + 1e-9


@pytest.mark.parametrize("seed", [202, 206, 210])
def test_a_time_limited_solve_reports_a_positive_valid_bound(seed):
    """Cut off before its search ends, exact still reports the bound it proved (the volume bound
    at least), never 0, and it is at most the least cost that patterns proves; one type alone in
    the fleet path too."""
    inst = fleet_instance(12, seed, types=2)
    cut = SolveOptions(time_limit=1e-3)
    for fleet in (inst.fleet, (inst.fleet or ())[1:]):
        one = replace(inst, fleet=fleet)
        best = solve(one, "patterns", options=OPTIONS)
        assert best.status == "optimal" and best.cost is not None
        ex = solve(one, "exact", options=cut)
        assert ex.status == "time_limit" and ex.cost_bound is not None, ex.message
        assert 0 < ex.cost_bound <= best.cost + 1e-9, (fleet, ex.cost_bound, best.cost)
        assert ex.cost is None or ex.cost >= best.cost - 1e-9


def test_from_30_workloads_every_unlimited_types_single_type_exact_seeds_the_fleet():
    """At 30 workloads the single-type exact plans seed the fleet's incumbent: the fleet's plan is
    never costlier than either type's exact plan alone, and a one-type fleet reports the single-type
    search's bound (the whole problem), so it is proven like the single-type solver."""
    inst = fleet_instance(30, 5000)
    ex = solve(inst, "exact", options=OPTIONS)
    assert ex.feasible and ex.cost is not None and ex.cost_bound is not None and 0 < ex.cost_bound <= ex.cost
    for t in inst.fleet or ():
        one = solve(replace(inst, fleet=(t,)), "exact", options=OPTIONS)
        assert one.feasible and one.cost is not None and ex.cost <= one.cost + 1e-9, (t.name, ex.cost, one.cost)
        assert one.cost_bound is not None and 0 < one.cost_bound <= one.cost + 1e-9
