"""A deployment of a plan: repositories, MPS, one server per workload, endpoints.json, tear-down.

`deploy(plan, options)` is a context manager: on exit (success, exception, Ctrl-C or SIGTERM, which
is turned into KeyboardInterrupt while it is open) every server it started is stopped, then the MPS
daemon it started. RUN_DIR/endpoints.json says where the servers listen while they are up; `igniter
measure` reads it and it is removed on tear-down.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from igniter_opt.data.errors import InputError
from igniter_opt.data.io import read_json
from igniter_opt.data.plan import Plan
from igniter_opt.data.schema import EndpointsSpec, parse
from igniter_opt.deploy.backends.launcher import Launcher
from igniter_opt.deploy.gputypes import device_indices, plan_types
from igniter_opt.deploy.repository import ModelConfig, queue_delay_us, triton_name, write_repository
from igniter_opt.deploy.types import ENDPOINTS, Deployment, DeployOptions, ServerSpec, shares_warning
from igniter_opt.platform.mps import MpsDaemon, mps_available
from igniter_opt.platform.nvml import gpu_count, nvml_available
from igniter_opt.platform.processes import sigterm_as_interrupt


def _make_launcher(options: DeployOptions, mps: MpsDaemon | None) -> Launcher:
    if options.backend == "docker":
        from igniter_opt.deploy.backends.docker import DockerLauncher, image_ref

        return DockerLauncher(options.run_dir, image=options.image or image_ref(),
                              mps_pipe_dir=mps.pipe_dir if mps else None,
                              ready_timeout_s=max(options.ready_timeout_s, 300.0))
    from igniter_opt.deploy.backends.local import LocalLauncher

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
    devices: list[int | None] = [None] * plan.num_gpus
    if gpu:  # a fleet plan's GPU of type T on a device of type T (--gpu-map), refused before any start
        found, notes = device_indices(plan, options.gpu_map, n_gpus)
        devices = list(found)
        dep.warnings.extend(notes)
        if not plan_types(plan) and not options.gpu_map and plan.num_gpus > n_gpus:
            dep.warnings.append(f"the plan uses {plan.num_gpus} GPUs, this host has {n_gpus}: "
                                f"plan GPU j runs on GPU j mod {n_gpus}")
    elif len(plan_types(plan)) > 1:
        dep.warnings.append(f"the plan's GPU types ({', '.join(plan_types(plan))}) all run on the CPU here")
    with sigterm_as_interrupt():
        mps = MpsDaemon(run_dir) if use_mps else None
        try:
            if mps is not None:
                mps.start()
            with _make_launcher(options, mps) as launcher:
                specs = [_server_spec(w, devices[j], run_dir, options, mps)
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
    """The ray backend (deploy/backends/ray.py): GPUs, MPS and servers are on the cluster's nodes."""
    from igniter_opt.deploy.backends.ray import deploy_on_ray
    from igniter_opt.platform.raycluster import import_ray

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

