"""Kernel traces: count kernels per inference and split an inference's GPU time into idle and active.

A worker traces a few inferences with torch.profiler (CUPTI kernel records, also inside CUDA graph
replays), synchronising after each, and exports a Chrome trace. The functions here are pure: they
read that trace, cut it into inferences and measure the gaps between consecutive kernels, as the
reference does with its nsys exports (sum of gaps within an inference = idle time; the rest of the
span from first kernel start to last kernel end = active time).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

KERNEL_CATEGORIES = ("kernel",)  # Chrome-trace "cat" of CUDA kernels; memcpy/memset are excluded


@dataclass(frozen=True)
class KernelTrace:
    """Kernel start and end times in microseconds, sorted by start."""

    start_us: np.ndarray
    end_us: np.ndarray

    @property
    def count(self) -> int:
        return int(self.start_us.size)

    def to_lists(self) -> dict[str, list[float]]:
        return {"start_us": self.start_us.tolist(), "end_us": self.end_us.tolist()}

    @classmethod
    def from_lists(cls, data: dict[str, Any]) -> KernelTrace:
        return make_trace(data["start_us"], data["end_us"])


@dataclass(frozen=True)
class IterationTiming:
    """Per-inference kernel count, idle (gaps) and span, ms."""

    kernels: np.ndarray
    idle_ms: np.ndarray
    span_ms: np.ndarray

    @property
    def active_ms(self) -> np.ndarray:
        return self.span_ms - self.idle_ms


def make_trace(start_us, end_us) -> KernelTrace:
    """A KernelTrace from unsorted start/end arrays (sorted by start)."""
    start = np.asarray(start_us, dtype=float)
    end = np.asarray(end_us, dtype=float)
    if start.shape != end.shape:
        raise ValueError("start and end must have the same length")
    order = np.argsort(start, kind="stable")
    return KernelTrace(start_us=start[order], end_us=end[order])


def kernels_from_chrome_trace(trace: dict[str, Any] | str | Path) -> KernelTrace:
    """The CUDA kernels of a torch.profiler Chrome trace (dict, JSON text or file path)."""
    if isinstance(trace, Path) or (isinstance(trace, str) and not trace.lstrip().startswith("{")):
        trace = json.loads(Path(trace).read_text())
    elif isinstance(trace, str):
        trace = json.loads(trace)
    events = trace.get("traceEvents", []) if isinstance(trace, dict) else []
    kern = [e for e in events if e.get("ph") == "X" and e.get("cat") in KERNEL_CATEGORIES]
    start = np.array([float(e["ts"]) for e in kern], dtype=float)
    dur = np.array([float(e.get("dur", 0.0)) for e in kern], dtype=float)
    return make_trace(start, start + dur)


def split_iterations(trace: KernelTrace, iterations: int) -> list[KernelTrace]:
    """Cut a trace of `iterations` synchronised inferences at its `iterations - 1` largest gaps.

    The worker synchronises between traced inferences, so the gaps between them are far larger
    than any gap between kernels of one inference.
    """
    if iterations < 1:
        raise ValueError("iterations must be >= 1")
    if trace.count < iterations:
        raise ValueError(f"{trace.count} kernels cannot make {iterations} inferences")
    running_end = np.maximum.accumulate(trace.end_us)
    gaps = trace.start_us[1:] - running_end[:-1]
    cuts = np.sort(np.argsort(gaps, kind="stable")[::-1][: iterations - 1]) + 1
    bounds = np.concatenate(([0], cuts, [trace.count]))
    return [KernelTrace(trace.start_us[a:b], trace.end_us[a:b]) for a, b in itertools.pairwise(bounds)]


def idle_us(trace: KernelTrace) -> float:
    """Sum of the gaps between kernels (overlapping kernels leave no gap)."""
    if trace.count < 2:
        return 0.0
    running_end = np.maximum.accumulate(trace.end_us)
    gaps = trace.start_us[1:] - running_end[:-1]
    return float(np.clip(gaps, 0.0, None).sum())


def span_us(trace: KernelTrace) -> float:
    """First kernel start to last kernel end."""
    return float(trace.end_us.max() - trace.start_us.min()) if trace.count else 0.0


def iteration_timing(trace: KernelTrace, iterations: int) -> IterationTiming:
    """Kernel count, idle and span of each traced inference."""
    parts = split_iterations(trace, iterations)
    return IterationTiming(
        kernels=np.array([p.count for p in parts]),
        idle_ms=np.array([idle_us(p) for p in parts]) / 1000.0,
        span_ms=np.array([span_us(p) for p in parts]) / 1000.0,
    )


def kernels_per_inference(timing: IterationTiming) -> int:
    """The kernel count of one inference: the most common count over the traced ones."""
    values, counts = np.unique(timing.kernels, return_counts=True)
    return int(values[np.argmax(counts)])
