"""Warm re-plans of the exact solver (solvers/exact/warm.py, issue 24 item 4): after one change a
solve started from the previous one's columns, plan and certificate ends at the cold solve's
GPU count and proven status, never uses a column the change made infeasible, and a solve
without a warm start is the solve it was."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from igniter_opt.bench.changes import one_change
from igniter_opt.bench.generate import mixed_instance, random_instance
from igniter_opt.data.instance import Instance, Workload
from igniter_opt.data.plan import Plan
from igniter_opt.solvers.exact import ExactOptions
from igniter_opt.solvers.exact.warm import ExactWarmStart, WarmRecord
from igniter_opt.solvers.solve import solve

LIMIT = 60.0  # a hang guard: these instances are proven in seconds


def _exact(inst: Instance, warm: ExactWarmStart | None = None, record: WarmRecord | None = None,
           margin: float = 0.0) -> Plan:
    return solve(inst, "exact", solver_options=ExactOptions(time_limit=LIMIT, threads=1, margin_pct=margin,
                                                            warm=warm, record=record))


def _cold_with_record(inst: Instance) -> tuple[Plan, ExactWarmStart]:
    rec = WarmRecord()
    plan = _exact(inst, record=rec)
    assert rec.last is not None and plan.status == "optimal" and plan.feasible
    return plan, rec.last


CASES = [(random_instance(10, 3), 2), (random_instance(12, 8), 5), (mixed_instance(16, 41), 7),
         (mixed_instance(20, 42), 11)]


@pytest.mark.parametrize("kind", ["up", "down", "remove", "add"])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_warm_equals_cold(case: int, kind: str) -> None:
    """After rate +20% / -20% / a removal / an arrival: the warm solve verifies and has the cold
    solve's GPUs and status (both proven optimal), and it really started warm."""
    inst, index = CASES[case]
    _, warm = _cold_with_record(inst)
    changed, _ = one_change(inst, kind, index)
    cold = _exact(changed)
    rec = WarmRecord()
    hot = _exact(changed, warm=warm, record=rec)
    assert hot.feasible and cold.feasible
    assert (hot.num_gpus, hot.status) == (cold.num_gpus, cold.status) == (cold.num_gpus, "optimal")
    assert hot.lower_bound == cold.lower_bound == cold.num_gpus
    assert rec.stats is not None and rec.stats.kept > 0  # columns of the previous solve were reused
    assert hot.message.startswith("warm start")
    served = [{w.name.split("#")[0] for w in p.workloads()} for p in (hot, cold)]  # a split one's pieces: <name>#k
    assert served[0] == served[1] == {w.name for w in changed.workloads}


def test_stale_column_rejected() -> None:
    """A rate increase that makes some old columns infeasible: they are re-checked by the oracle
    and rejected, none is in the new pool or on a GPU of the plan, and the plan verifies."""
    inst = mixed_instance(20, 42)
    _, warm = _cold_with_record(inst)
    changed, name = one_change(inst, "up", 11, factor=1.6)
    rec = WarmRecord()
    plan = _exact(changed, warm=warm, record=rec)
    assert rec.stats is not None and rec.stats.rejected > 0 and rec.stats.rejected_columns
    assert plan.feasible
    assert rec.last is not None
    pool = {tuple(sorted(Counter(members).items())) for members, _ in rec.last.columns}
    new_key = next(k for n, k in rec.last.workloads.items() if n == name)
    for stale in rec.stats.rejected_columns:
        assert new_key in stale  # the changed workload, at its new demand, made it stale
        assert tuple(sorted(Counter(stale).items())) not in pool
    assert plan.num_gpus == _exact(changed).num_gpus


def test_carried_bound_stays_a_proof_after_a_decrease() -> None:
    """A large rate decrease can lower the optimum: the warm solve must not keep the old bound
    (it ends at the cold optimum, below the old one, proven)."""
    inst = Instance("four", "v100", tuple(Workload(f"vgg-{i}", "vgg19", 100.0, 300.0) for i in range(4)))
    before, warm = _cold_with_record(inst)
    low = replace(inst, workloads=tuple(replace(w, rate_rps=60.0) for w in inst.workloads))
    cold = _exact(low)
    hot = _exact(low, warm=warm)
    assert cold.num_gpus < before.num_gpus
    assert (hot.num_gpus, hot.lower_bound, hot.status) == (cold.num_gpus, cold.lower_bound, "optimal")


