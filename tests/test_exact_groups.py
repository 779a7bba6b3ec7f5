"""Groups of like mix seed the search at datacenter sizes (groups.py; issue 24, item 3).

Here at small scale (group_rows lowered): the partition deals every workload to one group with its
replicas, the groups' plans map onto the whole as a covering incumbent, and Ctrl-C inside a
group's search answers with a plan of the whole instance, not of the group.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import replace

import pytest

from igniter_opt.bench.generate import mixed_instance
from igniter_opt.data.errors import SolveInterrupted
from igniter_opt.model import load_profile
from igniter_opt.solvers.base import SolveOptions
from igniter_opt.solvers.exact import solver as exact_solver
from igniter_opt.solvers.exact.bnp import BranchAndPrice
from igniter_opt.solvers.exact.groups import partition, solve_groups
from igniter_opt.solvers.exact.settings import DEFAULT
from igniter_opt.solvers.exact.solver import ExactOptions
from igniter_opt.solvers.sizing import size_instance
from igniter_opt.solvers.solve import solve
from igniter_opt.solvers.verify import verify

V100 = load_profile("v100")
GROUPED = replace(DEFAULT, group_rows=30, group_size=10)


def _with_big_ones(n: int, seed: int):
    """mixed_instance with its first two workloads at rates only several GPUs serve (split)."""
    inst = mixed_instance(n, seed)
    big = tuple(replace(w, name=f"ssd-big-{i}", model="ssd", slo_ms=100.0, rate_rps=1500.0) if i < 2 else w
                for i, w in enumerate(inst.workloads))
    return replace(inst, workloads=big)


def test_partition_deals_workloads_with_their_replicas_into_groups_of_like_mix():
    demands = size_instance(_with_big_ones(43, 5), V100)
    groups = partition(demands, 10)
    assert len(groups) == 4
    flat = [i for g in groups for i in g]
    assert sorted(flat) == list(range(len(demands)))  # each demand in exactly one group
    owner = [d.replica_of or d.name for d in demands]
    assert any(Counter(owner)[n] > 1 for n in owner)  # the instance has replicas
    group_of: dict[str, int] = {}
    for j, g in enumerate(groups):  # a workload's replicas all in one group
        for i in g:
            assert group_of.setdefault(owner[i], j) == j
    workloads = [len({owner[i] for i in g}) for g in groups]
    assert max(workloads) - min(workloads) <= 1  # dealt in turn: sizes within one workload
    for model in {d.model for d in demands}:  # and each model spread alike
        counts = [len({owner[i] for i in g if demands[i].model == model}) for g in groups]
        assert max(counts) - min(counts) <= 1, (model, counts)


def test_solve_groups_shares_the_time_and_gives_up_when_a_group_finds_nothing():
    demands = size_instance(mixed_instance(30, 2), V100)
    groups = partition(demands, 10)
    seen: list[float] = []
    until = time.perf_counter() + 3.0

    def search(group, deadline):
        seen.append(deadline - time.perf_counter())
        return len(group)

    assert solve_groups(demands, groups, until, search) == [len(g) for g in groups]
    assert seen[0] == pytest.approx(3.0 / len(groups), abs=0.05)  # an even share each
    answers = iter([1, None, 1])  # the second group finds nothing: no plan of the whole
    assert solve_groups(demands, groups, until, lambda _g, _d: next(answers)) == []


def test_the_groups_plans_seed_a_covering_incumbent_of_the_whole(monkeypatch):
    inst = _with_big_ones(40, 7)
    seeded: list[tuple[int, int]] = []
    original = exact_solver._seed_groups

    def spy(bnp, demands, cat, found):
        before = bnp.upper
        original(bnp, demands, cat, found)
        seeded.append((len(found), before, bnp.upper))

    monkeypatch.setattr(exact_solver, "_seed_groups", spy)
    plan = solve(inst, "exact", options=SolveOptions(time_limit=30),
                 solver_options=ExactOptions(time_limit=30, settings=GROUPED))
    assert len(seeded) == 1 and seeded[0][0] == 4  # four groups solved and mapped
    assert seeded[0][2] <= seeded[0][1]
    assert plan.feasible and verify(plan, V100)[1] == []
    greedy = solve(inst, "greedy")
    assert plan.num_gpus <= greedy.num_gpus
    served = Counter()
    for w in plan.workloads():
        served[w.name.split("#")[0]] += w.rate_rps
    assert all(served[w.name] >= w.rate_rps * (1 - 1e-9) for w in inst.workloads)


def test_ctrl_c_in_a_groups_search_answers_with_a_plan_of_the_whole(monkeypatch):
    inst = mixed_instance(40, 4)
    run = BranchAndPrice.run

    def interrupted(self, branching):
        if len(self.master.demand) <= 15:  # a group's search (the whole has 40 rows)
            raise KeyboardInterrupt
        return run(self, branching)

    monkeypatch.setattr(BranchAndPrice, "run", interrupted)
    with pytest.raises(SolveInterrupted) as caught:
        solve(inst, "exact", options=SolveOptions(time_limit=30),
              solver_options=ExactOptions(time_limit=30, settings=GROUPED))
    plan = caught.value.plan
    assert plan.status == "interrupted" and plan.feasible
    assert {w.name.split("#")[0] for w in plan.workloads()} == {w.name for w in inst.workloads}  # pieces: name#k


def test_below_group_rows_no_group_is_solved(monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(exact_solver, "solve_groups", lambda *_: calls.append(1) or [])
    inst = mixed_instance(20, 1)
    solve(inst, "exact", options=SolveOptions(time_limit=10), solver_options=ExactOptions(time_limit=10))
    assert calls == []
    solve(inst, "exact", options=SolveOptions(time_limit=10),
          solver_options=ExactOptions(time_limit=10, settings=replace(GROUPED, group_rows=10)))
    assert calls == [1]


def test_one_group_is_not_solved_again_as_a_group(monkeypatch):
    """Few workloads with many replicas reach group_rows demands in a single group: that group would
    be the solve itself again (a recursion ended only by the clock), so no group is solved."""
    calls: list[int] = []
    original = exact_solver.solve_groups
    monkeypatch.setattr(exact_solver, "solve_groups", lambda *a: calls.append(1) or original(*a))
    inst = replace(mixed_instance(6, 3), workloads=tuple(replace(w, model="ssd", slo_ms=100.0, rate_rps=3000.0)
                                                          for w in mixed_instance(6, 3).workloads))
    demands = size_instance(inst, V100)
    assert len(demands) >= GROUPED.group_rows and len(partition(demands, GROUPED.group_size)) == 1
    plan = solve(inst, "exact", options=SolveOptions(time_limit=20),
                 solver_options=ExactOptions(time_limit=20, settings=GROUPED))
    assert plan.feasible and calls == []


@pytest.mark.parametrize("group_fixed_share", [0.0, 0.25])
def test_a_groups_solve_skips_the_seed_search_over_the_sizings_split(monkeypatch, group_fixed_share):
    """A group's solve runs without the seed search over the sizing's split (group_fixed_share 0: on
    fresh 500s the groups' plans were as good or better and proven sooner); the whole's own solve
    keeps it (fixed_share), and group_fixed_share brings it back to the groups."""
    inst = _with_big_ones(40, 7)
    whole = len(size_instance(inst, V100))
    searched: list[tuple[int, bool]] = []  # (demands, whether the seed search found a plan)
    original = exact_solver._fixed_split_search

    def spy(profile, demands, *rest):
        out = original(profile, demands, *rest)
        searched.append((len(demands), out is not None))
        return out

    monkeypatch.setattr(exact_solver, "_fixed_split_search", spy)
    solve(inst, "exact", options=SolveOptions(time_limit=30),
          solver_options=ExactOptions(time_limit=30, settings=replace(GROUPED, group_fixed_share=group_fixed_share)))
    groups = [ran for n, ran in searched if n < whole]
    assert groups, "a group with split workloads calls the seed search"
    assert [ran for n, ran in searched if n == whole] == [True]  # the whole's own seed search ran
    assert all(ran == (group_fixed_share > 0) for ran in groups)
