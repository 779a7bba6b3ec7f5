"""Shadow servers: a warm server per workload at a larger share, switched to when the SLO breaks.

Rule (`shadow_share`): a workload's shadow gets the least share on the profile's unit grid, above
its active server's, at which the model predicts (x the workload's learned error, 1 at first)
T_inf <= (1 - m/100) SLO/2 (m = `--shadow-margin`, 50 by default) and throughput >= rate, while
every other workload of its GPU still meets its SLO/2 and rate with the shadow's share in place
of the workload's. It is capped by what the GPU can hold: at most 100% minus the other
workloads' active shares. When the margin cannot be met below the cap, the shadow gets the largest
share that keeps the others within their SLOs (marked `capped`); when not even one unit more
fits, the workload has no shadow and a break is recorded as `replan-needed`.

Accounting: MPS's CUDA_MPS_ACTIVE_THREAD_PERCENTAGE is a per-process cap, not a reservation, and an
idle shadow runs no kernels, so caps of active servers plus idle shadows may sum above 100%. What the
plan guarantees is about the *active* servers: at any time their shares on a GPU sum to at most
100%, and after every switch the model predicts every workload of that GPU within its SLO/2 and
rate (an idle shadow holds only its memory and CUDA context).

Switching (`ShadowController.on_windows`, a listener of the live monitor): when a workload's
windowed p99 is above its SLO for K consecutive windows (`--shadow-windows`, 2), its entry in
endpoints.json is rewritten to the shadow's address (version + 1; the load generator follows),
the emulation file is rewritten (the shadow active, the co-runners see its share), the correction
is appended to RUN_DIR/corrections.jsonl (measured vs predicted, old and new share) and the
current plan to RUN_DIR/plan.current.json, and, if the GPU can hold a larger share, a new shadow
is started in the background. The old server stays up, idle, until tear-down.
"""

from __future__ import annotations

import copy
import json
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from igniter_opt.data.plan import GpuPlan, Plan
from igniter_opt.deploy.emulation import EmulatedServer, emulation_spec, write_emulation
from igniter_opt.deploy.monitor import WindowRecord
from igniter_opt.deploy.types import Endpoint
from igniter_opt.model import Profile, load_profile, predict
from igniter_opt.solvers.margin import latency_limit_ms

CORRECTIONS = "corrections.jsonl"
CURRENT_PLAN = "plan.current.json"
FOLLOW_S = 0.1   # the load workers re-read endpoints.json every 50 ms: arrivals after this are the shadow's


@dataclass(frozen=True)
class ShadowChoice:
    """A shadow's share (None: none fits), whether the margin was met, and its predicted T_inf."""

    share_pct: float | None
    capped: bool
    predicted_ms: float | None
    reason: str = ""


def _gpu_of(plan: Plan, name: str) -> tuple[int, GpuPlan, int]:
    for j, g in enumerate(plan.gpus):
        for i, w in enumerate(g.workloads):
            if w.name == name:
                return j, g, i
    raise KeyError(name)


def others_fit(profile: Profile, plan: Plan, name: str, share: float, active: dict[str, float],
               time_scale: float = 1.0) -> str:
    """Why workload `name` cannot run at `share` now ("" when it can): the GPU's active shares with it
    must sum to at most 100% and every other workload there stay within SLO/2 and its rate."""
    j, gpu, i = _gpu_of(plan, name)
    ws = gpu.workloads
    shares = [share if k == i else active.get(w.name, w.resource_pct) for k, w in enumerate(ws)]
    if sum(shares) > 100 + 1e-9:
        return f"GPU {j}'s active shares would sum to {sum(shares):g}% > 100%"
    pred = predict(profile, [w.model for w in ws], [w.batch for w in ws], shares)
    for k, w in enumerate(ws):
        lat, thr = pred.latency_ms[k] * time_scale, pred.throughput_rps[k] / time_scale
        if k != i and (lat > latency_limit_ms(w.slo_ms) * (1 + 1e-9) or thr < w.rate_rps):
            return f"{w.name} would be predicted at {lat:.4g} ms / {thr:.4g} req/s"
    return ""


