"""A mixed-fleet plan on a real Ray cluster whose nodes declare different GPU types (issue 21):
each plan GPU of type T lands on the node that declares Ray's accelerator_type:T, checked from
endpoints.json; a type no node declares is refused before anything starts. Real tritonservers
(nvidia-pytriton's, CPU stand-ins), no mocks. Run: pytest -m ray tests/test_fleet_ray.py.
"""

from __future__ import annotations

import faulthandler

import pytest

ray = pytest.importorskip("ray", reason="pip install 'igniter-opt[cluster]'")

from conftest import local_ray_cluster  # noqa: E402
from test_ray import assert_nothing_left  # noqa: E402

from igniter_opt.data.plan import GpuPlan, PlacedWorkload, Plan  # noqa: E402
from igniter_opt.deploy.backends.local import find_tritonserver  # noqa: E402
from igniter_opt.deploy.backends.ray import PlacementError  # noqa: E402
from igniter_opt.deploy.session import deploy, read_endpoints  # noqa: E402
from igniter_opt.deploy.types import DeployOptions  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.triton, pytest.mark.slow,
              pytest.mark.skipif(find_tritonserver() is None, reason="no tritonserver (pip install nvidia-pytriton)")]


@pytest.fixture(autouse=True)
def watchdog():
    faulthandler.dump_traceback_later(150, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(scope="module")
def typed_cluster():
    """A head (no GPU) and two nodes of one GPU each: one declares type v100, the other slow."""
    types = ("v100", "slow")
    with local_ray_cluster([{"num_cpus": 2, "num_gpus": 1, "resources": {f"accelerator_type:{t}": 1}}
                            for t in types]) as c:
        c.igniter_typed = {t: n.node_id for t, n in zip(types, c.igniter_workers)}
        yield c


def plan_of(*types: str) -> Plan:
    return Plan("mixed", "test", "v100", "feasible",
                [GpuPlan([PlacedWorkload(f"w{j}", "alexnet", 2, 50.0, 10.0, 200.0)], t) for j, t in enumerate(types)])


def test_each_plan_gpu_runs_on_a_node_of_its_type(typed_cluster, tmp_path):
    run_dir = (tmp_path / "run").resolve()
    plan = plan_of("slow", "v100")
    with deploy(plan, DeployOptions(backend="ray", run_dir=run_dir, device="cpu")) as dep:
        servers = {s["name"]: s for s in read_endpoints(run_dir)["servers"]}
        assert dep.endpoints
        assert servers["w0"]["node_id"] == typed_cluster.igniter_typed["slow"]
        assert servers["w1"]["node_id"] == typed_cluster.igniter_typed["v100"]
    assert_nothing_left(run_dir, timeout_s=10.0)


@pytest.mark.usefixtures("typed_cluster")
def test_a_type_no_node_declares_is_refused_before_anything_starts(tmp_path):
    run_dir = (tmp_path / "run").resolve()
    with pytest.raises(PlacementError, match=r"type 'a100' and no node of the Ray cluster declares "
                                             r"accelerator_type:a100 \(types declared: slow, v100\)"):
        with deploy(plan_of("v100", "a100"), DeployOptions(backend="ray", run_dir=run_dir, device="cpu")):
            pass
    assert_nothing_left(run_dir, timeout_s=5.0)
