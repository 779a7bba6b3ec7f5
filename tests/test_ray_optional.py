"""Ray is an extra: the core never imports it, and the ray backend says how to install it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import fake_mps_control

ROOT = Path(__file__).resolve().parent.parent

RUN = """
import sys
{block}
from igniter_opt.cli import main
sys.argv = ["igniter", *{args!r}]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("RAY_IMPORTED" if "ray" in sys.modules else "RAY_NOT_IMPORTED", code)
"""


def _igniter(args: list[str], block_ray: bool, cwd: Path) -> subprocess.CompletedProcess:
    code = RUN.format(block="sys.modules['ray'] = None  # import ray -> ImportError" if block_ray else "", args=args)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=cwd,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "COLUMNS": "200"})


def test_core_commands_never_import_ray(tmp_path):
    done = _igniter(["solve", str(ROOT / "instances" / "paper" / "motivation.json"), "-o", str(tmp_path / "p.json")],
                    block_ray=False, cwd=tmp_path)
    assert done.stdout.strip().endswith("RAY_NOT_IMPORTED 0"), done.stderr
    done = _igniter(["solve", str(ROOT / "instances" / "paper" / "motivation.json")], block_ray=True, cwd=tmp_path)
    assert done.stdout.strip().endswith("0"), done.stderr


@pytest.mark.extra("deploy")  # `run` needs the load client before it gets to Ray
def test_ray_backend_without_ray_says_how_to_install(tmp_path):
    plan = tmp_path / "p.json"
    assert _igniter(["solve", str(ROOT / "instances" / "paper" / "motivation.json"), "-o", str(plan)],
                    block_ray=True, cwd=tmp_path).stdout.strip().endswith("0")
    done = _igniter(["run", str(plan), "--backend", "ray", "--run-dir", str(tmp_path / "run")], block_ray=True,
                    cwd=tmp_path)
    assert done.stdout.strip().endswith("2"), (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if "igniter-opt[cluster]" in line]
    assert len(lines) == 1 and "pip install 'igniter-opt[cluster]'" in lines[0], done.stderr
    assert "Traceback" not in done.stderr


# ---- pure parts of the ray backend (no Ray needed) ------------------------------------------------

import pytest  # noqa: E402

from igniter_opt.data.errors import InputError  # noqa: E402
from igniter_opt.data.plan import GpuPlan, PlacedWorkload, Plan  # noqa: E402
from igniter_opt.deploy.backends.ray import actor_gpus, bundles_for, capacity_problem  # noqa: E402
from igniter_opt.platform.raycluster import probe as _probe  # noqa: E402


def test_bundles_and_actor_gpus():
    w = lambda n, s: PlacedWorkload(n, "alexnet", batch=2, resource_pct=s, rate_rps=5, slo_ms=100)  # noqa: E731
    plan = Plan("p", "t", "v100", "feasible",
                [GpuPlan([w("a", 37.5), w("b", 30), w("c", 32.5)]), GpuPlan([w("d", 100)])])
    assert bundles_for(plan, 0.5) == [{"GPU": 1.0, "CPU": 1.5}, {"GPU": 1.0, "CPU": 0.5}]
    assert [actor_gpus(x.resource_pct) for x in plan.gpus[0].workloads] == [0.375, 0.3, 0.325]
    assert sum(actor_gpus(x.resource_pct) for x in plan.gpus[0].workloads) <= 1.0
    assert actor_gpus(100) == 1.0 and actor_gpus(33.33333) == 0.3333


def test_capacity_problem_says_what_is_missing():
    two = [{"GPU": 2.0, "CPU": 4.0}, {"GPU": 2.0, "CPU": 4.0}]
    assert capacity_problem([{"GPU": 1, "CPU": 1}] * 4, two) is None
    assert capacity_problem([{"GPU": 1, "CPU": 1}] * 6, two).startswith(
        "the plan needs 6 GPUs, the Ray cluster has 4: 2 missing")
    assert capacity_problem([{"GPU": 1, "CPU": 1}] * 2, [{"CPU": 8.0}]).startswith(
        "the plan needs 2 GPUs, the Ray cluster has 0: 2 missing")
    # GPUs enough in total, but no node has the CPUs for a bundle / for both bundles together
    assert "lower --cpus-per-server" in capacity_problem([{"GPU": 1, "CPU": 5}], two)
    assert "lower --cpus-per-server" in capacity_problem([{"GPU": 1, "CPU": 3}] * 3, two)
    assert capacity_problem([{"GPU": 1, "CPU": 3}] * 2, two) is None


def test_unreachable_address_is_refused_at_once():
    with pytest.raises(InputError, match="no Ray cluster answers there"):
        _probe("127.0.0.1:1")
    with pytest.raises(InputError, match="expected HOST:PORT"):
        _probe("nonsense", "RAY_ADDRESS")


def test_a_node_without_the_instance_file_solves_the_drivers_copy(tmp_path):
    from igniter_opt.bench.pool import solve_task
    from igniter_opt.bench.raypool import _ray_task

    src = ROOT / "instances" / "paper" / "motivation.json"
    here = _ray_task(solve_task, str(src), b"", "greedy", 5.0)
    elsewhere = _ray_task(solve_task, str(tmp_path / "not-on-this-node" / "motivation.json"), src.read_bytes(),
                          "greedy", 5.0)
    assert here["gpus"] == elsewhere["gpus"] and here["status"] == elsewhere["status"]
    assert not list(Path("/tmp").glob("igniter-batch-*motivation*"))
    missing = _ray_task(solve_task, str(tmp_path / "nowhere.json"), b"", "greedy", 5.0)
    assert missing["status"] == "error"


FAKE_CONTROL = fake_mps_control("CUDA_")


def test_node_setup_starts_mps_on_a_gpu_node_and_teardown_stops_it(tmp_path, monkeypatch):
    """What the per-node tasks do on a GPU node (NVML answered yes, MPS control a recording stand-in)."""
    import json

    pytest.importorskip("ray", reason="needs the 'cluster' extra: pip install -e '.[cluster]'")
    from igniter_opt.deploy.backends.ray import node_setup, node_teardown
    from igniter_opt.platform import nvml

    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "nvidia-cuda-mps-control").write_text(FAKE_CONTROL)
    (bindir / "nvidia-cuda-mps-control").chmod(0o755)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_MPS_LOG", str(log))
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")  # what Ray may leave in a worker: not for the daemon
    monkeypatch.setattr(nvml, "nvml_available", lambda: True)
    run = tmp_path / "r"
    out = node_setup(str(run), "auto", True)
    assert out["gpu"] and out["mps"] and out["started"] and out["error"] is None
    assert out["pipe_dir"] == str(run / "mps" / "pipe")
    start = json.loads(log.read_text().splitlines()[0])
    assert start["argv"] == ["-d"] and "CUDA_VISIBLE_DEVICES" not in start["env"]
    assert start["env"]["CUDA_MPS_PIPE_DIRECTORY"] == out["pipe_dir"]
    node_teardown(str(run), out["pipe_dir"])
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls[-1]["stdin"] == "quit\n" and calls[-1]["env"]["CUDA_MPS_PIPE_DIRECTORY"] == out["pipe_dir"]
    assert not (run / "mps" / "pipe" / "control").exists()
    # no GPU on the node: no daemon; --device gpu there is an error naming the node
    monkeypatch.setattr(nvml, "nvml_available", lambda: False)
    assert node_setup(str(run), "auto", True)["mps"] is False
    assert "NVML sees no GPU on node" in node_setup(str(run), "gpu", True)["error"]
