"""Deploy building blocks without servers: configs, models, docker specs, load arithmetic, report."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from igniter_opt.data.errors import InputError
from igniter_opt.data.plan import GpuPlan, PlacedWorkload, Plan
from igniter_opt.deploy.backends.docker import container_command, container_spec, image_ref
from igniter_opt.deploy.backends.launcher import free_port
from igniter_opt.deploy.backends.local import (
    TritonInstall,
    find_tritonserver,
    owned_shm_prefix,
    python_libdir,
    server_command,
    server_env,
    sweep_orphan_shm,
)
from igniter_opt.deploy.load.generator import LoadOptions, Target, WorkloadResult, arrivals, make_shards, summarize
from igniter_opt.deploy.models import SPECS, cpu_standin, spec_for
from igniter_opt.deploy.report import KEYS, measurement_report
from igniter_opt.deploy.repository import ModelConfig, config_pbtxt, queue_delay_us, triton_name, write_repository
from igniter_opt.deploy.session import read_endpoints
from igniter_opt.deploy.types import DeployOptions, ServerSpec, shares_warning


def test_model_shapes_match_the_profile_sizes():
    assert spec_for("resnet50").input_bytes == 602112
    for m in ("alexnet", "resnet50", "vgg19"):
        assert SPECS[m].input_dims == (3, 224, 224) and SPECS[m].output_dims == (1000,)
    assert spec_for("ssd300_vgg16") is SPECS["ssd"]
    assert SPECS["ssd"].input_bytes == 1080000 and SPECS["ssd"].output_bytes == 2968880
    with pytest.raises(KeyError):
        spec_for("nope")


@pytest.mark.parametrize("model", ["alexnet", "resnet50", "vgg19", "ssd", "identity"])
def test_cpu_standin_keeps_shapes_and_is_deterministic(model):
    spec = spec_for(model)
    x = np.random.default_rng(1).standard_normal((3, *spec.input_dims)).astype(np.float32)
    y = cpu_standin(model)(x)
    assert y.shape == (3, *spec.output_dims) and y.dtype == np.float32
    np.testing.assert_allclose(y[1:2], cpu_standin(model)(x[1:2]), rtol=1e-4, atol=1e-5)


def test_queue_delay_rule():
    assert queue_delay_us(slo_ms=40, batch=1, rate_rps=400) == 0          # never wait for batch 1
    assert queue_delay_us(slo_ms=40, batch=8, rate_rps=400) == 17500      # 7 / 400 s fills the batch
    assert queue_delay_us(slo_ms=10, batch=8, rate_rps=100) == 5000       # capped at SLO / 2


def test_config_pbtxt_exact():
    cfg = ModelConfig(name="resnet50", model="resnet50", batch=8, queue_delay_us=17500, kind="KIND_GPU", gpu=1,
                      fp16=True)
    assert config_pbtxt(cfg) == (
        'name: "resnet50"\n'
        'backend: "python"\n'
        "max_batch_size: 8\n"
        'input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 3, 224, 224 ] } ]\n'
        'output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 1000 ] } ]\n'
        "instance_group [ { count: 1 kind: KIND_GPU gpus: [ 1 ] } ]\n"
        "dynamic_batching {\n"
        "  preferred_batch_size: [ 8 ]\n"
        "  max_queue_delay_microseconds: 17500\n"
        "}\n"
        'parameters { key: "igniter_model" value: { string_value: "resnet50" } }\n'
        'parameters { key: "igniter_device" value: { string_value: "gpu" } }\n'
        'parameters { key: "igniter_fp16" value: { string_value: "true" } }\n')
    cpu = config_pbtxt(ModelConfig(name="d", model="ssd300_vgg16", batch=2, queue_delay_us=0, response_cache=True))
    assert "kind: KIND_CPU }" in cpu and "dims: [ 8732, 85 ]" in cpu and "response_cache { enable: true }" in cpu
    with pytest.raises(ValueError):
        ModelConfig(name="x", model="alexnet", batch=1, queue_delay_us=0, kind="KIND_TPU")


def test_write_repository(tmp_path):
    root = write_repository(tmp_path / "repo", ModelConfig(name="a-1", model="alexnet", batch=4, queue_delay_us=100))
    assert (root / "a-1" / "config.pbtxt").read_text().startswith('name: "a-1"')
    model_py = (root / "a-1" / "1" / "model.py").read_text()
    assert "class TritonPythonModel" in model_py and "igniter_opt" not in model_py.split('"""', 2)[2]
    assert triton_name("my workload/1") == "my_workload_1"


def _spec(gpu=0, env=None):
    return ServerSpec(name="w1", model_name="w1", repository=Path("/runs/r/repos/w1"), gpu=gpu, share_pct=37.5,
                      env=env if env is not None else {"CUDA_MPS_PIPE_DIRECTORY": "/runs/r/mps/pipe",
                                                       "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": "37.5"})


