"""`igniter validate`: random co-locations measured under MPS against the model's predictions.

Pure parts (tested without a GPU): sampling co-locations, joining predictions with measurements,
error statistics. The measurement starts one worker per workload with its MPS share, runs them
together in a serving-like loop (input H2D overlapping the previous inference, DNN, output D2H)
and samples NVML meanwhile.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from igniter_opt.model import predict
from igniter_opt.model.coefficients import Profile
from igniter_opt.profiling import derive

MAX_BATCH = 32


@dataclass(frozen=True)
class Colocated:
    model: str
    batch: int
    share: float


@dataclass
class ValidationResult:
    """One workload of one measured co-location: predicted and measured latency and throughput."""

    colocation: int
    model: str
    batch: int
    share: float
    predicted_latency_ms: float
    measured_latency_ms: float
    predicted_gpu_latency_ms: float
    measured_gpu_latency_ms: float
    predicted_throughput_rps: float
    measured_throughput_rps: float

    @property
    def latency_error(self) -> float:
        return rel_error(self.predicted_latency_ms, self.measured_latency_ms)

    @property
    def throughput_error(self) -> float:
        return rel_error(self.predicted_throughput_rps, self.measured_throughput_rps)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "latency_error": self.latency_error, "throughput_error": self.throughput_error}


def rel_error(predicted, measured):
    """|predicted - measured| / measured (vectorised)."""
    p, m = np.asarray(predicted, dtype=float), np.asarray(measured, dtype=float)
    err = np.abs(p - m) / m
    return float(err) if err.ndim == 0 else err


def share_grid(unit: float, min_share: float) -> np.ndarray:
    """Shares a workload may get: multiples of the unit from min_share (rounded up) to 100."""
    first = math.ceil(min_share / unit - 1e-9)
    steps = np.arange(first, math.floor(100 / unit + 1e-9) + 1)
    return np.round(steps * unit, 6)


def sample_colocations(models: list[str], n: int, unit: float, seed: int = 0, min_workloads: int = 2,
                       max_workloads: int = 4, min_share: float = 10.0,
                       max_batch: int = MAX_BATCH) -> list[list[Colocated]]:
    """n random co-locations: 2-4 workloads, models with repetition, batch 1..max_batch, shares
    multiples of `unit`, each >= min_share, summing to <= 100 (rejection sampling)."""
    if not models:
        raise ValueError("no models to sample from")
    if max_workloads * min_share > 100:
        max_workloads = int(100 // min_share)
    if max_workloads < min_workloads:
        raise ValueError(f"min_share {min_share}% leaves no room for {min_workloads} workloads")
    rng = np.random.default_rng(seed)
    grid_ = share_grid(unit, min_share)
    out: list[list[Colocated]] = []
    while len(out) < n:
        k = int(rng.integers(min_workloads, max_workloads + 1))
        shares = rng.choice(grid_, size=k)
        if shares.sum() > 100 + 1e-9:
            continue
        names = rng.choice(models, size=k)
        batches = rng.integers(1, max_batch + 1, size=k)
        out.append([Colocated(str(m), int(b), float(s)) for m, b, s in zip(names, batches, shares)])
    return out


def predictions(profile: Profile, colocation: list[Colocated]) -> dict[str, np.ndarray]:
    """Predicted latency, GPU latency and throughput of each workload of one co-location."""
    p = predict(profile, [w.model for w in colocation], [w.batch for w in colocation],
                [w.share for w in colocation])
    return {"latency_ms": p.latency_ms, "gpu_latency_ms": p.gpu_latency_ms, "throughput_rps": p.throughput_rps}


def error_stats(results: list[ValidationResult]) -> dict[str, dict[str, dict[str, float]]]:
    """Per model and "all": median, p90 and max relative error of latency and throughput, and count."""
    groups: dict[str, list[ValidationResult]] = {}
    for r in results:
        groups.setdefault(r.model, []).append(r)
    groups["all"] = list(results)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, rs in groups.items():
        if not rs:
            continue
        entry: dict[str, dict[str, float]] = {}
        for metric in ("latency", "throughput"):
            err = np.array([getattr(r, f"{metric}_error") for r in rs], dtype=float)
            entry[metric] = {"median": float(np.median(err)), "p90": float(np.percentile(err, 90)),
                             "max": float(err.max()), "n": int(err.size)}
        out[name] = entry
    return out


def join(index: int, colocation: list[Colocated], pred: dict[str, np.ndarray],
         measured: list[dict[str, float]]) -> list[ValidationResult]:
    """Results of one co-location from its predictions and per-workload measurements."""
    return [ValidationResult(colocation=index, model=w.model, batch=w.batch, share=w.share,
                   predicted_latency_ms=float(pred["latency_ms"][i]), measured_latency_ms=m["latency_ms"],
                   predicted_gpu_latency_ms=float(pred["gpu_latency_ms"][i]),
                   measured_gpu_latency_ms=m["gpu_latency_ms"],
                   predicted_throughput_rps=float(pred["throughput_rps"][i]),
                   measured_throughput_rps=m["throughput_rps"])
            for i, (w, m) in enumerate(zip(colocation, measured))]


def summarize_transfer(answer: dict[str, Any], batch: int, start: float, end: float) -> dict[str, float]:
    """Mean latency, GPU latency and achieved throughput of one worker over the common window."""
    lat = derive.latencies_in_window(answer["lat_ms"], answer["end_t"], start, end)
    gpu = derive.latencies_in_window(answer["gpu_ms"], answer["end_t"], start, end)
    if lat.size == 0:  # the window was shorter than one inference: keep what there is
        lat, gpu = np.asarray(answer["lat_ms"], dtype=float), np.asarray(answer["gpu_ms"], dtype=float)
    return {"latency_ms": float(lat.mean()), "gpu_latency_ms": float(gpu.mean()),
            "throughput_rps": derive.throughput_rps(batch, answer["end_t"], start, end),
            "iterations": int(lat.size)}


def measure(colocation: list[Colocated], mps: Any, work: Path, seconds: float, dtype: str = "float32",
            eager: bool = False) -> list[dict[str, float]]:
    """Run one co-location on the GPU (one MPS client per workload) and measure each workload."""
    from igniter_opt.profiling.worker import WorkerProcess, run_together, worker_argv

    workers = [WorkerProcess(f"w{i}", worker_argv([w.model], [w.batch], dtype, eager, transfer=True),
                             mps.client_env(w.share), work / "logs" / f"w{i}.log") for i, w in enumerate(colocation)]
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.wait_ready(240)
        start_at = time.monotonic() + 0.3
        cmds = [{"op": "transfer", "model": w.model, "batch": w.batch, "seconds": seconds, "start_at": start_at}
                for w in colocation]
        answers = run_together(workers, cmds, seconds + 120)
    finally:
        for w in workers:
            w.close()
    t0, t1 = derive.overlap_window([a["t_start"] for a in answers], [a["t_end"] for a in answers])
    # drop the first 10% of the common window: co-runners are still ramping up
    t0 += 0.1 * max(t1 - t0, 0.0)
    return [summarize_transfer(a, w.batch, t0, t1) for a, w in zip(answers, colocation)]


def run_validation(profile: Profile, colocations: list[list[Colocated]], seconds: float = 3.0,
                   budget_s: float = 540.0, dtype: str = "float32", eager: bool = False,
                   step: Callable[[str], None] = lambda _: None) -> list[ValidationResult]:
    """Measure co-locations until done or the budget is spent (the ones measured are returned)."""
    from igniter_opt.platform.mps import MpsDaemon

    results: list[ValidationResult] = []
    t_begin = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="igniter-validate-"))
    with MpsDaemon(work) as mps:
        for i, col in enumerate(colocations):
            spent = time.monotonic() - t_begin
            if i and spent + spent / i > budget_s:
                step(f"budget spent: {i} of {len(colocations)} co-locations measured")
                break
            measured = measure(col, mps, work / f"c{i}", seconds, dtype, eager)
            results += join(i, col, predictions(profile, col), measured)
            step(" + ".join(f"{w.model}:{w.batch}:{w.share:g}" for w in col))
    return results
