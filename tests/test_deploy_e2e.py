"""End to end on the CPU with the real tritonserver (nvidia-pytriton's) and the real load generator."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import triton_pids

from igniter_opt.data.plan import GpuPlan, PlacedWorkload, Plan
from igniter_opt.deploy.backends.local import LocalLauncher, find_tritonserver
from igniter_opt.deploy.load.generator import LoadOptions
from igniter_opt.deploy.measure import measure
from igniter_opt.deploy.report import KEYS
from igniter_opt.deploy.session import deploy, read_endpoints
from igniter_opt.deploy.types import ENDPOINTS, DeployOptions, LaunchError

pytestmark = [pytest.mark.triton, pytest.mark.slow,
              pytest.mark.skipif(find_tritonserver() is None,
                                 reason="no tritonserver: needs the 'triton' extra (pip install -e '.[triton]') "
                                        "or one on PATH")]

RATES = {"cls": 30.0, "det": 20.0}


def two_workloads() -> Plan:
    ws = [PlacedWorkload("cls", "resnet50", batch=4, resource_pct=50.0, rate_rps=RATES["cls"], slo_ms=100.0),
          PlacedWorkload("det", "ssd", batch=2, resource_pct=50.0, rate_rps=RATES["det"], slo_ms=200.0)]
    return Plan("e2e", "test", "v100", "feasible", [GpuPlan(ws)])



def shm_regions(prefix: str = "igniter_") -> set[str]:
    shm = Path("/dev/shm")
    return {p.name for p in shm.glob(f"{prefix}*")} if shm.is_dir() else set()


def our_shm_prefixes(run_dir: Path) -> set[str]:
    """The shared-memory prefixes our own tritonservers were given (other processes on the machine,
    e.g. another test run, create igniter_ regions too: only ours are asserted on)."""
    found = set()
    for pid in triton_pids(run_dir):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        for arg in argv:
            text = arg.decode(errors="replace")
            if "shm-region-prefix-name=" in text:
                found.add(text.split("shm-region-prefix-name=", 1)[1].split(",", 1)[0])
    return found


def check_report(report: dict) -> None:
    assert list(report) == ["workloads", "gpu"]
    for w in report["workloads"]:
        assert tuple(w) == KEYS
        assert w["errors"] == 0, w
        assert abs(w["measured_throughput_rps"] - w["rate_rps"]) <= 0.1 * w["rate_rps"], w
        assert 0 < w["p50_ms"] <= w["p95_ms"] <= w["p99_ms"], w


def test_deploy_measure_teardown_in_process(tmp_path):
    run_dir = tmp_path / "run"
    plan = two_workloads()
    with deploy(plan, DeployOptions(backend="local", run_dir=run_dir, device="cpu")) as dep:
        assert not dep.gpu and any("NOT enforced (CPU)" in w for w in dep.warnings)
        assert len(triton_pids(run_dir.resolve())) >= 2
        ours = our_shm_prefixes(run_dir.resolve())
        assert len(ours) >= 2
        endpoints = read_endpoints(run_dir)
        assert [s["name"] for s in endpoints["servers"]] == ["cls", "det"]
        report, results = measure(plan, endpoints, LoadOptions(duration_s=3.0, warmup_s=1.0))
    check_report(report)
    assert report["gpu"] is None
    assert all(r.latencies_ms.size >= 0.9 * r.rate_rps * 3 for r in results)
    assert not (run_dir / ENDPOINTS).exists()
    assert triton_pids(run_dir.resolve()) == []
    assert (run_dir / "logs" / "cls.log").read_text().count("READY") >= 1
    assert not {r for r in shm_regions() if any(r.startswith(p) for p in ours)}  # the stubs' memory is gone


def test_servers_die_with_a_killed_igniter(tmp_path):
    """Even SIGKILL of `igniter deploy` (no clean-up possible) takes its servers down (PDEATHSIG)."""
    plan_path = tmp_path / "plan.json"
    two_workloads().save(plan_path)
    run_dir = (tmp_path / "run").resolve()
    server = _igniter("deploy", str(plan_path), "--run-dir", str(run_dir))
    deadline = time.monotonic() + 120
    while not (run_dir / ENDPOINTS).exists() and time.monotonic() < deadline and server.poll() is None:
        time.sleep(0.2)
    assert (run_dir / ENDPOINTS).exists(), server.communicate()
    ours = our_shm_prefixes(run_dir)
    assert len(ours) == 2
    server.kill()
    server.communicate()
    deadline = time.monotonic() + 10
    while triton_pids(run_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert triton_pids(run_dir) == []
    # what of their python backends' shared memory outlives them (its stubs usually remove it; a
    # killed test run's often did not), the next launcher on the host removes
    LocalLauncher(tmp_path / "next")
    assert not {r for r in shm_regions() if any(r.startswith(p) for p in ours)}


def test_failed_start_leaves_nothing(tmp_path):
    run_dir = (tmp_path / "run").resolve()
    with pytest.raises(LaunchError):
        with deploy(two_workloads(), DeployOptions(run_dir=run_dir, device="cpu", ready_timeout_s=0.05)):
            pass
    assert triton_pids(run_dir) == []


def _igniter(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "igniter_opt", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_cli_deploy_measure_then_ctrl_c(tmp_path):
    plan_path = tmp_path / "plan.json"
    two_workloads().save(plan_path)
    run_dir = (tmp_path / "run").resolve()
    server = _igniter("deploy", str(plan_path), "--backend", "local", "--run-dir", str(run_dir))
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / ENDPOINTS).exists():
            assert server.poll() is None, server.communicate()
            assert time.monotonic() < deadline, "deploy did not come up"
            time.sleep(0.2)
        out = tmp_path / "report.json"
        meas = _igniter("measure", str(plan_path), "--run-dir", str(run_dir), "--duration", "3", "--warmup", "1",
                        "--distribution", "poisson", "-o", str(out))
        stdout, stderr = meas.communicate(timeout=120)
        assert meas.returncode == 0, stderr
        assert "predicted vs measured" in stdout
        report = json.loads(out.read_text())
        for w in report["workloads"]:  # Poisson: the count in 3 s varies; check errors and latencies
            assert tuple(w) == KEYS and w["errors"] == 0 and w["p50_ms"] > 0
        server.send_signal(signal.SIGINT)
        stdout, stderr = server.communicate(timeout=60)
        assert server.returncode == 0, stderr
        assert "all servers stopped" in stdout and "NOT enforced (CPU)" in stderr
    finally:
        if server.poll() is None:  # a failed assertion: let it tear down, kill only if it hangs
            server.send_signal(signal.SIGINT)
            try:
                server.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.communicate()
    assert triton_pids(run_dir) == []
    assert not (run_dir / ENDPOINTS).exists()


def test_cli_run_and_sigterm_cleanup(tmp_path):
    plan_path = tmp_path / "plan.json"
    two_workloads().save(plan_path)
    run_dir = (tmp_path / "run").resolve()
    out = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-m", "igniter_opt", "run", str(plan_path), "--backend", "local",
                           "--no-mps", "--duration", "3", "--warmup", "1", "--run-dir", str(run_dir), "-o", str(out)],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    check_report(json.loads(out.read_text()))
    assert "pred. ms" in done.stdout and "NOT enforced (CPU)" in done.stderr
    assert triton_pids(run_dir) == []
    # SIGTERM in the middle of the measurement still tears everything down
    proc = _igniter("run", str(plan_path), "--duration", "30", "--run-dir", str(run_dir))
    deadline = time.monotonic() + 120
    while not (run_dir / ENDPOINTS).exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert triton_pids(run_dir) == []