def test_docker_container_spec_gpu_with_mps():
    spec = container_spec(_spec(), image_ref("24.08-pyt-python-py3"), (18000, 18001), Path("/runs/r"),
                          Path("/runs/r/mps/pipe"))
    assert spec == {
        "image": "nvcr.io/nvidia/tritonserver:24.08-pyt-python-py3",
        "command": container_command(True),
        "name": "igniter-w1-18000",
        "detach": True,
        "environment": {"CUDA_MPS_PIPE_DIRECTORY": "/runs/r/mps/pipe", "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": "37.5",
                        "NVIDIA_VISIBLE_DEVICES": "0"},
        "device_requests": [{"Driver": "nvidia", "DeviceIDs": ["0"], "Capabilities": [["gpu"]]}],
        "ipc_mode": "host",
        "ports": {"8000/tcp": 18000, "8001/tcp": 18001},
        "volumes": {"/runs/r/repos/w1": {"bind": "/models", "mode": "ro"},
                    "/runs/r/mps/pipe": {"bind": "/runs/r/mps/pipe", "mode": "rw"}},
        "labels": {"igniter-opt.run-dir": "/runs/r"},
        "shm_size": "1g",
    }
    assert container_command(True)[-1].endswith("exec tritonserver --model-repository=/models --exit-timeout-secs=5")


def test_docker_container_spec_cpu_without_mps():
    spec = container_spec(_spec(gpu=None, env={}), "img:1", (1, 2), Path("/r"), None)
    assert spec["device_requests"] == [] and spec["environment"] == {}
    assert spec["command"] == ["tritonserver", "--model-repository=/models", "--exit-timeout-secs=5"]
    assert list(spec["volumes"]) == ["/runs/r/repos/w1"] and spec["ipc_mode"] == "host"


