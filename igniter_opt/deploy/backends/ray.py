"""The `ray` backend: deploy a plan on a Ray cluster, one placement-group bundle per plan GPU.

Mapping (plan -> Ray):
- plan GPU j -> bundle j = {"GPU": 1, "CPU": cpus_per_server * members(j)} of ONE placement group
  (strategy PACK: bundles fill a node before the next; a plan that does not fit on one node spreads);
- workload w on GPU j -> an actor in bundle j with num_gpus = share/100 and num_cpus =
  cpus_per_server. Ray gives every actor of bundle j the same node and the same
  CUDA_VISIBLE_DEVICES (the bundle's GPU). The actor writes w's model repository on its node and
  starts tritonserver there with the `local` launcher (same binary discovery, free ports,
  PR_SET_PDEATHSIG, readiness wait), with the plan's batch and CUDA_MPS_ACTIVE_THREAD_PERCENTAGE =
  share. The server is a child of the actor: if the actor dies (killed, node lost) so does the server;
- per node that holds bundles, a task checks for a GPU (NVML) and starts an MPS control daemon
  there when the node has one (a warning where GPUs are only declared); another task stops it.

Tear-down (`RayDeployment.close`, always run by `deploy_on_ray`): each actor stops its server
(bounded wait), every actor is killed, the placement group removed, then the MPS daemons started
here are stopped. A cluster given by address is left running; a local one started here is stopped.
Ray itself also kills a driver's actors and placement groups when the driver dies, so even a
SIGKILLed igniter leaves no server behind (PDEATHSIG).

Ray is imported lazily (`import_ray`): the core install never needs it.
"""

from __future__ import annotations

import math
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from igniter_opt.data.plan import Plan
from igniter_opt.deploy.gputypes import ACCELERATOR, accelerator_resource
from igniter_opt.deploy.repository import triton_name
from igniter_opt.deploy.types import Deployment, DeployOptions, Endpoint, LaunchError, ServerSpec, shares_warning
from igniter_opt.platform.raycluster import ray_connection

STOP_TIMEOUT_S = 10.0


class PlacementError(LaunchError):
    """The cluster cannot hold the plan's placement group (too few GPUs or CPUs)."""


@dataclass
class RayEndpoint(Endpoint):
    """A server started by a Ray actor: where it runs, and what Ray gave it."""

    node_id: str = ""
    node_ip: str = ""
    cuda_visible_devices: str | None = None
    ray_gpu_ids: list[str] = field(default_factory=list)
    actor_pid: int = 0
    server_pid: int = 0


def bundles_for(plan: Plan, cpus_per_server: float) -> list[dict[str, float]]:
    """One {"GPU": 1, "CPU": c} bundle per plan GPU, c = cpus_per_server x its workloads; a GPU of a
    fleet's type T also asks for Ray's accelerator_type:T (deploy/gputypes.py)."""
    return [{"GPU": 1.0, "CPU": round(cpus_per_server * max(1, len(g.workloads)), 4),
             **accelerator_resource(g.gpu_type)} for g in plan.gpus]


def actor_gpus(share_pct: float) -> float:
    """num_gpus of a server actor: share/100, rounded down to Ray's 1e-4 resource precision."""
    return max(1e-4, math.floor(share_pct * 100 + 1e-6) / 10000.0)


def capacity_problem(bundles: list[dict[str, float]], nodes: list[dict[str, float]]) -> str | None:
    """Why `bundles` can never be placed on alive nodes with these total resources (None: they fit).

    First-fit decreasing by CPU: enough to refuse a hopeless group at once and say what is missing.
    Resources that exist but are busy (other jobs) are not a refusal: the placement wait is bounded.
    """
    missing = missing_type(bundles, nodes)
    if missing:
        return missing
    need_gpu = sum(b.get("GPU", 0) for b in bundles)
    have_gpu = sum(math.floor(n.get("GPU", 0) + 1e-9) for n in nodes)
    if have_gpu < need_gpu:
        return (f"the plan needs {need_gpu:g} GPUs, the Ray cluster has {have_gpu:g}: {need_gpu - have_gpu:g} "
                f"missing (add a node with `ray start --address ADDR --num-gpus N`)")
    free = [dict(n) for n in nodes]
    for b in sorted(bundles, key=lambda b: -b.get("CPU", 0)):
        for n in free:
            if all(n.get(k, 0) + 1e-9 >= v for k, v in b.items()):
                for k, v in b.items():
                    n[k] = n.get(k, 0) - v
                break
        else:
            per_node = [{k: round(v, 2) for k, v in n.items() if k in ("GPU", "CPU")} for n in nodes]
            return (f"no node has a GPU with {b.get('CPU', 0):g} CPUs for a plan GPU's bundle {b} (nodes: "
                    f"{per_node}); lower --cpus-per-server or add nodes")
    return None