def test_default_unchanged_and_mismatched_warm_ignored() -> None:
    """No warm start: the same plan with or without a record; a warm start of another margin is
    not used (the solve is cold: same plan as without it, no warm stats)."""
    inst = mixed_instance(16, 41)
    plain = _exact(inst)
    rec = WarmRecord()
    recorded = _exact(inst, record=rec)
    assert [sorted((w.name, w.batch, w.resource_pct) for w in g.workloads) for g in plain.gpus] == \
        [sorted((w.name, w.batch, w.resource_pct) for w in g.workloads) for g in recorded.gpus]
    assert rec.stats is None and rec.last is not None
    other = WarmRecord()
    at_margin = _exact(inst, warm=rec.last, record=other, margin=5.0)
    assert other.stats is None and not at_margin.message.startswith("warm start")
    assert at_margin.num_gpus == _exact(inst, margin=5.0).num_gpus
    assert ExactOptions().warm is None and ExactOptions().record is None


def _one_gpu(profile, spec) -> bool:
    from igniter_opt.controller.placement import Unplaceable, demand

    try:
        demand(profile, spec)
    except Unplaceable:
        return False
    return True


def test_service_stage1_starts_warm() -> None:
    """The exact policy's stage 1 with the controller's WarmRecord: the first re-plan leaves its
    solve there, the next (one rate changed) starts from it and needs as many GPUs as a re-plan
    without it; its plan verifies (replan_exact's placements carry the model's prediction)."""
    from igniter_opt.controller.records import Spec
    from igniter_opt.controller.replan import replan_exact
    from igniter_opt.model import load_profile

    profile = load_profile("v100")
    inst = mixed_instance(16, 41)
    specs = [Spec(w.name, w.model, w.slo_ms, w.rate_rps) for w in inst.workloads]
    specs = [s for s in specs if _one_gpu(profile, s)]  # the service refuses a workload above one GPU
    record = WarmRecord()
    current, _ = replan_exact(profile, 40, {}, specs, {s.name for s in specs}, time_limit=LIMIT, warm=record)
    assert record.last is not None and record.stats is None
    first = record.last
    specs[3] = replace(specs[3], rate_rps=round(specs[3].rate_rps * 1.2))
    plan, info = replan_exact(profile, 40, current, specs, {specs[3].name}, time_limit=LIMIT, warm=record)
    assert record.stats is not None and record.stats.kept > 0 and record.last is not first
    _, cold_info = replan_exact(profile, 40, current, specs, {specs[3].name}, time_limit=LIMIT)
    assert info.objectives["gpus"]["exact_plan"] == cold_info.objectives["gpus"]["exact_plan"]
    assert info.status == cold_info.status == "optimal"
    assert set(plan) == {s.name for s in specs}


@pytest.mark.parametrize("kind", ["up", "down"])
def test_changed_split_workload_keeps_its_plan(kind: str) -> None:
    """A workload above one GPU (split into pieces) changes its rate: the repaired plan keeps the
    pieces whose rate level still is a level and covers the rest of the new rate (warmpieces.py)
    instead of giving up, and the warm solve has the cold solve's GPUs and proven status."""
    inst = mixed_instance(16, 41)
    before, warm = _cold_with_record(inst)
    changed, name = one_change(inst, kind, 0, factor=1.1)
    assert warm.workloads[name][0] == "*"  # it was split before the change (the owner mark of a split workload)
    rec = WarmRecord()
    hot = _exact(changed, warm=warm, record=rec)
    cold = _exact(changed)
    assert rec.stats is not None and rec.stats.repaired_gpus is not None  # the repair did not give up
    if kind == "down":  # pieces only leave: no more GPUs than before the change
        assert rec.stats.repaired_gpus <= before.num_gpus
    pieces = [w for g in hot.gpus for w in g.workloads if w.name.startswith(f"{name}#")]
    assert len(pieces) >= 2 and sum(w.rate_rps for w in pieces) >= changed.workloads[0].rate_rps * (1 - 1e-9)
    assert hot.feasible and (hot.num_gpus, hot.status) == (cold.num_gpus, cold.status) == (cold.num_gpus, "optimal")