def test_tritonserver_discovery_order(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "tritonserver"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert find_tritonserver(fake).source == "option"
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    assert find_tritonserver().source == "path"
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    found = find_tritonserver()
    if found is not None:  # nvidia-pytriton installed
        assert found.source == "pytriton" and found.binary.name == "tritonserver"


def test_server_command_and_env():
    install = TritonInstall(binary=Path("/x/bin/tritonserver"), source="pytriton", lib_dirs=[Path("/x/libs")],
                            caches=Path("/x/caches"))
    argv = server_command(install, Path("/r/repo"), (1, 2, 3), Path("/r/backends"), "p_")
    assert argv == ["/x/bin/tritonserver", "--model-repository=/r/repo", "--http-port=1", "--grpc-port=2",
                    "--metrics-port=3", "--exit-timeout-secs=5", "--backend-config=python,shm-region-prefix-name=p_",
                    "--cache-config=local,size=16777216", "--cache-directory=/x/caches",
                    "--backend-directory=/r/backends"]
    env = server_env(install, {"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": "50"}, base={"PATH": "/usr/bin",
                                                                                  "LD_LIBRARY_PATH": "/old"})
    assert env["LD_LIBRARY_PATH"] == f"{python_libdir()}:/x/libs:/old"
    assert env["PATH"].startswith(str(Path(sys.executable).parent) + ":")
    assert env["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"] == "50"


def test_free_port_is_bindable():
    """The port it returns can really be bound and listened on, and it is not one in use."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        for _ in range(20):
            port = free_port()
            assert 0 < port < 65536 and port != taken
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", port))  # OSError (EADDRINUSE) if the port were not free
                s.listen()


def test_arrivals_constant_and_poisson():
    rng = np.random.default_rng(0)
    c = arrivals(100.0, 2.0, "constant", rng)
    assert c.size == 200 and np.allclose(np.diff(c), 0.01)
    p = arrivals(1000.0, 10.0, "poisson", rng)
    assert abs(p.size - 10000) < 400 and p.max() < 10.0
    assert abs(np.diff(p).mean() - 1e-3) < 1e-4


def test_shards_split_fast_streams_and_interleave():
    t = Target("w", "w", "x:1", 5000.0, 10.0, (4,))
    shards = make_shards([t], LoadOptions(duration_s=1, warmup_s=0, max_rps_per_process=2000))
    assert len(shards) == 3
    merged = np.sort(np.concatenate([s.arrivals for s in shards]))
    assert merged.size == 5000 and np.allclose(np.diff(merged), 1 / 5000)


def test_summarize_definitions():
    t = Target("w", "w", "x:1", 10.0, 50.0, (4,))
    opts = LoadOptions(duration_s=1.0, warmup_s=1.0)
    arr = np.arange(0, 2.0, 0.1)                       # 20 arrivals, 10 in the window [1, 2)
    lat = np.where(arr >= 1.5, 0.060, 0.010)           # the last 5 break the 50 ms SLO
    ok = np.ones(arr.size, bool)
    ok[2] = False                                      # one warm-up failure still counts as an error
    r = summarize(t, arr, arr + lat, ok, {"boom": 1}, opts)
    assert r.errors == 1 and r.measured == 10 and r.error_samples == ["boom"]
    assert r.slo_violation_pct == pytest.approx(50.0)
    assert r.p50_ms == pytest.approx(35.0) and r.max_ms == pytest.approx(60.0)
    assert r.measured_throughput_rps == pytest.approx(10.0)   # completions at 1.01..1.96 s (0.91 is out)


def test_report_keys_exact():
    plan = Plan("i", "s", "v100", "feasible", [GpuPlan([PlacedWorkload("a", "alexnet", 4, 10.0, 100.0, 15.0,
                                                                     predicted_latency_ms=6.9)])])
    res = WorkloadResult("a", 100.0, 15.0, 10, 10, 0, 99.0, 1.0, 2.0, 3.0, 4.0, 0.0)
    report = measurement_report(plan, [res], None)
    assert list(report) == ["workloads", "gpu"] and report["gpu"] is None
    assert tuple(report["workloads"][0]) == KEYS
    assert report["workloads"][0]["predicted_latency_ms"] == 6.9
    json.dumps(report)


def test_shares_warning_and_options(tmp_path):
    assert "NOT enforced (CPU)" in shares_warning(gpu=False, mps=True)
    assert "NOT enforced" in shares_warning(gpu=True, mps=False)
    assert shares_warning(gpu=True, mps=True) is None
    with pytest.raises(InputError):
        DeployOptions(backend="k8s")
    with pytest.raises(InputError):
        read_endpoints(tmp_path)


@pytest.mark.extra("deploy")
def test_cli_errors_are_one_line(tmp_path):
    import subprocess

    plan = Path(__file__).resolve().parents[1] / "benchmarks" / "plans" / "cpu-e2e.json"
    stale = tmp_path / "stale"
    stale.mkdir()
    (stale / "endpoints.json").write_text(json.dumps({"servers": [
        {"name": n, "model_name": n, "grpc_url": "127.0.0.1:1", "gpu": None} for n in ("resnet50-a", "ssd-b")]}))
    cli = [sys.executable, "-m", "igniter_opt"]
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    done = subprocess.run([*cli, "measure", str(plan), "--run-dir", str(stale), "--duration", "1"],
                          capture_output=True, text=True, timeout=120, cwd=elsewhere)
    assert done.returncode == 1 and "UNAVAILABLE" in done.stderr and "Traceback" not in done.stderr
    # an endpoints.json that does not name its run dir: live records go to the one it was read from
    assert not any(elsewhere.iterdir())
    done = subprocess.run([*cli, "measure", str(plan), "--run-dir", str(tmp_path / "none")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "endpoints.json: not found" in done.stderr
    done = subprocess.run([*cli, "run", str(plan), "--distribution", "uniform"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "distribution" in done.stderr


def test_bundled_tritonserver_is_found_without_importing_pytriton(tmp_path, monkeypatch):
    """nvidia-pytriton's __init__ imports its client's dependencies; a GPU host's minimal wheel set
    lacks them. Only the bundled binary is needed, so the package is located, never imported."""
    pkg = tmp_path / "site" / "pytriton"
    binary = pkg / "tritonserver" / "bin" / "tritonserver"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    (pkg / "__init__.py").write_text("raise ImportError('No module named wrapt')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "pytriton", raising=False)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    found = find_tritonserver()
    assert found is not None and found.source == "pytriton"
    assert found.binary == binary.resolve()
    assert "pytriton" not in sys.modules


def test_regions_of_a_launcher_that_is_gone_are_swept_and_no_other(tmp_path: Path) -> None:
    """A launcher killed by SIGKILL leaves its servers' shm regions; the next one removes those
    whose owner is dead, never a live owner's, nor regions named otherwise (the service's)."""
    import os
    import subprocess

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    names = [f"igniter_m_0123abcd_owner{dead.pid}_stub_1", f"igniter_m_x_89abcdef_owner{os.getpid()}_stub_1",
             "igniter_a-s5_stub_1", "other_0123abcd_owner1_"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    assert sweep_orphan_shm(tmp_path) == [names[0]]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[1:])
    prefix = owned_shm_prefix("my_model")  # a model name with underscores still names its owner
    assert prefix.startswith("igniter_my_model_") and sweep_orphan_shm(tmp_path) == []
    (tmp_path / f"{prefix}stub").write_bytes(b"x")
    assert sweep_orphan_shm(tmp_path) == []  # this process is alive
