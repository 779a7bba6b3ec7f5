"""A deployment of a plan: repositories, MPS, one server per workload, endpoints.json, tear-down.

`deploy(plan, options)` is a context manager: on exit (success, exception, Ctrl-C or SIGTERM, which
is turned into KeyboardInterrupt while it is open) every server it started is stopped, then the MPS
daemon it started. RUN_DIR/endpoints.json says where the servers listen while they are up; `igniter
measure` reads it and it is removed on tear-down.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from igniter_opt.data.errors import InputError
from igniter_opt.data.io import read_json
from igniter_opt.data.lock import exclusive
from igniter_opt.data.plan import PlacedWorkload, Plan
from igniter_opt.data.schema import EndpointsSpec, parse
from igniter_opt.deploy.backends.launcher import Launcher
from igniter_opt.deploy.emulation import BANNER, EMULATION_FILE, EmulatedServer, emulation_spec, write_emulation
from igniter_opt.deploy.gputypes import device_indices, plan_types
from igniter_opt.deploy.repository import ModelConfig, queue_delay_us, triton_name, write_repository
from igniter_opt.deploy.types import ENDPOINTS, Deployment, DeployOptions, Endpoint, ServerSpec, shares_warning
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
    with exclusive(options.run_dir, "the run directory"):  # a second deploy/run here is refused
        with _deploy_locked(plan, options) as dep:
            yield dep


@contextmanager
def _deploy_locked(plan: Plan, options: DeployOptions) -> Iterator[Deployment]:
    """deploy() once the run directory is ours."""
    if options.backend == "ray":
        with _deploy_ray(plan, options) as dep:
            yield dep
        return
    dep, devices = _local_deployment(plan, options)
    run_dir, emulated = dep.run_dir, dep.emulated
    with sigterm_as_interrupt():
        mps = MpsDaemon(run_dir) if dep.mps else None
        try:
            if mps is not None:
                mps.start()
            with _make_launcher(options, mps) as launcher:
                dep.starter = _starter(launcher, dep, options, mps)
                specs = [_server_spec(w, devices[j], run_dir, options, mps)
                         for j, g in enumerate(plan.gpus) for w in g.workloads]
                dep.endpoints.extend(launcher.start_all(specs))
                for e in dep.endpoints:
                    e.key = e.model_name
                controller = _shadows(dep) if options.shadow else None
                dep.write_endpoints()
                try:
                    yield dep
                finally:
                    if controller is not None:
                        controller.close()
                    (run_dir / ENDPOINTS).unlink(missing_ok=True)
        finally:
            if mps is not None:
                mps.stop()
            if emulated:
                (run_dir / EMULATION_FILE).unlink(missing_ok=True)


def _local_deployment(plan: Plan, options: DeployOptions) -> tuple[Deployment, list[int | None]]:
    """The checks of a local or docker deployment, its record with warnings (and the emulation file
    when emulated), and the host device of each plan GPU."""
    emulated = options.device == "emulate"
    has_gpu = False if emulated else nvml_available()
    if options.device == "gpu" and not has_gpu:
        raise InputError("--device gpu: NVML sees no GPU on this host")
    gpu = options.device == "gpu" or (options.device == "auto" and has_gpu)
    use_mps = gpu and options.mps
    if use_mps and not mps_available():
        raise InputError("MPS requested but nvidia-cuda-mps-control is not on PATH (use --no-mps)")
    options.run_dir.mkdir(parents=True, exist_ok=True)
    dep = Deployment(plan=plan, run_dir=options.run_dir, backend=options.backend, gpu=gpu, mps=use_mps,
                     emulated=emulated, options=options)
    warning = BANNER if emulated else shares_warning(gpu, use_mps)
    if warning:
        dep.warnings.append(warning)
    if emulated:
        dep.extra["emulation"] = _start_emulation(plan, options)
    return dep, _devices(plan, options, dep)


def _devices(plan: Plan, options: DeployOptions, dep: Deployment) -> list[int | None]:
    """The host device of each plan GPU: a fleet plan's GPU of type T on a device of type T
    (--gpu-map, refused before any start), else GPU j on device j mod the host's count; the plan
    GPU's index when emulated; none on the CPU."""
    if dep.emulated:
        return list(range(plan.num_gpus))
    if not dep.gpu:
        if len(plan_types(plan)) > 1:
            dep.warnings.append(f"the plan's GPU types ({', '.join(plan_types(plan))}) all run on the CPU here")
        return [None] * plan.num_gpus
    n_gpus = gpu_count()
    found, notes = device_indices(plan, options.gpu_map, n_gpus)
    dep.warnings.extend(notes)
    if not plan_types(plan) and not options.gpu_map and plan.num_gpus > n_gpus:
        dep.warnings.append(f"the plan uses {plan.num_gpus} GPUs, this host has {n_gpus}: "
                            f"plan GPU j runs on GPU j mod {n_gpus}")
    return list(found)


