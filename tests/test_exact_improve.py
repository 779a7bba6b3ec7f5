"""The exact solver's destroy-and-repair phase (solvers/exact/improve.py, issue 24): it only ever
lowers the GPU count, every plan it returns verifies, and it finds better plans where they exist."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from igniter_opt.data.instance import load_instance
from igniter_opt.data.plan import Plan
from igniter_opt.solvers.base import SolveOptions
from igniter_opt.solvers.exact.improve import ImproveSettings, improve, multistart, reserve
from igniter_opt.solvers.heuristics.firstfit import first_fit
from igniter_opt.solvers.sizing import size_instance
from igniter_opt.solvers.solve import resolve_profile, solve
from igniter_opt.solvers.verify import verify

STRESS = Path(__file__).resolve().parents[1] / "instances" / "stress"
SMALL = sorted(STRESS.glob("stress-small-n24-0[0-3].json"))


def _setup(path: Path):
    inst = load_instance(path)
    prof = resolve_profile(inst)
    return inst, prof, size_instance(inst, prof, 0.0)


def _ok(gpus, prof) -> bool:
    return not verify(Plan(instance="t", solver="exact", profile=prof.name, status="time_limit", gpus=gpus),
                      prof, 0.0)[1]


def _names(gpus) -> list[str]:
    return sorted(w.name for g in gpus for w in g.workloads)


@pytest.mark.parametrize("path", SMALL, ids=lambda p: p.stem)
def test_never_worse_always_verifies(path: Path) -> None:
    """From a first fit in input order: never more GPUs, every workload once, the plan verifies."""
    _, prof, demands = _setup(path)
    start = first_fit(prof, demands, list(range(len(demands))))
    assert _ok(start, prof)
    gpus, kept = improve(start, prof, demands, time.perf_counter() + 1.0, ImproveSettings(seed=1))
    assert len(gpus) <= len(start)
    assert (kept > 0) == (len(gpus) < len(start))
    assert _names(gpus) == _names(start)
    assert _ok(gpus, prof)


def test_finds_a_better_plan() -> None:
    """Every workload alone on its GPU (a feasible but wasteful incumbent): the phase packs them."""
    _, prof, demands = _setup(SMALL[0])
    alone = [g for i in range(len(demands)) for g in first_fit(prof, demands[i:i + 1], [0])]
    assert len(alone) == len(demands) and _ok(alone, prof)
    gpus, kept = improve(alone, prof, demands, time.perf_counter() + 2.0)
    assert kept > 0 and len(gpus) < len(alone)
    assert _names(gpus) == _names(alone) and _ok(gpus, prof)
    # and it reaches what a multi-start first fit reaches on this small instance, or better
    assert len(gpus) <= len(multistart(prof, demands, 0.5)) + 2


def test_a_plan_that_does_not_verify_comes_back_unchanged() -> None:
    _, prof, demands = _setup(SMALL[0])
    start = first_fit(prof, demands, list(range(len(demands))))
    broken = [start[0].__class__([w.__class__(**{**w.__dict__, "resource_pct": 5.0}) for w in g.workloads])
              for g in start]
    assert not _ok(broken, prof)
    gpus, kept = improve(broken, prof, demands, time.perf_counter() + 1.0)
    assert kept == 0 and gpus == broken


def test_reserve_is_a_small_capped_share() -> None:
    assert reserve(ImproveSettings(), 60.0) == pytest.approx(3.0)
    assert reserve(ImproveSettings(), 3600.0) == pytest.approx(15.0)
    assert reserve(ImproveSettings(share=0.0), 60.0) == 0.0


def test_exact_bound_untouched_and_plan_verifies() -> None:
    """Exact with the phase: the plan verifies and its bound is the bound exact proves (never above
    its GPU count); at least as good as the greedy."""
    inst, _, _ = _setup(SMALL[1])
    plan = solve(inst, "exact", options=SolveOptions(time_limit=20, threads=1))
    greedy = solve(inst, "greedy")
    assert plan.feasible
    assert plan.lower_bound is not None and plan.lower_bound <= plan.num_gpus
    assert plan.num_gpus <= greedy.num_gpus
