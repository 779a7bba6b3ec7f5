"""Derived quantities of a profiling run: pure numpy functions of measured timings and samples.

Everything here is tested on synthetic timings; nothing imports torch or touches a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# NVML power on Ampere-and-newer GPUs is a 1 s moving average: the first second of a window lags.
POWER_SETTLE_S = 1.0
# A mean SM clock within this fraction of F counts as "at F" (one slow sample must not read as a drop).
CLOCK_TOLERANCE = 0.005


@dataclass(frozen=True)
class LatencyStats:
    """Summary of one timed loop after dropping its warm-up."""

    mean_ms: float
    median_ms: float
    p90_ms: float
    iterations: int


def trim_warmup(values, warmup_fraction: float = 0.1, min_keep: int = 1) -> np.ndarray:
    """Drop the first `warmup_fraction` of a series (at least one value is kept)."""
    values = np.asarray(values, dtype=float)
    drop = int(np.floor(len(values) * warmup_fraction))
    drop = min(drop, max(len(values) - min_keep, 0))
    return values[drop:]


def latency_stats(latencies_ms, warmup_fraction: float = 0.1) -> LatencyStats:
    """Mean (what the reference averages), median and p90 of per-iteration latencies, warm-up trimmed."""
    kept = trim_warmup(latencies_ms, warmup_fraction)
    if kept.size == 0:
        raise ValueError("no latency samples")
    return LatencyStats(mean_ms=float(kept.mean()), median_ms=float(np.median(kept)),
                        p90_ms=float(np.percentile(kept, 90)), iterations=int(kept.size))


def in_window(t, start: float, end: float) -> np.ndarray:
    """Boolean mask of times inside [start, end]."""
    t = np.asarray(t, dtype=float)
    return (t >= start) & (t <= end)


def window_mean(t, values, start: float, end: float, settle_s: float = 0.0) -> float:
    """Mean of samples taken in [start + settle_s, end]; falls back to [start, end], then NaN."""
    t = np.asarray(t, dtype=float)
    values = np.asarray(values, dtype=float)
    settle = min(settle_s, max(end - start, 0.0) / 2)
    for lo in (start + settle, start):
        mask = in_window(t, lo, end)
        if mask.any():
            return float(values[mask].mean())
    return float("nan")


def overlap_window(starts, ends) -> tuple[float, float]:
    """Common interval of several concurrent runs: (latest start, earliest end)."""
    return float(np.max(starts)), float(np.min(ends))


def latencies_in_window(latencies_ms, end_times, start: float, end: float) -> np.ndarray:
    """Latencies of the iterations that ended inside [start, end] (co-located runs overlapped then)."""
    lat = np.asarray(latencies_ms, dtype=float)
    ends = np.asarray(end_times, dtype=float)
    begins = ends - lat / 1000.0
    return lat[(begins >= start) & (ends <= end)]


def throughput_rps(batch: int, end_times, start: float, end: float) -> float:
    """Requests per second completed in [start, end] (each iteration serves `batch` requests)."""
    ends = np.asarray(end_times, dtype=float)
    done = int(np.count_nonzero(in_window(ends, start, end)))
    return 1000.0 * batch * done / max((end - start) * 1000.0, 1e-9)


def snap_clock(values, max_clock: float, tolerance: float = CLOCK_TOLERANCE):
    """Mean clocks within `tolerance` of F become exactly F (fit.py tests `f == F` / `f < F`)."""
    arr = np.asarray(values, dtype=float)
    snapped = np.where(arr >= max_clock * (1 - tolerance), float(max_clock), arr)
    return snapped if snapped.ndim else float(snapped)


def effective_max_clock(nvml_max_mhz: float, light_load_clock_mhz: float,
                        tolerance: float = CLOCK_TOLERANCE) -> float:
    """F for the model: NVML's max SM clock, unless the GPU never reaches it even under light load.

    Some boards (application clocks, PCIe variants) run below the NVML maximum without any power
    pressure; taking that maximum as F would read every measurement as a power-cap drop.
    """
    if np.isfinite(light_load_clock_mhz) and light_load_clock_mhz < nvml_max_mhz * (1 - tolerance):
        return float(light_load_clock_mhz)
    return float(nvml_max_mhz)


def share_unit(sm_count: int, step: float | None = None) -> float:
    """Resource unit u in %: one MPS step of 2 SMs (one TPC), 100 / (SMs / 2), or a chosen step."""
    if step is not None:
        if not 0 < step <= 100:
            raise ValueError(f"share step must be in (0, 100], got {step}")
        return float(step)
    if sm_count < 2:
        raise ValueError(f"SM count must be >= 2, got {sm_count}")
    return 100.0 / (sm_count / 2)


def idle_and_active(iteration_idle_ms, iteration_span_ms) -> tuple[float, float]:
    """(mean idle, mean active) per inference: active = span (first kernel start to last end) - idle."""
    idle = np.asarray(iteration_idle_ms, dtype=float)
    span = np.asarray(iteration_span_ms, dtype=float)
    if idle.size == 0:
        raise ValueError("no traced iterations")
    return float(idle.mean()), float((span - idle).mean())


def idle_per_kernel(idle_ms_per_worker, kernels: int) -> float:
    """Scheduling idle time per kernel, averaged over concurrent workers (hardware.idletime)."""
    if kernels <= 0:
        raise ValueError("kernel count must be positive")
    return float(np.mean(np.asarray(idle_ms_per_worker, dtype=float)) / kernels)


def bandwidth_bytes_per_ms(nbytes: float, copy_times_ms) -> float:
    """Host-to-device bandwidth from repeated copies of `nbytes`: median time (robust to a slow first)."""
    times = np.asarray(copy_times_ms, dtype=float)
    if times.size == 0 or np.any(times <= 0):
        raise ValueError("copy times must be positive")
    return float(nbytes / np.median(times))
