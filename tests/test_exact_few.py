"""A handful of high-rate workloads over many GPUs (issue 24): few rows, a wide closing listing.

With four or five workloads split over 14-17 GPUs the root cannot branch (a split workload's rate
levels are in no single row) and its LP sits a whole GPU below the incumbent, so the closing
listing (closing.py) must list nearly every configuration: 44,000-76,000 columns where the first
cap is 50,000. On few rows the caps widen after a listing that met them, so these are proven, and
over every split they need one or two GPUs fewer than milp's optimum over the sizing's split.
Before (a fixed cap of 50,000 columns, no listing under joint above a slack of 0.01) both ended
a GPU above their bound at 20 s, the same listing repeated (docs/exact.md, "Few workloads, many
GPUs").
"""

from __future__ import annotations

import pytest

from igniter_opt.data.instance import Instance, Workload
from igniter_opt.model import load_profile
from igniter_opt.solvers.base import SolveOptions
from igniter_opt.solvers.solve import solve
from igniter_opt.solvers.verify import verify

V100 = load_profile("v100")
LIMIT = 60.0  # a hang guard: proven in 2-6 s

CASES = {  # (policy, workloads: model, SLO ms, rate req/s), exact's optimum, milp's (sizing's split)
    "paper": ("paper", [("ssd", 257, 3000), ("vgg19", 301, 392), ("vgg19", 44357, 1491), ("ssd", 260, 1208)],
              16, 17),
    "joint": ("joint", [("resnet50", 100000, 559), ("vgg19", 105, 1858), ("resnet50", 301, 1994),
                        ("alexnet", 38763, 3000), ("ssd", 173, 2980)], 14, 16),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_few_high_rate_workloads_are_proven_a_gpu_below_the_sizings_split(case: str) -> None:
    policy, items, optimum, fixed = CASES[case]
    inst = Instance(f"few-{case}", "v100", tuple(Workload(f"w{i}", m, float(slo), float(rate))
                                                 for i, (m, slo, rate) in enumerate(items)), batch_policy=policy)
    options = SolveOptions(time_limit=LIMIT, batch_policy=policy)
    plan = solve(inst, "exact", options=options)
    assert (plan.num_gpus, plan.lower_bound, plan.status) == (optimum, optimum, "optimal"), plan.message
    assert plan.feasible and verify(plan, V100)[1] == []
    milp = solve(inst, "milp", options=options)
    assert milp.status == "optimal" and milp.num_gpus == fixed  # optimal for the sizing's split only
