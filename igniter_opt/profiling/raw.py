"""Assemble measurements into the raw profile format that data.profiles.load_raw reads; pure.

Raw format: JSON lines {section: {key: value}}, sections "hardware" and one per DNN. The keys are
the reference's (see model/fit.py); extra keys (gpu, sm_count, nvml clock, dtype, ...) ride
along in the same sections and are ignored by the fit. No extra section may be added: the fit
treats every section but "hardware" as a DNN.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from igniter_opt.data.profiles import GRID_BATCHES, GRID_SHARES, RawProfile
from igniter_opt.profiling.derive import snap_clock


@dataclass(frozen=True)
class PointMeasurement:
    """One solo (batch, share) point: mean GPU latency (ms), mean power (W), mean SM clock (MHz)."""

    batch: int
    share: float
    latency_ms: float
    power_w: float
    clock_mhz: float


@dataclass
class ModelMeasurement:
    """Everything measured for one DNN."""

    name: str
    input_bytes: float            # per request, as sent over PCIe
    output_bytes: float
    grid: list[PointMeasurement]  # the 3x3 grid, any order
    kernels: int                  # kernels per inference
    idle_ms: float                # solo idle time per inference (gaps between kernels)
    active_ms: float              # solo active time at grid.COLOC_POINT
    coloc_active_ms: float        # active time beside a copy of itself (both at COLOC_POINT)
    coloc_power_w: float
    coloc_clock_mhz: float
    l2_diagonal: tuple[float, float, float]  # L2 demand at grid.DIAGONAL
    l2_coloc: float               # L2 demand of the co-runner (same model at COLOC_POINT)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class HardwareMeasurement:
    """GPU-wide measurements; the concurrent_* lists hold 1..n concurrent VGG-19."""

    gpu: str
    idle_power_w: float
    max_clock_mhz: float          # F (see derive.effective_max_clock)
    power_cap_w: float
    unit_pct: float
    bandwidth_bytes_per_ms: float
    concurrent_power_w: list[float]
    concurrent_clock_mhz: list[float]
    concurrent_idle_per_kernel_ms: list[float]
    extra: dict[str, Any] = field(default_factory=dict)


def grid_matrix(points: list[PointMeasurement], attr: str) -> list[list[float]]:
    """3x3 matrix of one attribute: rows batch 1/16/32, columns share 10/50/100 (fit.py's layout)."""
    index = {(p.batch, float(p.share)): getattr(p, attr) for p in points}
    try:
        return [[float(index[(b, float(s))]) for s in GRID_SHARES] for b in GRID_BATCHES]
    except KeyError as exc:
        raise ValueError(f"grid point {exc.args[0]} was not measured") from None


def hardware_lines(hw: HardwareMeasurement) -> list[dict[str, Any]]:
    """The hardware section, one key per line like the reference's file."""
    F = hw.max_clock_mhz
    values: dict[str, Any] = {
        "idlepower": hw.idle_power_w,
        "power": [float(p) for p in hw.concurrent_power_w],
        "frequency": [float(f) for f in snap_clock(hw.concurrent_clock_mhz, F)],
        "idletime": [float(t) for t in hw.concurrent_idle_per_kernel_ms],
        "maxGPUfrequency": F,
        "maxGPUpower": hw.power_cap_w,
        "unit": hw.unit_pct,
        "bandwidth": hw.bandwidth_bytes_per_ms,
        "gpu": hw.gpu,
        **hw.extra,
    }
    return [{"hardware": {k: v}} for k, v in values.items()]


def model_lines(m: ModelMeasurement, max_clock_mhz: float) -> list[dict[str, Any]]:
    """One DNN's section, one key per line."""
    F = max_clock_mhz
    freq = [[float(f) for f in row] for row in snap_clock(grid_matrix(m.grid, "clock_mhz"), F)]
    values: dict[str, Any] = {
        "transferdata": m.input_bytes + m.output_bytes,
        "inputdata": m.input_bytes,
        "outputdata": m.output_bytes,
        "gpulatency": grid_matrix(m.grid, "latency_ms"),
        "power": grid_matrix(m.grid, "power_w"),
        "frequency": freq,
        "l2cache": m.l2_coloc,
        "idletime_1": m.idle_ms,
        "activetime_1": m.active_ms,
        "activetime_2": m.coloc_active_ms,
        "power_2": m.coloc_power_w,
        "frequency_2": float(snap_clock(m.coloc_clock_mhz, F)),
        "l2caches": [float(v) for v in m.l2_diagonal],
        "kernel": int(m.kernels),
        **m.extra,
    }
    return [{m.name: {k: v}} for k, v in values.items()]


def raw_lines(hw: HardwareMeasurement, models: list[ModelMeasurement]) -> list[dict[str, Any]]:
    """All lines of a raw profile: hardware first, then each DNN."""
    if "hardware" in {m.name for m in models}:
        raise ValueError("a model cannot be called 'hardware'")
    lines = hardware_lines(hw)
    for m in models:
        lines += model_lines(m, hw.max_clock_mhz)
    return lines


def merge_lines(lines: list[dict[str, Any]]) -> RawProfile:
    """Merge lines section by section, as load_raw does."""
    raw: RawProfile = {}
    for line in lines:
        for section, values in line.items():
            raw.setdefault(section, {}).update(values)
    return raw


def write_raw(path: str | Path, lines: list[dict[str, Any]]) -> None:
    """Write raw-profile lines as JSON lines (strict JSON: NaN is refused)."""
    text = "".join(json.dumps(line, allow_nan=False) + "\n" for line in lines)
    Path(path).write_text(text)
