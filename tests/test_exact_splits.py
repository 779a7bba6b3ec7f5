"""exact searches the replica splits of workloads that need more than one GPU (issue 23).

`verify` is the judge: a brute force over every split on the grid and every placement (feasible
GPU configurations enumerated with the reference's raise-the-violators fixed point, then the
fewest covering them by an integer program) must equal exact; an independent local search over
plans (checked only by verify) must never beat a proven optimum; and the stress instance where a
verified 24-GPU plan beat the old "proven optimal" 25 must now get at most 24.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict

import highspy
import numpy as np
import pytest

from igniter_opt.bench.families import stress_instance
from igniter_opt.data.instance import Instance, Workload
from igniter_opt.data.plan import GpuPlan, PlacedWorkload, Plan
from igniter_opt.model import load_profile
from igniter_opt.solvers.colocation import least_shares
from igniter_opt.solvers.exact import splits
from igniter_opt.solvers.exact.settings import ExactSettings
from igniter_opt.solvers.exact.solver import ExactOptions
from igniter_opt.solvers.sizing import FIXED_SPLIT, demand_at, max_rate_alone, size_instance, split_workloads
from igniter_opt.solvers.solve import SolveOptions, solve
from igniter_opt.solvers.verify import verify

V100 = load_profile("v100")
MODELS = ("alexnet", "resnet50", "vgg19", "ssd")
SLO = {"alexnet": (12, 30), "resnet50": (30, 80), "vgg19": (50, 120), "ssd": (50, 120)}


def served(plan: Plan) -> dict[str, float]:
    """Rate each workload gets from its pieces (a piece is named <workload>#<k>)."""
    out: dict[str, float] = defaultdict(float)
    for w in plan.workloads():
        out[w.name.split("#")[0]] += w.rate_rps
    return out


def assert_covers(plan: Plan, inst: Instance) -> None:
    got = served(plan)
    for w in inst.workloads:
        assert got[w.name] >= w.rate_rps * (1 - 1e-9), (w.name, got[w.name], w.rate_rps)


def test_the_counterexample_of_issue_23_is_beaten_and_verified():
    inst = stress_instance("replicas", 32, 1, 5, V100)  # = `instances generate --family stress --seed 5`'s n32-01
    assert inst.name == "stress-replicas-n32-01"
    plan = solve(inst, "exact", options=SolveOptions(time_limit=60))
    assert plan.feasible, plan.message
    assert plan.num_gpus <= 24  # the old "proven optimal" was 25; a verified 24-GPU plan exists
    assert plan.space == splits.space_of(size_instance(inst, V100)) and "every split" in plan.space
    assert_covers(plan, inst)
    rechecked, problems = verify(plan, V100)
    assert not problems and rechecked.feasible
    greedy = solve(inst, "greedy")
    assert greedy.space == FIXED_SPLIT and "sizing's split" in greedy.message


def test_unsplit_instances_keep_no_space_and_the_same_answer():
    inst = Instance("light", "v100", (Workload("a", "alexnet", 20, 300), Workload("r", "resnet50", 50, 200)))
    plan = solve(inst, "exact", options=SolveOptions(time_limit=30))
    assert plan.space == "" and "split" not in plan.message and "space" not in plan.to_dict()
    milp = solve(inst, "milp", options=SolveOptions(time_limit=30))
    assert plan.status == "optimal" and plan.num_gpus == milp.num_gpus


def test_fixed_split_solvers_say_so():
    inst = Instance("big", "v100", (Workload("heavy", "ssd", 60, 900), Workload("small", "alexnet", 20, 200)))
    for solver in ("milp", "patterns", "greedy"):
        plan = solve(inst, solver, options=SolveOptions(time_limit=30))
        assert plan.space == FIXED_SPLIT
        assert "for the sizing's split of heavy" in plan.message, plan.message
        assert Plan.from_dict(plan.to_dict()).space == FIXED_SPLIT


# -- brute force over splits and placements --------------------------------------------------

def tiny_heavy(seed: int) -> Instance:
    """2-4 workloads, 1-2 of them above one GPU (1.1-2.2 of the largest single-GPU rate)."""
    rng = np.random.default_rng(23_000 + seed)
    n = int(rng.integers(2, 5))
    heavy = int(rng.integers(1, min(2, n) + 1))
    workloads = []
    for i in range(n):
        model = str(rng.choice(MODELS))
        slo = float(np.round(rng.uniform(*SLO[model])))
        top = max_rate_alone(V100, model, slo, 1e5)
        rate = top * rng.uniform(1.1, 2.2) if i < heavy else top * rng.uniform(0.05, 0.5)
        workloads.append(Workload(f"{model}-{i}", model, slo, float(np.round(rate, 1))))
    return Instance(f"tiny-heavy-{seed}", "v100", tuple(workloads))


def _items(inst: Instance, grid: int) -> tuple[list, list[str], list[float], list[int]]:
    """Items of the brute force: each unsplit workload, and each rate level of a split workload
    (paper batch of that rate) up to ceil(R / level) times (more copies of one level are in no
    minimal cover); with the row each covers, how much of it, and its most copies."""
    demands = size_instance(inst, V100)
    names = split_workloads(demands)
    items, row, weight, cap = [], [], [], []
    for d in demands:
        if d.replica_of is None:
            items.append(d)
            row.append(d.name)
            weight.append(1.0)
            cap.append(1)
    for w in (w for w in inst.workloads if w.name in names):
        own = [d.rate_rps for d in demands if d.replica_of == w.name]
        r_max = max_rate_alone(V100, w.model, w.slo_ms, w.rate_rps)
        for level in splits.levels(w.rate_rps, r_max, own, grid):
            p = demand_at(V100, w, f"{w.name}@{level}", level)
            if least_shares(V100, [p], [0], np.array([p.batch], float), np.array([min(p.r_lower, 100.0)])) is None:
                continue
            items.append(p)
            row.append(w.name)
            weight.append(level / w.rate_rps)
            cap.append(math.ceil(w.rate_rps / level - 1e-9))
    return items, row, weight, cap


def _feasible_gpus(items: list, cap: list[int]) -> list[tuple[int, ...]]:
    """Every multiset of items whose reference fixed point fits one GPU (downward closed: only
    fitting sets are extended)."""
    configs: list[tuple[int, ...]] = []

    def fits(members: tuple[int, ...]) -> bool:
        start = np.array([min(items[i].r_lower, 100.0) for i in members])
        batch = np.array([items[i].batch for i in members], float)
        return least_shares(V100, items, list(members), batch, start) is not None

    def grow(members: tuple[int, ...]) -> None:
        for i in range(members[-1] if members else 0, len(items)):
            if members.count(i) < cap[i] and fits((*members, i)):
                configs.append((*members, i))
                grow((*members, i))

    grow(())
    return configs


def brute_force(inst: Instance, grid: int) -> int:
    """Fewest GPUs over every split on the grid (splits.levels) and every placement: every
    feasible GPU enumerated, then an integer program picks the fewest covering every workload
    once and every split workload's rate."""
    items, row, weight, cap = _items(inst, grid)
    configs = _feasible_gpus(items, cap)
    rows = sorted(set(row))
    h = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)  # HiGHS's scheduler is global: the solvers' later models use 1 thread
    for _ in rows:
        h.addRow(1.0 - 1e-9, highspy.kHighsInf, 0, np.array([], dtype=np.int32), np.array([]))
    for c in configs:
        cover: dict[int, float] = defaultdict(float)
        for i in c:
            cover[rows.index(row[i])] += weight[i]
        idx = np.array(sorted(cover), dtype=np.int32)
        h.addCol(1.0, 0.0, highspy.kHighsInf, len(idx), idx, np.array([cover[k] for k in idx]))
    n = len(configs)
    h.changeColsIntegrality(n, np.arange(n, dtype=np.int32), np.full(n, highspy.HighsVarType.kInteger))
    h.setOptionValue("mip_rel_gap", 0.0)
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return round(h.getInfo().objective_function_value)


