"""Measure a deployed plan: load every workload at its rate, sample the GPUs, build the report."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from igniter_opt.data.errors import InputError
from igniter_opt.data.plan import Plan
from igniter_opt.deploy.emulation import emulation_report
from igniter_opt.deploy.load.generator import LoadOptions, Target, WorkloadResult, run_load
from igniter_opt.deploy.models import spec_for
from igniter_opt.deploy.monitor import LiveOptions, live_monitor
from igniter_opt.deploy.report import measurement_report
from igniter_opt.deploy.types import ENDPOINTS
from igniter_opt.platform.nvml import GpuSampler, gpu_info, nvml_available


def targets_for(plan: Plan, endpoints: dict[str, Any],
                payloads: dict[tuple[int, ...], tuple[bytes, ...]] | None = None) -> list[Target]:
    """One load target per plan workload, found by name in the endpoints document; a workload whose
    input shape has `payloads` sends those round-robin (else the default tensor)."""
    servers = {s["name"]: s for s in endpoints.get("servers", [])}
    targets = []
    for w in plan.workloads():
        if w.name not in servers:
            raise InputError(f"workload {w.name!r} of the plan has no running server in endpoints.json "
                             f"(servers: {sorted(servers)})")
        s = servers[w.name]
        dims = spec_for(w.model).input_dims
        targets.append(Target(name=w.name, model_name=s["model_name"], url=s["grpc_url"], rate_rps=w.rate_rps,
                              slo_ms=w.slo_ms, input_dims=dims, payloads=(payloads or {}).get(dims, ())))
    return targets


def check_matches(plan: Plan, endpoints: dict[str, Any]) -> None:
    """Refuse (InputError) a plan that is not the one deployed: other workload names, or another
    batch or share for a workload (the deployment's `workloads`, or its servers' shares when an
    older endpoints.json has no workloads). Measuring it would report one plan's numbers as another's."""
    deployed = {w["name"]: w for w in endpoints.get("workloads") or []}
    if not deployed:
        deployed = {s["name"]: {"resource_pct": s.get("share_pct")} for s in endpoints.get("servers", [])}
    ours = {w.name: w for w in plan.workloads()}
    if set(ours) != set(deployed):
        missing, extra = sorted(set(ours) - set(deployed)), sorted(set(deployed) - set(ours))
        raise InputError(f"the plan does not match the deployment (plan {plan.instance!r}): "
                         f"not deployed {missing[:5]}, deployed but not in the plan {extra[:5]}")
    for name, w in ours.items():
        d = deployed[name]
        if d.get("batch") is not None and int(d["batch"]) != w.batch:
            raise InputError(f"the plan does not match the deployment: workload {name!r} has batch {w.batch} "
                             f"in the plan, {d['batch']} deployed")
        share = d.get("resource_pct")
        if share is not None and abs(float(share) - w.resource_pct) > 1e-9:
            raise InputError(f"the plan does not match the deployment: workload {name!r} has share "
                             f"{w.resource_pct:g}% in the plan, {float(share):g}% deployed")


def gpu_indices(endpoints: dict[str, Any]) -> list[int]:
    """The host GPUs the servers run on (empty on a CPU deployment)."""
    return sorted({int(s["gpu"]) for s in endpoints.get("servers", []) if s.get("gpu") is not None})


def measure(plan: Plan, endpoints: dict[str, Any], options: LoadOptions, interval_s: float = 0.1,
            live: LiveOptions | None = None,
            payloads: dict[tuple[int, ...], tuple[bytes, ...]] | None = None) -> tuple[dict[str, Any],
                                                                                     list[WorkloadResult]]:
    """Drive all workloads at once; the report (with NVML figures when a GPU is present) and raw results.

    With `live`, completions stream to a LiveMonitor (deploy/monitor.py: windows to
    RUN_DIR/monitor.jsonl and to the listeners) and the load follows RUN_DIR/endpoints.json, so a
    switch to a shadow server is followed by the clients. `payloads` (input shape -> request tensors,
    deploy/inputs.py) replace the default tensor of the workloads of that shape. The plan must be the
    one deployed (check_matches).
    """
    check_matches(plan, endpoints)
    targets = targets_for(plan, endpoints, payloads)
    monitor = None
    if live is not None:
        monitor = live_monitor(targets, endpoints, live)
        follow = str(Path(endpoints.get("run_dir", ".")) / ENDPOINTS)
        options = replace(options, progress_s=min(0.1, live.step_s / 2), follow=follow)
    # ray: the servers' GPUs are on the cluster's nodes, not necessarily this host's: not sampled
    # emulated: `gpu` is the plan GPU the stand-in emulates, not a device of this host
    local = endpoints.get("backend") != "ray" and not endpoints.get("emulated")
    indices = gpu_indices(endpoints) if local and nvml_available() else []
    with ExitStack() as stack:
        samplers = {i: stack.enter_context(GpuSampler(i, interval_s)) for i in indices}
        if monitor is not None:
            stack.callback(monitor.stop)
        results = run_load(targets, options, hooks=monitor)
    gpu = None
    if samplers:
        gpu = {"devices": [{"index": i, **asdict(gpu_info(i)), **s.samples().summary()}
                           for i, s in samplers.items()]}
    report = measurement_report(plan, results, gpu)
    emulation = emulation_report(plan, endpoints)
    if emulation is not None:  # labelled loudly: nothing here is a GPU measurement
        report["emulated"] = True
        report["emulation"] = emulation
    return report, results
