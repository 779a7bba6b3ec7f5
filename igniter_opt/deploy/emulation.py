"""The emulated GPU device (`--device emulate`): stand-ins that take as long as the model predicts.

On a machine without a GPU the CPU stand-ins say nothing about a plan (they ignore shares). The
emulated device makes a deployment reflect the plan: each server's python-backend stand-in sleeps,
per batch of n requests, the performance model's predicted latency T_inf (GPU time plus PCIe
transfer) of its workload at batch n, at the server's share and with the GPU's other *active*
servers as co-runners, times an optional injected error factor (`--inject-error NAME=1.5`) and the
time scale. Triton's real dynamic batcher, queues and gRPC front end do the rest, so measured
latency = queueing + batching wait + the predicted service time, and a wrong prediction can be staged.

The service times live in one small per-deployment file, RUN_DIR/emulation.json, which every
stand-in re-reads when it changes (atomic replace): a plan change (a shadow switch changes the
co-runners and shares) is written there and takes effect at the next batch.

Time scale F (`--time-scale`): two shared CPU cores cannot carry the paper's 1,100 req/s of
602 KB tensors. With F > 1 the deployment is a slowed-down copy of the plan: rates / F, SLOs x F,
service times x F (see `dilate`); batches, shares and every queueing ratio are unchanged, so
measured / F compares with the plan's milliseconds.

Everything here is labelled as emulation: the file, endpoints.json and the report say
`"emulated": true`; nothing measured on it is a GPU measurement.
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from igniter_opt.data.errors import InputError
from igniter_opt.data.io import read_json
from igniter_opt.data.plan import PlacedWorkload, Plan
from igniter_opt.model import Profile, predict

EMULATION_FILE = "emulation.json"
BANNER = ("EMULATED GPU: no GPU is used; each stand-in sleeps the performance model's predicted "
          "latency for its share, batch and co-runners (x injected error, x time scale). "
          "Figures measured here are an emulation, not GPU measurements")


@dataclass(frozen=True)
class EmulatedServer:
    """One server as the emulation sees it: which workload, at which share, active or a shadow."""

    key: str                  # the server's key (its repository folder name): what the stand-in reads
    workload: str
    share_pct: float
    active: bool = True       # serving the workload's traffic (a warm idle shadow is not)


def parse_inject_errors(items: list[str], plan: Plan | None) -> dict[str, float]:
    """`NAME=FACTOR` strings -> {workload: factor}; InputError naming the bad item. Without a plan
    (the service: workloads arrive later) any non-empty name is accepted."""
    names = None if plan is None else {w.name for w in plan.workloads()}
    errors: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"--inject-error {item!r}: expected NAME=FACTOR, e.g. alexnet=1.5")
        if not name or (names is not None and name not in names):
            raise InputError(f"--inject-error {item!r}: no workload {name!r} in the plan "
                             f"(workloads: {', '.join(sorted(names or ()))})")
        try:
            factor = float(value)
        except ValueError:
            raise InputError(f"--inject-error {item!r}: factor {value!r} is not a number") from None
        if not (math.isfinite(factor) and factor > 0):
            raise InputError(f"--inject-error {item!r}: factor must be a finite number > 0")
        errors[name] = factor
    return errors


def check_emulation_use(device: str, backend: str, inject_error: dict[str, float], time_scale: float) -> None:
    """The emulated device runs on the local backend, and its knobs need it (deploy and serve alike)."""
    if device == "emulate" and backend != "local":
        raise InputError(f"--device emulate runs with --backend local (got --backend {backend})")
    if device != "emulate" and (inject_error or time_scale != 1):
        raise InputError("--inject-error and --time-scale are for --device emulate")


def check_time_scale(scale: float) -> float:
    """A time scale must be a finite number >= 1 (slowing down, never speeding up)."""
    if not (math.isfinite(scale) and scale >= 1):
        raise InputError(f"--time-scale: must be a finite number >= 1, got {scale!r}")
    return float(scale)


def dilate(plan: Plan, scale: float) -> Plan:
    """The plan slowed down F times: rates / F, SLOs and predicted latencies x F (shares, batches kept)."""
    if scale == 1:
        return plan
    out = copy.deepcopy(plan)
    for w in out.workloads():
        w.rate_rps /= scale
        w.slo_ms *= scale
        if w.predicted_latency_ms is not None:
            w.predicted_latency_ms *= scale
        if w.predicted_throughput_rps is not None:
            w.predicted_throughput_rps /= scale
    return out


def service_times_ms(profile: Profile, members: list[tuple[str, int, float]], i: int) -> list[float]:
    """Predicted T_inf (ms) of member i at batch 1..b_i, co-runners at their own batch and share."""
    models = [m for m, _, _ in members]
    shares = [s for _, _, s in members]
    batches = [b for _, b, _ in members]
    times = []
    for n in range(1, batches[i] + 1):
        batch = list(batches)
        batch[i] = n
        times.append(float(predict(profile, models, batch, shares).latency_ms[i]))
    return times


def emulation_spec(plan: Plan, profile: Profile, servers: list[EmulatedServer], errors: dict[str, float],
                   time_scale: float = 1.0) -> dict[str, Any]:
    """The emulation file's content: per server key its service times per batch size.

    A server is predicted with its own share in place of its workload's active server, the other
    workloads of its GPU at their active servers' shares (a workload without an active server
    listed keeps the plan's share).
    """
    gpu_of = {w.name: j for j, g in enumerate(plan.gpus) for w in g.workloads}
    by_name = {w.name: w for w in plan.workloads()}
    active = {s.workload: s.share_pct for s in servers if s.active}
    out: dict[str, Any] = {}
    for s in servers:
        if s.workload not in by_name:
            raise InputError(f"emulation: server {s.key!r} names no workload of the plan ({s.workload!r})")
        members: list[tuple[str, int, float]] = []
        for w in plan.gpus[gpu_of[s.workload]].workloads:
            share = s.share_pct if w.name == s.workload else active.get(w.name, w.resource_pct)
            members.append((w.model, w.batch, share))
        i = [w.name for w in plan.gpus[gpu_of[s.workload]].workloads].index(s.workload)
        out[s.key] = {**asdict(s), "model": by_name[s.workload].model, "gpu": gpu_of[s.workload],
                      "service_ms": service_times_ms(profile, members, i),
                      "error": errors.get(s.workload, 1.0)}
    return {"emulated": True, "note": BANNER, "time_scale": time_scale, "profile": profile.name,
            "servers": out}


def write_emulation(run_dir: Path, spec: dict[str, Any]) -> Path:
    """Write RUN_DIR/emulation.json atomically (the stand-ins reload it when it changes)."""
    import json

    path = Path(run_dir) / EMULATION_FILE
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(spec, indent=1) + "\n")
    os.replace(tmp, path)
    return path


def read_emulation(run_dir: Path) -> dict[str, Any] | None:
    """The emulation file of a run directory, or None when the deployment is not emulated."""
    path = Path(run_dir) / EMULATION_FILE
    return read_json(path, "an emulation file") if path.exists() else None


def batch_wait_ms(w: PlacedWorkload, queue_delay_ms: float) -> tuple[int, float]:
    """Batch size n formed at constant arrivals and the median request's wait for it, ms.

    Requests arrive 1/R apart; the batcher sends a batch when it holds b or when its oldest has
    waited the max queue delay D, so n = min(b, floor(D R) + 1) and the j-th of a batch waits
    (n - 1 - j)/R: the median waits (n - 1) / (2R).
    """
    n = min(w.batch, math.floor(queue_delay_ms * w.rate_rps / 1000.0 + 1e-9) + 1)
    return n, (n - 1) * 1000.0 / (2 * w.rate_rps)


def expected_p50_ms(w: PlacedWorkload, service_ms: list[float], queue_delay_ms: float, error: float = 1.0,
                    time_scale: float = 1.0) -> float:
    """Emulated p50 at constant arrivals: predicted T_inf of the batch formed (x error, x scale)
    plus the median request's batching wait (`w` is the deployed, i.e. dilated, workload)."""
    n, wait = batch_wait_ms(w, queue_delay_ms)
    return service_ms[n - 1] * error * time_scale + wait


def emulation_report(plan: Plan, endpoints: dict[str, Any]) -> dict[str, Any] | None:
    """The report's `emulation` section: the settings and each workload's expected p50 (constant
    arrivals, its active server's service times now), or None for a deployment that is not emulated."""
    from igniter_opt.deploy.repository import queue_delay_us

    info = endpoints.get("emulation")
    if not endpoints.get("emulated") or not info:
        return None
    data = read_json(Path(info["file"]), "an emulation file") if Path(info["file"]).exists() else {"servers": {}}
    servers = {s["name"]: s for s in endpoints.get("servers", [])}
    expected: dict[str, float | None] = {}
    for w in plan.workloads():
        key = servers.get(w.name, {}).get("key") or servers.get(w.name, {}).get("model_name", "")
        srv = data["servers"].get(key)
        expected[w.name] = None if srv is None else expected_p50_ms(
            w, srv["service_ms"], queue_delay_us(w.slo_ms, w.batch, w.rate_rps) / 1000.0, srv["error"],
            float(data.get("time_scale", 1.0)))
    return {**info, "expected_p50_ms": expected}
