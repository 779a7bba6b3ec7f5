"""A deployment of a plan: repositories, MPS, one server per workload, endpoints.json, tear-down.

`deploy(plan, options)` is a context manager: on exit (success, exception, Ctrl-C or SIGTERM, which
is turned into KeyboardInterrupt while it is open) every server it started is stopped, then the MPS
daemon it started. RUN_DIR/endpoints.json says where the servers listen while they are up; `igniter
measure` reads it and it is removed on tear-down.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from igniter_opt.data.errors import InputError, require
from igniter_opt.data.io import read_json
from igniter_opt.data.plan import Plan
from igniter_opt.data.schema import EndpointsSpec, parse
from igniter_opt.deploy.launcher import Endpoint, Launcher, ServerSpec
from igniter_opt.deploy.repository import ModelConfig, queue_delay_us, triton_name, write_repository
from igniter_opt.processes import sigterm_as_interrupt
from igniter_opt.profiling.mps import MpsDaemon, mps_available
from igniter_opt.profiling.nvml import gpu_count, nvml_available

ENDPOINTS = "endpoints.json"
BACKENDS = ("local", "docker", "ray")


@dataclass
class DeployOptions:
    """How to deploy: backend, where, MPS or not, which binary/image, device and precision."""

    backend: str = "local"
    run_dir: Path = Path("igniter-run")
    mps: bool = True
    tritonserver: str | None = None
    image: str | None = None
    device: str = "auto"              # auto | cpu | gpu
    fp16: bool = False
    ready_timeout_s: float = 120.0
    response_cache: bool = False      # Triton's response cache (the load benchmark's trivial model)
    address: str | None = None        # ray: the cluster (else $RAY_ADDRESS, else a local one)
    cpus_per_server: float = 0.5      # ray: CPUs reserved per server (bundle CPU = this x members)
    placement_timeout_s: float = 30.0 # ray: how long the placement group may stay pending

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise InputError(f"--backend: must be one of {BACKENDS}, got {self.backend!r}")
        if self.cpus_per_server <= 0:
            raise InputError(f"--cpus-per-server: must be > 0, got {self.cpus_per_server}")
        if self.backend == "docker":
            require("docker", "deploy", "--backend docker")
        if self.device == "gpu":
            require("pynvml", "deploy", "--device gpu (NVML)")
        if self.device not in ("auto", "cpu", "gpu"):
            raise InputError(f"--device: must be auto, cpu or gpu, got {self.device!r}")
        self.run_dir = Path(self.run_dir).resolve()


@dataclass
class Deployment:
    """What is up: the endpoints, whether GPUs and MPS shares are in use, and warnings to show."""

    plan: Plan
    run_dir: Path
    backend: str
    gpu: bool
    mps: bool
    endpoints: list[Endpoint] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)   # backend-specific (ray: placement group, nodes)

    def to_dict(self) -> dict[str, Any]:
        return {"instance": self.plan.instance, "backend": self.backend, "gpu": self.gpu, "mps": self.mps,
                "run_dir": str(self.run_dir), "started_unix": time.time(), **self.extra,
                "servers": [e.to_dict() for e in self.endpoints]}


def shares_warning(gpu: bool, mps: bool) -> str | None:
    """The loud line to print when MPS shares are not enforced, else None."""
    if not gpu:
        return "no GPU on this host: models run on the CPU and MPS shares are NOT enforced (CPU)"
    if not mps:
        return "MPS is off: every server may use the whole GPU, the plan's shares are NOT enforced"
    return None


def _make_launcher(options: DeployOptions, mps: MpsDaemon | None) -> Launcher:
    if options.backend == "docker":
        from igniter_opt.deploy.docker_backend import DockerLauncher, image_ref  # noqa: PLC0415

        return DockerLauncher(options.run_dir, image=options.image or image_ref(),
                              mps_pipe_dir=mps.pipe_dir if mps else None,
                              ready_timeout_s=max(options.ready_timeout_s, 300.0))
    from igniter_opt.deploy.local import LocalLauncher  # noqa: PLC0415

    return LocalLauncher(options.run_dir, options.tritonserver, ready_timeout_s=options.ready_timeout_s)


@contextmanager
def deploy(plan: Plan, options: DeployOptions) -> Iterator[Deployment]:
    """Start one server per workload of the plan; stop everything on exit."""
    if not plan.workloads():
        raise InputError("the plan has no workloads to deploy")
    names = [w.name for w in plan.workloads()]
    if len(set(map(triton_name, names))) != len(names):
        raise InputError("workload names must be unique to deploy a plan")
    if options.backend == "ray":
        with _deploy_ray(plan, options) as dep:
            yield dep
        return
    has_gpu = nvml_available()
    if options.device == "gpu" and not has_gpu:
        raise InputError("--device gpu: NVML sees no GPU on this host")
    gpu = options.device == "gpu" or (options.device == "auto" and has_gpu)
    use_mps = gpu and options.mps
    if use_mps and not mps_available():
        raise InputError("MPS requested but nvidia-cuda-mps-control is not on PATH (use --no-mps)")
    run_dir = options.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    dep = Deployment(plan=plan, run_dir=run_dir, backend=options.backend, gpu=gpu, mps=use_mps)
    warning = shares_warning(gpu, use_mps)
    if warning:
        dep.warnings.append(warning)
    n_gpus = gpu_count() if gpu else 0
    if gpu and plan.num_gpus > n_gpus:
        dep.warnings.append(f"the plan uses {plan.num_gpus} GPUs, this host has {n_gpus}: "
                            f"plan GPU j runs on GPU j mod {n_gpus}")
    with sigterm_as_interrupt():
        mps = MpsDaemon(run_dir) if use_mps else None
        try:
            if mps is not None:
                mps.start()
            with _make_launcher(options, mps) as launcher:
                specs = [_server_spec(w, j % n_gpus if gpu else None, run_dir, options, mps)
                         for j, g in enumerate(plan.gpus) for w in g.workloads]
                dep.endpoints.extend(launcher.start_all(specs))
                (run_dir / ENDPOINTS).write_text(json.dumps(dep.to_dict(), indent=2) + "\n")
                try:
                    yield dep
                finally:
                    (run_dir / ENDPOINTS).unlink(missing_ok=True)
        finally:
            if mps is not None:
                mps.stop()


@contextmanager
def _deploy_ray(plan: Plan, options: DeployOptions) -> Iterator[Deployment]:
    """The ray backend (deploy/ray_backend.py): GPUs, MPS and servers are on the cluster's nodes."""
    from igniter_opt.deploy.ray_backend import deploy_on_ray  # noqa: PLC0415
    from igniter_opt.raycluster import import_ray  # noqa: PLC0415

    import_ray()  # the install hint before anything else
    run_dir = options.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    dep = Deployment(plan=plan, run_dir=run_dir, backend="ray", gpu=False, mps=False)
    with sigterm_as_interrupt(), deploy_on_ray(plan, options, dep):
        (run_dir / ENDPOINTS).write_text(json.dumps(dep.to_dict(), indent=2) + "\n")
        try:
            yield dep
        finally:
            (run_dir / ENDPOINTS).unlink(missing_ok=True)


