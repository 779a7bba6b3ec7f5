"""Property tests: random valid instances never raise, and verify agrees with predict."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from igniter_opt.data.instance import Instance, Workload
from igniter_opt.model import load_profile, predict
from igniter_opt.solvers.solve import solve

V100 = load_profile("v100")
MODELS = sorted(V100.models)

workload = st.tuples(st.sampled_from(MODELS), st.floats(1.0, 400.0), st.floats(1.0, 3000.0))


@st.composite
def instances(draw):
    items = draw(st.lists(workload, min_size=1, max_size=8))
    return Instance("prop", "v100", tuple(Workload(f"w{i}", m, slo, rate)
                                          for i, (m, slo, rate) in enumerate(items)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(), st.sampled_from(["greedy", "ffd"]))
def test_random_instances_never_raise_and_verify_matches_predict(inst, solver):
    plan = solve(inst, solver, V100)
    assert plan.status in ("heuristic", "infeasible")
    if plan.status == "infeasible":
        assert not plan.feasible and plan.message
        return
    # every workload's rate is covered by its replicas
    for w in inst.workloads:
        served = sum(p.rate_rps for p in plan.workloads() if p.name == w.name or p.name.startswith(w.name + "#"))
        assert np.isclose(served, w.rate_rps) or served >= w.rate_rps
    all_ok = True
    for gpu in plan.gpus:
        ws = gpu.workloads
        pred = predict(V100, [w.model for w in ws], [w.batch for w in ws], [w.resource_pct for w in ws])
        np.testing.assert_allclose([w.predicted_latency_ms for w in ws], pred.latency_ms)
        np.testing.assert_allclose([w.predicted_throughput_rps for w in ws], pred.throughput_rps)
        for w, lat, h in zip(ws, pred.latency_ms, pred.throughput_rps):
            ok = lat <= w.slo_ms / 2 * (1 + 1e-9) and h >= w.rate_rps * (1 - 1e-9)
            assert w.meets_slo == ok
            all_ok &= ok
        all_ok &= gpu.total_share <= 100
    assert plan.feasible == all_ok
