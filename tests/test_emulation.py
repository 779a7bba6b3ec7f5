"""The emulated GPU device: service times from the model, the stand-in, CLI checks, one short real run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import triton_pids

from igniter_opt.data.errors import InputError
from igniter_opt.data.instance import load_instance
from igniter_opt.data.plan import Plan
from igniter_opt.deploy.backends.local import find_tritonserver
from igniter_opt.deploy.emulation import (
    EmulatedServer,
    batch_wait_ms,
    dilate,
    emulation_spec,
    expected_p50_ms,
    parse_inject_errors,
    write_emulation,
)
from igniter_opt.deploy.load.generator import LoadOptions
from igniter_opt.deploy.measure import measure
from igniter_opt.deploy.models import EmulatedStandin, input_checksum
from igniter_opt.deploy.monitor import MONITOR_FILE, LiveOptions, read_records
from igniter_opt.deploy.repository import ModelConfig, config_pbtxt, queue_delay_us
from igniter_opt.deploy.session import deploy, read_endpoints
from igniter_opt.deploy.types import ENDPOINTS, DeployOptions
from igniter_opt.model import load_profile, predict
from igniter_opt.solvers.solve import solve

ROOT = Path(__file__).resolve().parent.parent
MOTIVATION = ROOT / "instances" / "paper" / "motivation.json"


@pytest.fixture(scope="module")
def plan() -> Plan:
    return solve(load_instance(MOTIVATION), "greedy")


def test_inject_error_is_validated(plan):
    assert parse_inject_errors(["alexnet=1.5", "vgg19=0.5"], plan) == {"alexnet": 1.5, "vgg19": 0.5}
    for bad, word in [("nope=1.5", "no workload 'nope'"), ("alexnet", "NAME=FACTOR"),
                      ("alexnet=x", "not a number"), ("alexnet=0", "> 0"), ("alexnet=-1", "> 0"),
                      ("alexnet=inf", "finite"), ("alexnet=nan", "finite")]:
        with pytest.raises(InputError, match=word):
            parse_inject_errors([bad], plan)


def test_service_times_are_the_models_predictions(plan):
    profile = load_profile(plan.profile)
    servers = [EmulatedServer(w.name, w.name, w.resource_pct) for w in plan.workloads()]
    spec = emulation_spec(plan, profile, servers, {"alexnet": 1.5}, time_scale=20)
    assert spec["emulated"] is True and spec["time_scale"] == 20 and "EMULATED" in spec["note"]
    for w in plan.workloads():
        times = spec["servers"][w.name]["service_ms"]
        assert len(times) == w.batch
        assert times[-1] == pytest.approx(w.predicted_latency_ms, rel=1e-12)  # the plan's T_inf at its batch
        assert np.all(np.diff(times) > 0)  # a smaller batch is served faster
    assert spec["servers"]["alexnet"]["error"] == 1.5 and spec["servers"]["vgg19"]["error"] == 1.0
    # a shadow at a larger share, active instead of alexnet: it is faster, and its co-runners see it
    shadow = EmulatedServer("alexnet@shadow", "alexnet", 30.0, active=True)
    idle_primary = EmulatedServer("alexnet", "alexnet", 10.0, active=False)
    spec2 = emulation_spec(plan, profile, [servers[0], servers[1], idle_primary, shadow], {})
    assert spec2["servers"]["alexnet@shadow"]["service_ms"][-1] < spec["servers"]["alexnet"]["service_ms"][-1]
    models = [w.model for w in plan.gpus[0].workloads]
    shares = [30.0 if w.name == "alexnet" else w.resource_pct for w in plan.gpus[0].workloads]
    vgg = predict(profile, models, [w.batch for w in plan.gpus[0].workloads], shares).latency_ms[0]
    assert spec2["servers"]["vgg19"]["service_ms"][-1] == pytest.approx(vgg)


def test_dilate_and_expected_p50(plan):
    slow = dilate(plan, 20)
    for w, s in zip(plan.workloads(), slow.workloads()):
        assert (s.rate_rps, s.slo_ms, s.batch, s.resource_pct) == (w.rate_rps / 20, w.slo_ms * 20, w.batch,
                                                                   w.resource_pct)
    alex = next(w for w in slow.workloads() if w.name == "alexnet")  # batch 4 at 25 req/s: fills in 120 ms
    delay = queue_delay_us(alex.slo_ms, alex.batch, alex.rate_rps) / 1000
    assert batch_wait_ms(alex, delay) == (4, pytest.approx(60.0))
    assert batch_wait_ms(alex, 50.0) == (2, pytest.approx(20.0))  # the delay cap binds: batches of 2
    assert expected_p50_ms(alex, [1.0, 2.0, 3.0, 4.0], delay, error=1.5, time_scale=20) == pytest.approx(4 * 30 + 60)


def test_emulated_standin_sleeps_reloads_and_echoes(tmp_path):
    """In-process: the stand-in takes at least its service time, picks up a new file, echoes checksums."""
    def spec(ms: list[float], error: float) -> dict:
        return {"time_scale": 1.0, "servers": {"cls": {"service_ms": ms, "error": error}}}
    path = write_emulation(tmp_path, spec([20.0, 40.0], 1.0))
    standin = EmulatedStandin("resnet50", str(path), "cls")
    x = np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
    t0 = time.perf_counter()
    out = standin(x)
    assert time.perf_counter() - t0 >= 0.040  # batch 2: never faster than the emulated service time
    assert out.shape == (2, 1000) and [int(v) for v in out[:, 0]] == [input_checksum(x[0]), input_checksum(x[1])]
    time.sleep(0.01)
    write_emulation(tmp_path, spec([20.0, 40.0], 3.0))  # the plan changed: error x3
    t0 = time.perf_counter()
    standin(x[:1])
    assert time.perf_counter() - t0 >= 0.060
    standin.close()
    seen = (tmp_path / "seen-cls.txt").read_text().split()
    assert seen == [f"{input_checksum(x[0]):06x}", f"{input_checksum(x[1]):06x}"]


def test_config_names_the_emulation():
    cfg = ModelConfig(name="a", model="alexnet", batch=4, queue_delay_us=10, emulation="/r/emulation.json",
                      server_key="a@shadow1")
    text = config_pbtxt(cfg)
    assert 'key: "igniter_device" value: { string_value: "emulate" }' in text
    assert 'key: "igniter_emulation" value: { string_value: "/r/emulation.json" }' in text
    assert 'key: "igniter_server" value: { string_value: "a@shadow1" }' in text
    assert "KIND_CPU" in text


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "igniter_opt", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.extra("deploy")  # `run` asks for the load generator's client first
def test_cli_refuses_bad_emulation_options(tmp_path, plan):
    path = tmp_path / "plan.json"
    plan.save(path)
    for args, word in [(["--device", "emulate", "--inject-error", "nope=2"], "no workload 'nope'"),
                       (["--device", "emulate", "--inject-error", "alexnet=0"], "> 0"),
                       (["--device", "emulate", "--time-scale", "0.5"], "--time-scale"),
                       (["--inject-error", "alexnet=2"], "are for --device emulate")]:
        done = _cli("run", str(path), "--run-dir", str(tmp_path / "run"), *args)
        assert done.returncode == 2, done.stderr
        assert word in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.extra("deploy")
@pytest.mark.triton
@pytest.mark.slow
@pytest.mark.skipif(find_tritonserver() is None, reason="no tritonserver binary (pip install nvidia-pytriton)")
def test_emulated_run_follows_the_plan(tmp_path, plan):
    """The motivation plan, 20x slower, on the real tritonserver: each p50 at least the emulated service
    time (the stand-ins really sleep it), everything labelled, nothing left behind."""
    run_dir = (tmp_path / "run").resolve()
    slow = dilate(plan, 20)
    with deploy(slow, DeployOptions(run_dir=run_dir, device="emulate", time_scale=20)) as dep:
        assert dep.emulated and not dep.gpu and any("EMULATED GPU" in w for w in dep.warnings)
        endpoints = read_endpoints(run_dir)
        assert endpoints["emulated"] is True and endpoints["emulation"]["time_scale"] == 20
        emulation = json.loads((run_dir / "emulation.json").read_text())
        report, _ = measure(slow, endpoints, LoadOptions(duration_s=3.0, warmup_s=1.0), live=LiveOptions(1.0, 0.5))
    assert report["emulated"] is True
    records = read_records(run_dir / MONITOR_FILE)  # live windows, client side and Triton's counters
    for w in slow.workloads():
        mine = [r for r in records if r.workload == w.name]
        assert mine and all(r.share_pct == w.resource_pct and r.gpu == 0 and r.shadow == "none" for r in mine)
        assert any(r.completed > 0 and r.p99_ms and r.triton and r.triton["requests"] > 0 for r in mine)
    for w in slow.workloads():
        row = next(r for r in report["workloads"] if r["name"] == w.name)
        n, _ = batch_wait_ms(w, queue_delay_us(w.slo_ms, w.batch, w.rate_rps) / 1000)
        assert row["errors"] == 0
        assert row["p50_ms"] >= emulation["servers"][w.name]["service_ms"][n - 1] * 20
        assert report["emulation"]["expected_p50_ms"][w.name] > 0
    assert not (run_dir / ENDPOINTS).exists() and not (run_dir / "emulation.json").exists()
    assert triton_pids(run_dir) == []
