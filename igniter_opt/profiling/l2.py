"""L2 demand with Nsight Compute (ncu): the counter, the command and the parsing of its CSV.

Counter: `lts__t_sectors.avg.pct_of_peak_sustained_elapsed`, the L2 (LTS tag stage) sector throughput
of a kernel as a percentage of the L2's peak over the kernel's elapsed time; the reference uses the
same counter. One inference's L2 demand is the duration-weighted mean of it over the inference's
kernels (weights: `gpu__time_duration.sum`), i.e. the inference's average L2 bandwidth use in % of
peak. Why this one: the model adds the demands of co-located workloads (C = sum c_i), and bandwidth
use in % of peak is additive and comparable across GPUs; a hit rate (`lts__t_sector_hit_rate.pct`)
is not additive, and raw `lts__t_sectors.sum / duration` (sectors per ns) depends on the GPU's L2
width. The hit rate is collected alongside for the record only.

Raw-profile mapping: `l2caches` = the demand at the grid's diagonal (batch 1, 16, 32 at share 10,
50, 100); `l2cache` = the demand of the co-runner in the active-time-alone-vs-with-a-copy
experiment, i.e. the same model at that experiment's point (16, 50), so it equals l2caches[1]
(the published V100 values agree: l2cache ~ l2caches[1] for every model).

Kernels of several models in one ncu run are told apart by a marker kernel (torch.cuda._sleep,
`spin_kernel`) launched before each model's inferences.
"""

from __future__ import annotations

import csv
import io
import shutil
from dataclasses import dataclass, field

import numpy as np

NCU = "ncu"
L2_METRIC = "lts__t_sectors.avg.pct_of_peak_sustained_elapsed"
HIT_METRIC = "lts__t_sector_hit_rate.pct"
DURATION_METRIC = "gpu__time_duration.sum"
METRICS = (DURATION_METRIC, L2_METRIC, HIT_METRIC)
MARKER = "spin_kernel"
TIME_UNITS_NS = {"nsecond": 1.0, "ns": 1.0, "usecond": 1e3, "us": 1e3, "msecond": 1e6, "ms": 1e6,
                 "second": 1e9, "s": 1e9}


@dataclass
class KernelMetrics:
    """One profiled kernel: its ncu ID, name, duration (ns) and the other metrics by name."""

    id: int
    name: str
    duration_ns: float
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class L2Demand:
    """L2 demand of one model at one point: weighted % of peak, weighted hit rate, kernels seen."""

    pct_of_peak: float
    hit_rate_pct: float
    kernels: int


def ncu_available() -> bool:
    """Is the Nsight Compute CLI on PATH?"""
    return shutil.which(NCU) is not None


def ncu_profile_command(report: str, program: list[str], ncu: str = NCU, mps_client: bool = False) -> list[str]:
    """argv that profiles `program` between cudaProfilerStart/Stop into `report`.ncu-rep.

    --clock-control none keeps the GPU's own clocks (ncu locks base clocks by default);
    --target-processes all follows the worker if python re-executes. mps_client: the program is
    an MPS client; the H200's ncu (CUDA 13) refused one without `--mps client` ("Profiling is not
    supported with Multi-Process Server (MPS) enabled ... Start ncu with --mps client").
    """
    mps = ["--mps", "client"] if mps_client else []
    return [ncu, "--profile-from-start", "off", "--clock-control", "none", "--target-processes", "all", *mps,
            "--metrics", ",".join(METRICS), "--force-overwrite", "-o", report, *program]


def ncu_import_command(report: str, ncu: str = NCU) -> list[str]:
    """argv that prints a report as CSV, one row per kernel and metric, values in base units."""
    return [ncu, "--import", f"{report}.ncu-rep" if not report.endswith(".ncu-rep") else report,
            "--csv", "--page", "details", "--print-units", "base"]


def _number(text: str) -> float:
    text = text.strip().replace(",", "")
    if text in ("", "n/a", "N/A", "nan"):
        return float("nan")
    return float(text)


def parse_ncu_csv(text: str) -> list[KernelMetrics]:
    """Kernels of an `ncu --csv --page details` export, in ID order.

    Accepts leading ==PROF== or program lines (skipped up to the header), thousands separators and
    duration units other than ns.
    """
    lines = text.splitlines()
    try:
        head = next(i for i, line in enumerate(lines) if line.startswith('"ID"'))
    except StopIteration:
        raise ValueError("no ncu CSV header (a line starting with \"ID\") found") from None
    kernels: dict[int, KernelMetrics] = {}
    for row in csv.DictReader(io.StringIO("\n".join(lines[head:]))):
        if not row.get("ID") or not row.get("Metric Name"):
            continue
        kid = int(_number(row["ID"]))
        k = kernels.setdefault(kid, KernelMetrics(id=kid, name=row.get("Kernel Name", ""), duration_ns=float("nan")))
        name, value = row["Metric Name"], _number(row.get("Metric Value", ""))
        if name == DURATION_METRIC:
            unit = (row.get("Metric Unit") or "nsecond").strip()
            k.duration_ns = value * TIME_UNITS_NS.get(unit, 1.0)
        else:
            k.metrics[name] = value
    return [kernels[i] for i in sorted(kernels)]


def split_by_marker(kernels: list[KernelMetrics], marker: str = MARKER) -> list[list[KernelMetrics]]:
    """The kernels after each marker kernel, up to the next one (kernels before the first are dropped)."""
    segments: list[list[KernelMetrics]] = []
    for k in kernels:
        if marker in k.name:
            segments.append([])
        elif segments:
            segments[-1].append(k)
    return segments


def weighted_demand(kernels: list[KernelMetrics], reps: int = 1) -> L2Demand:
    """Duration-weighted mean L2 % of peak and hit rate over kernels (`reps` inferences of one model)."""
    if not kernels:
        raise ValueError("no kernels to weigh")
    dur = np.array([k.duration_ns for k in kernels], dtype=float)
    pct = np.array([k.metrics.get(L2_METRIC, np.nan) for k in kernels], dtype=float)
    hit = np.array([k.metrics.get(HIT_METRIC, np.nan) for k in kernels], dtype=float)
    ok = np.isfinite(dur) & np.isfinite(pct) & (dur > 0)
    if not ok.any():
        raise ValueError(f"no kernel carries both {DURATION_METRIC} and {L2_METRIC}")
    pct_w = float(np.average(pct[ok], weights=dur[ok]))
    ok_hit = ok & np.isfinite(hit)
    hit_w = float(np.average(hit[ok_hit], weights=dur[ok_hit])) if ok_hit.any() else float("nan")
    return L2Demand(pct_of_peak=pct_w, hit_rate_pct=hit_w, kernels=round(len(kernels) / max(reps, 1)))


def demands_by_model(csv_text: str, models: list[str], reps: int = 1) -> dict[str, L2Demand]:
    """L2 demand of each model of one marker-separated ncu run (models in launch order)."""
    segments = split_by_marker(parse_ncu_csv(csv_text))
    if len(segments) != len(models):
        raise ValueError(f"ncu run: {len(segments)} marker-separated segments for {len(models)} models")
    return {m: weighted_demand(seg, reps) for m, seg in zip(models, segments)}
