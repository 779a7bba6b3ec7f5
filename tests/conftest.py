"""Shared fixtures: the reference values published with the V100 profile, and the bundled profile.

Everything a test reads lives in this repository (tests/data, the bundled profiles), so a fresh
clone runs every test that does not need a GPU or docker. A test that needs an optional extra is
marked `@pytest.mark.extra("deploy")` (or plot, cluster, triton, service): without it, it is skipped with
a reason naming the extra and the install command.
"""

import importlib.util
import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from igniter_opt.model import load_profile

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
RAW_V100 = ROOT / "igniter_opt" / "profiles" / "v100-raw.jsonl"


# The time limit of a solve whose test asserts a proven optimum: a hang guard, not a speed goal
# (a cold numba cache or a loaded machine must not fail it); the times are in
# benchmarks/bench_limits.py and benchmarks/bench_exact.py.
HANG_GUARD_S = 600.0

# The modules each extra of pyproject.toml brings that tests rely on.
EXTRAS = {
    "deploy": ("tritonclient", "grpc", "docker", "pynvml", "prometheus_client", "PIL"),
    "plot": ("matplotlib",),
    "cluster": ("ray",),
    "triton": ("pytriton",),
    "service": ("fastapi", "uvicorn", "httpx", "prometheus_client"),
}


def _missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):
        return True


def pytest_configure(config: pytest.Config) -> None:  # noqa: ARG001 (pytest's hook signature)
    """Ctrl-C as a terminal gives it, whatever started the suite: a shell without job control
    starts `cmd &` with SIGINT ignored, Python then installs no KeyboardInterrupt handler, and
    the children it starts inherit the ignore, so every Ctrl-C test would fail. A handler (not
    an ignore) is reset to the default at exec, so the programs the tests start get Ctrl-C too."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a test marked `extra(NAME, ...)` when one of those extras is not installed."""
    for mark in item.iter_markers("extra"):
        for name in mark.args:
            missing = [m for m in EXTRAS[name] if _missing(m)]
            if missing:
                pytest.skip(f"needs the '{name}' extra ({', '.join(missing)} missing): "
                            f"pip install -e '.[{name}]'")


@pytest.fixture(scope="session", autouse=True)
def nothing_of_ours_left(tmp_path_factory):
    """The suite's own teardown: once every test has run, no tritonserver or python backend stub
    started under this session's temporary folder is still alive (waited for up to 30 s: a stub
    notices its server's death on a poll). Leftovers are killed, then reported as an error. Only
    our processes are looked at (their command lines name this session's folder)."""
    yield
    base = tmp_path_factory.getbasetemp().resolve()
    deadline = time.monotonic() + 30
    while triton_pids(base) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = triton_pids(base)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    assert not left, f"the test suite left servers or python stubs running (killed now): pids {left}"


@pytest.fixture(scope="session")
def reference() -> dict:
    return json.loads((DATA / "v100-reference-values.json").read_text())


@pytest.fixture(scope="session")
def v100():
    return load_profile("v100")


def fixed_split(demands):
    """The demands as the pricing tests' subjects always were: the sizing's split fixed (full-GPU
    replicas left out, each rest an ordinary workload), so no rate levels of split workloads
    (exact's own items since issue 23, tested in test_exact_splits) enter the kernel comparisons."""
    import dataclasses

    return [dataclasses.replace(d, replica_of=None) for d in demands if not d.full_gpu]


@cache
def mixed_pricer(n: int, seed: int, policy: str = "paper", aggregate: bool = True, settings=None):
    """The branch-and-price Pricer of `mixed_instance(n, seed)` on the V100 (types aggregated
    unless told), built once per session and settings (ExactSettings; None: the defaults); the
    pricing tests' common subject."""

    from igniter_opt.bench.generate import mixed_instance
    from igniter_opt.solvers.exact.catalogue import catalogue
    from igniter_opt.solvers.exact.pricing import Pricer
    from igniter_opt.solvers.exact.settings import ExactSettings
    from igniter_opt.solvers.sizing import size_instance

    profile = load_profile("v100")
    cat = catalogue(profile, fixed_split(size_instance(mixed_instance(n, seed), profile)), policy, aggregate)
    # caps: a type's workload count, or a split workload's rate level's most copies in one column
    return Pricer(profile.hardware, cat.options, cat.option_type, cat.caps, settings or ExactSettings())


def fake_mps_control(env_prefix: str) -> str:
    """A stand-in for nvidia-cuda-mps-control: it records argv, the environment variables starting
    with `env_prefix` and stdin (one JSON line per call in $FAKE_MPS_LOG), creates the control pipe
    on -d and removes it on "quit"."""
    return f"""#!/usr/bin/env python3
import json, os, sys
from pathlib import Path
stdin = "" if "-d" in sys.argv else sys.stdin.read()
env = {{k: v for k, v in os.environ.items() if k.startswith({env_prefix!r})}}
with open(os.environ["FAKE_MPS_LOG"], "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "env": env, "stdin": stdin}}) + "\\n")
control = Path(env["CUDA_MPS_PIPE_DIRECTORY"]) / "control"
if "-d" in sys.argv:
    control.touch()
elif stdin == "quit\\n":
    control.unlink(missing_ok=True)
"""


def triton_pids(run_dir: Path) -> list[int]:
    """tritonserver or python stub processes whose command line mentions the run directory."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(run_dir) in cmd and ("tritonserver" in cmd or "triton_python_backend_stub" in cmd):
            found.append(int(entry.name))
    return found


RAY_STORE = 80 * 2**20  # object store per Ray node: the minimum Ray accepts, plenty for these tests


@contextmanager
def local_ray_cluster(nodes: list[dict[str, Any]]) -> Iterator[Any]:
    """A local multi-node Ray cluster (ray.cluster_utils): a head with 1 CPU and no GPU plus one worker
    node per `add_node` keyword dict (`igniter_workers`, in order), connected; shut down after."""
    import ray
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 0, "include_dashboard": False,
                                                      "object_store_memory": RAY_STORE})
    try:
        c.igniter_workers = [c.add_node(object_store_memory=RAY_STORE, **node) for node in nodes]
        c.wait_for_nodes(timeout=60)
        ray.init(address=c.address, log_to_driver=False)
        yield c
    finally:
        ray.shutdown()
        c.shutdown()


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) a process has used: its own threads included, children not.
    Tests wait on this, not on the wall clock, before a Ctrl-C, so that a busy machine (a CPU
    hog beside the suite) delays the signal as much as it delays the work it must interrupt."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def interrupt_after_cpu(seconds: float, pid: int | None = None, wall_cap: float = 120.0) -> None:
    """Send SIGINT to `pid` (default: this process, from a helper thread) once it has used
    `seconds` of CPU since now, or after `wall_cap` s at the latest; returns at once when pid is
    None (the thread waits), else blocks until the signal is sent or the process is gone."""
    import threading

    target = os.getpid() if pid is None else pid
    start = cpu_seconds(pid)
    give_up = time.monotonic() + wall_cap

    def wait_and_send() -> None:
        try:
            while cpu_seconds(pid) - start < seconds and time.monotonic() < give_up:
                time.sleep(0.05)
            os.kill(target, signal.SIGINT)
        except (OSError, ProcessLookupError):  # the process ended first
            pass

    if pid is None:
        threading.Thread(target=wait_and_send, daemon=True).start()
    else:
        wait_and_send()