def missing_type(bundles: list[dict[str, float]], nodes: list[dict[str, float]], whose: str = "the plan"
                 ) -> str | None:
    """Why bundles asking for Ray's accelerator_type:<T> can never be placed: the first type no
    alive node declares, with the types declared (None: every type is declared somewhere)."""
    for key in sorted({k for b in bundles for k in b if k.startswith(ACCELERATOR)}):
        if not any(n.get(key, 0) > 0 for n in nodes):
            declared = sorted({k[len(ACCELERATOR):] for n in nodes for k in n if k.startswith(ACCELERATOR)})
            t = key[len(ACCELERATOR):]
            return (f"{whose} has GPUs of type {t!r} and no node of the Ray cluster declares {key} (types "
                    f"declared: {', '.join(declared) or 'none'}); add such a node with `ray start --address ADDR "
                    f"--num-gpus N --resources '{{\"{key}\": 1}}'`")
    return None


def node_totals(ray: Any) -> list[dict[str, float]]:
    """Total resources of each alive node."""
    return [{k: float(v) for k, v in n.get("Resources", {}).items()} for n in ray.nodes() if n.get("Alive")]


def _free(ray: Any) -> str:
    res = ray.available_resources()
    return f"free now: {res.get('GPU', 0):g} GPUs, {res.get('CPU', 0):g} CPUs"


# ---- what runs on the cluster's nodes -------------------------------------------------------------

def node_setup(run_dir: str, device: str, mps: bool) -> dict[str, Any]:
    """On one node: is there a GPU, and an MPS daemon started for it (when asked and possible)."""
    import ray

    from igniter_opt.platform.mps import MpsDaemon, mps_available
    from igniter_opt.platform.nvml import nvml_available

    has_gpu = nvml_available()
    out: dict[str, Any] = {"node_ip": ray.util.get_node_ip_address(), "gpu": False, "mps": False,
                           "pipe_dir": None, "started": False, "error": None}
    if device == "gpu" and not has_gpu:
        out["error"] = f"--device gpu: NVML sees no GPU on node {out['node_ip']}"
        return out
    out["gpu"] = device == "gpu" or (device == "auto" and has_gpu)
    if out["gpu"] and mps:
        if not mps_available():
            out["error"] = (f"MPS requested but nvidia-cuda-mps-control is not on PATH on node {out['node_ip']} "
                            f"(use --no-mps)")
            return out
        os.environ.pop("CUDA_VISIBLE_DEVICES", None)  # the daemon serves every GPU of the node
        daemon = MpsDaemon(_node_dir(run_dir))
        daemon.start()
        out.update(mps=True, pipe_dir=str(daemon.pipe_dir), started=daemon.started)
    return out


def node_teardown(run_dir: str, pipe_dir: str) -> None:
    """Stop the MPS daemon node_setup started on this node."""
    from igniter_opt.platform.mps import MpsDaemon

    daemon = MpsDaemon(_node_dir(run_dir))
    daemon.pipe_dir = Path(pipe_dir)
    daemon.started = True
    daemon.stop()


