"""Against real infrastructure when present: a docker engine (NGC image), a GPU with MPS.

Every test here skips cleanly on a machine without it (as in CI). The docker test needs the image
locally (docker pull nvcr.io/nvidia/tritonserver:<tag>, or IGNITER_DOCKER_IMAGE=...): pulling ~10 GB
inside a test is not done.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from igniter_opt.data.plan import GpuPlan, PlacedWorkload, Plan
from igniter_opt.deploy.backends.docker import LABEL, DockerLauncher, docker_client, image_ref
from igniter_opt.deploy.repository import ModelConfig, write_repository
from igniter_opt.deploy.types import LaunchError, ServerSpec
from igniter_opt.platform.mps import mps_available


def _engine():
    try:
        return docker_client()
    except LaunchError as exc:
        pytest.skip(str(exc))


def test_docker_engine_container_up_and_removed(tmp_path):
    client = _engine()
    image = os.environ.get("IGNITER_DOCKER_IMAGE", image_ref())
    try:
        client.images.get(image)
    except Exception:
        pytest.skip(f"image {image} not present locally (docker pull it or set IGNITER_DOCKER_IMAGE)")
    run_dir = tmp_path.resolve()
    repo = write_repository(run_dir / "repos" / "cls", ModelConfig(name="cls", model="alexnet", batch=2,
                                                                    queue_delay_us=1000))
    with DockerLauncher(run_dir, image=image, client=client) as launcher:
        ep = launcher.start(ServerSpec(name="cls", model_name="cls", repository=repo))
        assert ep.handle and ep.grpc_url.startswith("127.0.0.1:")
    left = client.containers.list(all=True, filters={"label": f"{LABEL}={run_dir}"})
    assert left == []


@pytest.mark.gpu
@pytest.mark.skipif(not mps_available(), reason="no GPU with nvidia-cuda-mps-control")
def test_gpu_run_with_mps(tmp_path):
    pytest.importorskip("torchvision")
    ws = [PlacedWorkload("r50", "resnet50", batch=4, resource_pct=50.0, rate_rps=100.0, slo_ms=50.0),
          PlacedWorkload("vgg", "vgg19", batch=4, resource_pct=50.0, rate_rps=50.0, slo_ms=100.0)]
    plan = tmp_path / "plan.json"
    Plan("gpu-e2e", "test", "v100", "feasible", [GpuPlan(ws)]).save(plan)
    out = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-m", "igniter_opt", "run", str(plan), "--duration", "5", "--warmup", "3",
                           "--run-dir", str(tmp_path / "run"), "--fp16", "-o", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["gpu"]["devices"][0]["samples"] > 0
    assert all(w["errors"] == 0 for w in report["workloads"])
    assert shutil.which("nvidia-cuda-mps-control")