# A grid of r_max/4 (the brute force's configurations stay few); exact uses the same.
COARSE = 4
COARSE_GRID = ExactOptions(time_limit=60, settings=ExactSettings(split_grid=COARSE))


@pytest.mark.parametrize("seed", range(30))
def test_exact_equals_brute_force_over_splits(seed):
    inst = tiny_heavy(seed)
    assert split_workloads(size_instance(inst, V100))  # the instance has a workload above one GPU
    plan = solve(inst, "exact", solver_options=COARSE_GRID)
    assert plan.feasible, plan.message
    assert plan.status == "optimal", plan.message
    assert plan.space == "every split on the grid r_max/4"
    assert_covers(plan, inst)
    assert plan.num_gpus == plan.lower_bound == brute_force(inst, COARSE)
    assert plan.num_gpus <= solve(inst, "milp", options=SolveOptions(time_limit=60)).num_gpus


# -- an independent local search over plans, judged by verify only ---------------------------

def _gpu(pieces: list[tuple[Workload, float]], k: list[int]) -> GpuPlan | None:
    """A GPU of (workload, rate) pieces at the reference fixed point's shares, or None."""
    ds = [demand_at(V100, w, f"{w.name}#{k[0] + j}", rate) for j, (w, rate) in enumerate(pieces)]
    k[0] += len(pieces)
    shares = least_shares(V100, ds, list(range(len(ds))), np.array([d.batch for d in ds], float),
                          np.array([min(d.r_lower, 100.0) for d in ds]))
    if shares is None:
        return None
    return GpuPlan([PlacedWorkload(d.name, d.model, d.batch, float(s), d.rate_rps, d.slo_ms)
                    for d, s in zip(ds, shares)])