def _server_spec(w: Any, gpu: int | None, run_dir: Path, options: DeployOptions,
                 mps: MpsDaemon | None) -> ServerSpec:
    name = triton_name(w.name)
    cfg = ModelConfig(name=name, model=w.model, batch=w.batch,
                      queue_delay_us=queue_delay_us(w.slo_ms, w.batch, w.rate_rps),
                      kind="KIND_GPU" if gpu is not None else "KIND_CPU",
                      gpu=0 if options.backend == "docker" else (gpu or 0), fp16=options.fp16,
                      response_cache=options.response_cache)
    repo = write_repository(run_dir / "repos" / name, cfg)
    env = mps.client_env(w.resource_pct) if mps is not None else {}
    return ServerSpec(name=w.name, model_name=name, repository=repo, gpu=gpu, share_pct=w.resource_pct,
                      env=env)


def read_endpoints(run_dir: str | Path) -> dict[str, Any]:
    """The endpoints.json a running `igniter deploy` wrote (InputError when there is none)."""
    path = Path(run_dir) / ENDPOINTS
    if not path.exists():
        raise InputError(f"{path}: not found: start the servers with `igniter deploy PLAN --run-dir "
                         f"{run_dir}` first")
    data = read_json(path, "an endpoints file")
    parse(EndpointsSpec, data, str(path), what="endpoints.json")
    return data