def _node_dir(run_dir: str) -> Path:
    """The run directory on this node (created), or a temporary one where it cannot be made."""
    path = Path(run_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        return path
    except OSError:
        import tempfile

        return Path(tempfile.mkdtemp(prefix="igniter-run-"))


class ServerActor:
    """One workload's tritonserver on the actor's node (made a Ray actor by `_remote_classes`)."""

    def __init__(self) -> None:
        self.launcher: Any = None

    def start(self, run_dir: str, workload: dict[str, Any], gpu: bool, pipe_dir: str | None,
              options: dict[str, Any]) -> dict[str, Any]:
        import ray

        from igniter_opt.deploy.backends.local import LocalLauncher
        from igniter_opt.deploy.repository import ModelConfig, queue_delay_us, write_repository
        from igniter_opt.platform.mps import share_value

        root = _node_dir(run_dir)
        w = workload
        name = triton_name(w["name"])
        cfg = ModelConfig(name=name, model=w["model"], batch=w["batch"],
                          queue_delay_us=queue_delay_us(w["slo_ms"], w["batch"], w["rate_rps"]),
                          kind="KIND_GPU" if gpu else "KIND_CPU", gpu=0, fp16=options["fp16"],
                          response_cache=options["response_cache"])
        repo = write_repository(root / "repos" / name, cfg)
        env = {"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": share_value(w["share_pct"])}
        if pipe_dir:
            env["CUDA_MPS_PIPE_DIRECTORY"] = pipe_dir
        self.launcher = LocalLauncher(root, options["tritonserver"], ready_timeout_s=options["ready_timeout_s"])
        ep = self.launcher.start(ServerSpec(name=w["name"], model_name=name, repository=repo,
                                            gpu=0 if gpu else None, share_pct=w["share_pct"], env=env))
        ip = ray.util.get_node_ip_address()
        out = ep.to_dict()
        out.update(grpc_url=ep.grpc_url.replace("127.0.0.1", ip), http_url=ep.http_url.replace("127.0.0.1", ip),
                   node_id=ray.get_runtime_context().get_node_id(), node_ip=ip,
                   cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
                   ray_gpu_ids=[str(g) for g in ray.get_gpu_ids()], actor_pid=os.getpid(),
                   server_pid=int(ep.handle))
        return out

    def stop(self) -> None:
        if self.launcher is not None:
            self.launcher.stop_all()

    def alive(self) -> bool:
        return self.launcher is not None and all(p.poll() is None for p in self.launcher.procs)


_REMOTE: dict[str, Any] = {}


def _remote_classes(ray: Any) -> dict[str, Any]:
    """ray.remote versions of the actor and tasks above (made once, after ray is imported)."""
    if not _REMOTE:
        _REMOTE["server"] = ray.remote(max_restarts=0, max_task_retries=0)(ServerActor)
        _REMOTE["setup"] = ray.remote(num_cpus=0, max_retries=0)(node_setup)
        _REMOTE["teardown"] = ray.remote(num_cpus=0, max_retries=0)(node_teardown)
    return _REMOTE


# ---- the driver side ------------------------------------------------------------------------------

@dataclass
class RayDeployment:
    """What this run created on the cluster: the placement group, actors, MPS daemons."""

    ray: Any
    run_id: str
    run_dir: str = ""
    pg: Any = None
    actors: list[Any] = field(default_factory=list)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)   # node id -> node_setup's answer

    def place(self, bundles: list[dict[str, float]], timeout_s: float) -> dict[int, str]:
        """Create and wait for the placement group; bundle index -> node id. PlacementError when
        the cluster cannot hold it (checked first, then a bounded wait: never left pending)."""
        from ray.util.placement_group import placement_group, placement_group_table

        problem = capacity_problem(bundles, node_totals(self.ray))
        if problem:
            raise PlacementError(problem)
        self.pg = placement_group(bundles, strategy="PACK", name=f"igniter-{self.run_id}")
        ready, _ = self.ray.wait([self.pg.ready()], timeout=timeout_s)
        if not ready:
            raise PlacementError(f"the placement group of {len(bundles)} GPU bundles was not placed within "
                                 f"{timeout_s:g} s: the cluster's GPUs are busy ({_free(self.ray)})")
        table = placement_group_table(self.pg)
        return {int(k): v for k, v in table["bundles_to_node_id"].items()}

    def setup_nodes(self, node_ids: set[str], run_dir: str, device: str, mps: bool, timeout_s: float) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        setup = _remote_classes(self.ray)["setup"]
        refs = {nid: setup.options(scheduling_strategy=NodeAffinitySchedulingStrategy(nid, soft=False))
                .remote(run_dir, device, mps) for nid in sorted(node_ids)}
        for nid, ref in refs.items():
            self.nodes[nid] = self.ray.get(ref, timeout=timeout_s)
        errors = [n["error"] for n in self.nodes.values() if n["error"]]
        if errors:
            raise LaunchError("; ".join(errors))

    def start_servers(self, plan: Plan, bundle_nodes: dict[int, str], run_dir: str, options: DeployOptions,
                      cpus_per_server: float) -> list[RayEndpoint]:
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        server = _remote_classes(self.ray)["server"]
        opts = {"fp16": options.fp16, "response_cache": options.response_cache, "tritonserver": options.tritonserver,
                "ready_timeout_s": options.ready_timeout_s}
        calls = []
        for j, g in enumerate(plan.gpus):
            node = self.nodes[bundle_nodes[j]]
            for w in g.workloads:
                actor = server.options(
                    num_gpus=actor_gpus(w.resource_pct), num_cpus=cpus_per_server,
                    name=f"igniter-{self.run_id}-{triton_name(w.name)}",
                    scheduling_strategy=PlacementGroupSchedulingStrategy(self.pg, placement_group_bundle_index=j),
                ).remote()
                self.actors.append(actor)
                wl = {"name": w.name, "model": w.model, "batch": w.batch, "slo_ms": w.slo_ms,
                      "rate_rps": w.rate_rps, "share_pct": w.resource_pct}
                calls.append((j, w.name, actor.start.remote(run_dir, wl, node["gpu"], node["pipe_dir"], opts)))
        endpoints = []
        # actor start-up (a worker process each) plus three tries of the server's readiness wait
        deadline = time.monotonic() + 60.0 + 3 * options.ready_timeout_s
        for j, name, ref in calls:
            try:
                out = self.ray.get(ref, timeout=max(1.0, deadline - time.monotonic()))
            except self.ray.exceptions.GetTimeoutError:
                raise LaunchError(f"tritonserver for {name} (plan GPU {j}) not up in time") from None
            except self.ray.exceptions.RayError as exc:
                cause = getattr(exc, "cause", None) or exc
                raise LaunchError(f"tritonserver for {name} (plan GPU {j}): {str(cause).strip().splitlines()[-1]}") \
                    from None
            out["gpu"] = j  # the plan's GPU; the node's device is cuda_visible_devices
            endpoints.append(RayEndpoint(**out))
        return endpoints

    def close(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop every server, kill every actor, remove the placement group, stop our MPS daemons.
        Bounded in time and idempotent; dead actors and lost nodes are skipped."""
        ray = self.ray
        refs = []
        for a in self.actors:
            try:
                refs.append(a.stop.remote())
            except Exception:  # a dead actor: nothing to stop
                pass
        if refs:
            ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
        for a in self.actors:
            try:
                ray.kill(a, no_restart=True)
            except Exception:
                pass
        self.actors.clear()
        if self.pg is not None:
            from ray.util.placement_group import remove_placement_group

            try:
                remove_placement_group(self.pg)
            except Exception:
                pass
            self.pg = None
        started = {nid: n for nid, n in self.nodes.items() if n.get("started") and n.get("pipe_dir")}
        if started:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            teardown = _remote_classes(ray)["teardown"]
            refs = [teardown.options(scheduling_strategy=NodeAffinitySchedulingStrategy(nid, soft=False))
                    .remote(self.run_dir, n["pipe_dir"]) for nid, n in started.items()]
            ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
        self.nodes.clear()


@contextmanager
def deploy_on_ray(plan: Plan, options: DeployOptions, dep: Deployment) -> Iterator[Deployment]:
    """Place the plan on the cluster, start every server, fill `dep`; tear everything down on exit."""
    notes: list[str] = []
    with ray_connection(options.address, notes, gpus=plan.num_gpus) as ray:
        dep.notes.extend(notes)
        rd = RayDeployment(ray=ray, run_id=uuid.uuid4().hex[:8], run_dir=str(options.run_dir))
        try:
            bundle_nodes = rd.place(bundles_for(plan, options.cpus_per_server), options.placement_timeout_s)
            rd.setup_nodes(set(bundle_nodes.values()), str(options.run_dir), options.device, options.mps,
                           timeout_s=60.0)
            dep.gpu = all(n["gpu"] for n in rd.nodes.values())
            dep.mps = all(n["mps"] for n in rd.nodes.values())
            warning = shares_warning(dep.gpu, dep.mps)
            if warning:
                where = "" if not any(n["gpu"] for n in rd.nodes.values()) else " (on some nodes)"
                dep.warnings.append(warning.replace("this host", "the cluster's nodes") + where)
            dep.endpoints.extend(rd.start_servers(plan, bundle_nodes, str(options.run_dir), options,
                                                  options.cpus_per_server))
            dep.extra["ray"] = {"placement_group": rd.pg.id.hex(), "run_id": rd.run_id,
                                "nodes": {nid: n["node_ip"] for nid, n in rd.nodes.items()}}
            yield dep
        finally:
            rd.close()