def _shadows(dep: Deployment) -> Any:
    """--shadow: the controller, with a warm shadow per workload started (deploy/shadow.py)."""
    from igniter_opt.deploy.shadow import ShadowController

    controller = ShadowController(dep)
    controller.start_shadows()
    dep.shadow_controller = controller
    return controller


def _start_emulation(plan: Plan, options: DeployOptions) -> dict[str, Any]:
    """Write the emulation file for the plan's servers (deploy/emulation.py); its summary for endpoints.json."""
    from igniter_opt.model import load_profile

    servers = [EmulatedServer(triton_name(w.name), w.name, w.resource_pct) for w in plan.workloads()]
    spec = emulation_spec(plan, load_profile(plan.profile), servers, options.inject_error, options.time_scale)
    path = write_emulation(options.run_dir, spec)
    return {"file": str(path), "time_scale": options.time_scale, "inject_error": options.inject_error,
            "profile": spec["profile"], "note": BANNER}


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


def _starter(launcher: Launcher, dep: Deployment, options: DeployOptions,
             mps: MpsDaemon | None) -> Callable[[list[tuple[PlacedWorkload, float, str]]], list[Endpoint]]:
    """How the deployment starts more servers (shadows) with its launcher, on its workloads' GPUs."""
    def start(items: list[tuple[PlacedWorkload, float, str]]) -> list[Endpoint]:
        gpus = {e.name: e.gpu for e in dep.endpoints}
        specs = [_server_spec(w, gpus.get(w.name), dep.run_dir, options, mps, share_pct=share, key=key)
                 for w, share, key in items]
        return launcher.start_all(specs) if len(specs) > 1 else [launcher.start(s) for s in specs]
    return start


def _server_spec(w: Any, gpu: int | None, run_dir: Path, options: DeployOptions,
                 mps: MpsDaemon | None, share_pct: float | None = None, key: str = "") -> ServerSpec:
    """One server of workload `w`: by default its plan share under its own name; a shadow passes a
    larger share and its key (the repository folder and the emulation file's key; same model name)."""
    name = triton_name(w.name)
    key = key or name
    share = w.resource_pct if share_pct is None else share_pct
    cfg = ModelConfig(name=name, model=w.model, batch=w.batch,
                      queue_delay_us=queue_delay_us(w.slo_ms, w.batch, w.rate_rps),
                      kind="KIND_GPU" if gpu is not None and options.device != "emulate" else "KIND_CPU",
                      gpu=0 if options.backend == "docker" else (gpu or 0), fp16=options.fp16,
                      response_cache=options.response_cache,
                      emulation=str(run_dir / EMULATION_FILE) if options.device == "emulate" else "",
                      server_key=key)
    repo = write_repository(run_dir / "repos" / key, cfg)
    env = mps.client_env(share) if mps is not None else {}
    return ServerSpec(name=w.name, model_name=name, repository=repo, gpu=gpu, share_pct=share, env=env)


def read_endpoints(run_dir: str | Path) -> dict[str, Any]:
    """The endpoints.json a running `igniter deploy` wrote (InputError when there is none)."""
    path = Path(run_dir) / ENDPOINTS
    if not path.exists():
        raise InputError(f"{path}: not found: start the servers with `igniter deploy PLAN --run-dir "
                         f"{run_dir}` first")
    data = read_json(path, "an endpoints file")
    parse(EndpointsSpec, data, str(path), what="endpoints.json")
    # where its live records go (monitor.py): the folder it was read from when it does not say
    data.setdefault("run_dir", str(Path(run_dir).resolve()))
    return data