def shadow_share(profile: Profile, plan: Plan, name: str, active: dict[str, float], margin_pct: float,
                 time_scale: float = 1.0, error: float = 1.0) -> ShadowChoice:
    """The shadow rule (module docstring) for workload `name`, the GPU's servers at `active` shares.

    `plan` is the deployed plan (dilated by `time_scale` when emulated: its SLOs and rates are
    compared with the model's predictions x / / the scale)."""
    j, gpu, i = _gpu_of(plan, name)
    ws = gpu.workloads
    shares = np.array([active.get(w.name, w.resource_pct) for w in ws], dtype=float)
    unit = profile.hardware.unit_pct
    cap = 100.0 - (shares.sum() - shares[i])
    models, batches = [w.model for w in ws], [w.batch for w in ws]
    limits = np.array([latency_limit_ms(w.slo_ms) for w in ws])
    rates = np.array([w.rate_rps for w in ws])
    best: tuple[float, float] | None = None
    k = int(np.floor(shares[i] / unit + 1e-9)) + 1
    while k * unit <= cap + 1e-9:
        trial = shares.copy()
        trial[i] = k * unit
        pred = predict(profile, models, batches, trial.tolist())
        lat, thr = pred.latency_ms * time_scale, pred.throughput_rps / time_scale
        others = np.arange(len(ws)) != i
        if not np.all((lat <= limits * (1 + 1e-9)) | ~others) or not np.all((thr >= rates) | ~others):
            break  # a larger share only interferes more with the others
        best = (k * unit, float(lat[i]))
        if error * lat[i] <= latency_limit_ms(ws[i].slo_ms, margin_pct) and thr[i] / error >= rates[i]:
            return ShadowChoice(k * unit, False, float(lat[i]))
        k += 1
    if best is None:
        return ShadowChoice(None, True, None, f"GPU {j} cannot hold a larger share for {name} "
                                               f"(free {cap - shares[i]:g}%): re-plan needed")
    return ShadowChoice(best[0], True, best[1], f"margin {margin_pct:g}% not met within GPU {j}'s free share: "
                                                f"capped at {best[0]:g}%")


def warm_up(endpoint: Endpoint, w: Any, timeout_s: float = 60.0) -> None:
    """One full batch through a new shadow (zeros), so its first real requests find it warm: the python
    backend's first execution sets up its shared memory, and the first gRPC call its connection."""
    import numpy as np
    import tritonclient.grpc as grpcclient

    from igniter_opt.deploy.models import INPUT_NAME, spec_for

    shape = [w.batch, *spec_for(w.model).input_dims]
    client = grpcclient.InferenceServerClient(endpoint.grpc_url)
    try:
        tensor = grpcclient.InferInput(INPUT_NAME, shape, "FP32")
        tensor.set_data_from_numpy(np.zeros(shape, dtype=np.float32))
        client.infer(endpoint.model_name, [tensor], client_timeout=timeout_s)
    finally:
        client.close()


