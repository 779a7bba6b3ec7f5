"""A mixed-fleet plan on a real Ray cluster whose nodes declare different GPU types (issue 21):
each plan GPU of type T lands on the node that declares Ray's accelerator_type:T, checked from
endpoints.json; a type no node declares is refused before anything starts. The same for
`igniter serve --fleet --backend ray`: each GPU slot's placement group sits on a node of the
slot's type, and a fleet type no node declares is one line, exit 2, before anything starts. Real
tritonservers (nvidia-pytriton's, CPU stand-ins), no mocks. Run: pytest -m ray tests/test_fleet_ray.py.
"""

from __future__ import annotations

import faulthandler
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="pip install 'igniter-opt[cluster]'")

from conftest import local_ray_cluster, triton_pids  # noqa: E402
from test_ray import assert_nothing_left  # noqa: E402

from igniter_opt.data.plan import GpuPlan, PlacedWorkload, Plan  # noqa: E402
from igniter_opt.deploy.backends.launcher import free_port  # noqa: E402
from igniter_opt.deploy.backends.local import find_tritonserver  # noqa: E402
from igniter_opt.deploy.backends.ray import PlacementError  # noqa: E402
from igniter_opt.deploy.session import deploy, read_endpoints  # noqa: E402
from igniter_opt.deploy.types import DeployOptions  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.triton, pytest.mark.slow,
              pytest.mark.skipif(find_tritonserver() is None, reason="no tritonserver (pip install nvidia-pytriton)")]
ROOT = Path(__file__).resolve().parent.parent


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


def _fleet_file(tmp_path: Path, *types: str) -> Path:
    """A service fleet of one GPU per type: v100 (bundled profile) and the SYNTHETIC slow type
    (examples/fleets/synthetic-slow.json, derived from the V100 profile, not a measured GPU)."""
    shutil.copy(ROOT / "examples" / "fleets" / "synthetic-slow.json", tmp_path / "synthetic-slow.json")
    spec = {"v100": {"profile": "v100", "price_per_hour": 2.48}, "slow": {"profile": "synthetic-slow.json",
                                                                         "price_per_hour": 1.24},
            "a100": {"profile": "v100", "price_per_hour": 3.0}}
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps([{"type": t, "count": 1, **spec[t]} for t in types]))
    return path


def test_serve_with_a_fleet_puts_each_slot_on_a_node_of_its_type(typed_cluster, tmp_path):
    pytest.importorskip("fastapi", reason="needs the 'service' extra: pip install -e '.[service]'")
    from test_service_e2e import Service
    from test_service_ray import ours

    state = (tmp_path / "state").resolve()
    fleet = _fleet_file(tmp_path, "v100", "slow")
    service = Service(state, free_port(), "--fleet", str(fleet), "--backend", "ray", "--address",
                      typed_cluster.address, "--teardown", gpus=None)
    try:
        for name in ("a", "b"):  # most of one GPU each: the first opens the cheaper slow slot, the second the v100
            done = service.client("add", name, "--model", "vgg19", "--slo", "60", "--rate", "150", "--json")
            assert done.returncode == 0, (done.stderr, service.log.read_text())
        plan = service.get("/v1/plan")
        assert sorted(g["gpu_type"] for g in plan["gpus"]) == ["slow", "v100"]
        _, groups = ours()
        for g in plan["gpus"]:  # the slot's placement group sits on the node declaring its type
            node = next(n for name, n in groups.items() if name.endswith(f"-gpu{g['gpu']}"))
            assert node == typed_cluster.igniter_typed[g["gpu_type"]], (g, groups)
        service.proc.send_signal(signal.SIGTERM)
        assert service.proc.wait(timeout=120) == 0, service.log.read_text()
        deadline = time.monotonic() + 30
        while any(ours()) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert ours() == ([], {}) and triton_pids(state) == []
    finally:
        if service.proc.poll() is None:
            service.proc.kill()
            service.proc.wait()


def test_serve_refuses_a_fleet_type_no_node_declares_before_anything_starts(typed_cluster, tmp_path):
    fleet = _fleet_file(tmp_path, "v100", "a100")
    state = tmp_path / "state"
    done = subprocess.run([sys.executable, "-m", "igniter_opt", "serve", "--fleet", str(fleet), "--backend", "ray",
                           "--address", typed_cluster.address, "--state-dir", str(state),
                           "--port", str(free_port())], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert ("--fleet: the fleet has GPUs of type 'a100' and no node of the Ray cluster declares "
            "accelerator_type:a100 (types declared: slow, v100)") in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not any(g["state"] != "REMOVED" for g in ray.util.placement_group_table().values())
