"""`igniter serve` end to end on the CPU: real tritonserver processes (CPU stand-ins), the real
load generator following endpoint changes, a SIGKILLed controller, re-adoption and tear-down."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import triton_pids

pytest.importorskip("fastapi", reason="needs the 'service' extra: pip install -e '.[service]'")
pytest.importorskip("uvicorn", reason="needs the 'service' extra: pip install -e '.[service]'")

from igniter_opt.controller.placement import to_solver_plan
from igniter_opt.controller.records import Placement, Spec
from igniter_opt.data.dnn import spec_for
from igniter_opt.deploy.backends.launcher import free_port
from igniter_opt.deploy.backends.local import find_tritonserver
from igniter_opt.deploy.load.generator import LoadOptions, Target, WorkloadResult, run_load
from igniter_opt.model import load_profile
from igniter_opt.solvers.verify import verify

pytestmark = [pytest.mark.triton, pytest.mark.slow, pytest.mark.extra("service", "deploy", "triton"),
              pytest.mark.skipif(find_tritonserver() is None, reason="no tritonserver (pip install nvidia-pytriton)")]

WORKLOADS = [("a", "resnet50", 100.0, 20.0), ("b", "vgg19", 200.0, 10.0), ("c", "alexnet", 100.0, 20.0),
             ("d", "resnet50", 200.0, 10.0)]


class Service:
    """`igniter serve` as a subprocess (stderr to a file)."""

    def __init__(self, state: Path, port: int, *extra: str, gpus: int | None = 3) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log = state.parent / f"serve-{port}-{time.monotonic_ns()}.log"
        fleet = [] if gpus is None else ["--gpus", str(gpus)]  # None: the extra arguments give --fleet
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "igniter_opt", "serve", *fleet, "--backend",
                                          "local", "--device", "cpu", "--state-dir", str(state), "--port", str(port),
                                          "--grace", "2", *extra], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while True:
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, self.log.read_text()
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)

    def client(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "igniter_opt", "client", *args, "--url", self.url],
                              capture_output=True, text=True, timeout=180)

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=30) as r:
            return dict(json.loads(r.read()))


def targets(url: str, listing: dict, names: list[str]) -> list[Target]:
    by_name = {w["name"]: w for w in listing["workloads"]}
    return [Target(name=n, model_name=n, url=by_name[n]["endpoint"]["grpc_url"], rate_rps=by_name[n]["rate_rps"],
                   slo_ms=by_name[n]["slo_ms"], input_dims=spec_for(by_name[n]["model"]).input_dims,
                   follow_url=f"{url}/v1/workloads/{n}/endpoint") for n in names]


def in_background(ts: list[Target], duration: float) -> tuple[threading.Thread, list[list[WorkloadResult]]]:
    out: list[list[WorkloadResult]] = []
    thread = threading.Thread(target=lambda: out.append(run_load(ts, LoadOptions(duration_s=duration, warmup_s=1.0,
                                                                                 processes=1))))
    thread.start()
    return thread, out


def stable(listing: dict) -> list[dict]:
    keep = ("name", "gpu", "share_pct", "batch", "rate_rps", "slo_ms", "endpoint")
    return [{k: w[k] for k in keep} for w in listing["workloads"]]


def test_serve_admit_change_remove_kill_readopt_teardown(tmp_path):
    state = (tmp_path / "state").resolve()
    service = Service(state, free_port())
    services = [service]
    try:
        for name, model, slo, rate in WORKLOADS:  # one at a time, each answered with its endpoint
            done = service.client("add", name, "--model", model, "--slo", str(slo), "--rate", str(rate), "--json")
            assert done.returncode == 0, done.stderr
            answer = json.loads(done.stdout)["workloads"][0]
            assert answer["endpoint"]["grpc_url"] and answer["endpoint"]["version"] >= 1
        assert len(triton_pids(state)) >= 4
        bad = service.client("add", "a", "--model", "resnet50", "--slo", "100", "--rate", "5")
        assert bad.returncode == 2 and "name:" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
        listing = service.get("/v1/workloads")
        report_path = tmp_path / "report.json"  # `igniter client measure` follows the endpoints
        measuring = subprocess.Popen([sys.executable, "-m", "igniter_opt", "client", "measure", "--url", service.url,
                                      "--duration", "12", "--warmup", "1", "-o", str(report_path)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(5)
        changed = service.client("set", "a", "--rate", "60", "--json")  # (a) re-shared or moved: new server
        assert changed.returncode == 0, changed.stderr
        new_a = json.loads(changed.stdout)
        old_a = next(w for w in listing["workloads"] if w["name"] == "a")
        assert new_a["endpoint"]["server_id"] != old_a["endpoint"]["server_id"]
        assert (new_a["share_pct"], new_a["batch"]) != (old_a["share_pct"], old_a["batch"])
        plan = service.get("/v1/plan")
        assert plan["feasible"] and plan["status"] and "gpus" in plan["objectives"]
        time.sleep(3)
        assert service.client("rm", "c").returncode == 0  # (b)
        _, stderr = measuring.communicate(timeout=120)
        report = {w["name"]: w for w in json.loads(report_path.read_text())["workloads"]}
        assert sorted(report) == ["a", "b", "c", "d"], stderr
        for name in ("a", "b", "d"):  # every workload that stays: not one failed request
            assert report[name]["errors"] == 0, (report[name], stderr)
            assert report[name]["measured_throughput_rps"] >= 0.8 * report[name]["rate_rps"], report[name]
        listing = service.get("/v1/workloads")
        assert sorted(w["name"] for w in listing["workloads"]) == ["a", "b", "d"]
        profile = load_profile("v100")
        placed = {w["name"]: Placement(Spec(w["name"], w["model"], w["slo_ms"], w["rate_rps"]), w["gpu"],
                                       w["share_pct"], w["batch"]) for w in listing["workloads"]}
        assert verify(to_solver_plan(placed, profile), profile)[1] == []

        # SIGKILL of the controller under load: the servers keep serving; a restart re-adopts them
        thread, results = in_background(targets(service.url, listing, ["a", "b", "d"]), 8.0)
        time.sleep(3)
        service.proc.kill()
        service.proc.wait()
        time.sleep(1)
        assert len(triton_pids(state)) >= 3
        service = Service(state, free_port(), "--teardown")
        services.append(service)
        thread.join(timeout=120)
        for r in results[0]:
            assert r.errors == 0, (r.name, r.error_samples)
        ls = service.client("ls", "--json")
        assert ls.returncode == 0, ls.stderr
        assert stable(json.loads(ls.stdout)) == stable(listing)
        assert "adopted 3 server(s)" in service.log.read_text()

        service.proc.send_signal(signal.SIGTERM)  # with --teardown: nothing left behind
        assert service.proc.wait(timeout=60) == 0, service.log.read_text()
        assert triton_pids(state) == []
        gone = service.client("ls")
        assert gone.returncode == 1 and "cannot reach the igniter service" in gone.stderr
    finally:
        for s in services:
            if s.proc.poll() is None:
                s.proc.kill()
                s.proc.wait()
        for pid in triton_pids(state):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
