"""`igniter serve --fleet FILE` end to end on the CPU: a real controller process, real tritonserver
processes (CPU stand-ins), real gRPC traffic to the endpoints, /v1/plan with GPU types and cost,
and `client plan` printing them; --teardown leaves nothing behind.

The fleet's second type is SYNTHETIC (examples/fleets/synthetic-slow.json, derived from the V100
profile; not a measured GPU)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import triton_pids

pytest.importorskip("fastapi", reason="needs the 'service' extra: pip install -e '.[service]'")
pytest.importorskip("uvicorn", reason="needs the 'service' extra: pip install -e '.[service]'")

from igniter_opt.data.dnn import spec_for
from igniter_opt.deploy.backends.launcher import free_port
from igniter_opt.deploy.backends.local import find_tritonserver
from igniter_opt.deploy.load.generator import LoadOptions, Target, run_load

pytestmark = [pytest.mark.triton, pytest.mark.slow, pytest.mark.extra("service", "deploy", "triton"),
              pytest.mark.skipif(find_tritonserver() is None, reason="no tritonserver (pip install nvidia-pytriton)")]
ROOT = Path(__file__).resolve().parent.parent


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        return dict(json.loads(r.read()))


def test_serve_with_a_fleet_places_by_type_serves_and_shows_cost(tmp_path: Path) -> None:
    shutil.copy(ROOT / "examples" / "fleets" / "synthetic-slow.json", tmp_path / "synthetic-slow.json")
    fleet = tmp_path / "fleet.json"
    fleet.write_text(json.dumps([{"type": "v100", "profile": "v100", "count": 1, "price_per_hour": 2.48},
                                 {"type": "slow", "profile": "synthetic-slow.json", "count": 1,
                                  "price_per_hour": 1.24}]))
    state = (tmp_path / "state").resolve()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "igniter_opt", "serve", "--fleet", str(fleet), "--backend",
                                 "local", "--device", "cpu", "--state-dir", str(state), "--port", str(port),
                                 "--grace", "1", "--teardown"], stdout=out, stderr=subprocess.STDOUT)

    def client(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "igniter_opt", "client", *args, "--url", url],
                              capture_output=True, text=True, timeout=180)

    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        # vgg19 at 60 ms and 150 req/s fills most of one GPU: the second one opens the other type
        for name in ("a", "b"):
            done = client("add", name, "--model", "vgg19", "--slo", "60", "--rate", "150", "--json")
            assert done.returncode == 0, done.stderr
        plan = _get(f"{url}/v1/plan")
        assert plan["fleet_gpus"] == 2 and sorted(g["gpu_type"] for g in plan["gpus"]) == ["slow", "v100"]
        assert plan["cost"] == pytest.approx(2.48 + 1.24)
        first = next(g for g in plan["gpus"] if any(w["name"] == "a" for w in g["workloads"]))
        assert first["gpu_type"] == "slow"  # the first arrival opened the type of least price x share
        printed = client("plan")
        assert printed.returncode == 0 and "cost 3.72/h" in printed.stdout and " slow (" in printed.stdout

        listing = _get(f"{url}/v1/workloads")
        targets = [Target(name=w["name"], model_name=w["name"], url=w["endpoint"]["grpc_url"], rate_rps=5.0,
                          slo_ms=w["slo_ms"], input_dims=spec_for(w["model"]).input_dims)
                   for w in listing["workloads"]]
        results = run_load(targets, LoadOptions(duration_s=3.0, warmup_s=0.5, processes=1))
        for r in results:  # each type's server answered real requests
            assert r.errors == 0 and r.measured > 0, (r.name, r.error_samples)

        proc.send_signal(signal.SIGTERM)  # --teardown: nothing left behind
        assert proc.wait(timeout=60) == 0, log.read_text()
        assert triton_pids(state) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in triton_pids(state):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