def local_search(inst: Instance, rng: np.random.Generator, steps: int, grid: int) -> int:
    """Fewest GPUs of a verified plan reached by random moves on the grid's rate levels: move a
    piece to another GPU, or split a piece into two levels summing to at least its rate. Starts
    from every piece of the sizing's split alone; a state is kept only if `verify` passes it."""
    demands = size_instance(inst, V100)
    by_name = {w.name: w for w in inst.workloads}
    lv = {}
    for w in inst.workloads:
        own = [d.rate_rps for d in demands if d.replica_of == w.name]
        if own:
            r_max = max_rate_alone(V100, w.model, w.slo_ms, w.rate_rps)
            lv[w.name] = np.array(splits.levels(w.rate_rps, r_max, own, grid))
    state = [[(by_name[d.replica_of or d.name], d.rate_rps)] for d in demands]

    def plan_of(gpus):
        k = [1]
        built = [_gpu(g, k) for g in gpus if g]
        if any(g is None for g in built):
            return None
        plan = Plan(inst.name, "local", "v100", "heuristic", gpus=built)  # type: ignore[arg-type]
        checked, problems = verify(plan, V100)
        return checked if not problems else None

    best = len(state)
    for _ in range(steps):
        new = [list(g) for g in state]
        j = int(rng.integers(len(new)))
        if not new[j]:
            continue
        i = int(rng.integers(len(new[j])))
        w, rate = new[j][i]
        if w.name in lv and rng.random() < 0.3:  # split into two levels covering its rate
            small = lv[w.name][lv[w.name] < rate]
            if small.size:
                a = float(rng.choice(small))
                rest = lv[w.name][lv[w.name] >= rate - a - 1e-9]
                if rest.size:
                    new[j][i] = (w, a)
                    new[int(rng.integers(len(new)))].append((w, float(rest.min())))
        else:
            piece = new[j].pop(i)
            new[int(rng.integers(len(new)))].append(piece)
        new = [g for g in new if g]
        if len(new) <= len(state) and plan_of(new) is not None:
            state = new
            best = min(best, len(state))
    return best


@pytest.mark.parametrize("seed", range(4))
def test_local_search_never_beats_a_proven_optimum(seed):
    inst = tiny_heavy(100 + seed)
    plan = solve(inst, "exact", solver_options=COARSE_GRID)
    assert plan.status == "optimal" and plan.feasible
    found = local_search(inst, np.random.default_rng(seed), 400, COARSE)
    assert found >= plan.num_gpus


def test_the_search_keeps_the_improvement_reserve_only_when_the_phase_can_run(monkeypatch):
    """improve.py leaves plans with split workloads alone, so their solves give the search the
    whole limit; without splits the search ends reserve() before it (the phase's seconds)."""
    from igniter_opt.solvers.exact import solver as exact_solver
    from igniter_opt.solvers.exact.improve import ImproveSettings, reserve

    seen: list[float] = []
    original = exact_solver._prepare

    def prepare(profile, demands, policy, aggregate, deadline, *args, **kwargs):
        seen.append(deadline - time.perf_counter())
        return original(profile, demands, policy, aggregate, deadline, *args, **kwargs)
    monkeypatch.setattr(exact_solver, "_prepare", prepare)
    limit = 100.0  # a reserve of 5 s
    split = Instance("big", "v100", (Workload("heavy", "ssd", 60, 900), Workload("small", "alexnet", 20, 200)))
    light = Instance("light", "v100", (Workload("a", "alexnet", 20, 300), Workload("r", "resnet50", 50, 200)))
    for inst, kept in ((split, 0.0), (light, reserve(ImproveSettings(), limit))):
        seen.clear()
        solve(inst, "exact", options=SolveOptions(time_limit=limit))
        assert seen and limit - kept - 3.0 < seen[0] <= limit - kept, (inst.name, seen)