class ShadowController:
    """Starts the shadows of a deployment (deploy/session.py, `--shadow`) and switches to them."""

    def __init__(self, dep: Any) -> None:
        self.dep = dep
        opts = dep.options
        self.k, self.margin, self.scale = opts.shadow_windows, opts.shadow_margin_pct, opts.time_scale
        self.profile = load_profile(dep.plan.profile)
        self.plan: Plan = copy.deepcopy(dep.plan)       # the current plan: shares follow the switches
        self.learned: dict[str, float] = {}              # workload -> measured / predicted, after a break
        self.breaches: dict[str, int] = {}
        self.first_break: dict[str, WindowRecord] = {}
        self.noted: set[str] = set()                     # replan-needed already recorded
        self.corrections: list[dict[str, Any]] = []
        self.pending: dict[str, tuple[Any, float, int]] = {}  # replacement shadow: (workload, share, calm windows)
        self._lock = threading.Lock()
        self._closed = False
        self._seq = 0
        (dep.run_dir / CORRECTIONS).write_text("")
        # New shadows are started by one long-lived thread: a server carries PR_SET_PDEATHSIG, which
        # fires when the *thread* that started it ends, so a short-lived thread would take it down.
        self._jobs: queue.Queue[tuple[Any, float] | None] = queue.Queue()
        self._starter = threading.Thread(target=self._start_loop, daemon=True, name="shadow-starter")
        self._starter.start()

    # -- starting shadows --------------------------------------------------------------------------

    def _active(self) -> dict[str, float]:
        return {w.name: w.resource_pct for w in self.plan.workloads()}

    def _key(self, name: str) -> str:
        self._seq += 1
        base = next(e.model_name for e in self.dep.endpoints if e.name == name)
        return f"{base}.shadow{self._seq}"

    def start_shadows(self) -> list[ShadowChoice]:
        """One warm shadow per workload where the GPU can hold one (started in parallel)."""
        choices = [shadow_share(self.profile, self.plan, w.name, self._active(), self.margin, self.scale)
                   for w in self.plan.workloads()]
        items = [(w, c.share_pct, self._key(w.name)) for w, c in zip(self.plan.workloads(), choices)
                 if c.share_pct is not None]
        started = self.dep.start_servers([(w, share, key, "shadow") for w, share, key in items])
        self._refresh_emulation(started)
        for e, (w, _, _) in zip(started, items):
            warm_up(e, w)
        self.dep.shadows.extend(started)
        return choices

    def _refresh_emulation(self, starting: list[Endpoint] | None = None) -> None:
        """Rewrite the emulation file for the servers now: active ones, idle shadows (and `starting`)."""
        if not self.dep.emulated:
            return
        idle = self.dep.shadows + self.dep.retired + (starting or [])
        servers = [EmulatedServer(e.key, e.name, e.share_pct, True) for e in self.dep.endpoints]
        servers += [EmulatedServer(e.key, e.name, e.share_pct, False) for e in idle]
        spec = emulation_spec(self.plan, self.profile, servers, self.dep.options.inject_error, self.scale)
        write_emulation(self.dep.run_dir, spec)

    # -- switching ---------------------------------------------------------------------------------

    def on_windows(self, records: list[WindowRecord]) -> None:
        """A monitor listener: count consecutive windows with p99 > SLO; switch at K."""
        for r in records:
            if not r.breaks_slo:
                self.breaches[r.workload] = 0
                self.first_break.pop(r.workload, None)
                if r.workload in self.pending and r.completed > 0:
                    w, share, calm = self.pending[r.workload]
                    if calm + 1 >= self.k:
                        del self.pending[r.workload]
                        self._jobs.put((w, share))
                    else:
                        self.pending[r.workload] = (w, share, calm + 1)
                continue
            self.breaches[r.workload] = self.breaches.get(r.workload, 0) + 1
            self.first_break.setdefault(r.workload, r)
            if self.breaches[r.workload] >= self.k:
                self.switch(r.workload, r)
                self.breaches[r.workload] = 0
                self.first_break.pop(r.workload, None)

    def switch(self, name: str, record: WindowRecord) -> dict[str, Any] | None:
        """Switch workload `name` to its warm shadow; the correction record (None if there is none)."""
        with self._lock:
            if self._closed:
                return None
            shadow = next((e for e in self.dep.shadows if e.name == name), None)
            first = self.first_break.get(name, record)
            why = "no warm shadow: the GPU cannot hold a larger share" if shadow is None else \
                others_fit(self.profile, self.plan, name, shadow.share_pct, self._active(), self.scale)
            if shadow is None or why:
                if name not in self.noted:  # a fixed plan cannot re-plan itself: recorded once
                    self.noted.add(name)
                    self._log({**self._measured(name, record, first), "action": "replan-needed", "reason": why})
                return None
            idx = next(i for i, e in enumerate(self.dep.endpoints) if e.name == name)
            old: Endpoint = self.dep.endpoints[idx]
            corr = {**self._measured(name, record, first), "action": "switched", "old_server": old.key,
                    "new_server": shadow.key, "old_share_pct": old.share_pct, "new_share_pct": shadow.share_pct}
            shadow.role = "shadow"
            shadow.since_unix = time.time() + FOLLOW_S
            self.dep.endpoints[idx] = shadow
            self.dep.shadows.remove(shadow)
            self.dep.retired.append(old)
            self.dep.version += 1
            self._set_share(name, shadow.share_pct)
            self._refresh_emulation()          # co-runners first, then the clients move
            self.dep.write_endpoints()
            corr["switched_unix"] = time.time()
            corr["switch_delay_s"] = corr["switched_unix"] - first.unix_s
            corr["endpoints_version"] = self.dep.version
            self.learned[name] = max(corr["error_ratio"] or 1.0, 1.0)
            nxt = shadow_share(self.profile, self.plan, name, self._active(), self.margin, self.scale,
                               self.learned[name])
            corr["next_shadow_pct"] = nxt.share_pct
            corr["next_shadow_note"] = nxt.reason
            self._log(corr)
            self._write_plan()
            if nxt.share_pct is not None:  # started once the workload is calm again (see on_windows)
                self.pending[name] = (next(w for w in self.plan.workloads() if w.name == name), nxt.share_pct, 0)
            return corr

    def _measured(self, name: str, record: WindowRecord, first: WindowRecord) -> dict[str, Any]:
        """Measured vs predicted for a break: p50/p99 of the window, Triton's compute time per request
        against the predicted service time of the batch it ran (x scale), and their ratio."""
        j, gpu, i = _gpu_of(self.plan, name)
        w = gpu.workloads[i]
        pred = predict(self.profile, [x.model for x in gpu.workloads], [x.batch for x in gpu.workloads],
                       [x.resource_pct for x in gpu.workloads])
        predicted = float(pred.latency_ms[i]) * self.scale
        tri = record.triton or {}
        ratio = gpu_ratio = None
        if tri.get("compute_ms") and tri.get("batch"):
            n = max(1, min(w.batch, round(tri["batch"])))
            batch_pred = predict(self.profile, [x.model for x in gpu.workloads],
                                 [n if k == i else x.batch for k, x in enumerate(gpu.workloads)],
                                 [x.resource_pct for x in gpu.workloads]).latency_ms[i] * self.scale
            ratio = float(tri["compute_ms"] / batch_pred)
            coef = self.profile.model(w.model)  # the transfer is bytes over the bus: not the model's error
            transfer = (coef.input_bytes + coef.output_bytes) * n / self.profile.hardware.bandwidth_bytes_per_ms
            transfer *= self.scale
            gpu_ratio = float((tri["compute_ms"] - transfer) / (batch_pred - transfer))
        return {"workload": name, "model": w.model, "profile": self.profile.name,
                "gpu_type": self.profile.gpu,
                "gpu": j, "slo_ms": w.slo_ms, "time_scale": self.scale, "emulated": bool(self.dep.emulated),
                "first_violation_t_s": first.t_s, "window_t_s": record.t_s, "windows": self.k,
                "measured_p50_ms": record.p50_ms, "measured_p99_ms": record.p99_ms,
                "measured_compute_ms": tri.get("compute_ms"), "predicted_latency_ms": predicted,
                "error_ratio": ratio, "gpu_error_ratio": gpu_ratio}

    def _set_share(self, name: str, share: float) -> None:
        _, gpu, i = _gpu_of(self.plan, name)
        gpu.workloads[i].resource_pct = share
        pred = predict(self.profile, [x.model for x in gpu.workloads], [x.batch for x in gpu.workloads],
                       [x.resource_pct for x in gpu.workloads])
        for k, x in enumerate(gpu.workloads):
            x.predicted_latency_ms = float(pred.latency_ms[k]) * self.scale
            x.predicted_throughput_rps = float(pred.throughput_rps[k]) / self.scale

    def _start_loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            self._start_later(*job)

    def _start_later(self, w: Any, share: float) -> None:
        with self._lock:
            if self._closed:
                return
            key = self._key(w.name)
        try:
            endpoint = self.dep.start_server(w, share, key, "shadow")
        except Exception as exc:
            with self._lock:
                self._log({"workload": w.name, "action": "shadow-failed", "reason": str(exc)})
            return
        with self._lock:
            if self._closed:
                return
            self._refresh_emulation([endpoint])
        try:
            warm_up(endpoint, w)
        except Exception as exc:
            with self._lock:
                self._log({"workload": w.name, "action": "shadow-failed", "reason": f"warm-up: {exc}"})
            return
        with self._lock:
            if self._closed:
                return
            self.dep.shadows.append(endpoint)
            self._refresh_emulation()
            self.dep.write_endpoints()

    def _log(self, entry: dict[str, Any]) -> None:
        entry.setdefault("unix", time.time())
        self.corrections.append(entry)
        with open(self.dep.run_dir / CORRECTIONS, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def _write_plan(self) -> None:
        (self.dep.run_dir / CURRENT_PLAN).write_text(json.dumps(self.plan.to_dict(), indent=2) + "\n")

    def close(self) -> None:
        """No more switches; wait for shadows being started (the launcher then stops everything)."""
        with self._lock:
            self._closed = True
        self._jobs.put(None)
        self._starter.join(timeout=self.dep.options.ready_timeout_s + 10.0)
